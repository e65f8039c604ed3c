"""Push the publish tree to every mirror at once, in the safe order, and report.

For each mirror, in its own task (one broken mirror never cancels or delays
the others beyond its own deadline):

1. **Plan** (`mirror.push_plan`): preflight the mirror's history against the
   local one, inventory it, and decide file by file what to upload and, for
   retention, what to delete. A mirror whose history is ahead of ours,
   diverged from it, or another publisher's is refused: nothing is written.
2. **Execute exactly that plan**, phase by phase — content-addressed
   targets, then versioned metadata, then the pointers (``root.json``, and
   ``timestamp.json`` last) — flushing after each phase and never starting a
   phase while the previous one has a failure. Targets and metadata go in
   batches of the size the backend asks for (`Backend.put_many`: one file per
   call for remote stores, dozens for a local folder), each batch one call
   under the retry policy and the concurrency limit; pointers go one by one.
   Just before the pointers, the mirror's ``timestamp.json`` must still be
   what the preflight read and its new metadata must still be ours, byte for
   byte: another push racing this one makes it stop instead of switching
   readers to a mix of two histories.
   Deletions come last, after the new timestamp is live.
3. **Read back** through the public URL and verify as a reader (`readback`).

Every backend call has a timeout (in the backend) and is retried on
transport errors with backoff and jitter (`retry`), all under the mirror's
deadline. The result of each mirror is a `PushResult`, never an exception.

What does not depend on the mirror — the tree's files, sizes and metadata
digests, the local history — is read once per push (`PushTree`) and shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from mirror import caps, publish_tree
from mirror.backends import Backend, CallLimits, backend_type
from mirror.config import Config, MirrorSettings
from mirror.errors import HistoryConflictError, MirrorError, TransportError
from mirror.publish_tree import Phase, TreeFile, TreeFiles
from mirror.push_plan import MirrorPlan, get_or_none, holds, plan_mirror, read_history
from mirror.push_session import MirrorSession
from mirror.readback import read_back
from mirror.retry import Sleep
from mirror.trust.history import Judgement, LocalHistory, judge

READ_BACKS_AT_ONCE = 1


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
    plan: MirrorPlan | None = None
    """What the push decided for this mirror (None when it failed before deciding)."""
    deleted_files: int = 0
    """Old files removed under the retention policy, after the new timestamp was live."""
    retention_note: str | None = None
    """Why old files were kept, when they were."""

    @property
    def ok(self) -> bool:
        """Pushed, and verified if read-back ran."""
        return self.pushed and self.verified is not False and self.error is None

    def as_json(self, *, files: bool = True) -> dict[str, Any]:
        """The JSON report entry (no secrets: only names, counts and messages); without
        ``files``, its plan gives counts, not every path (`MirrorPlan.as_json`)."""
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
            "plan": None if self.plan is None else self.plan.as_json(files=files),
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


async def execute(
    session: MirrorSession,
    plan: MirrorPlan,
    *,
    progress: Progress,
) -> tuple[list[TreeFile], int]:
    """Carry out ``plan`` on the mirror; return (the files uploaded, deletions).

    Three checks keep a push that races another host's push from mixing two
    histories: before any versioned metadata is written, the mirror's
    ``timestamp.json`` must still be the one the preflight read; just before
    the switch it must still be that one and every metadata file this push
    wrote must still be ours; just after, the timestamp must be ours.
    """
    backend = session.backend
    uploaded: list[TreeFile] = []  # the tree's own records: no copy per mirror

    async def upload(files: Sequence[TreeFile]) -> None:
        await session.call(lambda: backend.put_many(files))
        for file in files:
            uploaded.append(file)
            progress.file_uploaded(session.mirror.name, file.size)

    for phase in Phase:
        batch = [f for f in plan.uploads if f.phase is phase]
        if batch and phase is Phase.METADATA:
            await _timestamp_unchanged(session, plan)
        if phase is Phase.POINTERS:
            if batch:
                await _timestamp_unchanged(session, plan)
                await _still_ours(session, [f for f in plan.uploads if f.phase is Phase.METADATA])
            for file in batch:  # strictly one after the other, timestamp last
                await upload([file])
            await _still_ours(session, [f for f in batch if f.path == publish_tree.TIMESTAMP])
        elif batch:
            await session.each(batches(batch, backend), upload)
        await session.call(backend.flush)
    deleted = 0

    async def delete(path: str) -> None:
        nonlocal deleted
        await session.call(lambda: backend.delete(path))
        deleted += 1

    for group in (
        [p for p in plan.deletes if p.startswith("metadata/")],
        [p for p in plan.deletes if p.startswith("targets/")],
    ):
        if group:
            await session.each(group, delete)
            await session.call(backend.flush)
    return uploaded, deleted


def batches(files: Sequence[TreeFile], backend: Backend) -> list[list[TreeFile]]:
    """``files`` in order, cut into `Backend.put_many` calls of the size the backend asks for.

    At most ``batch_files`` files and ``batch_bytes`` bytes per batch; a file larger
    than that goes alone.
    """
    cut: list[list[TreeFile]] = []
    current: list[TreeFile] = []
    size = 0
    for file in files:
        if current and (
            len(current) >= backend.batch_files or size + file.size > backend.batch_bytes
        ):
            cut.append(current)
            current, size = [], 0
        current.append(file)
        size += file.size
    if current:
        cut.append(current)
    return cut


RACE_HINT = (
    "Another host with these keys is publishing to this mirror. Only one host should publish: "
    "stop the other, then take its history back with `mirror restore --from MIRROR`."
)


async def _timestamp_unchanged(session: MirrorSession, plan: MirrorPlan) -> None:
    """Nobody replaced the mirror's ``timestamp.json`` since the preflight read it."""
    served = await get_or_none(session, publish_tree.TIMESTAMP, caps.TIMESTAMP_MAX_BYTES)
    if served != plan.history.timestamp:
        raise HistoryConflictError(
            f"mirror {session.mirror.name}: its timestamp.json changed while this push ran",
            hint=RACE_HINT,
        )


