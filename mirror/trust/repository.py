"""Producing the signed TUF metadata for a new edition (pure: no I/O).

Signing happens in two phases, because the edition ZIP embeds part of the
metadata and the rest must name the ZIP's own hash:

1. `sign_edition` — before the ZIP is written: updates the content hash
   bins with this edition's articles and assets, creates the per-edition
   role listing the edition's pages and its member shards (ADR 0020: the
   articles and assets by hash bin, `edition_listing`), and re-signs
   ``manifests`` and the top-level ``targets`` (which lists the signed
   mirror list). The ZIP embeds the root chain, ``targets``, ``manifests``,
   the edition role and its shards.
2. `sign_release` — after the ZIP is written: lists the ZIP and its
   ``.minisig`` in ``editions``, then signs ``snapshot`` (the version of every
   targets role) and ``timestamp``.

Only roles whose content changed (or whose expiry is near, or whose keys
changed) get a new version, so adding ten articles to a large archive
re-signs about ten bins plus a handful of small roles.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from securesystemslib.signer import Key, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

from mirror.trust import layout
from mirror.trust.members import Shard, bin_suffix, in_shards, write_shards
from mirror.trust.metadata import serializer


@dataclass(frozen=True, slots=True)
class TargetEntry:
    """One published file: its target path, length and SHA-256 (hex)."""

    path: str
    length: int
    sha256: str

    def target_file(self) -> TargetFile:
        """The python-tuf `TargetFile` for this entry."""
        return TargetFile(self.length, {"sha256": self.sha256}, self.path)


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long each kind of metadata stays valid, in days."""

    edition_days: int = 30
    long_lived_days: int = 365
    refresh_margin_days: int = 60
    snapshot_days: int = 30
    timestamp_days: int = 7


@dataclass(frozen=True)
class SignedRole:
    """A role as published: its exact bytes, and the few facts signing decisions need.

    The parsed metadata is not kept: a repository of 100,000 articles has
    120,000 targets in its content bins, which python-tuf holds in about
    90 MB; as bytes they take 16 MB, deflated 6.6 MB. `data` inflates them
    and `metadata` parses them when asked: a build changes a few bins.
    """

    name: str
    packed: bytes
    """The exact bytes, deflated (`of` packs them)."""
    version: int
    expires: datetime
    signers: frozenset[str]
    """Key ids with a signature on the role (valid or not: it is the publisher's own)."""

    @classmethod
    def of(cls, name: str, metadata: Metadata[Targets], data: bytes) -> SignedRole:
        """The role ``metadata``, whose exact bytes are ``data``."""
        signed = metadata.signed
        return cls(
            name,
            zlib.compress(data, 1),
            signed.version,
            signed.expires,
            frozenset(metadata.signatures),
        )

    @property
    def data(self) -> bytes:
        """The role's exact bytes, as published."""
        return zlib.decompress(self.packed)

    @classmethod
    def parse(cls, name: str, data: bytes) -> SignedRole:
        """The role whose bytes are ``data`` (read back from the publisher's own tree)."""
        return cls.of(name, Metadata[Targets].from_bytes(data), data)

    def metadata(self) -> Metadata[Targets]:
        """The role parsed again from its bytes (a new object each time; not kept)."""
        return Metadata[Targets].from_bytes(self.data)


@dataclass(frozen=True)
class RepositoryState:
    """All targets roles of the repository as currently published, by role name."""

    roles: Mapping[str, SignedRole] = field(default_factory=dict)
    snapshot_version: int = 0
    timestamp_version: int = 0
    snapshot_expires: datetime | None = None
    """When the published snapshot expires (None before the first edition)."""


def edition_ids(state: RepositoryState) -> list[str]:
    """Ids of the editions in the repository (one role each), oldest first."""
    eids = [
        name.removeprefix(layout.EDITION_ROLE_PREFIX)
        for name in state.roles
        if name.startswith(layout.EDITION_ROLE_PREFIX)
    ]
    return sorted(eids, key=layout.edition_version)


