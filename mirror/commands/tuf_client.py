"""`mirror tuf-client`: the TUF conformance suite's client protocol (every failure exits 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mirror.errors import MirrorError, TufClientUsageError
from mirror.reader.tufclient import download as tuf_download
from mirror.reader.tufclient import init as tuf_init
from mirror.reader.tufclient import refresh as tuf_refresh
from mirror.text import shown


def tuf_client(args: argparse.Namespace) -> int:
    """The TUF conformance suite's client protocol: init, refresh, download; failures exit 1."""
    try:
        return _tuf_client(args)
    except MirrorError as error:
        print(f"mirror tuf-client: {shown(error.message)}", file=sys.stderr)
        return 1


def _tuf_client(args: argparse.Namespace) -> int:
    metadata_dir = Path(args.metadata_dir)
    if args.action == "init":
        if args.trusted_root is None:
            raise TufClientUsageError("init needs the TRUSTED_ROOT file")
        print(f"trusted root stored in {tuf_init(metadata_dir, Path(args.trusted_root))}")
        return 0
    if args.trusted_root is not None:
        raise TufClientUsageError(f"{args.action} takes no file argument")
    if not args.metadata_url:
        raise TufClientUsageError(f"{args.action} needs --metadata-url")
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
        raise TufClientUsageError(f"download needs {', '.join(missing)}")
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
