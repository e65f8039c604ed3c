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
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from tuf.api.metadata import Metadata, Root

from mirror import __version__, fsutil, publish_tree
from mirror.build_sources import PreviousEdition, ReadyArticle, SourceReader
from mirror.buildcache import BuildCache, context_key
from mirror.config import Config, DirectorySource, Source
from mirror.edition import ArchiveDigest, EditionArchive, EditionWriter, MemberDigest
from mirror.errors import KeyStoreError, MirrorError, StorageError, TamperedError, UsageError
from mirror.ingest import Article, IngestProblem
from mirror.ingest.directory import iter_directory
from mirror.ingest.feed import iter_feed
from mirror.ingest.model import DEFAULT_LIMITS, INGEST_VERSION, ProblemLog
from mirror.ingest.workers import Runner, WorkerPool, default_processes
from mirror.keystore import Keyring, PendingKeyring, load_root_chain, minisign_public_key
from mirror.latest_bundle import LatestPicker, write_latest_bundle
from mirror.publish_tree import PublishedTarget
from mirror.reader.export_page import build_reader_page
from mirror.rebuild import Unchanged
from mirror.render import (
    ABOUT_MEMBER,
    RENDER_VERSION,
    AnnouncedMirror,
    EditionProof,
    RenderedArticle,
    SiteFile,
    SiteInfo,
    render_site,
)
from mirror.trust import layout, minisign
from mirror.trust.publisher import publisher_of
from mirror.trust.repository import (
    EditionSigning,
    ExpiryPolicy,
    MemberLedger,
    RepositoryState,
    TargetEntry,
    edition_ids,
    editions_to_drop,
    renewal_at,
    renewal_due,
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
    renewed: str | None = None
    """Why an edition of unchanged content was made (`renewal_due`), if it was."""
    renew_at: datetime | None = None
    """When this edition must be signed again although nothing changed (`renewal_at`)."""


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
    root_chain: Sequence[bytes],
    minisign_public: minisign.MinisignPublicKey,
    mirror_list_bytes: bytes,
    *,
    reader_page_sha256: str,
) -> EditionProof:
    """What the edition's about page shows to check it and to find the next one.

    The fingerprints are of what readers were given: the newest root's exact
    bytes (``keys/root.json``), ``minisign.pub``'s key and the ``reader.html``
    that ``mirror keys export-reader`` writes for that root. The mirrors are
    read back from ``mirror_list_bytes``, the edition's own ``mirrors.json``,
    so the page lists exactly what the signed list does. Only public keys are
    read: a build that finds nothing changed never decrypts the signing keys.
    """
    root = root_chain[-1]
    signed_root = Metadata[Root].from_bytes(root).signed
    document = json.loads(mirror_list_bytes)
    return EditionProof(
        publisher_id=publisher_of(signed_root).publisher_id,
        root_version=signed_root.version,
        root_sha256=hashlib.sha256(root).hexdigest(),
        minisign_public_key=minisign_public.to_file().splitlines()[-1],
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


def _same_content(previous: Mapping[str, str], entries: Iterable[TargetEntry]) -> bool:
    """True when every member but the volatile ones matches the newest edition's, byte for byte.

    ``previous`` is the newest edition's whole member list (`_previous_members`).
    """
    count = 0
    for entry in entries:
        if entry.path not in VOLATILE_MEMBERS:
            if previous.get(entry.path) != entry.sha256:
                return False
            count += 1
    return count == sum(1 for name in previous if name not in VOLATILE_MEMBERS)


def _previous_members(publish_dir: Path, state: RepositoryState) -> dict[str, str]:
    """The newest edition's members (name -> signed SHA-256), its shards' included; empty when
    there is none, or when the tree's copy of a shard is damaged (every page is made again)."""
    eids = edition_ids(state)
    if not eids:
        return {}
    try:
        members = publish_tree.edition_members(publish_dir, state, eids[-1])
    except StorageError:
        return {}
    return {name: signed.sha256 for name, signed in members.items()}


def cache_context(config: Config, site: SiteInfo) -> str:
    """The build cache's context key: every setting and version an article's page depends on.

    Of the site facts, an article page shows only the title and the language
    (`SiteInfo`); the edition's own (id, date, proof) would rebuild every page.
    """
    return context_key(
        {
            "ingest": INGEST_VERSION,
            "render": RENDER_VERSION,
            "language": config.publisher.language,
            "on_article_error": config.on_article_error,
            "limits": asdict(DEFAULT_LIMITS),
            "site": {"title": site.title, "language": site.language},
            "compression_level": config.edition.compression_level,
        }
    )


def _open_previous(
    config: Config, state: RepositoryState, members: dict[str, str]
) -> PreviousEdition:
    """The newest edition's signed ``members`` (`_previous_members`) and its ZIP, read
    strictly (None if unusable)."""
    eids = edition_ids(state)
    archive: EditionArchive | None = None
    if eids:
        try:
            archive = EditionArchive.open(config.editions_dir / f"{eids[-1]}.zip")
        except MirrorError:
            archive = None  # gone or damaged: every page is made again
    return PreviousEdition(members=members, archive=archive, publish_dir=config.publish_dir)


def build_edition(
    config: Config,
    *,
    now: datetime,
    version: int | None = None,
    workers: int | None = None,
    force: bool = True,
    changed: Collection[tuple[int, str]] = (),
) -> BuildResult | Unchanged:
    """Build, sign and publish (locally) one edition from ``config``.

    ``workers`` processes parse, render and compress articles (default: one
    per CPU); articles the build cache knows are not parsed again and their
    pages are copied from the previous edition (`mirror.build_sources`), with
    the same bytes as a build from scratch. With ``force=False`` an edition
    whose content equals the newest one is not made: the result is then
    `Unchanged` and nothing was written (`build_or_refresh` re-signs the
    timestamp in that case); when the cache knows every article, that is
    decided without parsing any and without the signing keys.
    """
    with WorkerPool(workers or default_processes(), cpu_s=DEFAULT_LIMITS.article_cpu_s) as pool:
        return _build_edition(
            config, now=now, version=version, pool=pool, force=force, changed=changed
        )


def _build_edition(
    config: Config,
    *,
    now: datetime,
    version: int | None,
    pool: Runner,
    force: bool,
    changed: Collection[tuple[int, str]] = (),
) -> BuildResult | Unchanged:
    # Leftovers of a run killed mid-write (the caller holds the output lock).
    fsutil.remove_stale_temp_files(config.editions_dir, (".*.part",))
    fsutil.remove_stale_temp_files(config.publish_dir, (".*.tmp",))
    fsutil.remove_stale_temp_files(config.output.latest_dir, ("*",))
    fsutil.remove_stale_temp_files(config.output.build_cache, (".*.tmp",))
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
    root_chain = load_root_chain(config.keys.dir)
    reader_page = build_reader_page(root_chain[-1])
    reader_entry = TargetEntry(layout.READER_PAGE_PATH, len(reader_page.html), reader_page.sha256)
    site = SiteInfo(
        title=config.publisher.title,
        publisher=config.publisher.name,
        language=config.publisher.language,
        edition_id=eid,
        edition_created=created,
        proof=edition_proof(
            root_chain,
            minisign_public_key(config.keys.dir),
            mirrors_document,
            reader_page_sha256=reader_page.sha256,
        ),
    )
    cache = BuildCache.load(config.output.build_cache, cache_context(config, site))
    reader = SourceReader(config, cache, pool, site)
    root_published = publish_tree.root_path(publish_dir)
    new_root = not root_published.exists() or (root_published.read_bytes() != root_chain[-1])
    # The same content still makes a new edition when the newest one nears its expiry.
    renewal = None if force or new_root else renewal_due(state, now=created, policy=policy)
    previous_members = _previous_members(publish_dir, state)
    # A changed file that is a new article means a build: no need to predict one.
    if not force and not new_root and renewal is None and not reader.would_parse(changed):
        unchanged = _predicted_unchanged(
            config, state, reader, site, policy=policy, previous=previous_members
        )
        if unchanged is not None:
            cache.save()
            return unchanged
    # The passphrase is checked now; the other keys are decrypted while articles are read
    # and must all be usable before anything goes into the tree.
    keyring_ready = PendingKeyring(config.keys.dir, config.passphrase())
    previous_edition = _open_previous(config, state, previous_members)
    zip_path = config.editions_dir / f"{eid}.zip"
    fsutil.ensure_dir(config.editions_dir)
    latest = LatestPicker(
        created=created,
        days=config.edition.latest_days,
        max_articles=config.edition.latest_max_articles,
    )
    entries = MemberLedger(config.trust.hash_bin_bits)
    problems: list[IngestProblem] = []
    article_count = 0
    targets_written = 0

    # Per-edition members (index, feed, edition.json, ...) are placed in the tree only
    # once the build is sure to make an edition: an unchanged build writes nothing.
    edition_targets: list[PublishedTarget] = []

    def add(writer: EditionWriter, member: SiteFile | RenderedArticle) -> None:
        nonlocal targets_written
        staged: Path | None = None
        try:
            data: bytes | None = None
            kept: MemberDigest | None = None
            if isinstance(member, RenderedArticle):
                if not isinstance(member, ReadyArticle):  # pragma: no cover - we give only these
                    raise TypeError(f"{member.article.slug} has no page")
                name = member.page_name
                if member.prepared is not None:
                    digest = writer.add_prepared(member.prepared)
                    data = member.prepared.data
                else:
                    digest = kept = _copy_member(writer, previous_edition, member)
            elif member.data is not None:
                name, data = member.name, member.data
                digest = writer.add_bytes(name, data)
            elif member.source is not None:
                name = member.name
                kept = _copy_asset(writer, previous_edition, cache, member.name, member.source)
                if kept is not None:
                    digest = kept
                else:
                    # Our own copy of the source, archived and published as it is: what is
                    # hashed, zipped and placed in the tree are the same bytes, whatever
                    # happens to the newsroom's file meanwhile.
                    keyring_ready.result()  # every key usable before the tree gets a file
                    info, read_ns = cache.before_reading(member.source)
                    staged = publish_tree.stage_copy(
                        publish_dir, member.source, max_bytes=DEFAULT_LIMITS.max_asset_bytes
                    )
                    digest = writer.add_file(member.name, staged)
                    cache.learn(member.source, info, digest.sha256, read_ns)
            else:  # pragma: no cover - SiteFile guarantees one of the two
                raise ValueError(f"{member.name} has no content")
            entries.add(TargetEntry(name, digest.length, digest.sha256))
            if kept is not None:
                return  # the publish tree holds it already (`PreviousEdition.reusable`)
            target = PublishedTarget(
                path=_published_path(eid, name),
                sha256=digest.sha256,
                data=data,
                staged=staged,
            )
            if layout.is_content_path(name):
                # Shared and content-addressed: new content means a new edition anyway.
                keyring_ready.result()
                targets_written += publish_tree.write_targets(publish_dir, [target])
            elif staged is not None:  # pragma: no cover - only content members have files
                raise ValueError(f"{name} is not content but has a file")
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
        def articles() -> Iterator[ReadyArticle]:
            nonlocal article_count
            log = ProblemLog(config.on_article_error)
            for item in reader.items(log, previous_edition):
                if isinstance(item, IngestProblem):
                    problems.append(item)
                else:
                    article_count += 1
                    latest.offer(item.article)
                    yield item
            # Every page and asset to copy was copied: the index is made without it.
            previous_edition.close_archive()

        for member in render_site(articles(), site, spill_dir=config.editions_dir):
            add(writer, member)
        extra = {
            layout.EDITION_INFO_MEMBER: edition_info(
                config, eid=eid, version=version, created=created, expires=expires
            ),
            layout.MIRROR_LIST_PATH: mirrors_document,
        }
        for name, data in extra.items():
            add(writer, SiteFile(name, data=data))
        mirrors_entry = next(e for e in entries.pages if e.path == layout.MIRROR_LIST_PATH)
        same = not force and not new_root and _same_content(previous_edition.members, entries)
        renewed = renewal if same else None
        # The previous edition's member list goes now, before signing (its ZIP went with
        # the last article; the two took about 60 MB at 100,000 articles).
        previous_edition.close()
        if same and renewal is None:
            writer.discard()
            cache.save()
            return Unchanged(
                edition_ids(state)[-1],
                False,
                tuple(problems),
                renew_at=renewal_at(state, policy=policy),
            )
        # The pages go into the tree now, and out of memory (the index of 100,000 articles
        # is 23 MB); the shards follow once they are signed.
        keyring = keyring_ready.result()
        targets_written += publish_tree.write_targets(publish_dir, edition_targets)
        edition_targets.clear()
        signing = sign_edition(
            state,
            signer=keyring.signer("targets"),
            eid=eid,
            members=entries,
            mirror_list=mirrors_entry,
            reader_page=reader_entry,
            now=created,
            policy=policy,
            drop_editions=dropped,
            kept_content=publish_tree.content_of_editions(
                publish_dir, state, [e for e in edition_ids(state) if e not in dropped]
            )
            if dropped
            else (),
        )
        targets_written += publish_tree.write_targets(
            publish_dir,
            [
                PublishedTarget(
                    path=layout.manifest_path(eid, shard.name),
                    sha256=hashlib.sha256(shard.data).hexdigest(),
                    data=shard.data,
                )
                for shard in signing.shards
            ],
        )
        for name, data in _embedded_metadata(keyring, signing, eid):
            writer.add_bytes(name, data)
        signing = replace(signing, shards=())  # in the tree and the ZIP: 15 MB at 100,000
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
    cache.save()
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
        renewed=renewed,
        renew_at=renewal_at(release.state, policy=policy),
    )


