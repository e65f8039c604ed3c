"""Read a published mirror folder with a stock python-tuf client (for deploy/podman-check.sh).

    python stock_client.py MIRROR_DIR ROOT_JSON EDITION_ZIP

Serves MIRROR_DIR over HTTP on 127.0.0.1, as the web server in front of a
local mirror would, and reads it the way any python-tuf reader does: an
``Updater`` bootstrapped from the pinned ROOT_JSON refreshes root, timestamp,
snapshot and targets, then downloads ``editions/<name of EDITION_ZIP>``, whose
bytes must equal EDITION_ZIP (the edition the sync built). Nothing from mirror
is imported, so a publish tree that only mirror's own reader accepts fails here.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import tempfile
import threading
from pathlib import Path

import tuf
from tuf.ngclient import Updater


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def read_edition(mirror_dir: Path, root_json: Path, edition_zip: Path) -> str:
    """Download the edition through python-tuf; its target path, or raise."""
    handler = functools.partial(QuietHandler, directory=str(mirror_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            (work / "metadata").mkdir()
            updater = Updater(
                metadata_dir=str(work / "metadata"),
                metadata_base_url=f"{base}/metadata/",
                target_base_url=f"{base}/targets/",
                target_dir=str(work),
                bootstrap=root_json.read_bytes(),
            )
            updater.refresh()
            target = f"editions/{edition_zip.name}"
            info = updater.get_targetinfo(target)
            if info is None:
                raise SystemExit(f"stock client: {target} is not a target of {mirror_dir}")
            path = updater.download_target(info, str(work / "edition.zip"))
            if Path(path).read_bytes() != edition_zip.read_bytes():
                raise SystemExit(f"stock client: {target} differs from {edition_zip}")
            return target
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror_dir", type=Path)
    parser.add_argument("root_json", type=Path)
    parser.add_argument("edition_zip", type=Path)
    args = parser.parse_args()
    target = read_edition(args.mirror_dir, args.root_json, args.edition_zip)
    print(f"python-tuf {tuf.__version__} Updater: {target} verified, the bytes the sync built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
