"""`mirror fetch`: get the newest edition from whichever mirrors still work, verified.

1. **Every mirror on its own.** Each candidate mirror (given on the command
   line, and from the signed mirror list of the last verified edition) gets
   its own python-tuf `Updater`, seeded with a copy of the reader's trusted
   metadata, and is refreshed concurrently with short timeouts. Whatever a
   mirror serves is verified against the reader's trust, so a forged answer
   from the tenth mirror is rejected exactly like one from the first.
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
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
from tuf.ngclient import Updater, UpdaterConfig

from mirror import fsutil
from mirror.errors import (
    ExpiredError,
    MirrorError,
    RollbackError,
    TamperedError,
    TransportError,
    UsageError,
)
from mirror.fetcher import MirrorFetcher
from mirror.library import Library, LibraryEdition
from mirror.offline import verify_edition
from mirror.state import ReaderState
from mirror.trust import layout, verify
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import publisher_of
from mirror.tuferrors import translate

UPDATER_CONFIG = UpdaterConfig(
    max_root_rotations=256,
    snapshot_max_length=16 * 1024 * 1024,
    targets_max_length=64 * 1024 * 1024,
)
"""Bigger caps than python-tuf's defaults for targets roles: an edition of 30,000
articles lists them all in one role."""

MAX_PARALLEL_MIRRORS = 10


@dataclass(frozen=True)
class MirrorOutcome:
    """What one mirror did in this fetch."""

    url: str
    verdict: str
    """``ok``, ``stale``, ``rollback``, ``expired``, ``tampered`` or ``unreachable``."""
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
class FetchResult:
    """A verified edition and how it was obtained."""

    publisher: str
    eid: str
    version: int
    created: datetime
    mirror: str
    outcomes: tuple[MirrorOutcome, ...]
    downloaded_bytes: int
    """Bytes of edition files downloaded."""
    received_bytes: int
    """Every byte received from every mirror, metadata included."""
    edition: LibraryEdition
    updated: bool
    """False when the newest edition was already in the library."""


class FetchFailure(MirrorError):
    """No mirror gave a verified edition; carries each mirror's outcome."""

    def __init__(self, error: MirrorError, outcomes: Sequence[MirrorOutcome]) -> None:
        super().__init__(error.message, hint=error.hint)
        self.exit_code = error.exit_code
        self.verdict = error.verdict
        self.outcomes = tuple(outcomes)

    def relabelled(self, message: str, hint: str) -> FetchFailure:
        """The same failure (verdict, exit code, outcomes) in other words, e.g. translated."""
        failure = FetchFailure(MirrorError(message, hint=hint), self.outcomes)
        failure.exit_code = self.exit_code
        failure.verdict = self.verdict
        return failure


@dataclass
class _Probe:
    """A mirror whose metadata verified, with its updater still open."""

    url: str
    updater: Updater
    fetcher: MirrorFetcher
    folder: Path
    timestamp_version: int
    snapshot_version: int
    outcome: MirrorOutcome = field(init=False)

    def __post_init__(self) -> None:
        self.outcome = MirrorOutcome(self.url, "ok", "", self.timestamp_version)


def normalize_url(url: str) -> str:
    """Mirror roots end with "/"."""
    return url if url.endswith("/") else url + "/"


def classify(error: BaseException) -> tuple[str, str]:
    """(verdict, detail) for an exception raised while reading a mirror."""
    translated = translate(error)
    return translated.verdict, translated.message


