"""Reader benchmarks: `mirror fetch` against hostile and healthy mirrors, as ratios.

Usage::

    python bench/fetch.py [--articles 10000] [--target-mb 300] [--repeat 3]
                          [--work /dev/shm/mbench-fetch] [--seed-from /dev/shm/mbench]

Measures, on a corpus from ``bench/corpus.py`` built once with ``mirror build``
and served by the hostile HTTP mirrors of ``tests/censor.py`` on 127.0.0.1:

1. time to a verified edition (first fetch, fresh ``--state``, default timeouts)
   with 9 of 10 mirrors hostile (3 black hole, 3 tamper, 3 trickle, 1 honest in
   a middle position) against the same fetch from 10 healthy mirrors
   (target <= 2x);
2. bytes received updating after 10 new articles (a second ``mirror fetch``
   with the same state, edition 2 served) against the bytes of the first full
   fetch (target <= 2%).

``mirror fetch --json`` runs as a subprocess, timed (wall clock) by `run._run`.
Timings are never asserted: the harness exits 0 unless a command fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import push as push_bench  # bench/ is sys.path[0] when run as a script
import run as build_bench

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
HOSTILE_TARGET = 2.0
UPDATE_TARGET = 0.02
NEW_ARTICLES = 10

# 10 mirrors: 3 black holes, 3 tamperers, 3 tricklers and 1 honest one in the middle.
HOSTILE: tuple[str, ...] = (
    "blackhole",
    "tamper",
    "trickle",
    "blackhole",
    "tamper",
    "honest",
    "trickle",
    "blackhole",
    "tamper",
    "trickle",
)
HEALTHY: tuple[str, ...] = ("honest",) * len(HOSTILE)


def _censor() -> Any:
    """`tests.censor` (the repository root is not on sys.path when run as a script)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return __import__("tests.censor", fromlist=["censor_mirrors"])


@dataclass
class Fetch:
    """One `mirror fetch --json` run."""

    seconds: float
    result: dict[str, Any]
    rss_mb: float | None = None

    @property
    def received(self) -> int:
        return int(self.result["received_bytes"])

    @property
    def downloaded(self) -> int:
        return int(self.result["downloaded_bytes"])

    def verdicts(self) -> str:
        counts: dict[str, int] = {}
        for mirror in self.result.get("mirrors", []):
            counts[mirror["verdict"]] = counts.get(mirror["verdict"], 0) + 1
        return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def mirror_fetch(root_json: Path, urls: Sequence[str], state: Path, *, rss: bool = False) -> Fetch:
    """`mirror fetch --json` with default timeouts; raises CommandFailed on failure.

    With ``rss``, its peak RSS is measured too (`run._run`, /usr/bin/time).
    """
    argv: list[str | Path] = [build_bench._mirror_bin(), "fetch", "--root", root_json, "--json"]
    for url in urls:
        argv += ["--mirror", url]
    argv += ["--state", state]
    done = build_bench._run(argv, rss=rss)
    return Fetch(done.seconds, json.loads(done.stdout), done.rss_mb)


