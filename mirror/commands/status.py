"""`mirror status`: every mirror from every vantage point, as a reader sees it."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence

from rich.table import Table

from mirror import logs, metrics, monitor, secrets, webhook
from mirror.cli import config_file
from mirror.cli.output import print_json, print_table
from mirror.clock import reader_now
from mirror.errors import QuorumError, UsageError
from mirror.text import json_shown


def status(args: argparse.Namespace) -> int:
    """Check every mirror from every vantage point as a reader would; metrics, alerts."""
    config = config_file.load(args)
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
            print(json_shown(json.dumps(document, ensure_ascii=False, default=str)), flush=True)
        else:
            print_json(document)
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
    print_table(table, min_width=120)
