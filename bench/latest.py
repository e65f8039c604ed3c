"""Reader benchmark: today's articles on a throttled link, first, verified.

Usage::

    python bench/latest.py [--articles 2000] [--target-mb 40] [--new 40]
                           [--rate-kbit 128] [--latency-ms 200] [--repeat 3]
                           [--work /dev/shm/mbench-latest] [--results bench/RESULTS.md]

A newsroom with an archive (``bench/corpus.py``: ``--articles`` articles,
``--target-mb`` with images, dated November 2026) adds ``--new`` articles
dated today and builds with ``edition.latest_days: 2``, so the latest
bundle holds exactly the new ones (no images, the default). One mirror
serves the publish tree through ``tests/censor.py``'s ``slow`` behaviour:
``--rate-kbit`` per response (128 kbit/s = 16,000 bytes a second) after
``--latency-ms`` per request, on 127.0.0.1 — a throttled mobile link.

Measured, ``--repeat`` times each, medians:

- ``mirror fetch --latest --json`` with a fresh ``--state``: the time until
  the new articles are verified and readable in the library (target: within
  60 s), and the bytes received;
- the baseline, in the same run over the same link: a plain HTTP GET of the
  bundle file alone (what any downloader needs for those bytes; no metadata,
  no verification). Their ratio is the cost of verifying on a bad link.

Also reported: the bundle's size (target: at most 1 MB for 40 articles
without images) and, for scale, the edition ZIP and the time that link
would need for it. Nothing is asserted; results go to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import corpus as corpus_gen  # bench/ is sys.path[0] when run as a script
import push as push_bench
import run as build_bench

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TIME_TARGET_S = 60.0
SIZE_TARGET_BYTES = 1_000_000
RATIO_TARGET = 3.0


def _censor() -> Any:
    """`tests.censor` (the repository root is not on sys.path when run as a script)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return __import__("tests.censor", fromlist=["running_mirrors"])


@dataclass(frozen=True)
class Timed:
    seconds: float
    received: int