def half_life(expires: datetime, *, lifetime: timedelta) -> datetime:
    """When metadata valid until ``expires`` (for ``lifetime``) must be signed again.

    Half its lifetime is the margin, the one rule for every re-signing
    between editions: a newsroom whose timer runs less often than that, or
    misses a few runs, still never lets mirrors serve expired metadata.
    """
    return expires - lifetime / 2


def past_half_life(expires: datetime, *, now: datetime, lifetime: timedelta) -> bool:
    """Whether metadata valid until ``expires`` must be signed again by ``now`` (`half_life`)."""
    return now >= half_life(expires, lifetime=lifetime)


def _renewals(state: RepositoryState, policy: ExpiryPolicy) -> list[tuple[str, datetime, int]]:
    """(what, expires, lifetime in days) of the metadata a new edition signs again."""
    eids = edition_ids(state)
    if not eids or state.snapshot_expires is None:
        return []
    newest = state.roles[layout.edition_role(eids[-1])]
    return [
        (f"edition {eids[-1]}", newest.expires, policy.edition_days),
        ("the snapshot", state.snapshot_expires, policy.snapshot_days),
    ]


def renewal_due(state: RepositoryState, *, now: datetime, policy: ExpiryPolicy) -> str | None:
    """Why the newest edition must be signed again as a new edition, though its content
    is the same; None while it stays valid long enough.

    Between editions only the timestamp is re-signed (`resign_timestamp`); the
    snapshot and the newest edition's role expire with the edition, so past
    half their lifetime (`half_life`) the same content becomes a new edition.
    """
    for what, expires, days in _renewals(state, policy):
        if past_half_life(expires, now=now, lifetime=timedelta(days=days)):
            return f"{what} expires on {expires:%Y-%m-%d %H:%M} UTC, past half its {days} days"
    return None


def renewal_at(state: RepositoryState, *, policy: ExpiryPolicy) -> datetime | None:
    """When `renewal_due` first says yes for ``state`` (None without an edition)."""
    moments = [
        half_life(expires, lifetime=timedelta(days=days))
        for _, expires, days in _renewals(state, policy)
    ]
    return min(moments, default=None)


@dataclass(frozen=True)
class EditionSigning:
    """What phase 1 produced: the new state and the roles it (re)signed."""

    state: RepositoryState
    changed: tuple[SignedRole, ...]
    edition_role: SignedRole
    shards: tuple[Shard, ...]
    """The edition's member shards, which its role lists: for the ZIP and the publish tree."""


@dataclass(frozen=True)
class Release:
    """What phase 2 produced: re-signed roles plus the new snapshot and timestamp bytes."""

    state: RepositoryState
    changed: tuple[SignedRole, ...]
    snapshot: bytes
    snapshot_version: int
    timestamp: bytes


def _sign(name: str, targets: Targets, signer: Signer) -> SignedRole:
    metadata = Metadata(targets)
    metadata.sign(signer)
    return SignedRole.of(name, metadata, metadata.to_bytes(serializer()))


def _delegated(name: str, key: Key, paths: Sequence[str]) -> DelegatedRole:
    return DelegatedRole(name, [key.keyid], 1, True, paths=list(paths))


class _Editor:
    """Collects role changes for one signing phase; each changed role is signed once."""

    def __init__(self, state: RepositoryState, signer: Signer, now: datetime, policy: ExpiryPolicy):
        self.roles = dict(state.roles)
        self.state = state
        self.signer = signer
        self.key: Key = signer.public_key
        self.now = now
        self.policy = policy
        self.changed: dict[str, SignedRole] = {}

    def existing(self, name: str) -> Targets | None:
        """The role as it is now, parsed afresh (the caller may change it)."""
        role = self.roles.get(name)
        return None if role is None else role.metadata().signed

    def stale(self, name: str) -> bool:
        """True when a role must be re-signed anyway: missing, near expiry, or other keys."""
        role = self.roles.get(name)
        if role is None:
            return True
        margin = timedelta(days=self.policy.refresh_margin_days)
        return role.expires <= self.now + margin or self.key.keyid not in role.signers

    def put(self, name: str, targets: Targets, *, expires_days: int) -> SignedRole:
        previous = self.roles.get(name)
        targets.version = 1 if previous is None else previous.version + 1
        targets.expires = self.now + timedelta(days=expires_days)
        signed = _sign(name, targets, self.signer)
        self.roles[name] = signed
        self.changed[name] = signed
        return signed

    def result_state(self) -> RepositoryState:
        return replace(self.state, roles=self.roles)


