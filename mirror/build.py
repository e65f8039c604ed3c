"""`mirror build`: ingest, render, write the edition ZIP, sign, and update the publish tree.

One streaming pass over the articles: each is parsed (in worker processes),
rendered, written into the ZIP (which hashes it) and placed in the publish
tree under its content-addressed name if it is not there yet, then
forgotten but for a one-line summary, so memory stays flat however large
the archive. The signed metadata is then added to the ZIP
and the tree, timestamp last. Re-running after a crash redoes the edition
from scratch; nothing half-written is ever visible (atomic writes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from mirror import __version__, fsutil, publish_tree
from mirror.config import Config, DirectorySource, Source
from mirror.edition import ArchiveDigest, EditionWriter
from mirror.errors import KeyStoreError, TamperedError, UsageError
from mirror.ingest import Article, IngestProblem
from mirror.ingest.directory import iter_directory
from mirror.ingest.feed import iter_feed
from mirror.ingest.model import DEFAULT_LIMITS, ProblemLog
from mirror.ingest.workers import Runner, WorkerPool, default_processes
from mirror.keystore import Keyring, load_keyring
from mirror.latest_bundle import LatestPicker, write_latest_bundle
from mirror.publish_tree import PublishedTarget
from mirror.reader.export_page import build_reader_page
from mirror.render import (
    ABOUT_MEMBER,
    AnnouncedMirror,
    EditionProof,
    SiteFile,
    SiteInfo,
    render_site,
)
from mirror.trust import layout, minisign
from mirror.trust.repository import (
    EditionSigning,
    ExpiryPolicy,
    RepositoryState,
    TargetEntry,
    edition_listing,
    editions_to_drop,
    resign_timestamp,
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
    archive_published: bool = True
    """Whether the ZIP went into the publish tree (see `publish_archive`)."""
    dropped_editions: tuple[str, ...] = ()
    """Editions that left the repository under the retention policy."""
    pruned_files: int = 0
    """Files removed from the local publish tree because nothing references them now."""


def iter_articles(config: Config, *, workers: int) -> Iterator[Article | IngestProblem]:
    """Every configured source's articles and problems, one at a time, slugs unique.

    Articles are parsed in ``workers`` processes, each under the per-article
    CPU deadline (`IngestLimits.article_cpu_s`): one that overruns or crashes
    its worker is a problem, the worker is replaced, and the build goes on.
    A slug already taken by an earlier source is a problem for the later
    article (`ProblemLog.first_slug_wins`), so no source can replace another's page.
    """
    with WorkerPool(workers, cpu_s=DEFAULT_LIMITS.article_cpu_s) as pool:
        items = (item for source in config.sources for item in source_items(config, source, pool))
        yield from ProblemLog(config.on_article_error).first_slug_wins(items)


def source_items(
    config: Config, source: Source, runner: Runner
) -> Iterator[Article | IngestProblem]:
    """One source's articles and problems, read exactly as a build reads them.

    `mirror config check` reads a source through this too, so what it
    promises is what the build then does (the feed's deadline and address
    rules included).
    """
    if isinstance(source, DirectorySource):
        yield from iter_directory(
            source.path,
            default_language=config.publisher.language,
            on_error=config.on_article_error,
            runner=runner,
        )
    else:
        yield from iter_feed(
            source.location,
            base_dir=config.base_dir,
            default_language=config.publisher.language,
            on_error=config.on_article_error,
            limits=replace(DEFAULT_LIMITS, feed_timeout_s=source.timeout_s),
            allow_private_addresses=source.allow_private_addresses,
            runner=runner,
        )


def mirror_list(config: Config) -> bytes:
    """The signed mirror list: public URLs of every announced, enabled mirror.

    It names no edition, so it stays byte-identical while the mirrors do.
    """
    mirrors = [
        {"name": m.name, "type": m.type, "url": m.public_url}
        for m in config.mirrors
        if m.announce and m.enabled
    ]
    document = {"publisher": config.publisher.name, "mirrors": mirrors}
    return (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


def edition_proof(
    keyring: Keyring, mirror_list_bytes: bytes, *, reader_page_sha256: str
) -> EditionProof:
    """What the edition's about page shows to check it and to find the next one.

    The fingerprints are of what readers were given: the newest root's exact
    bytes (``keys/root.json``), ``minisign.pub``'s key and the ``reader.html``
    that ``mirror keys export-reader`` writes for that root. The mirrors are
    read back from ``mirror_list_bytes``, the edition's own ``mirrors.json``,
    so the page lists exactly what the signed list does.
    """
    root = keyring.root_chain[-1]
    document = json.loads(mirror_list_bytes)
    return EditionProof(
        publisher_id=keyring.publisher.publisher_id,
        root_version=keyring.root.signed.version,
        root_sha256=hashlib.sha256(root).hexdigest(),
        minisign_public_key=keyring.minisign_public.to_file().splitlines()[-1],
        reader_page_sha256=reader_page_sha256,
        mirror_version=__version__,
        mirrors=tuple(AnnouncedMirror(m["name"], m["url"]) for m in document["mirrors"]),
    )


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


def publish_archive(
    config: Config,
    state: RepositoryState,
    *,
    created: datetime,
    size: int,
    dropped: Collection[str] = (),
) -> bool:
    """Whether this edition's ZIP goes to the mirrors, or only its members do.

    Every edition is always published member by member (readers update
    incrementally). The whole ZIP — for new readers and people without
    `mirror` — goes too when it is small, or when the newest published ZIP is
    ``archive_every_days`` old: re-uploading a 300 MB archive for ten new
    articles would make every update cost a full push.
    """
    if size <= config.edition.archive_small_mb * 1024 * 1024:
        return True
    archives = [eid for eid in publish_tree.published_archives(state) if eid not in dropped]
    if not archives:
        return True
    newest = layout.edition_date(archives[-1])
    return (created.date() - newest).days >= config.edition.archive_every_days


def _published_path(eid: str, member: str) -> str:
    """Articles and assets are shared across editions; everything else is per edition."""
    return member if layout.is_content_path(member) else layout.manifest_path(eid, member)


VOLATILE_MEMBERS = frozenset({"index.html", ABOUT_MEMBER, "feed.xml", layout.EDITION_INFO_MEMBER})
"""Members that name the edition or its date, so they differ in every edition."""


@dataclass(frozen=True)
class Unchanged:
    """No new edition: the content is what the newest edition already holds."""

    eid: str
    timestamp_refreshed: bool
    problems: tuple[IngestProblem, ...]


def _same_content(state: RepositoryState, entries: Sequence[TargetEntry], *, bits: int) -> bool:
    """True when every member but the volatile ones matches the newest edition's, byte for byte.

    Compared as the roles list them: pages one by one, articles and assets by
    member shard (`edition_listing`), so the previous edition's shards need
    not be read.
    """
    eids = publish_tree.edition_ids(state)
    if not eids:
        return False
    role = state.roles[layout.edition_role(eids[-1])].metadata.signed
    prefix = f"manifests/{eids[-1]}/"
    previous = {
        path.removeprefix(prefix): target.hashes.get("sha256")
        for path, target in role.targets.items()
        if path.removeprefix(prefix) not in VOLATILE_MEMBERS
    }
    listed, _ = edition_listing(entries, bits=bits)
    current = {e.path: e.sha256 for e in listed if e.path not in VOLATILE_MEMBERS}
    return previous == current


def build_or_refresh(
    config: Config, *, now: datetime, version: int | None = None, force: bool = False
) -> BuildResult | Unchanged:
    """A new edition if the content changed (or ``force``); otherwise keep the newest
    edition and re-sign the timestamp when half its lifetime is gone, so mirrors
    never serve an expired one between editions."""
    built = build_edition(config, now=now, version=version, force=force)
    if isinstance(built, Unchanged):
        return replace(built, timestamp_refreshed=refresh_timestamp(config, now=now))
    return built


def refresh_timestamp(config: Config, *, now: datetime) -> bool:
    """Re-sign ``timestamp.json`` (same snapshot, new version and expiry) if half its
    lifetime has passed; return whether it did."""
    current = publish_tree.current_timestamp(config.publish_dir)
    if current is None:
        return False
    lifetime = timedelta(days=config.trust.timestamp_expires_days)
    if current.signed.expires - now > lifetime / 2:
        return False
    keyring = load_keyring(config.keys.dir, config.passphrase())
    data = resign_timestamp(current, signer=keyring.signer("timestamp"), now=now, lifetime=lifetime)
    publish_tree.write_timestamp(config.publish_dir, data)
    return True


def build_edition(
    config: Config,
    *,
    now: datetime,
    version: int | None = None,
    workers: int | None = None,
    force: bool = True,
) -> BuildResult | Unchanged:
    """Build, sign and publish (locally) one edition from ``config``.

    ``workers`` processes parse articles (default: one per CPU). With
    ``force=False`` an edition whose content equals the newest one is not
    made: the result is then `Unchanged` and nothing was written
    (`build_or_refresh` re-signs the timestamp in that case).
    """
    workers = workers or default_processes()
    # Leftovers of a run killed mid-write (the caller holds the output lock).
    fsutil.remove_stale_temp_files(config.editions_dir, (".*.part",))
    fsutil.remove_stale_temp_files(config.publish_dir, (".*.tmp",))
    fsutil.remove_stale_temp_files(config.output.latest_dir, ("*",))
    keyring = load_keyring(config.keys.dir, config.passphrase())
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
    # The new edition counts among the newest kept, so keep one fewer of the old ones.
    dropped = editions_to_drop(
        state,
        now=created,
        retention_days=config.edition.retention_days,
        keep_newest=config.edition.keep_newest - 1,
    )
    policy = ExpiryPolicy(
        edition_days=config.edition.expires_days,
        long_lived_days=config.trust.long_lived_expires_days,
        snapshot_days=config.trust.snapshot_expires_days,
        timestamp_days=config.trust.timestamp_expires_days,
    )
    mirrors_document = mirror_list(config)
    # The browser's checking page for the newest root: published beside the mirror list.
    reader_page = build_reader_page(keyring.root_chain[-1])
    reader_entry = TargetEntry(layout.READER_PAGE_PATH, len(reader_page.html), reader_page.sha256)
    site = SiteInfo(
        title=config.publisher.title,
        publisher=config.publisher.name,
        language=config.publisher.language,
        edition_id=eid,
        edition_created=created,
        proof=edition_proof(keyring, mirrors_document, reader_page_sha256=reader_page.sha256),
    )
    zip_path = config.editions_dir / f"{eid}.zip"
    fsutil.ensure_dir(config.editions_dir)
    latest = LatestPicker(
        created=created,
        days=config.edition.latest_days,
        max_articles=config.edition.latest_max_articles,
    )
    entries: list[TargetEntry] = []
    problems: list[IngestProblem] = []
    article_count = 0
    targets_written = 0

    # Per-edition members (index, feed, edition.json, ...) are placed in the tree only
    # once the build is sure to make an edition: an unchanged build writes nothing.
    edition_targets: list[PublishedTarget] = []

    def add(writer: EditionWriter, member: SiteFile) -> None:
        nonlocal targets_written
        staged: Path | None = None
        try:
            if member.data is not None:
                digest = writer.add_bytes(member.name, member.data)
            elif member.source is not None:
                # Our own copy of the source, archived and published as it is: what is
                # hashed, zipped and placed in the tree are the same bytes, whatever
                # happens to the newsroom's file meanwhile.
                staged = publish_tree.stage_copy(
                    publish_dir, member.source, max_bytes=DEFAULT_LIMITS.max_asset_bytes
                )
                digest = writer.add_file(member.name, staged)
            else:  # pragma: no cover - SiteFile guarantees one of the two
                raise ValueError(f"{member.name} has no content")
            entries.append(TargetEntry(member.name, digest.length, digest.sha256))
            target = PublishedTarget(
                path=_published_path(eid, member.name),
                sha256=digest.sha256,
                data=member.data,
                staged=staged,
            )
            if layout.is_content_path(member.name):
                # Shared and content-addressed: new content means a new edition anyway.
                targets_written += publish_tree.write_targets(publish_dir, [target])
            elif staged is not None:  # pragma: no cover - only content members have files
                raise ValueError(f"{member.name} is not content but has a file")
            else:
                edition_targets.append(target)
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)

    with EditionWriter(
        zip_path, timestamp=created, compresslevel=config.edition.compression_level
    ) as writer:
        # One pass: each article is parsed, rendered, written and forgotten, so
        # memory does not grow with the archive (only a summary per article stays).
        def articles() -> Iterator[Article]:
            nonlocal article_count
            for item in iter_articles(config, workers=workers):
                if isinstance(item, IngestProblem):
                    problems.append(item)
                else:
                    article_count += 1
                    latest.offer(item)
                    yield item

        for member in render_site(articles(), site):
            add(writer, member)
        extra = {
            layout.EDITION_INFO_MEMBER: edition_info(
                config, eid=eid, version=version, created=created, expires=expires
            ),
            layout.MIRROR_LIST_PATH: mirrors_document,
        }
        for name, data in extra.items():
            add(writer, SiteFile(name, data=data))
        mirrors_entry = next(e for e in entries if e.path == layout.MIRROR_LIST_PATH)
        root_published = publish_tree.root_path(publish_dir)
        new_root = not root_published.exists() or (
            root_published.read_bytes() != keyring.root_chain[-1]
        )
        bits = config.trust.hash_bin_bits
        if not force and not new_root and _same_content(state, entries, bits=bits):
            writer.discard()
            return Unchanged(publish_tree.edition_ids(state)[-1], False, tuple(problems))
        signing = sign_edition(
            state,
            signer=keyring.signer("targets"),
            eid=eid,
            members=entries,
            mirror_list=mirrors_entry,
            reader_page=reader_entry,
            now=created,
            policy=policy,
            bin_bits=bits,
            drop_editions=dropped,
            kept_content=publish_tree.content_of_editions(
                publish_dir, state, [e for e in publish_tree.edition_ids(state) if e not in dropped]
            )
            if dropped
            else (),
        )
        edition_targets += [
            PublishedTarget(
                path=layout.manifest_path(eid, shard.name),
                sha256=hashlib.sha256(shard.data).hexdigest(),
                data=shard.data,
            )
            for shard in signing.shards
        ]
        targets_written += publish_tree.write_targets(publish_dir, edition_targets)
        for name, data in _embedded_metadata(keyring, signing, eid):
            writer.add_bytes(name, data)
    archive = writer.close()

    trusted_comment = (
        f"edition:{eid} version:{version} created:{_iso(created)} expires:{_iso(expires)} "
        f"publisher:{config.publisher.name}"
    )
    signature_text = minisign.sign_prehashed(
        keyring.minisign_key,
        archive.blake2b_512,
        trusted_comment=trusted_comment,
        untrusted_comment=f"signature from mirror for {config.publisher.name} edition {eid}",
    )
    _check_minisign(config, keyring, signature_text, archive, zip_path)
    signature = signature_text.encode("utf-8")
    minisig_path = zip_path.with_name(zip_path.name + ".minisig")
    fsutil.atomic_write_bytes(minisig_path, signature)
    minisig_entry = TargetEntry(
        layout.edition_zip_path(eid) + ".minisig",
        len(signature),
        hashlib.sha256(signature).hexdigest(),
    )
    zip_entry = TargetEntry(layout.edition_zip_path(eid), archive.length, archive.sha256)
    archive_published = publish_archive(
        config, state, created=created, size=archive.length, dropped=dropped
    )
    release_files = [zip_entry, minisig_entry] if archive_published else []
    release_targets = [
        *(
            [
                PublishedTarget(zip_entry.path, zip_entry.sha256, source=zip_path),
                PublishedTarget(minisig_entry.path, minisig_entry.sha256, data=signature),
            ]
            if archive_published
            else []
        ),
        PublishedTarget(
            mirrors_entry.path, mirrors_entry.sha256, data=extra[layout.MIRROR_LIST_PATH]
        ),
        PublishedTarget(reader_entry.path, reader_entry.sha256, data=reader_page.html),
    ]
    bundle_path: Path | None = None
    if config.edition.latest_days > 0:
        bundle_path = config.output.latest_bundle_file(eid)
        fsutil.ensure_dir(bundle_path.parent)
        bundle = write_latest_bundle(
            zip_path,
            bundle_path,
            latest.chosen(),
            site,
            images=config.edition.latest_images,
            timestamp=created,
            compresslevel=config.edition.compression_level,
        )
        bundle_entry = TargetEntry(layout.latest_bundle_path(eid), bundle.length, bundle.sha256)
        release_files.append(bundle_entry)
        release_targets.append(
            PublishedTarget(bundle_entry.path, bundle_entry.sha256, source=bundle_path)
        )
    targets_written += publish_tree.write_targets(publish_dir, release_targets)
    if bundle_path is not None:
        bundle_path.unlink()  # the publish tree has its own copy
    release = sign_release(
        signing.state,
        targets_signer=keyring.signer("targets"),
        snapshot_signer=keyring.signer("snapshot"),
        timestamp_signer=keyring.signer("timestamp"),
        release_files=release_files,
        now=created,
        policy=policy,
        drop_editions=dropped,
    )
    publish_tree.write_metadata(
        publish_dir,
        root_chain=keyring.root_chain,
        roles=[*signing.changed, *release.changed],
        snapshot=release.snapshot,
        snapshot_version=release.snapshot_version,
        timestamp=release.timestamp,
    )
    pruned = publish_tree.prune(publish_dir, release.state)
    return BuildResult(
        eid=eid,
        version=version,
        created=created,
        expires=expires,
        zip_path=zip_path,
        minisig_path=minisig_path,
        publish_dir=publish_dir,
        articles=article_count,
        problems=tuple(problems),
        archive=archive,
        targets_written=targets_written,
        archive_published=archive_published,
        dropped_editions=tuple(dropped),
        pruned_files=pruned,
    )


def _check_minisign(
    config: Config, keyring: Keyring, signature: str, archive: ArchiveDigest, zip_path: Path
) -> None:
    """The signature must verify with ``minisign.pub``, the key readers of stock minisign hold.

    A key store whose ``minisign.pub`` no longer matches its signing key (a
    restore from mismatched backups, a hand edit) would otherwise publish
    editions that every `minisign -V` user is told are forged.
    """
    try:
        minisign.verify_prehashed(signature, archive.blake2b_512, keyring.minisign_public)
    except TamperedError as error:
        zip_path.unlink(missing_ok=True)
        raise KeyStoreError(
            f"the edition's minisign signature does not verify with "
            f"{config.keys.dir / 'minisign.pub'}, the key readers were given ({error.message})",
            hint="Restore minisign.pub from the same backup as the keys, or run "
            "`mirror keys rotate minisign` and give readers the new minisign.pub.",
        ) from error


def _embedded_metadata(
    keyring: Keyring, signing: EditionSigning, eid: str
) -> Iterator[tuple[str, bytes]]:
    """The signed metadata an edition carries: root chain, targets, manifests, its own role
    and the member shards that role lists."""
    for version, data in enumerate(keyring.root_chain, start=1):
        yield layout.archive_root_name(version), data
    for name in ("targets", layout.MANIFESTS_ROLE, layout.edition_role(eid)):
        yield layout.archive_role_name(name), signing.state.roles[name].data
    for shard in signing.shards:
        yield layout.archive_shard_name(shard.name), shard.data
