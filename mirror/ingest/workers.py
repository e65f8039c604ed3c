"""Worker processes that parse articles, each article under a CPU deadline.

The caps of `mirror.ingest.bounds` stop every costly input we know of;
this stops the ones we do not. Each article (or feed document, or feed
entry) is one job, run in a worker process whose kernel CPU limit
(``RLIMIT_CPU``) is moved to "what it has used + ``cpu_s``" before each job:
past it, the kernel ends the process with SIGXCPU, even in the middle of
Rust or C code (nh3, libyaml), which no Python-level timeout could
interrupt. A worker that overruns, or dies any other way (a crash in a
parser, the out-of-memory killer), is replaced, and its job comes back as
an `Overrun` with a sentence saying what happened; the caller reports that
article and skips it, as ``on_article_error`` says. A wall-clock limit
(`wall_limit_s`) backs the CPU limit up for a worker that waits instead of
computing.

The parent never waits on a worker without a timeout, so Ctrl-C reaches it
at once: leaving `WorkerPool` by an exception kills every worker instead of
waiting for their jobs (workers ignore SIGINT themselves). Results come
back in job order, at most `PARALLEL_WINDOW` jobs per worker ahead of the
consumer, so output does not depend on timing and memory stays flat.

`InlineRunner` has the same interface and runs jobs in the calling
process, without a deadline: for library calls and tests that parse a few
files.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

PARALLEL_WINDOW = 8
"""Jobs handed out ahead per worker process: bounds memory while keeping workers busy."""

JOBS_PER_WORKER = 256
"""Jobs a worker process does before a new one takes its place. The parsers are C and Rust
libraries, and one of them leaks: cmarkgfm's ``markdown_to_html_with_extensions`` never frees
the document it parsed nor the HTML it rendered (theacodes/cmarkgfm#53), about 50 KB an
article, which made each worker of a 100,000-article build grow past 700 MB. A worker's
leak now ends with it, whatever the library."""

_POLL_S = 0.2
"""Longest the parent waits in one call, so signals and wall-clock limits are seen quickly."""

PRELOAD = ("__main__", "mirror.ingest.directory", "mirror.ingest.feed", "mirror.build_sources")
"""Imported once by the fork server, so a new worker starts in milliseconds."""


@dataclass(frozen=True)
class Overrun:
    """A job that did not finish: its worker was stopped at the deadline, or died."""

    reason: str


def wall_limit_s(cpu_s: float) -> float:
    """The wall-clock limit that backs up a CPU limit of ``cpu_s`` (a worker stuck waiting)."""
    return 3 * cpu_s + 10


class Runner(Protocol):
    """Runs jobs and gives their results back in order."""

    def map(
        self, function: Callable[[Job], Result], jobs: Iterable[Job]
    ) -> Iterator[Result | Overrun]:
        """``function(job)`` for each job, in job order; an `Overrun` for a job stopped."""
        ...


class InlineRunner:
    """Runs each job in this process, one after the other, without a deadline."""

    def map(
        self, function: Callable[[Job], Result], jobs: Iterable[Job]
    ) -> Iterator[Result | Overrun]:
        """``function(job)`` for each job, in order."""
        for job in jobs:
            yield function(job)


@dataclass
class _Worker:
    process: Any  # multiprocessing's process classes have no public common type
    connection: multiprocessing.connection.Connection
    job: tuple[int, int] | None = None
    """The job it runs: (which `WorkerPool.map`, which job of that map)."""
    started: float = 0.0
    done: int = 0
    """Jobs it finished (it is retired at ``jobs_per_worker``)."""


class WorkerPool:
    """Up to ``processes`` worker processes, started when first needed; see the module docstring."""

    def __init__(
        self, processes: int, *, cpu_s: float, jobs_per_worker: int = JOBS_PER_WORKER
    ) -> None:
        if processes < 1:
            raise ValueError(f"a worker pool needs at least one process, not {processes}")
        if cpu_s <= 0:
            raise ValueError(f"cpu_s must be positive, not {cpu_s}")
        if jobs_per_worker < 1:
            raise ValueError(f"jobs_per_worker must be positive, not {jobs_per_worker}")
        self.processes = processes
        self.cpu_s = cpu_s
        self.jobs_per_worker = jobs_per_worker
        self.wall_s = wall_limit_s(cpu_s)
        self.replaced = 0
        """Workers replaced after an overrun or a crash (for tests and reports)."""
        self._workers: list[_Worker] = []
        self._finished: dict[tuple[int, int], Any] = {}
        """Results by (map, job): a map started while another is under way (a feed read
        while a folder's articles are parsed) collects the other's results too, and each
        map takes only its own."""
        self._maps = itertools.count()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(PRELOAD))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(wait=exc_type is None)

    def close(self, *, wait: bool = True) -> None:
        """Stop every worker: let idle ones exit (``wait``), kill the rest at once."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.connection.close()
        deadline = time.monotonic() + (1.0 if wait else 0.0)
        for worker in workers:
            if worker.job is None and wait:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(5)

    def map(
        self, function: Callable[[Job], Result], jobs: Iterable[Job]
    ) -> Iterator[Result | Overrun]:
        """``function(job)`` for each job, in job order, each under the CPU deadline.

        ``function`` and the jobs must pickle (a module-level function, plain
        values). If the consumer stops early or an exception passes through,
        the workers still busy are killed.
        """
        queue = iter(jobs)
        mine = next(self._maps)
        done = self._finished
        handed_out = 0
        given_back = 0
        exhausted = False
        window = self.processes * PARALLEL_WINDOW
        finished = False
        try:
            while True:
                while not exhausted and handed_out < given_back + window:
                    worker = self._idle_worker()
                    if worker is None:
                        break
                    job = next(queue, _END)
                    if job is _END:
                        exhausted = True
                        break
                    self._hand_out(worker, (mine, handed_out), function, job)
                    handed_out += 1
                while (mine, given_back) in done:
                    yield done.pop((mine, given_back))
                    given_back += 1
                if exhausted and given_back == handed_out:
                    finished = True
                    return
                self._collect()
        finally:
            if not finished:
                self._kill_busy(mine)
                for key in [key for key in done if key[0] == mine]:
                    del done[key]

    # -- internals ---------------------------------------------------------

    def _idle_worker(self) -> _Worker | None:
        for worker in self._workers:
            if worker.job is None:
                return worker
        if len(self._workers) < self.processes:
            worker = self._start()
            self._workers.append(worker)
            return worker
        return None

    def _start(self) -> _Worker:
        _stop_fork_server_at_exit()
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_serve, args=(child, self.cpu_s), name="mirror-ingest", daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _hand_out(
        self,
        worker: _Worker,
        index: tuple[int, int],
        function: Callable[[Job], Result],
        job: Job,
    ) -> None:
        worker.connection.send((function, job))
        worker.job = index
        worker.started = time.monotonic()

    def _collect(self) -> None:
        """Wait a little for busy workers; record results, overruns and deaths (of every
        map's jobs, each under its own key)."""
        done = self._finished
        busy = [worker for worker in self._workers if worker.job is not None]
        if not busy:
            return
        waitables: list[Any] = [w.connection for w in busy] + [w.process.sentinel for w in busy]
        multiprocessing.connection.wait(waitables, timeout=_POLL_S)
        now = time.monotonic()
        for worker in busy:
            index = worker.job
            if index is None:  # pragma: no cover - busy workers have a job
                continue
            result: Any
            if worker.connection.poll():
                try:
                    result = worker.connection.recv()
                except (EOFError, OSError):
                    result = self._death(worker)
                else:
                    worker.job = None
                    worker.done += 1
                    done[index] = result
                    if worker.done >= self.jobs_per_worker:
                        self._retire(worker)
                    continue
            elif not worker.process.is_alive():
                result = self._death(worker)
            elif now - worker.started > self.wall_s:
                worker.process.kill()
                worker.process.join(5)
                result = Overrun(f"took longer than {self.wall_s:g} s to process; it was stopped")
            else:
                continue
            done[index] = result
            self._replace(worker)

    def _death(self, worker: _Worker) -> Overrun:
        worker.process.join(5)
        code = worker.process.exitcode
        if code == -signal.SIGXCPU:
            return Overrun(
                f"took more than {self.cpu_s:g} s of CPU time to process; it was stopped"
            )
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return Overrun(f"crashed the process that parsed it ({name}); it was skipped")
        return Overrun(f"stopped the process that parsed it (exit status {code}); it was skipped")

    def _retire(self, worker: _Worker) -> None:
        """Let an idle worker that did its share of jobs exit; a new one is started when needed."""
        worker.connection.close()  # it reads EOF and returns
        worker.process.join(1.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)
        self._workers.remove(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.connection.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        self._workers.remove(worker)
        self.replaced += 1

    def _kill_busy(self, mine: int) -> None:
        """Kill the workers busy with jobs of map ``mine`` (another map's keep theirs)."""
        for worker in [w for w in self._workers if w.job is not None and w.job[0] == mine]:
            worker.process.kill()
            self._replace(worker)


_END: Any = object()


def _serve(connection: multiprocessing.connection.Connection, cpu_s: float) -> None:
    """A worker's life: take a job, run it under the CPU limit, send the result back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file per overrun
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        try:
            function, job = connection.recv()
        except (EOFError, OSError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_s)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        try:
            result = function(job)
        except Exception as error:  # the job boundary: the parent gets a reason, not a trace
            result = Overrun(f"could not be processed ({type(error).__name__}: {error})")
        try:
            connection.send(result)
        except (BrokenPipeError, EOFError, OSError):
            return
        except Exception as error:  # a result that does not pickle
            connection.send(Overrun(f"could not be processed ({type(error).__name__})"))


_STOPPING_AT_EXIT: list[bool] = []


def _stop_fork_server_at_exit() -> None:
    """Make the process stop and reap the fork server and the resource tracker before it
    exits (registered once).

    Python's fork server (and the resource tracker it starts) otherwise notices
    its parent is gone only after the parent has exited, so for a moment it
    outlives the process. Under systemd that moment is enough: a oneshot unit
    whose main process exited with a process still in its cgroup is sent
    SIGTERM and waits for the cgroup to empty, which a cgroup v1 container
    never reports, so a successful sync ended as "timeout"
    (deploy/podman-check.sh). ``_stop`` is the standard
    library's own way for both (its tests use it): close the helper's pipe and
    wait for it.
    """
    if _STOPPING_AT_EXIT:
        return
    _STOPPING_AT_EXIT.append(True)

    def stop() -> None:
        for helper in (
            getattr(multiprocessing.forkserver, "_forkserver", None),
            getattr(multiprocessing.resource_tracker, "_resource_tracker", None),
        ):
            with contextlib.suppress(OSError, ChildProcessError, AttributeError):
                helper._stop()  # type: ignore[union-attr]

    atexit.register(stop)


def default_processes() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
