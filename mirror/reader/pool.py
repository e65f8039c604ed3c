"""Every candidate mirror of one fetch, probed at once, used in order of how they behave.

A censor's cheapest attack on a reader is one fast mirror that replays the
genuine metadata and then withholds, stalls or trickles every content file:
it wins any race on the metadata, and a reader who trusts the winner waits
on it forever. So nothing here is decided by speed alone:

- every mirror is probed (its metadata refreshed and verified) in its own
  thread, and a mirror still answering when the fetch starts downloading is
  not dropped: it keeps probing and becomes a source when it verifies;
- a mirror is demoted at its first failed file (it is tried for later files
  only after every mirror that has not failed), and a mirror that sent bytes
  that are not the publisher's is never asked again;
- a file is never given up while any mirror that verified, or is still
  probing, has not been tried for it, within the reader's deadline.

Every byte is checked against the signed hash whatever mirror sent it, so
using a slower, a demoted or a stale mirror as a source is always safe.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mirror.client.urls import scrubbed, shown
from mirror.client.view import MirrorView, Served

MAX_PARALLEL_PROBES = 10


@dataclass(frozen=True)
class MirrorOutcome:
    """A mirror that gave no verified metadata (or how one that did behaved)."""

    url: str
    """The mirror's address as it may be shown (`mirror.client.urls.shown`)."""
    verdict: str
    """One of `mirror.client.classify.MIRROR_VERDICTS`."""
    detail: str = ""
    timestamp_version: int | None = None

    def __post_init__(self) -> None:
        # An outcome is printed, logged and stored: never with the mirror's password.
        object.__setattr__(self, "detail", scrubbed(self.detail, self.url))
        object.__setattr__(self, "url", shown(self.url))

    def as_json(self) -> dict[str, Any]:
        """For --json."""
        return {
            "url": self.url,
            "verdict": self.verdict,
            "detail": self.detail,
            "timestamp_version": self.timestamp_version,
        }


@dataclass
class Candidate:
    """A mirror whose metadata verified: its view, what it serves, how its files went."""

    view: MirrorView
    served: Served
    order: int
    """Its place in the reader's list (command line first), to break ties."""
    failures: int = 0
    forged: bool = False
    """It sent bytes that are not the publisher's: never asked again."""
    worst: tuple[str, str] | None = None
    """(verdict, detail) of its worst failed file."""

    @property
    def url(self) -> str:
        """The mirror's root URL."""
        return self.view.url

    def failed(self, verdict: str, detail: str) -> None:
        """Record one failed file: demote it, and shun it for good if it forged."""
        self.failures += 1
        if verdict == "tampered":
            self.forged = True
        if self.worst is None or (verdict == "tampered" and self.worst[0] != "tampered"):
            self.worst = (verdict, detail)

    def close(self) -> int:
        """Close its transport; the bytes it received."""
        self.view.fetcher.close()
        return self.view.fetcher.bytes_received


@dataclass
class MirrorPool:
    """The probes of one fetch: verified candidates, failures, and those still running."""

    urls: Sequence[str]
    probe: Callable[[str, int], Candidate | MirrorOutcome]
    verified: list[Candidate] = field(default_factory=list)
    failed: list[MirrorOutcome] = field(default_factory=list)
    _results: queue.Queue[tuple[str, Candidate | MirrorOutcome]] = field(
        default_factory=queue.Queue
    )
    _closed: threading.Event = field(default_factory=threading.Event)
    _handover: threading.Lock = field(default_factory=threading.Lock)
    _answered: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        """Probe every mirror at once (at most `MAX_PARALLEL_PROBES` at a time)."""
        gate = threading.Semaphore(MAX_PARALLEL_PROBES)

        def work(url: str, order: int) -> None:
            with gate:
                if self._closed.is_set():
                    return
                result = self.probe(url, order)
            with self._handover:  # "still wanted?" and "hand it over" happen together
                if not self._closed.is_set():
                    self._results.put((url, result))
                    return
            if isinstance(result, Candidate):  # nobody waits for it any more
                result.close()

        for order, url in enumerate(self.urls):
            threading.Thread(target=work, args=(url, order), daemon=True, name="probe").start()

    @property
    def pending(self) -> list[str]:
        """Mirrors still probing."""
        return [u for u in self.urls if u not in self._answered]

    def _take(self, url: str, result: Candidate | MirrorOutcome) -> None:
        self._answered.add(url)
        if isinstance(result, Candidate):
            self.verified.append(result)
        else:
            self.failed.append(result)

    def wait(self, timeout_s: float | None) -> bool:
        """Wait for one more mirror to answer; True if one did within ``timeout_s``."""
        if not self.pending:
            return False
        try:
            url, result = self._results.get(timeout=timeout_s)
        except queue.Empty:
            return False
        self._take(url, result)
        while True:  # and whatever else has arrived meanwhile
            try:
                url, result = self._results.get_nowait()
            except queue.Empty:
                return True
            self._take(url, result)

    def settle(self, *, timeout_s: float) -> None:
        """Wait until every mirror answered, or until the first verified one had company.

        Once a mirror has verified, the others get a grace period (twice the
        time the first took, at least one second, at most ``timeout_s``); those
        still probing after it are not dropped, only not waited for.
        """
        deadline: float | None = None
        while self.pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            if not self.wait(left):
                if deadline is not None:
                    return
                continue
            if deadline is None and self.verified:
                elapsed = time.monotonic() - self.started
                deadline = time.monotonic() + min(timeout_s, max(1.0, 2 * elapsed))

    def sources(self, best: Served) -> list[Candidate]:
        """Mirrors to ask for a file, best first: not failed, current, in the reader's order."""
        usable = [c for c in self.verified if not c.forged]
        return sorted(usable, key=lambda c: (c.failures > 0, c.served.behind(best), c.order))

    def close(self) -> int:
        """Stop waiting for probes; close every verified mirror; the bytes they received."""
        with self._handover:
            self._closed.set()
            while True:
                try:
                    url, result = self._results.get_nowait()
                except queue.Empty:
                    break
                self._take(url, result)
        return sum(c.close() for c in self.verified)
