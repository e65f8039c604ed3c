"""Coverage-guided fuzzing of the parsers that read what others hand us (atheris / libFuzzer).

Usage::

    python bench/fuzz.py TARGET [--runs N] [--seconds S] [--corpus DIR] [--results FILE]

Targets:

- ``edition``: the strict edition ZIP reader, `mirror.edition.EditionArchive`:
  open (structure, names, tiling, caps) and read every member (inflate,
  lengths, CRC-32), as `mirror verify` does before any signature is checked.
- ``strictjson``: `mirror.trust.strictjson.loads`, which every piece of signed
  metadata from a mirror goes through.
- ``frontmatter``: an article file's front matter and the values read from
  it (`mirror.ingest.directory`), under the `mirror.yamlbounds` caps.

An input may only end in a `MirrorError` (the product's own verdict); any
other exception is a finding: atheris stops, prints the input's path
(``crash-<sha1>`` in the working folder) and this script records it. Each
target starts from a seed corpus in ``bench/fuzz-corpus/<target>/`` (a
real edition made by the test helpers, signed metadata, front matter from
the test suite) that `seed_corpus` writes when it is missing; new inputs
libFuzzer finds interesting are added to the same folder, so a later run
goes on from there. Every run appends its executions, coverage, speed and
findings to ``bench/RESULTS.md``. tests/test_fuzz_harness.py runs each
target on the seeds and a few thousand mutations in seconds, without atheris.
"""

# ruff: noqa: PLC0415, S311 - imports wait until atheris instruments them; the mutations are test data
from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CORPUS = BENCH / "fuzz-corpus"
TARGETS = ("edition", "strictjson", "frontmatter")
MAX_LEN = {"edition": 64 * 1024, "strictjson": 16 * 1024, "frontmatter": 8 * 1024}

_SCRATCH = Path(tempfile.gettempdir()) / f"mirror-fuzz-{os.getpid()}.zip"
atexit.register(lambda: _SCRATCH.unlink(missing_ok=True))


def check_edition(data: bytes) -> None:
    """Open ``data`` as an edition archive and read every member, as a verifier would."""
    from mirror.edition import ArchiveLimits, EditionArchive
    from mirror.errors import MirrorError

    _SCRATCH.write_bytes(data)
    try:
        with EditionArchive.open(_SCRATCH, ArchiveLimits(max_total_bytes=64 * 1024**2)) as archive:
            for member in archive.members:
                for _chunk in archive.iter_chunks(member, max_bytes=4 * 1024**2):
                    pass
    except MirrorError:
        pass


def check_strictjson(data: bytes) -> None:
    """Parse ``data`` as signed metadata would be parsed."""
    from mirror.errors import MirrorError
    from mirror.trust import strictjson

    with contextlib.suppress(MirrorError):
        strictjson.loads(data, what="fuzzed metadata")


def check_frontmatter(data: bytes) -> None:
    """Read ``data`` as an article file's text: front matter, then the values taken from it."""
    from mirror.errors import MirrorError
    from mirror.ingest import directory
    from mirror.ingest.model import DEFAULT_LIMITS

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    source = "fuzz.md"
    try:
        metadata, _body, _line = directory._split_front_matter(text, source, DEFAULT_LIMITS)
        directory._title(metadata.get("title"), source)
        directory._date(metadata.get("date"), source)
        directory._author(metadata.get("author"), source, DEFAULT_LIMITS)
        directory._language(metadata.get("language"), source, "en")
        directory._tags(metadata.get("tags"), source, DEFAULT_LIMITS)
        directory._optional_text(metadata.get("summary"), "summary", source)
        slug = metadata.get("slug")
        if slug is not None:
            directory._slug(slug, Path("fuzz.md"), source)
    except MirrorError:
        pass


CHECKS: dict[str, Callable[[bytes], None]] = {
    "edition": check_edition,
    "strictjson": check_strictjson,
    "frontmatter": check_frontmatter,
}


