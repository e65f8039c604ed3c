"""Offline verification decisions for an edition archive (pure: bytes in, verdicts out).

The caller reads the archive and the reader's state; these functions decide.
Each check says which attack it stops:

* `walk_root_chain` — key rotation without a trust gap: root N+1 is accepted
  only with a threshold of root N's keys *and* its own, versions strictly
  consecutive (a forged next root signed by old keys alone, or by new keys
  alone, or a skipped version is rejected).
* `verify_manifest` — the embedded ``targets`` → ``manifests`` → edition role
  chain, each signed by a threshold of *distinct* keys the delegator names
  (a signature repeated under another key id, or by a key the delegator does
  not list, counts for nothing); what a role may list is decided by walking
  the delegation paths from the top, never by a file name, so metadata for one
  edition cannot vouch for members of another (mix-and-match).
* `verify_manifest_by_retired_keys` — the same chain for an edition signed
  before a key rotation, with ``targets`` checked against the public keys and
  threshold the *trusted newest* root records for the retired keys (ADR
  0018), never against the archive's own old root: a forged old root that
  maps a retired key id to another key vouches for nothing.
* `with_shards` — the members the role lists through member shards (ADR 0020),
  each shard checked against its signed length and hash, each member in its
  own shard's bin only (`mirror.trust.members`).
* `check_members` — every archive member is listed and every listed member is
  present, one to one (added, removed and renamed members).
* `judge_edition` — the signed edition info agrees with the metadata, and its
  times and version are checked against the reader's clock and state
  (expired, not yet valid, rollback).

Tampering is always decided before freshness: a modified archive is called
tampered even if it is also expired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from securesystemslib.exceptions import FormatError, UnverifiedSignatureError
from securesystemslib.formats import encode_canonical
from tuf.api.metadata import Metadata, Root, Targets

from mirror import caps
from mirror.errors import (
    ExpiredError,
    NotYetValidError,
    RollbackError,
    TamperedError,
)
from mirror.trust import layout, strictjson
from mirror.trust.members import MemberList, SignedFile
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import Publisher, publisher_of
from mirror.trust.retired import KeyListing, RetiredKey

CLOCK_SKEW = timedelta(minutes=10)
"""How far in the future an edition may claim to be created before we call the clock wrong."""


@dataclass(frozen=True)
class RootChain:
    """The newest trusted root after a walk, and the root versions newly accepted."""

    root: Metadata[Root]
    accepted: tuple[bytes, ...]


@dataclass(frozen=True)
class VerifiedManifest:
    """What the signed metadata embedded in an archive says the archive holds."""

    eid: str
    publisher: Publisher
    members: Mapping[str, SignedFile]
    """Member name -> signed file: the role's own entries, and once `with_shards` added
    them, every shard's."""
    expiries: Mapping[str, datetime]
    """Expiry of each signed document that matters offline, by role name."""
    shards: Mapping[str, SignedFile]
    """The member shards the role lists (``members/<bin>.json``) and not added yet."""


@dataclass(frozen=True)
class EditionInfo:
    """The edition's signed description (``edition.json``)."""

    eid: str
    version: int
    created: datetime
    expires: datetime
    publisher: str
    title: str


@dataclass(frozen=True)
class Freshness:
    """How the edition's times relate to the reader's clock, when expiry was allowed."""

    expired: bool
    expired_roles: tuple[str, ...]
    age: timedelta


def same_document(first: Metadata[Any], second: Metadata[Any]) -> bool:
    """Whether two parsed copies are exactly one signed document, signatures included.

    Compared as canonical JSON of everything python-tuf keeps (``to_dict``: the
    signed part, the signatures in order, unsigned extra fields), so key order
    and white space do not matter but every value does. Not with ``==`` on the
    dicts: Python's ``True == 1`` would let a copy with ``"version": true``
    pass for the trusted root version 1.
    """
    try:
        return bool(encode_canonical(first.to_dict()) == encode_canonical(second.to_dict()))
    except FormatError:  # not writable as canonical JSON: not the document we trust
        return False


def signing_keys(delegator: Root | Targets, role: str, metadata: Metadata[Any]) -> set[str]:
    """Ids of the keys ``delegator`` names for ``role`` whose signature on ``metadata`` is valid."""
    try:
        result = delegator.get_verification_result(role, metadata.signed_bytes, metadata.signatures)
    except ValueError as error:
        raise TamperedError(f"no delegation for the {role} role ({error})") from error
    return set(result.signed)


