"""`mirror config check`: validate the config, then probe every mirror."""

from __future__ import annotations

import argparse
import asyncio

from rich.table import Table

from mirror.admin import check_publisher, probe_all
from mirror.cli import config_file
from mirror.cli.output import print_json, print_table
from mirror.errors import TransportError


def check(args: argparse.Namespace) -> int:
    """Validate the config, then probe every mirror (reach, auth, write, public URL)."""
    config = config_file.load(args)
    local = check_publisher(config)
    results = asyncio.run(probe_all(config))
    if args.json:
        print_json(
            {
                "config": str(config.file),
                "publisher": [c.as_json() for c in local],
                "mirrors": [r.as_json() for r in results],
            }
        )
    else:
        print(f"{config.file}: valid ({len(config.mirrors)} mirrors)")
        for c in local:
            print(f"  {c.what}: {'ok' if c.error is None else 'FAILED'} — {c.detail}")
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
        print_table(table, min_width=100)
    failing = [c.error for c in local if c.error is not None]
    if failing:  # keys (5) before sources (6): the first thing a sync would stop at
        first = min(failing, key=lambda e: e.exit_code)
        raise first.reworded(
            f"{first.message} (and {len(failing) - 1} more problems above)"
            if len(failing) > 1
            else first.message,
            first.hint,
        )
    failed = [r.mirror for r in results if not (r.writable and r.public)]
    if failed:
        raise TransportError(
            f"{len(failed)} of {len(results)} mirrors failed the probe: {', '.join(failed)}",
            hint="The detail column says what failed for each mirror.",
        )
    return 0
