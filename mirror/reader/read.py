"""`mirror read`: open a verified edition from the reader's library, offline.

The library (`mirror.reader.store`) holds only editions that were verified
against signed hashes before they were placed, so reading needs no network
and no new trust decision: pick the publisher, pick the edition (the newest
by default), hand the reader its ``index.html``. An edition *file* (a ZIP
from a messenger or a USB stick) is verified first, exactly as
`mirror verify` does, and lands in the library as a complete folder or not
at all.

``--serve`` exists for browsers that are unhappy with ``file://``: a tiny
read-only web server on 127.0.0.1 that serves the one edition folder and
nothing else. Its checks, and what each stops:

- bound to 127.0.0.1 only, never another address: nobody on the network can
  see what the reader reads;
- a ``Host`` header other than ``127.0.0.1:PORT`` or ``localhost:PORT`` is
  refused: a web page that rebinds its own domain name to 127.0.0.1 (DNS
  rebinding) cannot read the edition or learn which one the reader has;
- request paths are decoded once, and any ``..``, ``.``, empty or hidden
  segment, backslash or NUL is refused; the resolved real path must lie
  inside the edition folder and be a regular file, opened without following
  links: no traversal, no symlink escapes, no directory listings;
- every answer carries ``Cache-Control: no-store`` (nothing lingers in a
  browser cache), the pages' own Content-Security-Policy as a header, and
  ``nosniff``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from tuf.api.metadata import Metadata, Root

from mirror import caps, fsutil
from mirror.csp import CONTENT_SECURITY_POLICY
from mirror.errors import MirrorError, RollbackError, StorageError, UsageError
from mirror.reader.store import LibraryEdition, PublisherStore, ReaderStore
from mirror.reader.verify_file import Verdict, verify_edition
from mirror.trust import layout
from mirror.trust.publisher import publisher_of
from mirror.trust.verify import EditionInfo, parse_edition_info

MAX_INDEX_BYTES = 64 * 1024 * 1024
"""An index of 10,000 articles is about 5 MB; anything past this cap is refused."""
MAX_INDEX_ENTRIES = 200_000
MAX_FIELD_CHARS = 4096
"""Longest title, author or summary kept from the index (longer text is cut)."""
SERVE_CHUNK_BYTES = 256 * 1024
SERVE_TIMEOUT_S = 30.0
"""A browser connection idle this long is closed, so stalled clients cannot pile up threads."""

GET_AN_EDITION_HINT = (
    "Get one with `mirror fetch --root ROOT.json --mirror URL`, "
    "or open an edition file with `mirror read FILE.zip --root ROOT.json`."
)
_ARTICLE_FILE = re.compile(r"^articles/[^/\\]+\.html$")


@dataclass(frozen=True)
class ArticleEntry:
    """One article as the edition's own ``index.html`` lists it."""

    title: str
    date: str
    """As the page carries it: RFC 3339 in UTC, e.g. ``2026-11-20T10:00:00Z``."""
    language: str
    direction: str
    author: str
    summary: str
    file: str
    """Path inside the edition folder, always ``articles/<slug>.html``."""


@dataclass(frozen=True)
class EditionSummary:
    """One edition in the library, described by its verified ``edition.json``."""

    eid: str
    version: int
    title: str
    publisher: str
    created: datetime
    expires: datetime
    articles: int
    path: Path

    @property
    def index(self) -> Path:
        """The page a reader opens first."""
        return self.path / "index.html"

    @property
    def index_url(self) -> str:
        """``file://`` URL of the index page."""
        return self.index.resolve().as_uri()


# --- choosing publisher and edition ----------------------------------------------


def choose_publisher(store: ReaderStore, pinned: Metadata[Root] | None) -> PublisherStore:
    """The publisher to read: the pinned root's, or the only one the store has editions of.

    Without a pinned root, a store with editions of exactly one publisher is
    unambiguous; several publishers need ``--root`` to say which.
    """
    if pinned is not None:
        return store.publisher(publisher_of(pinned.signed).publisher_id)
    publishers = [store.publisher(p) for p in store.publishers()]
    if len(publishers) == 1:
        return publishers[0]
    with_editions = [p for p in publishers if p.editions()]
    if len(with_editions) == 1:
        return with_editions[0]
    if not with_editions:
        raise no_library_error(store.directory)
    raise UsageError(
        f"your library in {store.directory} holds editions of {len(with_editions)} publishers",
        hint="Say whose edition to read with --root ROOT.json (the root.json you pinned).",
    )


