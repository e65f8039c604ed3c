"""Benchmark harness: `mirror build` and `mirror verify` against stock tools, as ratios.

Usage::

    python bench/run.py [--articles 10000] [--target-mb 300] [--big-mb 2000] [--skip-big]
                        [--work DIR] [--repeat 3] [--seed 1]

Generates (or reuses) a corpus with ``bench/corpus.py``, then measures in the
same run, on the same machine:

- build: ``mirror build`` against ``zip -X -r`` + ``sha256sum`` of every file
  + ``minisign -S`` (target: ratio <= 1.0);
- verify: ``mirror verify`` against ``unzip -tq`` + ``minisign -Vm`` of the
  same edition file (target: ratio <= 1.0);
- peak RSS of ``mirror build`` and ``mirror verify`` on a big corpus
  (``--big-mb``, target <= 150 MB each), unless ``--skip-big``;
- ``mirror build`` again with nothing changed (target: <= 0.05x the build
  baseline) and after 10 new articles (target: <= 0.15x), both against the
  output folder of the last build, so its build cache and edition are used.

Each timed command runs ``--repeat`` times; the median wall time counts. The
results are printed and appended to ``bench/RESULTS.md``. Timings are never
asserted: the harness exits 0 unless a command itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import corpus as corpus_gen  # bench/ is sys.path[0] when run as a script

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
TIME_BIN = Path("/usr/bin/time")
RATIO_TARGET = 1.0
UNCHANGED_TARGET = 0.05
REBUILD_TARGET = 0.15
NEW_ARTICLES = 10
RSS_TARGET_MB = 150.0
PASSPHRASE = "bench-passphrase-not-secret\n"  # noqa: S105 - throwaway bench keys

CONFIG_TEMPLATE = """\
publisher: {name: Bench News, title: Bench News, language: en}
sources:
  - type: directory
    path: corpus
keys: {dir: keys, passphrase: file:passphrase}
output: out
"""

RESULTS_HEADER = """\
# Benchmark results

