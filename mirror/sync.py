"""The operator's use cases: build an edition, push the publish tree, sync (both).

Everything `mirror build`, `mirror push` and `mirror sync` do besides parsing
and printing lives here, callable with typed arguments (tests call these
functions directly):

- **locks** (`mirror.runlocks`): a build holds the tree lock exclusively;
  pushes hold it shared and each pushed mirror's own lock; a sync builds,
  then downgrades to shared before it pushes;
- **build or refresh**: a new edition only when something changed, else the
  timestamp is re-signed when due (`mirror.rebuild`, which `mirror build` uses
  alone);
- **push** to the selected mirrors (`mirror.publish.push_all`), each read
  back as a reader would when asked;
- **quorum per shard**: with ``--shard I/N`` a shard must reach its share of
  ``push.quorum`` (rounded up), so every shard meeting its share means the
  run as a whole met the quorum;
- **state merge**: each mirror's result merged into ``state/mirrors.json``
  under a short lock (shards finish at once);
- **metrics**: the node-exporter textfile, when asked for.

Nothing here prints: progress goes to a `Progress` and results come back
as values, with every output of the run (report, state, metrics) written;
`PushOutcome.require_quorum` then says whether the run met its quorum.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mirror import fsutil, keystore, logs, metrics, publish_tree, runlocks, shards
from mirror.build import BuildResult
from mirror.clock import reader_now
from mirror.config import Config, MirrorSettings
from mirror.errors import HistoryConflictError, QuorumError, UsageError
from mirror.mirror_states import save_mirror_states
from mirror.publish import Progress, PushResult, ReadBackRequest, judge_histories, push_all
from mirror.rebuild import BuildOptions, Unchanged, build_or_refresh
from mirror.report import report_document, write_json_report
from mirror.trust.history import Judgement, Standing

SHARD_BUILD_WAIT_S = 900.0
"""How long a sharded push waits for a running build (and a sharded build for running pushes)."""
STATE_LOCK_WAIT_S = 60.0
REFUSED_STANDINGS = tuple(s.value for s in Standing if s.refused)
"""The ``error_kind`` of a mirror refused for its history."""


@dataclass(frozen=True)
class MirrorSelection:
    """Which mirrors a push or sync is about (all enabled ones by default)."""

    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    shard: shards.Shard | None = None

    def choose(self, config: Config) -> tuple[MirrorSettings, ...]:
        """The selected mirrors of ``config``, in config order."""
        return shards.select_mirrors(
            config.mirrors,
            names=list(self.names) or None,
            tags=list(self.tags) or None,
            shard=self.shard,
            config_file=str(config.file),
        )

    def quorum(self, config: Config, selected: int) -> int:
        """The mirrors that must be good for this selection.

        The whole ``push.quorum``; with ``--mirror`` or ``--tag``, at most the
        number of mirrors selected (naming one mirror asks for that mirror);
        with a shard, its proportional share of the quorum, rounded up, so
        every shard meeting its share means the run met the whole quorum.
        """
        if self.shard is None and (self.names or self.tags):
            return min(config.push.quorum, selected)
        if self.shard is None:
            return config.push.quorum
        enabled = sum(1 for m in config.mirrors if m.enabled)
        if enabled == 0:
            return config.push.quorum
        return -(-config.push.quorum * selected // enabled)


@dataclass(frozen=True)
class PushOptions:
    """How to push."""

    selection: MirrorSelection = MirrorSelection()
    dry_run: bool = False
    read_back: bool = True
    json_report: Path | None = None
    metrics_textfile: Path | None = None


@dataclass(frozen=True)
class PushOutcome:
    """What one push did on every selected mirror."""

    results: tuple[PushResult, ...]
    edition: str | None
    """The edition read back (None without read-back)."""
    quorum: int
    """Mirrors that must be good: ``push.quorum``, or this shard's share of it."""
    dry_run: bool
    read_back: bool
    shard: str | None = None
    whole_quorum: int = 0
    """``push.quorum`` itself (differs from ``quorum`` only with a shard)."""

    @property
    def good(self) -> int:
        """Mirrors pushed (and verified, when read back)."""
        return sum(1 for r in self.results if r.ok)

    @property
    def quorum_reached(self) -> bool:
        """At least ``quorum`` mirrors are good."""
        return self.good >= self.quorum

    def report(self) -> dict[str, Any]:
        """The JSON report of the run (``--json``)."""
        return report_document(
            list(self.results),
            edition=self.edition,
            quorum=self.quorum,
            verified=self.good,
            dry_run=self.dry_run,
        )

    def check(self) -> None:
        """Raise what the run's exit code must say: a refused mirror, then a missed quorum.

        A mirror refused for its history (`HistoryConflictError`, exit 9) needs the
        operator whatever the quorum; a dry run fails where the real run would.
        """
        refused = [r for r in self.results if r.error_kind in REFUSED_STANDINGS]
        if refused:
            first = refused[0]
            raise HistoryConflictError(
                f"{len(refused)} of {len(self.results)} mirrors refused (nothing was written to "
                f"{', '.join(r.mirror for r in refused)}); {first.mirror}: {first.error}"
            )
        self.require_quorum()

    def require_quorum(self) -> None:
        """Raise `QuorumError` when fewer than ``quorum`` mirrors are good (not on a dry run)."""
        if self.dry_run or self.quorum_reached:
            return
        done = "verified" if self.read_back else "were pushed"
        share = f" (this shard's share of push.quorum {self.whole_quorum})" if self.shard else ""
        raise QuorumError(
            f"only {self.good} of {len(self.results)} mirrors {done}; "
            f"the quorum is {self.quorum}{share}"
        )


