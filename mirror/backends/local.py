"""The ``local`` mirror type: a folder on this machine (a web server's docroot, a USB stick).

Settings::

    local:
      path: /srv/www/news      # relative paths are taken from the config file's folder

Every write goes to a temporary file in the destination folder, is flushed
to disk and renamed over the destination with `os.replace`, so a reader (or
a web server serving the folder) sees the old file or the new one, never
half of one. Blocking file work runs in the push's disk threads
(`mirror.backends.disk`, one per core for every mirror together), files are copied
by the kernel (`os.copy_file_range`: no bytes through Python, a reflink
where the file system has them) and read in chunks, so memory stays flat.

A push hands over files in batches (`batch_files`, `batch_bytes`): one hop
to a disk thread per batch, each folder opened once per batch, and each
folder that received files (or new folders) flushed once, after its files
were renamed into it and before the call returns. Each file's own data is
flushed before its rename, so after a power cut a name holds the old file
or the whole new one.

Paths reaching the backend were already checked by `check_path` (no ``..``,
no absolute paths). A folder can still hold symbolic links, planted by
whoever else writes there. Writes walk from the root one folder at a time
without following links (``O_NOFOLLOW`` relative to the folder above);
where a link is met, the path is resolved and must stay inside the resolved
root, as every read's path must, so a link cannot make us write ``/etc/...``
or read a file outside the mirror. A link at a file's own name is replaced
by the file, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mirror.backends.base import (
    Backend,
    CallLimits,
    Capability,
    DeclaredSize,
    LocalFile,
    ObjectInfo,
    check_path,
    folder_files,
    stream_local_file,
    walk_in_thread,
)
from mirror.backends.disk import on_disk
from mirror.backends.registry import BackendType, register
from mirror.errors import (
    MirrorAuthError,
    MirrorError,
    MirrorNotFoundError,
    StorageError,
    TransportError,
)
from mirror.yamlnodes import Node, required

COPY_CHUNK_BYTES = 1024 * 1024
TEMP_PREFIX = ".mirror-tmp-"
"""Temporary files being written start with this; `list` never reports them."""
FILE_MODE = 0o644
"""Readable by a web server serving the folder."""
BATCH_FILES = 64
BATCH_BYTES = 16 * 1024 * 1024
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ETXTBSY, errno.EBADF}
)
"""What `os.copy_file_range` says where it cannot copy these two files (then: read and write)."""


@dataclass(frozen=True)
class LocalSettings:
    """Where a local mirror keeps its files."""

    path: Path


def parse_settings(node: Node, base_dir: Path) -> LocalSettings:
    """Read a ``local:`` block; ``path`` is relative to the config file's folder."""
    fields = node.mapping(("path",))
    text = required(fields, "path", node).text()
    return LocalSettings(path=(base_dir / Path(text).expanduser()).absolute())


def create(name: str, settings: LocalSettings, base_dir: Path, limits: CallLimits) -> LocalBackend:
    """A backend writing into ``settings.path``."""
    return LocalBackend(name, settings.path, limits=limits)


