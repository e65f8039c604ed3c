"""Articles from a folder of Markdown and HTML files with YAML front matter.

Each ``*.md``, ``*.markdown``, ``*.html`` or ``*.htm`` file under the root
(recursively, in sorted order) is one article::

    ---
    title: Как читать нас, если сайт заблокирован
    date: 2024-03-01T09:00:00+03:00
    author: Редакция
    language: ru
    tags: [инструкции, доступ]
    ---
    Текст статьи в Markdown…

Required keys: ``title``, ``date`` (ISO 8601; a bare date means midnight
UTC, a time without offset means UTC). Optional: ``author`` (text or a list),
``language`` (default: the source's default), ``slug`` (default: from the
file name, Cyrillic transliterated), ``tags`` (a list or one text),
``summary`` (default: the first ~200 characters of the text). Other keys are
ignored, so exports from other tools load as they are.

What is refused, and why:

- Hidden files and folders are skipped (``.git``, editor swap files); folders
  reached through symlinks are not entered, and a file symlink that resolves
  outside the root is a problem, not a read: it would publish whatever the
  link points to (``/etc/passwd``, a private key).
- Files larger than ``max_article_bytes``, non-regular files (FIFOs would
  block the run forever), and bytes that are not strict UTF-8.
- Front matter goes through PyYAML's safe loader only (no object
  construction) under `mirror.yamlbounds` caps: at most
  ``max_front_matter_bytes``, 16 levels deep, and a bounded number of values
  and characters counted with aliases expanded, so an alias bomb is a
  problem, not a stall. Anything but a mapping, values of the wrong type, more
  than ``max_tags`` tags or ``max_names`` authors are problems.
- The body (HTML, or Markdown once rendered) is checked against the element,
  depth and attribute caps of `mirror.ingest.bounds` before it is sanitised.
- Images and linked files must be relative paths that resolve (symlinks
  followed) inside the root, to a regular, non-hidden file of an allowed type
  within ``max_asset_bytes``: ``../../etc/passwd`` is a problem, not an asset.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from mirror import fsutil, yamlbounds
from mirror.errors import ArticleError, NotARegularFileError, SourceError
from mirror.ingest.bounds import html_problem
from mirror.ingest.markdown import markdown_to_html
from mirror.ingest.model import (
    DEFAULT_LIMITS,
    Article,
    Asset,
    IngestLimits,
    IngestProblem,
    IngestResult,
    OnError,
    ProblemLog,
    is_valid_slug,
    normalize_language,
    slugify,
    text_direction,
)
from mirror.ingest.sanitize import (
    collapse_whitespace,
    html_to_text,
    sanitize_html,
    strip_invalid_chars,
    summarize,
    unique_tags,
)
from mirror.ingest.workers import InlineRunner, Runner

ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".html", ".htm"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif"})
"""Image types copied into an edition. No SVG: opened on its own from ``file://`` it runs script."""

LINKED_FILE_SUFFIXES = IMAGE_SUFFIXES | frozenset(
    {".pdf", ".epub", ".txt", ".csv", ".mp3", ".m4a", ".ogg", ".opus", ".mp4", ".webm", ".zip"}
)
"""Files an article may link to. No HTML, SVG or XML: opened by a reader, they could run script."""

FOLDER_HINT = "Check the article folder's path in the configuration."
LANGUAGE_HINT = "Use a language tag such as 'ru', 'en' or 'ar'."
_BOM = b"\xef\xbb\xbf"


