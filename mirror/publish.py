"""Push the publish tree to every mirror at once, in the safe order, and report.

For each mirror, in its own task (one broken mirror never cancels or delays
the others beyond its own deadline):

1. **Inventory** what the mirror already has: one listing where the backend
   can list, else a stat per file.
2. **Upload what it lacks**, phase by phase — content-addressed targets,
   then versioned metadata, then the pointers (``root.json``, and
   ``timestamp.json`` last) — flushing after each phase and never starting a
   phase while the previous one has a failure. A reader polling the mirror
   therefore never sees metadata that points at content it lacks.
3. **Read back** through the public URL and verify as a reader (`readback`).

Every backend call has a timeout (in the backend) and is retried on
transport errors with backoff and jitter (`retry`), all under the mirror's
deadline. The result of each mirror is a `PushResult`, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mirror.backends import Backend, CallLimits, Capability, ObjectInfo, backend_type
from mirror.config import Config, MirrorSettings
from mirror.errors import MirrorError, OversizeError, TransportError
from mirror.readback import read_back
from mirror.retry import RetryPolicy, Sleep, with_retries

T = TypeVar("T")
READ_BACKS_AT_ONCE = 1

POINTER_ORDER = ("metadata/root.json", "metadata/timestamp.json")
"""Mutable files, uploaded last in this order: ``timestamp.json`` is the switch readers see."""


class Phase(enum.IntEnum):
    """Publishing phases, in the order every mirror receives them."""

    TARGETS = 1
    METADATA = 2
    POINTERS = 3


@dataclass(frozen=True)
class TreeFile:
    """One file of the publish tree."""

    path: str
    local: Path
    size: int
    phase: Phase


@dataclass(frozen=True)
class PushResult:
    """What happened on one mirror."""

    mirror: str
    type: str
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    skipped_files: int = 0
    skipped_bytes: int = 0
    retries: int = 0
    seconds: float = 0.0
    pushed: bool = False
    verified: bool | None = None
    """None when read-back was not asked for."""
    error: str | None = None
    error_kind: str | None = None
    planned: tuple[str, ...] = ()
    """With --dry-run: the paths that would be uploaded, in order."""
    deleted_files: int = 0
    """Old files removed under the retention policy, after the new timestamp was live."""
    retention_note: str | None = None
    """Why old files were kept, when they were."""

    @property
    def ok(self) -> bool:
        """Pushed, and verified if read-back ran."""
        return self.pushed and self.verified is not False and self.error is None

    def as_json(self) -> dict[str, Any]:
        """The JSON report entry (no secrets: only names, counts and messages)."""
        return {
            "mirror": self.mirror,
            "type": self.type,
            "uploaded_files": self.uploaded_files,
            "uploaded_bytes": self.uploaded_bytes,
            "skipped_files": self.skipped_files,
            "skipped_bytes": self.skipped_bytes,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "pushed": self.pushed,
            "verified": self.verified,
            "error": self.error,
            "error_kind": self.error_kind,
            "deleted_files": self.deleted_files,
            "retention_note": self.retention_note,
        }


class Progress(Protocol):
    """Where the pipeline reports progress (rich bars on a terminal, plain lines elsewhere)."""

    def mirror_planned(self, mirror: str, files: int, size: int) -> None:
        """Inventory done: ``files`` files of ``size`` bytes to upload."""

    def file_uploaded(self, mirror: str, size: int) -> None:
        """One file is on the mirror."""

    def mirror_done(self, result: PushResult) -> None:
        """The mirror's task finished."""


class SilentProgress:
    """Reports nothing."""

    def mirror_planned(self, mirror: str, files: int, size: int) -> None:
        """Ignored."""

    def file_uploaded(self, mirror: str, size: int) -> None:
        """Ignored."""

    def mirror_done(self, result: PushResult) -> None:
        """Ignored."""


def scan_tree(publish_dir: Path) -> tuple[TreeFile, ...]:
    """Every file of the publish tree, in publishing order."""
    files: list[TreeFile] = []
    for folder, _, names in os.walk(publish_dir):
        for name in names:
            if name.startswith("."):
                continue  # temporary files of an interrupted write
            local = Path(folder) / name
            path = local.relative_to(publish_dir).as_posix()
            if path.startswith("targets/"):
                phase = Phase.TARGETS
            elif path in POINTER_ORDER:
                phase = Phase.POINTERS
            elif path.startswith("metadata/"):
                phase = Phase.METADATA
            else:
                continue
            files.append(TreeFile(path, local, local.stat().st_size, phase))

    def order(f: TreeFile) -> tuple[int, int, str]:
        pointer_rank = POINTER_ORDER.index(f.path) if f.phase is Phase.POINTERS else 0
        return (f.phase, pointer_rank, f.path)

    return tuple(sorted(files, key=order))


