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
3. **Incremental.** The newest edition's signed member list is read; only
   members whose hash is not in the reader's cache are downloaded (from the
   best mirror, falling back to the other verified ones — every byte is
   checked against the signed hash whatever mirror it came from). A reader
   with an empty cache takes the newest published edition ZIP first.
4. **Crash-safe.** The edition is assembled in a staging folder and renamed
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
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tuf.api.metadata import Metadata, Root

from mirror import caps, fsutil
from mirror.client.classify import classify
from mirror.client.transport import DeadlineFetcher
from mirror.client.view import MirrorView, Served, metadata_file, normalize_url
from mirror.errors import (
    ExpiredError,
    MirrorError,
    RollbackError,
    TamperedError,
    TransportError,
    UsageError,
)
from mirror.reader.store import (
    LibraryEdition,
    PublisherStore,
    ReaderStore,
    Trust,
    TrustUpdate,
)
from mirror.reader.verify_file import trusted_root, verify_edition
from mirror.trust import layout, verify
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import publisher_of

MAX_PARALLEL_MIRRORS = 10


@dataclass(frozen=True)
class MirrorOutcome:
    """What one mirror did in this fetch."""

    url: str
    verdict: str
    """One of `mirror.client.classify.MIRROR_VERDICTS`."""
    detail: str = ""
    timestamp_version: int | None = None

    def as_json(self) -> dict[str, Any]:
        """For --json."""
        return {
            "url": self.url,
            "verdict": self.verdict,
            "detail": self.detail,
            "timestamp_version": self.timestamp_version,
        }


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