def no_library_error(where: Path) -> UsageError:
    """The error for a reader who has no edition yet."""
    return UsageError(
        f"there is no edition in your library ({where}) yet", hint=GET_AN_EDITION_HINT
    )


def open_edition(
    store: ReaderStore,
    edition: str | None,
    *,
    pinned: Metadata[Root] | None,
    now: datetime,
    allow_expired: bool = False,
) -> tuple[PublisherStore, LibraryEdition]:
    """Publisher and edition for `mirror read` (see `choose_publisher` and `select_edition`)."""
    if edition is not None and pinned is None and is_edition_file(edition):
        raise _needs_root(Path(edition))
    publisher = choose_publisher(store, pinned)
    return publisher, select_edition(
        publisher, edition, pinned=pinned, now=now, allow_expired=allow_expired
    )


def is_edition_file(edition: str | None) -> bool:
    """Whether `mirror read EDITION` names an edition file rather than an edition id."""
    return (
        edition is not None and not layout.EDITION_ID_RE.match(edition) and Path(edition).is_file()
    )


def _needs_root(path: Path) -> UsageError:
    return UsageError(
        f"reading the edition file {path} needs the publisher's root.json to verify it",
        hint=f"Run `mirror read {path} --root ROOT.json` with the root.json you pinned.",
    )


def select_edition(
    publisher: PublisherStore,
    edition: str | None,
    *,
    pinned: Metadata[Root] | None,
    now: datetime,
    allow_expired: bool = False,
) -> LibraryEdition:
    """The edition to open: the newest, one by id, or an edition file verified into the library."""
    if edition is None:
        latest = publisher.latest()
        if latest is None:
            raise no_library_error(publisher.path)
        return latest
    if layout.EDITION_ID_RE.match(edition):
        found = publisher.find(edition)
        if found is not None:
            return found
        if not Path(edition).is_file():
            have = [e.eid for e in publisher.editions()]
            raise UsageError(
                f"edition {edition} is not in your library",
                hint=(f"Your editions: {', '.join(have)}." if have else GET_AN_EDITION_HINT),
            )
    path = Path(edition)
    if not path.is_file():
        raise UsageError(
            f"{edition} is neither an edition in your library nor an edition file",
            hint="`mirror read --list` shows your editions; a file must be an edition .zip.",
        )
    if pinned is None:
        raise _needs_root(path)
    installed, _ = add_edition_file(
        path, publisher=publisher, pinned=pinned, now=now, allow_expired=allow_expired
    )
    return installed


