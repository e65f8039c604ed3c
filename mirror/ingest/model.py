"""Values that ingest produces and render consumes, and the small rules they obey.

An `Article` is valid by construction: its slug and asset names are checked
in ``__post_init__`` because they become file names inside the edition (a
slug of ``../../x`` must never reach the ZIP writer), and its date is
normalised to UTC so that rendering never depends on the machine's time zone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from mirror.errors import ArticleError
from mirror.ingest.workers import Overrun

INGEST_VERSION = 2
"""Bump with any change to what ingest makes of a source (parsing, sanitising, summaries;
2: front matter parsed by libyaml where PyYAML has it):
articles kept by earlier builds (`mirror.buildcache`) are then parsed again."""

OnError = Literal["skip", "fail"]
"""What a source does with a broken article: record a problem and go on, or raise."""

Direction = Literal["ltr", "rtl"]

MAX_SLUG_CHARS = 80

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
"""A slug: lowercase ASCII letters and digits in groups joined by single hyphens."""

ASSET_FILE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,119}")
"""The last part of an asset name: safe in a URL, a ZIP member name and every file system."""

LANGUAGE_PATTERN = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
"""BCP-47-ish: a 2-3 letter primary subtag, then optional script/region/variant subtags."""

RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "yi", "ps", "dv", "ckb", "sd", "ug"})
"""Primary language subtags written right to left unless a script subtag says otherwise."""

RTL_SCRIPTS = frozenset({"arab", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", "mand", "samr"})
"""ISO 15924 scripts written right to left (``az-Arab`` is rtl, ``ckb-Latn`` is ltr)."""

# Cyrillic has no ASCII decomposition, so NFKD alone would turn a Russian title into
# an empty slug; this is the simple, reversible-enough transliteration newsrooms use.
_CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў"
_LATIN = (
    "a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p",
    "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "iu", "ia",
    "i", "i", "ie", "g", "u",
)  # fmt: skip
_TRANSLITERATION = str.maketrans(dict(zip(_CYRILLIC, _LATIN, strict=True)))


def slugify(text: str, *, max_chars: int = MAX_SLUG_CHARS) -> str:
    """Turn free text into a slug (``[a-z0-9-]``, at most `max_chars`), possibly empty.

    Cyrillic is transliterated, Latin diacritics are dropped, everything else
    (Arabic, Hebrew, punctuation) becomes a separator. Truncation happens at a
    hyphen where possible so words are not cut in half.
    """
    lowered = text.lower().translate(_TRANSLITERATION)
    ascii_text = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > max_chars:
        cut = slug[:max_chars]
        if slug[max_chars] != "-" and "-" in cut:
            cut = cut.rsplit("-", 1)[0]
        slug = cut.strip("-")
    return slug


def is_valid_slug(slug: str) -> bool:
    """Whether `slug` may name an article page (``articles/<slug>.html``)."""
    return len(slug) <= MAX_SLUG_CHARS and SLUG_PATTERN.fullmatch(slug) is not None


def normalize_language(tag: str) -> str | None:
    """`tag` in canonical BCP-47 case (``ru``, ``sr-Latn``, ``pt-BR``), or None if invalid."""
    tag = tag.strip().replace("_", "-")
    if LANGUAGE_PATTERN.fullmatch(tag) is None:
        return None
    primary, *rest = tag.split("-")
    parts = [primary.lower()]
    for index, subtag in enumerate(rest):
        if index == 0 and len(subtag) == 4 and subtag.isalpha():
            parts.append(subtag.title())
        elif (len(subtag) == 2 and subtag.isalpha()) or (len(subtag) == 3 and subtag.isdigit()):
            parts.append(subtag.upper())
        else:
            parts.append(subtag.lower())
    return "-".join(parts)


def text_direction(language: str) -> Direction:
    """Writing direction for a language tag: a script subtag decides, else the primary subtag."""
    primary, *rest = language.lower().replace("_", "-").split("-")
    for subtag in rest[:1]:
        if len(subtag) == 4 and subtag.isalpha():
            return "rtl" if subtag in RTL_SCRIPTS else "ltr"
    return "rtl" if primary in RTL_LANGUAGES else "ltr"


@dataclass(frozen=True)
class Asset:
    """A file an article refers to (an image, a PDF), copied into the edition as-is.

    The bytes are not held in memory: the edition writer streams them from
    `source` and must check that the size is still `size` (the file may have
    changed since ingest).
    """

    name: str
    """Path inside the edition: ``assets/<slug>/<file name>``."""
    source: Path
    """Resolved path of the file to read; always inside the source folder when ingested."""
    size: int
    """Size in bytes at ingest time."""


@dataclass(frozen=True)
class Article:
    """One article, ready to render: metadata checked, body sanitised, assets resolved.

    Raises `ValueError` on construction if the slug, an asset name, the date or
    the direction is unusable: these values become file names and page
    attributes, so they are checked here once instead of by every consumer.
    """

    slug: str
    """``[a-z0-9-]``, at most 80 characters, unique within an edition."""
    title: str
    date: datetime
    """Timezone-aware; normalised to UTC."""
    author: str
    """Empty when the source names no author."""
    language: str
    """BCP-47-ish tag such as ``ru``, ``en`` or ``ar``."""
    direction: Direction
    tags: tuple[str, ...]
    summary: str
    """Plain text, never HTML."""
    body_html: str
    """Sanitised HTML fragment (see `mirror.ingest.sanitize`); images point at ``../assets/``."""
    assets: tuple[Asset, ...] = field(default=())
    source: str = ""
    """File path or URL the article came from; for messages only, never rendered."""

    def __post_init__(self) -> None:
        """Check the values that become file names and normalise the date to UTC."""
        if not is_valid_slug(self.slug):
            raise ValueError(f"invalid slug {self.slug!r}")
        if self.date.utcoffset() is None:
            raise ValueError(f"article {self.slug!r}: date must be timezone-aware")
        object.__setattr__(self, "date", self.date.astimezone(UTC))
        if self.direction not in ("ltr", "rtl"):
            raise ValueError(f"article {self.slug!r}: direction must be 'ltr' or 'rtl'")
        prefix = f"assets/{self.slug}/"
        for asset in self.assets:
            file_name = asset.name.removeprefix(prefix)
            if file_name == asset.name or ASSET_FILE_PATTERN.fullmatch(file_name) is None:
                raise ValueError(f"article {self.slug!r}: invalid asset name {asset.name!r}")


@dataclass(frozen=True)
class IngestProblem:
    """An article (or file, or feed entry) that was skipped, and why, in plain words."""

    source: str
    """File path or URL."""
    reason: str


@dataclass(frozen=True)
class IngestLimits:
    """Caps on everything ingest reads; each stops a source from exhausting memory or time.

    The byte caps bound memory; the counts bound work, since the parsers are
    fast on what people write and super-linear on what attackers write (see
    `mirror.ingest.bounds`); ``article_cpu_s`` bounds what no cap foresaw.
    """

    max_article_bytes: int = 4 * 1024**2
    """Largest article file (or feed entry body) read into memory."""
    max_asset_bytes: int = 64 * 1024**2
    """Largest image or linked file copied into the edition."""
    max_feed_bytes: int = 32 * 1024**2
    """Largest feed document, counted after content decoding (so gzip bombs stop too)."""
    feed_timeout_s: float = 30.0
    """Wall-clock limit on the whole exchange with a feed server: every connect, status
    line, header, informational (1xx) answer, redirect and body byte."""
    max_front_matter_bytes: int = 256 * 1024
    """Largest front matter block (metadata, not the article)."""
    max_elements: int = 100_000
    """HTML elements in one article body (and XML plus HTML elements in one feed entry)."""
    max_depth: int = 10_000
    """Nesting of HTML or XML elements; html5ever's work grows with its square (10,000
    levels cost 0.15 s to sanitise, 80,000 cost 24 s)."""
    max_attributes: int = 64
    """Attributes on one element; feedparser's work grows with their square."""
    max_tags: int = 200
    """Tags of one article (front matter ``tags``, feed categories and keywords)."""
    max_names: int = 100
    """Names in one article's author list."""
    max_feed_elements: int = 200_000
    """XML elements in one feed document."""
    max_feed_entries: int = 2_000
    """Entries read from one feed; later ones are reported and left out."""
    article_cpu_s: float = 20.0
    """CPU time one article may take in a worker process before it is stopped and skipped."""


