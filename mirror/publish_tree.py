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

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tuf.api.metadata import Metadata, Snapshot, Targets, Timestamp

from mirror import fsutil
from mirror.errors import StorageError
from mirror.trust import layout
from mirror.trust.repository import RepositoryState, SignedRole

MAX_METADATA_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PublishedTarget:
    """A target to place in the tree: from bytes in memory or a local file."""

    path: str
    sha256: str
    data: bytes | None = None
    source: Path | None = None


def target_file_path(publish_dir: Path, target_path: str, sha256: str) -> Path:
    """Where a target lives under its consistent-snapshot (hash-prefixed) name."""
    posix = PurePosixPath(target_path)
    return publish_dir / "targets" / posix.parent / f"{sha256}.{posix.name}"


def load_state(publish_dir: Path) -> RepositoryState:
    """Read back the currently published metadata; an empty tree gives an empty state."""
    metadata_dir = publish_dir / "metadata"
    timestamp_path = metadata_dir / "timestamp.json"
    if not timestamp_path.exists():
        return RepositoryState()
    timestamp = Metadata[Timestamp].from_bytes(_read(timestamp_path))
    snapshot_version = timestamp.signed.snapshot_meta.version
    snapshot = Metadata[Snapshot].from_bytes(
        _read(metadata_dir / f"{snapshot_version}.snapshot.json")
    )
    roles: dict[str, SignedRole] = {}
    for name, meta in snapshot.signed.meta.items():
        role = name.removesuffix(".json")
        data = _read(metadata_dir / f"{meta.version}.{role}.json")
        roles[role] = SignedRole(role, Metadata[Targets].from_bytes(data), data)
    return RepositoryState(
        roles=roles,
        snapshot_version=snapshot_version,
        timestamp_version=timestamp.signed.version,
    )


def edition_ids(state: RepositoryState) -> list[str]:
    """Ids of the editions in the repository (one role each), oldest first."""
    eids = [
        name.removeprefix(layout.EDITION_ROLE_PREFIX)
        for name in state.roles
        if name.startswith(layout.EDITION_ROLE_PREFIX)
    ]
    return sorted(eids, key=layout.edition_version)


@dataclass(frozen=True)
class Release:
    """What the tree currently publishes, read from timestamp and snapshot only."""

    timestamp_version: int
    eids: tuple[str, ...]
    """Edition ids, oldest first."""


def current_timestamp(publish_dir: Path) -> Metadata[Timestamp] | None:
    """The published timestamp, if there is one."""
    path = publish_dir / "metadata" / "timestamp.json"
    if not path.exists():
        return None
    return Metadata[Timestamp].from_bytes(_read(path))


def write_timestamp(publish_dir: Path, data: bytes) -> None:
    """Replace ``timestamp.json`` (atomically): the only file ever rewritten."""
    fsutil.atomic_write_bytes(publish_dir / "metadata" / "timestamp.json", data)


def current_release(publish_dir: Path) -> Release | None:
    """The published timestamp version and editions, without loading every role."""
    metadata_dir = publish_dir / "metadata"
    timestamp_path = metadata_dir / "timestamp.json"
    if not timestamp_path.exists():
        return None
    timestamp = Metadata[Timestamp].from_bytes(_read(timestamp_path))
    snapshot = Metadata[Snapshot].from_bytes(
        _read(metadata_dir / f"{timestamp.signed.snapshot_meta.version}.snapshot.json")
    )
    eids = [
        name.removesuffix(".json").removeprefix(layout.EDITION_ROLE_PREFIX)
        for name in snapshot.signed.meta
        if name.startswith(layout.EDITION_ROLE_PREFIX)
    ]
    return Release(timestamp.signed.version, tuple(sorted(eids, key=layout.edition_version)))


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
        PurePosixPath(path).name.removesuffix(".zip")
        for path in role.metadata.signed.targets
        if path.endswith(".zip")
    ]
    return sorted(eids, key=layout.edition_version)


def _read(path: Path) -> bytes:
    return fsutil.read_bounded(path, max_bytes=MAX_METADATA_BYTES, what="published metadata")


def write_targets(publish_dir: Path, targets: Iterable[PublishedTarget]) -> int:
    """Place targets that are not there yet; return how many were written."""
    written = 0
    for target in targets:
        destination = target_file_path(publish_dir, target.path, target.sha256)
        if destination.exists():
            continue
        if target.data is not None:
            fsutil.atomic_write_bytes(destination, target.data)
        elif target.source is not None:
            place_file(target.source, destination)
        written += 1
    return written


def place_file(source: Path, destination: Path) -> None:
    """Hard-link ``source`` at ``destination`` when possible, else copy it atomically."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        os.replace(temp, destination)
    except OSError as error:
        raise StorageError(f"cannot place {destination} ({error.strerror})") from error


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
    metadata_dir = publish_dir / "metadata"
    chain = list(root_chain)
    for version, data in enumerate(chain, start=1):
        path = metadata_dir / f"{version}.root.json"
        if not path.exists():
            fsutil.atomic_write_bytes(path, data)
    fsutil.atomic_write_bytes(metadata_dir / "root.json", chain[-1])
    for role in roles:
        fsutil.atomic_write_bytes(metadata_dir / f"{role.version}.{role.name}.json", role.data)
    fsutil.atomic_write_bytes(metadata_dir / f"{snapshot_version}.snapshot.json", snapshot)
    fsutil.fsync_dir(metadata_dir)
    fsutil.atomic_write_bytes(metadata_dir / "timestamp.json", timestamp)


KEEP_METADATA_VERSIONS = 3
"""Older versions of each role kept, for readers in the middle of an update."""


def referenced_targets(state: RepositoryState) -> set[str]:
    """Target paths (relative to ``targets/``, hash-prefixed) some current role lists.

    Per-edition members that are content live under ``articles/``/``assets/``;
    the edition roles list them under ``manifests/<id>/`` but only the
    per-edition files are stored there (see ADR 0003).
    """
    files: set[str] = set()
    for name, role in state.roles.items():
        for path, target in role.metadata.signed.targets.items():
            if name.startswith(layout.EDITION_ROLE_PREFIX):
                member = path.split("/", 2)[2]
                if layout.is_content_path(member):
                    continue
            sha256 = target.hashes.get("sha256", "")
            posix = PurePosixPath(path)
            files.add((posix.parent / f"{sha256}.{posix.name}").as_posix())
    return files


def prune(publish_dir: Path, state: RepositoryState) -> int:
    """Delete targets no role lists and metadata versions too old to be asked for.

    Runs after the new timestamp is written, so nothing a current reader can
    reach is removed. Returns how many files were deleted.
    """
    removed = 0
    keep = referenced_targets(state)
    targets_dir = publish_dir / "targets"
    for path in sorted(targets_dir.rglob("*")) if targets_dir.is_dir() else []:
        unused = path.relative_to(targets_dir).as_posix() not in keep
        if path.is_file() and not path.name.startswith(".") and unused:
            path.unlink()
            removed += 1
    current = {name: role.version for name, role in state.roles.items()}
    current["snapshot"] = state.snapshot_version
    metadata_dir = publish_dir / "metadata"
    for path in sorted(metadata_dir.glob("*.*.json")) if metadata_dir.is_dir() else []:
        version_text, _, rest = path.name.partition(".")
        role = rest.removesuffix(".json")
        if not version_text.isdigit() or role == "root":
            continue  # the root chain is kept whole: readers walk it from version 1
        newest = current.get(role)
        if newest is None or int(version_text) <= newest - KEEP_METADATA_VERSIONS:
            path.unlink()
            removed += 1
    return removed
