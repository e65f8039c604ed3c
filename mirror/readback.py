"""Read a mirror back through its public URL and verify it exactly as a reader would.

A reader view (`mirror.client.view.MirrorView`) bootstrapped from the
publisher's first root walks the root chain, refreshes timestamp → snapshot
→ targets, and must serve at least the timestamp version just published
(else `StaleError`); the edition just published must be listed, with its
signed ``edition.json``. Every file this run uploaded is then downloaded
through the public URL and checked against its signed length and the
signed hash in its consistent-snapshot name, and an edition ZIP among them
is verified offline like `mirror verify` does. The mirror counts as verified
only if all of that passes.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tuf.api.metadata import Metadata, Root

from mirror.client.transport import DeadlineFetcher
from mirror.client.view import MirrorView
from mirror.errors import TransportError
from mirror.publish_tree import TreeFile
from mirror.reader.store import Trust
from mirror.reader.verify_file import verify_edition
from mirror.trust import layout


@dataclass(frozen=True)
class ReadBack:
    """What a reader got from one mirror."""

    timestamp_version: int
    eid: str
    edition_bytes: int


def read_back_sync(
    public_url: str,
    *,
    bootstrap_root: bytes,
    eid: str,
    expected_timestamp_version: int,
    now: datetime,
    uploaded: Sequence[TreeFile] = (),
    proxy: str | None = None,
) -> ReadBack:
    """Blocking read-back of one mirror (run it in a thread).

    Checks, as a reader would: the whole metadata chain up to the timestamp
    just published; the edition's signed ``edition.json``; every file
    uploaded in this run (each by its signed length and hash); and any
    edition ZIP among them, verified in full offline.
    """
    fetcher = DeadlineFetcher(proxy=proxy)
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-readback-") as folder:
            work = Path(folder)
            (work / "metadata").mkdir()
            view = MirrorView(public_url, work / "metadata", fetcher, bootstrap=bootstrap_root)
            served = view.refresh()
            view.require_version(expected_timestamp_version, expected="the push just published")
            view.edition_info(eid)
            archives: list[Path] = []
            for index, file in enumerate(uploaded):
                tree_path = file.path
                if tree_path.startswith("targets/"):
                    local = view.download_published(tree_path, file.size, work / f"t{index}")
                    if tree_path.endswith(".zip") and not layout.is_latest_bundle(tree_path):
                        archives.append(local)
                    else:
                        local.unlink()
            pinned = Metadata[Root].from_bytes(bootstrap_root)
            edition_bytes = 0
            for archive in archives:
                verify_edition(
                    archive,
                    pinned=pinned,
                    trust=Trust.nothing(),  # a first-time reader
                    now=now,
                    allow_expired=True,  # an older edition's ZIP may be past its date
                )
                edition_bytes += archive.stat().st_size
            return ReadBack(
                timestamp_version=served.timestamp_version, eid=eid, edition_bytes=edition_bytes
            )
    finally:
        fetcher.close()


async def read_back(
    public_url: str,
    *,
    bootstrap_root: bytes,
    eid: str,
    expected_timestamp_version: int,
    now: datetime,
    timeout_s: float,
    uploaded: Sequence[TreeFile] = (),
) -> ReadBack:
    """Read one mirror back without blocking the event loop; bounded by ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.to_thread(
                read_back_sync,
                public_url,
                bootstrap_root=bootstrap_root,
                eid=eid,
                expected_timestamp_version=expected_timestamp_version,
                now=now,
                uploaded=uploaded,
            )
    except TimeoutError as error:
        raise TransportError(f"reading it back took longer than {timeout_s:g} s") from error
