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

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tuf.api.metadata import Metadata, Root

from mirror import caps, fsutil
from mirror.edition import ArchiveLimits, ArchiveMember, EditionArchive
from mirror.errors import StorageError, TamperedError, UsageError
from mirror.reader.store import Trust, TrustUpdate
from mirror.trust import layout, verify
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import publisher_of


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
    update: TrustUpdate
    """What the reader's store should record now (`PublisherStore.apply`)."""


def load_pinned_root(path: Path) -> Metadata[Root]:
    """Read the reader's pinned ``root.json``; it must be root metadata signed by itself."""
    data = fsutil.read_bounded(path, max_bytes=caps.ROOT_MAX_BYTES, what="pinned root")
    try:
        root = parse_metadata(data, Root, what=f"the pinned root {path}")
        verify.require_threshold(root.signed, Root.type, root, what=f"the pinned root {path}")
    except TamperedError as error:
        raise UsageError(
            f"{path} is not a usable root.json ({error.message})",
            hint="Pin the root.json the publisher gave you out of band.",
        ) from error
    return root


def trusted_root(pinned: Metadata[Root], trust: Trust) -> verify.RootChain:
    """The newest root this reader trusts: the pinned one, walked forward through stored roots."""
    return verify.walk_root_chain(pinned, trust.roots)


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
        chain = verify.walk_root_chain(start, _embedded_roots(archive, embedded))
        edition_role = _single_edition_role(embedded)
        manifest = verify.verify_manifest(
            chain.root,
            targets_bytes=_read_metadata(archive, embedded, layout.archive_role_name("targets")),
            manifests_bytes=_read_metadata(
                archive, embedded, layout.archive_role_name(layout.MANIFESTS_ROLE)
            ),
            edition_role_name=edition_role,
            edition_role_bytes=_read_metadata(
                archive, embedded, layout.archive_role_name(edition_role)
            ),
        )
        verify.check_members(manifest, [m.name for m in content])
        staging = _staging_dir(extract_to) if extract_to is not None else None
        try:
            total = 0
            for member in content:
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
            info = verify.parse_edition_info(archive.read(info_member, max_bytes=65536))
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
        update=TrustUpdate(publisher_id, roots=accepted, highest=(info.version, info.eid)),
    )


def _accepted_versions(start: Metadata[Root], chain: verify.RootChain) -> range:
    first = start.signed.version + 1
    return range(first, first + len(chain.accepted))


def _split_members(archive: EditionArchive) -> tuple[dict[str, ArchiveMember], list[ArchiveMember]]:
    embedded: dict[str, ArchiveMember] = {}
    content: list[ArchiveMember] = []
    for member in archive.members:
        if member.name.startswith(layout.ARCHIVE_METADATA_DIR):
            embedded[member.name] = member
        else:
            content.append(member)
    return embedded, content


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


def _single_edition_role(embedded: dict[str, ArchiveMember]) -> str:
    """Name of the one embedded edition role; any other metadata file is foreign."""
    known = {layout.archive_role_name("targets"), layout.archive_role_name(layout.MANIFESTS_ROLE)}
    roles: list[str] = []
    for name in embedded:
        if name in known or name.startswith(f"{layout.ARCHIVE_METADATA_DIR}root/"):
            continue
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
    signed: verify.SignedFile,
    target: BinaryIO | None,
) -> None:
    """Stream one member through SHA-256, never past its signed length."""
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
