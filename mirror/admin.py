"""`mirror config check`: what a sync would meet, found before a sync meets it.

`probe_mirror` checks a mirror the way a push would use it — reach the
server, authenticate, write a small probe file, read it back — then fetches
that probe through ``public_url`` with no credentials, as a reader would,
and surveys what the mirror publishes with the reader view
(`mirror.client.view.MirrorView`) from the publish tree's first root.
`check_publisher` checks this host: the passphrase, the online keys, every
source. Changing the mirrors of a config file is `mirror.config_edit`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirror import keystore, publish_tree
from mirror.backends import backend_type
from mirror.build import source_items
from mirror.client.classify import classify
from mirror.client.transport import DeadlineFetcher
from mirror.client.view import MirrorView
from mirror.config import Config, DirectorySource, MirrorSettings, Source
from mirror.errors import MirrorError
from mirror.ingest import IngestProblem
from mirror.ingest.directory import ARTICLE_SUFFIXES
from mirror.ingest.model import DEFAULT_LIMITS
from mirror.ingest.workers import WorkerPool
from mirror.publish import create_backend

PROBE_PREFIX = ".mirror-probe-"


@dataclass(frozen=True)
class ProbeResult:
    """One mirror's probe."""

    mirror: str
    type: str
    writable: bool
    public: bool
    seconds: float
    detail: str

    def as_json(self) -> dict[str, Any]:
        """For --json."""
        return {
            "mirror": self.mirror,
            "type": self.type,
            "writable": self.writable,
            "public": self.public,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


async def probe_mirror(config: Config, mirror: MirrorSettings) -> ProbeResult:
    """What a sync meets on this mirror, without touching what it publishes.

    Write a probe file, read it back through the backend, then fetch it
    through ``public_url`` with no credentials at all, as a reader would;
    delete it; then survey what the mirror publishes with the reader view.
    """
    started = time.monotonic()
    writable, public_probe, details = False, False, []
    path = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
    payload = f"mirror probe {path}\n".encode()
    try:
        backend = create_backend(config, mirror)
        try:
            await backend.put(path, payload, size=len(payload))
            await backend.flush()
            if await backend.get(path, max_bytes=1024) != payload:
                raise MirrorError("the probe file read back differs from what was written")
            writable = True
            details.append("write, read and delete work")
            public_probe, public_detail = await asyncio.to_thread(
                _public_probe, mirror, path, payload
            )
            if not public_probe:
                details.append(public_detail)
            await backend.delete(path)
            await backend.flush()
        finally:
            await backend.close()
    except MirrorError as error:
        details.append(f"{error.verdict}: {error.message}")
    published, published_detail = await asyncio.to_thread(
        _public_view, mirror.public_url, _bootstrap_root(config)
    )
    details.append(published_detail)
    return ProbeResult(
        mirror=mirror.name,
        type=mirror.type,
        writable=writable,
        public=public_probe and published,
        seconds=time.monotonic() - started,
        detail="; ".join(details),
    )


def _public_probe(mirror: MirrorSettings, path: str, payload: bytes) -> tuple[bool, str]:
    """Fetch the probe file through ``public_url`` without credentials, as a reader would."""
    url = f"{mirror.public_url}{path}"
    fetcher = DeadlineFetcher(connect_timeout_s=10, read_timeout_s=10, download_budget_s=20)
    hint = backend_type(mirror.type).public_read_hint
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-check-") as folder:
            served = MirrorView(mirror.public_url, Path(folder), fetcher, bootstrap=None).fetch(
                path, max_bytes=len(payload) + 1024
            )
    except MirrorError as error:
        return False, f"readers cannot read {url} ({error.message}): {hint}"
    finally:
        fetcher.close()
    if served is None:
        return False, (
            f"readers get HTTP 404 for {url}, the file just written: public_url does not point "
            f"at the folder this mirror writes to ({hint})"
        )
    if served != payload:
        return False, f"{url} serves other bytes than were written there: {hint}"
    return True, "readable at public_url"


def _public_view(public_url: str, bootstrap_root: bytes | None) -> tuple[bool, str]:
    """Read the mirror through its public URL as a reader would; (readable, what it serves)."""
    fetcher = DeadlineFetcher(connect_timeout_s=10, read_timeout_s=10, download_budget_s=20)
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-check-") as folder:
            view = MirrorView(public_url, Path(folder), fetcher, bootstrap=bootstrap_root)
            if not view.publishes_anything():
                return True, "public URL reachable, nothing published yet"
            if bootstrap_root is None:
                return True, "public URL serves a timestamp.json (nothing built here to check)"
            survey = view.survey()
    except Exception as error:  # any failure is this mirror's answer here, not a crash
        verdict, detail = classify(error)
        return False, f"public URL {verdict}: {detail}"
    finally:
        fetcher.close()
    return True, (
        f"public URL serves edition {survey.edition.eid} "
        f"(timestamp version {survey.served.timestamp_version}), verified"
    )


@dataclass(frozen=True)
class LocalCheck:
    """One thing a sync needs on this host: the passphrase, the keys, one source."""

    what: str
    detail: str
    error: MirrorError | None = None

    def as_json(self) -> dict[str, Any]:
        """For --json."""
        return {
            "what": self.what,
            "ok": self.error is None,
            "detail": self.detail,
            "exit_code": None if self.error is None else self.error.exit_code,
        }


def check_publisher(config: Config) -> list[LocalCheck]:
    """The passphrase, the online keys and every source, each as a sync would meet it."""
    checks: list[LocalCheck] = []
    try:
        passphrase = config.passphrase()
        checks.append(LocalCheck("passphrase", f"found ({config.keys.passphrase_ref})"))
    except MirrorError as error:
        checks.append(LocalCheck("passphrase", error.message, error))
        checks.append(LocalCheck("keys", "not checked without the passphrase"))
    else:
        try:
            keyring = keystore.load_keyring(config.keys.dir, passphrase)
            checks.append(
                LocalCheck(
                    "keys",
                    f"the online keys in {config.keys.dir} decrypt (targets, snapshot, timestamp, "
                    f"minisign); root version {keyring.root.signed.version}",
                )
            )
        except MirrorError as error:
            checks.append(LocalCheck("keys", error.message, error))
    for source in config.sources:
        checks.append(_check_source(config, source))
    return checks


def _check_source(config: Config, source: Source) -> LocalCheck:
    """A folder opens and its first article parses; a feed is fetched and parsed whole.

    Read as the build reads it (`build.source_items`: the same worker, CPU
    deadline, feed deadline and address rules), so a pass here holds for sync.
    """
    what = (
        f"source {source.path}"
        if isinstance(source, DirectorySource)
        else f"feed {source.location}"
    )
    try:
        with WorkerPool(1, cpu_s=DEFAULT_LIMITS.article_cpu_s) as pool:
            items = source_items(config, source, pool)
            if isinstance(source, DirectorySource):
                if next(items, None) is None:
                    return LocalCheck(what, "a folder with no article in it yet")
                count = sum(
                    1
                    for _, _, names in os.walk(source.path)
                    for name in names
                    if not name.startswith(".") and Path(name).suffix.lower() in ARTICLE_SUFFIXES
                )
                return LocalCheck(what, f"{count} article files")
            found = list(items)
        problems = sum(1 for item in found if isinstance(item, IngestProblem))
        return LocalCheck(
            what, f"{len(found) - problems} entries read, {problems} would be skipped"
        )
    except MirrorError as error:
        return LocalCheck(what, error.message, error)


def _bootstrap_root(config: Config) -> bytes | None:
    """The publish tree's first root, if anything was built yet."""
    if not publish_tree.root_path(config.publish_dir, 1).is_file():
        return None
    return publish_tree.first_root(config.publish_dir)


async def probe_all(config: Config) -> list[ProbeResult]:
    """Probe every configured mirror at once."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(probe_mirror(config, m)) for m in config.mirrors]
    return [task.result() for task in tasks]
