"""The one small interface every mirror backend implements, and the guarantees around it.

A mirror is a dumb static file store; all trust is in the signatures. A
backend implements six private coroutines (`_put`, `_get`, `_stat`,
`_delete`, `_close`, and optionally `_list`) over paths relative to the
mirror root (``metadata/timestamp.json``, ``targets/articles/<hash>.x.html``).

The public methods of `Backend` wrap them with what no backend may skip,
in the style of python-tuf's fetcher base class:

* every call runs under ``timeout_s`` (a hung server is a `TransportError`);
* every ``get`` carries a byte cap, enforced here again on the result;
* every foreign exception becomes a `TransportError` (retryable network
  trouble) or `MirrorAuthError` (credentials refused: retrying will not help),
  translated once with ``raise ... from`` — callers never see an httpx,
  botocore, asyncssh or OS exception;
* ``asyncio.CancelledError`` always propagates.

Optional capabilities are declared in `Backend.capabilities` and detected
by the pipeline, with a fallback for each: without ``LISTING`` it stats
every path, without ``ATOMIC_PUT`` it never overwrites a file readers
depend on except through the publishing order (content-addressed files are
new names; only ``timestamp.json`` and ``root.json`` are ever replaced).
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar, TypeVar

from mirror.errors import MirrorAuthError, MirrorError, TransportError

T = TypeVar("T")


class Capability(enum.Enum):
    """Optional things a backend can do."""

    LISTING = "listing"
    """`list` returns every file under a prefix in few calls."""
    ATOMIC_PUT = "atomic-put"
    """A reader never sees a partially written file (temp name + rename, or object store)."""
    CONDITIONAL_PUT = "conditional-put"
    """`put(..., if_absent=True)` is enforced by the server."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a mirror says about one stored file."""

    path: str
    size: int


@dataclass(frozen=True)
class CallLimits:
    """Bounds on one backend call."""

    timeout_s: float = 60.0
    """Longest call that moves no file data (stat, list, delete, small files)."""
    min_rate_bytes_per_s: int = 256 * 1024
    """Slowest acceptable transfer: a call moving N bytes may take N / rate seconds more."""
    max_get_bytes: int = 64 * 1024 * 1024

    def for_size(self, size: int) -> float:
        """Timeout for a call that moves ``size`` bytes."""
        return self.timeout_s + size / self.min_rate_bytes_per_s


def check_path(path: str) -> str:
    """Reject paths that could escape the mirror root; backends get only these."""
    posix = PurePosixPath(path)
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
        or posix.as_posix() != path
    ):
        raise ValueError(f"not a safe mirror path: {path!r}")
    return path


class Backend(abc.ABC):
    """A mirror's storage. Subclasses implement the underscored coroutines."""

    type_name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, name: str, *, limits: CallLimits | None = None) -> None:
        self.name = name
        self.limits = limits or CallLimits()

    # --- what subclasses implement ---------------------------------------------
    @abc.abstractmethod
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        """Store ``source`` (a local file or bytes) at ``path``, creating folders as needed."""

    @abc.abstractmethod
    async def _get(self, path: str, *, max_bytes: int) -> bytes:
        """Return the file's bytes.

        Raise `MirrorNotFoundError` if there is no such file, and `TransportError`
        as soon as more than ``max_bytes`` arrive (never buffer past the cap).
        """

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

    async def get(self, path: str, *, max_bytes: int | None = None) -> bytes:
        """Fetch a file, never more than ``max_bytes`` (default: the call limit)."""
        check_path(path)
        cap = self.limits.max_get_bytes if max_bytes is None else max_bytes
        data = await self._guard(
            f"downloading {path}",
            lambda: self._get(path, max_bytes=cap),
            timeout_s=self.limits.for_size(cap),
        )
        if len(data) > cap:
            raise TransportError(f"mirror {self.name}: {path} is longer than {cap} bytes")
        return data

    async def stat(self, path: str) -> ObjectInfo | None:
        """Size of a stored file, or None."""
        check_path(path)
        return await self._guard(f"checking {path}", lambda: self._stat(path))

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every stored file under ``prefix`` (requires `Capability.LISTING`)."""
        if Capability.LISTING not in self.capabilities:
            raise NotImplementedError(f"{self.type_name} mirrors cannot list files")

        async def collect() -> list[ObjectInfo]:
            return [info async for info in self._list(prefix)]

        return await self._guard(f"listing {prefix or 'the mirror'}", collect)

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
