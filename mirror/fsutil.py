"""Bounded reads and atomic writes of local files.

Every write goes to a temporary file in the destination folder, is flushed
to disk, then renamed over the destination with `os.replace`, so a crash or
kill -9 leaves either the old file or the new one, never half of one.
Every read states how many bytes it is prepared to accept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mirror.errors import NotARegularFileError, StorageError, os_reason


def open_regular(path: Path, *, follow_symlinks: bool = True) -> tuple[int, os.stat_result]:
    """``path`` opened for reading, and its ``fstat``: a regular file only.

    Opened without blocking, so a FIFO planted where a file should be cannot
    hold the run forever, then checked on the descriptor itself, so nothing
    can be swapped in between the check and the reads. Raises the `OSError`
    of the open, or `NotARegularFileError` (the descriptor closed); the caller
    owns the descriptor it gets.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotARegularFileError(f"{path} is not a regular file")
    return fd, info


_GROWTH_READ = 1024 * 1024
"""What `read_bounded` asks for at a time past the size the file had when it was opened."""


def read_bounded(path: Path, *, max_bytes: int, what: str) -> bytes:
    """Read at most ``max_bytes`` from ``path``; a longer file is a `StorageError`.

    The first read asks for the file's size, not the cap: a read of ``max_bytes``
    sets aside that much memory first (64 MB for each of a tree's small roles).
    A FIFO or device where the file should be is refused at once (`open_regular`).
    """
    try:
        fd, info = open_regular(path)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(min(info.st_size, max_bytes) + 1)
            # All of it, unless it grew meanwhile.
            while len(data) <= max_bytes and (
                more := handle.read(min(_GROWTH_READ, max_bytes + 1 - len(data)))
            ):
                data += more
    except FileNotFoundError as error:
        raise StorageError(f"the {what} {path} does not exist") from error
    except NotARegularFileError as error:
        raise StorageError(
            f"the {what} {path} cannot be read (it is not a regular file)",
            hint="Something else stands where the file should be: remove it, put the file back.",
        ) from error
    except OSError as error:
        raise StorageError(f"the {what} {path} cannot be read ({os_reason(error)})") from error
    if len(data) > max_bytes:
        raise StorageError(f"the {what} {path} is larger than {max_bytes} bytes")
    return data


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` atomically when the block succeeds.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise StorageError(f"cannot write into {path.parent} ({os_reason(error)})") from error
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path} ({os_reason(error)})") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def ensure_dir(path: Path) -> None:
    """Create ``path`` and its parents if needed."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"cannot create the folder {path} ({os_reason(error)})") from error


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries, so renames into it survive a power cut."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temp_files(folder: Path, patterns: tuple[str, ...]) -> int:
    """Delete temporary files an interrupted run left behind (only under our lock)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for pattern in patterns:
        for path in folder.rglob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def link_tree(source: Path, destination: Path) -> None:
    """A copy of the folder ``source`` at ``destination`` made of hard links (copies across
    file systems).

    Safe as a scratch copy because mirror never changes a file in place: every
    write is a new file renamed over the old name, which leaves the linked
    original untouched.
    """
    try:
        for folder, _, names in os.walk(source):
            target = destination / Path(folder).relative_to(source)
            target.mkdir(parents=True, exist_ok=True)
            for name in names:
                try:
                    os.link(Path(folder) / name, target / name)
                except OSError:
                    shutil.copy2(Path(folder) / name, target / name)
    except OSError as error:
        raise StorageError(f"cannot copy {source} to {destination} ({error.strerror})") from error
