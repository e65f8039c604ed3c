"""Whose history does a mirror hold, and where does it stand against the publisher's own?

Before a push writes anything, the publisher compares what a mirror holds
with its local publish tree. A mirror's ``timestamp.json`` is *ours* when it
verifies, as a reader would, against the mirror's root chain walked from our
first root (expiry aside: an old mirror is simply behind). Then:

===========  ===================================================  =========
standing     what it means                                        push
===========  ===================================================  =========
empty        nothing published there yet                          go on
behind       an older point of our own history                    go on
identical    exactly our current timestamp                        go on
damaged      its metadata is ours in name but does not verify     go on (it
             (half-written, vandalised): readers reject it now    is mended)
ahead        a newer timestamp than ours: our local tree was      refuse
             lost, or restored from an older backup
diverged     the same version with other bytes: another host     refuse
             with our keys published its own history
foreign      another publisher's repository (or none of ours)     refuse
===========  ===================================================  =========

Pushing over an *ahead* mirror would roll its readers' publisher back in
time; over a *diverged* one it would mix two histories under one version
number. Both are refused with the versions named, and `mirror restore`
takes the mirror's history back into the local tree. Decisions here take
bytes and return a value; reading the files is the caller's job.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from tuf.api.metadata import Metadata, Root, Timestamp

from mirror.errors import VerificationError
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import publisher_of
from mirror.trust.verify import require_threshold, walk_root_chain


class Standing(enum.Enum):
    """Where a mirror's history stands against the local one."""

    EMPTY = "empty"
    BEHIND = "behind"
    IDENTICAL = "identical"
    DAMAGED = "damaged"
    AHEAD = "ahead"
    DIVERGED = "diverged"
    FOREIGN = "foreign"

    @property
    def refused(self) -> bool:
        """Whether a push must leave this mirror untouched."""
        return self in (Standing.AHEAD, Standing.DIVERGED, Standing.FOREIGN)


@dataclass(frozen=True)
class LocalHistory:
    """What the publisher's local tree says about its own history."""

    first_root: bytes
    """``1.root.json``: where every reader's chain walk starts."""
    timestamp: bytes | None
    """The current ``timestamp.json`` (None: nothing was built here yet)."""
    snapshots: Mapping[int, bytes]
    """The versioned snapshots the tree still keeps, by version."""


@dataclass(frozen=True)
class MirrorHistory:
    """What a mirror holds: its pointer files and the metadata they name (None: absent)."""

    timestamp: bytes | None
    roots: Mapping[int, bytes]
    """``N.root.json`` files from version 2 on, as the mirror holds them."""
    first_root: bytes | None
    snapshot: bytes | None
    """The ``N.snapshot.json`` its timestamp names, if the mirror has it."""


@dataclass(frozen=True)
class Judgement:
    """A mirror's standing, the versions compared, and one sentence saying why."""

    standing: Standing
    served_version: int | None
    local_version: int
    reason: str


def judge(local: LocalHistory, mirror: MirrorHistory) -> Judgement:
    """The standing of ``mirror``'s history against ``local`` (see the module docstring)."""
    local_version = (
        0
        if local.timestamp is None
        else Metadata[Timestamp].from_bytes(local.timestamp).signed.version
    )

    def result(standing: Standing, served: int | None, reason: str) -> Judgement:
        return Judgement(standing, served, local_version, reason)

    if mirror.timestamp is None:
        return result(Standing.EMPTY, None, "nothing is published there yet")
    first = parse_metadata(local.first_root, Root, what="the local root version 1")
    if mirror.first_root is not None and mirror.first_root != local.first_root:
        other = _publisher_name(mirror.first_root)
        if other is not None and other != publisher_of(first.signed).name:
            return result(
                Standing.FOREIGN, None, f"it holds the repository of another publisher, {other}"
            )
        return result(Standing.FOREIGN, None, "its root metadata version 1 is not this publisher's")
    try:
        chain = walk_root_chain(first, mirror.roots)
        served = parse_metadata(mirror.timestamp, Timestamp, what="its timestamp.json")
        require_threshold(chain.root.signed, Timestamp.type, served, what="its timestamp.json")
    except VerificationError as error:
        return result(
            Standing.DAMAGED,
            None,
            f"its metadata does not verify ({error.message}); this push replaces it",
        )
    version = served.signed.version
    if local.timestamp is None:
        return result(
            Standing.AHEAD,
            version,
            f"it serves timestamp version {version} and the local publish tree is empty: "
            "this publisher's history is on the mirrors, not here",
        )
    if version > local_version:
        return result(
            Standing.AHEAD,
            version,
            f"it serves timestamp version {version}, newer than the local tree's "
            f"{local_version}: the local publish tree is older than what was published",
        )
    if version == local_version and mirror.timestamp != local.timestamp:
        return result(
            Standing.DIVERGED,
            version,
            f"it serves timestamp version {version} with other bytes than the local tree's: "
            "another host with these keys published its own history",
        )
    snapshot_version = served.signed.snapshot_meta.version
    kept = local.snapshots.get(snapshot_version)
    if kept is not None and mirror.snapshot is not None and mirror.snapshot != kept:
        return result(
            Standing.DIVERGED,
            version,
            f"its snapshot version {snapshot_version} differs from the local tree's: "
            "another host with these keys published its own history",
        )
    if version == local_version:
        return result(Standing.IDENTICAL, version, "it serves the local tree's timestamp")
    return result(
        Standing.BEHIND, version, f"it serves timestamp version {version} of {local_version}"
    )


def snapshot_version_of(timestamp: bytes) -> int | None:
    """The snapshot version a ``timestamp.json`` names (None when it cannot be read)."""
    try:
        served = parse_metadata(timestamp, Timestamp, what="timestamp.json")
    except VerificationError:
        return None
    return served.signed.snapshot_meta.version


def _publisher_name(first_root: bytes) -> str | None:
    try:
        return publisher_of(parse_metadata(first_root, Root, what="root").signed).name
    except VerificationError:
        return None
