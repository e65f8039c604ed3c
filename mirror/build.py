"""`mirror build`: ingest, render, write the edition ZIP, sign, and update the publish tree.

One pass over the articles: each member is read once, written into the ZIP
(which hashes it), and placed in the publish tree under its content-addressed
name if it is not there yet. The signed metadata is then added to the ZIP
and the tree, timestamp last. Re-running after a crash redoes the edition
from scratch; nothing half-written is ever visible (atomic writes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from mirror import fsutil, publish_tree
from mirror.config import Config, DirectorySource
from mirror.edition import ArchiveDigest, EditionWriter, MemberDigest
from mirror.errors import UsageError
from mirror.ingest import IngestProblem, IngestResult, load_directory, load_feed, merge_results
from mirror.publish_tree import PublishedTarget
from mirror.render import SiteFile, SiteInfo, render_site
from mirror.trust import layout, minisign
from mirror.trust.keys import Keyring, load_keyring
from mirror.trust.repository import (
    ExpiryPolicy,
    SignedRole,
    TargetEntry,
    sign_edition,
    sign_release,
)


@dataclass(frozen=True)
class BuildResult:
    """What one build produced."""

    eid: str
    version: int
    created: datetime
    expires: datetime
    zip_path: Path
    minisig_path: Path
    publish_dir: Path
    articles: int
    problems: tuple[IngestProblem, ...]
    archive: ArchiveDigest
    targets_written: int


def ingest(config: Config) -> IngestResult:
    """Read every configured source; broken articles become problems (or fail, as configured)."""
    results = []
    for source in config.sources:
        if isinstance(source, DirectorySource):
            results.append(
                load_directory(
                    source.path,
                    default_language=config.publisher.language,
                    on_error=config.on_article_error,
                )
            )
        else:
            results.append(
                load_feed(
                    source.location,
                    base_dir=config.base_dir,
                    default_language=config.publisher.language,
                    on_error=config.on_article_error,
                )
            )
    return merge_results(*results)


def mirror_list(config: Config, *, eid: str) -> bytes:
    """The signed mirror list: public URLs of every announced, enabled mirror."""
    mirrors = [
        {"name": m.name, "type": m.type, "url": m.public_url}
        for m in config.mirrors
        if m.announce and m.enabled
    ]
    document = {"publisher": config.publisher.name, "edition": eid, "mirrors": mirrors}
    return (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


def edition_info(
    config: Config, *, eid: str, version: int, created: datetime, expires: datetime
) -> bytes:
    """The ``edition.json`` member: what readers and `mirror verify` show."""
    document = {
        "edition": eid,
        "version": version,
        "created": _iso(created),
        "expires": _iso(expires),
        "publisher": config.publisher.name,
        "title": config.publisher.title,
        "language": config.publisher.language,
    }
    return (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _published_path(eid: str, member: str) -> str:
    """Articles and assets are shared across editions; everything else is per edition."""
    return member if layout.is_content_path(member) else layout.manifest_path(eid, member)


def build_edition(config: Config, *, now: datetime, version: int | None = None) -> BuildResult:
    """Build, sign and publish (locally) one edition from ``config``."""
    keyring = load_keyring(config.keys.dir, config.passphrase())
    articles = ingest(config)
    publish_dir = config.publish_dir
    state = publish_tree.load_state(publish_dir)
    previous = publish_tree.last_edition_version(state)
    if version is None:
        version = previous + 1
    elif version <= previous:
        raise UsageError(
            f"edition version {version} is not newer than the published version {previous}",
            hint="Leave out --edition-version to take the next one.",
        )
    created = now.replace(microsecond=0)
    expires = created + timedelta(days=config.edition.expires_days)
    eid = layout.edition_id(created.strftime("%Y-%m-%d"), version)
    policy = ExpiryPolicy(
        edition_days=config.edition.expires_days,
        long_lived_days=config.trust.long_lived_expires_days,
        snapshot_days=config.trust.snapshot_expires_days,
        timestamp_days=config.trust.timestamp_expires_days,
    )
    site = render_site(
        articles.articles,
        SiteInfo(
            title=config.publisher.title,
            publisher=config.publisher.name,
            language=config.publisher.language,
            edition_id=eid,
            edition_created=created,
        ),
    )
    extra = {
        layout.EDITION_INFO_MEMBER: edition_info(
            config, eid=eid, version=version, created=created, expires=expires
        ),
        layout.MIRROR_LIST_PATH: mirror_list(config, eid=eid),
    }
    files = sorted(
        [*site, *(SiteFile(name=name, data=data) for name, data in extra.items())],
        key=lambda f: f.name,
    )
    zip_path = config.editions_dir / f"{eid}.zip"
    fsutil.ensure_dir(config.editions_dir)
    with EditionWriter(
        zip_path, timestamp=created, compresslevel=config.edition.compression_level
    ) as writer:
        entries: list[TargetEntry] = []
        targets_written = 0
        for site_file, digest in _write_members(writer, files):
            entries.append(TargetEntry(site_file.name, digest.length, digest.sha256))
            targets_written += publish_tree.write_targets(
                publish_dir,
                [
                    PublishedTarget(
                        path=_published_path(eid, site_file.name),
                        sha256=digest.sha256,
                        data=site_file.data,
                        source=site_file.source,
                    )
                ],
            )
        mirrors_entry = next(e for e in entries if e.path == layout.MIRROR_LIST_PATH)
        signing = sign_edition(
            state,
            signer=keyring.signer("targets"),
            eid=eid,
            members=entries,
            mirror_list=mirrors_entry,
            now=created,
            policy=policy,
            bin_bits=config.trust.hash_bin_bits,
        )
        for name, data in _embedded_metadata(keyring, signing.state.roles, eid):
            writer.add_bytes(name, data)
    archive = writer.close()

    trusted_comment = (
        f"edition:{eid} version:{version} created:{_iso(created)} expires:{_iso(expires)} "
        f"publisher:{config.publisher.name}"
    )
    signature = minisign.sign_prehashed(
        keyring.minisign_key,
        archive.blake2b_512,
        trusted_comment=trusted_comment,
        untrusted_comment=f"signature from mirror for {config.publisher.name} edition {eid}",
    ).encode("utf-8")
    minisig_path = zip_path.with_name(zip_path.name + ".minisig")
    fsutil.atomic_write_bytes(minisig_path, signature)
    minisig_entry = TargetEntry(
        layout.edition_zip_path(eid) + ".minisig",
        len(signature),
        hashlib.sha256(signature).hexdigest(),
    )
    zip_entry = TargetEntry(layout.edition_zip_path(eid), archive.length, archive.sha256)
    targets_written += publish_tree.write_targets(
        publish_dir,
        [
            PublishedTarget(zip_entry.path, zip_entry.sha256, source=zip_path),
            PublishedTarget(minisig_entry.path, minisig_entry.sha256, data=signature),
            PublishedTarget(
                mirrors_entry.path, mirrors_entry.sha256, data=extra[layout.MIRROR_LIST_PATH]
            ),
        ],
    )
    release = sign_release(
        signing.state,
        targets_signer=keyring.signer("targets"),
        snapshot_signer=keyring.signer("snapshot"),
        timestamp_signer=keyring.signer("timestamp"),
        release_files=[zip_entry, minisig_entry],
        now=created,
        policy=policy,
    )
    publish_tree.write_metadata(
        publish_dir,
        root_chain=keyring.root_chain,
        roles=[*signing.changed, *release.changed],
        snapshot=release.snapshot,
        snapshot_version=release.snapshot_version,
        timestamp=release.timestamp,
    )
    return BuildResult(
        eid=eid,
        version=version,
        created=created,
        expires=expires,
        zip_path=zip_path,
        minisig_path=minisig_path,
        publish_dir=publish_dir,
        articles=len(articles.articles),
        problems=articles.problems,
        archive=archive,
        targets_written=targets_written,
    )


def _write_members(
    writer: EditionWriter, files: list[SiteFile]
) -> Iterator[tuple[SiteFile, MemberDigest]]:
    for site_file in files:
        if site_file.data is not None:
            yield site_file, writer.add_bytes(site_file.name, site_file.data)
        elif site_file.source is not None:
            yield site_file, writer.add_file(site_file.name, site_file.source)


def _embedded_metadata(
    keyring: Keyring, roles: Mapping[str, SignedRole], eid: str
) -> Iterator[tuple[str, bytes]]:
    """The signed metadata an edition carries: root chain, targets, manifests, its own role."""
    for version, data in enumerate(keyring.root_chain, start=1):
        yield layout.archive_root_name(version), data
    for name in ("targets", layout.MANIFESTS_ROLE, layout.edition_role(eid)):
        yield layout.archive_role_name(name), roles[name].data
