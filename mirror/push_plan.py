"""What one push will do on one mirror, decided before anything is written.

1. **Preflight**: the mirror's pointer files and the root chain are read from
   its store and judged against the local history (`mirror.trust.history`):
   a mirror that is ahead, diverged or another publisher's is refused, and the
   plan for it writes nothing.
2. **Inventory**: one listing where the backend can list, else a stat per file.
3. **Per file**: a content-addressed target (the hash is in its name) is
   skipped when the mirror has it at the same size; a versioned metadata file
   (``N.<role>.json``: no hash in the name) only when the mirror's bytes are
   ours, byte for byte; a pointer (``root.json``, ``timestamp.json``) likewise.
   The local side of each comparison (size, SHA-256) was read once per push
   (`mirror.publish_tree.scan_tree`), whatever the number of mirrors.
4. **Retention**: what the mirror holds under ``targets/`` and ``metadata/``
   that the local tree no longer has, to delete once the new timestamp is
   live, within the guards (`push.max_delete`, never more than half the mirror).

`--dry-run` prints this plan; the real run executes exactly it
(`mirror.publish`).
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass
from typing import Any

from mirror import caps, publish_tree
from mirror.backends import Capability, ObjectInfo
from mirror.errors import MirrorNotFoundError, OversizeError
from mirror.publish_tree import Phase, TreeFile, TreeFiles
from mirror.push_session import MirrorSession
from mirror.trust.history import (
    Judgement,
    LocalHistory,
    MirrorHistory,
    judge,
    snapshot_version_of,
)


@dataclass(frozen=True)
class MirrorPlan:
    """One mirror's push, decided: its standing, then exactly what to upload and delete."""

    judgement: Judgement
    history: MirrorHistory
    """What the preflight read (the push checks the timestamp is still this one)."""
    uploads: tuple[TreeFile, ...] = ()
    """In publishing order: targets, versioned metadata, pointers (timestamp last)."""
    deletes: tuple[str, ...] = ()
    """Old files to remove after the new timestamp is live, metadata first."""
    skipped_files: int = 0
    skipped_bytes: int = 0
    retention_note: str | None = None

    def __repr__(self) -> str:
        # A summary, not thousands of files: asyncio formats the run's result (every
        # mirror's plan) when it restores the SIGINT handler, and logs may show plans.
        return (
            f"MirrorPlan(standing={self.judgement.standing.value}, "
            f"uploads={len(self.uploads)} files, {self.upload_bytes} bytes, "
            f"deletes={len(self.deletes)} files, skipped={self.skipped_files} files)"
        )

    @property
    def refused(self) -> bool:
        """The mirror's history must not be written over."""
        return self.judgement.standing.refused

    @property
    def upload_bytes(self) -> int:
        """Bytes this plan uploads."""
        return sum(f.size for f in self.uploads)

    def as_json(self, *, files: bool = True) -> dict[str, Any]:
        """For reports and ``--dry-run --json``; without ``files``, counts instead of the
        lists of paths (a first push of 100,000 articles uploads 120,000 files)."""
        document: dict[str, Any] = {
            "standing": self.judgement.standing.value,
            "served_timestamp_version": self.judgement.served_version,
            "local_timestamp_version": self.judgement.local_version,
            "reason": self.judgement.reason,
            "upload_files": len(self.uploads),
            "upload_bytes": self.upload_bytes,
            "delete_files": len(self.deletes),
            "skipped_files": self.skipped_files,
            "retention_note": self.retention_note,
        }
        if files:
            document["uploads"] = [f.path for f in self.uploads]
            document["deletes"] = list(self.deletes)
        return document


async def plan_mirror(
    session: MirrorSession,
    files: TreeFiles,
    local: LocalHistory,
    *,
    max_delete: int,
) -> MirrorPlan:
    """Preflight, inventory and per-file decisions for one mirror (reads only)."""
    history = await read_history(session)
    judgement = judge(local, history)
    if judgement.standing.refused:
        return MirrorPlan(judgement, history)
    present = await _inventory(session, files)
    # The name of a target carries its hash: the same size is the same file. Versioned
    # metadata at another size is not ours; at the same size, and pointers, it is read.
    compared = [
        f
        for at, f in enumerate(files)
        if f.phase is Phase.POINTERS
        or (f.phase is Phase.METADATA and present.size_at(at) == f.size)
    ]
    held: set[str] = set()

    async def compare(file: TreeFile) -> None:
        if await holds(session, file):
            held.add(file.path)

    await session.each(compared, compare)

    def wanted(at: int, file: TreeFile) -> bool:
        if file.phase is Phase.POINTERS:
            return file.path not in held
        if present.size_at(at) != file.size:
            return True
        return file.phase is Phase.METADATA and file.path not in held

    uploads = tuple(f for at, f in enumerate(files) if wanted(at, f))
    deletes, note = _retention(session, files, present, max_delete=max_delete)
    upload_bytes = sum(f.size for f in uploads)
    return MirrorPlan(
        judgement,
        history,
        uploads=uploads,
        deletes=deletes,
        skipped_files=len(files) - len(uploads),
        skipped_bytes=sum(f.size for f in files) - upload_bytes,
        retention_note=note,
    )


