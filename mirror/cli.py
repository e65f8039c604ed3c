"""The `mirror` command line: the one place where errors become sentences and exit codes.

Exit codes (docs/exit-codes.md):

==  ==============================================================
0   success; for ``verify``: verified
1   unexpected internal error (reported in one sentence, no traceback)
2   usage: bad arguments, unusable pinned root
3   configuration file invalid
4   local file system error
5   keys missing, passphrase missing or wrong
6   article source unreadable, or a broken article with on_article_error: fail
7   network failure
8   quorum not reached: fewer mirrors verified than ``push.quorum``
10  tampered: signatures, keys, hashes, lengths or metadata do not match
11  expired
12  not yet valid (created in the future: wrong clock or forgery)
13  rollback: older than an edition this reader already verified
14  unsafe archive: hostile or over-limit ZIP structure
==  ==============================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from mirror import (
    __version__,
    fsutil,
    logs,
    metrics,
    monitor,
    publish_tree,
    runlocks,
    secrets,
    shards,
    verdicts,
    webhook,
)
from mirror.admin import add_mirror, parse_settings_arguments, probe_all
from mirror.build import Unchanged, build_or_refresh
from mirror.config import MIRROR_TYPES, Config, MirrorSettings, load_config
from mirror.errors import MirrorError, QuorumError, TransportError, UsageError
from mirror.keystore import import_root, init_keys, propose_root, rotate_role, sign_root
from mirror.library import LibraryEdition
from mirror.offline import load_pinned_root, verify_edition
from mirror.publish import PushResult, ReadBackRequest, SilentProgress, push_all
from mirror.read import (
    EditionServer,
    EditionSummary,
    Shelf,
    iter_summaries,
    open_edition,
    read_index,
    summarize,
)
from mirror.reader import Fetcher, FetchFailure
from mirror.report import (
    BarProgress,
    PlainProgress,
    load_mirror_states,
    print_plain,
    print_table,
    report_document,
    save_mirror_states,
    write_json_report,
)
from mirror.state import ReaderState, default_state_dir
from mirror.tufclient import TufClientUsageError
from mirror.tufclient import download as tuf_download
from mirror.tufclient import init as tuf_init
from mirror.tufclient import refresh as tuf_refresh
from mirror.verdicts import Language, default_language

DEFAULT_CONFIG = "mirror.yaml"


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"Run `{self.prog} --help` for usage.")


def now_utc() -> datetime:
    """The current time, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        if not epoch.isdigit():
            raise UsageError(
                "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970",
                hint="Unset it or set it to e.g. $(git log -1 --format=%ct).",
            )
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return reader_now()


def reader_now() -> datetime:
    """The reader's clock: always the real time (SOURCE_DATE_EPOCH is for builds only)."""
    return datetime.now(UTC).replace(microsecond=0)


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("MIRROR_CONFIG") or DEFAULT_CONFIG)


def _load_config(args: argparse.Namespace) -> Config:
    return load_config(_config_path(args))


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False, default=str))


# --- keys -------------------------------------------------------------------