def _predicted_unchanged(
    config: Config,
    state: RepositoryState,
    reader: SourceReader,
    site: SiteInfo,
    *,
    policy: ExpiryPolicy,
    previous: Mapping[str, str],
) -> Unchanged | None:
    """`Unchanged` if the cache knows every article and the members it predicts are the
    newest edition's (``previous``); None when that takes a build to find out."""
    eids = edition_ids(state)
    if not eids:
        return None
    predicted = reader.predict()
    if predicted is None:
        return None
    members, problems = predicted
    entries = [TargetEntry(name, 0, sha256) for name, sha256 in members.items()]
    # The members that do not come from articles, as the build would make them.
    extras = [f for f in render_site([], site) if f.data is not None]
    extras.append(SiteFile(layout.MIRROR_LIST_PATH, data=mirror_list(config)))
    entries += [TargetEntry(f.name, 0, hashlib.sha256(f.data or b"").hexdigest()) for f in extras]
    if not _same_content(previous, entries):
        return None
    return Unchanged(eids[-1], False, problems, renew_at=renewal_at(state, policy=policy))


def _copy_member(
    writer: EditionWriter, previous: PreviousEdition, page: ReadyArticle
) -> MemberDigest:
    """Copy a kept page, compressed, from the previous edition's ZIP."""
    if page.kept is None or previous.archive is None:  # pragma: no cover - checked when kept
        raise ValueError(f"{page.page_name} is not in the previous edition")
    return writer.add_raw(
        previous.archive, page.kept, sha256=page.page_sha256, payload_crc32=page.payload_crc32
    )


def _copy_asset(
    writer: EditionWriter, previous: PreviousEdition, cache: BuildCache, name: str, source: Path
) -> MemberDigest | None:
    """Copy an asset from the previous edition's ZIP if it holds these very bytes."""
    if name not in previous.members:
        return None  # new here: archived from the source (which hashes it once)
    sha256, _ = cache.file_hash(source, max_bytes=DEFAULT_LIMITS.max_asset_bytes)
    member = previous.reusable(name, sha256)
    if member is None or previous.archive is None:
        return None
    return writer.add_raw(previous.archive, member, sha256=sha256)


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
