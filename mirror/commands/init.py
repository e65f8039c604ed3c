"""`mirror init [FOLDER]`: a new newsroom's folder, config, example article and keys."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirror.clock import publisher_now
from mirror.starter import start_newsroom


def init(args: argparse.Namespace) -> int:
    """Make the folder, then say what to do next, root keys offline included."""
    folder = Path(args.folder)
    started = start_newsroom(
        folder,
        publisher=args.publisher,
        language=args.language,
        passphrase_ref=args.passphrase,
        now=publisher_now(),
    )
    keys = folder / "keys"
    print(f"Created {started.config}, an example article in {folder / 'articles'}, and keys.")
    print("Next:")
    print(f"  1. cd {folder} && mirror sync            # build, sign, push to mirrors/local")
    print(f"  2. give readers {started.root_json} (to pin) and {started.minisign_pub}")
    print(
        f"  3. move the root keys offline: copy {keys}/root-*.key to an offline machine, "
        "then delete them here (docs/key-custody.md)"
    )
    print("  4. add real mirrors: mirror mirrors add NAME --type TYPE --public-url URL --set …")
    print("  5. run mirror sync on a timer (deploy/README.md)")
    return 0
