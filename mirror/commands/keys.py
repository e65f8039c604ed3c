"""`mirror keys init|rotate|propose-root|sign-root|import-root`: publisher keys.

`mirror keys export-reader` is `mirror.commands.export_reader` (it runs on a reader install).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from mirror import keystore
from mirror.cli import config_file
from mirror.clock import publisher_now
from mirror.errors import UsageError


def init(args: argparse.Namespace) -> int:
    """Create the key store and root version 1."""
    config = config_file.load(args)
    publisher = args.publisher or config.publisher.name
    root = keystore.init_keys(
        config.keys.dir,
        config.passphrase(),
        publisher_name=publisher,
        now=publisher_now(),
        root_threshold=args.root_threshold,
        root_keys=args.root_keys,
    )
    keys_dir = config.keys.dir
    print(f"Created keys for {publisher} in {keys_dir}")
    print(f"  root: {args.root_threshold} of {args.root_keys} keys, version {root.version}")
    print(f"  give readers to pin:   {keys_dir / 'root.json'}")
    print(f"  minisign public key:   {keys_dir / 'minisign.pub'}")
    return 0


def rotate(args: argparse.Namespace) -> int:
    """Replace a role's keys and sign the next root version."""
    config = config_file.load(args)
    now = publisher_now()
    root = keystore.rotate_role(
        config.keys.dir,
        config.passphrase(),
        args.role,
        now=now,
        compromised_since=_compromised_since(args, now),
    )
    if root is None:
        print(f"Rotated the minisign key; new public key in {config.keys.dir / 'minisign.pub'}")
    else:
        print(
            f"Rotated the {args.role} keys; root is now version {root.version} "
            f"({config.keys.dir / 'root.json'}). Rebuild to publish it."
        )
    return 0


def propose_root(args: argparse.Namespace) -> int:
    """Online: new keys for an online role (or a renewal) as an unsigned next root."""
    config = config_file.load(args)
    role = "" if args.role == "renew" else args.role
    now = publisher_now()
    path = keystore.propose_root(
        config.keys.dir,
        config.passphrase(),
        role,
        now=now,
        compromised_since=_compromised_since(args, now),
    )
    print(f"Wrote the unsigned root proposal {path}")
    print("Carry it to the offline machine and run `mirror keys sign-root` there.")
    return 0


def sign_root(args: argparse.Namespace) -> int:
    """Offline: sign a root proposal with the root keys kept on this machine."""
    config = config_file.load(args)
    keys_dir = Path(args.keys_dir) if args.keys_dir else config.keys.dir
    signed = keystore.sign_root(Path(args.proposal), keys_dir, config.passphrase())
    print(f"Wrote the signed root {signed}")
    print("Carry it back to the online host and run `mirror keys import-root` there.")
    return 0


def import_root(args: argparse.Namespace) -> int:
    """Online: accept a root signed offline, after the checks every reader makes."""
    config = config_file.load(args)
    root = keystore.import_root(config.keys.dir, Path(args.signed))
    print(f"Root is now version {root.version}; the next build publishes it.")
    return 0


def _compromised_since(args: argparse.Namespace, now: datetime) -> datetime | None:
    """``--compromised [--since TIME]``: when the replaced keys stopped being safe."""
    if args.since and not args.compromised:
        raise UsageError("--since goes with --compromised", hint="Add --compromised.")
    if not args.compromised:
        return None
    if not args.since:
        return now
    try:
        since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(
            f"--since {args.since!r} is not a time", hint="For example: 2026-11-20T00:00Z"
        ) from error
    if since.tzinfo is None:
        raise UsageError(f"--since {args.since!r} has no time zone", hint="Add Z for UTC.")
    if since > now:
        raise UsageError(f"--since {args.since} is in the future", hint="Give a time before now.")
    return since.astimezone(UTC)