class LocalBackend(Backend):
    """A mirror that is a folder on this machine."""

    type_name = "local"
    capabilities = frozenset({Capability.LISTING})
    batch_files = BATCH_FILES
    batch_bytes = BATCH_BYTES

    def __init__(self, name: str, root: Path, *, limits: CallLimits | None = None) -> None:
        super().__init__(name, limits=limits)
        self.root = root
        self._temp_prefix = f"{TEMP_PREFIX}{secrets.token_hex(6)}-"
        self._temp_count = itertools.count()  # `next` is atomic: batches run in several threads

    # --- path safety -------------------------------------------------------------
    def _real_root(self) -> Path:
        return Path(os.path.realpath(self.root))

    def _resolve(self, path: str) -> Path:
        """The file for mirror path ``path``, refusing links that lead outside the root.

        `os.path.realpath` follows every link that exists and keeps the rest
        of the path as written; since the path has no ``..``, a result outside
        the real root can only come from a symbolic link pointing out.
        """
        root = self._real_root()
        target = Path(os.path.realpath(root / path))
        if not target.is_relative_to(root) or target == root:
            raise TransportError(
                f"mirror {self.name}: {path} leads outside the mirror folder "
                "through a symbolic link",
                hint=f"Remove the symbolic links from {self.root}.",
            )
        return target

    # --- the interface -------------------------------------------------------------
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        await on_disk(self._write_files, [(path, source, size)])

    async def _put_many(self, files: Sequence[LocalFile]) -> None:
        await on_disk(self._write_files, [(f.path, f.local, f.size) for f in files])

    def _write_files(self, files: Sequence[tuple[str, Path | bytes, int]]) -> None:
        """Write each file atomically, then flush each folder written into, once."""
        with _Folders(self) as folders:
            for path, source, size in files:
                folder, _, name = path.rpartition("/")
                folder_fd = folders.open(folder)
                try:
                    self._write_one(folder_fd, name, source, size)
                except OSError as error:  # name the whole path, not the name in its folder
                    raise OSError(error.errno, error.strerror, str(self.root / path)) from error
                folders.written.add(folder_fd)
            folders.flush()

    def _write_one(self, folder_fd: int, name: str, source: Path | bytes, size: int) -> None:
        if isinstance(source, bytes):
            self._replace(folder_fd, name, lambda fd: _write_all(fd, source))
            return
        reader_fd = _open_source(source)
        try:
            self._replace(folder_fd, name, lambda fd: _copy_file(reader_fd, fd, source, size))
        finally:
            os.close(reader_fd)

    def _replace(self, folder_fd: int, name: str, fill: Callable[[int], None]) -> None:
        """A temporary file in the folder, filled, flushed, then renamed over ``name``."""
        while True:
            temp = f"{self._temp_prefix}{next(self._temp_count)}"
            try:
                fd = os.open(temp, TEMP_FLAGS, FILE_MODE, dir_fd=folder_fd)
                break
            except FileExistsError:  # left by a run killed with our very tag: next name
                continue
        try:
            try:
                fill(fd)
                os.fdatasync(fd)
                os.fchmod(fd, FILE_MODE)  # whatever the umask: a web server must read it
            finally:
                os.close(fd)
            os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder_fd)
            raise

    def _open_linked_folder(self, folder: str) -> int:
        """The folder ``folder``, reached through a symbolic link: only if it stays inside."""
        target = self._resolve(folder)
        target.mkdir(parents=True, exist_ok=True)
        # Someone may have planted a link while we created folders; check again.
        return os.open(self._resolve(folder), FOLDER_FLAGS & ~os.O_NOFOLLOW)

    def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        return stream_local_file(lambda: self._open_regular(path))

    def _open_regular(self, path: str) -> BinaryIO:
        missing = MirrorNotFoundError(f"mirror {self.name}: there is no file {path}")
        try:
            fd = self._open_without_links(path)
            if fd is None:  # a link on the way: followed only while it stays inside
                fd = os.open(self._resolve(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise missing from error
        handle = os.fdopen(fd, "rb")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise MirrorNotFoundError(f"mirror {self.name}: {path} is not a regular file")
        except BaseException:
            handle.close()
            raise
        return handle

    def _open_without_links(self, path: str) -> int | None:
        """``path`` opened for reading, walking from the root one name at a time without
        following a link; None when a link (or a file where a folder should be) is met."""
        *folders, name = path.split("/")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for folder in folders:
                inner = os.open(folder, FOLDER_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            return os.open(name, flags, dir_fd=fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                return None
            raise
        finally:
            os.close(fd)

    async def _stat(self, path: str) -> ObjectInfo | None:
        return await on_disk(self._stat_sync, path)

    def _stat_sync(self, path: str) -> ObjectInfo | None:
        target = self._resolve(path)
        try:
            info = target.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return ObjectInfo(path=path, size=info.st_size)

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        async for info in walk_in_thread(self._walk(prefix)):
            yield info

    def _walk(self, prefix: str) -> Generator[ObjectInfo, None, None]:
        folder = prefix.rpartition("/")[0]
        if folder:
            check_path(folder)
            start = self._resolve(folder)
        else:
            start = self._real_root()
        yield from folder_files(
            os.fspath(start),
            prefix,
            skip_file=lambda name: name.startswith(TEMP_PREFIX),
            skip_folder=lambda name: False,
        )

    async def _delete(self, path: str) -> None:
        await on_disk(self._delete_sync, path)

    def _delete_sync(self, path: str) -> None:
        target = self._resolve(path)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            target.unlink()

    def _translate(self, error: Exception) -> MirrorError:
        if isinstance(error, PermissionError):
            return MirrorAuthError(
                f"mirror {self.name}: permission denied on {error.filename or self.root}"
            )
        if isinstance(error, OSError):
            return TransportError(
                f"mirror {self.name}: {error.strerror or error} ({error.filename or self.root})"
            )
        return super()._translate(error)


class _Folders:
    """The folders one batch writes into, each opened once, from the root down, never
    through a link; those written into are flushed once (`flush`), all closed at the end."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.fds: dict[str, int] = {}
        self.written: set[int] = set()

    def __enter__(self) -> _Folders:
        root = self.backend.root
        try:
            self.fds[""] = os.open(
                root, FOLDER_FLAGS & ~os.O_NOFOLLOW
            )  # links above the root: fine
        except FileNotFoundError:
            root.mkdir(parents=True, exist_ok=True)
            self.fds[""] = os.open(root, FOLDER_FLAGS & ~os.O_NOFOLLOW)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds.values():
            os.close(fd)

    def open(self, folder: str) -> int:
        """The folder at mirror path ``folder`` ("" is the root), created if missing."""
        fd = self.fds.get(folder)
        if fd is not None:
            return fd
        parent, _, name = folder.rpartition("/")
        parent_fd = self.open(parent)
        try:
            fd = os.open(name, FOLDER_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):  # another batch made it just now
                os.mkdir(name, dir_fd=parent_fd)
            self.written.add(parent_fd)  # the new folder's name must survive a power cut too
            fd = self._open_once_more(folder, name, parent_fd)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            fd = self.backend._open_linked_folder(folder)
        self.fds[folder] = fd
        return fd

    def _open_once_more(self, folder: str, name: str, parent_fd: int) -> int:
        try:
            return os.open(name, FOLDER_FLAGS, dir_fd=parent_fd)
        except OSError as error:  # replaced by a link since we made it
            if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            return self.backend._open_linked_folder(folder)

    def flush(self) -> None:
        """Flush every folder that got new names, so the renames survive a power cut."""
        for fd in self.written:
            os.fsync(fd)
        self.written.clear()


def _open_source(source: Path) -> int:
    try:
        return os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        # Our own file is missing: a local problem, not the mirror's.
        raise StorageError(f"the file {source} cannot be read ({error.strerror})") from error


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_file(reader_fd: int, writer_fd: int, source: Path, size: int) -> None:
    """Copy the whole of ``source`` (``size`` bytes, as the push planned) by the kernel."""
    actual = os.fstat(reader_fd).st_size
    if actual != size:
        raise StorageError(
            f"the file {source} changed while it was pushed ({actual} bytes, not {size})",
            hint="Something else writes into mirror's output folder; stop it and push again.",
        )
    copied = 0
    while copied < size:
        try:
            sent = os.copy_file_range(reader_fd, writer_fd, size - copied)
        except OSError as error:
            if copied or error.errno not in NO_KERNEL_COPY:
                raise
            _copy_chunks(reader_fd, writer_fd, source)
            return
        if sent == 0:
            raise StorageError(f"the file {source} became shorter while it was pushed")
        copied += sent


def _copy_chunks(reader_fd: int, writer_fd: int, source: Path) -> None:
    while True:
        try:
            chunk = os.read(reader_fd, COPY_CHUNK_BYTES)
        except OSError as error:
            raise StorageError(f"the file {source} cannot be read ({error.strerror})") from error
        if not chunk:
            return
        _write_all(writer_fd, chunk)


register(
    BackendType(
        name="local",
        settings_key="local",
        parse_settings=parse_settings,
        create=create,
        public_read_hint=(
            "a web server (or file://) must serve this folder at public_url, to anyone"
        ),
    )
)
