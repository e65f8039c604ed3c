"""Articles from an RSS 2.0 or Atom feed, read from a file or fetched over HTTP(S).

The feed is someone else's data on someone else's server, so every step is
bounded and every failure becomes our error:

- Fetching (`mirror.ingest.feedfetch`) runs under one wall-clock deadline
  over the whole exchange, caps the body after content decoding, and
  refuses redirects to non-public addresses unless the source opts in.
  Network failures raise `TransportError`, everything else `SourceError`.
- Before feedparser runs, `mirror.ingest.bounds` counts the document's
  elements, depth, attributes and categories: a feed over the caps is
  refused, an entry over them is cut out and reported. Parsing the
  document, and making each entry's article, are jobs for the build's
  worker processes, each under the per-article CPU deadline.
- feedparser parses bytes (never a string, which it would treat as a URL or a
  file name to open). Its own sanitiser is off: ours (`sanitize_html`) runs once.
- Feed content refers to the publisher's site, so every image is removed:
  readers are offline, and a remote load would tell the censor who reads
  what. Links are kept when absolute ``http``/``https``/``mailto``; relative
  links that feedparser could not resolve are dropped. Feeds have no assets.
- The slug is the slugified title plus 8 hex digits of SHA-256 over the entry
  id (else its link), so it is stable across runs and editions and two entries
  with the same title do not collide.
- A language in the feed that is not a valid tag falls back to the default
  (the operator cannot fix a remote feed); a missing title or date, an
  over-size or empty entry is a problem for that entry only.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from mirror.errors import ArticleError, SourceError
from mirror.ingest import bounds
from mirror.ingest.feedfetch import FEED_HINT, fetch_feed_bytes, shown_url
from mirror.ingest.model import (
    DEFAULT_LIMITS,
    MAX_SLUG_CHARS,
    Article,
    IngestLimits,
    IngestProblem,
    IngestResult,
    OnError,
    ProblemLog,
    normalize_language,
    slugify,
    text_direction,
)
from mirror.ingest.sanitize import (
    collapse_whitespace,
    drop_all_urls,
    html_to_text,
    sanitize_html,
    summarize,
    unique_tags,
)
from mirror.ingest.workers import InlineRunner, Overrun, Runner

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HASH_CHARS = 8
LANGUAGE_HINT = "Use a language tag such as 'ru', 'en' or 'ar'."
_RSS_AUTHOR = re.compile(r"[^\s@()]+@[^\s()]+\s*\((.+)\)")


def load_feed(
    source: str,
    *,
    base_dir: Path,
    default_language: str,
    on_error: OnError,
    limits: IngestLimits = DEFAULT_LIMITS,
    allow_private_addresses: bool = False,
) -> IngestResult:
    """Load the entries of the feed at `source`: an ``http(s)://`` URL or a path under `base_dir`.

    Raises `TransportError` or `SourceError` when the feed as a whole cannot
    be had (see the module docstring); a broken entry is a problem (``skip``)
    or an `ArticleError` (``fail``).
    """
    log = ProblemLog(on_error)
    location = source if _URL.match(source) else str(base_dir / source)
    articles = [
        item
        for item in iter_feed(
            location,
            default_language=default_language,
            on_error=on_error,
            limits=limits,
            allow_private_addresses=allow_private_addresses,
            log=log,
        )
        if isinstance(item, Article)
    ]
    return log.result(articles)


def iter_feed(
    source: str,
    *,
    default_language: str,
    on_error: OnError,
    limits: IngestLimits = DEFAULT_LIMITS,
    allow_private_addresses: bool = False,
    runner: Runner | None = None,
    log: ProblemLog | None = None,
) -> Iterator[Article | IngestProblem]:
    """Yield each entry's article (or its problem), in feed order; ``source`` is an
    ``http(s)://`` URL or a file's path as it stands (a config's `FeedSource.location`).

    The feed is fetched here, under one deadline; parsing the document and
    making each entry's article are jobs for ``runner`` (a `WorkerPool` puts
    each under the CPU deadline, so one pathological entry is reported and
    skipped). ``allow_private_addresses`` lets redirects lead to loopback,
    link-local and private addresses (see `fetch_feed_bytes`).
    """
    problems = log or ProblemLog(on_error)
    run = runner or InlineRunner()
    document = read_feed(
        source,
        default_language=default_language,
        limits=limits,
        allow_private_addresses=allow_private_addresses,
        runner=run,
    )

    def parsed() -> Iterator[Article | IngestProblem]:
        for cut_source, reason in document.cut:
            yield problems.report(cut_source, reason)
        jobs = [
            (entry, entry_source, document.language, limits)
            for entry_source, entry in document.entries
        ]
        for job, outcome in zip(jobs, run.map(entry_article, jobs), strict=True):
            yield problems.outcome(job[1], outcome)

    yield from problems.first_slug_wins(parsed())


@dataclass(frozen=True)
class FeedDocument:
    """A fetched and parsed feed: its language, its entries, and the entries cut out."""

    language: str
    entries: list[tuple[str, Any]]
    """(the entry's source for messages, feedparser's entry), in feed order."""
    cut: list[tuple[str, str]]
    """(source, reason) of each entry left out by the caps."""


def read_feed(
    source: str,
    *,
    default_language: str,
    limits: IngestLimits,
    allow_private_addresses: bool,
    runner: Runner,
) -> FeedDocument:
    """Fetch the feed under one deadline and parse it with ``runner`` (see `iter_feed`)."""
    language = normalize_language(default_language)
    if language is None:
        raise SourceError(
            f"default language {default_language!r} is not a language tag like 'ru'",
            hint=LANGUAGE_HINT,
        )
    if _URL.match(source):
        data = fetch_feed_bytes(
            source, limits=limits, allow_private_addresses=allow_private_addresses
        )
        base_url: str | None = source
    else:
        data = _read_feed_file(Path(source), limits.max_feed_bytes)
        base_url = None
    (document,) = runner.map(_parse_document, [(data, source, base_url, language, limits)])
    del data
    if isinstance(document, Overrun):
        raise _source_error(f"{_shown(source)} {document.reason}")
    if isinstance(document, str):
        raise _source_error(document)
    feed_language, entries, cut, numbers = document
    return FeedDocument(
        language=feed_language,
        entries=[
            (_entry_source(entry, source, number), entry)
            for number, entry in zip(numbers, entries, strict=True)
        ],
        cut=[(f"{_shown(source)}#entry-{number}", reason) for number, reason in cut],
    )


_Document = tuple[str, list[Any], list[tuple[int, str]], list[int]]
"""What parsing a feed gives: its language, its entries, entries cut (number, reason), and
the original numbers of the entries kept."""


def _parse_document(job: tuple[bytes, str, str | None, str, IngestLimits]) -> _Document | str:
    """Parse one feed document (in a worker); a failure comes back as its sentence."""
    data, source, base_url, language, limits = job
    try:
        bounded, cut, numbers = _bounded(data, source, limits)
        parsed = _parse(bounded, source, base_url)
    except SourceError as error:
        return error.message
    feed_language = _entry_language(parsed.get("feed", {}).get("language"), language)
    entries = list(parsed.get("entries", []))
    if len(numbers) != len(entries):  # feedparser saw the entries otherwise: plain positions
        numbers = list(range(1, len(entries) + 1))
    return feed_language, entries, cut, numbers


def entry_article(job: tuple[Any, str, str, IngestLimits]) -> Article | str:
    """One entry's article (in a worker), or the reason it has none."""
    entry, source, feed_language, limits = job
    try:
        return _article(entry, source, feed_language, limits)
    except ArticleError as problem:
        return problem.reason
    except Exception as error:  # the per-entry boundary: one bad entry never stops the run
        return f"could not be processed ({type(error).__name__}: {error})"