def load_directory(
    root: Path,
    *,
    default_language: str,
    on_error: OnError,
    limits: IngestLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Load every article file under `root`.

    A broken article becomes an `IngestProblem` naming the file (``skip``) or
    raises `ArticleError` (``fail``); a slug used twice is a problem for the
    later file in sorted order. Raises `SourceError` if `root` is not a
    readable folder or `default_language` is not a language tag, and
    `ValueError` for an unknown `on_error`.
    """
    log = ProblemLog(on_error)
    articles = [
        item
        for item in iter_directory(
            root, default_language=default_language, on_error=on_error, limits=limits, log=log
        )
        if isinstance(item, Article)
    ]
    return log.result(articles)


def iter_directory(
    root: Path,
    *,
    default_language: str,
    on_error: OnError,
    limits: IngestLimits = DEFAULT_LIMITS,
    runner: Runner | None = None,
    log: ProblemLog | None = None,
) -> Iterator[Article | IngestProblem]:
    """Yield each article (or the problem with it) in sorted file order, one at a time.

    Memory stays flat however many articles there are: nothing is kept but
    the slugs seen. ``runner`` parses the files: a `WorkerPool` (worker
    processes, each article under ``limits.article_cpu_s`` of CPU time) or,
    by default, this process; either way articles come back in file order,
    so output does not depend on timing. Problems are yielded as
    `IngestProblem` (``skip``) or raised (``fail``).
    """
    problems = log or ProblemLog(on_error)
    resolved_root, language = open_directory(root, default_language)

    reported = len(problems.problems)
    files, named = itertools.tee(article_files(resolved_root, root, language, limits, problems))
    early = problems.problems[reported:]

    def parsed() -> Iterator[Article | IngestProblem]:
        yield from early
        jobs = ((file, read_article(file)) for file in files)
        outcomes = (runner or InlineRunner()).map(_parse_job, jobs)
        for file, outcome in zip(named, outcomes, strict=True):
            result = outcome.result if isinstance(outcome, ParsedFile) else outcome
            yield problems.outcome(file.source, result)

    yield from problems.first_slug_wins(parsed())


@dataclass(frozen=True)
class ArticleFile:
    """One article file of a folder source: where it is, how messages name it, what it may use."""

    path: Path
    """The file, under the resolved root (it may be a symlink that stays inside)."""
    source: str
    """The file as messages name it (under the root as configured)."""
    root: Path
    """The resolved root: images and linked files must resolve inside it."""
    language: str
    """The source's default language, normalised."""
    limits: IngestLimits


def open_directory(root: Path, default_language: str) -> tuple[Path, str]:
    """The resolved root and the normalised default language, or `SourceError`."""
    language = normalize_language(default_language)
    if language is None:
        raise SourceError(
            f"default language {default_language!r} is not a language tag like 'ru'",
            hint=LANGUAGE_HINT,
        )
    try:
        resolved_root = root.resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise SourceError(
            f"cannot open article folder {root}: {_describe(error)}", hint=FOLDER_HINT
        ) from error
    if not resolved_root.is_dir():
        raise SourceError(f"article source {root} is not a folder", hint=FOLDER_HINT)
    return resolved_root, language


def article_files(
    resolved_root: Path, root: Path, language: str, limits: IngestLimits, log: ProblemLog
) -> Iterator[ArticleFile]:
    """Every article file under ``resolved_root`` in sorted order; what cannot be used is logged.

    The folder is walked (and problems logged) before the first file is
    given; only the names are kept, each `ArticleFile` is made as it is asked
    for (as paths, 100,000 files took about 100 MB).
    """
    names = _article_files(resolved_root, root, log)

    def files() -> Iterator[ArticleFile]:
        for rel in names:
            yield article_file(resolved_root, root, rel, language, limits)

    return files()


@dataclass(frozen=True)
class ParsedFile:
    """What parsing one file gave, with what its images and links asked of the file system.

    ``references`` are the asset look-ups the sanitiser made, in order; given
    them, `replay_references` finds out without parsing whether the file's
    images and links still resolve as they did (the build cache uses it).
    """

    result: Article | str
    """The article, or the reason there is none."""
    references: tuple[tuple[str, str], ...] = ()
    assets: tuple[Asset, ...] = ()
    asset_problems: tuple[str, ...] = ()


def read_article(file: ArticleFile) -> bytes | str:
    """The file's bytes (bounded, never blocking on a FIFO), or the reason they cannot be had."""
    try:
        return _read_bytes(file.path, file.source, file.limits.max_article_bytes)
    except ArticleError as problem:
        return problem.reason


def _parse_job(job: tuple[ArticleFile, bytes | str]) -> ParsedFile:
    """Parse one article file's bytes; a problem comes back as its reason (exceptions do not
    pickle)."""
    file, data = job
    if isinstance(data, str):
        return ParsedFile(data)
    return parse_article(file, data)


def parse_article(file: ArticleFile, data: bytes) -> ParsedFile:
    """The article in ``data`` (the bytes of ``file``), or the reason it has none."""
    collector: list[_AssetCollector] = []
    try:
        article = _load_article(file, data, collector)
    except ArticleError as problem:
        return _parsed(problem.reason, collector)
    except Exception as error:  # the per-article boundary: one bad file never stops the run
        return _parsed(f"could not be processed ({type(error).__name__}: {error})", collector)
    return _parsed(article, collector)


def _parsed(result: Article | str, collector: list[_AssetCollector]) -> ParsedFile:
    if not collector:
        return ParsedFile(result)
    assets = collector[0]
    return ParsedFile(
        result, tuple(assets.references), tuple(assets.assets), tuple(assets.problems)
    )


def replay_references(
    file: ArticleFile, slug: str, references: Iterable[tuple[str, str]]
) -> tuple[tuple[Asset, ...], tuple[str, ...]]:
    """The assets and asset problems the same look-ups give now (no parsing)."""
    assets = _AssetCollector(
        article_folder=file.path.parent, root=file.root, slug=slug, limits=file.limits
    )
    for kind, url in references:
        if kind == "image":
            assets.image(url)
        else:
            assets.link(url)
    return tuple(assets.assets), tuple(assets.problems)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def is_article_name(relative: str) -> bool:
    """Whether the file at ``relative`` (a POSIX path under a folder source) is read as an
    article: no hidden part, an article suffix (`_article_files` walks by this rule)."""
    parts = relative.split("/")
    if any(part.startswith(".") for part in parts):
        return False
    name = parts[-1]  # its suffix as PurePosixPath gives it, without making a path of it
    dot = name.rfind(".")
    return 0 < dot < len(name) - 1 and name[dot:].lower() in ARTICLE_SUFFIXES


def article_file(
    resolved_root: Path, root: Path, relative: str, language: str, limits: IngestLimits
) -> ArticleFile:
    """The `ArticleFile` at ``relative`` under a folder source, as `article_files` makes it.

    The paths are made from joined text: a path made from ``relative`` itself would put
    that very string, which `article_files` keeps for the whole build, in Python's table
    of interned strings (7.7 MB of table at 100,000 articles).
    """
    return ArticleFile(
        Path(_joined(resolved_root, relative)),
        _joined(root, relative),
        resolved_root,
        language,
        limits,
    )


def _joined(folder: Path, relative: str) -> str:
    """``str(folder / relative)`` for ``relative`` of plain segments, as new text."""
    shown = str(folder)
    return relative if shown == "." else os.path.join(shown, relative)


def _article_files(root: Path, shown_root: Path, log: ProblemLog) -> list[str]:
    """Relative POSIX paths of article files under `root`, sorted by their parts, hidden and
    escaping links skipped."""

    def folder_error(error: OSError) -> None:
        log.add(str(error.filename or shown_root), f"cannot read folder: {_describe(error)}")

    found: list[str] = []
    for folder, subfolders, files in os.walk(root, onerror=folder_error, followlinks=False):
        # Hidden folders (.git, .cache) are never articles; symlinked folders are not
        # entered (os.walk does not follow them), which also rules out loops.
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        here = Path(folder).relative_to(root)
        prefix = f"{here.as_posix()}/" if here.parts else ""
        for name in sorted(files):
            if not is_article_name(name):
                continue
            # Names stay text: a path made of each name would put it in Python's table of
            # interned strings while the folder's list lives (its table grows to hold them all).
            relative = f"{prefix}{name}"
            if os.path.islink(os.path.join(folder, name)):
                path = Path(folder, name)
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    log.add(str(shown_root / relative), "broken symbolic link")
                    continue
                if not target.is_relative_to(root):
                    log.add(
                        str(shown_root / relative),
                        "symbolic link points outside the article folder; not read",
                    )
                    continue
            found.append(relative)
    return sorted(found, key=lambda rel: rel.split("/"))


def _load_article(file: ArticleFile, data: bytes, collector: list[_AssetCollector]) -> Article:
    path, source, root, limits = file.path, file.source, file.root, file.limits
    text = _decode(data, source)
    metadata, body, body_line = _split_front_matter(text, source, limits)
    title = _title(metadata.get("title"), source)
    published = _date(metadata.get("date"), source)
    author = _author(metadata.get("author"), source, limits)
    language = _language(metadata.get("language"), source, file.language)
    slug = _slug(metadata.get("slug"), path, source)
    tags = _tags(metadata.get("tags"), source, limits)
    summary = _optional_text(metadata.get("summary"), "summary", source)

    raw_html = markdown_to_html(body) if path.suffix.lower() in MARKDOWN_SUFFIXES else body
    too_costly = html_problem(raw_html, limits)
    if too_costly is not None:
        raise ArticleError(source, f"body {too_costly}")
    assets = _AssetCollector(article_folder=path.parent, root=root, slug=slug, limits=limits)
    collector.append(assets)
    body_html = sanitize_html(
        raw_html, rewrite_image_src=assets.image, rewrite_link_href=assets.link
    ).strip()
    if assets.problems:
        raise ArticleError(source, "; ".join(assets.problems))
    body_text = html_to_text(body_html)
    if not body_text and "<img" not in body_html:
        raise ArticleError(source, f"empty body after sanitising (body starts at line {body_line})")
    return Article(
        slug=slug,
        title=title,
        date=published,
        author=author,
        language=language,
        direction=text_direction(language),
        tags=tags,
        summary=collapse_whitespace(summary) if summary else summarize(body_text),
        body_html=body_html,
        assets=tuple(assets.assets),
        source=source,
    )


def _read_bytes(path: Path, source: str, max_bytes: int) -> bytes:
    """The file's bytes: a regular file of at most ``max_bytes``, opened without blocking."""
    try:
        fd, info = fsutil.open_regular(path)
    except NotARegularFileError as error:
        raise ArticleError(source, "not a regular file") from error
    except OSError as error:
        raise ArticleError(source, f"cannot read file: {_describe(error)}") from error
    try:
        if info.st_size > max_bytes:
            raise ArticleError(source, f"file too large ({info.st_size} bytes, limit {max_bytes})")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(max_bytes + 1)  # the file may have grown since fstat()
    except OSError as error:
        raise ArticleError(source, f"cannot read file: {_describe(error)}") from error
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ArticleError(source, f"file too large (over {max_bytes} bytes)")
    return data


def _decode(data: bytes, source: str) -> str:
    """The bytes as text: strict UTF-8, BOM and CR line ends removed."""
    offset = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArticleError(source, f"not valid UTF-8 at byte {error.start + offset}") from error
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _front_matter_limits(limits: IngestLimits) -> yamlbounds.YamlLimits:
    """Metadata is a dozen values; lists of tags and authors are the longest part."""
    return yamlbounds.YamlLimits(
        max_depth=16,
        max_values=4 * (limits.max_tags + limits.max_names) + 1000,
        max_text_chars=2 * limits.max_front_matter_bytes,
    )


def _split_front_matter(
    text: str, source: str, limits: IngestLimits
) -> tuple[dict[str, object], str, int]:
    """(metadata, body, first line number of the body) from text that starts with ``---``."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        raise ArticleError(
            source, "no front matter: the file must start with a '---' line, then title and date"
        )
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            end = index
            break
    else:
        raise ArticleError(source, "front matter is not closed by a '---' line")
    front = "\n".join(lines[1:end])
    if len(front) > limits.max_front_matter_bytes:
        raise ArticleError(
            source,
            f"front matter is larger than {limits.max_front_matter_bytes // 1024} KiB "
            "(it holds metadata; the text goes after the closing '---')",
        )

    def fail(line: int, problem: str) -> ArticleError:
        return ArticleError(source, f"front matter is not usable YAML (line {line + 1}: {problem})")

    try:
        loaded = yamlbounds.load(front, limits=_front_matter_limits(limits), fail=fail)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 2}: " if mark is not None else ""
        raise ArticleError(
            source, f"front matter is not valid YAML ({where}{error.problem or error.context})"
        ) from error
    except (yaml.YAMLError, ValueError, OverflowError) as error:
        # ValueError: a date or number PyYAML matched but cannot make (2024-13-45).
        detail = f" ({error})" if isinstance(error, ValueError | OverflowError) else ""
        raise ArticleError(source, f"front matter is not valid YAML{detail}") from error
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ArticleError(
            source,
            f"front matter must be a mapping of keys to values, not {_yaml_type(loaded)}",
        )
    metadata = {str(key): value for key, value in loaded.items()}
    return metadata, "\n".join(lines[end + 1 :]), end + 2


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "plain text"
    return f"a {type(value).__name__}"


def _scalar_text(value: object) -> str | None:
    """Text of a YAML scalar a human would read as text (1984 is a fine title; True is not)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _title(value: object, source: str) -> str:
    if value is None:
        raise ArticleError(source, "missing title")
    text = _scalar_text(value)
    if text is None:
        raise ArticleError(source, f"title must be text, not {_yaml_type(value)}")
    title = collapse_whitespace(text)
    if not title:
        raise ArticleError(source, "missing title")
    return title


def _date(value: object, source: str) -> datetime:
    """UTC datetime from a YAML timestamp, date or ISO 8601 text; naive times are UTC."""
    if value is None or value == "":
        raise ArticleError(source, "missing date")
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise ArticleError(
            source,
            f"invalid date {value!r}: use ISO 8601, like 2024-03-01 or 2024-03-01T09:00:00+03:00",
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _author(value: object, source: str, limits: IngestLimits) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        if len(value) > limits.max_names:
            raise ArticleError(
                source, f"author lists {len(value):,} names (limit {limits.max_names})"
            )
        names = [_scalar_text(item) for item in value]
        if any(name is None for name in names):
            raise ArticleError(source, "author must be text or a list of names")
        return ", ".join(collapse_whitespace(name) for name in names if name)
    text = _scalar_text(value)
    if text is None:
        raise ArticleError(source, f"author must be text, not {_yaml_type(value)}")
    return collapse_whitespace(text)


def _language(value: object, source: str, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, bool):  # YAML 1.1 reads an unquoted `no` (Norwegian) as False
        raise ArticleError(source, f"invalid language {value!r}: quote the tag, like 'no'")
    language = normalize_language(value) if isinstance(value, str) else None
    if language is None:
        raise ArticleError(source, f"invalid language {value!r}: use a tag like 'ru', 'en', 'ar'")
    return language


def _slug(value: object, path: Path, source: str) -> str:
    if value is None:
        slug = slugify(path.stem)
        if not slug:
            raise ArticleError(
                source, "cannot make a slug from the file name; set 'slug' in the front matter"
            )
        return slug
    if not isinstance(value, str) or not is_valid_slug(value):
        raise ArticleError(
            source,
            f"invalid slug {value!r}: use lowercase letters, digits and single hyphens,"
            " at most 80 characters",
        )
    return value


def _tags(value: object, source: str, limits: IngestLimits) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if len(items) > limits.max_tags:
        raise ArticleError(source, f"has {len(items):,} tags (limit {limits.max_tags})")
    texts: list[str] = []
    for item in items:
        text = _scalar_text(item)
        if text is None:
            raise ArticleError(source, "tags must be a list of words")
        texts.append(text)
    return unique_tags(texts)


def _optional_text(value: object, key: str, source: str) -> str:
    if value is None:
        return ""
    text = _scalar_text(value)
    if text is None:
        raise ArticleError(source, f"{key} must be text, not {_yaml_type(value)}")
    return strip_invalid_chars(text)


def safe_file_name(name: str) -> str:
    """An asset file name made of ``[a-z0-9._-]``: ``Фото 1.JPG`` becomes ``foto-1.jpg``."""
    path = Path(name)
    suffix = path.suffix.lower()
    if not suffix[1:].isascii() or not suffix[1:].isalnum() or len(suffix) > 11:
        suffix = ""
    stem = slugify(path.stem if suffix else name, max_chars=80) or "file"
    return stem + suffix


@dataclass
class _AssetCollector:
    """Turns an article's relative image and link URLs into edition assets.

    Its methods are called by nh3 from inside the sanitiser, in document order,
    so they record problems instead of raising (an exception there would only
    drop the attribute silently).
    """

    article_folder: Path
    root: Path
    slug: str
    limits: IngestLimits

    def __post_init__(self) -> None:
        self.assets: list[Asset] = []
        self.problems: list[str] = []
        self.references: list[tuple[str, str]] = []
        """Every look-up, in order: ("image" or "link", url), for `replay_references`."""
        self._by_source: dict[Path, Asset] = {}
        self._names: set[str] = set()

    def image(self, url: str) -> str | None:
        """Edition URL for an ``img src``; data:, absolute and remote sources never reach here."""
        self.references.append(("image", url))
        return self._resolve(url, IMAGE_SUFFIXES, kind="image")

    def link(self, url: str) -> str | None:
        """Edition URL for a link to a local file, or None to drop the href (other articles)."""
        self.references.append(("link", url))
        path = unquote(urlsplit(url).path)
        if Path(path).suffix.lower() in ARTICLE_SUFFIXES:
            return None  # links between source files do not survive into the edition
        return self._resolve(url, LINKED_FILE_SUFFIXES, kind="linked file")

    def _resolve(self, url: str, suffixes: frozenset[str], *, kind: str) -> str | None:
        relative = unquote(urlsplit(url).path)
        if not relative:
            return None
        try:
            target = (self.article_folder / relative).resolve()
        except (OSError, RuntimeError, ValueError):
            self.problems.append(f"cannot resolve {kind} {url!r}")
            return None
        if not target.is_relative_to(self.root):
            self.problems.append(f"{kind} outside the article folder: {url!r}")
            return None
        if any(part.startswith(".") for part in target.relative_to(self.root).parts):
            self.problems.append(f"{kind} is a hidden file: {url!r}")
            return None
        if target in self._by_source:
            return "../" + self._by_source[target].name
        try:
            info = target.stat()
        except FileNotFoundError:
            self.problems.append(f"missing {kind}: {url!r}")
            return None
        except (OSError, ValueError) as error:
            self.problems.append(f"cannot read {kind} {url!r}: {_describe(error)}")
            return None
        if not stat.S_ISREG(info.st_mode):
            self.problems.append(f"{kind} is not a regular file: {url!r}")
            return None
        if target.suffix.lower() not in suffixes:
            allowed = ", ".join(sorted(suffix[1:] for suffix in suffixes))
            self.problems.append(f"{kind} type not allowed: {url!r} (allowed: {allowed})")
            return None
        if info.st_size > self.limits.max_asset_bytes:
            self.problems.append(
                f"{kind} too large: {url!r} ({info.st_size} bytes,"
                f" limit {self.limits.max_asset_bytes})"
            )
            return None
        asset = Asset(name=self._allocate_name(target.name), source=target, size=info.st_size)
        self._by_source[target] = asset
        self.assets.append(asset)
        return "../" + asset.name

    def _allocate_name(self, file_name: str) -> str:
        """``assets/<slug>/<file>``; a second, different file called the same gets ``2-<file>``."""
        base = safe_file_name(file_name)
        candidate, counter = base, 1
        while candidate in self._names:
            counter += 1
            candidate = f"{counter}-{base}"
        self._names.add(candidate)
        return f"assets/{self.slug}/{candidate}"