def seed_corpus(target: str, folder: Path) -> None:
    """Write the seed inputs for ``target`` into ``folder`` (kept if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    seeds = _seeds(target)
    for number, seed in enumerate(seeds):
        (folder / f"seed-{number:02d}").write_bytes(seed)


def _seeds(target: str) -> list[bytes]:
    if target == "frontmatter":
        return [
            b"---\ntitle: Hello\ndate: 2024-03-01\ntags: [a, b]\nauthor: [X, Y]\n---\nBody\n",
            "---\ntitle: Привет\ndate: 2024-03-01T09:00:00+03:00\nlanguage: ru\n---\n"
            "Текст\n".encode(),
            b"---\na: &a [x, y]\nb: [*a, *a]\ntitle: t\ndate: 2024-01-01\n---\nx\n",
            b"---\ntitle: [[[x]]]\n---\n",
        ]
    edition, metadata = _built_edition()
    if target == "edition":
        return [edition]
    return metadata


def _built_edition() -> tuple[bytes, list[bytes]]:
    """A small real edition and its signed metadata, made with the test suite's helpers."""
    from mirror.build import BuildResult, build_edition
    from tests.conftest import BUILD_TIME, make_config, make_keys, write_articles

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        write_articles(home / "articles", 2)
        config = make_config(home)
        make_keys(config)
        built = build_edition(config, now=BUILD_TIME, workers=1)
        assert isinstance(built, BuildResult)
        folder = built.publish_dir / "metadata"
        chosen = ["1.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"]
        by_size = sorted(folder.glob("*.json"), key=lambda path: -path.stat().st_size)
        paths = [folder / name for name in chosen] + [p for p in by_size if p.name not in chosen]
        small = [path.read_bytes() for path in paths if path.stat().st_size < 16 * 1024]
        return built.zip_path.read_bytes(), small[:6]


def smoke(target: str, *, mutations: int, seed: int = 1) -> int:
    """Run ``target`` on its seeds and ``mutations`` random mutations of them; return the count."""
    import random

    folder = CORPUS / target
    seed_corpus(target, folder)
    inputs = [path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()]
    check = CHECKS[target]
    rng = random.Random(seed)
    runs = 0
    for data in inputs:
        check(data)
        runs += 1
    for _ in range(mutations):
        buffer = bytearray(rng.choice(inputs))
        for _step in range(rng.randint(1, 4)):
            if not buffer:
                break
            at = rng.randrange(len(buffer))
            kind = rng.randrange(4)
            if kind == 0:
                buffer[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del buffer[at : at + rng.randint(1, 64)]
            elif kind == 2:
                buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            else:
                buffer[at:at] = buffer[at : at + rng.randint(1, 256)]
        check(bytes(buffer))
        runs += 1
    return runs


def _fuzz(target: str, runs: int, seconds: int, corpus: Path) -> None:
    """The atheris run itself (this process ends when libFuzzer is done)."""
    import atheris

    with atheris.instrument_imports(include=["mirror"]):
        import mirror.edition
        import mirror.ingest.directory
        import mirror.trust.strictjson
        import mirror.yamlbounds  # noqa: F401 - instrumented for coverage
    check = CHECKS[target]
    argv = [
        sys.argv[0],
        f"-runs={runs}",
        f"-max_total_time={seconds}",
        f"-max_len={MAX_LEN[target]}",
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=2048",
        str(corpus),
    ]
    atheris.Setup(argv, check)
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    corpus = args.corpus or CORPUS / args.target
    if args.child:
        _fuzz(args.target, args.runs, args.seconds, corpus)
        return 0
    seed_corpus(args.target, corpus)
    started = datetime.now(UTC)
    command = [sys.executable, __file__, args.target, "--child", "--runs", str(args.runs)]
    command += ["--seconds", str(args.seconds), "--corpus", str(corpus)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    output = done.stderr + done.stdout
    report = _summary(args.target, output, done.returncode, started)
    print(report)
    with args.results.open("a", encoding="utf-8") as results:
        results.write(report + "\n")
    return 0 if done.returncode == 0 else 1


def _summary(target: str, output: str, code: int, started: datetime) -> str:
    def stat(name: str) -> str:
        found = re.findall(rf"stat::{name}:\s+(\d+)", output)
        return found[-1] if found else "?"

    coverage = re.findall(r"cov: (\d+) ft: (\d+)", output)
    crashes = re.findall(r"(?:Test unit written to|crash-)\S*", output)
    exceptions = re.findall(r"=== Uncaught Python exception: ===\n(.+)", output)
    lines = [
        f"\n## fuzz {target}, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        f"- executions: {stat('number_of_executed_units')}, "
        f"{stat('average_exec_per_sec')} per second, "
        f"slowest input {stat('slowest_unit_time_sec')} s",
        f"- coverage at the end: {coverage[-1][0] if coverage else '?'} edges, "
        f"{coverage[-1][1] if coverage else '?'} features; "
        f"corpus {len(list((CORPUS / target).iterdir()))} inputs",
        f"- findings: {len(exceptions)} unexpected exceptions"
        + (f" ({'; '.join(exceptions)}; {', '.join(crashes)})" if exceptions else "")
        + f"; libFuzzer exit {code}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
