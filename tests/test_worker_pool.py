"""The worker pool when a map is asked for while another is under way (a feed source read
while the articles of a folder before it are still being parsed)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from mirror.ingest.workers import WorkerPool


def _double(job: int) -> int:
    time.sleep(0.1)
    return 2 * job


def _negate(job: int) -> int:
    time.sleep(0.4)  # the outer map's job on the other worker ends meanwhile
    return -job


def test_a_map_started_inside_another_gives_each_its_own_results() -> None:
    """The jobs of the outer map come from a generator that, after two jobs, runs a map of
    its own on the same pool (as `SourceReader` does when it reaches a feed source and
    parses the document). Before, the inner map took the outer one's results as they came
    in: the outer map then waited for results nobody would ever give (a build spinning on
    a core for ever), or the inner one returned an article as the feed document."""
    with WorkerPool(2, cpu_s=5) as pool:
        inner_results: list[object] = []

        def outer_jobs() -> Iterator[int]:
            yield 1
            yield 2
            inner_results.extend(pool.map(_negate, [7, 8, 9]))
            yield 3
            yield 4

        started = time.monotonic()
        outer = list(pool.map(_double, outer_jobs()))
    assert outer == [2, 4, 6, 8]
    assert inner_results == [-7, -8, -9]
    assert time.monotonic() - started < 30
