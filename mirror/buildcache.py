"""The build cache: what earlier builds learnt about each source, so an unchanged article is
neither parsed, rendered nor compressed again.

It lives in the output folder (`OutputFolder.build_cache`)::

    cache/index.json        one file, replaced atomically: a SHA-256 line, then JSON
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

**Trust.** The cache is a speed-up, never a source of truth: a file that
fails its SHA-256 line, does not parse, has another format or mirror version,
or holds values of the wrong shape is ignored whole and the build starts
from nothing (and rewrites it). Bodies are named by their SHA-256 and
checked on every read. Pages are not stored here: the build copies them
from the previous edition's ZIP, whose members are checked as they are copied
(`EditionWriter.add_raw`). What the cache does not defend against is someone
who can write the output folder at will: they could as well change the
publish tree the build signs from.

**Size.** Each build keeps only the entries it used (the newest edition's
articles) and the bodies of the newest articles, so the cache stays about
the size of one edition's metadata plus a few hundred bodies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
import unicodedata
import zlib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import mirror
from mirror import fsutil
from mirror.errors import StorageError

CACHE_FORMAT = 1
"""Bump when the layout of ``index.json`` changes: older caches are then ignored."""

MAX_INDEX_BYTES = 512 * 1024 * 1024
"""Largest index read back (100,000 articles take about 100 MB)."""
MAX_BODY_BYTES = 64 * 1024 * 1024

RACY_WINDOW_NS = 2_000_000_000
"""A file changed this close to being read is hashed again next time (module variable so
tests can set it to 0)."""

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


def _stat_entry(info: os.stat_result) -> list[int]:
    return [info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns]


class BuildCache:
    """One build's view of the cache: what was loaded, and what this build used and learnt."""

    def __init__(
        self,
        folder: Path | None,
        context: str,
        *,
        files: dict[str, list[Any]] | None = None,
        entries: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.folder = folder
        self.context = context
        self._files = files or {}
        self._entries = entries or {}
        self._used: dict[str, dict[str, Any]] = {}
        self._seen_files: dict[str, list[Any]] = {}
        self._changed = False

    @classmethod
    def load(cls, folder: Path, context: str) -> BuildCache:
        """The cache in ``folder``; an absent, damaged or foreign one is an empty cache."""
        entries: dict[str, dict[str, Any]] = {}
        files: dict[str, list[Any]] = {}
        document = _read_index(folder / "index.json")
        if document is not None:
            files = document["files"]
            if document["context"] == context:
                entries = document["articles"]
        cache = cls(folder, context, files=files, entries=entries)
        cache._changed = document is None or document["context"] != context
        return cache

    # -- files: the stat fast path -------------------------------------------------

    def known_hash(self, path: Path, info: os.stat_result) -> str | None:
        """The SHA-256 recorded for ``path`` if its stat is still what it was, else None."""
        known = self._files.get(str(path))
        if known is None or known[:4] != _stat_entry(info):
            return None
        self._seen_files[str(path)] = known
        return str(known[4])

    def remember_hash(self, path: Path, info: os.stat_result, sha256: str, read_ns: int) -> None:
        """Record ``path``'s hash under its stat, unless it changed just before being read."""
        if max(info.st_ctime_ns, info.st_mtime_ns) >= read_ns - RACY_WINDOW_NS:
            return
        self._seen_files[str(path)] = [*_stat_entry(info), sha256]
        self._changed = True

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
            if _stat_entry(os.stat(path)) == _stat_entry(info):
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
        found = self._used.get(key) or self._entries.get(key)
        if found is not None:
            self._used[key] = found
        return found

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store what this build learnt about one source (JSON values only)."""
        self._used[key] = entry
        self._changed = True

    def forget(self, key: str) -> None:
        """Drop an entry found unusable (its body or its page is gone)."""
        self._used.pop(key, None)
        self._entries.pop(key, None)
        self._changed = True

    # -- bodies ------------------------------------------------------------------

    def body(self, sha256: str) -> str | None:
        """The stored body with this hash, checked, or None."""
        if self.folder is None or not _is_hex(sha256):
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
        """Write what this build used, atomically; drop every entry and body it did not use."""
        if self.folder is None:
            return
        unused_entries = set(self._entries) - set(self._used)
        if not self._changed and not unused_entries and set(self._seen_files) == set(self._files):
            self._remove_bodies()
            return
        document = {
            "format": CACHE_FORMAT,
            "mirror": mirror.__version__,
            "context": self.context,
            "files": dict(sorted(self._seen_files.items())),
            "articles": dict(sorted(self._used.items())),
        }
        payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        digest = hashlib.sha256(payload).hexdigest().encode()
        fsutil.atomic_write_bytes(self.folder / "index.json", digest + b"\n" + payload)
        self._remove_bodies()

    def _remove_bodies(self) -> None:
        """Bodies no entry in use names are left over from articles gone or changed."""
        if self.folder is None:
            return
        kept = {entry.get("body") for entry in self._used.values()}
        folder = self.folder / "bodies"
        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                if path.name not in kept:
                    path.unlink()


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _hash_file(path: Path, max_bytes: int) -> tuple[str, int]:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise StorageError.from_os(error, path=path, action="read") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"cannot read {path}: it is not a regular file")
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


def _read_index(path: Path) -> dict[str, Any] | None:
    """The index document if it is whole, ours and well-formed; None otherwise."""
    try:
        data = fsutil.read_bounded(path, max_bytes=MAX_INDEX_BYTES, what="build cache")
    except StorageError:
        return None
    digest, _, payload = data.partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    if document.get("format") != CACHE_FORMAT or document.get("mirror") != mirror.__version__:
        return None
    files, articles, context = (document.get(k) for k in ("files", "articles", "context"))
    if not (isinstance(files, dict) and isinstance(articles, dict) and isinstance(context, str)):
        return None
    if not all(_is_file_entry(value) for value in files.values()):
        return None
    if not all(isinstance(value, dict) for value in articles.values()):
        return None
    return document


def _is_file_entry(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 5
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[:4])
        and isinstance(value[4], str)
        and _is_hex(value[4])
    )
