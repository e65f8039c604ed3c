"""`mirror build`: ingest, render, archive, sign, and update the local publish tree."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mirror import rebuild
from mirror.cli import config_file
from mirror.cli.output import print_json, shown
from mirror.clock import publisher_now
from mirror.rebuild import Unchanged

if TYPE_CHECKING:
    from mirror.build import BuildResult


def build(args: argparse.Namespace) -> int:
    """Build a new edition (or refresh the timestamp when nothing changed)."""
    config = config_file.load(args)
    built = rebuild.build(
        config,
        rebuild.BuildOptions(version=args.edition_version, force=args.force),
        now=publisher_now(),
    )
    print_skipped(built)
    if isinstance(built, Unchanged):
        if args.json:
            print_json(
                {
                    "edition": built.eid,
                    "unchanged": True,
                    "timestamp_refreshed": built.timestamp_refreshed,
                }
            )
        else:
            print(unchanged_line(built))
        return 0
    if args.json:
        print_json(
            {
                "edition": built.eid,
                "version": built.version,
                "created": built.created.isoformat(),
                "expires": built.expires.isoformat(),
                "zip": str(built.zip_path),
                "minisig": str(built.minisig_path),
                "publish_dir": str(built.publish_dir),
                "articles": built.articles,
                "skipped": [{"source": p.source, "reason": p.reason} for p in built.problems],
                "bytes": built.archive.length,
                "sha256": built.archive.sha256,
                "targets_written": built.targets_written,
                "renewed": built.renewed,
            }
        )
    else:
        print(
            f"Built edition {built.eid} (version {built.version}): {built.articles} articles, "
            f"{len(built.problems)} skipped, {built.archive.length:,} bytes"
        )
        print(f"  archive:   {shown(built.zip_path)}")
        print(f"  minisign:  {shown(built.minisig_path)}")
        print(f"  publish:   {shown(built.publish_dir)} ({built.targets_written} new files)")
        if built.renewed is not None:
            print(f"  renewed:   {renewal_note(built.renewed)}")
    return 0


def print_skipped(built: BuildResult | Unchanged) -> None:
    """Each article the build left out, on stderr."""
    for problem in built.problems:
        print(f"skipped {shown(problem.source)}: {shown(problem.reason)}", file=sys.stderr)


def renewal_note(reason: str) -> str:
    """Why an edition of unchanged content was built (`BuildResult.renewed`)."""
    return f"nothing changed, but {reason}"


def unchanged_line(unchanged: Unchanged) -> str:
    """What a build that made no new edition says."""
    refreshed = "; timestamp re-signed" if unchanged.timestamp_refreshed else ""
    return (
        f"Nothing changed since edition {unchanged.eid}: no new edition{refreshed} "
        "(use --force to build one anyway)"
    )
