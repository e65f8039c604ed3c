"""`mirror fetch`: get the newest edition from whichever mirrors still work, verified.

1. **Every mirror on its own.** Each candidate mirror (given on the command
   line, and from the signed mirror list of the last verified edition) gets
   its own reader view (`mirror.client.view.MirrorView`), seeded with a copy
   of the reader's trusted metadata, and is refreshed concurrently with short
   timeouts. Whatever a mirror serves is verified against the reader's
   trust, so a forged answer from the tenth mirror is rejected exactly like
   one from the first.
2. **Like apt with a lagging mirror.** Of the mirrors that verified, the one
   with the newest timestamp wins; those behind it are reported as stale and
   otherwise ignored. A mirror older than what the reader already trusts is
   refused by TUF itself (rollback, freeze) and reported, never fatal while
   another mirror is good.
3. **Today's news first.** Before the edition's member list, the reader
   gets the edition's latest bundle (`mirror.latest_bundle`: the newest
   articles, well under a megabyte), verified whole by its signed hash,
   into ``library/<id>.latest``: on a throttled link the reader can read
   today's articles while the rest comes. Its members go into the cache,
   so the whole edition reuses them; ``--latest`` stops there,
   ``--archive`` skips it.
4. **Incremental.** The newest edition's signed member list is read — its
   role, then those of its member shards (ADR 0020) the cache does not hold
   already, so ten new articles cost about ten shards; only members whose
   hash is not in the reader's cache are downloaded. Each file
   comes from the best mirror that has not failed yet, and falls back to
   every other mirror that verified, slow and stale ones included, and to
   those still probing (`mirror.reader.pool`): a fast mirror that withholds
   or stalls content is demoted at its first failure and cannot cut the
   reader off from slower honest ones. Every byte is checked against the
   signed hash whatever mirror it came from. A reader with no edition yet,
   missing most members, takes the newest published edition ZIP instead.
5. **Crash-safe.** The edition is assembled in a staging folder and renamed
   into the library; trusted metadata and state are written only after
   that, each file atomically. A kill at any point leaves the previous
   verified edition as it was.

The run never raises for what mirrors did: `EditionFetch.run` returns a
`FetchReport` naming every mirror's outcome and either the verified edition
or the error that says why there is none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from tuf.api.metadata import Metadata, Root

from mirror import caps, fsutil
from mirror.client.classify import classify
from mirror.client.transport import DeadlineFetcher
from mirror.client.urls import is_mirror_url, mirror_url, scrubbed, shown
from mirror.client.view import MirrorView, metadata_file
from mirror.edition import ArchiveLimits, EditionArchive
from mirror.errors import (
    ExpiredError,
    ForeignEditionError,
    MirrorError,
    RollbackError,
    StorageError,
    TamperedError,
    TransportError,
    UsageError,
    VerificationError,
)
from mirror.reader.pool import Candidate, MirrorOutcome, MirrorPool
from mirror.reader.store import (
    LibraryEdition,
    PublisherStore,
    ReaderStore,
    TrustUpdate,
)
from mirror.reader.verify_file import trusted_root
from mirror.trust import layout, verify
from mirror.trust.members import MemberList, SignedFile
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import publisher_of, told_apart

FetchMode = Literal["latest-first", "latest-only", "archive"]
"""The newest articles (the latest bundle) then the whole edition; the newest articles only
(`--latest`); the whole edition only (`--archive`)."""

DEFAULT_DEADLINE_S = 600.0
"""Longest a fetch waits for mirrors still probing before it gives a file up."""


@dataclass(frozen=True)
class FetchedEdition:
    """A verified edition and where it came from."""

    publisher: str
    eid: str
    version: int
    created: datetime
    mirror: str
    edition: LibraryEdition
    updated: bool
    """False when the newest edition was already in the library."""


@dataclass(frozen=True)
class FetchReport:
    """The whole fetch: every mirror's outcome, and the edition or why there is none."""

    publisher: str
    outcomes: tuple[MirrorOutcome, ...]
    fetched: FetchedEdition | None
    error: MirrorError | None
    downloaded_bytes: int
    """Bytes of edition files downloaded."""
    received_bytes: int
    """Every byte received from every mirror, metadata included."""