async def read_history(session: MirrorSession) -> MirrorHistory:
    """The mirror's ``timestamp.json``, root chain and current snapshot, from its store."""
    timestamp = await get_or_none(session, publish_tree.TIMESTAMP, caps.TIMESTAMP_MAX_BYTES)
    if timestamp is None:
        return MirrorHistory(timestamp=None, roots={}, first_root=None, snapshot=None)
    first_root = await get_or_none(session, publish_tree.root_name(1), caps.ROOT_MAX_BYTES)
    roots: dict[int, bytes] = {}
    for version in range(2, caps.MAX_ROOT_ROTATIONS + 2):
        data = await get_or_none(session, publish_tree.root_name(version), caps.ROOT_MAX_BYTES)
        if data is None:
            break
        roots[version] = data
    snapshot_version = snapshot_version_of(timestamp)
    snapshot = (
        None
        if snapshot_version is None
        else await get_or_none(
            session,
            publish_tree.role_name("snapshot", snapshot_version),
            caps.SNAPSHOT_MAX_BYTES,
        )
    )
    return MirrorHistory(timestamp, roots, first_root, snapshot)


async def get_or_none(session: MirrorSession, path: str, max_bytes: int) -> bytes | None:
    """The file's bytes; None when the mirror has none; ``b""`` when it is over ``max_bytes``.

    An over-cap file is not the publisher's (nothing it signs is that large),
    so it reads as unusable bytes rather than as a failed mirror.
    """
    try:
        return await session.call(lambda: session.backend.get(path, max_bytes=max_bytes))
    except MirrorNotFoundError:
        return None
    except OversizeError:
        return b""


ABSENT = -1
"""An `_Inventory` size: the mirror has no such file."""
UNUSABLE = -2
"""An `_Inventory` size: the mirror lists the file at a size no file has (negative, or
beyond 2**63): held, but never the same as ours."""


class _Inventory:
    """What a mirror holds, as much as a plan needs: the size of each file it shares with
    the local tree, in the tree's order (one number per file: 120,000 listed names are
    not kept a second time, per mirror), and the files it holds beyond those, by name."""

    def __init__(self, files: TreeFiles) -> None:
        self._files = files
        self._sizes = array("q", [ABSENT]) * len(files)
        self.others: set[str] = set()

    def see(self, info: ObjectInfo) -> None:
        at = self._files.position(info.path)
        if at is None:
            self.others.add(info.path)
        else:
            self._sizes[at] = info.size if 0 <= info.size < 2**63 else UNUSABLE

    def size_at(self, at: int) -> int | None:
        """The size the mirror has for the tree's file at ``at`` (`UNUSABLE`, never a file's
        size, when it listed an impossible one); None when it has none."""
        size = self._sizes[at]
        return None if size == ABSENT else size

    @property
    def count(self) -> int:
        """Files the mirror holds."""
        return len(self._sizes) - self._sizes.count(ABSENT) + len(self.others)


async def _inventory(session: MirrorSession, files: TreeFiles) -> _Inventory:
    """What the mirror already has (every file, with a listing; else each of ours)."""
    backend = session.backend
    if Capability.LISTING in backend.capabilities:

        async def listing() -> _Inventory:
            seen = _Inventory(files)  # a listing tried again starts afresh
            await backend.scan("", seen.see)
            return seen

        inventory: _Inventory = await session.call(listing)
        return inventory
    present = _Inventory(files)

    async def stat(file: TreeFile) -> None:
        info = await session.call(lambda: backend.stat(file.path))
        if info is not None:
            present.see(info)

    await session.each([f for f in files if f.phase is not Phase.POINTERS], stat)
    return present


async def holds(session: MirrorSession, file: TreeFile) -> bool:
    """Whether the mirror holds ``file`` as the local tree has it, byte for byte.

    Targets carry their SHA-256 in their name, so the same name at the same
    size is the same file (the plan only looks at sizes for them). Versioned
    metadata names carry no hash: another history can hold ``3.snapshot.json``
    with other bytes, so those (and the pointers, which are replaced in place)
    are read from the mirror, at most the local size, and must have the local
    file's size and SHA-256 (taken once per push, not once per mirror).
    """
    served = await get_or_none(session, file.path, file.size)
    if served is None or len(served) != file.size or file.sha256 is None:
        return False
    return hashlib.sha256(served).hexdigest() == file.sha256


def _retention(
    session: MirrorSession,
    files: TreeFiles,
    present: _Inventory,
    *,
    max_delete: int,
) -> tuple[tuple[str, ...], str | None]:
    """What to delete after the new timestamp is live, and why nothing is, when it is not.

    Guarded: only our own folders (``targets/``, ``metadata/``), only with a
    listing (without one we only know what we upload), never more than
    ``max_delete`` files, and never when the local tree is less than half of
    what the mirror holds (a source that came back empty, a wrong output
    folder). Metadata goes first, so no remaining metadata points at a
    deleted target.
    """
    stale = sorted(p for p in present.others if p.startswith(("targets/", "metadata/")))
    if not stale or Capability.LISTING not in session.backend.capabilities:
        return (), None
    if len(stale) > max_delete:
        return (), f"{len(stale)} old files exceed push.max_delete ({max_delete}); none deleted"
    if len(files) < present.count // 2:
        return (), (
            f"the publish tree ({len(files)} files) is less than half of the mirror "
            f"({present.count} files); nothing deleted"
        )
    metadata = [p for p in stale if p.startswith("metadata/")]
    targets = [p for p in stale if p.startswith("targets/")]
    return (*metadata, *targets), None
