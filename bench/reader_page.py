"""Benchmark: `reader.html` verifying an edition in headless Chromium, against `mirror verify`.

Usage::

    python bench/reader_page.py [--articles 1500] [--target-mb 60] [--repeat 5]
                                [--work /dev/shm/mbench-page] [--results bench/RESULTS.md]

Prepares a corpus, keys and one edition exactly as ``bench/run.py`` does
(its ``prepare`` and ``mirror_build``; the defaults give an edition of about
50 MB), exports ``reader.html`` with ``mirror keys export-reader``, and then,
alternating, ``--repeat`` times each:

- ``mirror verify EDITION --root keys/root.json --state FRESH`` (a subprocess,
  wall time, as ``run.py`` measures it: the CLI's start-up included);
- the same file handed to ``reader.html`` (loaded from ``file://`` in Debian's
  headless Chromium, driven over the DevTools pipe by ``tests/chromium.py``)
  through its file input, with the browser's memory of the publisher cleared:
  wall time from handing the file over until the verdict is on the page. The
  page's own measurement (from the input's change event to the verdict) is
  listed too. The browser is started once, as a reader's would already be.

Target (design notes, "Benchmarks"): the page's median at most 3x the CLI's.
Nothing is asserted; results are printed and appended to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import run as build_bench  # bench/ is sys.path[0] when run as a script

REPO = Path(__file__).resolve().parent.parent
RATIO_TARGET = 3.0


def _chromium() -> Any:
    """`tests.chromium` (the repository root is not on sys.path when run as a script)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return __import__("tests.chromium", fromlist=["Chromium"])


def page_verify(page: Any, edition: Path) -> tuple[float, float, str]:
    """Hand ``edition`` to the page; (wall seconds, the page's own seconds, verdict)."""
    page.evaluate("localStorage.clear(), true")
    runs = page.evaluate("document.body.dataset.runs")
    start = time.perf_counter()
    page.set_files("#file", [edition])
    page.wait_for(f"document.body.dataset.runs !== '{runs}'", timeout_s=600, poll_s=0.002)
    seconds = time.perf_counter() - start
    verdict = page.evaluate("document.getElementById('verdict').dataset.verdict")
    own_ms = int(page.evaluate("document.getElementById('verdict').dataset.ms"))
    return seconds, own_ms / 1000, verdict


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="reader.html against mirror verify")
    parser.add_argument("--articles", type=int, default=1500)
    parser.add_argument("--target-mb", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/mbench-page"))
    parser.add_argument("--results", type=Path, default=build_bench.RESULTS)
    args = parser.parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, work)
    except build_bench.CommandFailed as failure:
        print(f"benchmark command failed: {failure}", file=sys.stderr)
        return 1


def _bench(args: argparse.Namespace, work: Path) -> int:
    started = time.perf_counter()
    case = build_bench.prepare(
        work, articles=args.articles, target_mb=args.target_mb, seed=args.seed
    )
    _, edition = build_bench.mirror_build(case)
    page_file = case.root / "reader.html"
    exported = build_bench._run(
        [
            build_bench._mirror_bin(),
            "keys",
            "export-reader",
            "--root",
            case.keys / "root.json",
            "--out",
            page_file,
        ]
    )
    fingerprint = exported.stdout.split("SHA-256: ", 1)[1].split()[0]
    cli = build_bench.Figure()
    page_wall: list[float] = []
    page_own: list[float] = []
    verdicts: set[str] = set()
    chromium = _chromium()
    with chromium.Chromium() as browser:
        tab = browser.open(page_file.as_uri())
        page_verify(tab, edition)  # warm-up: the page's scripts compiled, the file cached
        for attempt in range(1, args.repeat + 1):
            cli.runs.append(build_bench.mirror_verify(case, edition))
            wall, own, verdict = page_verify(tab, edition)
            page_wall.append(wall)
            page_own.append(own)
            verdicts.add(verdict)
            print(
                f"run {attempt}: mirror verify {cli.runs[-1].seconds:.2f} s, "
                f"reader.html {wall:.2f} s (page's own {own:.2f} s), {verdict}"
            )
    if verdicts != {"verified"}:
        print(f"the page did not verify the edition: {sorted(verdicts)}", file=sys.stderr)
        return 1
    ratio = statistics.median(page_wall) / cli.median
    size_mb = edition.stat().st_size / 1e6
    section = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — reader.html (`bench/reader_page.py`)",
        "",
        *build_bench._machine(),
        build_bench._corpus_line("main", case),
        f"- edition: {size_mb:.1f} MB; reader.html {page_file.stat().st_size / 1e3:.0f} KB, "
        f"SHA-256 {fingerprint[:16]}…; {args.repeat} runs each after one page warm-up, "
        f"median counts; whole run {time.perf_counter() - started:.0f} s",
        "- page: Debian chromium, headless, one tab, loaded from file://; the file handed over "
        "with DevTools `DOM.setFileInputFiles`, the browser's memory cleared before each run; "
        "wall time until the verdict is on the page (the page's own figure, from its change "
        "event, in brackets)",
        "",
        "| figure | reader.html (runs) | mirror verify (runs) | ratio | target | result |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| verify a {size_mb:.0f} MB edition | {statistics.median(page_wall):.2f} s "
        f"({', '.join(f'{s:.2f}' for s in page_wall)}; page's own "
        f"{statistics.median(page_own):.2f} s) | {cli.median:.2f} s ({cli.spread()}) | "
        f"{ratio:.2f}x | <= {RATIO_TARGET:g}x | {build_bench._verdict(ratio, RATIO_TARGET)} |",
        "",
    ]
    build_bench.append_results(args.results, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