async def _still_ours(session: MirrorSession, files: Sequence[TreeFile]) -> None:
    """Every file in ``files`` is on the mirror with this push's bytes."""
    changed: list[str] = []

    async def check(file: TreeFile) -> None:
        if not await holds(session, file):
            changed.append(file.path)

    await session.each(files, check)
    if changed:
        raise HistoryConflictError(
            f"mirror {session.mirror.name}: {sorted(changed)[0]} is not what this push wrote "
            "(another push replaced it)",
            hint=RACE_HINT,
        )


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


async def judge_histories(
    config: Config,
    mirrors: Sequence[MirrorSettings],
    local: LocalHistory,
    *,
    sleep: Sleep = asyncio.sleep,
) -> list[tuple[MirrorSettings, Judgement | MirrorError]]:
    """Each mirror's standing against ``local`` (or why it could not be read), reads only."""

    async def one(mirror: MirrorSettings) -> tuple[MirrorSettings, Judgement | MirrorError]:
        try:
            backend = create_backend(config, mirror)
            try:
                async with asyncio.timeout(mirror.limits.deadline_s):
                    session = MirrorSession(mirror, backend, sleep=sleep)
                    return mirror, judge(local, await read_history(session))
            finally:
                await backend.close()
        except TimeoutError:
            return mirror, TransportError(f"mirror {mirror.name}: reading it took too long")
        except MirrorError as error:
            return mirror, error

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(m)) for m in mirrors if m.enabled]
    return [task.result() for task in tasks]


@dataclass(frozen=True)
class PushTree:
    """What every mirror of one push gets: the local tree's files and history."""

    files: TreeFiles
    history: LocalHistory

    @classmethod
    def read(cls, config: Config) -> PushTree:
        """The publish tree as it stands (read once per push, shared by every mirror)."""
        publish_dir = config.publish_dir
        history = publish_tree.local_history(
            publish_dir, first_root=publish_tree.first_root(publish_dir)
        )
        return cls(files=publish_tree.scan_tree(publish_dir), history=history)


async def push_one(
    config: Config,
    mirror: MirrorSettings,
    tree: PushTree,
    *,
    progress: Progress,
    dry_run: bool,
    verify: ReadBackRequest | None,
    read_back_gate: asyncio.Semaphore | None = None,
    sleep: Sleep = asyncio.sleep,
) -> PushResult:
    """Plan, push and read back one mirror; every failure becomes part of the result.

    ``sleep`` spaces retries (tests record it instead of waiting).
    """
    started = time.monotonic()
    result = PushResult(mirror=mirror.name, type=mirror.type)
    session: MirrorSession | None = None
    uploaded: list[TreeFile] = []
    deleted = 0
    allowed_s = mirror.limits.deadline_s
    try:
        backend = create_backend(config, mirror)
        session = MirrorSession(mirror, backend, sleep=sleep)
        try:
            begun = asyncio.get_running_loop().time()
            async with asyncio.timeout(allowed_s) as deadline:
                plan = await plan_mirror(
                    session, tree.files, tree.history, max_delete=config.push.max_delete
                )
                # The uploads get the time their bytes need on a slow link, on top.
                allowed_s = mirror.limits.deadline_for(plan.upload_bytes)
                deadline.reschedule(begun + allowed_s)
                result = replace(result, plan=plan)
                progress.mirror_planned(mirror.name, len(plan.uploads), plan.upload_bytes)
                if plan.refused:
                    raise HistoryConflictError(plan.judgement.reason)
                if not dry_run:
                    uploaded, deleted = await execute(session, plan, progress=progress)
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
                    # Every uploaded file is read back (an edition ZIP verified whole).
                    timeout_s=mirror.limits.deadline_for(sum(f.size for f in uploaded)),
                    uploaded=uploaded,
                )
            result = replace(result, verified=True)
    except TimeoutError:
        result = replace(
            result,
            error=f"did not finish within its deadline of {allowed_s:g} s",
            error_kind="deadline",
        )
    except HistoryConflictError as error:
        standing = result.plan.judgement.standing.value if result.plan else error.verdict
        result = replace(result, error=error.message, error_kind=standing)
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
    decided = result.plan
    result = replace(
        result,
        uploaded_files=len(uploaded),
        uploaded_bytes=sum(f.size for f in uploaded),
        skipped_files=0 if decided is None else decided.skipped_files,
        skipped_bytes=0 if decided is None else decided.skipped_bytes,
        retries=0 if session is None else session.retries,
        deleted_files=deleted,
        retention_note=None if decided is None else decided.retention_note,
        seconds=time.monotonic() - started,
    )
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
    """Plan and push the publish tree to every enabled mirror concurrently.

    ``sleep`` spaces retries (tests record it instead of waiting).
    """
    tree = PushTree.read(config)
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
                tree,
                progress=reporter,
                dry_run=dry_run,
                verify=verify,
                read_back_gate=read_back_gate,
                sleep=sleep,
            )

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(m)) for m in chosen]
    return [task.result() for task in tasks]
