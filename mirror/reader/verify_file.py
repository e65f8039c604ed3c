"""`mirror verify` and `mirror extract`: check an edition file with only a pinned root.

The order is the point. First the archive's *structure* is proven sane
(`EditionArchive.open`), then the embedded signed metadata is verified from
the reader's trusted root (pinned, or newer from state), then every member
is matched one to one against the signed list and streamed through SHA-256
with the signed length as a hard cap, and only then are times and versions
judged. Extraction writes the very bytes that were hashed, into a fresh
temporary folder that is renamed into place only when everything verified.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tuf.api.metadata import Metadata, Root, Targets

from mirror import caps, fsutil
from mirror.edition import ArchiveLimits, ArchiveMember, EditionArchive
from mirror.errors import (
    CompromisedKeyError,
    ForeignEditionError,
    StorageError,
    TamperedError,
    UsageError,
)
from mirror.reader.store import PIN_HINT, ROOTS_HINT, Trust, TrustUpdate, read_state
from mirror.trust import layout, verify
from mirror.trust.members import SignedFile
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import publisher_of, told_apart
from mirror.trust.retired import RetiredKey, retired_keys

_Vouched = tuple[verify.VerifiedManifest, tuple[RetiredKey, ...]]
"""An old edition's member list, and the retired keys that signed it."""


@dataclass(frozen=True)
class Superseded:
    """A genuine edition signed before a routine key rotation the reader's root has seen."""

    root_version: int
    """The root version it was signed under."""
    newest_root_version: int
    retired: datetime
    """When the key that signed it was retired."""


@dataclass(frozen=True)
class Verdict:
    """A verified edition, as `mirror verify` reports it."""

    publisher: str
    publisher_id: str
    eid: str
    version: int
    title: str
    created: datetime
    expires: datetime
    root_version: int
    members: int
    content_bytes: int
    freshness: verify.Freshness
    superseded: Superseded | None
    """Genuine, but signed under an older root by a key the publisher has since retired."""
    update: TrustUpdate
    """What the reader's store should record now (`PublisherStore.apply`)."""


def load_pinned_root(path: Path, *, stored: bool = False) -> Metadata[Root]:
    """Read the reader's pinned ``root.json``; it must be root metadata signed by itself.

    ``stored``: the copy `mirror trust add` keeps in the reader's state
    folder, whose damage is the reader's local problem (`StorageError`, exit
    4), not a wrong command line.
    """
    if stored:
        data = read_state(path, what="pinned root", max_bytes=caps.ROOT_MAX_BYTES, hint=PIN_HINT)
    else:
        data = fsutil.read_bounded(path, max_bytes=caps.ROOT_MAX_BYTES, what="pinned root")
    what = f"your pinned root {path}" if stored else f"the pinned root {path}"
    try:
        root = parse_metadata(data, Root, what=what)
        verify.require_threshold(root.signed, Root.type, root, what=what)
    except TamperedError as error:
        if stored:
            raise StorageError(error.message, hint=PIN_HINT) from error
        raise UsageError(
            f"{path} is not a usable root.json ({error.message})",
            hint="Pin the root.json the publisher gave you out of band.",
        ) from error
    return root


def trusted_root(pinned: Metadata[Root], trust: Trust) -> verify.RootChain:
    """The newest root this reader trusts: the pinned one, walked forward through stored roots.

    Stored roots were accepted by an earlier walk from this pin: when they no
    longer follow from it (a root damaged on disk, a version missing between
    two), the reader's own state is broken, which is a `StorageError`, never
    "tampered" and never a mirror's fault.
    """
    try:
        return verify.walk_root_chain(pinned, trust.roots)
    except TamperedError as error:
        where = f" in {trust.roots_dir}" if trust.roots_dir is not None else ""
        raise StorageError(
            f"your stored roots{where} do not follow from your pinned root ({error.message})",
            hint=ROOTS_HINT,
        ) from error


