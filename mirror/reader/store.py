"""The reader's store: what this reader trusts and what it has, one folder per publisher.

::

    <state dir>/publishers/<publisher id>/
      pinned-root.json           the root.json pinned with `mirror trust add`
      roots/<N>.root.json        roots accepted by a chain walk (never falls back)
      editions.json              newest edition version verified (rollback protection)
      metadata/                  trusted TUF metadata, python-tuf's non-versioned names
      mirrors.json               mirror health and the last signed mirror list
      cache/<sha256>             verified files by hash: an update fetches only new ones
      library/<edition id>/      complete, verified editions, ready to open offline
      library/<edition id>.latest/  the newest articles of an edition (its latest bundle),
                                 until the whole edition is there
      tmp/<what>-<pid>-*/        one run's scratch (downloads, staging), removed when it
                                 ends; what a killed run left is swept by the next one

The default state folder is the per-user state dir (``platformdirs``);
``--state`` picks another. What a reader trusts (`Trust`) is what makes
rollback detectable across runs: a reader who once verified version 7
refuses version 6 afterwards, and a reader whose chain walked to root 3
never falls back to root 2. Verifications return a `TrustUpdate`; only
`PublisherStore.apply` writes it, so nothing has to fake a state folder.

Everything under ``library/`` and ``cache/`` was verified against signed
hashes before it was placed, and every file here is written atomically
(temporary name, then rename): a crash leaves the previous state, and an
edition folder exists only once all of it is there.

A damaged state file is the reader's local problem, never blamed on a
mirror and never an internal error: unreadable, cut short, not JSON, the
wrong shape, or stored roots that no longer follow from the pinned root are
each a `StorageError` (exit 4) naming the file and what is wrong, with a
hint to move it aside (`mirror fetch` rebuilds it). `PublisherStore.check`
reads all of it, so a command can refuse before any mirror is asked.

What someone reads is sensitive where the publisher is blocked: the folders
of the store are created 0700 and its files written 0600 (`_private_dir`,
`_keep_private`), and what others write into a publisher's folder (the
trusted metadata) is made private when the store records a verification.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import platformdirs
from tuf.api.metadata import Root, Snapshot, Targets, Timestamp

from mirror import caps, fsutil
from mirror.errors import StorageError, VerificationError
from mirror.trust import layout, strictjson
from mirror.trust.metadata import parse_metadata

MAX_STATE_FILE_BYTES = 4 * 1024 * 1024
_BUNDLE_SUFFIX = ".latest"
"""A library folder ``<edition id>.latest`` holds that edition's latest bundle."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_YOURS = "This is your own copy, not a mirror's: "
REBUILT_HINT = f"{_YOURS}move it aside; `mirror fetch` (or verifying an edition) writes it again."
ROOTS_HINT = f"{_YOURS}move the roots folder aside; `mirror fetch` rebuilds it from your pin."
METADATA_HINT = f"{_YOURS}move the metadata folder aside; `mirror fetch` rebuilds it."
PIN_HINT = (
    f"{_YOURS}move it aside, then pin the publisher's root.json again with "
    "`mirror trust add ROOT.json`."
)


def default_state_dir() -> Path:
    """The per-user state folder, e.g. ``~/.local/state/mirror`` on Linux."""
    return Path(platformdirs.user_state_dir("mirror", appauthor=False))


@dataclass(frozen=True)
class Trust:
    """What this reader trusts for one publisher."""

    roots: dict[int, bytes]
    """Root versions accepted after the pinned one, by version (each parsed once already)."""
    highest: tuple[int, str] | None
    """(version, edition id) of the newest edition verified, if any."""
    roots_dir: Path | None = None
    """Where the stored roots live, to name them when they do not follow from the pin."""

    @classmethod
    def nothing(cls) -> Trust:
        """A reader who has seen nothing of this publisher beyond the pinned root."""
        return cls(roots={}, highest=None)


@dataclass(frozen=True)
class TrustUpdate:
    """What a verification adds to a reader's trust: newly accepted roots, the edition seen."""

    publisher_id: str
    roots: dict[int, bytes]
    highest: tuple[int, str]


