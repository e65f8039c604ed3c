"""The scale run (issue 13, item 5): one newsroom of 100,000 articles, end to end.

Usage::

    nice -n 10 python bench/scale.py [--articles 100000] [--target-mb 3000] [--mirrors 3]
                                     [--work bench-work/scale] [--drop-corpus]

On a corpus from ``bench/corpus.py`` (generated once and cached in the work
folder, as ``run.py`` does), every step is a real ``mirror`` command run as a
subprocess, with its wall time and peak RSS (``/usr/bin/time``, `run._run`):

1. ``mirror build`` into a fresh output folder;
2. ``mirror push`` with read-back to ``--mirrors`` ``local`` mirrors (folders);
3. ``mirror fetch`` by a fresh reader (fresh ``--state``, ``--root``) from the
   ``file://`` addresses of those mirrors;
4. 10 new articles (`push._add_articles`), then ``mirror build``, ``mirror
   push`` (read-back) and the same reader's ``mirror fetch``.

Targets (issue 13): every step succeeds; peak RSS <= 200 MB each; the
reader's update receives <= 2% of the bytes of its first fetch. What the
update received is broken down by the files edition 2 added to the publish
tree. A step that fails is recorded as such and ends the run. Nothing is
asserted: the section is appended to ``bench/RESULTS.md`` either way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import fetch as fetch_bench  # bench/ is sys.path[0] when run as a script
import push as push_bench
import run as build_bench

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
RSS_TARGET_MB = 200.0
UPDATE_TARGET = 0.02
NEW_ARTICLES = 10
HEADER = ("figure", "measured", "outcome / baseline", "ratio", "target", "result")


@dataclass(frozen=True)
class Step:
    """One measured `mirror` command: how long, how much memory, and whether it succeeded."""

    name: str
    seconds: float
    rss_mb: float | None
    failure: str | None = None
    """The command's last words when it failed."""
    detail: str = ""


@dataclass(frozen=True)
class TreeFile:
    """One file of a publish tree."""

    path: str
    size: int


def tree_files(tree: Path) -> dict[str, int]:
    """Every file of a publish tree and its size, by path relative to the tree."""
    return {
        str(path.relative_to(tree)): path.stat().st_size
        for path in tree.rglob("*")
        if path.is_file()
    }


def kind_of(path: str) -> str:
    """What a publish-tree file is, for the breakdown of an update."""
    name = path.rsplit("/", 1)[-1]
    if path.startswith("metadata/"):
        role = name.split(".", 1)[1] if name[0].isdigit() else name
        role = role.removesuffix(".json")
        for prefix, label in (
            ("edition-", "edition member list (metadata)"),
            ("content-", "content bins (metadata)"),
        ):
            if role.startswith(prefix):
                return label
        return f"{role} (metadata)"
    if path.startswith("targets/manifests/"):
        return "edition pages: index, feed, edition.json (targets/manifests)"
    if path.startswith("targets/articles/"):
        return "articles (targets)"
    if path.startswith("targets/assets/"):
        return "assets (targets)"
    if path.startswith("targets/editions/"):
        return "edition archives and bundles (targets/editions)"
    return path.split("/", 1)[0]


def breakdown(files: Iterable[TreeFile]) -> list[tuple[str, int, int]]:
    """(kind, files, bytes) of some publish-tree files, biggest first."""
    kinds: dict[str, list[int]] = {}
    for file in files:
        entry = kinds.setdefault(kind_of(file.path), [0, 0])
        entry[0] += 1
        entry[1] += file.size
    return sorted(((k, n, b) for k, (n, b) in kinds.items()), key=lambda r: -r[2])


def _last_words(failure: build_bench.CommandFailed) -> str:
    lines = [line for line in str(failure).splitlines() if line.strip()]
    return lines[-1][:300] if lines else "failed"


class Scale:
    """The steps of one scale run, in order; a failed step ends it."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.failed = False

    def measure(
        self, name: str, command: Callable[[], build_bench.Run], detail: str = ""
    ) -> build_bench.Run | None:
        """Run one step unless an earlier one failed; record it either way."""
        if self.failed:
            return None
        print(f"{name} ...", flush=True)
        start = time.perf_counter()
        try:
            done = command()
        except build_bench.CommandFailed as failure:
            self.failed = True
            words = _last_words(failure)
            self.steps.append(Step(name, time.perf_counter() - start, None, words))
            print(f"  FAILED: {failure}", file=sys.stderr)
            return None
        self.steps.append(Step(name, done.seconds, done.rss_mb, None, detail))
        print(f"  {done.seconds:.1f} s, {done.rss_mb or 0:.0f} MB RSS", flush=True)
        return done


def _build(case: build_bench.Case, into: list[Path], *, fresh: bool) -> build_bench.Run:
    """`mirror build` (peak RSS measured); the edition's path goes into ``into``."""
    done, edition = build_bench.mirror_build(case, fresh=fresh)
    into.append(edition)
    return done