def verify_edition(
    path: Path,
    *,
    pinned: Metadata[Root],
    trust: Trust,
    now: datetime,
    allow_expired: bool = False,
    extract_to: Path | None = None,
    limits: ArchiveLimits | None = None,
) -> Verdict:
    """Verify the edition at ``path``; with ``extract_to``, also write its files there.

    Raises a `VerificationError` subclass naming what is wrong. Judged
    against ``trust`` (what this reader already trusts for the publisher);
    the returned `Verdict` carries what the reader's store should learn.
    """
    if extract_to is not None and extract_to.exists() and any(extract_to.iterdir()):
        raise UsageError(
            f"{extract_to} already exists and is not empty",
            hint="Extract into a new folder; mirror never overwrites files.",
        )
    publisher_id = publisher_of(pinned.signed).publisher_id
    start = trusted_root(pinned, trust).root
    with EditionArchive.open(path, limits or ArchiveLimits()) as archive:
        embedded, content = _split_members(archive)
        roots = _embedded_roots(archive, embedded)
        _require_publisher(pinned, roots)
        _require_trusted_copies(pinned, trust, roots)
        chain = verify.walk_root_chain(start, roots)
        edition_role = _single_edition_role(embedded)
        proofs = _SignedBytes(
            targets=_read_metadata(archive, embedded, layout.archive_role_name("targets")),
            manifests=_read_metadata(
                archive, embedded, layout.archive_role_name(layout.MANIFESTS_ROLE)
            ),
            edition_role_name=edition_role,
            edition_role=_read_metadata(archive, embedded, layout.archive_role_name(edition_role)),
        )
        manifest, superseded, retired_by = _verify_signed(chain.root, proofs, roots, pinned, trust)
        manifest = _with_embedded_shards(archive, embedded, manifest)
        verify.check_members(manifest, content)
        staging = _staging_dir(extract_to) if extract_to is not None else None
        try:
            total = 0
            for member in _content(archive):
                signed = manifest.members[member.name]
                target = None if staging is None else _open_output(staging, member.name)
                try:
                    _check_member(archive, member, signed, target)
                finally:
                    if target is not None:
                        target.close()
                total += signed.length
            info_member = archive.find(layout.EDITION_INFO_MEMBER)
            if info_member is None:  # unreachable: check_members proved it is present
                raise TamperedError("the archive lacks edition.json")
            info = verify.parse_edition_info(
                archive.read(info_member, max_bytes=caps.EDITION_INFO_MAX_BYTES)
            )
            if retired_by is not None:
                _judge_retired_key(retired_by, info)
            freshness = verify.judge_edition(
                manifest, info, now=now, highest_seen=trust.highest, allow_expired=allow_expired
            )
            if staging is not None and extract_to is not None:
                _commit_extraction(staging, extract_to)
                staging = None
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
    accepted = dict(zip(_accepted_versions(start, chain), chain.accepted, strict=True))
    return Verdict(
        publisher=manifest.publisher.name,
        publisher_id=publisher_id,
        eid=info.eid,
        version=info.version,
        title=info.title,
        created=info.created,
        expires=info.expires,
        root_version=chain.root.signed.version,
        members=len(content),
        content_bytes=total,
        freshness=freshness,
        superseded=superseded,
        update=TrustUpdate(publisher_id, roots=accepted, highest=(info.version, info.eid)),
    )


@dataclass(frozen=True)
class _SignedBytes:
    """The embedded signed metadata that lists an edition's members."""

    targets: bytes
    manifests: bytes
    edition_role_name: str
    edition_role: bytes

    def verify(self, root: Metadata[Root]) -> verify.VerifiedManifest:
        """The member list, verified under ``root``."""
        return verify.verify_manifest(
            root,
            targets_bytes=self.targets,
            manifests_bytes=self.manifests,
            edition_role_name=self.edition_role_name,
            edition_role_bytes=self.edition_role,
        )

    def verify_by_record(
        self, newest: Metadata[Root], retired: dict[str, RetiredKey], signed_under: int
    ) -> _Vouched | None:
        """The member list, if keys ``newest`` records as retired signed it (ADR 0018)."""
        return verify.verify_manifest_by_retired_keys(
            newest,
            retired,
            signed_under=signed_under,
            targets_bytes=self.targets,
            manifests_bytes=self.manifests,
            edition_role_name=self.edition_role_name,
            edition_role_bytes=self.edition_role,
        )