def add_todays_articles(corpus: Path, count: int, *, now: datetime) -> None:
    """``count`` new articles dated today (the generator's text, new slugs, no images)."""
    scratch = corpus.parent / "todays-articles"
    shutil.rmtree(scratch, ignore_errors=True)
    corpus_gen.generate(scratch, articles=count, seed=777, target_mb=0)
    for number, path in enumerate(sorted(scratch.glob("*.md"))):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        stamp = now.replace(minute=number % 60, second=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = "".join(
            f"date: {stamp}\n" if line.startswith("date: ") else line
            for line in lines
            if "](img-" not in line  # text only: the bundle carries no images by default
        )
        (corpus / f"today-{path.name[2:]}").write_text(
            text.replace("slug: a-", "slug: today-"), encoding="utf-8"
        )
    shutil.rmtree(scratch)


def fetch_latest(root_json: Path, url: str, state: Path) -> tuple[Timed, dict[str, Any]]:
    shutil.rmtree(state, ignore_errors=True)
    argv = [str(build_bench._mirror_bin()), "fetch", "--root", str(root_json), "--json"]
    argv += ["--mirror", url, "--only", "--latest", "--state", str(state), "--timeout", "60"]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise build_bench.CommandFailed(
            f"{' '.join(argv)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    result = json.loads(done.stdout)
    return Timed(seconds, int(result["received_bytes"])), result


def plain_get(url: str) -> Timed:
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=600) as response:  # noqa: S310 - 127.0.0.1
        data = response.read()
    return Timed(time.monotonic() - start, len(data))


def _bench(args: argparse.Namespace, work: Path) -> int:
    started = time.monotonic()
    now = datetime.now(UTC).replace(microsecond=0)
    main_case = push_bench.prepare(args, work, args.target_mb)
    root = work / f"latest-{main_case.root.name}"
    case = build_bench.scratch_case(
        main_case, root, config=build_bench.CONFIG_TEMPLATE + "edition:\n  latest_days: 2\n"
    )
    add_todays_articles(case.corpus, args.new, now=now)
    print(f"building: {args.articles} archived articles and {args.new} of today")
    edition = push_bench.build(case)
    censor = _censor()
    tree = censor.snapshot_tree(case.out / "publish", root / "tree")
    (bundle,) = (tree / "targets" / "editions").glob("*.latest.zip")
    rate = args.rate_kbit * 1000 / 8
    spec = censor.MirrorSpec("slow", tree, delay_s=args.latency_ms / 1000, rate_bytes_s=rate)
    root_json = case.keys / "root.json"
    fetched: list[Timed] = []
    plain: list[Timed] = []
    result: dict[str, Any] = {}
    with censor.running_mirrors([spec]) as (mirror,):
        bundle_url = f"{mirror.url}{bundle.relative_to(tree).as_posix()}"
        for attempt in range(1, args.repeat + 1):
            timed, result = fetch_latest(root_json, mirror.url, root / "state")
            fetched.append(timed)
            raw = plain_get(bundle_url)
            plain.append(raw)
            print(
                f"  #{attempt}: mirror fetch --latest {timed.seconds:.1f} s "
                f"({timed.received:,} bytes); plain GET of the bundle {raw.seconds:.1f} s"
            )
    library = Path(result["path"])
    readable = len(list((library / "articles").glob("*.html")))
    t_fetch = statistics.median(t.seconds for t in fetched)
    t_plain = statistics.median(t.seconds for t in plain)
    ratio = t_fetch / t_plain
    size = bundle.stat().st_size
    rows = [
        push_bench.Row(
            f"{args.new} new articles verified and readable, fresh reader, "
            f"{args.rate_kbit} kbit/s + {args.latency_ms} ms",
            f"{t_fetch:.1f} s ({', '.join(f'{t.seconds:.1f}' for t in fetched)}); "
            f"{fetched[-1].received:,} bytes received; {readable} articles readable",
            f"{t_plain:.1f} s, plain GET of the bundle alone "
            f"({', '.join(f'{t.seconds:.1f}' for t in plain)})",
            f"{ratio:.2f}x",
            f"<= {TIME_TARGET_S:.0f} s; <= {RATIO_TARGET:.0f}x (info)",
            push_bench._verdict(t_fetch, TIME_TARGET_S),
        ),
        push_bench.Row(
            f"latest bundle, {args.new} articles without images",
            f"{size:,} bytes",
            f"edition ZIP {edition.stat().st_size:,} bytes "
            f"(~{edition.stat().st_size / rate / 60:.0f} min at this rate)",
            f"{size / edition.stat().st_size:.2%}",
            f"<= {SIZE_TARGET_BYTES:,} bytes",
            push_bench._verdict(size, SIZE_TARGET_BYTES),
        ),
    ]
    table = push_bench.markdown_table(rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        f"## {stamp} — latest articles on a throttled link (`bench/latest.py`)",
        "",
        *build_bench._machine(),
        build_bench._corpus_line("archive", case),
        f"- {args.new} articles dated today added, `edition.latest_days: 2`; one mirror: "
        f"`tests/censor.py` `slow` ({rate:,.0f} bytes/s per response, "
        f"{args.latency_ms} ms before each) on 127.0.0.1; {args.repeat} runs, medians; "
        f"whole run {(time.monotonic() - started) / 60:.0f} min",
        "",
        *table,
        "",
    ]
    build_bench.append_results(args.results, section)
    shutil.rmtree(root, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--target-mb", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--new", type=int, default=40)
    parser.add_argument("--rate-kbit", type=float, default=128.0)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/mbench-latest"))
    parser.add_argument("--seed-from", type=Path, default=Path("/dev/shm/mbench"))
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md")
    args = parser.parse_args(argv)
    try:
        return _bench(args, args.work)
    except build_bench.CommandFailed as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
