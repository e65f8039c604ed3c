"""Articles from an RSS 2.0 or Atom feed, read from a file or fetched over HTTP(S).

The feed is someone else's data on someone else's server, so every step is
bounded and every failure becomes our error:

- Fetching streams the body and stops at ``max_feed_bytes`` *after* content
  decoding (a gzip bomb stops at the cap too); an over-size
  ``Content-Length`` is refused before reading. Each network operation has
  ``feed_timeout_s``, and so does the whole download, so a server trickling
  one byte a second cannot hold a run forever. Redirects are followed by hand,
  at most `MAX_REDIRECTS`, and only to ``http``/``https``.
- Network failures, timeouts, 5xx, 401/403/408/429 raise `TransportError`
  (worth retrying); other HTTP errors, over-size bodies, redirect loops and
  documents that are not feeds raise `SourceError`. No httpx exception escapes.
- feedparser parses bytes (never a string, which it would treat as a URL or a
  file name to open). Its own cleaning runs, then ours (`sanitize_html`).
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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx

from mirror.errors import ArticleError, SourceError, TransportError
from mirror.ingest import bounds
from mirror.ingest.model import (
    DEFAULT_LIMITS,
    MAX_SLUG_CHARS,
    Article,
    IngestLimits,
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

MAX_REDIRECTS = 5
USER_AGENT = "mirror-ingest/0.1 (+feed reader for offline editions)"
_ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.1"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USERINFO = re.compile(r"(?<=://)[^/?#@]*@")
_RETRYABLE_STATUS = frozenset({401, 403, 407, 408, 425, 429})
_HASH_CHARS = 8
FEED_HINT = (
    "Check the feed's address in the configuration; open it in a browser to see what it serves."
)
LANGUAGE_HINT = "Use a language tag such as 'ru', 'en' or 'ar'."
_RSS_AUTHOR = re.compile(r"[^\s@()]+@[^\s()]+\s*\((.+)\)")


def load_feed(
    source: str,
    *,
    base_dir: Path,
    default_language: str,
    on_error: OnError,
    limits: IngestLimits = DEFAULT_LIMITS,
    client: httpx.Client | None = None,
) -> IngestResult:
    """Load the entries of the feed at `source`: an ``http(s)://`` URL or a path under `base_dir`.

    `client`, if given, is used for the request (its proxies, certificates,
    transport); the limits and the redirect cap here apply regardless. Raises
    `TransportError` or `SourceError` when the feed as a whole cannot be had
    (see the module docstring); a broken entry is a problem (``skip``) or an
    `ArticleError` (``fail``).
    """
    log = ProblemLog(on_error)
    language = normalize_language(default_language)
    if language is None:
        raise SourceError(
            f"default language {default_language!r} is not a language tag like 'ru'",
            hint=LANGUAGE_HINT,
        )
    if _URL.match(source):
        data = fetch_feed_bytes(source, limits=limits, client=client)
        base_url: str | None = source
    else:
        data = _read_feed_file(base_dir / source, limits.max_feed_bytes)
        base_url = None
    data, cut, numbers = _bounded(data, source, limits)
    for entry_number, reason in cut:
        log.add(f"{_shown(source)}#entry-{entry_number}", reason)
    parsed = _parse(data, source, base_url)
    feed_language = _entry_language(parsed.get("feed", {}).get("language"), language)

    articles: list[Article] = []
    slug_sources: dict[str, str] = {}
    entries = parsed.get("entries", [])
    if len(numbers) != len(entries):  # feedparser saw the entries otherwise: plain positions
        numbers = list(range(1, len(entries) + 1))
    for number, entry in zip(numbers, entries, strict=True):
        entry_source = _entry_source(entry, source, number)
        try:
            article = _article(entry, entry_source, feed_language, limits)
        except ArticleError as problem:
            log.add(entry_source, problem.reason)
            continue
        except Exception as error:  # the per-entry boundary: one bad entry never stops the run
            log.add(entry_source, f"could not be processed ({type(error).__name__}: {error})")
            continue
        if article.slug in slug_sources:
            log.add(
                entry_source,
                f"duplicate slug {article.slug!r} (already used by {slug_sources[article.slug]})",
            )
            continue
        slug_sources[article.slug] = entry_source
        articles.append(article)
    return log.result(articles)


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


def fetch_feed_bytes(
    url: str, *, limits: IngestLimits = DEFAULT_LIMITS, client: httpx.Client | None = None
) -> bytes:
    """Download `url` under the caps in `limits`; raises `TransportError` or `SourceError`."""
    if client is not None:
        return _download(client, url, limits)
    with httpx.Client(headers={"User-Agent": USER_AGENT}) as own_client:
        return _download(own_client, url, limits)


def _download(client: httpx.Client, url: str, limits: IngestLimits) -> bytes:
    deadline = time.monotonic() + limits.feed_timeout_s
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            request = client.build_request(
                "GET", current, headers={"Accept": _ACCEPT}, timeout=limits.feed_timeout_s
            )
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.InvalidURL as error:
            raise _source_error(f"feed URL {_shown(current)} is not valid: {error}") from error
        except httpx.HTTPError as error:
            raise _transport_error(error, current, limits) from error
        try:
            if response.is_redirect:
                current = _redirect_target(response, current)
                continue
            _check_status(response, current)
            return _read_capped(response, current, limits, deadline)
        finally:
            response.close()
    raise _source_error(f"feed {_shown(url)} redirects more than {MAX_REDIRECTS} times")


def _source_error(message: str) -> SourceError:
    return SourceError(message, hint=FEED_HINT)


def _shown(url: str) -> str:
    """`url` for messages: a ``user:password@`` part is removed, since errors end up in logs."""
    return _USERINFO.sub("", url, count=1)


def _redirect_target(response: httpx.Response, current: str) -> str:
    location = response.headers.get("location", "")
    try:
        target = response.url.join(location)
    except httpx.InvalidURL as error:
        raise _source_error(f"feed {_shown(current)} redirects to an invalid URL") from error
    if not location or target.scheme not in ("http", "https"):
        raise _source_error(
            f"feed {_shown(current)} redirects to an unsupported URL {_shown(location)!r}"
        )
    return str(target)


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    message = f"feed {_shown(url)} answered HTTP {status} {response.reason_phrase}".rstrip()
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise TransportError(message)
    raise _source_error(message)


def _read_capped(
    response: httpx.Response, url: str, limits: IngestLimits, deadline: float
) -> bytes:
    cap = limits.max_feed_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _source_error(f"feed {_shown(url)} is {declared} bytes, over the limit of {cap}")
    chunks: list[bytes] = []
    received = 0
    try:
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > cap:
                raise _source_error(f"feed {_shown(url)} is larger than the limit of {cap} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TransportError(
                    f"feed {_shown(url)} took longer than {limits.feed_timeout_s:g} s to download"
                )
    except httpx.DecodingError as error:
        raise _source_error(f"feed {_shown(url)} sent a body that cannot be decoded") from error
    except httpx.HTTPError as error:
        raise _transport_error(error, url, limits) from error
    return b"".join(chunks)


def _transport_error(
    error: httpx.HTTPError, url: str, limits: IngestLimits
) -> TransportError | SourceError:
    if isinstance(error, httpx.TimeoutException):
        return TransportError(f"feed {_shown(url)} timed out after {limits.feed_timeout_s:g} s")
    if isinstance(error, httpx.UnsupportedProtocol):
        return _source_error(f"feed URL {_shown(url)} uses an unsupported protocol")
    if isinstance(error, httpx.TooManyRedirects):
        return _source_error(f"feed {_shown(url)} redirects too many times")
    detail = str(error) or type(error).__name__
    return TransportError(f"cannot fetch feed {_shown(url)}: {detail}")


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
