"""`mirror push` and `mirror sync`: the operator's commands, printed for people or logs."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rich.console import Console

from mirror import logs, rebuild, shards, sync
from mirror.build import BuildResult
from mirror.cli import config_file
from mirror.cli.output import print_json
from mirror.clock import publisher_now
from mirror.commands.build import print_skipped, renewal_note, unchanged_line
from mirror.publish import Progress, SilentProgress
from mirror.rebuild import Unchanged
from mirror.report import BarProgress, PlainProgress, plan_lines, print_plain, print_table


def run_push(args: argparse.Namespace) -> int:
    """Push the publish tree as it stands to every selected mirror, then read each back."""
    config = config_file.load(args)
    options = _options(args)
    with _progress(_human(args)) as progress:
        outcome = sync.push(config, options, progress=progress)
    return _finish(outcome, args)


def run_sync(args: argparse.Namespace) -> int:
    """Build a new edition (when something changed), push it everywhere, read every mirror back."""
    config = config_file.load(args)
    options = _options(args)
    human = _human(args)
    shard = options.selection.shard
    if shard is not None and not shard.builds and not args.quiet:
        print(f"shard {shard}: pushing the current publish tree (shard 0 builds)", file=human)

    def built(result: BuildResult | Unchanged) -> None:
        print_skipped(result)
        if not args.quiet:
            print(_built_line(result, dry_run=options.dry_run), file=human)

    with _progress(human) as progress:
        outcome = sync.sync(
            config,
            rebuild.BuildOptions(version=args.edition_version, force=args.force),
            options,
            now=publisher_now(),
            progress=progress,
            on_built=built,
        )
    return _finish(outcome.push, args)


def _human(args: argparse.Namespace) -> TextIO:
    """Where lines for people go: stdout, or stderr when stdout carries the JSON report."""
    return sys.stderr if args.json == "-" else sys.stdout


def _options(args: argparse.Namespace) -> sync.PushOptions:
    return sync.PushOptions(
        selection=sync.MirrorSelection(
            names=tuple(args.mirror or ()),
            tags=tuple(args.tag or ()),
            shard=shards.parse_shard(args.shard) if args.shard else None,
        ),
        dry_run=args.dry_run,
        read_back=not args.no_read_back,
        json_report=Path(args.json) if args.json and args.json != "-" else None,
        metrics_textfile=Path(args.metrics_textfile) if args.metrics_textfile else None,
    )


@contextlib.contextmanager
def _progress(human: TextIO) -> Iterator[Progress]:
    """Bars on a terminal, plain lines otherwise, nothing under JSON logs."""
    if human.isatty():
        with BarProgress(Console(file=human)) as bars:
            yield bars
    elif logs.current_format() == "json":
        yield SilentProgress()
    else:
        yield PlainProgress(sys.stderr)


def _built_line(built: BuildResult | Unchanged, *, dry_run: bool) -> str:
    if isinstance(built, Unchanged):
        if dry_run:
            resign = "; the timestamp would be re-signed" if built.timestamp_refreshed else ""
            return f"would build nothing: nothing changed since edition {built.eid}{resign}"
        return unchanged_line(built)
    verb = "Would build" if dry_run else "Built"
    renewed = "" if built.renewed is None else f" ({renewal_note(built.renewed)})"
    return (
        f"{verb} edition {built.eid} (version {built.version}): {built.articles} articles, "
        f"{built.archive.length:,} bytes{renewed}"
    )


def _finish(outcome: sync.PushOutcome, args: argparse.Namespace) -> int:
    if args.json == "-":
        print_json(outcome.report())  # the report alone on stdout, for a pipe
    elif outcome.dry_run:
        for result in outcome.results:
            for line in plan_lines(result, verbose=args.verbose):
                print(line)
    elif sys.stdout.isatty() and not args.quiet:
        print_table(list(outcome.results), Console(stderr=False))
    else:
        print_plain([r for r in outcome.results if not (args.quiet and r.ok)])
    outcome.check()
    return 0
