"""`mirror config check`: validate the config, then probe every mirror."""

from __future__ import annotations

import argparse
import asyncio

from rich.table import Table

from mirror.admin import probe_all
from mirror.cli import config_file
from mirror.cli.output import print_json, print_table
from mirror.errors import TransportError


def check(args: argparse.Namespace) -> int:
    """Validate the config, then probe every mirror (reach, auth, write, public URL)."""
    config = config_file.load(args)
    print(f"{config.file}: valid ({len(config.mirrors)} mirrors)")
    results = asyncio.run(probe_all(config))
    if args.json:
        print_json({"config": str(config.file), "mirrors": [r.as_json() for r in results]})
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
        print_table(table, min_width=100)
    failed = [r.mirror for r in results if not (r.writable and r.public)]
    if failed:
        raise TransportError(
            f"{len(failed)} of {len(results)} mirrors failed the probe: {', '.join(failed)}",
            hint="The detail column says what failed for each mirror.",
        )
    return 0