def fetch_from(
    behaviours: Sequence[str], tree: Path, root_json: Path, state: Path, *, fresh: bool = True
) -> Fetch:
    """Serve ``tree`` with one censor mirror per behaviour; fetch into ``state``."""
    censor = _censor()
    if fresh:
        shutil.rmtree(state, ignore_errors=True)
    with censor.censor_mirrors([(b, tree) for b in behaviours]) as urls:
        return mirror_fetch(root_json, urls, state)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _tree_size(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _bench(args: argparse.Namespace, work: Path) -> int:
    started = time.monotonic()
    main_case = push_bench.prepare(args, work, args.target_mb)
    # Build in a hard-linked copy of the corpus: scenario 2 adds articles to it.
    root = work / f"fetch-{main_case.root.name}"
    case = build_bench.scratch_case(main_case, root)
    root_json = case.keys / "root.json"
    print("building edition 1")
    edition = push_bench.build(case)
    censor = _censor()
    tree1 = censor.snapshot_tree(case.out / "publish", root / "tree-1")
    files, size = _tree_size(tree1)
    states = root / "states"

    print("first fetch: 9 of 10 mirrors hostile against 10 healthy")
    hostile: list[Fetch] = []
    healthy: list[Fetch] = []
    for attempt in range(1, args.repeat + 1):
        bad = fetch_from(HOSTILE, tree1, root_json, states / "hostile")
        hostile.append(bad)
        good = fetch_from(HEALTHY, tree1, root_json, states / "healthy")
        healthy.append(good)
        print(
            f"  #{attempt}: hostile {bad.seconds:.1f} s ({bad.verdicts()}), "
            f"healthy {good.seconds:.1f} s ({good.verdicts()}); "
            f"received {bad.received / 1e6:.1f} / {good.received / 1e6:.1f} MB"
        )
    shutil.rmtree(states / "hostile", ignore_errors=True)

    print("first fetch from one honest mirror (update baseline)")
    first_one = fetch_from(("honest",), tree1, root_json, states / "one")
    print(f"  {first_one.seconds:.1f} s, received {first_one.received / 1e6:.1f} MB")

    print(f"edition 2: {NEW_ARTICLES} new articles")
    push_bench._add_articles(case.corpus, NEW_ARTICLES)
    push_bench.build(case, fresh=False)
    tree2 = censor.snapshot_tree(case.out / "publish", root / "tree-2")
    zips2 = sorted(p.name for p in (tree2 / "targets").rglob("*.zip"))
    zips1 = sorted(p.name for p in (tree1 / "targets").rglob("*.zip"))
    update_one = fetch_from(("honest",), tree2, root_json, states / "one", fresh=False)
    print(
        f"  update from 1 mirror: {update_one.seconds:.1f} s, "
        f"received {update_one.received:,} of {first_one.received:,} bytes"
    )
    # The state of the last 10-healthy run has edition 1: update it from 10 healthy mirrors.
    update_ten = fetch_from(HEALTHY, tree2, root_json, states / "healthy", fresh=False)
    print(
        f"  update from 10 mirrors: {update_ten.seconds:.1f} s, "
        f"received {update_ten.received:,} of {healthy[-1].received:,} bytes"
    )
    for fetched, label in ((update_one, "1 mirror"), (update_ten, "10 mirrors")):
        if fetched.result.get("edition") == first_one.result.get("edition"):
            print(f"  warning: update from {label} did not move to a new edition")

    t_bad = _median([f.seconds for f in hostile])
    t_good = _median([f.seconds for f in healthy])
    ratio = t_bad / t_good
    rows: list[push_bench.Row] = [
        push_bench.Row(
            "first fetch, 9 of 10 mirrors hostile (3 blackhole, 3 tamper, 3 trickle, "
            "honest 6th), default timeouts",
            f"{t_bad:.1f} s ({_spread([f.seconds for f in hostile])})",
            f"{t_good:.1f} s, 10 healthy ({_spread([f.seconds for f in healthy])})",
            f"{ratio:.2f}x",
            f"<= {HOSTILE_TARGET:.0f}x",
            push_bench._verdict(ratio, HOSTILE_TARGET),
        )
    ]
    for fetched, first, label in (
        (update_one, first_one, "1 honest mirror"),
        (update_ten, healthy[-1], "10 healthy mirrors (info)"),
    ):
        share = fetched.received / first.received
        rows.append(
            push_bench.Row(
                f"update after {NEW_ARTICLES} new articles, {label}",
                f"{fetched.received / 1e6:.2f} MB received "
                f"({fetched.downloaded / 1e6:.2f} MB edition files), {fetched.seconds:.1f} s",
                f"{first.received / 1e6:.1f} MB first full fetch "
                f"({first.downloaded / 1e6:.1f} MB edition files)",
                f"{share:.2%}",
                f"<= {UPDATE_TARGET:.0%}",
                push_bench._verdict(share, UPDATE_TARGET)
                if "info" not in label
                else f"({push_bench._verdict(share, UPDATE_TARGET)})",
            )
        )
    notes = [
        "- per-run received bytes, first fetch: hostile "
        + ", ".join(f"{f.received / 1e6:.1f}" for f in hostile)
        + " MB; healthy "
        + ", ".join(f"{f.received / 1e6:.1f}" for f in healthy)
        + " MB",
        "- mirror verdicts (last run): hostile "
        + hostile[-1].verdicts()
        + "; healthy "
        + healthy[-1].verdicts(),
        f"- edition ZIPs in the tree: edition 1 {', '.join(zips1) or 'none'}; "
        f"edition 2 {', '.join(zips2) or 'none'} (default `archive_every_days`)",
    ]

    table = push_bench.markdown_table(rows)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        f"## {now} — fetch (`bench/fetch.py`)",
        "",
        *build_bench._machine(),
        build_bench._corpus_line("main", case),
        f"- edition: {edition.stat().st_size / 1e6:.0f} MB; publish tree: {files} files, "
        f"{size / 1e6:.0f} MB; {args.repeat} runs each where timed, median counts; "
        f"whole run {(time.monotonic() - started) / 60:.0f} min",
        "- mirrors are `tests/censor.py` servers (threads of the harness process) on "
        "127.0.0.1; every first fetch uses a fresh `--state`; `mirror fetch --json` with "
        "default `--connect-timeout`/`--timeout`",
        *notes,
        "",
        *table,
        "",
    ]
    build_bench.append_results(args.results, section)
    shutil.rmtree(root, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="mirror fetch benchmarks")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--target-mb", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/mbench-fetch"))
    parser.add_argument("--seed-from", type=Path, default=Path("/dev/shm/mbench"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, work)
    except build_bench.CommandFailed as failure:
        print(f"benchmark command failed: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