def _require_publisher(pinned: Metadata[Root], roots: dict[int, bytes]) -> None:
    """The archive's own first root must name the pinned publisher: else it is someone else's.

    Checked before any signature, so a reader who picked the wrong root.json
    (or was handed another newsroom's edition) hears that, not "forged".
    """
    first = roots.get(1)
    if first is None:
        raise TamperedError("the archive lacks its root metadata version 1")
    theirs = publisher_of(parse_metadata(first, Root, what="the archive's root version 1").signed)
    ours = publisher_of(pinned.signed)
    if theirs.publisher_id != ours.publisher_id:
        their_name, our_name = told_apart(theirs, ours)
        raise ForeignEditionError(
            f"this edition is from {their_name}, not from {our_name}, whose root you pinned"
        )


def _require_trusted_copies(pinned: Metadata[Root], trust: Trust, roots: dict[int, bytes]) -> None:
    """Every embedded root version this reader already trusts must be exactly that root.

    The chain walk only looks at versions newer than the trusted root; the
    older copies in the archive are still checked, so every byte of a
    verified edition is the publisher's.
    """
    for version, data in roots.items():
        embedded = parse_metadata(data, Root, what=f"the archive's root version {version}")
        trusted = _known_root(version, pinned, trust)
        if trusted is not None and not verify.same_document(embedded, trusted):
            raise TamperedError(
                f"the archive's copy of root version {version} is not the root you trust"
            )


def _verify_signed(
    newest: Metadata[Root],
    signed: _SignedBytes,
    roots: dict[int, bytes],
    pinned: Metadata[Root],
    trust: Trust,
) -> tuple[verify.VerifiedManifest, Superseded | None, RetiredKey | None]:
    """The member list, verified under the reader's newest root — or, for an edition
    signed before a key rotation, by the retired key that signed it.

    The newest root vouches for that key in one of two ways: its record of
    retired keys carries the key itself and the role's threshold (ADR 0018:
    no older root is needed, however many rotations ago it was), or, for
    records older than that, the archive's newest root is one this reader
    trusts (byte for byte) or proven by the root chain to the newest, and the
    edition verifies under it. Either way the key must be recorded as retired
    in the newest root: routinely (the edition is then superseded) or as
    compromised (judged against the edition's date). Otherwise the error under
    the newest root stands.
    """
    try:
        return signed.verify(newest), None, None
    except TamperedError as under_newest:
        signed_under = max(roots, default=0)
        if not 0 < signed_under < newest.signed.version:
            raise
        retired = retired_keys(newest.signed)
        found = signed.verify_by_record(newest, retired, signed_under) or _verify_by_chain(
            signed,
            signed_under,
            roots=roots,
            newest=newest,
            pinned=pinned,
            trust=trust,
            retired=retired,
        )
        if found is None:
            raise under_newest from None
        manifest, used = found
        key = max(used, key=lambda k: (k.compromised_since is not None, k.retired))
        superseded = Superseded(signed_under, newest.signed.version, key.retired)
        return manifest, superseded, key


def _verify_by_chain(
    signed: _SignedBytes,
    signed_under: int,
    *,
    roots: dict[int, bytes],
    newest: Metadata[Root],
    pinned: Metadata[Root],
    trust: Trust,
    retired: dict[str, RetiredKey],
) -> _Vouched | None:
    """The member list under root ``signed_under`` (trusted, or proven by the chain), if a
    key the newest root records as retired signed it; else None."""
    old = _known_root(signed_under, pinned, trust) or _predecessor(
        roots[signed_under], newest, pinned, trust
    )
    if old is None:
        return None
    try:
        manifest = signed.verify(old)
    except TamperedError:
        return None
    targets = parse_metadata(signed.targets, Targets, what="the embedded targets metadata")
    keys = verify.signing_keys(old.signed, Targets.type, targets)
    used = tuple(retired[k] for k in sorted(keys) if k in retired)
    if not used:
        return None
    manifest = dataclasses.replace(
        manifest, expiries={**manifest.expiries, "root": newest.signed.expires}
    )
    return manifest, used


