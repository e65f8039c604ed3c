"""`mirror status`: every mirror, from every vantage point, checked exactly as a reader would.

For each configured mirror and each vantage point (direct, or through a
proxy such as Tor or a VPS inside the censored country), a fresh reader view
(`mirror.client.view.MirrorView`), bootstrapped from the publisher's
``1.root.json`` and fetching through the vantage point's proxy, surveys the
mirror through its public URL: the metadata chain (every signature,
threshold, version, length and hash checked by TUF), then the newest
edition's signed ``edition.json`` through its delegated role. The served
timestamp version is compared with the local publish tree's.

Verdicts, worst news first:

=============  ===============================================================
unreachable    no verified answer at all (refused, timeout, HTTP error, trickle)
tampered       bytes or signatures do not match (or metadata contradicts itself;
               a rollback is one too, as a first-time reader cannot be rolled back)
expired        signed metadata or the served edition is past its expiry
stale          verified, but behind the local publish tree
healthy        verified and serving the local tree's timestamp version (or newer)
=============  ===============================================================

How far behind: timestamp metadata has no creation time, so lag is reported
in timestamp versions (``lag_versions``) and, when both are known, as the
minutes between the creation time of the newest edition the mirror serves
and the newest edition in the local tree (``lag_minutes``, from the signed
``edition.json``). A republish that adds no edition (a timestamp refresh)
moves ``lag_versions`` but not ``lag_minutes``.

Nothing here prints; the CLI renders `MirrorCheck` values. Proxy URLs may
carry credentials and are never put in a result, a log or an error: only
the vantage point's name is.
"""

from __future__ import annotations

import concurrent.futures
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mirror import publish_tree, secrets
from mirror.client.classify import classify
from mirror.client.transport import DeadlineFetcher
from mirror.client.view import MirrorView
from mirror.config import Config, MirrorSettings, VantagePoint
from mirror.errors import ExpiredError, QuorumError, UsageError
from mirror.logs import log_event
from mirror.trust.verify import EditionInfo

VERDICTS = ("healthy", "stale", "tampered", "expired", "unreachable")
"""Every verdict a check can give (also the values of the ``verdict`` metric label)."""
_FROM_READER_VERDICT = {"ok": "healthy", "rollback": "tampered"}
"""The reader view's verdicts in the monitor's words (see the table above)."""
MAX_PARALLEL_CHECKS = 16


@dataclass(frozen=True)
class LocalRelease:
    """What the local publish tree publishes now: the yardstick for every mirror."""

    timestamp_version: int
    eid: str | None
    created: datetime | None
    bootstrap_root: bytes


@dataclass(frozen=True)
class MirrorCheck:
    """One mirror seen from one vantage point."""

    mirror: str
    vantage_point: str
    url: str
    verdict: str
    detail: str
    local_timestamp_version: int
    served_timestamp_version: int | None
    served_edition: str | None
    served_edition_created: datetime | None
    lag_minutes: float | None
    response_seconds: float
    checked_at: datetime

    @property
    def healthy(self) -> bool:
        """Verified and current."""
        return self.verdict == "healthy"

    @property
    def reachable(self) -> bool:
        """It answered with something (even if that something was refused)."""
        return self.verdict != "unreachable"

    @property
    def lag_versions(self) -> int | None:
        """Timestamp versions behind the local tree (0 when current; None when unknown)."""
        if self.served_timestamp_version is None:
            return None
        return max(0, self.local_timestamp_version - self.served_timestamp_version)

    def as_json(self) -> dict[str, Any]:
        """For ``--json`` (no proxy URLs, no secrets)."""
        return {
            "mirror": self.mirror,
            "vantage_point": self.vantage_point,
            "url": self.url,
            "verdict": self.verdict,
            "healthy": self.healthy,
            "reachable": self.reachable,
            "detail": self.detail,
            "local_timestamp_version": self.local_timestamp_version,
            "served_timestamp_version": self.served_timestamp_version,
            "lag_versions": self.lag_versions,
            "served_edition": self.served_edition,
            "served_edition_created": self.served_edition_created.isoformat()
            if self.served_edition_created
            else None,
            "lag_minutes": None if self.lag_minutes is None else round(self.lag_minutes, 1),
            "response_seconds": round(self.response_seconds, 3),
            "checked_at": self.checked_at.isoformat(),
        }


def local_release(config: Config) -> LocalRelease:
    """The local tree's timestamp version, newest edition and its creation time."""
    release = publish_tree.current_release(config.publish_dir)
    if release is None:
        raise UsageError(
            f"there is nothing published in {config.publish_dir} to compare mirrors with",
            hint="Run `mirror sync` (or `mirror build`) first.",
        )
    eid = release.eids[-1] if release.eids else None
    info = None if eid is None else publish_tree.edition_info(config.publish_dir, eid)
    return LocalRelease(
        release.timestamp_version,
        eid,
        None if info is None else info.created,
        publish_tree.first_root(config.publish_dir),
    )


