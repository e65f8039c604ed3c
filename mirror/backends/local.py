"""The ``local`` mirror type: a folder on this machine (a web server's docroot, a USB stick).

Settings::

    local:
      path: /srv/www/news      # relative paths are taken from the config file's folder

Every write goes to a temporary file in the destination folder, is flushed
to disk and renamed over the destination with `os.replace`, so a reader (or
a web server serving the folder) sees the old file or the new one, never
half of one. Blocking file work runs in a worker thread, and files are
copied and read in chunks, so memory stays flat.

Paths reaching the backend were already checked by `check_path` (no ``..``,
no absolute paths). A folder can still hold symbolic links, planted by
whoever else writes there: every path is resolved and must stay inside the
resolved root, so a link cannot make us write ``/etc/...`` or read a file
outside the mirror.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mirror.backends.base import (
    Backend,
    CallLimits,
    Capability,
    DeclaredSize,
    ObjectInfo,
    check_path,
    stream_local_file,
)
from mirror.backends.registry import BackendType, register
from mirror.errors import (
    MirrorAuthError,
    MirrorError,
    MirrorNotFoundError,
    StorageError,
    TransportError,
)
from mirror.fsutil import fsync_dir
from mirror.yamlnodes import Node, required

COPY_CHUNK_BYTES = 1024 * 1024
TEMP_PREFIX = ".mirror-tmp-"
"""Temporary files being written start with this; `list` never reports them."""
FILE_MODE = 0o644
"""Readable by a web server serving the folder."""


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

    def __init__(self, name: str, root: Path, *, limits: CallLimits | None = None) -> None:
        super().__init__(name, limits=limits)
        self.root = root

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
        await asyncio.to_thread(self._put_sync, path, source)

    def _put_sync(self, path: str, source: Path | bytes) -> None:
        target = self._resolve(path)
        with contextlib.ExitStack() as stack:
            reader: BinaryIO | None = None
            if isinstance(source, Path):
                try:
                    reader = stack.enter_context(source.open("rb"))
                except OSError as error:
                    # Our own file is missing: a local problem, not the mirror's.
                    raise StorageError(
                        f"the file {source} cannot be read ({error.strerror})"
                    ) from error
            target.parent.mkdir(parents=True, exist_ok=True)
            # Someone may have planted a link while we created folders; check again.
            target = self._resolve(path)
            fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    if isinstance(source, bytes):
                        handle.write(source)
                    elif reader is not None:
                        _copy_chunks(reader, handle, source)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(temp_name, FILE_MODE)
                os.replace(temp_name, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
                raise
        fsync_dir(target.parent)

    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        handle = await asyncio.to_thread(self._open_regular, path)
        async with contextlib.aclosing(stream_local_file(handle)) as pieces:
            async for piece in pieces:
                yield piece

    def _open_regular(self, path: str) -> BinaryIO:
        target = self._resolve(path)
        try:
            handle = target.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise MirrorNotFoundError(f"mirror {self.name}: there is no file {path}") from error
        try:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise MirrorNotFoundError(f"mirror {self.name}: {path} is not a regular file")
        except BaseException:
            handle.close()
            raise
        return handle

    async def _stat(self, path: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self._stat_sync, path)

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
        for info in await asyncio.to_thread(self._list_sync, prefix):
            yield info

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        folder, _, _ = prefix.rpartition("/")
        if folder:
            check_path(folder)
            start = self._resolve(folder)
        else:
            start = self._real_root()
        found: list[ObjectInfo] = []
        # os.walk does not descend into linked folders; linked files are skipped below.
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            here = Path(dirpath)
            for filename in sorted(filenames):
                if filename.startswith(TEMP_PREFIX):
                    continue
                relative = (here / filename).relative_to(start).as_posix()
                mirror_path = f"{folder}/{relative}" if folder else relative
                if not mirror_path.startswith(prefix):
                    continue
                try:
                    info = os.lstat(here / filename)
                except FileNotFoundError:  # deleted while we walked
                    continue
                if stat.S_ISREG(info.st_mode):
                    found.append(ObjectInfo(path=mirror_path, size=info.st_size))
        return found

    async def _delete(self, path: str) -> None:
        await asyncio.to_thread(self._delete_sync, path)

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


def _copy_chunks(reader: BinaryIO, writer: BinaryIO, source: Path) -> None:
    while True:
        try:
            chunk = reader.read(COPY_CHUNK_BYTES)
        except OSError as error:
            raise StorageError(f"the file {source} cannot be read ({error.strerror})") from error
        if not chunk:
            return
        writer.write(chunk)


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