def _distinct_signers(delegator: Root | Targets, role: str, metadata: Metadata[Any]) -> int:
    """Count distinct public keys with a valid signature; duplicated keys count once."""
    try:
        result = delegator.get_verification_result(role, metadata.signed_bytes, metadata.signatures)
    except ValueError as error:
        raise TamperedError(f"no delegation for the {role} role ({error})") from error
    return len({str(key.keyval.get("public")) for key in result.signed.values()})


def require_threshold(
    delegator: Root | Targets, role: str, metadata: Metadata[Any], *, what: str
) -> None:
    """Raise `TamperedError` unless ``metadata`` meets ``delegator``'s threshold for ``role``."""
    try:
        threshold = delegator.get_delegated_role(role).threshold
    except ValueError as error:  # the delegator does not delegate this role at all
        raise TamperedError(f"{what}: nothing delegates the role {role}") from error
    count = _distinct_signers(delegator, role, metadata)
    if count < threshold:
        raise TamperedError(
            f"{what} is signed by {count} of the {threshold} required publisher keys"
        )


def walk_root_chain(trusted: Metadata[Root], candidates: Mapping[int, bytes]) -> RootChain:
    """Advance from ``trusted`` through consecutive newer roots in ``candidates``.

    Every candidate version above the trusted one must be reached: a chain
    with a gap (a "version skip") is tampering, not something to ignore.
    """
    current = trusted
    accepted: list[bytes] = []
    newer = sorted(v for v in candidates if v > trusted.signed.version)
    if len(newer) > caps.MAX_ROOT_ROTATIONS:
        raise TamperedError(f"the root chain is longer than {caps.MAX_ROOT_ROTATIONS} versions")
    for version in newer:
        expected = current.signed.version + 1
        if version != expected:
            raise TamperedError(f"the root chain skips from version {expected - 1} to {version}")
        what = f"root version {version}"
        candidate = parse_metadata(candidates[version], Root, what=what)
        if candidate.signed.version != version:
            raise TamperedError(f"{what} says it is version {candidate.signed.version}")
        require_threshold(current.signed, Root.type, candidate, what=f"{what} (old keys)")
        require_threshold(candidate.signed, Root.type, candidate, what=f"{what} (new keys)")
        if publisher_of(candidate.signed) != publisher_of(current.signed):
            raise TamperedError(f"{what} names a different publisher")
        current = candidate
        accepted.append(candidates[version])
    return RootChain(root=current, accepted=tuple(accepted))


def _delegated_role_for(delegator: Targets, name: str, path_example: str) -> None:
    if delegator.delegations is None or not delegator.delegations.roles:
        raise TamperedError(f"signed metadata does not delegate to the {name} role")
    role = delegator.delegations.roles.get(name)
    if role is None:
        raise TamperedError(f"signed metadata does not delegate to the {name} role")
    if not role.is_delegated_path(path_example):
        raise TamperedError(f"the {name} role may not list {path_example}")


def verify_manifest(
    root: Metadata[Root],
    *,
    targets_bytes: bytes,
    manifests_bytes: bytes,
    edition_role_name: str,
    edition_role_bytes: bytes,
) -> VerifiedManifest:
    """Verify the embedded targets → manifests → edition chain under ``root``.

    Expiry is *recorded*, not enforced, so that tampering is always reported
    first; `judge_edition` enforces it.
    """
    targets = parse_metadata(targets_bytes, Targets, what="the embedded targets metadata")
    require_threshold(root.signed, Targets.type, targets, what="the targets metadata")
    return _member_list(
        root,
        targets,
        manifests_bytes=manifests_bytes,
        edition_role_name=edition_role_name,
        edition_role_bytes=edition_role_bytes,
    )


