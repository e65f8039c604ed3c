"""`mirror restore --from MIRROR|URL`: the publish tree taken back from a mirror, verified."""

from __future__ import annotations

import argparse

from mirror import restore as restoring
from mirror.cli import config_file
from mirror.clock import reader_now


def restore(args: argparse.Namespace) -> int:
    """Verify the mirror's repository and make it the local publish tree."""
    config = config_file.load(args)
    restored = restoring.restore(config, args.source, now=reader_now())
    editions = (
        f"editions {restored.eids[0]} to {restored.eids[-1]}"
        if len(restored.eids) > 1
        else f"edition {restored.eids[0]}"
        if restored.eids
        else "no edition"
    )
    print(
        f"Restored the publish tree from {restored.source}: timestamp version "
        f"{restored.timestamp_version}, {editions}, {restored.files} files "
        f"({restored.bytes:,} bytes of targets), every one verified"
    )
    if restored.kept_previous is not None:
        print(f"  the previous tree is kept in {restored.kept_previous}")
    print("Run `mirror sync` to continue the history from there.")
    return 0