def push_step(config: Path, report: Path) -> build_bench.Run:
    """`mirror push` with read-back; a mirror that did not verify is a failed step."""
    done = push_bench.mirror_push(config, read_back=True, report=report, rss=True)
    bad = [m for m in json.loads(report.read_text())["mirrors"] if not m["verified"]]
    if bad:
        raise build_bench.CommandFailed(f"read-back did not verify: {bad}")
    return done


def fetch_step(
    root_json: Path, urls: list[str], state: Path, into: list[fetch_bench.Fetch]
) -> build_bench.Run:
    """`mirror fetch --json` (peak RSS measured); the result goes into ``into``."""
    fetched = fetch_bench.mirror_fetch(root_json, urls, state, rss=True)
    into.append(fetched)
    return build_bench.Run(fetched.seconds, fetched.rss_mb, json.dumps(fetched.result))


def _pushed(report: Path) -> tuple[int, int]:
    """Bytes and files uploaded to the first mirror of a push report."""
    first = json.loads(report.read_text())["mirrors"][0]
    return int(first["uploaded_bytes"]), int(first["uploaded_files"])


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def _rss_cell(step: Step) -> tuple[str, str]:
    if step.failure is not None:
        return "-", "FAIL"
    if step.rss_mb is None:
        return "n/a", "n/a"
    return f"{step.rss_mb:.0f} MB", push_bench._verdict(step.rss_mb, RSS_TARGET_MB)


def _bench(args: argparse.Namespace, work: Path) -> int:
    started = time.monotonic()
    generated = time.monotonic()
    main_case = build_bench.prepare(
        work, articles=args.articles, target_mb=args.target_mb, seed=args.seed
    )
    generate_s = time.monotonic() - generated
    case = build_bench.scratch_case(main_case, work / f"scale-{main_case.root.name}")
    root_json = case.keys / "root.json"
    state = case.root / "reader"
    scale = Scale()
    notes: list[str] = []
    first: list[fetch_bench.Fetch] = []
    update: list[fetch_bench.Fetch] = []
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    edition_bytes = 0
    pairs = [(f"local-{n}", "local") for n in range(1, args.mirrors + 1)]
    with push_bench.running(pairs, case.root / "mirrors") as servers:
        broken = [s for s in servers if s.error is not None]
        if broken:
            raise build_bench.CommandFailed(f"local mirrors did not start: {broken}")
        config = push_bench.write_config(case, "scale", servers)
        urls = [s.public_url for s in servers]
        editions: list[Path] = []
        scale.measure("build", lambda: _build(case, editions, fresh=True))
        if editions:
            edition_bytes = editions[0].stat().st_size
            before = tree_files(case.out / "publish")
        scale.measure(
            f"push to {args.mirrors} local mirrors, read-back",
            lambda: push_step(config, case.root / "push-1.json"),
        )
        scale.measure(
            "first fetch, fresh reader (file://)",
            lambda: fetch_step(root_json, urls, state, first),
        )
        if not scale.failed:
            push_bench._add_articles(case.corpus, NEW_ARTICLES)
        scale.measure(
            f"build after {NEW_ARTICLES} new articles",
            lambda: _build(case, editions, fresh=False),
        )
        if not scale.failed:
            after = tree_files(case.out / "publish")
        scale.measure(
            f"push after {NEW_ARTICLES} new articles, read-back",
            lambda: push_step(config, case.root / "push-2.json"),
        )
        scale.measure(
            "update fetch, same reader",
            lambda: fetch_step(root_json, urls, state, update),
        )
        if not scale.failed:
            full, full_files = _pushed(case.root / "push-1.json")
            again, again_files = _pushed(case.root / "push-2.json")
            notes.append(
                f"- push uploaded {_mb(full)} in {full_files:,} files per mirror; the push "
                f"after {NEW_ARTICLES} new articles {_mb(again)} in {again_files:,} files "
                f"({again / full:.2%})"
            )

    notes.append(_baseline_note())
    rows = _step_rows(scale.steps)
    if first and update:
        rows.append(_update_row(first[0], update[0]))
    if before:
        notes += _tree_notes(before, after)
    table = push_bench.markdown_table(rows, header=HEADER)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stats = main_case.stats
    section = [
        f"## {now} — scale run (`bench/scale.py`)",
        "",
        *build_bench._machine(),
        f"- corpus: {stats.articles:,} articles ({_mb(stats.article_bytes)}), "
        f"{stats.images:,} images ({_mb(stats.image_bytes)}), "
        f"{stats.total_bytes / 1e9:.2f} GB total; generated or reused in {generate_s:.0f} s; "
        f"work dir `{case.root}`",
        f"- edition ZIP: {_mb(edition_bytes)}; {args.mirrors} `local` mirrors (folders) on the "
        "work dir's disk, read back and fetched through their `file://` addresses; "
        f"whole run {(time.monotonic() - started) / 60:.0f} min",
        *notes,
        "",
        *table,
        "",
    ]
    build_bench.append_results(args.results, section)
    if not args.keep:
        shutil.rmtree(case.root, ignore_errors=True)
    if args.drop_corpus:
        shutil.rmtree(main_case.root, ignore_errors=True)
    return 1 if scale.failed else 0