Appended by `python bench/run.py` (see `bench/README.md`). Every figure is
compared with a stock-tool baseline measured in the same run on the same
machine; wall times are medians. Targets are from the design notes, section "Benchmarks".
"""


class CommandFailed(Exception):
    """A measured command exited non-zero."""


@dataclass
class Run:
    """One measured execution: wall seconds and, when measured, peak RSS in MB."""

    seconds: float
    rss_mb: float | None = None
    stdout: str = ""


@dataclass
class Figure:
    """The median of repeated runs of one command (or sequence of commands)."""

    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def peak_rss_mb(self) -> float | None:
        values = [run.rss_mb for run in self.runs if run.rss_mb is not None]
        return max(values) if values else None

    def spread(self) -> str:
        return ", ".join(f"{run.seconds:.2f}" for run in self.runs)


@dataclass(frozen=True)
class Case:
    """A prepared corpus with its config, keys and baseline key."""

    root: Path
    stats: corpus_gen.CorpusStats

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def config(self) -> Path:
        return self.root / "mirror.yaml"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def baseline_dir(self) -> Path:
        return self.root / "baseline"


def _run(argv: Sequence[str | Path], *, cwd: Path | None = None, rss: bool = False) -> Run:
    """Run one command, timing it; with `rss`, also its peak RSS via /usr/bin/time."""
    command = [str(part) for part in argv]
    rss_file: Path | None = None
    if rss:
        handle, name = tempfile.mkstemp(prefix="mbench-rss-")
        os.close(handle)
        rss_file = Path(name)
        if TIME_BIN.exists():
            command = [str(TIME_BIN), "-f", "%M", "-o", name, *command]
    before = _children_maxrss_kb()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise CommandFailed(
            f"{' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    rss_mb: float | None = None
    if rss_file is not None:
        if TIME_BIN.exists():
            rss_mb = int(rss_file.read_text().split()[-1]) / 1024
        else:
            # Only meaningful when this is the largest child so far (fresh harness process).
            after = _children_maxrss_kb()
            rss_mb = after / 1024 if after > before else None
        rss_file.unlink()
    return Run(seconds=seconds, rss_mb=rss_mb, stdout=done.stdout)


def _children_maxrss_kb() -> int:
    import resource  # noqa: PLC0415 - POSIX only, used only without /usr/bin/time

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def _mirror_bin() -> Path:
    beside = Path(sys.executable).parent / "mirror"
    if beside.exists():
        return beside
    found = shutil.which("mirror")
    if found is None:
        raise SystemExit("cannot find the `mirror` command; run with the project's venv python")
    return Path(found)


def prepare(work: Path, *, articles: int, target_mb: float, seed: int) -> Case:
    """Generate the corpus (unless cached), config, mirror keys and the baseline minisign key."""
    root = work / f"corpus-{articles}-{target_mb:g}mb-s{seed}"
    stamp = root / "corpus.json"
    wanted = {"articles": articles, "target_mb": target_mb, "seed": seed, "format": 1}
    stats: corpus_gen.CorpusStats | None = None
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == wanted:
            stats = corpus_gen.CorpusStats(**saved["stats"])
            print(f"reusing corpus {root / 'corpus'}")
    if stats is None:
        if root.exists():
            shutil.rmtree(root)
        print(f"generating corpus: {articles} articles, ~{target_mb:g} MB in {root / 'corpus'}")
        start = time.perf_counter()
        stats = corpus_gen.generate(
            root / "corpus", articles=articles, seed=seed, target_mb=target_mb
        )
        print(f"  done in {time.perf_counter() - start:.1f} s")
        stamp.write_text(
            json.dumps(
                {
                    "params": wanted,
                    "stats": {
                        "articles": stats.articles,
                        "images": stats.images,
                        "article_bytes": stats.article_bytes,
                        "image_bytes": stats.image_bytes,
                    },
                }
            )
        )
    case = Case(root=root, stats=stats)
    case.config.write_text(CONFIG_TEMPLATE)
    passphrase = root / "passphrase"
    passphrase.write_text(PASSPHRASE)
    passphrase.chmod(0o600)
    if not (case.keys / "root.json").exists():
        shutil.rmtree(case.keys, ignore_errors=True)
        _run([_mirror_bin(), "--config", case.config, "keys", "init"])
    if not (root / "minisign.key").exists():
        _run(
            ["minisign", "-G", "-W", "-f", "-p", root / "minisign.pub", "-s", root / "minisign.key"]
        )
    return case


def scratch_case(main: Case, root: Path, *, config: str = CONFIG_TEMPLATE) -> Case:
    """A copy of ``main`` in ``root`` to add articles to: the corpus hard-linked, keys copied.

    Hard links cost no disk and leave the cached corpus untouched as long as
    files are only added (the scenarios never edit one in place).
    """
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(main.corpus), str(root / "corpus")], check=True)
    shutil.copytree(main.keys, root / "keys")
    shutil.copy2(main.root / "passphrase", root / "passphrase")
    case = Case(root=root, stats=main.stats)
    case.config.write_text(config)
    return case


def mirror_build(case: Case, *, fresh: bool = True) -> tuple[Run, Path]:
    """One `mirror build` (into a fresh output folder unless not `fresh`), its peak RSS measured.

    Returns the run and the edition path.
    """
    if fresh:
        shutil.rmtree(case.out, ignore_errors=True)
    run = _run([_mirror_bin(), "--config", case.config, "build", "--json"], rss=True)
    result = json.loads(run.stdout)
    zip_path = Path(result["zip"])
    if not zip_path.is_absolute():
        zip_path = case.root / zip_path
    return run, zip_path


def add_articles(corpus: Path, count: int, *, seed: int = 4242, prefix: str = "new") -> list[Path]:
    """`count` new articles (and their images) with fresh slugs, from the same generator.

    Returns the files added, so a caller can take them out again.
    """
    scratch = corpus.parent / f"{prefix}-articles"
    shutil.rmtree(scratch, ignore_errors=True)
    corpus_gen.generate(scratch, articles=count, seed=seed, target_mb=0)
    added = []
    for path in sorted(scratch.iterdir()):
        if path.suffix == ".md":
            text = path.read_text(encoding="utf-8")
            text = text.replace("slug: a-", f"slug: {prefix}-").replace("](img-", f"]({prefix}img-")
            target = corpus / (f"{prefix}-" + path.name[2:])
            target.write_text(text, encoding="utf-8")
        else:
            target = corpus / (prefix + path.name)
            shutil.copy2(path, target)
        added.append(target)
    shutil.rmtree(scratch)
    return added


def mirror_rebuild(case: Case) -> tuple[Run, bool]:
    """`mirror build` into the existing output folder; returns the run and whether it built."""
    run = _run([_mirror_bin(), "--config", case.config, "build", "--json"], rss=True)
    return run, not json.loads(run.stdout).get("unchanged", False)


def compile_package() -> None:
    """Byte-compile mirror once: an installed package has its .pyc files, an editable one
    run with PYTHONDONTWRITEBYTECODE would compile every module at every start."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(BENCH_DIR.parent / "mirror")], check=True
    )