def add_edition_file(
    path: Path,
    *,
    publisher: PublisherStore,
    pinned: Metadata[Root],
    now: datetime,
    allow_expired: bool = False,
) -> tuple[LibraryEdition, Verdict]:
    """Verify the edition file at ``path`` and place it in the library (if not there yet).

    Verification extracts into a fresh staging folder inside the library
    (same file system), which is renamed to ``library/<edition id>`` only once
    everything verified; an edition already in the library is left as it is.
    A crash leaves at most a folder in the store's scratch, which the next run
    sweeps away.
    """
    editions_dir = publisher.library_dir
    fsutil.ensure_dir(editions_dir)
    publisher.sweep_scratch()
    staging = publisher.scratch("read")
    try:
        extracted = staging / "edition"
        try:
            verdict = verify_edition(
                path,
                pinned=pinned,
                trust=publisher.trust(),
                now=now,
                allow_expired=allow_expired,
                extract_to=extracted,
            )
        except RollbackError as error:
            raise RollbackError(
                error.message,
                hint=f"{error.hint} Editions you already have open by id: `mirror read --list`.",
            ) from error
        publisher.apply(verdict.update)
        existing = publisher.find(verdict.eid)
        if existing is not None:
            return existing, verdict
        final = editions_dir / verdict.eid
        try:
            if final.exists():  # an incomplete leftover (no edition.json): replace it
                shutil.rmtree(final)
            os.replace(extracted, final)
        except OSError as error:
            raise StorageError(
                f"cannot place edition {verdict.eid} in {final} ({error.strerror})"
            ) from error
        fsutil.fsync_dir(editions_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    installed = publisher.find(verdict.eid)
    if installed is None:  # unreachable: edition.json is a verified member
        raise StorageError(f"edition {verdict.eid} did not land in {editions_dir}")
    return installed, verdict


# --- describing editions -----------------------------------------------------------


def edition_info(edition: LibraryEdition) -> EditionInfo:
    """The edition's ``edition.json`` (verified when it was placed in the library)."""
    path = edition.path / layout.EDITION_INFO_MEMBER
    data = fsutil.read_bounded(
        path, max_bytes=caps.EDITION_INFO_MAX_BYTES, what="edition description"
    )
    try:
        return parse_edition_info(data)
    except MirrorError as error:
        raise StorageError(
            f"{path} in your library is damaged ({error.message})",
            hint="Fetch or read the edition again to replace it.",
        ) from error


def summarize(edition: LibraryEdition) -> EditionSummary:
    """Id, version, dates and article count of one library edition."""
    info = edition_info(edition)
    return EditionSummary(
        eid=edition.eid,
        version=edition.version,
        title=info.title,
        publisher=info.publisher,
        created=info.created,
        expires=info.expires,
        articles=_count_article_pages(edition.path / "articles"),
        path=edition.path,
    )


def _count_article_pages(folder: Path) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if e.name.endswith(".html") and e.is_file())
    except FileNotFoundError:
        return 0
    except OSError as error:
        raise StorageError(f"cannot list {folder} ({error.strerror})") from error


def read_index(edition: LibraryEdition) -> list[ArticleEntry]:
    """The articles the edition's ``index.html`` lists, in its order (newest first)."""
    data = fsutil.read_bounded(edition.index, max_bytes=MAX_INDEX_BYTES, what="edition index")
    return parse_index(data)


def parse_index(data: bytes) -> list[ArticleEntry]:
    """Parse an index page in our renderer's format (`mirror.render.INDEX_ENTRY`).

    Bounded: at most `MAX_INDEX_ENTRIES` entries and `MAX_FIELD_CHARS` per
    field. An entry whose link is not ``articles/<name>.html`` is not an
    article of ours and is left out, so a caller may join ``file`` to the
    edition folder without further checks.
    """
    parser = _IndexParser()
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    return parser.entries