@dataclass(frozen=True)
class LibraryEdition:
    """One edition in the library: complete, or only its latest bundle."""

    eid: str
    version: int
    path: Path
    complete: bool = True
    """False for a latest bundle: the newest articles only, the rest still to fetch."""

    @property
    def index(self) -> Path:
        """The page a reader opens first."""
        return self.path / "index.html"


@dataclass(frozen=True)
class ReaderStore:
    """The reader's state folder, holding one `PublisherStore` per publisher."""

    directory: Path

    @classmethod
    def at(cls, folder: str | None) -> ReaderStore:
        """The store at ``folder`` (``--state``), or the per-user one; always an absolute path."""
        return cls((Path(folder) if folder else default_state_dir()).absolute())

    def publishers(self) -> list[str]:
        """Ids of the publishers this reader has a folder for."""
        folder = self.directory / "publishers"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if _SAFE_ID.match(p.name))

    def publisher(self, publisher_id: str) -> PublisherStore:
        """The folder of one publisher (it need not exist yet)."""
        if not _SAFE_ID.match(publisher_id):
            raise StorageError(f"publisher id {publisher_id[:40]!r} cannot name a state folder")
        return PublisherStore(publisher_id, self.directory / "publishers" / publisher_id)

    def apply(self, update: TrustUpdate) -> None:
        """Record what a verification learned (see `PublisherStore.apply`)."""
        self.publisher(update.publisher_id).apply(update)