def baseline_build(case: Case) -> Run:
    """`zip -X -r` of the corpus, `sha256sum` of every file, `minisign -S` of the zip."""
    shutil.rmtree(case.baseline_dir, ignore_errors=True)
    case.baseline_dir.mkdir()
    archive = case.baseline_dir / "edition.zip"
    files = sorted(
        str(path.relative_to(case.corpus)) for path in case.corpus.rglob("*") if path.is_file()
    )
    start = time.perf_counter()
    _run(["zip", "-X", "-r", "-q", archive, "."], cwd=case.corpus)
    sums = _run(["sha256sum", "--", *files], cwd=case.corpus)
    (case.baseline_dir / "SHA256SUMS").write_text(sums.stdout)
    _run(["minisign", "-S", "-s", case.root / "minisign.key", "-m", archive])
    return Run(seconds=time.perf_counter() - start)


def mirror_verify(case: Case, edition: Path) -> Run:
    """`mirror verify` with a fresh reader state folder."""
    state = case.root / "reader-state"
    shutil.rmtree(state, ignore_errors=True)
    return _run(
        [_mirror_bin(), "verify", edition, "--root", case.keys / "root.json", "--state", state],
        rss=True,
    )


def baseline_verify(case: Case, edition: Path) -> Run:
    """`unzip -tq` + `minisign -Vm` of the same edition, with mirror's exported minisign key."""
    start = time.perf_counter()
    _run(["unzip", "-tq", edition])
    _run(["minisign", "-Vm", edition, "-p", case.keys / "minisign.pub"])
    return Run(seconds=time.perf_counter() - start)


def append_results(results: Path, section: list[str]) -> None:
    """Print a dated results section and append it to ``results`` (created with a header)."""
    print()
    print("\n".join(section))
    if not results.exists():
        results.write_text(RESULTS_HEADER)
    with results.open("a", encoding="utf-8") as file:
        file.write("\n" + "\n".join(section))
    print(f"appended to {results}")


def _verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def _machine() -> list[str]:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"- nproc: {len(os.sched_getaffinity(0))}; CPU: {cpu or platform.machine()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"{platform.system()} {platform.release()}",
        f"- mirror tree: {commit or 'unknown'}",
    ]


def _corpus_line(label: str, case: Case) -> str:
    stats = case.stats
    return (
        f"- {label} corpus: {stats.articles} articles ({stats.article_bytes / 1e6:.0f} MB), "
        f"{stats.images} images ({stats.image_bytes / 1e6:.0f} MB), "
        f"{stats.total_bytes / 1e6:.0f} MB total; work dir `{case.root}`"
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="mirror build/verify benchmarks")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--target-mb", type=float, default=300.0)
    parser.add_argument("--big-mb", type=float, default=2000.0)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=BENCH_DIR / "work")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    try:
        return _bench(args, work)
    except CommandFailed as failure:
        print(f"benchmark command failed: {failure}", file=sys.stderr)
        return 1


