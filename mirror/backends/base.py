"""The one small interface every mirror backend implements, and the guarantees around it.

A mirror is a dumb static file store; all trust is in the signatures. A
backend implements a few private coroutines (`_put`, `_read`, `_stat`,
`_delete`, and optionally `_list`, `_flush`, `_close`) over paths relative
to the mirror root (``metadata/timestamp.json``, ``targets/articles/<hash>.x.html``).

The public methods of `Backend` wrap them with what no backend may skip,
in the style of python-tuf's ``FetcherInterface.download_file`` over ``_fetch``:

* every call runs under ``timeout_s`` (a hung server is a `TransportError`);
  a download's limit grows with its cap (`CallLimits.for_size`);
* every ``get`` carries a byte cap, enforced here and only here: `_read`
  streams chunks (after the size the store declares, if it declares one),
  `get` counts them as they arrive and raises `OversizeError` the moment the
  cap is passed, so a hostile or broken mirror can neither make us buffer
  without bound nor have its extra bytes retried as if the network had failed;
* every foreign exception becomes a `TransportError` (retryable network
  trouble) or `MirrorAuthError` (credentials refused: retrying will not help),
  translated once with ``raise ... from`` — callers never see an httpx,
  botocore, asyncssh or OS exception;
* ``asyncio.CancelledError`` always propagates.

The one optional capability, ``LISTING``, is declared in
`Backend.capabilities` and detected by the pipeline, which stats every path
without it. A push hands files over in batches (`Backend.put_many`) of the
size each type asks for (`Backend.batch_files`, `Backend.batch_bytes`): one
file per call where each file is its own request (the pipeline's
``limits.concurrency`` spreads them over connections), many where one call
writes several for the price of one (a folder on this machine: one hop to a
disk thread, one fsync per folder). Whether a type replaces a file atomically is not a capability:
nothing would read it. The publishing order keeps readers safe either way
(content-addressed files are new names; only ``timestamp.json`` and
``root.json`` are ever replaced, last), and a reader that catches a pointer
file half-written treats that mirror as failed and tries the next.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import itertools
import os
import stat
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar, Protocol, TypeVar

from mirror.backends.disk import on_disk
from mirror.errors import MirrorAuthError, MirrorError, OversizeError, TransportError

T = TypeVar("T")


class Capability(enum.Enum):
    """Optional things a backend can do."""

    LISTING = "listing"
    """`list` returns every file under a prefix in few calls."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a mirror says about one stored file."""

    path: str
    size: int


@dataclass(frozen=True)
class DeclaredSize:
    """The size a store states for a file before sending it (Content-Length, stat, fstat).

    `_read` may yield one before the first chunk, so that `Backend.get` refuses
    an over-cap file without reading any of its body. It is a claim, not a
    measurement: the bytes that arrive are counted against the cap all the same.
    """

    size: int


@dataclass(frozen=True)
class CallLimits:
    """Bounds on one backend call."""

    timeout_s: float = 60.0
    """Longest call that moves no file data (stat, list, delete, small files)."""
    min_rate_bytes_per_s: int = 256 * 1024
    """Slowest acceptable transfer: a call moving N bytes may take N / rate seconds more."""
    max_get_bytes: int = 64 * 1024 * 1024
    """Cap of a `Backend.get` that names none."""

    def for_size(self, size: int) -> float:
        """Timeout for a call that moves ``size`` bytes."""
        return self.timeout_s + size / self.min_rate_bytes_per_s


class LocalFile(Protocol):
    """A file of this machine to store on a mirror (`mirror.publish_tree.TreeFile` is one)."""

    @property
    def path(self) -> str:
        """Where it goes, relative to the mirror root."""

    @property
    def local(self) -> Path:
        """Where its bytes are."""

    @property
    def size(self) -> int:
        """How many bytes it has."""


def check_path(path: str) -> str:
    """Reject paths that could escape the mirror root; backends get only these.

    Relative, ``/``-separated, no backslash, and no empty, ``.`` or ``..`` part,
    so the path is already in the normal form a POSIX path library would give.
    """
    if (
        not path
        or path[0] == "/"
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"not a safe mirror path: {path!r}")
    return path


LOCAL_READ_CHUNK_BYTES = 1024 * 1024


