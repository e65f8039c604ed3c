"""Which runs on one output folder may overlap, enforced with `flock`.

* **Building** (``build``, the build phase of ``sync``) rewrites the publish
  tree: ``timestamp.json``, ``root.json``, new metadata, and pruning. It holds
  the tree lock *exclusively*.
* **Pushing** only reads the tree. It holds the tree lock *shared*, so any
  number of pushes (shards) run at once, but never while a build rewrites the
  tree under them (a push could otherwise upload a new ``timestamp.json``
  that points at metadata it never uploaded). A push waits, bounded, for a
  running build to end, so ``push --shard 1/N`` started with ``sync --shard
  0/N`` pushes the fresh tree.
* **One mirror** is pushed by one run at a time: each pushed mirror's own lock
  is exclusive, so overlapping selections (two shards with different N, a
  manual ``--mirror`` during a timer run) fail fast instead of interleaving
  uploads and retention deletes on the same mirror.

Every lock dies with its process, so kill -9 never leaves one stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from mirror import fsutil
from mirror.errors import StorageError
from mirror.output_folder import OutputFolder

POLL_S = 0.2


@contextlib.contextmanager
def _flock(path: Path, *, shared: bool, wait_s: float, what: str) -> Iterator[int]:
    fsutil.ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StorageError(f"cannot open the lock file {path} ({error.strerror})") from error
    try:
        lock(fd, shared=shared, wait_s=wait_s, path=path, what=what)
        yield fd
    finally:
        os.close(fd)


def lock(fd: int, *, shared: bool, wait_s: float, path: Path, what: str) -> None:
    """Take (or convert to) a shared/exclusive lock on ``fd``, waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError as error:
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"another mirror run is already {what} in {path.parent}",
                    hint="Wait for it to finish; runs that would conflict never overlap.",
                ) from error
            time.sleep(POLL_S)


@contextlib.contextmanager
def exclusive(path: Path, *, wait_s: float) -> Iterator[None]:
    """A short exclusive lock (e.g. around a read-merge-write of a shared state file)."""
    with _flock(path, shared=False, wait_s=wait_s, what=f"writing {path.name}"):
        yield


@contextlib.contextmanager
def building(output: OutputFolder, *, wait_s: float = 0.0) -> Iterator[None]:
    """The exclusive tree lock, for a build (``mirror build``) alone."""
    with _flock(output.tree_lock, shared=False, wait_s=wait_s, what="building or pushing"):
        yield


@contextlib.contextmanager
def pushing(output: OutputFolder, mirror_names: Sequence[str], *, wait_s: float) -> Iterator[None]:
    """Shared tree lock (waiting up to ``wait_s`` for a build) and each mirror's own lock."""
    with (
        _flock(output.tree_lock, shared=True, wait_s=wait_s, what="building"),
        mirrors_locked(output, mirror_names),
    ):
        yield


@contextlib.contextmanager
def mirrors_locked(output: OutputFolder, mirror_names: Sequence[str]) -> Iterator[None]:
    """Each named mirror's exclusive lock; fails at once if another run pushes one of them."""
    with contextlib.ExitStack() as stack:
        for name in sorted(mirror_names):  # one order everywhere: no lock-order deadlock
            stack.enter_context(
                _flock(
                    output.mirror_lock(name),
                    shared=False,
                    wait_s=0,
                    what=f"pushing to mirror {name}",
                )
            )
        yield


@contextlib.contextmanager
def building_then_pushing(
    output: OutputFolder, mirror_names: Sequence[str], *, wait_s: float
) -> Iterator[Callable[[], None]]:
    """For ``sync``: exclusive tree lock for the build, then the caller downgrades it.

    Yields a function that converts the lock to shared (letting waiting push
    shards start) and takes the mirrors' locks; call it when the build is done.
    """
    path = output.tree_lock
    with (
        _flock(path, shared=False, wait_s=wait_s, what="building or pushing") as fd,
        contextlib.ExitStack() as stack,
    ):

        def downgrade() -> None:
            lock(fd, shared=True, wait_s=0, path=path, what="building")
            stack.enter_context(mirrors_locked(output, mirror_names))

        yield downgrade
