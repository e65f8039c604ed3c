"""`mirror push` and `mirror sync`: the operator's commands, printed for people or logs."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from mirror import logs, shards, sync
from mirror.build import BuildResult, Unchanged
from mirror.cli import config_file
from mirror.clock import publisher_now
from mirror.commands.build import print_skipped, unchanged_line
from mirror.publish import Progress, SilentProgress
from mirror.report import BarProgress, PlainProgress, plan_lines, print_plain, print_table


def run_push(args: argparse.Namespace) -> int:
    """Push the publish tree as it stands to every selected mirror, then read each back."""
    config = config_file.load(args)
    options = _options(args)
    with _progress() as progress:
        outcome = sync.push(config, options, progress=progress)
    return _finish(outcome, args)


def run_sync(args: argparse.Namespace) -> int:
    """Build a new edition (when something changed), push it everywhere, read every mirror back."""
    config = config_file.load(args)
    options = _options(args)
    shard = options.selection.shard
    if shard is not None and not shard.builds:
        print(f"shard {shard}: pushing the current publish tree (shard 0 builds)")
    elif options.dry_run:
        print("would build a new edition, then push:")
    with _progress() as progress:
        outcome = sync.sync(
            config,
            sync.BuildOptions(version=args.edition_version, force=args.force),
            options,
            now=publisher_now(),
            progress=progress,
            on_built=_print_built,
        )
    return _finish(outcome.push, args)


def _options(args: argparse.Namespace) -> sync.PushOptions:
    return sync.PushOptions(
        selection=sync.MirrorSelection(
            names=tuple(args.mirror or ()),
            tags=tuple(args.tag or ()),
            shard=shards.parse_shard(args.shard) if args.shard else None,
        ),
        dry_run=args.dry_run,
        read_back=not args.no_read_back,
        json_report=Path(args.json) if args.json else None,
        metrics_textfile=Path(args.metrics_textfile) if args.metrics_textfile else None,
    )


@contextlib.contextmanager
def _progress() -> Iterator[Progress]:
    """Bars on a terminal, plain lines otherwise, nothing under JSON logs."""
    if sys.stdout.isatty():
        with BarProgress(Console(stderr=False)) as bars:
            yield bars
    elif logs.current_format() == "json":
        yield SilentProgress()
    else:
        yield PlainProgress(sys.stderr)


def _print_built(built: BuildResult | Unchanged) -> None:
    print_skipped(built)
    if isinstance(built, Unchanged):
        print(unchanged_line(built))
        return
    print(
        f"Built edition {built.eid} (version {built.version}): {built.articles} articles, "
        f"{built.archive.length:,} bytes"
    )


def _finish(outcome: sync.PushOutcome, args: argparse.Namespace) -> int:
    if outcome.dry_run:
        for result in outcome.results:
            for line in plan_lines(result, verbose=args.verbose):
                print(line)
    elif sys.stdout.isatty() and not args.quiet:
        print_table(list(outcome.results), Console(stderr=False))
    else:
        print_plain([r for r in outcome.results if not (args.quiet and r.ok)])
    outcome.check()
    return 0