async def stream_local_file(
    open_file: Callable[[], BinaryIO],
) -> AsyncGenerator[bytes | DeclaredSize, None]:
    """A `_read` over a file on this machine (local and git mirrors).

    One hop to a disk thread (`on_disk`) opens the file (``open_file``), takes its
    size from ``fstat`` and reads its first chunk, so a file of one chunk (every
    metadata file) costs one hop; later chunks take one hop each, and the event loop never
    blocks on the disk. The size comes first: `Backend.get` refuses an over-cap
    file on it, having read at most that one chunk. A short read is the end of a
    regular file. The file is closed at the end, including when `Backend.get`
    stops early.
    """

    def start() -> tuple[BinaryIO, int, bytes]:
        handle = open_file()
        try:
            size = os.fstat(handle.fileno()).st_size
            return handle, size, handle.read(LOCAL_READ_CHUNK_BYTES)
        except BaseException:
            handle.close()
            raise

    handle, size, chunk = await on_disk(start)
    try:
        yield DeclaredSize(size)
        while chunk:
            yield chunk
            if len(chunk) < LOCAL_READ_CHUNK_BYTES:
                return
            chunk = await on_disk(handle.read, LOCAL_READ_CHUNK_BYTES)
    finally:
        handle.close()


LOCAL_LIST_CHUNK = 2048


def folder_files(
    start: str,
    prefix: str,
    *,
    skip_file: Callable[[str], bool],
    skip_folder: Callable[[str], bool],
) -> Generator[ObjectInfo, None, None]:
    """Every regular file whose mirror path starts with ``prefix``, walked from the folder
    ``start`` (the one that holds the prefix's folder part), a folder entry at a time, names
    joined as text. Linked folders are not entered and linked files are not listed: what a
    link shows is not the mirror's. ``skip_file`` and ``skip_folder`` take names (a write's
    temporary file, a repository's own folder)."""
    folder = prefix.rpartition("/")[0]
    pending = [(start, f"{folder}/" if folder else "")]
    while pending:
        here, shown = pending.pop()
        try:
            entries = os.scandir(here)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                path = f"{shown}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    inside = f"{path}/"
                    if not skip_folder(entry.name) and (
                        inside.startswith(prefix) or prefix.startswith(inside)
                    ):
                        pending.append((entry.path, inside))
                    continue
                if skip_file(entry.name) or not path.startswith(prefix):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while we walked
                    continue
                if stat.S_ISREG(info.st_mode):
                    yield ObjectInfo(path=path, size=info.st_size)


async def walk_in_thread(walk: Generator[T, None, None]) -> AsyncGenerator[T, None]:
    """A `_list` over a walk of this machine's folders (local and git mirrors).

    The walk runs in a disk thread, `LOCAL_LIST_CHUNK` entries per hop, and each
    chunk is handed on before the next is read: a mirror of 120,000 files is never
    held as one list, and the event loop never blocks on the disk.
    """
    try:
        while chunk := await on_disk(lambda: list(itertools.islice(walk, LOCAL_LIST_CHUNK))):
            for item in chunk:
                yield item
    finally:
        walk.close()  # a listing stopped early closes the folder it was in