@dataclass(frozen=True)
class PublisherStore:
    """Everything this reader keeps about one publisher."""

    publisher_id: str
    path: Path

    @property
    def pinned_file(self) -> Path:
        """The root.json the reader pinned with `mirror trust add` (its bytes as given)."""
        return self.path / "pinned-root.json"

    @property
    def roots_dir(self) -> Path:
        """Root versions accepted by a chain walk."""
        return self.path / "roots"

    @property
    def seen_file(self) -> Path:
        """The newest edition verified (``editions.json``)."""
        return self.path / "editions.json"

    @property
    def metadata_dir(self) -> Path:
        """Trusted TUF metadata (python-tuf `Updater` layout)."""
        return self.path / "metadata"

    @property
    def health_file(self) -> Path:
        """Mirror health and the last signed mirror list."""
        return self.path / "mirrors.json"

    @property
    def cache_dir(self) -> Path:
        """Verified files by SHA-256."""
        return self.path / "cache"

    @property
    def library_dir(self) -> Path:
        """Complete editions by id."""
        return self.path / "library"

    # --- trust ---------------------------------------------------------------------
    def trust(self) -> Trust:
        """What this reader trusts for the publisher (nothing yet, if it never saw it).

        Raises `StorageError` naming the file when a stored root or the record
        of editions seen is unreadable or damaged.
        """
        roots: dict[int, bytes] = {}
        if self.roots_dir.exists() or self.roots_dir.is_symlink():
            if not self.roots_dir.is_dir():
                raise StorageError(
                    f"your stored roots folder {self.roots_dir} is not a folder", hint=ROOTS_HINT
                )
            for path in sorted(self.roots_dir.glob("*.root.json")):
                version = path.name.split(".", 1)[0]
                if version.isdigit():
                    roots[int(version)] = self._stored_root(path, int(version))
        return Trust(roots=roots, highest=self._highest(), roots_dir=self.roots_dir)

    def check(self) -> Trust:
        """`trust`, and every other file a reader command trusts, read and checked.

        For commands that then ask mirrors (`mirror fetch`): a damaged local
        file is reported as the reader's own, before any mirror could be
        blamed for it. The trusted metadata must be TUF metadata of its kind.
        """
        trust = self.trust()
        if self.metadata_dir.exists() or self.metadata_dir.is_symlink():
            if not self.metadata_dir.is_dir():
                raise StorageError(
                    f"your trusted metadata folder {self.metadata_dir} is not a folder",
                    hint=METADATA_HINT,
                )
            for path in sorted(self.metadata_dir.glob("*.json")):
                data = read_state(
                    path,
                    what="trusted metadata",
                    max_bytes=caps.TARGETS_MAX_BYTES,
                    hint=METADATA_HINT,
                )
                what = f"your trusted metadata {path}"
                try:
                    _parse_trusted_metadata(path.name, data, what=what)
                except VerificationError as error:
                    raise StorageError(error.message, hint=METADATA_HINT) from error
        return trust

    def _stored_root(self, path: Path, version: int) -> bytes:
        data = read_state(path, what="stored root", max_bytes=caps.ROOT_MAX_BYTES, hint=ROOTS_HINT)
        what = f"your stored root {path}"
        try:
            root = parse_metadata(data, Root, what=what)
        except VerificationError as error:
            raise StorageError(error.message, hint=ROOTS_HINT) from error
        if root.signed.version != version or isinstance(root.signed.version, bool):
            raise StorageError(
                f"{what} says it is root version {root.signed.version!r}", hint=ROOTS_HINT
            )
        return data

    def _highest(self) -> tuple[int, str] | None:
        path = self.seen_file
        if not (path.exists() or path.is_symlink()):
            return None
        document = self._read_json(path, what="record of editions seen", hint=REBUILT_HINT)
        seen_version, seen_eid = document.get("version"), document.get("edition")
        if not isinstance(seen_version, int) or isinstance(seen_version, bool) or seen_version < 1:
            raise StorageError(
                f"your record of editions seen {path} has no edition version (a whole number)",
                hint=REBUILT_HINT,
            )
        if not isinstance(seen_eid, str):
            raise StorageError(
                f"your record of editions seen {path} has no edition id (text)", hint=REBUILT_HINT
            )
        return seen_version, seen_eid

    def apply(self, update: TrustUpdate) -> None:
        """Record newly accepted roots and the newest edition verified (never lowering it).

        Called after a verification: a file that cannot be written (a full
        disk, a folder where a file belongs) is a `StorageError` that says the
        edition verified but this reader's state could not be updated.
        """
        try:
            if update.roots:
                self._private_dir(self.roots_dir)
            for version, data in sorted(update.roots.items()):
                path = self.roots_dir / f"{version}.root.json"
                if not path.exists():
                    fsutil.atomic_write_bytes(path, data, mode=PRIVATE_FILE_MODE)
            current = self.trust().highest
            if current is None or update.highest[0] > current[0]:
                fsutil.atomic_write_bytes(
                    self.seen_file,
                    strictjson.dumps({"version": update.highest[0], "edition": update.highest[1]}),
                    mode=PRIVATE_FILE_MODE,
                )
            self._keep_private()
        except StorageError as error:
            cause = error.__cause__
            raise StorageError(
                f"the edition verified, but your reader state could not be updated: "
                f"{error.message}",
                # The hint for what the system said (a full disk: free space), if it said.
                hint=StorageError.from_os(cause).hint if isinstance(cause, OSError) else error.hint,
            ) from (cause if isinstance(cause, OSError) else error)

    def _keep_private(self) -> None:
        """Make this publisher's folder, and what is in it but the library and cache, private.

        The trusted metadata is written by the fetch before it records the
        verification here; the library and cache are kept private as they are
        filled (`install`, `cache_file`).
        """
        self._private_dir(self.path)
        for folder in (self.roots_dir, self.metadata_dir):
            if folder.is_dir() and not folder.is_symlink():
                self._private_dir(folder)
                for path in folder.iterdir():
                    _private_file(path)
        for path in (self.pinned_file, self.seen_file, self.health_file):
            _private_file(path)

    def _private_dir(self, folder: Path) -> None:
        _private_dir(folder, within=self.path.parent)

    def write_pinned_root(self, data: bytes) -> None:
        """Pin ``data`` (the root.json as the reader gave it), privately."""
        self._private_dir(self.path)
        fsutil.atomic_write_bytes(self.pinned_file, data, mode=PRIVATE_FILE_MODE)

    def _read_json(self, path: Path, *, what: str, hint: str) -> dict[str, Any]:
        data = read_state(path, what=what, max_bytes=MAX_STATE_FILE_BYTES, hint=hint)
        try:
            return strictjson.loads(data, what=f"your {what} {path}")
        except VerificationError as error:
            raise StorageError(error.message, hint=hint) from error

    # --- editions ------------------------------------------------------------------
    def editions(self) -> list[LibraryEdition]:
        """Complete editions, oldest first."""
        found = []
        if self.library_dir.is_dir():
            for path in self.library_dir.iterdir():
                eid = path.name
                if layout.EDITION_ID_RE.match(eid) and (path / "edition.json").is_file():
                    found.append(LibraryEdition(eid, layout.edition_version(eid), path))
        return sorted(found, key=lambda e: e.version)

    def latest(self) -> LibraryEdition | None:
        """The newest edition a reader can open: complete, or a newer latest bundle."""
        editions = self.editions()
        newest = editions[-1] if editions else None
        bundles = self._bundles()
        if bundles and (newest is None or bundles[-1].version > newest.version):
            return bundles[-1]
        return newest

    def bundle(self, eid: str) -> LibraryEdition | None:
        """The latest bundle of edition ``eid``, if the library has it."""
        return next((b for b in self._bundles() if b.eid == eid), None)

    def _bundles(self) -> list[LibraryEdition]:
        found = []
        if self.library_dir.is_dir():
            for path in self.library_dir.iterdir():
                eid = path.name.removesuffix(_BUNDLE_SUFFIX)
                if (
                    path.name.endswith(_BUNDLE_SUFFIX)
                    and layout.EDITION_ID_RE.match(eid)
                    and (path / "index.html").is_file()
                ):
                    found.append(LibraryEdition(eid, layout.edition_version(eid), path, False))
        return sorted(found, key=lambda e: e.version)

    def drop_bundles(self, *, upto: int) -> None:
        """Remove the latest bundles of editions up to version ``upto`` (now complete)."""
        for bundle in self._bundles():
            if bundle.version <= upto:
                shutil.rmtree(bundle.path, ignore_errors=True)

    def find(self, eid: str) -> LibraryEdition | None:
        """The edition ``eid``, if it is complete in the library."""
        return next((e for e in self.editions() if e.eid == eid), None)

    def install(self, eid: str, members: Iterable[tuple[str, Path]]) -> LibraryEdition:
        """Assemble edition ``eid`` from verified files ((member name, cached file) pairs).

        Files are hard-linked (copied across file systems) into a staging folder
        that is renamed into place only when complete. The pairs are read as
        they come: an edition of 120,000 members is never a mapping in memory.
        """
        return self._assemble(eid, members, complete=True)

    def install_bundle(self, eid: str, members: Iterable[tuple[str, Path]]) -> LibraryEdition:
        """Assemble the latest bundle of edition ``eid`` from verified files, as `install`."""
        return self._assemble(eid, members, complete=False)

    def _assemble(
        self, eid: str, members: Iterable[tuple[str, Path]], *, complete: bool
    ) -> LibraryEdition:
        if not layout.EDITION_ID_RE.match(eid):
            raise StorageError(f"{eid!r} is not an edition id")
        self._private_dir(self.library_dir)
        final = self.library_dir / (eid if complete else f"{eid}{_BUNDLE_SUFFIX}")
        staging = self.scratch("install")
        try:
            folders: set[Path] = set()
            for member, source in members:
                target = staging.joinpath(*PurePosixPath(member).parts)
                if target.parent not in folders:
                    target.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
                    folders.add(target.parent)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
                    os.chmod(target, PRIVATE_FILE_MODE)
            # mkdir(parents=True) gives parents the umask's mode: every folder up to staging.
            for folder in {parent for made in folders for parent in (made, *made.parents)}:
                if folder.is_relative_to(staging) and folder != staging:
                    os.chmod(folder, PRIVATE_DIR_MODE)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise StorageError(f"cannot assemble edition {eid} in {final} ({error})") from error
        fsutil.fsync_dir(self.library_dir)
        return LibraryEdition(eid, layout.edition_version(eid), final, complete)

    # --- scratch -------------------------------------------------------------------
    @property
    def scratch_dir(self) -> Path:
        """Runs' temporary folders: on the library's file system, so staging renames work."""
        return self.path / "tmp"

    def scratch(self, what: str) -> Path:
        """A new folder for one run's temporary files, named after the running process."""
        self._private_dir(self.scratch_dir)
        try:
            return Path(tempfile.mkdtemp(prefix=f"{what}-{os.getpid()}-", dir=self.scratch_dir))
        except OSError as error:
            raise StorageError.from_os(error) from error

    def sweep_scratch(self) -> int:
        """Remove the folders of runs that are no longer alive (killed, or the machine died)."""
        removed = 0
        if not self.scratch_dir.is_dir():
            return 0
        for path in self.scratch_dir.iterdir():
            parts = path.name.split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            if pid is not None and _alive(pid):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed

    # --- cache ---------------------------------------------------------------------
    def cached(self, sha256: str) -> Path | None:
        """The verified file with this hash, if the cache has it."""
        path = self.cache_dir / sha256
        return path if path.is_file() else None

    def cache_file(self, sha256: str, source: Path) -> Path:
        """Move an already verified file into the cache under its hash (private: 0600)."""
        self._private_dir(self.cache_dir)
        destination = self.cache_dir / sha256
        try:
            os.chmod(source, PRIVATE_FILE_MODE)
            os.replace(source, destination)
        except OSError:
            try:
                shutil.copyfile(source, destination.with_suffix(".tmp"))
                os.chmod(destination.with_suffix(".tmp"), PRIVATE_FILE_MODE)
                os.replace(destination.with_suffix(".tmp"), destination)
            except OSError as error:
                raise StorageError(f"cannot store {destination} ({error})") from error
        return destination

    # --- mirror health ------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"mirrors": {url: {...}}, "signed_list": [url, ...]}``."""
        if not self.health_file.is_file():
            return {"mirrors": {}, "signed_list": []}
        try:
            document = self._read_json(self.health_file, what="mirror health", hint="")
        except StorageError:  # a damaged health file only costs us its hints
            return {"mirrors": {}, "signed_list": []}
        document.setdefault("mirrors", {})
        document.setdefault("signed_list", [])
        return document

    def save_health(self, document: dict[str, Any]) -> None:
        """Write mirror health atomically."""
        data = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self._private_dir(self.path)
        fsutil.atomic_write_bytes(self.health_file, data.encode("utf-8"), mode=PRIVATE_FILE_MODE)