def verify_manifest_by_retired_keys(
    newest: Metadata[Root],
    retired: Mapping[str, RetiredKey],
    *,
    signed_under: int,
    targets_bytes: bytes,
    manifests_bytes: bytes,
    edition_role_name: str,
    edition_role_bytes: bytes,
) -> tuple[VerifiedManifest, tuple[RetiredKey, ...]] | None:
    """The member list of an edition whose ``targets`` a retired key set signed, or None.

    ``retired`` is the trusted ``newest`` root's record (`retired_keys`);
    ``signed_under`` is the newest root version the archive carries, the root
    it claims to be signed under. ``targets`` must carry a threshold of
    distinct valid signatures from *one* set of retired ``targets`` keys
    (retired together: the same last root version, which must not be older
    than ``signed_under``), with the public keys and threshold as the record
    has them. None when no set does: the caller falls back to the root chain
    (records older than ADR 0018 carry no keys) or calls the edition tampered.
    Returns the member list (the newest root's expiry is the one judged) and
    the retired keys that signed.
    """
    targets = parse_metadata(targets_bytes, Targets, what="the embedded targets metadata")
    sets: dict[int, list[tuple[RetiredKey, KeyListing]]] = {}
    for key in retired.values():
        if key.role == Targets.type and key.listing is not None:
            sets.setdefault(key.listing.root_version, []).append((key, key.listing))
    for version in sorted(sets, reverse=True):
        if version < signed_under:
            continue  # the archive claims a root that no longer listed these keys
        signed = _retired_signers(sets[version], targets)
        threshold = max(listing.threshold for _, listing in sets[version])
        if len({str(listing.key.keyval.get("public")) for _, listing in signed}) < threshold:
            continue  # distinct public keys, as everywhere: one key under two ids counts once
        manifest = _member_list(
            newest,
            targets,
            manifests_bytes=manifests_bytes,
            edition_role_name=edition_role_name,
            edition_role_bytes=edition_role_bytes,
        )
        return manifest, tuple(sorted((key for key, _ in signed), key=lambda k: k.keyid))
    return None


def _retired_signers(
    keys: list[tuple[RetiredKey, KeyListing]], targets: Metadata[Targets]
) -> list[tuple[RetiredKey, KeyListing]]:
    """The retired keys with a valid signature on ``targets``, checked with the recorded key."""
    signed = []
    for key, listing in keys:
        signature = targets.signatures.get(key.keyid)
        if signature is None:
            continue
        try:
            listing.key.verify_signature(signature, targets.signed_bytes)
        except UnverifiedSignatureError:
            continue
        signed.append((key, listing))
    return signed


def _member_list(
    root: Metadata[Root],
    targets: Metadata[Targets],
    *,
    manifests_bytes: bytes,
    edition_role_name: str,
    edition_role_bytes: bytes,
) -> VerifiedManifest:
    """Below ``targets`` (already verified): manifests → edition role, and the member list."""
    manifests = parse_metadata(manifests_bytes, Targets, what="the embedded manifests metadata")
    require_threshold(
        targets.signed, layout.MANIFESTS_ROLE, manifests, what="the manifests metadata"
    )
    edition = parse_metadata(edition_role_bytes, Targets, what="the embedded edition metadata")
    require_threshold(
        manifests.signed, edition_role_name, edition, what="the edition's member list"
    )
    if not edition_role_name.startswith(layout.EDITION_ROLE_PREFIX):
        raise TamperedError(f"{edition_role_name} is not an edition role")
    eid = edition_role_name[len(layout.EDITION_ROLE_PREFIX) :]
    if not layout.EDITION_ID_RE.match(eid):
        raise TamperedError(f"{eid!r} is not a valid edition id")
    prefix = f"manifests/{eid}/"
    listed: dict[str, SignedFile] = {}
    for path, target in edition.signed.targets.items():
        # Decided by delegation paths from the top, never by the file's name.
        _delegated_role_for(targets.signed, layout.MANIFESTS_ROLE, path)
        _delegated_role_for(manifests.signed, edition_role_name, path)
        if not path.startswith(prefix):
            raise TamperedError(f"the edition's member list names {path}, outside {prefix}")
        sha256 = target.hashes.get("sha256")
        if not isinstance(sha256, str) or len(sha256) != 64:
            raise TamperedError(f"the signed entry for {path} has no SHA-256 hash")
        listed[path[len(prefix) :]] = SignedFile(length=target.length, sha256=sha256.lower())
    member_list = MemberList(listed)
    if layout.EDITION_INFO_MEMBER not in member_list.members:
        raise TamperedError("the edition's member list does not include edition.json")
    expiries: dict[str, datetime] = {
        "root": root.signed.expires,
        "targets": targets.signed.expires,
        layout.MANIFESTS_ROLE: manifests.signed.expires,
        edition_role_name: edition.signed.expires,
    }
    return VerifiedManifest(
        eid=eid,
        publisher=publisher_of(root.signed),
        members=member_list.members,
        expiries=expiries,
        shards=member_list.shards,
    )