class _IndexParser(HTMLParser):
    """Collects ``<article>`` entries inside ``<main>``; ignores everything else."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[ArticleEntry] = []
        self._in_main = False
        self._entry: dict[str, str] | None = None
        self._field: str | None = None
        self._text: list[str] = []
        self._chars = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "main":
            self._in_main = True
        elif tag == "article" and self._in_main and len(self.entries) < MAX_INDEX_ENTRIES:
            self._entry = {
                "language": values.get("lang", "")[:64],
                "direction": values.get("dir", "")[:8],
            }
        elif self._entry is None:
            return
        elif tag == "a" and "file" not in self._entry:
            self._entry["file"] = values.get("href", "")
            self._start("title")
        elif tag == "time" and "date" not in self._entry:
            self._entry["date"] = values.get("datetime", "")[:64]
        elif tag == "span" and "author" not in self._entry:
            self._start("author")
        elif tag == "p" and values.get("class") == "summary":
            self._start("summary")

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self._in_main = False
        elif self._entry is None:
            return
        elif tag == "article":
            self._finish_entry()
        elif self._field is not None and tag == {"title": "a", "author": "span"}.get(
            self._field, "p"
        ):
            self._entry[self._field] = " ".join("".join(self._text).split())
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field is not None and self._chars < MAX_FIELD_CHARS:
            piece = data[: MAX_FIELD_CHARS - self._chars]
            self._text.append(piece)
            self._chars += len(piece)

    def _start(self, field: str) -> None:
        self._field = field
        self._text = []
        self._chars = 0

    def _finish_entry(self) -> None:
        entry, self._entry, self._field = self._entry, None, None
        if entry is None:
            return
        file = entry.get("file", "")
        if not _ARTICLE_FILE.match(file) or "/.." in file or file.startswith("articles/."):
            return
        self.entries.append(
            ArticleEntry(
                title=entry.get("title", ""),
                date=entry.get("date", ""),
                language=entry.get("language", ""),
                direction=entry.get("direction", ""),
                author=entry.get("author", ""),
                summary=entry.get("summary", ""),
                file=file,
            )
        )


# --- serving -------------------------------------------------------------------------

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".xml": "application/atom+xml; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
}
_SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


class EditionServer(ThreadingHTTPServer):
    """A read-only HTTP server for one edition folder, on 127.0.0.1 only."""

    daemon_threads = True

    def __init__(self, folder: Path, *, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"--port {port} is not a TCP port", hint="Use 1-65535, or 0 for any.")
        self.folder = Path(os.path.realpath(folder))
        try:
            super().__init__(("127.0.0.1", port), _EditionRequestHandler)
        except OSError as error:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{port} ({error.strerror})",
                hint="Pick another --port, or --port 0 for any free one.",
            ) from error

    @property
    def port(self) -> int:
        """The port actually listened on."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """Where a browser opens the edition."""
        return f"http://127.0.0.1:{self.port}/"

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """A browser that hangs up mid-answer is normal; anything else is worth a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def allowed_host(self, host: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (no DNS rebinding)."""
        return host is None or host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def locate(self, request_path: str) -> Path | None:
        """The regular file inside the edition folder a request path names, or None."""
        return resolve_request_path(self.folder, request_path)


def resolve_request_path(folder: Path, request_path: str) -> Path | None:
    """Map an HTTP request path to a regular file strictly inside ``folder`` (a real path).

    ``/`` is ``index.html``. Returns None for anything else that is not a
    plain file under the folder: traversal (``..``, encoded or not), ``.``,
    empty or hidden segments, backslashes, NUL, directories, and links that
    resolve outside the folder.
    """
    path = urlsplit(request_path).path
    if not path.startswith("/"):
        return None
    try:
        text = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in text or "\\" in text:
        return None
    parts = ["index.html"] if text == "/" else text[1:].split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    real = os.path.realpath(folder.joinpath(*parts))
    if not real.startswith(str(folder) + os.sep):
        return None
    return Path(real) if os.path.isfile(real) else None


class _EditionRequestHandler(BaseHTTPRequestHandler):
    """GET and HEAD of files in the edition folder; every other method gets 501."""

    server: EditionServer
    timeout = SERVE_TIMEOUT_S
    server_version = "mirror-read"
    sys_version = ""

    def do_GET(self) -> None:
        """Send a file."""
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        """Send a file's headers."""
        self._answer(with_body=False)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: what a reader reads is nobody's business, not even a log's."""

    def _answer(self, *, with_body: bool) -> None:
        if not self.server.allowed_host(self.headers.get("Host")):
            self._plain(421, "This server answers only to 127.0.0.1 and localhost.\n", with_body)
            return
        path = self.server.locate(self.path)
        handle = _open_regular(path) if path is not None else None
        if path is None or handle is None:
            self._plain(404, "Not found.\n", with_body)
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", _content_type(path))
            self.send_header("Content-Length", str(size))
            self._security_headers()
            self.end_headers()
            if with_body:
                for chunk in iter(lambda: handle.read(SERVE_CHUNK_BYTES), b""):
                    self.wfile.write(chunk)

    def _plain(self, status: int, text: str, with_body: bool) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self._security_headers()
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _security_headers(self) -> None:
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)


def _open_regular(path: Path) -> BinaryIO | None:
    """Open ``path`` for reading only if it is a regular file and not a link."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _content_type(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def iter_summaries(publisher: PublisherStore) -> Iterator[EditionSummary]:
    """Every edition in the library, oldest first, with its description."""
    for edition in publisher.editions():
        yield summarize(edition)