def _bounded(
    data: bytes, source: str, limits: IngestLimits
) -> tuple[bytes, list[tuple[int, str]], list[int]]:
    """The document with over-cap entries cut out (see `mirror.ingest.bounds`).

    Returns the bytes feedparser may parse, (entry number, reason) for each
    entry cut, and the original numbers of the entries that remain.
    """
    text, codec = bounds.feed_text(data)
    scan = bounds.scan_feed(text, limits)
    if scan.problem is not None:
        raise _source_error(f"{_shown(source)} {scan.problem}; it is not read")
    if scan.cut and codec is not None:
        reasons = "; ".join(sorted({entry.reason for entry in scan.cut}))
        raise _source_error(f"{_shown(source)} cannot be read safely: {reasons}")
    kept_numbers = sorted(set(range(1, scan.entries + 1)) - {e.number for e in scan.cut})
    cut: list[tuple[int, str]] = []
    for entry in scan.cut:
        if entry.number <= limits.max_feed_entries:
            cut.append((entry.number, entry.reason))
    if scan.too_many_entries:
        first = limits.max_feed_entries + 1
        cut.append(
            (
                first,
                f"the feed has {scan.entries:,} entries; only the first "
                f"{limits.max_feed_entries:,} are read (entries {first:,} to {scan.entries:,} "
                "are left out)",
            )
        )
    if not scan.cut:
        return data, cut, kept_numbers
    return bounds.without_cut_entries(text, scan.cut).encode("latin-1"), cut, kept_numbers


def _source_error(message: str) -> SourceError:
    return SourceError(message, hint=FEED_HINT)


def _shown(url: str) -> str:
    """`url` for messages: a ``user:password@`` part is removed, since errors end up in logs."""
    return shown_url(url)


def _read_feed_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise _source_error(f"cannot read feed file {path}: {reason}") from error
    if len(data) > max_bytes:
        raise _source_error(f"feed file {path} is larger than the limit of {max_bytes} bytes")
    return data