def _parse_trusted_metadata(name: str, data: bytes, *, what: str) -> None:
    """Parse a file of the trusted metadata folder as the role its (python-tuf) name says."""
    if name == "root.json":
        parse_metadata(data, Root, what=what)
    elif name == "timestamp.json":
        parse_metadata(data, Timestamp, what=what)
    elif name == "snapshot.json":
        parse_metadata(data, Snapshot, what=what)
    else:
        parse_metadata(data, Targets, what=what)


def read_state(path: Path, *, what: str, max_bytes: int, hint: str) -> bytes:
    """The bytes of a file of the reader's state; if it cannot be read, a `StorageError`
    ("your <what> <path> cannot be read (...)") with ``hint``."""
    try:
        return fsutil.read_bounded(path, max_bytes=max_bytes, what=what)
    except StorageError as error:
        raise StorageError(f"your {error.message.removeprefix('the ')}", hint=hint) from error


def _private_dir(folder: Path, *, within: Path) -> None:
    """Create ``folder`` and its missing parents 0700; tighten existing ones from ``within`` down.

    ``within`` is the store's ``publishers/`` folder: folders above it are only
    created, never changed (the state folder may be one the reader chose, such
    as ``--state .``).
    """
    missing: list[Path] = []
    path = folder
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    try:
        for existing in (path, *path.parents):
            if existing != within and within not in existing.parents:
                continue
            if existing.is_dir() and existing.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
                os.chmod(existing, PRIVATE_DIR_MODE)
        for created in reversed(missing):
            created.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    except OSError as error:
        raise StorageError.from_os(error, action="create the folder") from error


def _private_file(path: Path) -> None:
    """Make a regular file of the store private (0600), if it exists."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise StorageError.from_os(error, path=path, action="read") from error
    if stat.S_ISREG(info.st_mode) and info.st_mode & 0o777 != PRIVATE_FILE_MODE:
        try:
            os.chmod(path, PRIVATE_FILE_MODE)
        except OSError as error:
            raise StorageError.from_os(error, path=path, action="protect") from error


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of ours, or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