def _known_root(version: int, pinned: Metadata[Root], trust: Trust) -> Metadata[Root] | None:
    """Root ``version`` as this reader trusts it: pinned, or accepted by an earlier walk."""
    known = trust.roots.get(version)
    if known is not None:
        return parse_metadata(known, Root, what=f"your stored root version {version}")
    return pinned if version == pinned.signed.version else None


def _predecessor(
    data: bytes, newest: Metadata[Root], pinned: Metadata[Root], trust: Trust
) -> Metadata[Root] | None:
    """An embedded older root, if the chain from it reaches exactly the newest trusted root.

    A reader who pinned root 2 has never seen root 1; an edition signed under
    root 1 carries it. Root 2 had to be signed by a threshold of root 1's keys,
    so walking from the embedded root 1 to the trusted root 2 proves it is
    the publisher's: a forged root 1 could not have signed the real root 2.
    """
    old = parse_metadata(data, Root, what="the archive's newest root")
    later: dict[int, bytes] = {}
    for version in range(old.signed.version + 1, newest.signed.version + 1):
        known = _known_root(version, pinned, trust)
        if known is None:
            return None
        later[version] = known.to_bytes()
    try:
        reached = verify.walk_root_chain(old, later).root
    except TamperedError:
        return None
    return old if verify.same_document(reached, newest) else None


def _judge_retired_key(key: RetiredKey, info: verify.EditionInfo) -> None:
    """A retired key vouches only for what it signed while it was the publisher's own."""
    created = verify.show_time(info.created)
    if key.compromised_since is not None and info.created >= key.compromised_since:
        raise CompromisedKeyError(
            f"this edition says it was created on {created}, and the key that signed it is "
            f"compromised since {verify.show_time(key.compromised_since)}, as the publisher "
            "declared in a newer root"
        )
    if info.created > key.retired:
        raise TamperedError(
            f"this edition says it was created on {created}, after the key that signed it was "
            f"retired on {verify.show_time(key.retired)}"
        )


def _accepted_versions(start: Metadata[Root], chain: verify.RootChain) -> range:
    first = start.signed.version + 1
    return range(first, first + len(chain.accepted))


def _split_members(archive: EditionArchive) -> tuple[dict[str, ArchiveMember], list[str]]:
    """The embedded metadata members by name, and the names of the content members (made
    one at a time by `_content`: the archive's index keeps them packed)."""
    embedded: dict[str, ArchiveMember] = {}
    content: list[str] = []
    for index, name in enumerate(archive.members.names):
        if name.startswith(layout.ARCHIVE_METADATA_DIR):
            embedded[name] = archive.members[index]
        else:
            content.append(name)
    return embedded, content


def _content(archive: EditionArchive) -> Iterator[ArchiveMember]:
    """The content members, in archive order."""
    for member in archive.members:
        if not member.name.startswith(layout.ARCHIVE_METADATA_DIR):
            yield member


def _embedded_roots(
    archive: EditionArchive, embedded: dict[str, ArchiveMember]
) -> dict[int, bytes]:
    prefix = f"{layout.ARCHIVE_METADATA_DIR}root/"
    roots: dict[int, bytes] = {}
    for name in embedded:
        if name.startswith(prefix):
            version = name[len(prefix) :].removesuffix(".root.json")
            if not version.isdigit() or name != layout.archive_root_name(int(version)):
                raise TamperedError(f"the archive holds an unexpected metadata file {name}")
            roots[int(version)] = _read_metadata(
                archive, embedded, name, max_bytes=caps.ROOT_MAX_BYTES
            )
    return roots


def _embedded_shard(name: str) -> str | None:
    """The member shard an embedded metadata file would be (``members/<bin>.json``), or None."""
    shard = name.removeprefix(layout.ARCHIVE_METADATA_DIR)
    return shard if layout.is_member_shard(shard) else None


