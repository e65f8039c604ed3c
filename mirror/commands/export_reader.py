"""`mirror keys export-reader`: reader.html, the browser verifier, with a root embedded.

Kept out of `mirror.commands.keys` because it needs no key and no publisher
library: with ``--root root.json`` it runs on the reader-only install, so
anyone holding the publisher's root can rebuild the page and compare its
SHA-256 with the one announced (docs/adr/0017-reader-only-install.md).
Without ``--root`` it reads the newsroom's config, which needs the publish
extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirror.reader.export_page import export_reader_page


def export_reader(args: argparse.Namespace) -> int:
    """Write reader.html with the publisher's root embedded; print its SHA-256."""
    if args.root:
        root = Path(args.root)
    else:
        from mirror.cli import config_file  # noqa: PLC0415 - the config needs the publish extra

        root = config_file.load(args).keys.dir / "root.json"
    out = Path(args.out)
    page = export_reader_page(root, out)
    print(f"Wrote {out} for {page.publisher.name} (root version {page.root_version})")
    print(f"  SHA-256: {page.sha256}")
    print("  Give readers this file and this fingerprint; they open it in a browser, offline.")
    return 0
