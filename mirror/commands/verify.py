"""`mirror verify` and `mirror extract`: an edition file checked with only a pinned root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mirror.cli.output import print_json, shown
from mirror.clock import reader_now
from mirror.reader.store import ReaderStore, default_state_dir
from mirror.reader.verify_file import load_pinned_root, verify_edition
from mirror.trust.publisher import publisher_of


def verify(args: argparse.Namespace) -> int:
    """Verify an edition file offline against a pinned root."""
    return _verify(args, extract_to=None)


def extract(args: argparse.Namespace) -> int:
    """Verify, then write the edition's files into a new folder."""
    return _verify(args, extract_to=Path(args.dest))


def _verify(args: argparse.Namespace, *, extract_to: Path | None) -> int:
    pinned = load_pinned_root(Path(args.root))
    store = ReaderStore(Path(args.state) if args.state else default_state_dir())
    publisher = store.publisher(publisher_of(pinned.signed).publisher_id)
    verdict = verify_edition(
        Path(args.file),
        pinned=pinned,
        trust=publisher.trust(),
        now=reader_now(),
        allow_expired=args.allow_expired,
        extract_to=extract_to,
    )
    publisher.apply(verdict.update)
    fresh = verdict.freshness
    if args.json:
        print_json(
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
        return 0
    date = verdict.created.strftime("%Y-%m-%d")
    if fresh.expired:
        print(
            f"EXPIRED BUT READ ANYWAY: {shown(verdict.publisher)}, edition {verdict.eid} "
            f"(version {verdict.version}) of {date} expired {verdict.expires:%Y-%m-%d}; "
            f"it is {fresh.age.days} days old and may be out of date.",
            file=sys.stderr,
        )
    print(
        f"verified: {shown(verdict.publisher)}, edition {verdict.eid} "
        f"(version {verdict.version}) of {date}"
    )
    if args.verbose:
        print(f"  title:        {shown(verdict.title)}")
        print(f"  created:      {verdict.created.isoformat()}")
        print(f"  expires:      {verdict.expires.isoformat()}")
        print(f"  root version: {verdict.root_version}")
        print(f"  members:      {verdict.members} files, {verdict.content_bytes:,} bytes")
    if extract_to is not None:
        print(f"  extracted to: {shown(extract_to)}")
    return 0
