"""`mirror trust add ROOT.json` and `mirror trust list`: the publishers this reader pinned."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirror.cli.output import print_json
from mirror.errors import MirrorError
from mirror.reader import pins
from mirror.reader.store import ReaderStore
from mirror.reader.verdicts import default_language, localized


def add(args: argparse.Namespace) -> int:
    """Pin a publisher's root.json, so later reader commands need no --root."""
    store = ReaderStore.at(args.state)
    try:
        _, publisher, new = pins.pin(store, Path(args.root))
    except MirrorError as error:
        raise localized(error, args.lang or default_language()) from error
    if args.json:
        print_json(
            {
                "publisher": publisher.name,
                "publisher_id": publisher.publisher_id,
                "new": new,
                "root": str(Path(args.root).absolute()),
            }
        )
        return 0
    verb = "Pinned" if new else "Re-pinned"
    print(f"{verb} {publisher.name} (publisher id {publisher.publisher_id}) from {args.root}")
    print("`mirror fetch`, `mirror verify FILE` and `mirror read` now need no --root for it.")
    return 0


def list_pins(args: argparse.Namespace) -> int:
    """The publishers this reader pinned."""
    pinned = pins.pinned_publishers(ReaderStore.at(args.state))
    rows = [
        {"publisher": p.name, "publisher_id": p.publisher_id, "root_version": r.signed.version}
        for p, r in pinned
    ]
    if args.json:
        print_json({"pinned": rows})
        return 0
    if not rows:
        print("no publisher is pinned yet: `mirror trust add ROOT.json`")
    for row in rows:
        print(f"{row['publisher']}  (id {row['publisher_id']}, root version {row['root_version']})")
    return 0