@dataclass
class _Counters:
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    skipped_files: int = 0
    skipped_bytes: int = 0
    retries: int = 0
    deleted_files: int = 0
    retention_note: str | None = None
    planned: list[str] = field(default_factory=list)
    uploaded: list[tuple[str, int]] = field(default_factory=list)
    """(path, size) of each file uploaded in this run, for the read-back."""


class MirrorPush:
    """The push to one mirror."""

    def __init__(
        self,
        mirror: MirrorSettings,
        backend: Backend,
        files: Sequence[TreeFile],
        *,
        progress: Progress,
        dry_run: bool,
        max_delete: int = 1000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.max_delete = max_delete
        self.sleep = sleep
        self.mirror = mirror
        self.backend = backend
        self.files = files
        self.progress = progress
        self.dry_run = dry_run
        self.policy = RetryPolicy(retries=mirror.limits.retries)
        self.counters = _Counters()
        self.semaphore = asyncio.Semaphore(mirror.limits.concurrency)

    def _count_retry(self, error: TransportError, wait_s: float) -> None:
        self.counters.retries += 1

    async def _call(self, call: Callable[[], Any]) -> Any:
        async with self.semaphore:
            return await with_retries(
                call, self.policy, on_retry=self._count_retry, sleep=self.sleep
            )

    async def inventory(self) -> dict[str, int]:
        """Sizes of the files the mirror already has, for the paths we publish."""
        if Capability.LISTING in self.backend.capabilities:
            listed: list[ObjectInfo] = await self._call(lambda: self.backend.list(""))
            return {info.path: info.size for info in listed}

        present: dict[str, int] = {}

        async def stat(file: TreeFile) -> None:
            info: ObjectInfo | None = await self._call(lambda: self.backend.stat(file.path))
            if info is not None:
                present[file.path] = info.size

        await self._each([f for f in self.files if f.phase is not Phase.POINTERS], stat)
        return present

    async def needs_upload(self, file: TreeFile, present: dict[str, int]) -> bool:
        """Content-addressed and versioned files are immutable: same size, same file.

        A pointer (``root.json``, ``timestamp.json``) is compared byte for byte;
        one the mirror cannot give, or gives longer than ours, is replaced.
        """
        if file.phase is not Phase.POINTERS:
            return present.get(file.path) != file.size
        try:
            current: bytes = await self._call(
                lambda: self.backend.get(file.path, max_bytes=file.size)
            )
        except (TransportError, OversizeError):
            return True
        return current != file.local.read_bytes()

    async def upload(self, file: TreeFile) -> None:
        """One file, with retries."""
        await self._call(lambda: self.backend.put(file.path, file.local, size=file.size))
        self.counters.uploaded.append((file.path, file.size))
        self.counters.uploaded_files += 1
        self.counters.uploaded_bytes += file.size
        self.progress.file_uploaded(self.mirror.name, file.size)

    async def run(self) -> None:
        """Inventory, then the three phases in order."""
        present = await self.inventory()
        todo: list[TreeFile] = []
        for file in self.files:
            if await self.needs_upload(file, present):
                todo.append(file)
            else:
                self.counters.skipped_files += 1
                self.counters.skipped_bytes += file.size
        self.progress.mirror_planned(self.mirror.name, len(todo), sum(f.size for f in todo))
        if self.dry_run:
            self.counters.planned = [f.path for f in todo]
            return
        for phase in Phase:
            batch = [f for f in todo if f.phase is phase]
            if phase is Phase.POINTERS:
                for file in batch:  # strictly one after the other, timestamp last
                    await self.upload(file)
            elif batch:
                await self._each(batch, self.upload)
            await self._call(self.backend.flush)
        await self.retire(present)

    async def retire(self, present: dict[str, int]) -> None:
        """Delete what the publish tree no longer has, now that the new timestamp is live.

        Guarded: only our own folders (``targets/``, ``metadata/``), only with a
        listing, never more than ``max_delete`` files, and never when the local
        tree is less than half of what the mirror holds (a source that came back
        empty, a wrong output folder) — then nothing is deleted and the report
        says why.
        """
        local = {f.path for f in self.files}
        stale = sorted(
            path
            for path in present
            if path not in local and path.startswith(("targets/", "metadata/"))
        )
        if not stale:
            return
        if Capability.LISTING not in self.backend.capabilities:
            return  # without a listing we only know what we uploaded; keep everything
        if len(stale) > self.max_delete:
            self.counters.retention_note = (
                f"{len(stale)} old files exceed push.max_delete ({self.max_delete}); none deleted"
            )
            return
        if len(local) < len(present) // 2:
            self.counters.retention_note = (
                f"the publish tree ({len(local)} files) is less than half of the mirror "
                f"({len(present)} files); nothing deleted"
            )
            return
        # Metadata first, so no remaining metadata points at a deleted target.
        for group in (
            [p for p in stale if p.startswith("metadata/")],
            [p for p in stale if p.startswith("targets/")],
        ):
            await self._each(group, self._delete)
            await self._call(self.backend.flush)

    async def _delete(self, path: str) -> None:
        await self._call(lambda: self.backend.delete(path))
        self.counters.deleted_files += 1

    async def _each(
        self, items: Sequence[T], action: Callable[[T], Coroutine[Any, Any, None]]
    ) -> None:
        """Apply ``action`` to every item with ``concurrency`` workers; the first failure
        cancels the rest and is raised as itself.

        A fixed pool of workers, not a task per file: 12,000 files to eight mirrors
        would otherwise be 96,000 suspended coroutines in memory at once.
        """
        pending = iter(items)

        async def worker() -> None:
            for item in pending:  # shared iterator: each item is taken exactly once
                await action(item)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.mirror.limits.concurrency, len(items))):
                    group.create_task(worker())
        except ExceptionGroup as group:
            first = next((e for e in group.exceptions if isinstance(e, MirrorError)), None)
            if first is None:
                raise
            raise first from None


