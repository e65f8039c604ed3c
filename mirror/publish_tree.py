"""The local publish tree: TUF ``metadata/`` and ``targets/`` as any static store serves them.

::

    publish/
      metadata/1.root.json … N.root.json, root.json
      metadata/N.targets.json, N.<role>.json      every targets role, versioned
      metadata/N.snapshot.json
      metadata/timestamp.json                     the only file ever overwritten
      targets/<dir>/<sha256>.<name>               consistent-snapshot names: written once

Write order is the publishing order every mirror follows: targets first,
then versioned metadata, then ``timestamp.json`` last, each file atomic, so
the tree is consistent after a crash at any point (the old timestamp still
points at complete older metadata). The tree doubles as the publisher's
record of what was published: `load_state` reads it back.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, overload

from tuf.api.metadata import Metadata, Snapshot, Targets, Timestamp

from mirror import caps, fsutil
from mirror.errors import NotARegularFileError, StorageError, TamperedError
from mirror.trust import layout
from mirror.trust.history import LocalHistory
from mirror.trust.members import MemberList, SignedFile, in_shards
from mirror.trust.repository import RepositoryState, SignedRole, edition_ids
from mirror.trust.verify import EditionInfo, parse_edition_info


@dataclass(frozen=True)
class PublishedTarget:
    """A target to place in the tree: bytes in memory, a file of ours to copy, or a staged copy.

    ``source`` is copied (never linked) and the copy's hash checked against
    ``sha256``; ``staged`` is a `stage_copy` already hashed by its reader,
    moved into place (or dropped when the target is there already).
    """

    path: str
    sha256: str
    data: bytes | None = None
    source: Path | None = None
    staged: Path | None = None


# --- paths: every file of the tree is named here ----------------------------------------
# Names are relative to the tree's root, as mirrors store them; *_path() are local files.

TIMESTAMP = "metadata/timestamp.json"
"""The only file ever rewritten: the switch readers see."""
ROOT = "metadata/root.json"
"""The newest root, for readers who pin it."""
POINTERS = (ROOT, TIMESTAMP)
"""Files that are replaced in place, in the order a push replaces them (timestamp last)."""


def root_name(version: int) -> str:
    """``metadata/N.root.json``: version ``version`` of the root chain."""
    return f"metadata/{version}.root.json"


def role_name(role: str, version: int) -> str:
    """``metadata/N.<role>.json``: a version of a role other than root and timestamp."""
    return f"metadata/{version}.{role}.json"


def metadata_dir(publish_dir: Path) -> Path:
    """The TUF metadata folder."""
    return publish_dir / "metadata"


def targets_dir(publish_dir: Path) -> Path:
    """The folder of every target, under consistent-snapshot names."""
    return publish_dir / "targets"


def timestamp_path(publish_dir: Path) -> Path:
    """The local ``timestamp.json``."""
    return publish_dir / TIMESTAMP


def root_path(publish_dir: Path, version: int | None = None) -> Path:
    """The local ``N.root.json``, or ``root.json`` (the newest) without a version."""
    return publish_dir / (ROOT if version is None else root_name(version))


def role_path(publish_dir: Path, role: str, version: int) -> Path:
    """The local ``N.<role>.json``."""
    return publish_dir / role_name(role, version)


def target_file_path(publish_dir: Path, target_path: str, sha256: str) -> Path:
    """Where a target lives under its consistent-snapshot (hash-prefixed) name."""
    folder, slash, name = target_path.rpartition("/")
    return targets_dir(publish_dir) / f"{folder}{slash}{sha256}.{name}"


# --- the tree as files, in publishing order -----------------------------------------------


class Phase(enum.IntEnum):
    """Publishing phases, in the order every mirror receives them."""

    TARGETS = 1
    METADATA = 2
    POINTERS = 3


@dataclass(frozen=True, slots=True)
class TreeFile:
    """One file of the publish tree: its name on a mirror, the tree it is in, size, phase.

    The local file is the tree's folder joined with the name, made when a
    backend reads it: a `Path` kept for each of 120,000 files took 40 MB.
    """

    path: str
    tree: Path
    """The publish tree (one object shared by every file of it)."""
    size: int
    phase: Phase
    sha256: str | None = None
    """The SHA-256 of the file's bytes for versioned metadata and pointers, whose names
    carry no hash, so a push compares what a mirror holds with them (None for targets,
    whose consistent-snapshot names carry it)."""

    @property
    def local(self) -> Path:
        """The file on this machine."""
        return self.tree / self.path


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file of the tree, read in chunks (the one place a push hashes it)."""
    try:
        fd, _ = fsutil.open_regular(path)
    except NotARegularFileError as error:
        raise _not_regular(path) from error
    except OSError as error:
        raise StorageError.from_os(error, path=path, action="read") from error
    try:
        with os.fdopen(fd, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise StorageError.from_os(error, path=path, action="read") from error


def _not_regular(path: Path) -> StorageError:
    """A FIFO, device or folder where the tree has a file: a push would wait on it forever."""
    return StorageError(
        f"the publish tree's {path} is not a regular file",
        hint="Remove it: mirror writes only regular files into its publish tree.",
    )


class TreeFiles(Sequence[TreeFile]):
    """Every file of the publish tree, in publishing order, and each by its name: read once
    per push and shared by every mirror (whose plans key what they keep by these names)."""

    def __init__(self, files: Iterable[TreeFile]) -> None:
        self._files = tuple(files)
        self._positions = {file.path: at for at, file in enumerate(self._files)}

    def position(self, path: str) -> int | None:
        """Where the file called ``path`` is in the tree's order, if the tree has it."""
        return self._positions.get(path)

    def find(self, path: str) -> TreeFile | None:
        """The file called ``path`` in the tree, if there is one."""
        at = self._positions.get(path)
        return None if at is None else self._files[at]

    def __len__(self) -> int:
        return len(self._files)

    @overload
    def __getitem__(self, index: int) -> TreeFile: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[TreeFile, ...]: ...
    def __getitem__(self, index: int | slice) -> TreeFile | tuple[TreeFile, ...]:
        return self._files[index]

    def __iter__(self) -> Iterator[TreeFile]:
        return iter(self._files)


def scan_tree(publish_dir: Path) -> TreeFiles:
    """Every file of the publish tree, in publishing order (targets, metadata, pointers).

    Read once per push and shared by every mirror: each file's size, and the
    SHA-256 of each metadata file and pointer (a few hundred small files).
    Folders are read an entry at a time, names joined as text: a folder of
    100,000 articles is never held as a list, nor each name as a path.
    """
    files: list[TreeFile] = []
    pending = [(os.fspath(publish_dir), "")]
    while pending:
        folder, shown = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # temporary files of an interrupted write
                path = f"{shown}{entry.name}"
                if entry.is_dir():
                    if not entry.is_symlink():  # a linked folder is not the tree's
                        pending.append((entry.path, f"{path}/"))
                    continue
                if path.startswith("targets/"):
                    phase = Phase.TARGETS
                elif path in POINTERS:
                    phase = Phase.POINTERS
                elif path.startswith("metadata/"):
                    phase = Phase.METADATA
                else:
                    continue
                if not entry.is_file():
                    raise _not_regular(Path(entry.path))
                digest = None if phase is Phase.TARGETS else file_sha256(Path(entry.path))
                files.append(TreeFile(path, publish_dir, entry.stat().st_size, phase, digest))

    def order(f: TreeFile) -> tuple[int, int, str]:
        pointer_rank = POINTERS.index(f.path) if f.phase is Phase.POINTERS else 0
        return (f.phase, pointer_rank, f.path)

    files.sort(key=order)
    return TreeFiles(files)


# --- reading the tree -------------------------------------------------------------------


def local_history(publish_dir: Path, *, first_root: bytes) -> LocalHistory:
    """What the tree says about this publisher's history (``first_root`` if it is empty)."""
    timestamp = timestamp_path(publish_dir)
    if not timestamp.exists():
        return LocalHistory(first_root=first_root, timestamp=None, snapshots={})
    snapshots = {}
    for path in metadata_dir(publish_dir).glob("*.snapshot.json"):
        version = path.name.split(".", 1)[0]
        if version.isdigit():
            snapshots[int(version)] = _read(path, caps.SNAPSHOT_MAX_BYTES)
    return LocalHistory(
        first_root=first_root,
        timestamp=_read(timestamp, caps.TIMESTAMP_MAX_BYTES),
        snapshots=snapshots,
    )


def first_root(publish_dir: Path) -> bytes:
    """``1.root.json``: where every reader (and every read-back) starts the chain walk."""
    return fsutil.read_bounded(
        root_path(publish_dir, 1), max_bytes=caps.ROOT_MAX_BYTES, what="root metadata"
    )


def _timestamp_and_snapshot(publish_dir: Path) -> tuple[Metadata[Timestamp], Metadata[Snapshot]]:
    timestamp = Metadata[Timestamp].from_bytes(
        _read(timestamp_path(publish_dir), caps.TIMESTAMP_MAX_BYTES)
    )
    version = timestamp.signed.snapshot_meta.version
    snapshot = Metadata[Snapshot].from_bytes(
        _read(role_path(publish_dir, "snapshot", version), caps.SNAPSHOT_MAX_BYTES)
    )
    return timestamp, snapshot


def _role_data(publish_dir: Path, snapshot: Snapshot, role: str) -> bytes:
    meta = snapshot.meta.get(f"{role}.json")
    if meta is None:
        raise StorageError(f"the publish tree {publish_dir} has no role {role}")
    return _read(role_path(publish_dir, role, meta.version), caps.TARGETS_MAX_BYTES)


def load_state(publish_dir: Path) -> RepositoryState:
    """Read back the currently published metadata; an empty tree gives an empty state."""
    if not timestamp_path(publish_dir).exists():
        return RepositoryState()
    timestamp, snapshot = _timestamp_and_snapshot(publish_dir)
    roles: dict[str, SignedRole] = {}
    for name in snapshot.signed.meta:
        role = name.removesuffix(".json")
        data = _role_data(publish_dir, snapshot.signed, role)
        roles[role] = SignedRole.parse(role, data)
    return RepositoryState(
        roles=roles,
        snapshot_version=snapshot.signed.version,
        timestamp_version=timestamp.signed.version,
        snapshot_expires=snapshot.signed.expires,
    )


@dataclass(frozen=True)
class Release:
    """What the tree currently publishes, read from timestamp and snapshot only."""

    timestamp_version: int
    eids: tuple[str, ...]
    """Edition ids, oldest first."""


def current_timestamp(publish_dir: Path) -> Metadata[Timestamp] | None:
    """The published timestamp, if there is one."""
    path = timestamp_path(publish_dir)
    if not path.exists():
        return None
    return Metadata[Timestamp].from_bytes(_read(path, caps.TIMESTAMP_MAX_BYTES))


def write_timestamp(publish_dir: Path, data: bytes) -> None:
    """Replace ``timestamp.json`` (atomically): the only file ever rewritten."""
    fsutil.atomic_write_bytes(timestamp_path(publish_dir), data)


def current_release(publish_dir: Path) -> Release | None:
    """The published timestamp version and editions, without loading every role."""
    if not timestamp_path(publish_dir).exists():
        return None
    timestamp, snapshot = _timestamp_and_snapshot(publish_dir)
    eids = [
        name.removesuffix(".json").removeprefix(layout.EDITION_ROLE_PREFIX)
        for name in snapshot.signed.meta
        if name.startswith(layout.EDITION_ROLE_PREFIX)
    ]
    return Release(timestamp.signed.version, tuple(sorted(eids, key=layout.edition_version)))


def edition_info(publish_dir: Path, eid: str) -> EditionInfo:
    """The ``edition.json`` the tree publishes for edition ``eid``, found through its role."""
    _, snapshot = _timestamp_and_snapshot(publish_dir)
    role = Metadata[Targets].from_bytes(
        _role_data(publish_dir, snapshot.signed, layout.edition_role(eid))
    )
    path = layout.manifest_path(eid, layout.EDITION_INFO_MEMBER)
    target = role.signed.targets.get(path)
    if target is None:
        raise StorageError(f"the publish tree's role for {eid} does not list its edition.json")
    data = fsutil.read_bounded(
        target_file_path(publish_dir, path, target.hashes["sha256"]),
        max_bytes=caps.EDITION_INFO_MAX_BYTES,
        what="edition.json",
    )
    return parse_edition_info(data)


def edition_members(publish_dir: Path, state: RepositoryState, eid: str) -> dict[str, SignedFile]:
    """Every member of edition ``eid`` as the tree publishes it: its role, then its shards.

    The shards are read from the tree under their signed names and checked
    against their signed hashes (`members.MemberList`), as a reader would.
    """
    role = state.roles[layout.edition_role(eid)].metadata().signed
    prefix = f"manifests/{eid}/"
    member_list = MemberList(
        {
            path.removeprefix(prefix): SignedFile(target.length, target.hashes["sha256"])
            for path, target in role.targets.items()
        }
    )
    for name in member_list.missing:
        signed = member_list.shards[name]
        path = target_file_path(publish_dir, layout.manifest_path(eid, name), signed.sha256)
        data = _read(path, caps.MEMBER_SHARD_MAX_BYTES)
        try:
            member_list.add_shard(name, data)
        except TamperedError as error:
            raise StorageError(
                f"the publish tree's {path} is damaged ({error.message})",
                hint="Restore the publish tree from a mirror (`mirror restore --from MIRROR`).",
            ) from error
    return member_list.complete()


def content_of_editions(publish_dir: Path, state: RepositoryState, eids: Iterable[str]) -> set[str]:
    """The articles and assets (content paths) that editions ``eids`` have among them."""
    used: set[str] = set()
    for eid in eids:
        used.update(name for name in edition_members(publish_dir, state, eid) if in_shards(name))
    return used


def last_edition_version(state: RepositoryState) -> int:
    """Highest edition version in the repository (0 when there is none)."""
    eids = edition_ids(state)
    return layout.edition_version(eids[-1]) if eids else 0


def published_archives(state: RepositoryState) -> list[str]:
    """Ids of the editions whose ZIP is published, oldest first."""
    role = state.roles.get(layout.EDITIONS_ROLE)
    if role is None:
        return []
    eids = [
        eid
        for path in role.metadata().signed.targets
        if (eid := layout.archive_edition_id(path)) is not None
    ]
    return sorted(eids, key=layout.edition_version)


def _read(path: Path, max_bytes: int) -> bytes:
    return fsutil.read_bounded(path, max_bytes=max_bytes, what="published metadata")


def write_targets(publish_dir: Path, targets: Iterable[PublishedTarget]) -> int:
    """Place targets that are not there yet; return how many were written.

    A target already there is left alone, unless it has other hard links
    (a tree made by an older version linked sources in): then it is replaced
    by our own copy, so editing a source can no longer change it.
    """
    written = 0
    for target in targets:
        destination = target_file_path(publish_dir, target.path, target.sha256)
        if target.staged is not None:
            written += place_staged(target.staged, destination)
            continue
        if destination.exists():
            continue
        if target.data is not None:
            fsutil.atomic_write_bytes(destination, target.data)
        elif target.source is not None:
            place_file(target.source, destination, target.sha256)
        written += 1
    return written


COPY_CHUNK_BYTES = 1024 * 1024


def stage_copy(publish_dir: Path, source: Path, *, max_bytes: int) -> Path:
    """A private copy of ``source`` inside the tree, for the archive to read and the tree to keep.

    Targets are content-addressed and immutable, so they are never hard links
    to a newsroom's files: editing an image in place would change a target
    that readers verify by its signed hash. The copy is a reflink where the
    file system has them (btrfs, XFS: no bytes copied), else a plain copy.
    The caller hashes the copy (the edition writer reads it) and then gives
    it to `place_staged`, so the archive and the tree hold the very bytes
    that were hashed. The source is opened without following a symlink and
    without blocking, and must be a regular file of at most ``max_bytes``.
    """
    folder = targets_dir(publish_dir)
    fsutil.ensure_dir(folder)
    temp = folder / f".staged.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    try:
        source_fd, info = fsutil.open_regular(source, follow_symlinks=False)
    except NotARegularFileError as error:
        raise StorageError(f"cannot read {source}: it is no longer a regular file") from error
    except OSError as error:
        raise StorageError.from_os(error, path=source, action="read") from error
    try:
        if info.st_size > max_bytes:
            raise StorageError(f"cannot read {source}: it grew to {info.st_size:,} bytes")
        try:
            with open(temp, "xb") as copy:
                if not _reflink(source_fd, copy.fileno()):
                    _copy_bounded(source_fd, copy, max_bytes, source)
        except StorageError:
            temp.unlink(missing_ok=True)
            raise
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise StorageError.from_os(error, path=temp, action="write") from error
    finally:
        os.close(source_fd)
    return temp


def _reflink(source_fd: int, target_fd: int) -> bool:
    """Clone the source's blocks into the target (FICLONE); False where not supported."""
    try:
        fcntl.ioctl(target_fd, _FICLONE, source_fd)
    except OSError:
        return False
    return True


_FICLONE = 0x40049409
"""Linux's ioctl that shares a file's blocks copy-on-write (btrfs, XFS, bcachefs)."""


def _copy_bounded(source_fd: int, copy: BinaryIO, max_bytes: int, source: Path) -> None:
    copied = 0
    while chunk := _read_chunk(source_fd, source):
        copied += len(chunk)
        if copied > max_bytes:
            raise StorageError(f"cannot read {source}: it grew past {max_bytes:,} bytes")
        copy.write(chunk)


def _read_chunk(source_fd: int, source: Path) -> bytes:
    try:
        return os.read(source_fd, COPY_CHUNK_BYTES)
    except OSError as error:
        raise StorageError.from_os(error, path=source, action="read") from error


def place_staged(staged: Path, destination: Path) -> int:
    """Move a staged copy to ``destination`` (1), or drop it if an unshared target is there (0)."""
    try:
        if destination.exists() and destination.stat().st_nlink == 1:
            staged.unlink()
            return 0
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(staged, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(staged, 0o644)
        os.replace(staged, destination)
    except OSError as error:
        staged.unlink(missing_ok=True)
        raise StorageError.from_os(error, path=destination, action="place") from error
    return 1


def place_file(source: Path, destination: Path, sha256: str) -> None:
    """Copy ``source`` (a file of ours) to ``destination`` atomically; its hash must be ``sha256``.

    Never a hard link: a target is the tree's own copy, so nothing done to
    ``source`` later can change what readers are served. The copy is hashed
    as it is written (or read back after a reflink), so a source that
    changed since it was hashed is refused, not published.
    """
    temp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp.unlink(missing_ok=True)
        digest = hashlib.sha256()
        with open(source, "rb") as reader, open(temp, "xb") as copy:
            if _reflink(reader.fileno(), copy.fileno()):
                with open(temp, "rb") as clone:
                    while chunk := clone.read(COPY_CHUNK_BYTES):
                        digest.update(chunk)
            else:
                while chunk := reader.read(COPY_CHUNK_BYTES):
                    digest.update(chunk)
                    copy.write(chunk)
            copy.flush()
            os.fsync(copy.fileno())
        if digest.hexdigest() != sha256:
            raise StorageError(
                f"{source} changed after it was hashed; it is not published",
                hint="Something else writes into mirror's output folder; stop it and build again.",
            )
        os.chmod(temp, 0o644)
        os.replace(temp, destination)
    except OSError as error:
        raise StorageError.from_os(error, path=destination, action="place") from error
    finally:
        temp.unlink(missing_ok=True)


def write_metadata(
    publish_dir: Path,
    *,
    root_chain: Iterable[bytes],
    roles: Iterable[SignedRole],
    snapshot: bytes,
    snapshot_version: int,
    timestamp: bytes,
) -> None:
    """Write versioned metadata, then snapshot, then ``timestamp.json`` last."""
    chain = list(root_chain)
    for version, data in enumerate(chain, start=1):
        path = root_path(publish_dir, version)
        if not path.exists():
            fsutil.atomic_write_bytes(path, data)
    fsutil.atomic_write_bytes(root_path(publish_dir), chain[-1])
    for role in roles:
        fsutil.atomic_write_bytes(role_path(publish_dir, role.name, role.version), role.data)
    fsutil.atomic_write_bytes(role_path(publish_dir, "snapshot", snapshot_version), snapshot)
    fsutil.fsync_dir(metadata_dir(publish_dir))
    fsutil.atomic_write_bytes(timestamp_path(publish_dir), timestamp)


KEEP_METADATA_VERSIONS = 3
"""Older versions of each role kept, for readers in the middle of an update."""


def referenced_targets(state: RepositoryState) -> dict[str, int]:
    """Every stored target some current role lists: path (relative to ``targets/``,
    hash-prefixed) -> signed length.

    Per-edition members that are content live under ``articles/``/``assets/``;
    the edition roles list them under ``manifests/<id>/`` but only the
    per-edition files are stored there (see ADR 0003).
    """
    files: dict[str, int] = {}
    for name, role in state.roles.items():
        for path, target in role.metadata().signed.targets.items():
            if name.startswith(layout.EDITION_ROLE_PREFIX):
                member = path.split("/", 2)[2]
                if layout.is_content_path(member):
                    continue
            sha256 = target.hashes.get("sha256", "")
            posix = PurePosixPath(path)
            files[(posix.parent / f"{sha256}.{posix.name}").as_posix()] = target.length
    return files


def prune(publish_dir: Path, state: RepositoryState) -> int:
    """Delete targets no role lists and metadata versions too old to be asked for.

    Runs after the new timestamp is written, so nothing a current reader can
    reach is removed. Returns how many files were deleted.
    """
    removed = 0
    keep = referenced_targets(state)
    targets = targets_dir(publish_dir)
    # A walk, not a sorted list of every path: the tree of 100,000 articles has 120,000 files.
    for folder, _, names in os.walk(targets):
        relative = Path(folder).relative_to(targets).as_posix()
        for name in names:
            listed = name if relative == "." else f"{relative}/{name}"
            if not name.startswith(".") and listed not in keep:
                os.unlink(os.path.join(folder, name))
                removed += 1
    current = {name: role.version for name, role in state.roles.items()}
    current["snapshot"] = state.snapshot_version
    metadata = metadata_dir(publish_dir)
    for path in sorted(metadata.glob("*.*.json")) if metadata.is_dir() else []:
        version_text, _, rest = path.name.partition(".")
        role = rest.removesuffix(".json")
        if not version_text.isdigit() or role == "root":
            continue  # the root chain is kept whole: readers walk it from version 1
        newest = current.get(role)
        if newest is None or int(version_text) <= newest - KEEP_METADATA_VERSIONS:
            path.unlink()
            removed += 1
    return removed
