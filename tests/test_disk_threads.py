"""The push's work on this machine's files runs in its own few threads (`mirror.backends.disk`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.backends.disk import DISK_THREADS
from mirror.backends.local import LocalBackend
from tests.conftest import Publisher
from tests.test_push_fanout import digests, push, sources, with_local_mirrors


def test_eight_folder_mirrors_share_one_disk_thread_per_core(
    new_publisher: Callable[..., Publisher], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file flush of a push to eight folders happens in a disk thread, never more
    of them at once than the pool has, whatever the mirrors' own concurrency (8 each)."""
    publisher = new_publisher(4)
    config, folders = with_local_mirrors(publisher, 8, label="d")
    Publisher(publisher.home, config).build()
    lock = threading.Lock()
    threads: set[str] = set()
    in_flight = peak = 0
    flush = os.fdatasync

    def watched_flush(fd: int) -> None:
        nonlocal in_flight, peak
        with lock:
            threads.add(threading.current_thread().name)
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.0005)  # long enough for the flushes of other threads to overlap
            flush(fd)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(os, "fdatasync", watched_flush)
    results = push(config, tmp_path / "push.json", "--no-read-back")
    monkeypatch.undo()

    assert [r["pushed"] for r in results.values()] == [True] * 8
    tree = digests(config.publish_dir)
    assert all(digests(folder) == tree for folder in folders)
    assert threads
    assert all(name.startswith("mirror-disk") for name in threads), threads
    assert len(threads) <= DISK_THREADS
    assert 1 <= peak <= DISK_THREADS


def test_folder_mirrors_go_on_while_every_default_thread_waits(tmp_path: Path) -> None:
    """A blocking call that holds asyncio's default threads (a read-back over HTTP, a
    helper waiting in a thread) does not hold up a folder mirror's writes, reads or listing."""
    files = sources(tmp_path / "src", [f"targets/a/{i}.html" for i in range(100)])
    backend = LocalBackend("m", tmp_path / "mirror")
    released = threading.Event()

    async def run() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        waiting = asyncio.ensure_future(asyncio.to_thread(released.wait, 30))
        try:
            async with asyncio.timeout(10):
                await backend.put_many(files)
                body = await backend.get("targets/a/7.html", max_bytes=files[7].size)
                assert body == files[7].local.read_bytes()
                return sorted(info.path for info in await backend.list("targets/"))
        finally:
            released.set()
            await waiting

    listed = asyncio.run(run())
    assert listed == sorted(f.path for f in files)