@dataclass(frozen=True)
class SyncOutcome:
    """A sync: what the build did (None when this shard does not build), then the push."""

    built: BuildResult | Unchanged | None
    push: PushOutcome


def read_back_request(config: Config) -> ReadBackRequest:
    """What every mirror must serve after this push: the local tree's newest state."""
    release = publish_tree.current_release(config.publish_dir)
    if release is None or not release.eids:
        raise UsageError(
            f"there is no edition in {config.publish_dir} to push",
            hint="Run `mirror build` (or `mirror sync`) first.",
        )
    return ReadBackRequest(
        bootstrap_root=publish_tree.first_root(config.publish_dir),
        eid=release.eids[-1],
        timestamp_version=release.timestamp_version,
        now=reader_now(),
    )


def push(config: Config, options: PushOptions, *, progress: Progress) -> PushOutcome:
    """`mirror push`: the publish tree as it stands, to the selected mirrors.

    Pushing only reads the tree: it holds the tree lock shared (several push
    shards at once, waiting for a running build when sharded) and each pushed
    mirror's own lock.
    """
    mirrors = options.selection.choose(config)
    with runlocks.pushing(config.output, _names(mirrors), wait_s=_wait_s(options)):
        return _push_locked(config, mirrors, options, progress=progress, build_s=None)


def sync(
    config: Config,
    building: BuildOptions,
    options: PushOptions,
    *,
    now: datetime,
    progress: Progress,
    on_built: Callable[[BuildResult | Unchanged], None] = lambda _: None,
) -> SyncOutcome:
    """`mirror sync`: build (or refresh) the edition, then push it everywhere.

    With a shard, shard 0 builds and signs (tree lock exclusive), then
    downgrades the lock to shared and pushes its mirrors; other shards only
    push the shared tree, waiting for shard 0's build if it is running. A dry
    run builds nothing. ``on_built`` hears about the build before the push.
    """
    shard = options.selection.shard
    mirrors = options.selection.choose(config)
    wait_s = _wait_s(options)
    if shard is not None and not shard.builds:
        with runlocks.pushing(config.output, _names(mirrors), wait_s=wait_s):
            return SyncOutcome(None, _push_locked(config, mirrors, options, progress=progress))
    with runlocks.building_then_pushing(
        config.output, _names(mirrors), wait_s=wait_s
    ) as now_pushing:
        refuse_stale_history(config, mirrors)
        if options.dry_run:
            with scratch_output(config) as scratch:
                built = build_or_refresh(
                    scratch, now=now, version=building.version, force=building.force
                )
                on_built(built)
                return SyncOutcome(
                    built, _push_locked(scratch, mirrors, options, progress=progress)
                )
        started = time.monotonic()
        built = build_or_refresh(config, now=now, version=building.version, force=building.force)
        build_s = time.monotonic() - started
        if isinstance(built, BuildResult):
            logs.log_event(
                "edition.built",
                f"built edition {built.eid}",
                edition=built.eid,
                version=built.version,
                articles=built.articles,
                skipped=len(built.problems),
                bytes=built.archive.length,
                duration_s=round(build_s, 3),
            )
        on_built(built)
        now_pushing()
        return SyncOutcome(
            built, _push_locked(config, mirrors, options, progress=progress, build_s=build_s)
        )