def _parse(data: bytes, source: str, base_url: str | None) -> Any:
    headers = {"content-location": base_url} if base_url else {}
    try:
        # feedparser's own sanitiser is off: nh3 sanitises every body once, under caps.
        parsed = feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=False)
    except Exception as error:  # feedparser is foreign code parsing hostile bytes
        reason = type(error).__name__
        raise _source_error(f"{_shown(source)} cannot be parsed as a feed ({reason})") from error
    if not parsed.get("version") and not parsed.get("entries"):
        detail = parsed.get("bozo_exception")
        raise _source_error(
            f"{_shown(source)} is not an RSS or Atom feed" + (f" ({detail})" if detail else "")
        )
    return parsed


def _entry_source(entry: Any, source: str, number: int) -> str:
    link = entry.get("link")
    if isinstance(link, str) and link.startswith(("http://", "https://")):
        return link
    return f"{_shown(source)}#entry-{number}"


def _entry_language(value: object, default: str) -> str:
    if isinstance(value, str):
        return normalize_language(value) or default
    return default


def _article(entry: Any, source: str, feed_language: str, limits: IngestLimits) -> Article:
    title = _title(entry)
    if not title:
        raise ArticleError(source, "missing title")
    published = _date(entry, source)
    content = _content(entry)
    if content is None:
        raise ArticleError(source, "entry has no content or summary")
    body_source, language_value = content
    if len(body_source.encode("utf-8", "replace")) > limits.max_article_bytes:
        raise ArticleError(source, f"entry too large (over {limits.max_article_bytes} bytes)")
    language = _entry_language(language_value, feed_language)
    too_costly = bounds.html_problem(body_source, limits)
    if too_costly is not None:
        raise ArticleError(source, f"entry body {too_costly}")
    body_html = sanitize_html(
        body_source, rewrite_image_src=drop_all_urls, rewrite_link_href=drop_all_urls
    ).strip()
    body_text = html_to_text(body_html)
    if not body_text:
        raise ArticleError(source, "empty body after sanitising")
    summary = ""
    # feedparser copies the content into "summary" (with no summary_detail) when an
    # entry has none: only a summary the feed really gave is used as one.
    if entry.get("content") and isinstance(entry.get("summary_detail"), dict):
        summary = summarize(_detail_text(entry.get("summary_detail"), entry.get("summary")), 400)
    key = entry.get("id") or entry.get("link") or f"{title}\n{published.isoformat()}"
    return Article(
        slug=_slug(title, str(key)),
        title=title,
        date=published,
        author=_author(entry),
        language=language,
        direction=text_direction(language),
        tags=_tags(entry, source, limits),
        summary=summary or summarize(body_text),
        body_html=body_html,
        assets=(),
        source=source,
    )


def _detail_text(detail: Any, value: Any) -> str:
    """Plain text of a feedparser text construct, whichever type it declares."""
    text = value if isinstance(value, str) else ""
    kind = detail.get("type", "") if isinstance(detail, dict) else ""
    if "html" in kind:
        return html_to_text(text)
    return collapse_whitespace(text)


def _title(entry: Any) -> str:
    return _detail_text(entry.get("title_detail"), entry.get("title"))


def _date(entry: Any, source: str) -> datetime:
    for key in ("published", "updated"):
        parsed = entry.get(f"{key}_parsed")
        if parsed is not None:
            return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    raw = entry.get("published") or entry.get("updated")
    if raw:
        raise ArticleError(source, f"invalid date {raw!r}")
    raise ArticleError(source, "missing date (no published or updated)")


def _content(entry: Any) -> tuple[str, object] | None:
    """(HTML body, declared language) from full content if present, else the summary."""
    contents = [item for item in entry.get("content") or [] if isinstance(item, dict)]
    contents.sort(key=lambda item: "html" not in str(item.get("type", "")))
    candidates = [*contents, entry.get("summary_detail")]
    for item in candidates:
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        if not isinstance(value, str) or not value.strip():
            continue
        if "html" not in str(item.get("type", "text/html")):
            paragraphs = [p for p in re.split(r"\n\s*\n", value) if p.strip()]
            value = "".join(f"<p>{html.escape(p.strip())}</p>" for p in paragraphs)
        return value, item.get("language")
    return None


def _author(entry: Any) -> str:
    raw = entry.get("author")
    # RSS puts "email (Name)" here; feedparser mangles non-ASCII names in that form.
    match = _RSS_AUTHOR.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match:
        return collapse_whitespace(match.group(1))
    detail = entry.get("author_detail")
    if isinstance(detail, dict) and isinstance(detail.get("name"), str):
        return collapse_whitespace(detail["name"])
    author = entry.get("author")
    return collapse_whitespace(author) if isinstance(author, str) else ""


def _tags(entry: Any, source: str, limits: IngestLimits) -> tuple[str, ...]:
    raw = entry.get("tags") or []
    if len(raw) > limits.max_tags:  # the pre-parse scan cuts such entries; this is the rule
        raise ArticleError(source, f"entry has {len(raw):,} categories (limit {limits.max_tags})")
    terms = [tag.get("term") for tag in raw if isinstance(tag, dict)]
    return unique_tags(term for term in terms if isinstance(term, str))


def _slug(title: str, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:_HASH_CHARS]
    words = slugify(title, max_chars=MAX_SLUG_CHARS - _HASH_CHARS - 1) or "entry"
    return f"{words}-{digest}"