def cmd_keys_init(args: argparse.Namespace) -> int:
    """Create the key store and root version 1."""
    config = _load_config(args)
    root = init_keys(
        config.keys.dir,
        config.passphrase(),
        publisher_name=args.publisher or config.publisher.name,
        now=now_utc(),
        root_threshold=args.root_threshold,
        root_keys=args.root_keys,
    )
    keys_dir = config.keys.dir
    print(f"Created keys for {args.publisher or config.publisher.name} in {keys_dir}")
    print(f"  root: {args.root_threshold} of {args.root_keys} keys, version {root.version}")
    print(f"  give readers to pin:   {keys_dir / 'root.json'}")
    print(f"  minisign public key:   {keys_dir / 'minisign.pub'}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Replace a role's keys and sign the next root version."""
    config = _load_config(args)
    root = rotate_role(config.keys.dir, config.passphrase(), args.role, now=now_utc())
    if root is None:
        print(f"Rotated the minisign key; new public key in {config.keys.dir / 'minisign.pub'}")
    else:
        print(
            f"Rotated the {args.role} keys; root is now version {root.version} "
            f"({config.keys.dir / 'root.json'}). Rebuild to publish it."
        )
    return 0


def cmd_keys_propose_root(args: argparse.Namespace) -> int:
    """Online: new keys for an online role (or a renewal) as an unsigned next root."""
    config = _load_config(args)
    role = "" if args.role == "renew" else args.role
    path = propose_root(config.keys.dir, config.passphrase(), role, now=now_utc())
    print(f"Wrote the unsigned root proposal {path}")
    print("Carry it to the offline machine and run `mirror keys sign-root` there.")
    return 0


def cmd_keys_sign_root(args: argparse.Namespace) -> int:
    """Offline: sign a root proposal with the root keys kept on this machine."""
    config = _load_config(args)
    keys_dir = Path(args.keys_dir) if args.keys_dir else config.keys.dir
    signed = sign_root(Path(args.proposal), keys_dir, config.passphrase())
    print(f"Wrote the signed root {signed}")
    print("Carry it back to the online host and run `mirror keys import-root` there.")
    return 0


def cmd_keys_import_root(args: argparse.Namespace) -> int:
    """Online: accept a root signed offline, after the checks every reader makes."""
    config = _load_config(args)
    root = import_root(config.keys.dir, Path(args.signed))
    print(f"Root is now version {root.version}; the next build publishes it.")
    return 0


# --- build ------------------------------------------------------------------


def _unchanged_line(unchanged: Unchanged) -> str:
    refreshed = "; timestamp re-signed" if unchanged.timestamp_refreshed else ""
    return (
        f"Nothing changed since edition {unchanged.eid}: no new edition{refreshed} "
        "(use --force to build one anyway)"
    )


def cmd_build(args: argparse.Namespace) -> int:
    """Ingest, render, archive, sign, and update the local publish tree."""
    config = _load_config(args)
    with _output_lock(config):
        built = build_or_refresh(
            config, now=now_utc(), version=args.edition_version, force=args.force
        )
    for problem in built.problems:
        print(f"skipped {problem.source}: {problem.reason}", file=sys.stderr)
    if isinstance(built, Unchanged):
        if args.json:
            _print_json(
                {
                    "edition": built.eid,
                    "unchanged": True,
                    "timestamp_refreshed": built.timestamp_refreshed,
                }
            )
        else:
            print(_unchanged_line(built))
        return 0
    result = built
    if args.json:
        _print_json(
            {
                "edition": result.eid,
                "version": result.version,
                "created": result.created.isoformat(),
                "expires": result.expires.isoformat(),
                "zip": str(result.zip_path),
                "minisig": str(result.minisig_path),
                "publish_dir": str(result.publish_dir),
                "articles": result.articles,
                "skipped": [{"source": p.source, "reason": p.reason} for p in result.problems],
                "bytes": result.archive.length,
                "sha256": result.archive.sha256,
                "targets_written": result.targets_written,
            }
        )
    else:
        print(
            f"Built edition {result.eid} (version {result.version}): {result.articles} articles, "
            f"{len(result.problems)} skipped, {result.archive.length:,} bytes"
        )
        print(f"  archive:   {result.zip_path}")
        print(f"  minisign:  {result.minisig_path}")
        print(f"  publish:   {result.publish_dir} ({result.targets_written} new files)")
    return 0


# --- push / sync -------------------------------------------------------------


def _read_back_request(config: Config) -> ReadBackRequest:
    """What every mirror must serve after this push: the local tree's newest state."""
    release = publish_tree.current_release(config.publish_dir)
    if release is None or not release.eids:
        raise UsageError(
            f"there is no edition in {config.publish_dir} to push",
            hint="Run `mirror build` (or `mirror sync`) first.",
        )
    return ReadBackRequest(
        bootstrap_root=fsutil.read_bounded(
            config.publish_dir / "metadata" / "1.root.json",
            max_bytes=1024 * 1024,
            what="root metadata",
        ),
        eid=release.eids[-1],
        timestamp_version=release.timestamp_version,
        now=reader_now(),
    )


def _push(
    args: argparse.Namespace,
    config: Config,
    mirrors: Sequence[MirrorSettings] | None = None,
    *,
    build_s: float | None = None,
) -> int:
    if mirrors is None:
        mirrors = _selected_mirrors(args, config)
    verify = None if args.dry_run or args.no_read_back else _read_back_request(config)
    console = Console(stderr=False)
    interactive = sys.stdout.isatty()
    started = time.monotonic()
    if interactive:
        with BarProgress(console) as bars:
            results = asyncio.run(
                push_all(
                    config, progress=bars, dry_run=args.dry_run, verify=verify, mirrors=mirrors
                )
            )
    else:
        results = asyncio.run(
            push_all(
                config,
                progress=SilentProgress()
                if logs.current_format() == "json"
                else PlainProgress(sys.stderr),
                dry_run=args.dry_run,
                verify=verify,
                mirrors=mirrors,
            )
        )
    push_s = time.monotonic() - started
    if args.dry_run:
        for result in results:
            print(f"{result.mirror}: would upload {len(result.planned)} files")
            for path in result.planned:
                print(f"  {path}")
        return 0
    if interactive:
        print_table(results, console)
    else:
        print_plain(results)
    _log_push_results(results, edition=verify.eid if verify else None, shard=args.shard)
    good = sum(1 for r in results if r.ok)
    quorum = _shard_quorum(args, config, len(results))
    if args.json:
        write_json_report(
            Path(args.json),
            report_document(
                results,
                edition=verify.eid if verify else None,
                quorum=quorum,
                verified=good,
            ),
        )
    state_file = config.output_dir / "state" / "mirrors.json"
    # Push shards run at once: merge their results into the shared state file one at a time.
    with runlocks.exclusive(state_file.with_name("mirrors.json.lock"), wait_s=60):
        save_mirror_states(state_file, results, reader_now())
    if args.metrics_textfile:
        metrics.write_push_textfile(
            Path(args.metrics_textfile),
            results,
            times=metrics.SyncTimes(finished_at=time.time(), push_s=push_s, build_s=build_s),
            quorum_reached=good >= quorum,
            shard=args.shard,
        )
    if good < quorum:
        raise QuorumError(
            f"only {good} of {len(results)} mirrors {'verified' if verify else 'were pushed'}; "
            f"the quorum is {quorum}"
            + (f" (this shard's share of push.quorum {config.push.quorum})" if args.shard else "")
        )
    return 0


# --- push / sync: shards, tags, logs (ops) ------------------------------------

SHARD_BUILD_WAIT_S = 900.0
"""How long a sharded push waits for a running build (and a sharded build for running pushes)."""


def _shard(args: argparse.Namespace) -> shards.Shard | None:
    return shards.parse_shard(args.shard) if args.shard else None


def _selected_mirrors(args: argparse.Namespace, config: Config) -> tuple[MirrorSettings, ...]:
    return shards.select_mirrors(
        config.mirrors,
        names=args.mirror,
        tags=args.tag,
        shard=_shard(args),
        config_file=str(config.file),
    )


def _shard_quorum(args: argparse.Namespace, config: Config, selected: int) -> int:
    """The whole quorum, or with --shard this shard's proportional share of it (rounded up).

    The shares add up to at least push.quorum, so every shard meeting its share
    means the run as a whole met the quorum.
    """
    if not args.shard:
        return config.push.quorum
    enabled = sum(1 for m in config.mirrors if m.enabled)
    if enabled == 0:
        return config.push.quorum
    return -(-config.push.quorum * selected // enabled)


def _log_push_results(
    results: Sequence[PushResult], *, edition: str | None, shard: str | None
) -> None:
    for result in results:
        logs.log_event(
            "mirror.pushed",
            f"{result.mirror}: "
            + ("ok" if result.ok else f"failed ({result.error_kind}): {result.error}"),
            level=logging.INFO if result.ok else logging.WARNING,
            mirror=result.mirror,
            edition=edition,
            shard=shard,
            duration_s=round(result.seconds, 3),
            error_class=None if result.ok else result.error_kind,
            pushed=result.pushed,
            verified=result.verified,
            uploaded_files=result.uploaded_files,
            uploaded_bytes=result.uploaded_bytes,
            retries=result.retries,
        )


def _output_lock(config: Config) -> contextlib.AbstractContextManager[None]:
    """One build/push at a time per output folder."""
    return fsutil.exclusive_lock(config.output_dir / ".mirror.lock", what="building or pushing")


def cmd_push(args: argparse.Namespace) -> int:
    """Push the publish tree as it stands to every mirror, then read each back.

    Pushing only reads the tree: it holds the tree lock shared (several push
    shards at once) and each pushed mirror's own lock (see `mirror.runlocks`).
    """
    config = _load_config(args)
    mirrors = _selected_mirrors(args, config)
    wait_s = SHARD_BUILD_WAIT_S if args.shard else 0.0
    with runlocks.pushing(config.output_dir, [m.name for m in mirrors if m.enabled], wait_s=wait_s):
        return _push(args, config, mirrors)


def cmd_sync(args: argparse.Namespace) -> int:
    """Build a new edition, push it everywhere, read every mirror back.

    With ``--shard I/N``: shard 0 builds and signs (tree lock exclusive), then
    downgrades the lock to shared and pushes its mirrors; other shards only
    push the shared tree, waiting for shard 0's build if it is running.
    """
    config = _load_config(args)
    shard = _shard(args)
    mirrors = _selected_mirrors(args, config)
    names = [m.name for m in mirrors if m.enabled]
    wait_s = SHARD_BUILD_WAIT_S if shard else 0.0
    if shard is not None and not shard.builds:
        with runlocks.pushing(config.output_dir, names, wait_s=wait_s):
            print(f"shard {shard}: pushing the current publish tree (shard 0 builds)")
            return _push(args, config, mirrors)
    with runlocks.building_then_pushing(config.output_dir, names, wait_s=wait_s) as now_pushing:
        if args.dry_run:
            now_pushing()
            print("would build a new edition, then push:")
            return _push(args, config, mirrors)
        started = time.monotonic()
        built = build_or_refresh(
            config, now=now_utc(), version=args.edition_version, force=args.force
        )
        build_s = time.monotonic() - started
        for problem in built.problems:
            print(f"skipped {problem.source}: {problem.reason}", file=sys.stderr)
        if isinstance(built, Unchanged):
            print(_unchanged_line(built))
            now_pushing()
            return _push(args, config, mirrors, build_s=build_s)
        result = built
        print(
            f"Built edition {result.eid} (version {result.version}): {result.articles} articles, "
            f"{result.archive.length:,} bytes"
        )
        logs.log_event(
            "edition.built",
            f"built edition {result.eid}",
            edition=result.eid,
            version=result.version,
            articles=result.articles,
            skipped=len(result.problems),
            bytes=result.archive.length,
            duration_s=round(build_s, 3),
        )
        now_pushing()
        return _push(args, config, mirrors, build_s=build_s)


# --- status (monitor) ------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    """Check every mirror from every vantage point as a reader would; metrics, alerts."""
    config = _load_config(args)
    settings = config.monitor
    if args.watch is not None and args.watch <= 0:
        raise UsageError("--watch needs a positive number of seconds", hint="e.g. --watch 60")
    alerting = args.watch is not None or args.webhook_once
    secret = None
    if alerting and settings.webhook is not None:
        secret = secrets.resolve_secret(
            settings.webhook.secret_ref, base_dir=config.base_dir, what="webhook secret"
        )
    served: metrics.MonitorMetrics | None = None
    try:
        if args.watch is not None:
            served = metrics.MonitorMetrics()
            listen = args.metrics_listen or settings.metrics.listen
            port = served.serve(
                settings.metrics.port if args.metrics_port is None else args.metrics_port, listen
            )
            logs.log_event(
                "metrics.serving",
                f"serving metrics on http://{listen}:{port}/metrics",
                level=logging.WARNING,  # shown in text logs too: the operator needs the port
                listen=listen,
                port=port,
            )
        while True:
            checks = monitor.check_all(config, now=reader_now())
            if served is not None:
                served.update(checks)
            if alerting:
                webhook.announce(
                    checks,
                    state_file=monitor.state_path(config),
                    settings=settings.webhook,
                    secret=secret,
                )
            _print_status(checks, as_json=args.json, one_line=args.watch is not None)
            if args.watch is None:
                monitor.require_quorum(checks, config.push.quorum)
                return 0
            try:
                monitor.require_quorum(checks, config.push.quorum)
            except QuorumError as error:
                logs.log_event(
                    "quorum.lost", error.message, level=logging.WARNING, error_class="quorum"
                )
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0  # Ctrl-C ends --watch: that is the normal way out
    finally:
        if served is not None:
            served.close()


def _print_status(checks: Sequence[monitor.MirrorCheck], *, as_json: bool, one_line: bool) -> None:
    if as_json:
        document = {
            "checked_at": reader_now().isoformat(),
            "healthy_per_vantage_point": monitor.healthy_counts(checks),
            "mirrors": [c.as_json() for c in checks],
        }
        if one_line:
            print(json.dumps(document, ensure_ascii=False, default=str), flush=True)
        else:
            _print_json(document)
        return
    table = Table(title="mirror status")
    for column in ("mirror", "via", "verdict", "serves", "behind", "time", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        serves = (
            f"ts v{c.served_timestamp_version}"
            + (f", {c.served_edition}" if c.served_edition else "")
            if c.served_timestamp_version is not None
            else "—"
        )
        behind = "—"
        if c.lag_versions is not None:
            behind = f"{c.lag_versions} versions"
            if c.lag_minutes:
                behind += f", {c.lag_minutes:.0f} min"
        table.add_row(
            c.mirror,
            c.vantage_point,
            c.verdict if c.healthy else c.verdict.upper(),
            serves,
            behind,
            f"{c.response_seconds:.2f} s",
            c.detail,
        )
    Console(width=max(120, Console().width)).print(table)
    sys.stdout.flush()


# --- config check / mirrors ----------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate the config, then probe every mirror (reach, auth, write, public URL)."""
    config = _load_config(args)
    print(f"{config.file}: valid ({len(config.mirrors)} mirrors)")
    results = asyncio.run(probe_all(config))
    if args.json:
        _print_json({"config": str(config.file), "mirrors": [r.as_json() for r in results]})
    else:
        table = Table(title="mirror config check")
        for column in ("mirror", "type", "writable", "public", "time", "detail"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(
                r.mirror,
                r.type,
                "yes" if r.writable else "NO",
                "yes" if r.public else "NO",
                f"{r.seconds:.1f} s",
                r.detail,
            )
        Console(width=max(100, Console().width)).print(table)
    failed = [r.mirror for r in results if not (r.writable and r.public)]
    if failed:
        raise TransportError(
            f"{len(failed)} of {len(results)} mirrors failed the probe: {', '.join(failed)}",
            hint="The detail column says what failed for each mirror.",
        )
    return 0


def cmd_mirrors_list(args: argparse.Namespace) -> int:
    """Every configured mirror with its last known state."""
    config = _load_config(args)
    states = load_mirror_states(config.output_dir / "state" / "mirrors.json")
    rows = []
    for m in config.mirrors:
        state = states.get(m.name, {})
        rows.append(
            {
                "mirror": m.name,
                "type": m.type,
                "public_url": m.public_url,
                "announce": m.announce,
                "enabled": m.enabled,
                "tags": list(m.tags),
                "last_run": state.get("when"),
                "last_status": _last_status(state),
                "last_error": state.get("error"),
            }
        )
    if args.json:
        _print_json({"mirrors": rows})
        return 0
    table = Table(title=f"mirrors in {config.file}")
    for column in ("mirror", "type", "public URL", "listed", "enabled", "last run", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["mirror"],
            row["type"],
            row["public_url"],
            "yes" if row["announce"] else "secret",
            "yes" if row["enabled"] else "no",
            row["last_run"] or "never",
            row["last_status"] + (f" — {row['last_error']}" if row["last_error"] else ""),
        )
    Console(width=max(120, Console().width)).print(table)
    return 0


def _last_status(state: dict[str, Any]) -> str:
    if not state:
        return "never pushed"
    if state.get("error"):
        return f"failed ({state.get('error_kind')})"
    return "verified" if state.get("verified") else "pushed"


def cmd_mirrors_add(args: argparse.Namespace) -> int:
    """Append a validated mirror entry to the config file, keeping its comments."""
    entry: dict[str, Any] = {
        "name": args.name,
        "type": args.type,
        "public_url": args.public_url,
    }
    if args.secret:
        entry["announce"] = False
    if args.tag:
        entry["tags"] = list(args.tag)
    entry[args.type] = parse_settings_arguments(args.set or [])
    path = _config_path(args)
    added = add_mirror(path, entry)
    listed = "listed in the signed mirror list" if added.announce else "kept secret"
    print(f"Added mirror {added.name} ({added.type}, {listed}) to {path}")
    print("Run `mirror config check` to probe it.")
    return 0


# --- fetch --------------------------------------------------------------------


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch the newest edition from the mirrors that still work, verified."""
    language: Language = args.lang or default_language()
    pinned = load_pinned_root(Path(args.root))
    state = ReaderState(Path(args.state) if args.state else default_state_dir())
    quiet = args.json or not sys.stderr.isatty()
    fetcher = Fetcher(
        pinned=pinned,
        state=state,
        now=reader_now(),
        connect_timeout_s=args.connect_timeout,
        timeout_s=args.timeout,
        progress=None if quiet else (lambda text: print(text, file=sys.stderr)),
    )
    try:
        result = fetcher.run(args.mirror or [])
    except FetchFailure as failure:
        sentence, hint = verdicts.failure(
            failure.verdict,
            language,
            count=sum(1 for o in failure.outcomes if o.verdict == failure.verdict)
            if failure.verdict == "tampered"
            else len(failure.outcomes),
            now=reader_now().strftime("%Y-%m-%d %H:%M UTC"),
        )
        if args.json:
            _print_json(
                {
                    "verdict": "stale" if failure.verdict == "rollback" else failure.verdict,
                    "publisher": fetcher.publisher.name,
                    "mirrors": [o.as_json() for o in failure.outcomes],
                }
            )
        else:
            for outcome in failure.outcomes:
                print(verdicts.mirror_line(outcome.url, outcome.verdict, outcome.detail, language))
        raise failure.relabelled(sentence, hint) from failure
    if args.json:
        _print_json(
            {
                "verdict": "verified",
                "publisher": result.publisher,
                "edition": result.eid,
                "version": result.version,
                "date": result.created.isoformat(),
                "mirror": result.mirror,
                "updated": result.updated,
                "mirrors": [o.as_json() for o in result.outcomes],
                "downloaded_bytes": result.downloaded_bytes,
                "received_bytes": result.received_bytes,
                "path": str(result.edition.path),
            }
        )
        return 0
    print(
        verdicts.say(
            "verified",
            language,
            publisher=result.publisher,
            eid=result.eid,
            version=result.version,
            date=result.created.strftime("%Y-%m-%d"),
            mirror=result.mirror,
        )
    )
    if not result.updated:
        print(f"  {verdicts.say('already', language)}")
    for outcome in result.outcomes:
        if outcome.verdict != "ok":
            print(verdicts.mirror_line(outcome.url, outcome.verdict, outcome.detail, language))
    print(f"  {verdicts.say('open', language, url=result.edition.index.as_uri())}")
    return 0


# --- verify / extract -------------------------------------------------------


def _verify(args: argparse.Namespace, *, extract_to: Path | None) -> int:
    pinned = load_pinned_root(Path(args.root))
    state = ReaderState(Path(args.state) if args.state else default_state_dir())
    verdict = verify_edition(
        Path(args.file),
        pinned=pinned,
        state=state,
        now=reader_now(),
        allow_expired=args.allow_expired,
        extract_to=extract_to,
    )
    fresh = verdict.freshness
    if args.json:
        _print_json(
            {
                "verdict": "expired-allowed" if fresh.expired else "verified",
                "publisher": verdict.publisher,
                "edition": verdict.eid,
                "version": verdict.version,
                "created": verdict.created.isoformat(),
                "expires": verdict.expires.isoformat(),
                "age_seconds": int(fresh.age.total_seconds()),
                "expired_roles": list(fresh.expired_roles),
                "root_version": verdict.root_version,
                "members": verdict.members,
                "bytes": verdict.content_bytes,
                "extracted_to": str(extract_to) if extract_to else None,
            }
        )
    else:
        date = verdict.created.strftime("%Y-%m-%d")
        if fresh.expired:
            print(
                f"EXPIRED BUT READ ANYWAY: {verdict.publisher}, edition {verdict.eid} "
                f"(version {verdict.version}) of {date} expired {verdict.expires:%Y-%m-%d}; "
                f"it is {fresh.age.days} days old and may be out of date.",
                file=sys.stderr,
            )
        print(
            f"verified: {verdict.publisher}, edition {verdict.eid} "
            f"(version {verdict.version}) of {date}"
        )
        if args.verbose:
            print(f"  title:        {verdict.title}")
            print(f"  created:      {verdict.created.isoformat()}")
            print(f"  expires:      {verdict.expires.isoformat()}")
            print(f"  root version: {verdict.root_version}")
            print(f"  members:      {verdict.members} files, {verdict.content_bytes:,} bytes")
        if extract_to is not None:
            print(f"  extracted to: {extract_to}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify an edition file offline against a pinned root."""
    return _verify(args, extract_to=None)


def cmd_extract(args: argparse.Namespace) -> int:
    """Verify, then write the edition's files into a new folder."""
    return _verify(args, extract_to=Path(args.dest))


# --- read / tuf-client (reader commands) -------------------------------------


def cmd_read(args: argparse.Namespace) -> int:
    """Open an edition from the reader's library: print its URL, list it, or serve it."""
    if args.serve and args.list:
        raise UsageError("--serve and --list do not go together", hint="Use one of them.")
    state = ReaderState(Path(args.state) if args.state else default_state_dir())
    pinned = load_pinned_root(Path(args.root)) if args.root else None
    now = reader_now()
    shelf, edition = open_edition(
        state, args.edition, pinned=pinned, now=now, allow_expired=args.allow_expired
    )
    summary = summarize(edition)
    if args.list:
        return _print_read_list(shelf, edition, summary, as_json=args.json)
    if args.serve:
        return _serve_edition(summary, port=args.port)
    if args.json:
        _print_json({**_edition_document(summary), "publisher_id": shelf.publisher_id})
        return 0
    expired = (
        f"; expired {summary.expires:%Y-%m-%d}, may be out of date"
        if summary.expires <= now
        else ""
    )
    print(
        f"{summary.publisher}: edition {summary.eid} of {summary.created:%Y-%m-%d}, "
        f"{summary.articles} articles{expired}",
        file=sys.stderr,
    )
    print(summary.index_url)
    return 0


def _edition_document(summary: EditionSummary) -> dict[str, Any]:
    return {
        "publisher": summary.publisher,
        "edition": summary.eid,
        "version": summary.version,
        "title": summary.title,
        "created": summary.created.isoformat(),
        "expires": summary.expires.isoformat(),
        "article_count": summary.articles,
        "path": str(summary.path),
        "url": summary.index_url,
    }


def _print_read_list(
    shelf: Shelf, edition: LibraryEdition, selected: EditionSummary, *, as_json: bool
) -> int:
    summaries = list(iter_summaries(shelf))
    articles = read_index(edition)
    if as_json:
        _print_json(
            {
                "publisher": selected.publisher,
                "publisher_id": shelf.publisher_id,
                "library": str(shelf.library.editions_dir),
                "editions": [_edition_document(s) for s in summaries],
                "selected": selected.eid,
                "articles": [
                    {
                        "title": a.title,
                        "date": a.date,
                        "language": a.language,
                        "direction": a.direction,
                        "author": a.author,
                        "summary": a.summary,
                        "file": a.file,
                    }
                    for a in articles
                ],
            }
        )
        return 0
    plural = "" if len(summaries) == 1 else "s"
    print(f"{selected.publisher}: {len(summaries)} edition{plural} in {shelf.library.editions_dir}")
    print(f"  {'EDITION':<16} {'VERSION':>7}  {'DATE':<10}  {'ARTICLES':>8}")
    for s in summaries:
        mark = "*" if s.eid == selected.eid else " "
        print(f"{mark} {s.eid:<16} {s.version:>7}  {s.created:%Y-%m-%d}  {s.articles:>8}")
    print(f"Articles in edition {selected.eid} ({selected.title}):")
    print(f"  {'DATE':<10}  {'LANG':<5} {'FILE':<40} TITLE")
    for a in articles:
        print(f"  {a.date[:10]:<10}  {a.language:<5} {a.file:<40} {a.title}")
    return 0


def _serve_edition(summary: EditionSummary, *, port: int) -> int:
    server = EditionServer(summary.path, port=port)
    try:
        print(
            f"{summary.publisher}: serving edition {summary.eid} read-only on {server.url} "
            "(127.0.0.1 only); Ctrl-C stops",
            file=sys.stderr,
        )
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        server.server_close()
    return 0


class _TufClientParser(_Parser):
    """The conformance protocol's parser: every usage mistake exits 1, unknown arguments too."""

    def error(self, message: str) -> NoReturn:
        raise TufClientUsageError(f"tuf-client: {message}", hint="")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:  # argparse would leave these for the top-level parser (exit 2)
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def cmd_tuf_client(args: argparse.Namespace) -> int:
    """The TUF conformance suite's client protocol: init, refresh, download; failures exit 1."""
    try:
        return _tuf_client(args)
    except MirrorError as error:
        print(f"mirror tuf-client: {error.message}", file=sys.stderr)
        return 1


def _tuf_client(args: argparse.Namespace) -> int:
    metadata_dir = Path(args.metadata_dir)
    if args.action == "init":
        if args.trusted_root is None:
            raise TufClientUsageError("init needs the TRUSTED_ROOT file", hint="")
        print(f"trusted root stored in {tuf_init(metadata_dir, Path(args.trusted_root))}")
        return 0
    if args.trusted_root is not None:
        raise TufClientUsageError(f"{args.action} takes no file argument", hint="")
    if not args.metadata_url:
        raise TufClientUsageError(f"{args.action} needs --metadata-url", hint="")
    if args.action == "refresh":
        version = tuf_refresh(metadata_dir, args.metadata_url)
        print(f"metadata in {metadata_dir} refreshed (timestamp version {version})")
        return 0
    missing = [
        option
        for option, value in (
            ("--target-name", args.target_name),
            ("--target-base-url", args.target_base_url),
            ("--target-dir", args.target_dir),
        )
        if not value
    ]
    if missing:
        raise TufClientUsageError(f"download needs {', '.join(missing)}", hint="")
    for result in tuf_download(
        metadata_dir,
        args.metadata_url,
        target_names=args.target_name,
        target_base_url=args.target_base_url,
        target_dir=Path(args.target_dir),
    ):
        verb = "already present" if result.cached else "downloaded"
        print(f"{result.target}: {verb} at {result.path}")
    return 0


def _add_read_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Parsers of `mirror read` and `mirror tuf-client`."""
    read = commands.add_parser(
        "read",
        help="open an edition from your library (or verify an edition file into it)",
        description="Print the file:// URL of an edition's index.html (the newest by default), "
        "list the library and an edition's articles, or serve the edition on 127.0.0.1.",
    )
    read.add_argument(
        "edition",
        nargs="?",
        metavar="EDITION",
        help="an edition id in your library, or an edition .zip to verify and add "
        "(default: the newest edition in the library)",
    )
    read.add_argument(
        "--root",
        metavar="ROOT.json",
        help="the publisher's root.json you pinned (needed for a .zip, or with several publishers)",
    )
    read.add_argument(
        "--state", metavar="DIR", help="reader state folder (default: per-user state dir)"
    )
    read.add_argument(
        "--serve", action="store_true", help="serve the edition read-only on 127.0.0.1 until Ctrl-C"
    )
    read.add_argument(
        "--port", type=int, default=0, metavar="N", help="port for --serve (default 0: any free)"
    )
    read.add_argument(
        "--list", action="store_true", help="list the editions and the chosen edition's articles"
    )
    read.add_argument("--json", action="store_true", help="print as JSON")
    read.add_argument(
        "--allow-expired",
        action="store_true",
        help="add an expired edition .zip anyway (it is then marked expired)",
    )
    read.set_defaults(handler=cmd_read)

    tuf_client = commands.add_parser(
        "tuf-client",
        help="TUF client speaking the tuf-conformance CLI protocol (exit 1 on any failure)",
        description="init stores TRUSTED_ROOT as METADATA_DIR/root.json; refresh updates the "
        "metadata; download fetches --target-name into --target-dir (skipped when an intact "
        "copy is there). Exit 0 on success, 1 on any failure.",
    )
    # add_parser builds every subcommand with the shared _Parser; this one needs exit code 1.
    tuf_client.__class__ = _TufClientParser
    tuf_client.add_argument("--metadata-dir", required=True, metavar="DIR")
    tuf_client.add_argument("--metadata-url", metavar="URL")
    tuf_client.add_argument(
        "--target-name", action="append", metavar="PATH", help="target path (repeatable)"
    )
    tuf_client.add_argument("--target-base-url", metavar="URL")
    tuf_client.add_argument("--target-dir", metavar="DIR")
    tuf_client.add_argument("action", choices=["init", "refresh", "download"])
    tuf_client.add_argument(
        "trusted_root", nargs="?", metavar="TRUSTED_ROOT", help="for init: the root.json to trust"
    )
    tuf_client.set_defaults(handler=cmd_tuf_client)


# --- parser -----------------------------------------------------------------


def _add_reader_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, metavar="ROOT.json", help="the publisher's root.json you pinned"
    )
    parser.add_argument(
        "--state", metavar="DIR", help="reader state folder (default: per-user state dir)"
    )
    parser.add_argument(
        "--allow-expired",
        action="store_true",
        help="accept an expired edition anyway (loudly; the age is still printed)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print details")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(
        prog="mirror",
        description="Signed editions of a newsroom's articles, pushed to many mirrors, "
        "verified by readers.",
        epilog="Exit codes: 0 ok, 2 usage, 3 config, 4 file system, 5 keys, 6 sources, "
        "7 network, 8 quorum, 10 tampered, 11 expired, 12 not yet valid, 13 rollback, "
        "14 unsafe archive.",
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"configuration file (default: $MIRROR_CONFIG or {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--log-format",
        choices=list(logs.LOG_FORMATS),
        default=os.environ.get("MIRROR_LOG_FORMAT") or "text",
        help="logs on stderr as text, or one JSON object per line "
        "(default: $MIRROR_LOG_FORMAT or text)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    keys = commands.add_parser("keys", help="create and rotate the publisher's keys")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser)
    init = keys_commands.add_parser(
        "init", help="create root, targets, snapshot, timestamp and minisign keys"
    )
    init.add_argument(
        "--publisher", help="publisher name (default: publisher.name from the config)"
    )
    init.add_argument(
        "--root-keys", type=int, default=3, metavar="N", help="number of root keys (default 3)"
    )
    init.add_argument(
        "--root-threshold",
        type=int,
        default=2,
        metavar="K",
        help="root signatures required (default 2)",
    )
    init.set_defaults(handler=cmd_keys_init)
    rotate = keys_commands.add_parser(
        "rotate", help="replace one role's keys; signs a new root version"
    )
    rotate.add_argument("role", choices=["root", "targets", "snapshot", "timestamp", "minisign"])
    rotate.set_defaults(handler=cmd_keys_rotate)
    propose = keys_commands.add_parser(
        "propose-root",
        help="online: new keys for an online role (or 'renew') as an unsigned root proposal",
    )
    propose.add_argument("role", choices=["targets", "snapshot", "timestamp", "renew"])
    propose.set_defaults(handler=cmd_keys_propose_root)
    sign = keys_commands.add_parser(
        "sign-root", help="offline: sign a root proposal with the root keys on this machine"
    )
    sign.add_argument("proposal", metavar="PROPOSAL", help="the N.root.json proposal file")
    sign.add_argument(
        "--keys-dir", metavar="DIR", help="the offline key store (default: keys.dir of the config)"
    )
    sign.set_defaults(handler=cmd_keys_sign_root)
    imported = keys_commands.add_parser(
        "import-root", help="online: accept a root signed offline (checked like readers do)"
    )
    imported.add_argument("signed", metavar="SIGNED", help="the N.root.signed.json file")
    imported.set_defaults(handler=cmd_keys_import_root)
    keys.set_defaults(handler=_needs_action(keys))

    build = commands.add_parser("build", help="ingest, render, archive and sign an edition")
    build.add_argument(
        "--edition-version", type=int, metavar="N", help="version number (default: next)"
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.add_argument(
        "--force", action="store_true", help="build a new edition even if nothing changed"
    )
    build.set_defaults(handler=cmd_build)

    for name, handler, text in (
        ("push", cmd_push, "push the publish tree to every mirror and read each back"),
        ("sync", cmd_sync, "build a new edition, push it to every mirror, read each back"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
        command.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
        command.add_argument(
            "--mirror", action="append", metavar="NAME", help="only this mirror (repeatable)"
        )
        command.add_argument(
            "--no-read-back", action="store_true", help="skip verifying mirrors as a reader"
        )
        if name == "sync":
            command.add_argument(
                "--edition-version", type=int, metavar="N", help="version number (default: next)"
            )
            command.add_argument(
                "--force", action="store_true", help="build a new edition even if nothing changed"
            )
        command.add_argument(
            "--tag", action="append", metavar="TAG", help="only mirrors with this tag (repeatable)"
        )
        command.add_argument(
            "--shard",
            metavar="I/N",
            help="only the mirrors of shard I of N (stable hash of the name); "
            + ("shard 0 builds, the others only push" if name == "sync" else "run N at once"),
        )
        command.add_argument(
            "--metrics-textfile",
            metavar="PATH",
            help="write Prometheus metrics of this run to PATH (node-exporter textfile, atomic)",
        )
        command.set_defaults(handler=handler)

    status = commands.add_parser(
        "status",
        help="check every mirror as a reader would, from every vantage point",
        epilog="Exit 8 when, from some vantage point, fewer mirrors than push.quorum are "
        "healthy. Verdicts: healthy, stale, tampered, expired, unreachable.",
    )
    status.add_argument("--json", action="store_true", help="print the results as JSON")
    status.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="check again every SECONDS, serving metrics and sending alerts; Ctrl-C stops",
    )
    status.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="with --watch: serve metrics on PORT (default monitor.metrics.port, 9464; 0: any)",
    )
    status.add_argument(
        "--metrics-listen",
        metavar="ADDR",
        help="with --watch: address to serve metrics on (default monitor.metrics.listen, "
        "127.0.0.1)",
    )
    status.add_argument(
        "--webhook-once",
        action="store_true",
        help="without --watch: still send webhook alerts for state changes (for cron)",
    )
    status.set_defaults(handler=cmd_status)

    config_parser = commands.add_parser("config", help="check the configuration")
    config_commands = config_parser.add_subparsers(
        dest="config_command", metavar="ACTION", parser_class=_Parser
    )
    check = config_commands.add_parser(
        "check", help="validate the config and probe every mirror (reach, auth, write)"
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(handler=cmd_config_check)
    config_parser.set_defaults(handler=_needs_action(config_parser))

    mirrors_parser = commands.add_parser("mirrors", help="list or add mirrors")
    mirrors_commands = mirrors_parser.add_subparsers(
        dest="mirrors_command", metavar="ACTION", parser_class=_Parser
    )
    listing = mirrors_commands.add_parser("list", help="every mirror with its last known state")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    listing.set_defaults(handler=cmd_mirrors_list)
    add = mirrors_commands.add_parser(
        "add",
        help="append a validated mirror entry to the config file (comments are kept)",
        epilog="Example: mirror mirrors add dav2 --type webdav "
        "--public-url https://dav.example.org/pub/ --set url=https://dav.example.org/news/ "
        "--set username=news --set password=env:DAV_PASSWORD",
    )
    add.add_argument("name", metavar="NAME", help="unique mirror name")
    add.add_argument("--type", required=True, choices=list(MIRROR_TYPES))
    add.add_argument("--public-url", required=True, metavar="URL", help="where readers fetch")
    add.add_argument(
        "--secret", action="store_true", help="do not list it in the signed mirror list"
    )
    add.add_argument("--tag", action="append", metavar="TAG", help="a tag (repeatable)")
    add.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of the type's block (repeatable); secrets as env:NAME or file:PATH",
    )
    add.set_defaults(handler=cmd_mirrors_add)
    mirrors_parser.set_defaults(handler=_needs_action(mirrors_parser))

    fetch = commands.add_parser(
        "fetch", help="fetch the newest edition from whichever mirrors work, verified"
    )
    fetch.add_argument("--root", required=True, metavar="ROOT.json", help="the pinned root.json")
    fetch.add_argument(
        "--mirror", action="append", metavar="URL", help="a mirror's address (repeatable)"
    )
    fetch.add_argument("--state", metavar="DIR", help="reader state folder")
    fetch.add_argument("--lang", choices=list(verdicts.LANGUAGES), help="language of the verdict")
    fetch.add_argument("--json", action="store_true", help="print the verdict as JSON")
    fetch.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="S", help="per connection (5 s)"
    )
    fetch.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="per read and per file (30 s)"
    )
    fetch.set_defaults(handler=cmd_fetch)

    verify = commands.add_parser("verify", help="verify an edition file offline")
    verify.add_argument("file", metavar="FILE", help="the edition .zip")
    _add_reader_options(verify)
    verify.set_defaults(handler=cmd_verify)

    extract = commands.add_parser(
        "extract", help="verify an edition, then unpack it into a new folder"
    )
    extract.add_argument("file", metavar="FILE", help="the edition .zip")
    extract.add_argument(
        "dest", metavar="DEST", help="folder to create (must not exist or be empty)"
    )
    _add_reader_options(extract)
    extract.set_defaults(handler=cmd_extract)

    _add_read_commands(commands)

    parser.set_defaults(handler=_needs_action(parser))
    return parser


def _needs_action(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        raise UsageError(f"{parser.prog} needs a command", hint=f"Run `{parser.prog} --help`.")

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. Never lets a traceback reach the user."""
    # Until the arguments are parsed (a usage error), only the environment says the format.
    logs.configure("json" if os.environ.get("MIRROR_LOG_FORMAT") == "json" else "text")
    try:
        args = build_parser().parse_args(argv)
        logs.configure(args.log_format)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except MirrorError as error:
        _report(error.message, error.hint)
        return error.exit_code
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        _report("interrupted", "Nothing half-written was left behind; run the command again.")
        return 130
    except Exception as error:  # the last line of defence: one sentence, no traceback
        if os.environ.get("MIRROR_DEBUG"):
            raise
        _report(
            f"internal error: {error.__class__.__name__}: {error}",
            "This is a bug in mirror; run again with MIRROR_DEBUG=1 and report the traceback.",
        )
        return 1


def _report(message: str, hint: str) -> None:
    if logs.current_format() == "json":
        logs.log_event(
            "command.failed",
            message,
            level=logging.ERROR,
            hint=hint or None,
            error_class=_error_class(),
        )
        return
    print(f"mirror: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


def _error_class() -> str | None:
    """The verdict of the exception being handled (for JSON error logs)."""
    error = sys.exc_info()[1]
    if isinstance(error, MirrorError):
        return error.verdict
    return error.__class__.__name__ if error is not None else None
