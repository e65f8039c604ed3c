"""Read a mirror back through its public URL and verify it exactly as a reader would.

A stock python-tuf `Updater` bootstrapped from the publisher's first root
walks the root chain, refreshes timestamp → snapshot → targets, looks the
newest edition up through the delegations and downloads its signed
``edition.json``; every file this run uploaded is then downloaded through
the public URL and checked against its signed length and the signed hash in
its consistent-snapshot name; an edition ZIP among them is then
verified offline like `mirror verify` does. The mirror counts as verified
only if it serves the timestamp version we just published and all of that
passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Timestamp
from tuf.ngclient import Updater

from mirror.errors import (
    TamperedError,
    TransportError,
    VerificationError,
)
from mirror.fetcher import MirrorFetcher
from mirror.offline import verify_edition
from mirror.state import ReaderState
from mirror.trust import layout
from mirror.trust.verify import parse_edition_info
from mirror.tuferrors import translate


@dataclass(frozen=True)
class ReadBack:
    """What a reader got from one mirror."""

    timestamp_version: int
    eid: str
    edition_bytes: int


class StaleMirrorError(VerificationError):
    """The mirror serves older metadata than was just published (lagging cache or freeze)."""

    verdict = "stale"
    exit_code = 13
    default_hint = "The mirror or a cache in front of it still serves the previous version."


def _fetch_by_hash(
    fetcher: MirrorFetcher, url: str, tree_path: str, size: int, local: Path
) -> Path:
    """Download a published target and check it against the hash in its own name.

    Targets are published under consistent-snapshot names, ``<sha256>.<name>``,
    with the hash the signed metadata gives them: a reader requesting that
    name checks exactly this. Checking by name keeps memory flat, where asking
    the updater about 12,000 targets would load every bin and edition role.
    """
    expected = PurePosixPath(tree_path).name.split(".", 1)[0]
    digest = hashlib.sha256()
    with (
        fetcher.budget_for(size),
        fetcher.download_file(url, size) as data,
        local.open("wb") as out,
    ):
        length = 0
        while chunk := data.read(1024 * 1024):
            digest.update(chunk)
            length += len(chunk)
            out.write(chunk)
    if length != size or digest.hexdigest() != expected:
        raise TamperedError(f"serves a {tree_path} that does not match its signed hash")
    return local


def read_back_sync(
    public_url: str,
    *,
    bootstrap_root: bytes,
    eid: str,
    expected_timestamp_version: int,
    now: datetime,
    uploaded: Sequence[tuple[str, int]] = (),
    proxy: str | None = None,
) -> ReadBack:
    """Blocking read-back of one mirror (run it in a thread).

    Checks, as a reader would: the whole metadata chain up to the timestamp
    just published; the newest edition's signed ``edition.json``; every file
    uploaded in this run (each by its signed length and hash); and any
    edition ZIP among them, verified in full offline.
    """
    fetcher = MirrorFetcher(proxy=proxy)
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-readback-") as folder:
            work = Path(folder)
            (work / "metadata").mkdir()
            updater = Updater(
                metadata_dir=str(work / "metadata"),
                metadata_base_url=f"{public_url}metadata/",
                target_base_url=f"{public_url}targets/",
                target_dir=str(work),
                fetcher=fetcher,
                bootstrap=bootstrap_root,
            )
            archives: list[Path] = []
            try:
                updater.refresh()
                served = Metadata[Timestamp].from_file(str(work / "metadata" / "timestamp.json"))
                if served.signed.version < expected_timestamp_version:
                    raise StaleMirrorError(
                        f"serves timestamp version {served.signed.version}, "
                        f"not {expected_timestamp_version}"
                    )
                info_path = layout.manifest_path(eid, layout.EDITION_INFO_MEMBER)
                info_target = updater.get_targetinfo(info_path)
                if info_target is None:
                    raise TamperedError(f"its metadata does not list edition {eid}")
                info = parse_edition_info(
                    Path(
                        updater.download_target(info_target, str(work / "edition.json"))
                    ).read_bytes()
                )
                if info.eid != eid:
                    raise TamperedError(f"its newest edition is {info.eid}, not {eid}")
                for index, (tree_path, size) in enumerate(uploaded):
                    if tree_path.startswith("targets/"):
                        local = _fetch_by_hash(
                            fetcher, public_url + tree_path, tree_path, size, work / f"t{index}"
                        )
                        if tree_path.endswith(".zip"):
                            archives.append(local)
                        else:
                            local.unlink()
            except (tuf_errors.DownloadError, tuf_errors.RepositoryError) as error:
                raise translate(error) from error
            pinned = Metadata[Root].from_bytes(bootstrap_root)
            edition_bytes = 0
            for archive in archives:
                verify_edition(
                    archive,
                    pinned=pinned,
                    state=ReaderState(work / f"state-{archive.name}"),
                    now=now,
                    allow_expired=True,  # an older edition's ZIP may be past its date
                )
                edition_bytes += archive.stat().st_size
            return ReadBack(
                timestamp_version=served.signed.version, eid=eid, edition_bytes=edition_bytes
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
    uploaded: Sequence[tuple[str, int]] = (),
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