class Fetcher:
    """One `mirror fetch` run for one publisher."""

    def __init__(
        self,
        *,
        pinned: Metadata[Root],
        state: ReaderState,
        now: datetime,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 30.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.pinned = pinned
        self.state = state
        self.now = now
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.publisher = publisher_of(pinned.signed)
        self.library = Library.of(state, self.publisher.publisher_id)
        self.progress = progress or (lambda _: None)
        self.downloaded = 0
        """Target bytes downloaded (edition files)."""
        self.download_failures: dict[str, tuple[str, str]] = {}
        """Mirrors whose metadata verified but whose files did not: url -> (verdict, detail)."""
        self.received = 0
        """Every byte received from any mirror, metadata included (closed fetchers)."""
        self.downloads = 0

    # --- trusted state ------------------------------------------------------------
    def trusted_root(self) -> tuple[Metadata[Root], bytes]:
        """The newest root this reader trusts (pinned, walked through stored roots)."""
        stored = self.state.load(self.publisher.publisher_id).roots
        chain = verify.walk_root_chain(self.pinned, stored)
        version = chain.root.signed.version
        data = stored.get(version) or self.pinned.to_bytes()
        return chain.root, data

    def seed(self, folder: Path) -> None:
        """Copy the trusted metadata into ``folder`` for one mirror's updater."""
        root, root_bytes = self.trusted_root()
        trusted = self.library.metadata_dir
        if trusted.is_dir():
            for path in trusted.glob("*.json"):
                shutil.copyfile(path, folder / path.name)
        current = folder / "root.json"
        if not current.exists() or _version_of(current) < root.signed.version:
            current.write_bytes(root_bytes)

    def candidates(self, urls: Sequence[str]) -> list[str]:
        """Command-line mirrors first, then the signed list of the last verified edition."""
        ordered = [normalize_url(u) for u in urls]
        ordered += [normalize_url(u) for u in self.library.health().get("signed_list", [])]
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
        fetcher = MirrorFetcher(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.timeout_s,
            download_budget_s=self.timeout_s,
        )
        try:
            self.seed(folder)
            updater = Updater(
                metadata_dir=str(folder),
                metadata_base_url=f"{url}metadata/",
                target_base_url=f"{url}targets/",
                target_dir=str(folder),
                fetcher=fetcher,
                config=UPDATER_CONFIG,
                bootstrap=None,  # the seeded root.json: the reader's trusted root
            )
            updater.refresh()
            timestamp = Metadata[Timestamp].from_file(str(folder / "timestamp.json"))
            snapshot = Metadata[Snapshot].from_file(str(folder / "snapshot.json"))
            return _Probe(
                url,
                updater,
                fetcher,
                folder,
                timestamp.signed.version,
                snapshot.signed.version,
            )
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
                result.fetcher.close()
                shutil.rmtree(result.folder, ignore_errors=True)

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
    def newest_edition(self, probe: _Probe) -> str:
        """The newest edition id the verified metadata delegates to."""
        probe.updater.get_targetinfo("manifests/-/-")  # loads and verifies `manifests`
        manifests = Metadata[Targets].from_file(str(probe.folder / "manifests.json"))
        roles = manifests.signed.delegations.roles if manifests.signed.delegations else None
        eids = [
            name.removeprefix(layout.EDITION_ROLE_PREFIX)
            for name in (roles or {})
            if name.startswith(layout.EDITION_ROLE_PREFIX)
        ]
        if not eids:
            raise TamperedError("the mirror's metadata lists no edition")
        return max(eids, key=layout.edition_version)

    def members(self, probe: _Probe, eid: str) -> dict[str, verify.SignedFile]:
        """The signed member list of edition ``eid``."""
        info = probe.updater.get_targetinfo(layout.manifest_path(eid, layout.EDITION_INFO_MEMBER))
        if info is None:
            raise TamperedError(f"the metadata does not list edition {eid}")
        role = Metadata[Targets].from_file(str(probe.folder / f"{layout.edition_role(eid)}.json"))
        prefix = f"manifests/{eid}/"
        result = {}
        for path, target in role.signed.targets.items():
            sha256 = target.hashes.get("sha256")
            if not path.startswith(prefix) or not isinstance(sha256, str):
                raise TamperedError(f"the member list of {eid} names {path}")
            result[path.removeprefix(prefix)] = verify.SignedFile(target.length, sha256)
        return result

    def download(
        self, target_path: str, probes: Sequence[_Probe], *, expect_sha256: str | None = None
    ) -> Path:
        """Download a target, verified by its signed hash, trying each verified mirror in turn."""
        best = probes[0]
        info = best.updater.get_targetinfo(target_path)
        if info is None:
            raise TamperedError(f"the metadata does not list {target_path}")
        if expect_sha256 is not None and info.hashes.get("sha256") != expect_sha256:
            raise TamperedError(f"{target_path} is signed with two different hashes")
        failures = []
        forged = False
        for probe in probes:
            self.downloads += 1
            destination = best.folder / f".download-{self.downloads}"
            try:
                # Through the best mirror's updater (its verified metadata checks the
                # hash), from this mirror's address.
                with best.fetcher.budget_for(info.length):
                    path = best.updater.download_target(
                        info, str(destination), target_base_url=f"{probe.url}targets/"
                    )
            except (tuf_errors.DownloadError, tuf_errors.RepositoryError) as error:
                # This mirror failed for this file (and was not believed): try the next.
                verdict, detail = classify(error)
                forged = forged or verdict == "tampered"
                self._note_download_failure(probe.url, verdict, f"{target_path}: {detail}")
                failures.append(f"{probe.url}: {detail}")
                destination.unlink(missing_ok=True)
                continue
            self.downloaded += info.length
            return Path(path)
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
        best = probes[0]
        best.updater.get_targetinfo("editions/-")  # loads and verifies `editions`
        editions = Metadata[Targets].from_file(str(best.folder / "editions.json"))
        archives = sorted(
            (p for p in editions.signed.targets if p.endswith(".zip")),
            key=lambda p: layout.edition_version(Path(p).name.removesuffix(".zip")),
        )
        wanted = layout.edition_version(eid)
        newest = [p for p in archives if layout.edition_version(Path(p).name[:-4]) <= wanted]
        if not newest:
            return
        archive = self.download(newest[-1], probes)
        extracted = best.folder / "extracted"
        verify_edition(
            archive,
            pinned=self.pinned,
            state=ReaderState(best.folder / "archive-state"),
            now=self.now,
            allow_expired=True,  # only a source of verified bytes; the edition is judged below
            extract_to=extracted,
        )
        for path in extracted.rglob("*"):
            if path.is_file():
                digest = _sha256_file(path)
                if self.library.cached(digest) is None:
                    self.library.cache_file(digest, path)
        archive.unlink()

    # --- the whole run ------------------------------------------------------------
    def run(self, urls: Sequence[str]) -> FetchResult:
        """Fetch, verify, assemble and record the newest edition."""
        candidates = self.candidates(urls)
        self.progress(f"checking {len(candidates)} mirrors")
        good, bad = self.probe_all(candidates)
        try:
            if not good:
                raise FetchFailure(_overall_failure(bad), bad)
            good.sort(key=lambda p: (p.timestamp_version, p.snapshot_version), reverse=True)
            best = good[0]
            outcomes = [best.outcome]
            for probe in good[1:]:
                if (probe.timestamp_version, probe.snapshot_version) < (
                    best.timestamp_version,
                    best.snapshot_version,
                ):
                    probe.outcome = MirrorOutcome(
                        probe.url,
                        "stale",
                        f"serves version {probe.timestamp_version}, "
                        f"newest is {best.timestamp_version}",
                        probe.timestamp_version,
                    )
                outcomes.append(probe.outcome)
            current = [p for p in good if p.outcome.verdict == "ok"]
            outcomes += bad
            try:
                result = self._finish(current, best, outcomes)
            except FetchFailure:
                raise
            except MirrorError as error:
                raise FetchFailure(error, self.with_download_verdicts(outcomes)) from error
        finally:
            for probe in good:
                self.received += probe.fetcher.bytes_received
                probe.fetcher.close()
                shutil.rmtree(probe.folder, ignore_errors=True)
        return replace(result, received_bytes=self.received)

    def _finish(
        self, current: list[_Probe], best: _Probe, outcomes: list[MirrorOutcome]
    ) -> FetchResult:
        eid = self.newest_edition(best)
        members = self.members(best, eid)
        highest = self.state.load(self.publisher.publisher_id).highest
        if highest is not None and layout.edition_version(eid) < highest[0]:
            raise FetchFailure(
                RollbackError(f"the newest edition offered, {eid}, is older than {highest[1]}"),
                outcomes,
            )
        existing = self.library.find(eid)
        if existing is None:
            if not self.library.editions() and not any(
                self.library.cached(m.sha256) for m in members.values()
            ):
                self.progress("no local copy yet: fetching the newest edition archive")
                self.seed_cache_from_archive(current, eid)
            files: dict[str, Path] = {}
            missing = [name for name, m in members.items() if self.library.cached(m.sha256) is None]
            self.progress(f"downloading {len(missing)} of {len(members)} files of {eid}")
            for name, signed in members.items():
                cached = self.library.cached(signed.sha256)
                if cached is None:
                    target = (
                        name if layout.is_content_path(name) else layout.manifest_path(eid, name)
                    )
                    path = self.download(target, current, expect_sha256=signed.sha256)
                    cached = self.library.cache_file(signed.sha256, path)
                files[name] = cached
            info = verify.parse_edition_info(files[layout.EDITION_INFO_MEMBER].read_bytes())
            if info.eid != eid:
                raise FetchFailure(
                    TamperedError(f"edition.json names {info.eid}, not {eid}"), outcomes
                )
            edition = self.library.install(eid, files)
        else:
            edition = existing
            info = verify.parse_edition_info((edition.path / "edition.json").read_bytes())
        self._commit(best, info)
        self._record_health(best, outcomes)
        return FetchResult(
            publisher=self.publisher.name,
            eid=eid,
            version=info.version,
            created=info.created,
            # Where the edition came from: the best mirror, unless its files failed.
            mirror=next((p.url for p in current if p.url not in self.download_failures), best.url),
            outcomes=tuple(self.with_download_verdicts(outcomes)),
            downloaded_bytes=self.downloaded,
            received_bytes=0,  # filled in by `run` once every fetcher is closed
            edition=edition,
            updated=existing is None,
        )

    def _commit(self, best: _Probe, info: verify.EditionInfo) -> None:
        """Make the verified metadata the reader's trusted state; timestamp last."""
        old_root, _ = self.trusted_root()
        new_root_version = _version_of(best.folder / "root.json")
        roots: dict[int, bytes] = {}
        for version in range(old_root.signed.version + 1, new_root_version + 1):
            # python-tuf keeps every root it accepted in root_history/.
            roots[version] = (best.folder / "root_history" / f"{version}.root.json").read_bytes()
        chain = verify.walk_root_chain(old_root, roots)  # the same rules as offline verify
        fsutil.ensure_dir(self.library.metadata_dir)
        names = sorted(p.name for p in best.folder.glob("*.json"))
        for name in sorted(names, key=lambda n: n == "timestamp.json"):
            fsutil.atomic_write_bytes(
                self.library.metadata_dir / name, (best.folder / name).read_bytes()
            )
        accepted = dict(
            zip(
                range(old_root.signed.version + 1, chain.root.signed.version + 1),
                chain.accepted,
                strict=True,
            )
        )
        self.state.save(
            self.publisher.publisher_id, roots=accepted, highest=(info.version, info.eid)
        )

    def _record_health(self, best: _Probe, outcomes: Sequence[MirrorOutcome]) -> None:
        health = self.library.health()
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
        self.library.save_health(health)


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
    root = parse_metadata(path.read_bytes(), Root, what=str(path))
    return root.signed.version


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
