"""Start-up benchmarks: how long a short `mirror` command takes, against the interpreter alone.

Usage::

    python bench/startup.py [--repeat 15] [--work bench/work/startup]

On the bundled example (``config/example.yaml``, copied into the work folder so
its output and mirrors land there), built and pushed once with ``mirror sync``,
measures the wall time (median of ``--repeat`` runs, each a fresh process) of:

- ``mirror --version`` (target: <= 0.15 s);
- ``mirror verify`` of the example edition with a fresh ``--state`` (target: <= 0.4 s);
- ``mirror tuf-client init`` and ``refresh`` against the example's local mirror, the
  conformance suite's one-process-per-step protocol (target: <= 0.4 s each);

and, in the same run, the baselines ``python3 -I -c pass`` (the interpreter's own
start, which no command can beat) and ``minisign -v``. The ratio to the
interpreter's start is printed beside every figure, so a loaded machine shows
in the baseline instead of passing for slow code. Results are appended to
``bench/RESULTS.md``. Nothing is asserted: the harness exits 0 unless a
measured command fails.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import run as build_bench  # bench/ is sys.path[0] when run as a script

BENCH_DIR, REPO, RESULTS = build_bench.BENCH_DIR, build_bench.REPO, build_bench.RESULTS
VERSION_TARGET_S = 0.15
VERIFY_TARGET_S = 0.4
TUF_CLIENT_TARGET_S = 0.4


@dataclass
class Timing:
    """Wall times of one command, one fresh process per run."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def spread(self) -> str:
        return f"{min(self.seconds):.3f}-{max(self.seconds):.3f}"


def timed(argv: Sequence[str], repeat: int, *, before: Callable[[], None] = lambda: None) -> Timing:
    """``argv`` run ``repeat`` times; ``before`` prepares each run (untimed)."""
    timing = Timing()
    for _ in range(repeat):
        before()
        started = time.perf_counter()
        done = subprocess.run(list(argv), capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise build_bench.CommandFailed(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
            )
        timing.seconds.append(elapsed)
    return timing


def example_site(work: Path, mirror: str) -> tuple[Path, Path]:
    """The bundled example in ``work`` (config copied, examples linked), synced once.

    Returns the config file and the edition ZIP.
    """
    shutil.rmtree(work, ignore_errors=True)
    (work / "config").mkdir(parents=True)
    shutil.copy2(REPO / "config" / "example.yaml", work / "config" / "example.yaml")
    (work / "examples").symlink_to(REPO / "examples")
    config = work / "config" / "example.yaml"
    subprocess.run(
        [mirror, "--config", str(config), "sync"],
        check=True,
        capture_output=True,
    )
    (edition,) = [
        p for p in (work / "out" / "editions").glob("*.zip") if not p.name.endswith(".latest.zip")
    ]
    return config, edition


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="mirror start-up benchmarks")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--work", type=Path, default=BENCH_DIR / "work" / "startup")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--mirror",
        type=Path,
        help="the mirror command to time (default: this checkout's .venv, whose test extra "
        "also holds boto3, which securesystemslib imports at start when it is there)",
    )
    args = parser.parse_args(argv)
    try:
        return _bench(args)
    except (build_bench.CommandFailed, subprocess.CalledProcessError) as failure:
        print(f"benchmark command failed: {failure}", file=sys.stderr)
        return 1


def _bench(args: argparse.Namespace) -> int:
    work: Path = args.work.resolve()
    mirror = str(args.mirror or build_bench._mirror_bin())
    build_bench.compile_package()
    _, edition = example_site(work, mirror)
    root = REPO / "examples" / "keys" / "root.json"
    state, tuf_dir = work / "reader", work / "tuf-client"
    metadata_url = (work / "mirrors" / "a" / "metadata").as_uri() + "/"
    repeat = args.repeat

    def fresh(folder: Path) -> Callable[[], None]:
        return lambda: shutil.rmtree(folder, ignore_errors=True)

    python = timed([sys.executable, "-I", "-c", "pass"], repeat)
    minisign = timed(["minisign", "-v"], repeat)
    version = timed([mirror, "--version"], repeat)
    verify = timed(
        [mirror, "verify", str(edition), "--root", str(root), "--state", str(state)],
        repeat,
        before=fresh(state),
    )
    tuf = [mirror, "tuf-client", "--metadata-dir", str(tuf_dir)]
    init = timed([*tuf, "init", str(root)], repeat, before=fresh(tuf_dir))

    def initialised() -> None:
        fresh(tuf_dir)()
        subprocess.run([*tuf, "init", str(root)], check=True, capture_output=True)

    refresh = timed([*tuf, "--metadata-url", metadata_url, "refresh"], repeat, before=initialised)

    rows = [
        ("`python3 -I -c pass` (baseline)", python, None),
        ("`minisign -v` (baseline)", minisign, None),
        ("`mirror --version`", version, VERSION_TARGET_S),
        ("`mirror verify` of the example edition, fresh `--state`", verify, VERIFY_TARGET_S),
        ("`mirror tuf-client init`", init, TUF_CLIENT_TARGET_S),
        (
            "`mirror tuf-client refresh` from the example's local mirror",
            refresh,
            TUF_CLIENT_TARGET_S,
        ),
    ]
    table = [
        "| command | wall, median (range) | x interpreter start | target | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, timing, target in rows:
        ratio = timing.median / python.median
        verdict = "-" if target is None else ("PASS" if timing.median <= target else "MISS")
        goal = "(baseline)" if target is None else f"<= {target:.2f} s"
        line = (
            f"| {name} | {timing.median:.3f} s ({timing.spread()}) | {ratio:.1f}x | {goal} "
            f"| {verdict} |"
        )
        table.append(line)
        print(line)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        f"## {now} — start-up (`bench/startup.py`)",
        "",
        *build_bench._machine(),
        f"- the bundled example (`config/example.yaml`, {edition.stat().st_size:,} bytes edition), "
        f"synced once into `{work}`; {repeat} runs of each command, a fresh process each, "
        "the package byte-compiled first (as an installed wheel is)",
        f"- timed: `{mirror}` ({_packages(mirror)})",
        f"- load average at the end: {_load()}",
        "",
        *table,
        "",
    ]
    build_bench.append_results(args.results, section)
    return 0


def _packages(mirror: str) -> str:
    """Which install is timed: whether boto3 (the test extra's, through moto) is in it."""
    python = Path(mirror).with_name("python")
    probe = "import importlib.util as u; print(bool(u.find_spec('boto3')))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return (
        "with boto3"
        if found.stdout.strip() == "True"
        else "no boto3, as a reader's or newsroom's install"
    )


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
