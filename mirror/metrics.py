"""Prometheus metrics, with the maintained ``prometheus-client``.

Two sources, two ways out:

* `MonitorMetrics`: the state of every mirror from every vantage point, kept
  up to date by ``mirror status --watch`` and served over HTTP (loopback by
  default, ``monitor.metrics``) for Prometheus to scrape.
* `write_push_textfile`: what the last ``mirror sync``/``push`` did, written
  atomically as a node-exporter textfile (``--metrics-textfile PATH``), since
  a cron or systemd run is gone before anything could scrape it.

Each collector lives in its own `CollectorRegistry` (never the global one),
so tests and several runs in one process do not collide.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, start_http_server, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from mirror import fsutil
from mirror.errors import StorageError
from mirror.monitor import VERDICTS, MirrorCheck
from mirror.publish import PushResult

LABELS = ("mirror", "vantage_point")


class MonitorMetrics:
    """Gauges for every mirror and vantage point, updated after each round of checks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.healthy = Gauge(
            "mirror_mirror_healthy",
            "1 if the mirror verified and serves the current timestamp, else 0.",
            LABELS,
            registry=self.registry,
        )
        self.lag_versions = Gauge(
            "mirror_mirror_lag_versions",
            "Timestamp versions the mirror is behind the local publish tree (NaN: unknown).",
            LABELS,
            registry=self.registry,
        )
        self.response_seconds = Gauge(
            "mirror_mirror_response_seconds",
            "Seconds one full check took (metadata refresh and edition.json).",
            LABELS,
            registry=self.registry,
        )
        self.last_check = Gauge(
            "mirror_mirror_last_check_timestamp_seconds",
            "Unix time of the last check.",
            LABELS,
            registry=self.registry,
        )
        self.verdict = Gauge(
            "mirror_mirror_verdict",
            "1 for the mirror's current verdict, 0 for the others.",
            (*LABELS, "verdict"),
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def update(self, checks: Sequence[MirrorCheck]) -> None:
        """Record one round of checks."""
        for check in checks:
            labels = (check.mirror, check.vantage_point)
            self.healthy.labels(*labels).set(1 if check.healthy else 0)
            lag = check.lag_versions
            self.lag_versions.labels(*labels).set(math.nan if lag is None else lag)
            self.response_seconds.labels(*labels).set(check.response_seconds)
            self.last_check.labels(*labels).set(check.checked_at.timestamp())
            for verdict in VERDICTS:
                self.verdict.labels(*labels, verdict).set(1 if verdict == check.verdict else 0)

    def serve(self, port: int, listen: str) -> int:
        """Serve ``/metrics`` on ``listen:port`` in a thread; return the bound port."""
        try:
            self._server, self._thread = start_http_server(
                port, addr=listen, registry=self.registry
            )
        except OSError as error:
            raise StorageError(
                f"cannot serve metrics on {listen}:{port} ({error.strerror})",
                hint="Pick another port with --metrics-port or monitor.metrics.port.",
            ) from error
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@dataclass(frozen=True)
class SyncTimes:
    """How long the phases of one sync or push took, and when it ended (Unix seconds)."""

    finished_at: float
    push_s: float
    build_s: float | None = None


def _previous_success(path: Path) -> float | None:
    """The last successful run's time from the existing textfile, kept across failures."""
    if not path.exists():
        return None
    try:
        text = fsutil.read_bounded(path, max_bytes=4 * 1024 * 1024, what="metrics").decode()
        for family in text_string_to_metric_families(text):
            if family.name == "mirror_sync_last_success_timestamp_seconds":
                for sample in family.samples:
                    return float(sample.value)
    except (ValueError, UnicodeDecodeError, StorageError):
        return None
    return None


def write_push_textfile(
    path: Path,
    results: Sequence[PushResult],
    *,
    times: SyncTimes,
    quorum_reached: bool,
    shard: str | None = None,
) -> None:
    """Write the node-exporter textfile for one sync/push, atomically.

    ``shard`` (``"I/N"``) becomes a label on every sample, so the files of
    several shards can sit side by side in the textfile folder.
    """
    registry = CollectorRegistry()
    extra = ("shard",) if shard else ()
    values = (shard,) if shard else ()

    def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, text, (*labels, *extra), registry=registry)

    def at(metric: Gauge, *labels: str) -> Gauge:
        """The child for ``labels`` (plus the shard), or the metric itself when unlabelled."""
        return metric.labels(*labels, *values) if labels or values else metric

    last_success = gauge(
        "mirror_sync_last_success_timestamp_seconds",
        "Unix time the last sync/push reached the quorum.",
    )
    previous = _previous_success(path)
    if quorum_reached:
        at(last_success).set(times.finished_at)
    elif previous is not None:
        at(last_success).set(previous)
    else:
        at(last_success).set(0)
    at(gauge("mirror_sync_last_run_timestamp_seconds", "Unix time the last sync/push ended.")).set(
        times.finished_at
    )
    at(gauge("mirror_sync_success", "1 if the last sync/push reached the quorum.")).set(
        1 if quorum_reached else 0
    )
    phases = gauge("mirror_sync_duration_seconds", "Seconds each phase took.", ("phase",))
    at(phases, "push").set(times.push_s)
    if times.build_s is not None:
        at(phases, "build").set(times.build_s)
    verified = gauge(
        "mirror_push_mirror_verified", "1 if the mirror was pushed and read back.", ("mirror",)
    )
    failed = gauge("mirror_push_mirror_failed", "1 if the mirror failed this run.", ("mirror",))
    pushed_bytes = gauge(
        "mirror_push_mirror_uploaded_bytes", "Bytes uploaded to the mirror.", ("mirror",)
    )
    uploaded_files = gauge(
        "mirror_push_mirror_uploaded_files", "Files uploaded to the mirror.", ("mirror",)
    )
    seconds = gauge(
        "mirror_push_mirror_duration_seconds", "Seconds spent on the mirror.", ("mirror",)
    )
    for result in results:
        at(verified, result.mirror).set(1 if result.ok and result.verified else 0)
        at(failed, result.mirror).set(0 if result.ok else 1)
        at(pushed_bytes, result.mirror).set(result.uploaded_bytes)
        at(uploaded_files, result.mirror).set(result.uploaded_files)
        at(seconds, result.mirror).set(result.seconds)
    at(gauge("mirror_push_uploaded_bytes", "Bytes uploaded to all mirrors this run.")).set(
        sum(r.uploaded_bytes for r in results)
    )
    try:
        fsutil.ensure_dir(path.parent)
        write_to_textfile(str(path), registry)
        # Readable by node-exporter whatever the service's umask (systemd units use 0077);
        # the file holds only counts and names, never a secret.
        os.chmod(path, 0o644)
    except OSError as error:
        raise StorageError(f"cannot write the metrics file {path} ({error.strerror})") from error
