"""A reader polling a mirror during a push never sees metadata that points at missing content.

For every backend type on its real server: while two editions are pushed,
a reader thread keeps fetching the mirror's public URL with a stock
python-tuf `Updater` (a fresh one each poll, bootstrapped from root 1),
then downloads every edition the metadata lists. A 404 for anything but
``timestamp.json`` itself (not published yet) would mean the mirror served
metadata ahead of its content.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater

from mirror.cli import main
from mirror.client.transport import DeadlineFetcher
from tests.conftest import BUILD_TIME, Publisher, make_config
from tests.servers import PROVIDERS, MirrorServer, serve


@dataclass
class PollLog:
    """What the polling reader saw."""

    polls: int = 0
    consistent: int = 0
    editions_seen: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)


class RecordingFetcher(DeadlineFetcher):
    """Remembers which URL answered 404."""

    def __init__(self) -> None:
        super().__init__(connect_timeout_s=5, read_timeout_s=5, download_budget_s=30)
        self.missing: list[str] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            yield from super()._fetch(url)
        except tuf_errors.DownloadHTTPError as error:
            if error.status_code in (403, 404):
                self.missing.append(url)
            raise


def poll_once(public_url: str, root: bytes, eids: list[str], log: PollLog) -> None:
    fetcher = RecordingFetcher()
    with tempfile.TemporaryDirectory() as folder:
        metadata = Path(folder) / "metadata"
        metadata.mkdir()
        updater = Updater(
            metadata_dir=str(metadata),
            metadata_base_url=f"{public_url}metadata/",
            target_base_url=f"{public_url}targets/",
            target_dir=folder,
            fetcher=fetcher,
            bootstrap=root,
        )
        log.polls += 1
        try:
            updater.refresh()
            for eid in eids:
                info = updater.get_targetinfo(f"editions/{eid}.zip")
                if info is not None:
                    updater.download_target(info, str(Path(folder) / f"{eid}.zip"))
                    log.editions_seen.add(eid)
            log.consistent += 1
        except (tuf_errors.DownloadError, tuf_errors.RepositoryError) as error:
            unexplained = [u for u in fetcher.missing if not u.endswith("/timestamp.json")]
            # Root version probes (N+1.root.json) are expected to 404 and are not raised.
            unexplained = [u for u in unexplained if not u.endswith(".root.json")]
            if unexplained:
                log.violations.append(f"{unexplained[0]} missing ({error})")
            # Anything else is a file caught half-written on a non-atomic server
            # (timestamp.json mid-PUT) or not there yet: not a broken promise.
        finally:
            fetcher.close()


@pytest.fixture(scope="module", params=sorted(PROVIDERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorServer]:
    with serve(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def test_reader_never_sees_metadata_ahead_of_content(
    server: MirrorServer, new_publisher: Callable[..., Publisher]
) -> None:
    publisher = new_publisher(8)
    settings = "".join(f"      {line}\n" for line in server.settings_yaml.splitlines())
    mirrors = (
        f"  - name: polled\n    type: {server.type_name}\n    public_url: {server.public_url}\n"
        f"    limits: {{concurrency: 4}}\n    {server.type_name}:\n{settings}"
    )
    config = make_config(publisher.home, mirrors=mirrors, extra="push:\n  quorum: 1\n")
    publisher = Publisher(publisher.home, config)
    first = publisher.build()
    root = (config.publish_dir / "metadata" / "1.root.json").read_bytes()
    eids = [first.eid]
    log = PollLog()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            poll_once(server.public_url, root, list(eids), log)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert main(["--config", str(config.file), "push"]) == 0
        for i in range(3):
            (publisher.articles / f"later-{i}.md").write_text(
                f"---\ntitle: Later {i}\ndate: 2026-11-25\n---\n\nNews {i}.\n", encoding="utf-8"
            )
        second = publisher.build(when=BUILD_TIME + timedelta(minutes=5))
        eids.append(second.eid)
        assert main(["--config", str(config.file), "push"]) == 0
        polls_before = log.polls
        while log.polls < polls_before + 2 and thread.is_alive():
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert log.violations == []
    assert log.consistent >= 1
    assert second.eid in log.editions_seen