def refuse_stale_history(config: Config, mirrors: Sequence[MirrorSettings]) -> None:
    """Build nothing when a mirror holds a newer or another history of this publisher.

    A build on a tree that is older than what is published (a lost output
    folder, an old backup) or that diverged from it (another host with these
    keys) would extend the wrong history; every push of it would be refused.
    Mirrors that cannot be read now are left to the push to report.
    """
    first_root = (
        publish_tree.first_root(config.publish_dir)
        if publish_tree.root_path(config.publish_dir, 1).exists()
        else keystore.load_root_chain(config.keys.dir)[0]
    )
    local = publish_tree.local_history(config.publish_dir, first_root=first_root)
    judged = asyncio.run(judge_histories(config, mirrors, local))
    conflicts = [
        (mirror, judgement)
        for mirror, judgement in judged
        if isinstance(judgement, Judgement)
        and judgement.standing in (Standing.AHEAD, Standing.DIVERGED)
    ]
    if conflicts:
        mirror, judgement = conflicts[0]
        more = f" (and {len(conflicts) - 1} more mirrors)" if len(conflicts) > 1 else ""
        raise HistoryConflictError(
            f"nothing was built or pushed: mirror {mirror.name}{more} {judgement.reason}",
            hint=f"Take the published history back first: `mirror restore --from {mirror.name}`,"
            " then sync again (docs/restore.md).",
        )


@contextlib.contextmanager
def scratch_output(config: Config) -> Iterator[Config]:
    """``config`` with its output folder replaced by a throw-away copy (for a dry run).

    The copy is made of hard links inside the output folder (`fsutil.link_tree`)
    and removed afterwards, so a dry run builds exactly what the real run
    would, and leaves the real tree as it was.
    """
    output = config.output
    for leftover in output.path.glob(".scratch-*"):  # a dry run killed earlier
        shutil.rmtree(leftover, ignore_errors=True)
    scratch = output.path / f".scratch-{secrets.token_hex(4)}"
    try:
        for folder in (output.editions_dir, output.publish_dir):
            if folder.exists():
                fsutil.link_tree(folder, scratch / folder.name)
        yield dataclasses.replace(config, output_dir=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _names(mirrors: Sequence[MirrorSettings]) -> list[str]:
    return [m.name for m in mirrors if m.enabled]


def _wait_s(options: PushOptions) -> float:
    return SHARD_BUILD_WAIT_S if options.selection.shard is not None else 0.0


def _push_locked(
    config: Config,
    mirrors: Sequence[MirrorSettings],
    options: PushOptions,
    *,
    progress: Progress,
    build_s: float | None = None,
) -> PushOutcome:
    """Push (the caller holds the locks), then write the run's report, state and metrics."""
    verify = None if options.dry_run or not options.read_back else read_back_request(config)
    started = time.monotonic()
    results = tuple(
        asyncio.run(
            push_all(
                config, progress=progress, dry_run=options.dry_run, verify=verify, mirrors=mirrors
            )
        )
    )
    push_s = time.monotonic() - started
    shard = options.selection.shard
    outcome = PushOutcome(
        results=results,
        edition=verify.eid if verify else None,
        quorum=options.selection.quorum(config, len(results)),
        dry_run=options.dry_run,
        read_back=verify is not None,
        shard=None if shard is None else str(shard),
        whole_quorum=config.push.quorum,
    )
    if options.json_report is not None:
        write_json_report(options.json_report, outcome.report())
    if options.dry_run:
        return outcome
    _log_results(outcome)
    # Push shards run at once: merge their results into the shared state file one at a time.
    with runlocks.exclusive(config.output.mirror_states_lock, wait_s=STATE_LOCK_WAIT_S):
        save_mirror_states(config.output.mirror_states, results, reader_now())
    if options.metrics_textfile is not None:
        metrics.write_push_textfile(
            options.metrics_textfile,
            list(results),
            times=metrics.SyncTimes(finished_at=time.time(), push_s=push_s, build_s=build_s),
            quorum_reached=outcome.quorum_reached,
            shard=outcome.shard,
        )
    return outcome


def _log_results(outcome: PushOutcome) -> None:
    for result in outcome.results:
        logs.log_event(
            "mirror.pushed",
            f"{result.mirror}: "
            + ("ok" if result.ok else f"failed ({result.error_kind}): {result.error}"),
            level=logging.INFO if result.ok else logging.WARNING,
            shown=True,  # the summary line says it
            mirror=result.mirror,
            edition=outcome.edition,
            shard=outcome.shard,
            duration_s=round(result.seconds, 3),
            error_class=None if result.ok else result.error_kind,
            pushed=result.pushed,
            verified=result.verified,
            uploaded_files=result.uploaded_files,
            uploaded_bytes=result.uploaded_bytes,
            retries=result.retries,
        )