class EditionFetch:
    """One `mirror fetch` run for one publisher."""

    def __init__(
        self,
        *,
        pinned: Metadata[Root],
        store: ReaderStore,
        now: datetime,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 30.0,
        deadline_s: float = DEFAULT_DEADLINE_S,
        use_signed_list: bool = True,
        mode: FetchMode = "latest-first",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.pinned = pinned
        self.use_signed_list = use_signed_list
        self.mode = mode
        """Whether the mirrors of the last edition's signed list are asked too (not `--only`)."""
        self.now = now
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.deadline = time.monotonic() + deadline_s
        self._lock = threading.Lock()
        self.pool = MirrorPool([], self.probe)
        """The mirrors of the run in progress (`run` makes it)."""
        self.best: Candidate | None = None
        """The mirror serving the newest verified metadata, once one verified."""
        self.work_dir: Path | None = None
        """The run's scratch folder (every probe's metadata), removed when it ends."""
        self.publisher = publisher_of(pinned.signed)
        self.store: PublisherStore = store.publisher(self.publisher.publisher_id)
        self.progress = progress or (lambda _: None)
        self.downloaded = 0
        """Target bytes downloaded (edition files)."""
        self.received = 0
        """Every byte received from any mirror, metadata included (closed views)."""
        self.downloads = 0

    # --- trusted state ------------------------------------------------------------
    def trusted_root(self) -> tuple[Metadata[Root], bytes]:
        """The newest root this reader trusts, and its bytes."""
        trust = self.store.trust()
        root = trusted_root(self.pinned, trust).root
        data = trust.roots.get(root.signed.version) or self.pinned.to_bytes()
        return root, data

    def seed(self, folder: Path) -> None:
        """Copy the trusted metadata into ``folder`` for one mirror's view."""
        root, root_bytes = self.trusted_root()
        trusted = self.store.metadata_dir
        if trusted.is_dir():
            for path in trusted.glob("*.json"):
                shutil.copyfile(path, folder / path.name)
        current = metadata_file(folder, "root")
        if not current.exists() or _version_of(current) < root.signed.version:
            current.write_bytes(root_bytes)

    def candidates(self, urls: Sequence[str]) -> list[str]:
        """Command-line mirrors first, then the signed list of the last verified edition."""
        ordered = [mirror_url(u) for u in urls]  # a mistyped address is the reader's to fix
        if self.use_signed_list:
            listed = self.store.health().get("signed_list", [])
            ordered += [mirror_url(u) for u in listed if isinstance(u, str) and is_mirror_url(u)]
        unique = list(dict.fromkeys(ordered))
        if not unique:
            raise UsageError(
                "no mirror is known for this publisher yet"
                if self.use_signed_list
                else "--only asks only the --mirror addresses, and none was given",
                hint="Pass one or more mirror URLs with --mirror URL.",
            )
        return unique

    # --- phase 1: refresh every mirror --------------------------------------------
    def probe(self, url: str, order: int) -> Candidate | MirrorOutcome:
        """Refresh one mirror's metadata in a folder of its own; never raises."""
        fetcher = DeadlineFetcher(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.timeout_s,
            download_budget_s=self.timeout_s,
        )
        folder: Path | None = None
        view: MirrorView | None = None
        try:
            folder = Path(tempfile.mkdtemp(prefix="probe-", dir=self.work_dir))
            self.seed(folder)
            # bootstrap=None: the seeded root.json, the reader's trusted root, is the start.
            view = MirrorView(url, folder, fetcher, bootstrap=None)
            return Candidate(view, view.refresh(), order)
        except Exception as error:  # every failure is this mirror's verdict, not ours
            verdict, detail = classify(error)
            if verdict == "tampered" and view is not None:
                verdict, detail = self._other_publisher(view) or (verdict, detail)
            with self._lock:
                self.received += fetcher.bytes_received
            fetcher.close()
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            return MirrorOutcome(url, verdict, detail)

    def _other_publisher(self, view: MirrorView) -> tuple[str, str] | None:
        """("other-publisher", detail) when a mirror that failed serves another newsroom."""
        claimed = view.claimed_publisher()
        if claimed is None or claimed.publisher_id == self.publisher.publisher_id:
            return None
        theirs, ours = told_apart(claimed, self.publisher)
        return "other-publisher", f"{theirs}'s, not {ours}'s, whose root you pinned"

    # --- phase 2: the edition -----------------------------------------------------
    def download(self, target_path: str, *, expect_sha256: str | None = None) -> Path:
        """Download a target, verified by its signed hash, from the first mirror that has it.

        Mirrors are asked best first (`MirrorPool.sources`), each at most once
        for this file; when all have been tried, mirrors still probing are
        waited for, up to the fetch's deadline. A file is given up only when
        no mirror is left to ask.
        """
        newest = self._newest()
        best = newest.view
        info = best.target(target_path)
        if expect_sha256 is not None and info.hashes.get("sha256") != expect_sha256:
            raise TamperedError(f"{target_path} is signed with two different hashes")
        tried: set[str] = set()
        failures: list[str] = []
        forged = False
        while True:
            for source in self.pool.sources(newest.served):
                if source.url in tried:
                    continue
                tried.add(source.url)
                self.downloads += 1
                destination = best.folder / f".download-{self.downloads}"
                try:
                    # Checked by the best mirror's verified metadata, from this mirror's address.
                    path = best.download(info, destination, from_url=source.url)
                except MirrorError as error:
                    verdict, detail = classify(error)
                    forged = forged or verdict == "tampered"
                    source.failed(verdict, f"{target_path}: {detail}")
                    failures.append(f"{shown(source.url)}: {scrubbed(detail, source.url)}")
                    destination.unlink(missing_ok=True)
                    continue
                self.downloaded += info.length
                return path
            left = self.deadline - time.monotonic()
            if left <= 0 or not self.pool.wait(left):
                break
        summary = "; ".join(failures) or "no mirror left to ask"
        shunned = [shown(c.url) for c in self.pool.verified if c.forged and c.url not in tried]
        if shunned:
            summary += f"; not asked again after forging: {', '.join(shunned)}"
        if forged or shunned:
            raise TamperedError(f"no mirror delivered a genuine {target_path} ({summary})")
        raise TransportError(f"no mirror could deliver {target_path} ({summary})")

    def seed_cache_from_archive(self, eid: str) -> None:
        """A reader with an empty cache starts from the newest published edition ZIP.

        The ZIP is downloaded like any target, so its bytes are the ones its
        signed hash names (`download`): its signatures need no second check
        here. It is read once, through the strict archive reader, and each
        member — its embedded member shards included — goes into the cache
        under the SHA-256 of its own bytes; edition ``eid``'s signed member
        list then decides which of them it uses (an older edition's ZIP gives
        what did not change). One pass over the ZIP, with its index alone in
        memory (before: a full offline verification, an extracted copy and a
        second hashing pass, and the archive's own member list beside the
        index, about 100 MB at 100,000 articles).
        """
        best = self._newest().view
        wanted = layout.edition_version(eid)
        archives = [a for a in best.edition_archives() if layout.edition_version(a) <= wanted]
        if not archives:
            return
        archive = self.download(layout.edition_zip_path(archives[-1]))
        staged = best.folder / ".seed"
        with EditionArchive.open(archive, ArchiveLimits()) as opened:
            for member in opened.members:
                embedded = member.name.removeprefix(layout.ARCHIVE_METADATA_DIR)
                if embedded != member.name and not layout.is_member_shard(embedded):
                    continue  # the other signed metadata: the reader has its own
                digest = hashlib.sha256()
                with staged.open("wb") as out:
                    for chunk in opened.iter_chunks(member):
                        digest.update(chunk)
                        out.write(chunk)
                if self.store.cached(digest.hexdigest()) is None:
                    self.store.cache_file(digest.hexdigest(), staged)
        staged.unlink(missing_ok=True)
        archive.unlink()

    def add_shards(self, eid: str, member_list: MemberList) -> None:
        """Every member shard still missing from ``member_list``: from the cache, else a mirror."""
        for name in member_list.missing:
            signed = member_list.shards[name]
            cached = self.store.cached(signed.sha256)
            data = None
            if cached is not None:
                data = fsutil.read_bounded(
                    cached, max_bytes=caps.MEMBER_SHARD_MAX_BYTES, what="cached member shard"
                )
                if hashlib.sha256(data).hexdigest() != signed.sha256:
                    data = None  # a damaged cache copy: fetch it again
            if data is None:
                path = self.download(layout.manifest_path(eid, name), expect_sha256=signed.sha256)
                data = fsutil.read_bounded(
                    path, max_bytes=caps.MEMBER_SHARD_MAX_BYTES, what="member shard"
                )
                path.unlink()
                self._cache_bytes(signed.sha256, data)
            member_list.add_shard(name, data)

    def _cache_bytes(self, sha256: str, data: bytes) -> None:
        if self.store.cached(sha256) is None:
            staged = self._newest().view.folder / f".cache-{sha256}"
            staged.write_bytes(data)
            self.store.cache_file(sha256, staged)

    # --- the whole run ------------------------------------------------------------
    def run(self, urls: Sequence[str]) -> FetchReport:
        """Fetch, verify, assemble and record the newest edition; never raises for mirrors."""
        candidates = self.candidates(urls)
        self.progress(f"checking {len(candidates)} mirrors")
        self.deadline = time.monotonic() + self.deadline_s
        fetched: FetchedEdition | None = None
        error: MirrorError | None = None
        self.store.sweep_scratch()  # what a killed fetch left behind
        self.work_dir = self.store.scratch("fetch")
        self.pool = MirrorPool(candidates, self.probe)
        try:
            self.pool.start()
            self.pool.settle(timeout_s=self.timeout_s)
            while not self.pool.verified and self.pool.pending:  # nobody verified yet: wait
                left = self.deadline - time.monotonic()
                if left <= 0 or not self.pool.wait(left):
                    break
            if not self.pool.verified:
                error = _overall_failure(self._outcomes())
            else:
                self.best = max(
                    self.pool.verified,
                    key=lambda c: (c.served.timestamp_version, c.served.snapshot_version),
                )
                try:
                    fetched = self._finish()
                except MirrorError as failure:
                    error = failure
        finally:
            self.received += self.pool.close()
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return FetchReport(
            publisher=self.publisher.name,
            outcomes=tuple(self._outcomes()),
            fetched=fetched,
            error=error,
            downloaded_bytes=self.downloaded,
            received_bytes=self.received,
        )

    def _outcomes(self) -> list[MirrorOutcome]:
        """What each mirror did: verified ones (ok, stale, or their worst failed file) first."""
        outcomes = []
        best = self.best
        for candidate in sorted(self.pool.verified, key=lambda c: c.order):
            version = candidate.served.timestamp_version
            if candidate.worst is not None:
                verdict, detail = candidate.worst
            elif best is not None and candidate.served.behind(best.served):
                verdict = "stale"
                detail = f"serves version {version}, newest is {best.served.timestamp_version}"
            else:
                verdict, detail = "ok", ""
            outcomes.append(MirrorOutcome(candidate.url, verdict, detail, version))
        outcomes += self.pool.failed
        outcomes += [
            MirrorOutcome(url, "unreachable", "still had not answered when the fetch ended")
            for url in self.pool.pending
        ]
        return outcomes

    def _newest(self) -> Candidate:
        if self.best is None:
            raise RuntimeError("no mirror has verified yet")
        return self.best

    def _finish(self) -> FetchedEdition:
        best = self._newest()
        eid = best.view.newest_edition()
        highest = self.store.trust().highest
        if highest is not None and layout.edition_version(eid) < highest[0]:
            raise RollbackError(f"the newest edition offered, {eid}, is older than {highest[1]}")
        existing = self.store.find(eid)
        edition = existing
        had_bundle = self.store.bundle(eid) is not None
        if existing is None and self.mode != "archive":
            try:
                bundle = self.latest_bundle(eid)
            except (TransportError, VerificationError) as error:
                if self.mode == "latest-only":
                    raise
                # Only a head start: the whole edition is checked member by member anyway.
                self.progress(f"no mirror gave the newest articles first ({error.message})")
                bundle = None
            if bundle is not None and self.mode == "latest-only":
                edition = bundle
            elif bundle is not None:
                self.progress(f"the newest articles are verified: open {bundle.index.as_uri()}")
        if edition is None:
            edition = self.whole_edition(eid)
            self.store.drop_bundles(upto=edition.version)
        info = _edition_info(edition.path / layout.EDITION_INFO_MEMBER)
        if info.eid != eid:
            raise TamperedError(f"edition.json names {info.eid}, not {eid}")
        self._commit(info)
        self._record_health(edition)
        served_by = [c for c in self.pool.sources(best.served) if c.failures == 0]
        return FetchedEdition(
            publisher=self.publisher.name,
            eid=eid,
            version=info.version,
            created=info.created,
            # Where the edition came from: the best mirror that delivered without failing.
            mirror=shown(served_by[0].url if served_by else best.url),
            edition=edition,
            updated=existing is None and not (had_bundle and not edition.complete),
        )

    def latest_bundle(self, eid: str) -> LibraryEdition | None:
        """Edition ``eid``'s latest bundle in the library, fetched first if need be.

        None when the publisher publishes none. The bundle is verified whole,
        by its signed hash, before any member is read; its members go into the
        cache by their own hash, so the whole edition reuses them.
        """
        have = self.store.bundle(eid)
        if have is not None:
            return have
        path = layout.latest_bundle_path(eid)
        signed = self._newest().view.listed(path)
        if signed is None:
            return None
        if signed.length > caps.LATEST_BUNDLE_MAX_BYTES:
            raise TamperedError(f"the latest bundle of {eid} is signed as {signed.length} bytes")
        self.progress(f"fetching the newest articles of {eid} ({signed.length:,} bytes)")
        bundle = self.download(path)
        files: dict[str, Path] = {}
        limits = ArchiveLimits(max_members=20_000, max_total_bytes=4 * caps.LATEST_BUNDLE_MAX_BYTES)
        with EditionArchive.open(bundle, limits) as archive:
            for member in archive.members:
                unpacked = bundle.with_name(f"{bundle.name}.member")
                digest = hashlib.sha256()
                with unpacked.open("wb") as out:
                    for chunk in archive.iter_chunks(member):
                        digest.update(chunk)
                        out.write(chunk)
                files[member.name] = self.store.cache_file(digest.hexdigest(), unpacked)
        bundle.unlink(missing_ok=True)
        for needed in ("index.html", layout.EDITION_INFO_MEMBER):
            if needed not in files:
                raise TamperedError(f"the latest bundle of {eid} has no {needed}")
        return self.store.install_bundle(eid, files.items())

    def whole_edition(self, eid: str) -> LibraryEdition:
        """Edition ``eid`` member by member (the cache first), or from its archive.

        A reader with no edition yet takes the archive when it misses most
        members. With nothing but this edition's latest bundle, that is
        counted once the member shards are in (a few kilobytes each); with
        nothing at all, the archive is taken at once, shards included.
        """
        member_list = self._newest().view.member_list(eid)
        if not self.store.editions():
            if self.store.bundle(eid) is not None:
                self.add_shards(eid, member_list)
            if 2 * len(self._missing(member_list.members)) > len(member_list.members):
                self.progress("no local copy yet: fetching the newest edition archive")
                self.seed_cache_from_archive(eid)
        self.add_shards(eid, member_list)
        members = member_list.complete()
        missing = self._missing(members)
        self.progress(f"downloading {len(missing)} of {len(members)} files of {eid}")
        for name in missing:
            signed = members[name]
            if self.store.cached(signed.sha256) is None:  # two members may share their bytes
                target = name if layout.is_content_path(name) else layout.manifest_path(eid, name)
                path = self.download(target, expect_sha256=signed.sha256)
                self.store.cache_file(signed.sha256, path)
        del missing
        return self.store.install(eid, self._cached_files(members))

    def _cached_files(self, members: Mapping[str, SignedFile]) -> Iterator[tuple[str, Path]]:
        """(member name, cached file) for every member, which the cache must hold by now."""
        for name, signed in members.items():
            cached = self.store.cached(signed.sha256)
            if cached is None:
                raise StorageError(f"the verified copy of {name} left the cache during the fetch")
            yield name, cached

    def _missing(self, members: Mapping[str, SignedFile]) -> list[str]:
        """The members whose hash the cache does not hold."""
        return [name for name, m in members.items() if self.store.cached(m.sha256) is None]

    def _commit(self, info: verify.EditionInfo) -> None:
        """Make the verified metadata the reader's trusted state; timestamp last."""
        view = self._newest().view
        old_root, _ = self.trusted_root()
        new_root_version = view.trusted("root", Root).signed.version
        roots = view.root_history(old_root.signed.version + 1, new_root_version)
        chain = verify.walk_root_chain(old_root, roots)  # the same rules as offline verify
        fsutil.ensure_dir(self.store.metadata_dir)
        names = sorted(p.name for p in view.folder.glob("*.json"))
        timestamp = metadata_file(view.folder, "timestamp").name
        for name in sorted(names, key=lambda n: n == timestamp):
            fsutil.atomic_write_bytes(
                self.store.metadata_dir / name, (view.folder / name).read_bytes()
            )
        accepted = dict(
            zip(
                range(old_root.signed.version + 1, chain.root.signed.version + 1),
                chain.accepted,
                strict=True,
            )
        )
        self.store.apply(
            TrustUpdate(self.publisher.publisher_id, accepted, (info.version, info.eid))
        )

    def _record_health(self, edition: LibraryEdition) -> None:
        """Each mirror's verdict, and the signed mirror list of the edition just verified.

        The list comes from the edition itself (a verified member), so a mirror
        that withholds ``mirrors.json`` cannot keep a reader from learning it.
        """
        health = self.store.health()
        for outcome in self._outcomes():
            entry = health["mirrors"].setdefault(outcome.url, {})
            entry["last_verdict"] = outcome.verdict
            entry["last_detail"] = outcome.detail
            entry["last_checked"] = self.now.isoformat()
            if outcome.verdict == "ok":
                entry["last_ok"] = self.now.isoformat()
        listed = signed_mirror_list(edition)
        if listed is not None:
            health["signed_list"] = listed
        self.store.save_health(health)


def signed_mirror_list(edition: LibraryEdition) -> list[str] | None:
    """The mirror URLs an edition's own ``mirrors.json`` names (None when it names none)."""
    path = edition.path / layout.MIRROR_LIST_PATH
    try:
        document = json.loads(fsutil.read_bounded(path, max_bytes=1024 * 1024, what="mirror list"))
        urls = [m["url"] for m in document.get("mirrors", []) if isinstance(m.get("url"), str)]
    except (MirrorError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return urls


def _edition_info(path: Path) -> verify.EditionInfo:
    return verify.parse_edition_info(
        fsutil.read_bounded(path, max_bytes=caps.EDITION_INFO_MAX_BYTES, what="edition.json")
    )


def _overall_failure(outcomes: Sequence[MirrorOutcome]) -> MirrorError:
    """The verdict when no mirror verified: tampering first, then age, then reachability."""
    kinds = {o.verdict for o in outcomes}
    summary = "; ".join(f"{o.url}: {o.verdict}" for o in outcomes)
    if "tampered" in kinds:
        return TamperedError(f"no mirror served a genuine edition ({summary})")
    if "other-publisher" in kinds:
        named = next(o.detail for o in outcomes if o.verdict == "other-publisher")
        return ForeignEditionError(
            f"the mirrors serve another publisher's editions: {named} ({summary})"
        )
    if kinds & {"rollback", "stale"}:
        return RollbackError(f"every mirror serves older data than you already have ({summary})")
    if "expired" in kinds:
        return ExpiredError(f"every mirror serves expired data ({summary})")
    return TransportError(
        f"no mirror could be reached ({summary})",
        hint="Try again later, from another network, or ask for another mirror address.",
    )


def _version_of(path: Path) -> int:
    root = parse_metadata(
        fsutil.read_bounded(path, max_bytes=caps.ROOT_MAX_BYTES, what="root metadata"),
        Root,
        what=str(path),
    )
    return root.signed.version