def _content_bins(bits: int, key: Key) -> SuccinctRoles:
    return SuccinctRoles([key.keyid], 1, bits, layout.CONTENT_ROLE)


class MemberLedger:
    """An edition's members as they are written, kept small: articles and assets by hash bin.

    An archive of 100,000 articles has 120,000 members; as `TargetEntry`
    objects, with their hashes, they took about 250 bytes each and scattered
    the heap. Here each article and asset is one line of text in its bin's
    buffer (about 90 bytes), parsed back one bin at a time when the bins and
    the member shards are signed; the edition's own pages, a handful, stay
    entries. Bins are cut as the content bins and the member shards are
    (`members.bin_suffix`, ``bits`` bits).
    """

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self._bins: dict[str, bytearray] = {}
        self._pages: list[TargetEntry] = []
        self._count = 0

    @classmethod
    def of(cls, entries: Iterable[TargetEntry], *, bits: int) -> MemberLedger:
        """A ledger holding ``entries``."""
        ledger = cls(bits)
        for entry in entries:
            ledger.add(entry)
        return ledger

    def add(self, entry: TargetEntry) -> None:
        """Record one member (names come from the edition writer: no control characters)."""
        if in_shards(entry.path):
            line = f"{entry.path}\t{entry.length}\t{entry.sha256}\n".encode()
            self._bins.setdefault(bin_suffix(entry.path, self.bits), bytearray()).extend(line)
        else:
            self._pages.append(entry)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[TargetEntry]:
        """Every member: the pages, then the articles and assets bin by bin."""
        yield from self._pages
        for suffix in self.bins():
            yield from self.in_bin(suffix)

    @property
    def pages(self) -> list[TargetEntry]:
        """The members that are not articles or assets, in the order written."""
        return list(self._pages)

    def bins(self) -> list[str]:
        """The hash bins (hex suffixes) that hold members, in order."""
        return sorted(self._bins)

    def in_bin(self, suffix: str) -> list[TargetEntry]:
        """The articles and assets of bin ``suffix``, in the order written."""
        entries = []
        for line in bytes(self._bins.get(suffix, b"")).decode().splitlines():
            path, length, sha256 = line.split("\t")
            entries.append(TargetEntry(path, int(length), sha256))
        return entries


def edition_listing(members: MemberLedger) -> tuple[list[TargetEntry], list[Shard]]:
    """What an edition's role lists, by member name, and the shards among them (ADR 0020).

    The edition's own pages are listed as they are; its articles and assets
    go into member shards (`mirror.trust.members`), one per bin, which the
    role lists by length and hash. The same members always give the same
    listing, byte for byte.
    """
    shards = [
        shard
        for suffix in members.bins()
        for shard in write_shards(
            ((m.path, m.length, m.sha256) for m in members.in_bin(suffix)), bits=members.bits
        )
    ]
    listed = members.pages
    listed += [
        TargetEntry(shard.name, len(shard.data), hashlib.sha256(shard.data).hexdigest())
        for shard in shards
    ]
    return listed, shards