IMPORTS = "import mirror.cli, mirror.build, mirror.publish, mirror.reader.fetch"
"""What every step's process loads before it does anything (for the RSS floor)."""


def _baseline_note() -> str:
    """The RSS of a process that only imports mirror's code: what every figure starts from."""
    floor = build_bench._run([sys.executable, "-c", IMPORTS], rss=True).rss_mb or 0
    hidden = "import sys; sys.modules['boto3'] = None; " + IMPORTS
    without = build_bench._run([sys.executable, "-c", hidden], rss=True).rss_mb or 0
    return (
        f"- RSS floor: a process that only imports mirror's build, push and fetch code takes "
        f"{floor:.0f} MB here; {without:.0f} MB without boto3, which securesystemslib loads "
        "when it is installed (here by moto, of the test extra; `mirror[publish]` does not)"
    )


def _step_rows(steps: list[Step]) -> list[push_bench.Row]:
    rows = []
    for step in steps:
        rss, verdict = _rss_cell(step)
        outcome = f"failed: {step.failure}" if step.failure is not None else "exit 0"
        rows.append(
            push_bench.Row(
                step.name,
                f"{rss}, {step.seconds:,.1f} s",
                outcome,
                "-",
                f"succeeds; <= {RSS_TARGET_MB:.0f} MB",
                verdict,
            )
        )
    return rows


def _update_row(first: fetch_bench.Fetch, update: fetch_bench.Fetch) -> push_bench.Row:
    share = update.received / first.received
    return push_bench.Row(
        f"update after {NEW_ARTICLES} new articles: bytes received",
        f"{_mb(update.received)} ({_mb(update.downloaded)} edition files)",
        f"{_mb(first.received)} first fetch ({_mb(first.downloaded)} edition files)",
        f"{share:.2%}",
        f"<= {UPDATE_TARGET:.0%}",
        push_bench._verdict(share, UPDATE_TARGET),
    )


def _tree_notes(before: dict[str, int], after: dict[str, int]) -> list[str]:
    notes = [
        f"- publish tree of edition 1: {len(before):,} files, {_mb(sum(before.values()))}",
        "- biggest metadata files of edition 1: "
        + ", ".join(
            f"`{path.removeprefix('metadata/')}` {_mb(size)}"
            for path, size in sorted(
                ((p, s) for p, s in before.items() if p.startswith("metadata/")),
                key=lambda item: -item[1],
            )[:4]
        ),
    ]
    if after:
        added = [TreeFile(p, s) for p, s in after.items() if p not in before]
        total = sum(f.size for f in added)
        notes.append(
            f"- files edition 2 added to the tree: {len(added):,}, {_mb(total)}: "
            + "; ".join(f"{kind} {n:,} files {_mb(size)}" for kind, n, size in breakdown(added))
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="mirror at 100,000 articles, end to end")
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--target-mb", type=float, default=3000.0)
    parser.add_argument("--mirrors", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "bench-work" / "scale")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's tree (output, mirrors, reader)"
    )
    parser.add_argument(
        "--drop-corpus", action="store_true", help="delete the cached corpus at the end"
    )
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