class Backend(abc.ABC):
    """A mirror's storage. Subclasses implement the underscored coroutines."""

    type_name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    batch_files: ClassVar[int] = 1
    """At most this many files in one `put_many` call (1: every file is its own call)."""
    batch_bytes: ClassVar[int] = 0
    """At most this many bytes in one `put_many` call, unless a single file is larger."""

    def __init__(self, name: str, *, limits: CallLimits | None = None) -> None:
        self.name = name
        self.limits = limits or CallLimits()

    # --- what subclasses implement ---------------------------------------------
    @abc.abstractmethod
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        """Store ``source`` (a local file or bytes) at ``path``, creating folders as needed."""

    async def _put_many(self, files: Sequence[LocalFile]) -> None:
        """Store every file of ``files`` (by default `_put` each in turn)."""
        for file in files:
            await self._put(file.path, file.local, size=file.size)

    @abc.abstractmethod
    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        """Stream the file at ``path``: optionally one `DeclaredSize`, then its bytes in chunks.

        Raise `MirrorNotFoundError` if there is no such file. Chunks should be
        small (a MiB at most): `get` stops at the first chunk that passes its
        cap, so memory is bounded by the cap plus one chunk. The generator is
        closed as soon as `get` has seen enough, which must release the
        connection or file it holds (``async with`` / ``finally`` inside it).
        """
        raise NotImplementedError
        yield  # pragma: no cover  (makes this an async generator)

    @abc.abstractmethod
    async def _stat(self, path: str) -> ObjectInfo | None:
        """Size of the file at ``path``, or None if there is none."""

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every file whose path starts with ``prefix`` (only with `Capability.LISTING`)."""
        raise NotImplementedError
        yield  # pragma: no cover  (makes this an async generator)

    @abc.abstractmethod
    async def _delete(self, path: str) -> None:
        """Remove the file; a missing file is not an error."""

    async def _flush(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Make everything put so far visible to readers (git: commit and push)."""

    async def _close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release connections."""

    def _translate(self, error: Exception) -> MirrorError:
        """Turn a foreign exception into our error tree; backends refine this."""
        if isinstance(error, PermissionError):
            return MirrorAuthError(f"mirror {self.name}: permission denied ({error})")
        return TransportError(f"mirror {self.name}: {error.__class__.__name__}: {error}")

    # --- the guarded public interface --------------------------------------------
    async def _guard(
        self, what: str, call: Callable[[], Awaitable[T]], *, timeout_s: float | None = None
    ) -> T:
        limit_s = self.limits.timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit_s):
                return await call()
        except MirrorError:
            raise
        except TimeoutError as error:
            raise TransportError(
                f"mirror {self.name}: {what} took longer than {limit_s:g} s"
            ) from error
        except asyncio.CancelledError:
            raise
        except Exception as error:  # translated once, here, at the boundary
            raise self._translate(error) from error

    async def put(self, path: str, source: Path | bytes, *, size: int) -> None:
        """Store a file; see `_put`."""
        check_path(path)
        await self._guard(
            f"uploading {path}",
            lambda: self._put(path, source, size=size),
            timeout_s=self.limits.for_size(size),
        )

    async def put_many(self, files: Sequence[LocalFile]) -> None:
        """Store several files of this machine in one call, timed as one transfer of their total.

        Each file is stored whole or not at all, but not the batch: after a failure
        some may be stored, and the caller retries the batch (storing a file again,
        with the same bytes, is harmless).
        """
        for file in files:
            check_path(file.path)
        first = files[0].path if files else "nothing"
        more = f" and {len(files) - 1} more files" if len(files) > 1 else ""
        await self._guard(
            f"uploading {first}{more}",
            lambda: self._put_many(files),
            timeout_s=self.limits.for_size(sum(file.size for file in files)),
        )

    async def get(self, path: str, *, max_bytes: int | None = None) -> bytes:
        """Fetch a file, never more than ``max_bytes`` (default: the call limit).

        More bytes than that, declared or arriving, is `OversizeError`: bad data
        from this mirror, which no retry mends.
        """
        check_path(path)
        cap = self.limits.max_get_bytes if max_bytes is None else max_bytes
        return await self._guard(
            f"downloading {path}",
            lambda: self._download(path, cap),
            timeout_s=self.limits.for_size(cap),
        )

    async def _download(self, path: str, cap: int) -> bytes:
        """Collect `_read`'s chunks, refusing the first byte over ``cap`` (the one place it is)."""
        body = bytearray()
        async with contextlib.aclosing(self._read(path)) as pieces:
            async for piece in pieces:
                if isinstance(piece, DeclaredSize):
                    if piece.size > cap:
                        raise self._oversize(
                            f"{path} is {piece.size} bytes, over the cap of {cap} bytes"
                        )
                elif len(body) + len(piece) > cap:
                    # Leaving the loop closes `_read`: nothing more is read or kept.
                    raise self._oversize(f"{path} is longer than the cap of {cap} bytes")
                else:
                    body += piece
        return bytes(body)

    def _oversize(self, what: str) -> OversizeError:
        return OversizeError(
            f"mirror {self.name}: {what}",
            hint="The mirror sends more than this file may hold; check what it stores there.",
        )

    async def stat(self, path: str) -> ObjectInfo | None:
        """Size of a stored file, or None."""
        check_path(path)
        return await self._guard(f"checking {path}", lambda: self._stat(path))

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every stored file under ``prefix`` (requires `Capability.LISTING`)."""
        found: list[ObjectInfo] = []
        await self.scan(prefix, found.append)
        return found

    async def scan(self, prefix: str, each: Callable[[ObjectInfo], None]) -> None:
        """`list`, one file at a time: ``each`` sees every stored file under ``prefix`` as the
        listing arrives, so a caller keeping a little of each does not hold them all."""
        if Capability.LISTING not in self.capabilities:
            raise NotImplementedError(f"{self.type_name} mirrors cannot list files")

        async def walk() -> None:
            async for info in self._list(prefix):
                each(info)

        await self._guard(f"listing {prefix or 'the mirror'}", walk)

    async def delete(self, path: str) -> None:
        """Remove a file (missing is fine)."""
        check_path(path)
        await self._guard(f"deleting {path}", lambda: self._delete(path))

    async def flush(self) -> None:
        """Publish what was put so far; the pipeline calls it after each publishing phase."""
        await self._guard("publishing", self._flush)

    async def close(self) -> None:
        """Release connections; errors while closing are not worth failing a run."""
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                await self._close()
        except (Exception, TimeoutError):  # noqa: S110 - best effort by design
            pass
