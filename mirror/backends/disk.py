"""Where a push's blocking work on this machine's files runs: one small pool of threads.

Every backend that touches files here while the event loop waits (a folder
mirror's copies, flushes, renames, reads and listings; a git mirror's work
tree; the HTTP and S3 backends reading the files they upload) hands that
work to `on_disk`. It is the one answer to "how many threads work on the
disk at once", for every mirror of a push together.

That work is the kernel's and the CPU's, not waiting on a network: a copy
by ``copy_file_range`` or a flush on a local disk keeps a core busy. More
threads than cores then buy nothing and cost a lot. Each system call lets
go of Python's interpreter lock and takes it back; with more runnable
threads than cores they queue for it. Measured here (2 cores, eight folder
mirrors, 23,608 files, asyncio's default pool of six threads): 1.56 million
``futex`` calls, about 66 per file copied, and a third more CPU than with
one thread per core (`bench/RESULTS.md`, 2026-12-02).

So the pool has one thread per core, and at least two, so that one slow
call (a flush to a USB stick) does not stop every other. It is not
asyncio's default pool, which the network side of the program keeps for
itself: a blocking HTTP read-back or a test's helper waiting in a thread
never takes a disk thread, nor a disk thread one of theirs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

DISK_THREADS = max(2, os.cpu_count() or 1)
"""How many threads work on this machine's files at once, for every mirror of a push."""


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """The process's disk threads, started the first time a push needs one."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=DISK_THREADS, thread_name_prefix="mirror-disk"
    )


async def on_disk(work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` in a disk thread; the event loop goes on meanwhile.

    As with `asyncio.to_thread`, a cancelled caller stops waiting at once, and
    the call itself runs to its end in its thread.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(work, *args, **kwargs))