def resolve_proxy(config: Config, vantage: VantagePoint) -> str | None:
    """The vantage point's proxy URL, resolving a secret reference (never printed)."""
    if vantage.proxy is None or not secrets.is_reference(vantage.proxy):
        return vantage.proxy
    return secrets.resolve_secret(
        vantage.proxy, base_dir=config.base_dir, what=f"proxy of vantage point {vantage.name}"
    ).text()


def check_mirror(
    mirror: MirrorSettings,
    vantage: VantagePoint,
    *,
    local: LocalRelease,
    proxy: str | None,
    now: datetime,
    timeout_s: float,
) -> MirrorCheck:
    """Check one mirror from one vantage point; never raises for the mirror's faults."""
    started = time.monotonic()
    served_version: int | None = None
    info: EditionInfo | None = None
    verdict, detail = "healthy", ""
    fetcher = DeadlineFetcher(
        connect_timeout_s=min(10.0, timeout_s),
        read_timeout_s=timeout_s,
        download_budget_s=timeout_s,
        proxy=proxy,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-status-") as folder:
            view = MirrorView(
                mirror.public_url, Path(folder), fetcher, bootstrap=local.bootstrap_root
            )
            survey = view.survey()
            served_version, info = survey.served.timestamp_version, survey.edition
            if info.expires <= now:
                raise ExpiredError(f"serves edition {info.eid}, expired {info.expires:%Y-%m-%d}")
            view.require_version(local.timestamp_version, expected="the local tree is at")
    except Exception as error:  # every failure is this mirror's verdict, not ours
        verdict, detail = classify(error)
        if verdict == "rollback":
            detail = f"rollback: {detail}"
        verdict = _FROM_READER_VERDICT.get(verdict, verdict)
    finally:
        fetcher.close()
    lag_minutes = None
    if info is not None and local.created is not None:
        lag_minutes = max(0.0, (local.created - info.created).total_seconds() / 60)
    check = MirrorCheck(
        mirror=mirror.name,
        vantage_point=vantage.name,
        url=mirror.public_url,
        verdict=verdict,
        detail=detail,
        local_timestamp_version=local.timestamp_version,
        served_timestamp_version=served_version,
        served_edition=info.eid if info else None,
        served_edition_created=info.created if info else None,
        lag_minutes=lag_minutes,
        response_seconds=time.monotonic() - started,
        checked_at=now,
    )
    log_event(
        "mirror.checked",
        f"{check.mirror} via {check.vantage_point}: {check.verdict}",
        mirror=check.mirror,
        vantage_point=check.vantage_point,
        verdict=check.verdict,
        edition=check.served_edition,
        lag_versions=check.lag_versions,
        duration_s=round(check.response_seconds, 3),
        error_class=None if check.healthy else check.verdict,
        detail=check.detail or None,
    )
    return check


def check_all(config: Config, *, now: datetime) -> list[MirrorCheck]:
    """Every enabled mirror from every vantage point, concurrently (bounded)."""
    local = local_release(config)
    monitor = config.monitor
    proxies = {v.name: resolve_proxy(config, v) for v in monitor.vantage_points}
    jobs = [(m, v) for m in config.mirrors if m.enabled for v in monitor.vantage_points]
    if not jobs:
        return []
    with concurrent.futures.ThreadPoolExecutor(min(MAX_PARALLEL_CHECKS, len(jobs))) as pool:
        futures = [
            pool.submit(
                check_mirror,
                m,
                v,
                local=local,
                proxy=proxies[v.name],
                now=now,
                timeout_s=monitor.timeout_s,
            )
            for m, v in jobs
        ]
        return [f.result() for f in futures]


def healthy_counts(checks: Sequence[MirrorCheck]) -> dict[str, int]:
    """Healthy mirrors per vantage point."""
    counts: dict[str, int] = {}
    for check in checks:
        counts.setdefault(check.vantage_point, 0)
        if check.healthy:
            counts[check.vantage_point] += 1
    return counts


def require_quorum(checks: Sequence[MirrorCheck], quorum: int) -> None:
    """Raise `QuorumError` unless, from every vantage point, ``quorum`` mirrors are healthy.

    Per vantage point because that is what a reader there sees: three healthy
    mirrors seen from abroad are no comfort to readers behind a censor that
    blocks all three.
    """
    mirrors = len({c.mirror for c in checks})
    for vantage, healthy in healthy_counts(checks).items():
        if healthy < quorum:
            raise QuorumError(
                f"only {healthy} of {mirrors} mirrors are healthy as seen from {vantage}; "
                f"the quorum is {quorum}",
                hint="The table says what is wrong with each mirror.",
            )
    if not checks and quorum > 0:
        raise QuorumError(f"no mirror is enabled; the quorum is {quorum}")


def state_path(config: Config) -> Path:
    """Where the monitor keeps the last known state of each mirror and vantage point."""
    return config.output.monitor_state