def sign_edition(
    state: RepositoryState,
    *,
    signer: Signer,
    eid: str,
    members: MemberLedger,
    mirror_list: TargetEntry,
    now: datetime,
    policy: ExpiryPolicy,
    drop_editions: Collection[str] = (),
    kept_content: Collection[str] = (),
    reader_page: TargetEntry | None = None,
) -> EditionSigning:
    """Phase 1: sign the content bins, this edition's role, ``manifests`` and ``targets``.

    ``members`` are the ZIP members by member name (``index.html``,
    ``articles/x.html``…), except the embedded ``.mirror/`` metadata; their
    bit length is the content bins' (`trust.hash_bin_bits`).
    ``drop_editions`` (ids) leave the repository: their roles go, and content
    that neither this edition nor ``kept_content`` (the content paths of the
    editions kept, their shards included) uses leaves the bins.
    """
    editor = _Editor(state, signer, now, policy)
    key = editor.key
    long_days = policy.long_lived_days
    dropped_roles = {layout.edition_role(eid) for eid in drop_editions}
    for name in dropped_roles:
        editor.roles.pop(name, None)
    referenced = _retained_content(kept_content, members) if dropped_roles else None

    # Content: articles and assets, spread over succinct hash bins.
    bins = _content_bins(members.bits, key)
    content = editor.existing(layout.CONTENT_ROLE)
    if (
        content is None
        or content.delegations is None
        or content.delegations.succinct_roles != bins
        or editor.stale(layout.CONTENT_ROLE)
    ):
        editor.put(
            layout.CONTENT_ROLE,
            Targets(delegations=Delegations(keys={key.keyid: key}, succinct_roles=bins)),
            expires_days=long_days,
        )
    # One bin at a time, so only one bin's targets are ever parsed objects.
    prefix = f"{layout.CONTENT_ROLE}-"
    for bin_name in bins.get_roles():
        current = editor.existing(bin_name)
        wanted = dict(current.targets) if current is not None else {}
        if referenced is not None:
            wanted = {path: t for path, t in wanted.items() if path in referenced}
        added = members.in_bin(bin_name.removeprefix(prefix))
        wanted.update((entry.path, entry.target_file()) for entry in added)
        if current is None or wanted != current.targets or editor.stale(bin_name):
            editor.put(bin_name, Targets(targets=wanted), expires_days=long_days)

    # This edition's own role: its pages and its member shards, under manifests/<eid>/.
    edition_name = layout.edition_role(eid)
    listed, shards = edition_listing(members)
    entries = sorted(
        (TargetEntry(layout.manifest_path(eid, m.path), m.length, m.sha256) for m in listed),
        key=lambda entry: entry.path,
    )
    edition_role = editor.put(
        edition_name,
        Targets(targets={entry.path: entry.target_file() for entry in entries}),
        expires_days=policy.edition_days,
    )

    # manifests: one delegation per retained edition, newest last.
    manifests = editor.existing(layout.MANIFESTS_ROLE)
    edition_delegations = _edition_delegations(
        manifests, key, keep=_edition_names(state) - dropped_roles
    )
    edition_delegations[edition_name] = _delegated(
        edition_name, key, layout.edition_role_patterns(eid)
    )
    editor.put(
        layout.MANIFESTS_ROLE,
        Targets(delegations=Delegations(keys={key.keyid: key}, roles=edition_delegations)),
        expires_days=long_days,
    )

    # Top-level targets: the mirror list, the reader page, and the three delegations.
    listed = [mirror_list, *([reader_page] if reader_page is not None else [])]
    top = Targets(
        targets={entry.path: entry.target_file() for entry in listed},
        delegations=Delegations(
            keys={key.keyid: key},
            roles={
                layout.CONTENT_ROLE: _delegated(layout.CONTENT_ROLE, key, layout.CONTENT_PATTERNS),
                layout.EDITIONS_ROLE: _delegated(
                    layout.EDITIONS_ROLE, key, layout.EDITIONS_PATTERNS
                ),
                layout.MANIFESTS_ROLE: _delegated(
                    layout.MANIFESTS_ROLE, key, layout.MANIFESTS_PATTERNS
                ),
            },
        ),
    )
    editor.put("targets", top, expires_days=long_days)
    return EditionSigning(
        state=editor.result_state(),
        changed=tuple(editor.changed.values()),
        edition_role=edition_role,
        shards=tuple(shards),
    )


def _retained_content(kept: Collection[str], members: Iterable[TargetEntry]) -> set[str]:
    """Content paths used by the new edition or by an edition that stays."""
    used = {m.path for m in members if layout.is_content_path(m.path)}
    used.update(path for path in kept if layout.is_content_path(path))
    return used