def with_shards(
    manifest: VerifiedManifest, shard_bytes: Callable[[str], bytes]
) -> VerifiedManifest:
    """The manifest with the members of its shards: ``shard_bytes(name)`` gives each shard's
    bytes (``members/<bin>.json``), which must be the signed ones (`members.MemberList`)."""
    member_list = MemberList({**manifest.members, **manifest.shards})
    for name in member_list.missing:
        member_list.add_shard(name, shard_bytes(name))
    return replace(manifest, members=member_list.complete(), shards={})


def check_members(manifest: VerifiedManifest, archive_names: list[str]) -> None:
    """Require archive content members and signed members to match one to one.

    The shards must have been added (`with_shards`): a manifest without them
    lacks the edition's articles, so every article would be "not signed".
    """
    if manifest.shards:
        raise ValueError("check_members needs the members of the shards (with_shards)")
    present = set(archive_names)
    for name in archive_names:
        if name not in manifest.members:
            raise TamperedError(f"the archive holds {name}, which the publisher did not sign")
    for name in manifest.members:
        if name not in present:
            raise TamperedError(f"the archive lacks {name}, which the publisher signed")


def parse_edition_info(data: bytes) -> EditionInfo:
    """Parse the (already hash-verified) ``edition.json`` member."""
    document = strictjson.loads(data, what="edition.json")
    try:
        info = EditionInfo(
            eid=_field(document, "edition", str),
            version=_field(document, "version", int),
            created=_parse_time(_field(document, "created", str)),
            expires=_parse_time(_field(document, "expires", str)),
            publisher=_field(document, "publisher", str),
            title=_field(document, "title", str),
        )
    except ValueError as error:
        raise TamperedError(f"edition.json is malformed ({error})") from error
    return info


def _field(document: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name} is missing or not a {kind.__name__}")
    return value


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text} has no time zone")
    return moment


def judge_edition(
    manifest: VerifiedManifest,
    info: EditionInfo,
    *,
    now: datetime,
    highest_seen: tuple[int, str] | None,
    allow_expired: bool,
) -> Freshness:
    """Decide consistency, rollback and freshness of a verified edition.

    ``highest_seen`` is the (version, edition id) of the newest edition this
    reader has verified before, or None.
    """
    if info.eid != manifest.eid:
        raise TamperedError(
            f"edition.json says {info.eid} but the signed member list is for {manifest.eid}"
        )
    if not manifest.eid.endswith(f"-v{info.version}"):
        raise TamperedError(f"edition {manifest.eid} does not carry version {info.version}")
    if info.expires < info.created:
        raise TamperedError("the edition expires before it was created")
    if highest_seen is not None:
        seen_version, seen_eid = highest_seen
        if info.version < seen_version:
            raise RollbackError(
                f"this is edition version {info.version}, older than version {seen_version} "
                "that you already verified"
            )
        if info.version == seen_version and info.eid != seen_eid:
            raise TamperedError(
                f"version {info.version} was already verified as {seen_eid}, not {info.eid}"
            )
    if info.created > now + CLOCK_SKEW:
        raise NotYetValidError(
            f"the edition says it was created at {show_time(info.created)}, after your clock's "
            f"time {show_time(now)}"
        )
    expired_roles = tuple(sorted(role for role, when in manifest.expiries.items() if when <= now))
    if info.expires <= now:
        expired_roles = ("edition", *expired_roles)
    if expired_roles and not allow_expired:
        raise ExpiredError(
            f"the edition expired at {show_time(min(info.expires, *manifest.expiries.values()))}; "
            f"your clock says {show_time(now)}"
        )
    return Freshness(
        expired=bool(expired_roles), expired_roles=expired_roles, age=now - info.created
    )


def show_time(moment: datetime) -> str:
    """A moment as a reader reads it: UTC to the minute, whatever offset it was written in.

    An edition's own times keep their offset (``10:00+02:00``); labelling that
    wall-clock time "UTC" would be two hours wrong, so it is converted first.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