def _with_embedded_shards(
    archive: EditionArchive, embedded: dict[str, ArchiveMember], manifest: verify.VerifiedManifest
) -> verify.VerifiedManifest:
    """The verified member list with its shards, read from the archive; an embedded shard the
    signed role does not list is as foreign as any other unsigned metadata file."""
    for name in embedded:
        shard = _embedded_shard(name)
        if shard is not None and shard not in manifest.shards:
            raise TamperedError(f"the archive holds an unexpected metadata file {name}")
    return verify.with_shards(
        manifest,
        lambda shard: _read_metadata(
            archive,
            embedded,
            layout.archive_shard_name(shard),
            max_bytes=caps.MEMBER_SHARD_MAX_BYTES,
        ),
    )


def _single_edition_role(embedded: dict[str, ArchiveMember]) -> str:
    """Name of the one embedded edition role; any metadata file but its shards is foreign."""
    known = {layout.archive_role_name("targets"), layout.archive_role_name(layout.MANIFESTS_ROLE)}
    roles: list[str] = []
    for name in embedded:
        if name in known or name.startswith(f"{layout.ARCHIVE_METADATA_DIR}root/"):
            continue
        if _embedded_shard(name) is not None:
            continue  # judged against the signed role once it verified
        stem = PurePosixPath(name).name.removesuffix(".json")
        if name != layout.archive_role_name(stem) or not stem.startswith(
            layout.EDITION_ROLE_PREFIX
        ):
            raise TamperedError(f"the archive holds an unexpected metadata file {name}")
        roles.append(stem)
    if len(roles) != 1:
        raise TamperedError(f"the archive carries {len(roles)} edition member lists instead of one")
    return roles[0]


def _read_metadata(
    archive: EditionArchive,
    embedded: dict[str, ArchiveMember],
    name: str,
    *,
    max_bytes: int = caps.TARGETS_MAX_BYTES,
) -> bytes:
    member = embedded.get(name)
    if member is None:
        raise TamperedError(f"the archive lacks its signed metadata {name}")
    return archive.read(member, max_bytes=max_bytes)


def _check_member(
    archive: EditionArchive,
    member: ArchiveMember,
    signed: SignedFile,
    target: BinaryIO | None,
) -> None:
    """Stream one member through SHA-256, never past its signed length.

    A member whose stream fails (its CRC-32, its deflate data, its length)
    holds bytes that are not the ones signed: `EditionArchive` raises that as
    tampered, like a wrong hash, for this member as for embedded metadata.
    """
    if member.size != signed.length:
        raise TamperedError(
            f"{member.name} is {member.size} bytes but the publisher signed {signed.length}"
        )
    digest = hashlib.sha256()
    length = 0
    for chunk in archive.iter_chunks(member, max_bytes=signed.length):
        digest.update(chunk)
        length += len(chunk)
        if target is not None:
            target.write(chunk)
    if length != signed.length or digest.hexdigest() != signed.sha256:
        raise TamperedError(f"{member.name} does not match the publisher's signed hash")


def _staging_dir(destination: Path) -> Path:
    parent = destination.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=parent))
    except OSError as error:
        raise StorageError(f"cannot create a folder in {parent} ({error.strerror})") from error


def _open_output(staging: Path, name: str) -> BinaryIO:
    """Create a new regular file for member ``name`` (already proven a safe relative name)."""
    path = staging.joinpath(*PurePosixPath(name).parts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644
        )
        return os.fdopen(fd, "wb")
    except OSError as error:
        raise StorageError(f"cannot write {path} ({error.strerror})") from error


def _commit_extraction(staging: Path, destination: Path) -> None:
    try:
        if destination.exists():
            destination.rmdir()  # proven empty above; rmdir refuses anything else
        os.replace(staging, destination)
    except OSError as error:
        raise StorageError(
            f"cannot move the extracted edition to {destination} ({error.strerror})"
        ) from error
    fsutil.fsync_dir(destination.parent)
