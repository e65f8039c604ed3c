"""A whole published repository, verified offline from the publisher's first root.

`mirror restore` takes a publisher's own history back from a mirror, so the
newsroom continues its version numbers instead of starting a new history
that every mirror and reader would have to refuse. Everything it takes back
is checked as a reader checks it: the root chain walked from the first root,
the timestamp and snapshot signed by the roles the newest root names, every
targets role signed by a threshold of its delegator's keys (top-level by the
root, delegated roles by the role that delegates them, hash bins by the
content role), each at the version the snapshot names, every role reached
by a delegation. Expiry alone is not judged: a newsroom that lost its server
for a week restores from mirrors whose timestamp has expired since, and the
next sync signs a fresh one.

Decisions only: bytes in, a verified value or `TamperedError` out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import MetaFile, Root, Snapshot, Targets, Timestamp

from mirror.errors import TamperedError
from mirror.trust.metadata import parse_metadata
from mirror.trust.repository import RepositoryState, SignedRole
from mirror.trust.verify import require_threshold, walk_root_chain


@dataclass(frozen=True)
class AuditedRepository:
    """A published repository whose every metadata file verified."""

    roots: tuple[bytes, ...]
    """Root versions 1 to N, oldest first."""
    timestamp: bytes
    snapshot: bytes
    state: RepositoryState
    """Every targets role with its exact bytes, and the snapshot and timestamp versions."""


def audit(
    first_root: bytes,
    *,
    roots: Mapping[int, bytes],
    timestamp: bytes,
    snapshot: bytes,
    roles: Mapping[str, bytes],
) -> AuditedRepository:
    """Verify a repository given as bytes: ``roots`` from version 2, ``roles`` by role name."""
    first = parse_metadata(first_root, Root, what="root version 1")
    chain = walk_root_chain(first, roots)
    root = chain.root.signed
    served = parse_metadata(timestamp, Timestamp, what="timestamp.json")
    require_threshold(root, Timestamp.type, served, what="timestamp.json")
    snapshot_meta = served.signed.snapshot_meta
    listed = parse_metadata(snapshot, Snapshot, what="the snapshot")
    _check_meta(snapshot_meta, snapshot, listed.signed.version, what="the snapshot")
    require_threshold(root, Snapshot.type, listed, what="the snapshot")

    parsed = {}
    for file_name, meta in listed.signed.meta.items():
        name = file_name.removesuffix(".json")
        data = roles.get(name)
        if data is None:
            raise TamperedError(f"the snapshot lists the role {name}, which is missing")
        metadata = parse_metadata(data, Targets, what=f"the role {name}")
        _check_meta(meta, data, metadata.signed.version, what=f"the role {name}")
        parsed[name] = metadata
    if Targets.type not in parsed:
        raise TamperedError("the snapshot does not list the top-level targets role")

    # Walk the delegations from the top: a role counts only when its delegator vouches for it.
    require_threshold(root, Targets.type, parsed[Targets.type], what="the targets role")
    verified = {Targets.type}
    queue = deque([Targets.type])
    while queue:
        delegator = parsed[queue.popleft()].signed
        if delegator.delegations is None:
            continue
        if delegator.delegations.roles is not None:
            children = list(delegator.delegations.roles)
        elif delegator.delegations.succinct_roles is not None:
            children = list(delegator.delegations.succinct_roles.get_roles())
        else:
            children = []
        for child in children:
            if child in verified or child not in parsed:
                continue
            require_threshold(delegator, child, parsed[child], what=f"the role {child}")
            verified.add(child)
            queue.append(child)
    unreached = sorted(set(parsed) - verified)
    if unreached:
        raise TamperedError(f"no verified role delegates the role {unreached[0]}")

    chain_bytes = (first_root, *chain.accepted)
    return AuditedRepository(
        roots=chain_bytes,
        timestamp=timestamp,
        snapshot=snapshot,
        state=RepositoryState(
            roles={name: SignedRole.of(name, parsed[name], roles[name]) for name in parsed},
            snapshot_version=listed.signed.version,
            timestamp_version=served.signed.version,
            snapshot_expires=listed.signed.expires,
        ),
    )


def _check_meta(meta: MetaFile, data: bytes, version: int, *, what: str) -> None:
    """``data`` is the version (and, when given, the length and hash) its listing names."""
    if version != meta.version:
        raise TamperedError(f"{what} is version {version}, listed as version {meta.version}")
    try:
        meta.verify_length_and_hashes(data)
    except LengthOrHashMismatchError as error:
        raise TamperedError(f"{what} does not match its listed length or hash") from error