def _bench(args: argparse.Namespace, work: Path) -> int:
    case = prepare(work, articles=args.articles, target_mb=args.target_mb, seed=args.seed)
    compile_package()
    build, base_build, verify, base_verify = Figure(), Figure(), Figure(), Figure()
    edition = Path()
    for attempt in range(1, args.repeat + 1):
        run, edition = mirror_build(case)
        build.runs.append(run)
        base_build.runs.append(baseline_build(case))
        print(
            f"build #{attempt}: mirror {run.seconds:.2f} s ({run.rss_mb or 0:.0f} MB RSS), "
            f"baseline {base_build.runs[-1].seconds:.2f} s"
        )
    for attempt in range(1, args.repeat + 1):
        verify.runs.append(mirror_verify(case, edition))
        base_verify.runs.append(baseline_verify(case, edition))
        print(
            f"verify #{attempt}: mirror {verify.runs[-1].seconds:.2f} s "
            f"({verify.runs[-1].rss_mb or 0:.0f} MB RSS), "
            f"baseline {base_verify.runs[-1].seconds:.2f} s"
        )
    edition_mb = edition.stat().st_size / 1e6
    # The last build's output folder (cache and edition) is what the next runs start from.
    unchanged, rebuild = Figure(), Figure()
    for attempt in range(1, args.repeat + 1):
        run, built = mirror_rebuild(case)
        unchanged.runs.append(run)
        print(f"unchanged #{attempt}: {run.seconds:.2f} s (built: {built})")
    added: list[Path] = []
    try:
        for attempt in range(1, args.repeat + 1):
            added += add_articles(
                case.corpus, NEW_ARTICLES, seed=4242 + attempt, prefix=f"new{attempt}"
            )
            run, built = mirror_rebuild(case)
            rebuild.runs.append(run)
            print(f"{NEW_ARTICLES} new #{attempt}: {run.seconds:.2f} s (built: {built})")
    finally:
        for path in added:
            path.unlink(missing_ok=True)

    rows: list[tuple[str, str, str, str, str, str]] = []
    for name, mine, base in (("build", build, base_build), ("verify", verify, base_verify)):
        ratio = mine.median / base.median
        rows.append(
            (
                f"{name} wall time",
                f"{mine.median:.2f} s ({mine.spread()})",
                f"{base.median:.2f} s ({base.spread()})",
                f"{ratio:.2f}x",
                f"<= {RATIO_TARGET:.1f}x",
                _verdict(ratio, RATIO_TARGET),
            )
        )
    for name, mine, target in (
        ("rebuild, nothing changed", unchanged, UNCHANGED_TARGET),
        (f"rebuild after {NEW_ARTICLES} new articles", rebuild, REBUILD_TARGET),
    ):
        ratio = mine.median / base_build.median
        rows.append(
            (
                f"{name} wall time",
                f"{mine.median:.2f} s ({mine.spread()})",
                f"{base_build.median:.2f} s (build baseline)",
                f"{ratio:.3f}x",
                f"<= {target:.2f}x",
                _verdict(ratio, target),
            )
        )
    for name, figure in (("build", build), ("verify", verify)):
        rss = figure.peak_rss_mb
        rows.append(
            (
                f"{name} peak RSS ({case.stats.total_bytes / 1e6:.0f} MB corpus)",
                f"{rss:.0f} MB" if rss is not None else "n/a",
                "-",
                "-",
                "(info)",
                "-",
            )
        )

    big: Case | None = None
    if not args.skip_big:
        big = prepare(work, articles=args.articles, target_mb=args.big_mb, seed=args.seed)
        run, big_edition = mirror_build(big)
        print(f"big build: {run.seconds:.2f} s, {run.rss_mb or 0:.0f} MB RSS")
        big_verify = mirror_verify(big, big_edition)
        print(f"big verify: {big_verify.seconds:.2f} s, {big_verify.rss_mb or 0:.0f} MB RSS")
        for name, measured in (("build", run), ("verify", big_verify)):
            rss = measured.rss_mb
            rows.append(
                (
                    f"{name} peak RSS ({big.stats.total_bytes / 1e6:.0f} MB corpus)",
                    f"{rss:.0f} MB ({measured.seconds:.1f} s)" if rss is not None else "n/a",
                    "-",
                    "-",
                    f"<= {RSS_TARGET_MB:.0f} MB",
                    _verdict(rss, RSS_TARGET_MB) if rss is not None else "n/a",
                )
            )
        shutil.rmtree(big.out, ignore_errors=True)

    header = ("figure", "mirror (runs)", "baseline (runs)", "ratio", "target", "result")
    table = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        f"## {now}",
        "",
        *_machine(),
        _corpus_line("main", case),
        *([_corpus_line("big", big)] if big is not None else []),
        f"- edition: {edition_mb:.0f} MB; {args.repeat} runs each, median counts",
        "",
        *table,
        "",
    ]
    append_results(args.results, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