@dataclass(frozen=True)
class IngestResult:
    """What a source yielded: good articles, newest first, and the problems met on the way."""

    articles: tuple[Article, ...]
    """Sorted by date descending, then slug."""
    problems: tuple[IngestProblem, ...]


DEFAULT_LIMITS = IngestLimits()
"""The limits used when a caller passes none."""


def sort_articles(articles: Iterable[Article]) -> tuple[Article, ...]:
    """Articles ordered newest first, ties broken by slug, so any input order gives one output."""
    return tuple(sorted(sorted(articles, key=lambda a: a.slug), key=lambda a: a.date, reverse=True))


ARTICLE_HINT = (
    "Fix the article named above, or set on_article_error: skip to publish the others without it."
)


class ProblemLog:
    """Collects problems for one source run; in ``fail`` mode the first one raises instead.

    Used by the sources, not part of the public API.
    """

    def __init__(self, on_error: OnError) -> None:
        """Start an empty log; `on_error` must be ``"skip"`` or ``"fail"`` (else `ValueError`)."""
        if on_error not in ("skip", "fail"):
            raise ValueError(f"on_error must be 'skip' or 'fail', not {on_error!r}")
        self.on_error = on_error
        self.problems: list[IngestProblem] = []

    def add(self, source: str, reason: str) -> None:
        """Record a problem, or raise `ArticleError` for it in ``fail`` mode."""
        self.report(source, reason)

    def report(self, source: str, reason: str) -> IngestProblem:
        """Record a problem and return it (to yield), or raise `ArticleError` in ``fail`` mode."""
        if self.on_error == "fail":
            raise ArticleError(source, reason, hint=ARTICLE_HINT)
        problem = IngestProblem(source, reason)
        self.problems.append(problem)
        return problem

    def outcome(self, source: str, outcome: Article | str | Overrun) -> Article | IngestProblem:
        """What one parse job gave: its article, or its problem (reason or overrun) reported."""
        if isinstance(outcome, Article):
            return outcome
        return self.report(source, outcome.reason if isinstance(outcome, Overrun) else outcome)

    def first_slug_wins(
        self, items: Iterable[Article | IngestProblem]
    ) -> Iterator[Article | IngestProblem]:
        """``items`` with every article whose slug an earlier one took turned into a problem.

        Two pages cannot share ``articles/<slug>.html``, and silently letting
        one overwrite the other would let one source replace another's
        article, so the first article with a slug keeps it, in source order.
        In ``fail`` mode the first duplicate raises `ArticleError`.
        """
        taken: dict[str, str] = {}
        for item in items:
            if isinstance(item, Article) and item.slug in taken:
                reason = f"duplicate slug {item.slug!r} (already used by {taken[item.slug]})"
                yield self.report(item.source, reason)
            else:
                if isinstance(item, Article):
                    taken[item.slug] = item.source
                yield item

    def result(self, articles: Iterable[Article]) -> IngestResult:
        """The final result: `articles` sorted, problems in the order met."""
        return IngestResult(sort_articles(articles), tuple(self.problems))