@dataclass
class _Probe:
    """A mirror whose metadata verified, with its view still open."""

    view: MirrorView
    served: Served
    outcome: MirrorOutcome = field(init=False)

    def __post_init__(self) -> None:
        self.outcome = MirrorOutcome(self.url, "ok", "", self.served.timestamp_version)

    @property
    def url(self) -> str:
        """The mirror's root URL."""
        return self.view.url

    def close(self) -> int:
        """Close the view's transport and remove its folder; return the bytes it received."""
        self.view.fetcher.close()
        shutil.rmtree(self.view.folder, ignore_errors=True)
        return self.view.fetcher.bytes_received


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
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.pinned = pinned
        self.now = now
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.publisher = publisher_of(pinned.signed)
        self.store: PublisherStore = store.publisher(self.publisher.publisher_id)
        self.progress = progress or (lambda _: None)
        self.downloaded = 0
        """Target bytes downloaded (edition files)."""
        self.download_failures: dict[str, tuple[str, str]] = {}
        """Mirrors whose metadata verified but whose files did not: url -> (verdict, detail)."""
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
        ordered = [normalize_url(u) for u in urls]
        ordered += [normalize_url(u) for u in self.store.health().get("signed_list", [])]
        unique = list(dict.fromkeys(u for u in ordered if u.startswith(("http", "file"))))
        if not unique:
            raise UsageError(
                "no mirror is known for this publisher yet",
                hint="Pass one or more mirror URLs with --mirror URL.",
            )
        return unique

    # --- phase 1: refresh every mirror --------------------------------------------
    def probe(self, url: str) -> _Probe | MirrorOutcome:
        """Refresh one mirror's metadata in its own folder; never raises."""
        folder = Path(tempfile.mkdtemp(prefix="mirror-fetch-"))
        fetcher = DeadlineFetcher(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.timeout_s,
            download_budget_s=self.timeout_s,
        )
        try:
            self.seed(folder)
            # bootstrap=None: the seeded root.json, the reader's trusted root, is the start.
            view = MirrorView(url, folder, fetcher, bootstrap=None)
            return _Probe(view, view.refresh())
        except Exception as error:  # every failure is this mirror's verdict, not ours
            self.received += fetcher.bytes_received
            fetcher.close()
            shutil.rmtree(folder, ignore_errors=True)
            verdict, detail = classify(error)
            return MirrorOutcome(url, verdict, detail)

    def probe_all(self, urls: Sequence[str]) -> tuple[list[_Probe], list[MirrorOutcome]]:
        """Refresh every mirror at once; (verified probes, failed outcomes).

        A censor's black holes and tricklers must not set the pace: once one
        mirror has verified, the others get a grace period (twice the time the
        first took, at least one second, at most the timeout) and whoever is
        still silent then is reported unreachable and left behind. Probes run
        in daemon threads, so an abandoned one cannot hold the program open; it
        ends at its own deadline and cleans up after itself.
        """
        results: queue.Queue[tuple[str, _Probe | MirrorOutcome]] = queue.Queue()
        abandoned = threading.Event()
        handover = threading.Lock()  # "still wanted?" and "hand it over" happen together
        gate = threading.Semaphore(MAX_PARALLEL_MIRRORS)

        def work(url: str) -> None:
            with gate:
                result = self.probe(url)
            with handover:
                if not abandoned.is_set():
                    results.put((url, result))
                    return
            if isinstance(result, _Probe):  # nobody waits for it any more
                result.close()

        started = time.monotonic()
        for url in urls:
            threading.Thread(target=work, args=(url,), daemon=True, name="probe").start()
        answers: dict[str, _Probe | MirrorOutcome] = {}
        deadline: float | None = None
        while len(answers) < len(urls):
            wait_s = None if deadline is None else deadline - time.monotonic()
            if wait_s is not None and wait_s <= 0:
                break
            try:
                url, result = results.get(timeout=wait_s)
            except queue.Empty:
                break
            answers[url] = result
            if deadline is None and isinstance(result, _Probe):
                elapsed = time.monotonic() - started
                grace_s = min(self.timeout_s, max(1.0, 2 * elapsed))
                deadline = time.monotonic() + grace_s
        with handover:
            abandoned.set()
            # A probe may have finished between the last wait and now: take it.
            while True:
                try:
                    url, result = results.get_nowait()
                except queue.Empty:
                    break
                answers[url] = result
        good = [r for r in answers.values() if isinstance(r, _Probe)]
        bad = [r for r in answers.values() if isinstance(r, MirrorOutcome)]
        bad += [
            MirrorOutcome(url, "unreachable", "too slow: others answered long before")
            for url in urls
            if url not in answers
        ]
        return good, bad

    # --- phase 2: the edition -----------------------------------------------------
    def download(
        self, target_path: str, probes: Sequence[_Probe], *, expect_sha256: str | None = None
    ) -> Path:
        """Download a target, verified by its signed hash, trying each verified mirror in turn."""
        best = probes[0].view
        info = best.target(target_path)
        if expect_sha256 is not None and info.hashes.get("sha256") != expect_sha256:
            raise TamperedError(f"{target_path} is signed with two different hashes")
        failures = []
        forged = False
        for probe in probes:
            self.downloads += 1
            destination = best.folder / f".download-{self.downloads}"
            try:
                # Checked by the best mirror's verified metadata, from this mirror's address.
                path = best.download(info, destination, from_url=probe.url)
            except MirrorError as error:
                # This mirror failed for this file (and was not believed): try the next.
                verdict, detail = classify(error)
                forged = forged or verdict == "tampered"
                self._note_download_failure(probe.url, verdict, f"{target_path}: {detail}")
                failures.append(f"{probe.url}: {detail}")
                destination.unlink(missing_ok=True)
                continue
            self.downloaded += info.length
            return path
        summary = "; ".join(failures)
        if forged:
            raise TamperedError(f"no mirror delivered a genuine {target_path} ({summary})")
        raise TransportError(f"no mirror could deliver {target_path} ({summary})")

    def _note_download_failure(self, url: str, verdict: str, detail: str) -> None:
        """Remember the worst thing a verified mirror did while files were downloaded."""
        previous = self.download_failures.get(url)
        if previous is None or (verdict == "tampered" and previous[0] != "tampered"):
            self.download_failures[url] = (verdict, detail)

    def with_download_verdicts(self, outcomes: Sequence[MirrorOutcome]) -> list[MirrorOutcome]:
        """Outcomes, with mirrors whose files failed (forged or missing) named as such."""
        result = []
        for outcome in outcomes:
            failure = self.download_failures.get(outcome.url)
            if failure is not None and outcome.verdict == "ok":
                verdict, detail = failure
                result.append(
                    MirrorOutcome(outcome.url, verdict, detail, outcome.timestamp_version)
                )
            else:
                result.append(outcome)
        return result

    def seed_cache_from_archive(self, probes: Sequence[_Probe], eid: str) -> None:
        """A reader with an empty cache starts from the newest published edition ZIP."""
        best = probes[0].view
        wanted = layout.edition_version(eid)
        archives = [a for a in best.edition_archives() if layout.edition_version(a) <= wanted]
        if not archives:
            return
        archive = self.download(layout.edition_zip_path(archives[-1]), probes)
        extracted = best.folder / "extracted"
        verify_edition(
            archive,
            pinned=self.pinned,
            # Only a source of verified bytes: the edition itself is judged below, so
            # neither the reader's rollback record nor the archive's age matters here.
            trust=Trust(roots=self.store.trust().roots, highest=None),
            now=self.now,
            allow_expired=True,
            extract_to=extracted,
        )
        for path in extracted.rglob("*"):
            if path.is_file():
                digest = _sha256_file(path)
                if self.store.cached(digest) is None:
                    self.store.cache_file(digest, path)
        archive.unlink()

    # --- the whole run ------------------------------------------------------------
    def run(self, urls: Sequence[str]) -> FetchReport:
        """Fetch, verify, assemble and record the newest edition; never raises for mirrors."""
        candidates = self.candidates(urls)
        self.progress(f"checking {len(candidates)} mirrors")
        good, bad = self.probe_all(candidates)
        outcomes: list[MirrorOutcome] = list(bad)
        fetched: FetchedEdition | None = None
        error: MirrorError | None = None
        try:
            if not good:
                error = _overall_failure(bad)
            else:
                good.sort(key=lambda p: (p.served.timestamp_version, p.served.snapshot_version))
                good.reverse()
                best = good[0]
                outcomes = [best.outcome]
                for probe in good[1:]:
                    if probe.served.behind(best.served):
                        probe.outcome = MirrorOutcome(
                            probe.url,
                            "stale",
                            f"serves version {probe.served.timestamp_version}, "
                            f"newest is {best.served.timestamp_version}",
                            probe.served.timestamp_version,
                        )
                    outcomes.append(probe.outcome)
                outcomes += bad
                current = [p for p in good if p.outcome.verdict == "ok"]
                try:
                    fetched = self._finish(current, best, outcomes)
                except MirrorError as failure:
                    error = failure
                outcomes = self.with_download_verdicts(outcomes)
        finally:
            for probe in good:
                self.received += probe.close()
        return FetchReport(
            publisher=self.publisher.name,
            outcomes=tuple(outcomes),
            fetched=fetched,
            error=error,
            downloaded_bytes=self.downloaded,
            received_bytes=self.received,
        )

    def _finish(
        self, current: list[_Probe], best: _Probe, outcomes: list[MirrorOutcome]
    ) -> FetchedEdition:
        eid = best.view.newest_edition()
        members = best.view.members(eid)
        highest = self.store.trust().highest
        if highest is not None and layout.edition_version(eid) < highest[0]:
            raise RollbackError(f"the newest edition offered, {eid}, is older than {highest[1]}")
        existing = self.store.find(eid)
        if existing is None:
            if not self.store.editions() and not any(
                self.store.cached(m.sha256) for m in members.values()
            ):
                self.progress("no local copy yet: fetching the newest edition archive")
                self.seed_cache_from_archive(current, eid)
            files: dict[str, Path] = {}
            missing = [name for name, m in members.items() if self.store.cached(m.sha256) is None]
            self.progress(f"downloading {len(missing)} of {len(members)} files of {eid}")
            for name, signed in members.items():
                cached = self.store.cached(signed.sha256)
                if cached is None:
                    target = (
                        name if layout.is_content_path(name) else layout.manifest_path(eid, name)
                    )
                    path = self.download(target, current, expect_sha256=signed.sha256)
                    cached = self.store.cache_file(signed.sha256, path)
                files[name] = cached
            info = verify.parse_edition_info(
                fsutil.read_bounded(
                    files[layout.EDITION_INFO_MEMBER],
                    max_bytes=caps.EDITION_INFO_MAX_BYTES,
                    what="edition.json",
                )
            )
            if info.eid != eid:
                raise TamperedError(f"edition.json names {info.eid}, not {eid}")
            edition = self.store.install(eid, files)
        else:
            edition = existing
            info = verify.parse_edition_info(
                fsutil.read_bounded(
                    edition.path / layout.EDITION_INFO_MEMBER,
                    max_bytes=caps.EDITION_INFO_MAX_BYTES,
                    what="edition.json",
                )
            )
        self._commit(best, info)
        self._record_health(best, outcomes)
        return FetchedEdition(
            publisher=self.publisher.name,
            eid=eid,
            version=info.version,
            created=info.created,
            # Where the edition came from: the best mirror, unless its files failed.
            mirror=next((p.url for p in current if p.url not in self.download_failures), best.url),
            edition=edition,
            updated=existing is None,
        )

    def _commit(self, best: _Probe, info: verify.EditionInfo) -> None:
        """Make the verified metadata the reader's trusted state; timestamp last."""
        old_root, _ = self.trusted_root()
        new_root_version = best.view.trusted("root", Root).signed.version
        roots = best.view.root_history(old_root.signed.version + 1, new_root_version)
        chain = verify.walk_root_chain(old_root, roots)  # the same rules as offline verify
        fsutil.ensure_dir(self.store.metadata_dir)
        names = sorted(p.name for p in best.view.folder.glob("*.json"))
        timestamp = metadata_file(best.view.folder, "timestamp").name
        for name in sorted(names, key=lambda n: n == timestamp):
            fsutil.atomic_write_bytes(
                self.store.metadata_dir / name, (best.view.folder / name).read_bytes()
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

    def _record_health(self, best: _Probe, outcomes: Sequence[MirrorOutcome]) -> None:
        health = self.store.health()
        for outcome in outcomes:
            entry = health["mirrors"].setdefault(outcome.url, {})
            entry["last_verdict"] = outcome.verdict
            entry["last_detail"] = outcome.detail
            entry["last_checked"] = self.now.isoformat()
            if outcome.verdict == "ok":
                entry["last_ok"] = self.now.isoformat()
        try:
            mirror_list = self.download(layout.MIRROR_LIST_PATH, [best])
            document = json.loads(mirror_list.read_bytes())
            urls = [m["url"] for m in document.get("mirrors", []) if isinstance(m.get("url"), str)]
            health["signed_list"] = urls
        except (MirrorError, ValueError, KeyError, TypeError, AttributeError):
            pass  # the list is a hint for next time; the edition is already verified
        self.store.save_health(health)


def _overall_failure(outcomes: Sequence[MirrorOutcome]) -> MirrorError:
    """The verdict when no mirror verified: tampering first, then age, then reachability."""
    kinds = {o.verdict for o in outcomes}
    summary = "; ".join(f"{o.url}: {o.verdict}" for o in outcomes)
    if "tampered" in kinds:
        return TamperedError(f"no mirror served a genuine edition ({summary})")
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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