def editions_to_drop(
    state: RepositoryState, *, now: datetime, retention_days: int, keep_newest: int
) -> list[str]:
    """Ids of editions older than the retention window, never the newest ``keep_newest``.

    An edition's age is its id's date. Keeping the newest few whatever their
    age means a publisher who stops building never empties the mirrors.
    """
    eids = sorted(
        (name.removeprefix(layout.EDITION_ROLE_PREFIX) for name in _edition_names(state)),
        key=layout.edition_version,
    )
    horizon = (now - timedelta(days=retention_days)).date()
    candidates = eids[: max(len(eids) - keep_newest, 0)]
    return [eid for eid in candidates if layout.edition_date(eid) < horizon]


def _edition_names(state: RepositoryState) -> set[str]:
    return {name for name in state.roles if name.startswith(layout.EDITION_ROLE_PREFIX)}


def _edition_delegations(
    manifests: Targets | None, key: Key, *, keep: Iterable[str]
) -> dict[str, DelegatedRole]:
    """Delegations to the retained editions, re-pointed at the current targets key."""
    kept = set(keep)
    result: dict[str, DelegatedRole] = {}
    if manifests is not None and manifests.delegations is not None and manifests.delegations.roles:
        for name, role in manifests.delegations.roles.items():
            if name in kept and role.paths is not None:
                result[name] = _delegated(name, key, role.paths)
    return result


def sign_release(
    state: RepositoryState,
    *,
    targets_signer: Signer,
    snapshot_signer: Signer,
    timestamp_signer: Signer,
    release_files: Sequence[TargetEntry],
    now: datetime,
    policy: ExpiryPolicy,
    drop_editions: Collection[str] = (),
) -> Release:
    """Phase 2: list the edition files in ``editions``, then sign snapshot and timestamp."""
    editor = _Editor(state, targets_signer, now, policy)
    editions = editor.existing(layout.EDITIONS_ROLE) or Targets()
    dropped = {layout.edition_zip_path(eid) for eid in drop_editions}
    wanted = {
        path: target
        for path, target in editions.targets.items()
        # Only the newest edition's latest bundle is listed: readers want the newest articles.
        if path.removesuffix(".minisig") not in dropped and not layout.is_latest_bundle(path)
    }
    for entry in release_files:
        wanted[entry.path] = entry.target_file()
    editor.put(layout.EDITIONS_ROLE, Targets(targets=wanted), expires_days=policy.long_lived_days)
    roles = editor.roles

    snapshot = Snapshot(
        version=state.snapshot_version + 1,
        expires=now + timedelta(days=policy.snapshot_days),
        meta={
            f"{name}.json": MetaFile(version=role.version) for name, role in sorted(roles.items())
        },
    )
    snapshot_md = Metadata(snapshot)
    snapshot_md.sign(snapshot_signer)
    snapshot_bytes = snapshot_md.to_bytes(serializer())

    timestamp = Timestamp(
        version=state.timestamp_version + 1,
        expires=now + timedelta(days=policy.timestamp_days),
        snapshot_meta=MetaFile.from_data(snapshot.version, snapshot_bytes, ["sha256"]),
    )
    timestamp_md = Metadata(timestamp)
    timestamp_md.sign(timestamp_signer)
    new_state = RepositoryState(
        roles=roles,
        snapshot_version=snapshot.version,
        timestamp_version=timestamp.version,
        snapshot_expires=snapshot.expires,
    )
    return Release(
        state=new_state,
        changed=tuple(editor.changed.values()),
        snapshot=snapshot_bytes,
        snapshot_version=snapshot.version,
        timestamp=timestamp_md.to_bytes(serializer()),
    )


def resign_timestamp(
    current: Metadata[Timestamp], *, signer: Signer, now: datetime, lifetime: timedelta
) -> bytes:
    """The next timestamp version for the same snapshot, valid for ``lifetime`` from ``now``.

    Keeps mirrors fresh between editions: readers reject an expired timestamp
    (freeze attack), so it must be re-signed even when nothing else changed.
    """
    timestamp = Timestamp(
        version=current.signed.version + 1,
        expires=now + lifetime,
        snapshot_meta=current.signed.snapshot_meta,
    )
    metadata = Metadata(timestamp)
    metadata.sign(signer)
    return metadata.to_bytes(serializer())