def create_backend(config: Config, mirror: MirrorSettings) -> Backend:
    """Build the backend for ``mirror`` from its validated settings."""
    kind = backend_type(mirror.type)
    limits = CallLimits(timeout_s=mirror.limits.timeout_s)
    return kind.create(mirror.name, mirror.settings, config.base_dir, limits)


@dataclass(frozen=True)
class ReadBackRequest:
    """What read-back must find on every mirror."""

    bootstrap_root: bytes
    eid: str
    timestamp_version: int
    now: datetime


async def push_one(
    config: Config,
    mirror: MirrorSettings,
    files: Sequence[TreeFile],
    *,
    progress: Progress,
    dry_run: bool,
    verify: ReadBackRequest | None,
    read_back_gate: asyncio.Semaphore | None = None,
    sleep: Sleep = asyncio.sleep,
) -> PushResult:
    """Push to one mirror and read it back; every failure becomes part of the result.

    ``sleep`` spaces retries (tests record it instead of waiting).
    """
    started = time.monotonic()
    result = PushResult(mirror=mirror.name, type=mirror.type)
    push: MirrorPush | None = None
    try:
        backend = create_backend(config, mirror)
        push = MirrorPush(
            mirror,
            backend,
            files,
            progress=progress,
            dry_run=dry_run,
            max_delete=config.push.max_delete,
            sleep=sleep,
        )
        try:
            async with asyncio.timeout(mirror.limits.deadline_s):
                await push.run()
        finally:
            await backend.close()
        result = replace(result, pushed=not dry_run)
        if verify is not None and not dry_run:
            async with read_back_gate or contextlib.nullcontext():
                await read_back(
                    mirror.public_url,
                    bootstrap_root=verify.bootstrap_root,
                    eid=verify.eid,
                    expected_timestamp_version=verify.timestamp_version,
                    now=verify.now,
                    timeout_s=mirror.limits.deadline_s,
                    uploaded=push.counters.uploaded,
                )
            result = replace(result, verified=True)
    except TimeoutError:
        result = replace(
            result,
            error=f"did not finish within its deadline of {mirror.limits.deadline_s:g} s",
            error_kind="deadline",
        )
    except MirrorError as error:
        result = replace(result, error=error.message, error_kind=error.verdict)
        if result.pushed and verify is not None:
            result = replace(result, verified=False)
    except Exception as error:  # a bug must not take the other mirrors down with it
        result = replace(
            result,
            error=f"internal error: {error.__class__.__name__}: {error}",
            error_kind="internal",
        )
    if push is not None:
        counters = push.counters
        result = replace(
            result,
            uploaded_files=counters.uploaded_files,
            uploaded_bytes=counters.uploaded_bytes,
            skipped_files=counters.skipped_files,
            skipped_bytes=counters.skipped_bytes,
            retries=counters.retries,
            planned=tuple(counters.planned),
            deleted_files=counters.deleted_files,
            retention_note=counters.retention_note,
        )
    result = replace(result, seconds=time.monotonic() - started)
    progress.mirror_done(result)
    return result


async def push_all(
    config: Config,
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
    verify: ReadBackRequest | None = None,
    mirrors: Sequence[MirrorSettings] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> list[PushResult]:
    """Push the publish tree to every enabled mirror concurrently (``sleep`` spaces retries)."""
    files = scan_tree(config.publish_dir)
    chosen = [m for m in (mirrors if mirrors is not None else config.mirrors) if m.enabled]
    reporter = progress or SilentProgress()
    gate = asyncio.Semaphore(config.push.mirrors_at_once)
    # Read-backs hold a reader's verified metadata in memory: one at a time keeps a
    # large archive's push within its memory budget; uploads are not held back.
    read_back_gate = asyncio.Semaphore(READ_BACKS_AT_ONCE)

    async def one(mirror: MirrorSettings) -> PushResult:
        async with gate:
            return await push_one(
                config,
                mirror,
                files,
                progress=reporter,
                dry_run=dry_run,
                verify=verify,
                read_back_gate=read_back_gate,
                sleep=sleep,
            )

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(m)) for m in chosen]
    return [task.result() for task in tasks]
