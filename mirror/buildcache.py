"""The build cache: what earlier builds learnt about each source, so an unchanged article is
neither parsed, rendered nor compressed again.

It lives in the output folder (`OutputFolder.build_cache`)::

    cache/index.sqlite      what each source file hashed to, and each article's entry
    cache/bodies/<sha256>   sanitised bodies of the newest articles (the feed shows them)

**Keys.** An article's entry is found by a key over everything its page
depends on: the source's bytes (their SHA-256), where the file is (its
path decides the slug, the name in messages and what its images resolve
to), and the build *context*: the publisher's language, ``on_article_error``,
the ingest limits, the site facts pages show, the compression level, and
the versions of what parses, sanitises and renders (`INGEST_VERSION`,
`RENDER_VERSION`, cmarkgfm, nh3, feedparser, PyYAML, zlib, Python and
its Unicode tables). Any change to one of them gives new keys, so the
articles it affects are built again; a feed entry is keyed by its content
as feedparser gave it.

**Stat fast path.** Like git's index, the cache remembers for each file it
hashed its size, mtime, inode and ctime: a file whose stat still matches is
taken to hold the bytes hashed then, without reading it. A stat that
differs is never trusted to mean "changed": the file is read and hashed,
and if the hash is known, nothing else happens. A file whose ctime is
within `RACY_WINDOW_NS` of the moment it was read is not remembered this
way (it could change again within the clock's granularity without its stat
showing it); it is hashed again next time.

**On disk, not in memory.** The index is an SQLite database read and
written row by row, so a build's memory does not grow with the archive (an
index of 100,000 articles held as Python objects took about 400 MB). Each
build is one transaction, committed by `save`: a build that fails or is
killed leaves the cache as the last good build left it.

**Trust.** The cache is a speed-up, never a source of truth: a database
that SQLite finds damaged, or of another format or mirror version, is
dropped whole and the build starts from nothing (and writes a new one); an
entry whose stored SHA-256 does not match its JSON, or whose values have the
wrong shape, is dropped alone (that article is made again). Bodies are
named by their SHA-256 and checked on every read. Pages are not stored
here: the build copies them from the previous edition's ZIP, whose members
are checked as they are copied (`EditionWriter.add_raw`). What the cache
does not defend against is someone who can write the output folder at
will: they could as well change the publish tree the build signs from.

**Size.** Each build keeps only the entries it used (the newest edition's
articles) and the bodies of the newest articles, so the cache stays about
the size of one edition's metadata plus a few hundred bodies.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import sys
import time
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import mirror
from mirror import fsutil
from mirror.errors import NotARegularFileError, StorageError

CACHE_FORMAT = 2
"""Bump when the layout of the index changes: older caches are then ignored (1: one JSON
file, read whole)."""

MAX_BODY_BYTES = 64 * 1024 * 1024

RACY_WINDOW_NS = 2_000_000_000
"""A file changed this close to being read is hashed again next time (module variable so
tests can set it to 0)."""


def changed_lately(changed_ns: int, read_ns: int) -> bool:
    """Whether a file (or set of files) last changed at ``changed_ns`` may have changed
    again since ``read_ns`` without its stat showing it: within `RACY_WINDOW_NS`, a
    second write in the same clock tick keeps the times (Git's racily clean entries).
    The one rule for the cache's stat fast path and the unchanged verdict (`build_memo`)."""
    return changed_ns >= read_ns - RACY_WINDOW_NS


LIBRARIES = ("cmarkgfm", "nh3", "feedparser", "PyYAML")
"""Packages whose output ends up in pages: a new version of one builds every page again."""


def library_versions() -> dict[str, str]:
    """The installed version of each of `LIBRARIES` (or "missing")."""
    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def context_key(settings: Mapping[str, object]) -> str:
    """The build context as one hex key: ``settings`` plus every version pages depend on."""
    document = {
        "format": CACHE_FORMAT,
        "mirror": mirror.__version__,
        "python": list(sys.version_info[:2]),
        "unicode": unicodedata.unidata_version,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "libraries": library_versions(),
        "settings": settings,
    }
    return _digest(document)


def entry_key(context: str, *parts: object) -> str:
    """An entry's key: the context and what identifies the source (kind, path, bytes' hash)."""
    return _digest([context, *parts])


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class BuildCache:
    """One build's view of the cache: what earlier builds left, and what this build used and
    learnt (rows marked with this build's generation; `save` drops the others)."""

    def __init__(self, folder: Path, context: str, connection: sqlite3.Connection) -> None:
        self.folder = folder
        self.context = context
        self._db = connection
        self._generation = 1

    @classmethod
    def load(cls, folder: Path, context: str) -> BuildCache:
        """The cache in ``folder``; an absent, damaged or foreign one is an empty cache."""
        cache = cls(folder, context, _open(folder))
        cache._guarded(cache._begin, None)
        return cache

    def _begin(self) -> None:
        meta = dict(self._db.execute("SELECT name, value FROM meta"))
        ours = meta.get("format") == str(CACHE_FORMAT) and meta.get("mirror") == mirror.__version__
        if not ours:
            self._db.execute("DELETE FROM files")
        if not ours or meta.get("context") != self.context:
            self._db.execute("DELETE FROM articles")
        generation = meta.get("generation", "0")
        self._generation = int(generation) + 1 if ours and generation.isdigit() else 1
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
            [
                ("format", str(CACHE_FORMAT)),
                ("mirror", mirror.__version__),
                ("context", self.context),
                ("generation", str(self._generation)),
            ],
        )

    def _guarded(self, operation: Callable[[], _T], otherwise: _T) -> _T:
        """``operation()``; if SQLite finds the database damaged, a new empty one and
        ``otherwise`` (the build goes on without what the old one knew)."""
        try:
            return operation()
        except sqlite3.DatabaseError:
            self._db.close()
            _remove_database(self.folder)
            self._db = _open(self.folder)
            self._begin()
            return otherwise

    # -- files: the stat fast path -------------------------------------------------

    def known_hash(self, path: Path, info: os.stat_result) -> str | None:
        """The SHA-256 recorded for ``path`` if its stat is still what it was, else None."""

        def look_up() -> str | None:
            row = self._db.execute(
                "SELECT stat, sha256 FROM files WHERE path = ?", (str(path),)
            ).fetchone()
            if row is None or row[0] != _stat_text(info) or not _is_hex(row[1]):
                return None
            self._db.execute(
                "UPDATE files SET generation = ? WHERE path = ?", (self._generation, str(path))
            )
            return str(row[1])

        return self._guarded(look_up, None)

    def remember_hash(self, path: Path, info: os.stat_result, sha256: str, read_ns: int) -> None:
        """Record ``path``'s hash under its stat, unless it changed just before being read."""
        if changed_lately(max(info.st_ctime_ns, info.st_mtime_ns), read_ns):
            return
        row = (str(path), _stat_text(info), sha256, self._generation)
        self._guarded(
            lambda: self._db.execute(
                "INSERT OR REPLACE INTO files (path, stat, sha256, generation) VALUES (?, ?, ?, ?)",
                row,
            ),
            None,
        )

    @staticmethod
    def before_reading(path: Path) -> tuple[os.stat_result | None, int]:
        """``path``'s stat and the time, taken before its bytes are read and hashed."""
        try:
            return os.stat(path), time.time_ns()
        except OSError:
            return None, time.time_ns()

    def learn(self, path: Path, info: os.stat_result | None, sha256: str, read_ns: int) -> None:
        """Remember the hash of bytes read from ``path`` if its stat did not move meanwhile."""
        if info is None:
            return
        with contextlib.suppress(OSError):
            if _stat_text(os.stat(path)) == _stat_text(info):
                self.remember_hash(path, info, sha256, read_ns)

    def file_hash(self, path: Path, *, max_bytes: int) -> tuple[str, int]:
        """(SHA-256, size) of the regular file ``path``: from its stat if it matches, else read.

        Raises `StorageError` if it cannot be read, is not a regular file or is
        larger than ``max_bytes``.
        """
        info, read_ns = self.before_reading(path)
        if info is not None:
            known = self.known_hash(path, info)
            if known is not None:
                return known, info.st_size
        digest, size = _hash_file(path, max_bytes)
        self.learn(path, info, digest, read_ns)
        return digest, size

    # -- entries -----------------------------------------------------------------

    def entry(self, key: str) -> dict[str, Any] | None:
        """The entry stored under ``key`` (by this build or an earlier one), marked used."""

        def look_up() -> dict[str, Any] | None:
            row = self._db.execute(
                "SELECT entry, digest FROM articles WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            found = _entry_of(row[0], row[1])
            if found is None:  # damaged on disk: this article is made again
                self._db.execute("DELETE FROM articles WHERE key = ?", (key,))
                return None
            self._db.execute(
                "UPDATE articles SET generation = ? WHERE key = ?", (self._generation, key)
            )
            return found

        return self._guarded(look_up, None)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store what this build learnt about one source (JSON values only)."""
        text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        body = entry.get("body")
        row = (key, text, _text_digest(text), body if isinstance(body, str) else None)
        self._guarded(
            lambda: self._db.execute(
                "INSERT OR REPLACE INTO articles (key, entry, digest, body, generation) "
                "VALUES (?, ?, ?, ?, ?)",
                (*row, self._generation),
            ),
            None,
        )

    def forget(self, key: str) -> None:
        """Drop an entry found unusable (its body or its page is gone)."""
        self._guarded(lambda: self._db.execute("DELETE FROM articles WHERE key = ?", (key,)), None)

    # -- bodies ------------------------------------------------------------------

    def body(self, sha256: str) -> str | None:
        """The stored body with this hash, checked, or None."""
        if not _is_hex(sha256):
            return None
        path = self.folder / "bodies" / sha256
        try:
            data = fsutil.read_bounded(path, max_bytes=MAX_BODY_BYTES, what="cached body")
        except StorageError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - the hash matched what we wrote
            return None

    # -- saving ------------------------------------------------------------------

    def save(self) -> None:
        """Commit what this build used; drop every entry, file and body it did not use."""

        def commit() -> None:
            self._db.execute("DELETE FROM files WHERE generation != ?", (self._generation,))
            self._db.execute("DELETE FROM articles WHERE generation != ?", (self._generation,))
            self._db.commit()

        self._guarded(commit, None)
        self._remove_bodies()

    def _remove_bodies(self) -> None:
        """Bodies no entry in use names are left over from articles gone or changed."""
        folder = self.folder / "bodies"

        def kept(name: str) -> bool:
            row = self._db.execute("SELECT 1 FROM articles WHERE body = ? LIMIT 1", (name,))
            return row.fetchone() is not None

        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                if not self._guarded(functools.partial(kept, path.name), True):
                    path.unlink()


_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, stat TEXT NOT NULL,"
    " sha256 TEXT NOT NULL, generation INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS articles (key TEXT PRIMARY KEY, entry TEXT NOT NULL,"
    " digest TEXT NOT NULL, body TEXT, generation INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS articles_body ON articles (body)",
)


def _database(folder: Path) -> Path:
    return folder / "index.sqlite"


def _open(folder: Path) -> sqlite3.Connection:
    """The cache database in ``folder``, checked; a new empty one when it is damaged."""
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        return _connect(folder)
    except sqlite3.DatabaseError:
        _remove_database(folder)
        return _connect(folder)


def _connect(folder: Path) -> sqlite3.Connection:
    try:
        connection = sqlite3.connect(_database(folder), isolation_level="DEFERRED")
    except sqlite3.Error as error:  # the folder cannot hold it: an empty cache in memory
        if not folder.is_dir():
            return _memory()
        raise sqlite3.DatabaseError(str(error)) from error
    try:
        # A speed-up: a power cut may cost the cache (a damaged one is dropped), not the build.
        connection.execute("PRAGMA synchronous = OFF")
        if connection.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise sqlite3.DatabaseError("the build cache is damaged")
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.commit()
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


def _memory() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    for statement in _SCHEMA:
        connection.execute(statement)
    return connection


def _remove_database(folder: Path) -> None:
    for name in ("index.sqlite", "index.sqlite-journal"):
        with contextlib.suppress(OSError):
            (folder / name).unlink()


def _stat_text(info: os.stat_result) -> str:
    return f"{info.st_size} {info.st_mtime_ns} {info.st_ino} {info.st_ctime_ns}"


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _entry_of(text: object, digest: object) -> dict[str, Any] | None:
    """A stored entry, if its JSON is whole (its SHA-256 matches) and an object."""
    if not isinstance(text, str) or digest != _text_digest(text):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _is_hex(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _hash_file(path: Path, max_bytes: int) -> tuple[str, int]:
    try:
        fd, _ = fsutil.open_regular(path)
    except NotARegularFileError as error:
        raise StorageError(f"cannot read {path}: it is not a regular file") from error
    except OSError as error:
        raise StorageError.from_os(error, path=path, action="read") from error
    try:
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, 1024 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise StorageError(f"cannot read {path}: it is larger than {max_bytes:,} bytes")
            digest.update(chunk)
    except OSError as error:
        raise StorageError.from_os(error, path=path, action="read") from error
    finally:
        os.close(fd)
    return digest.hexdigest(), size
