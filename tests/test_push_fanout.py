"""Pushing to many mirrors at once: what does not depend on the mirror is done once per push.

Real pushes to real local folders (no mock of any backend): the publish tree is
scanned once and each metadata file hashed once per push whatever the number of
mirrors, the tree's own files are opened as often for eight mirrors as for two,
and eight mirrors get byte-identical copies of the tree that read back as a
reader would. Plus the pieces that make a fan-out cheap: batches cut to the
backend's size, a local batch that refuses links out of the folder, a batch
that fails midway retried whole, and a source that changed refused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mirror import publish_tree
from mirror.backends.local import TEMP_PREFIX, LocalBackend
from mirror.cli import main
from mirror.config import Config
from mirror.errors import StorageError, TransportError
from mirror.publish import batches
from mirror.publish_tree import Phase, TreeFile
from mirror.push_session import MirrorSession
from mirror.retry import RetryPolicy, with_retries
from tests.conftest import Publisher, make_config


def local_mirrors(home: Path, count: int, *, label: str) -> tuple[str, list[Path]]:
    """A ``mirrors:`` body of ``count`` local folders, and the folders."""
    folders = [home / f"{label}-{i}" for i in range(1, count + 1)]
    body = "".join(
        f"  - name: {label}-{i}\n    type: local\n    public_url: file://{folder}/\n"
        f"    local:\n      path: {folder}\n"
        for i, folder in enumerate(folders, start=1)
    )
    return body, folders


def with_local_mirrors(
    publisher: Publisher, count: int, *, label: str
) -> tuple[Config, list[Path]]:
    body, folders = local_mirrors(publisher.home, count, label=label)
    return make_config(publisher.home, mirrors=body), folders


def digests(folder: Path) -> dict[str, str]:
    """Every regular file under ``folder``: relative path -> SHA-256."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def push(config: Config, report: Path, *extra: str) -> dict[str, dict[str, Any]]:
    assert main(["--config", str(config.file), "push", "--json", str(report), *extra]) == 0
    return {m["mirror"]: m for m in json.loads(report.read_text())["mirrors"]}


def test_eight_local_mirrors_get_byte_identical_trees_that_read_back(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher = new_publisher(12)
    config, folders = with_local_mirrors(publisher, 8, label="m")
    publisher = Publisher(publisher.home, config)
    publisher.build()
    tree = digests(config.publish_dir)
    results = push(config, tmp_path / "first.json")
    assert sorted(results) == [f"m-{i}" for i in range(1, 9)]
    for folder in folders:
        result = results[folder.name]
        assert result["verified"] is True, result
        assert result["uploaded_files"] == len(tree)
        assert digests(folder) == tree  # byte for byte, nothing more, nothing less
        assert not list(folder.rglob(f"{TEMP_PREFIX}*"))
        for path in folder.rglob("*"):
            if path.is_file():  # a web server serving the folder can read every file
                assert stat.S_IMODE(path.stat().st_mode) == 0o644, path

    again = push(config, tmp_path / "again.json")
    assert {r["uploaded_files"] for r in again.values()} == {0}
    assert {r["skipped_files"] for r in again.values()} == {len(tree)}
    assert all(r["verified"] is True for r in again.values())


@dataclass
class TreeReads:
    """How often a push touched the publish tree's own files."""

    publish_dir: Path
    scans: int = 0
    hashed: collections.Counter[str] = field(default_factory=collections.Counter)
    opened: collections.Counter[str] = field(default_factory=collections.Counter)


Watch = Callable[[Path], contextlib.AbstractContextManager[TreeReads]]


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Watch:
    """Count, while a block runs, scans of the tree, hashes of its files and opens of its
    files through `Path.open` (what reading or hashing a tree file uses; the local backend's
    copies, one per mirror by nature, open with `os.open` and are not counted)."""
    active: list[TreeReads] = []
    scan, sha256, path_open = publish_tree.scan_tree, publish_tree.file_sha256, Path.open

    def counted_scan(publish_dir: Path) -> publish_tree.TreeFiles:
        for reads in active:
            reads.scans += 1
        return scan(publish_dir)

    def counted_sha256(path: Path) -> str:
        for reads in active:
            reads.hashed[path.name] += 1
        return sha256(path)

    def counted_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        for reads in active:
            if self.is_relative_to(reads.publish_dir):
                reads.opened[self.relative_to(reads.publish_dir).as_posix()] += 1
        return path_open(self, *args, **kwargs)

    monkeypatch.setattr(publish_tree, "scan_tree", counted_scan)
    monkeypatch.setattr(publish_tree, "file_sha256", counted_sha256)
    monkeypatch.setattr(Path, "open", counted_open)

    @contextlib.contextmanager
    def watching(publish_dir: Path) -> Iterator[TreeReads]:
        reads = TreeReads(publish_dir)
        active.append(reads)
        try:
            yield reads
        finally:
            active.remove(reads)

    return watching


def test_the_tree_is_read_and_hashed_once_per_push_whatever_the_number_of_mirrors(
    new_publisher: Callable[..., Publisher], tmp_path: Path, watch: Watch
) -> None:
    """Two mirrors, then eight: the same reads of the tree; then eight with nothing to do."""
    publisher = new_publisher(6)
    two, _ = with_local_mirrors(publisher, 2, label="two")  # config files are one per home:
    Publisher(publisher.home, two).build()
    compared = [f for f in publish_tree.scan_tree(two.publish_dir) if f.phase is not Phase.TARGETS]
    assert len(compared) > 10  # versioned metadata and both pointers
    once = collections.Counter({f.local.name: 1 for f in compared})

    with watch(two.publish_dir) as on_two:
        results = push(two, tmp_path / "two.json", "--no-read-back")
    assert [r["pushed"] for r in results.values()] == [True] * 2
    eight, _ = with_local_mirrors(publisher, 8, label="eight")  # the same tree, 8 new mirrors
    with watch(eight.publish_dir) as on_eight:
        results = push(eight, tmp_path / "eight.json", "--no-read-back")
    assert [r["pushed"] for r in results.values()] == [True] * 8
    assert on_two.scans == on_eight.scans == 1
    assert on_two.hashed == on_eight.hashed == once  # once per push, not once per mirror
    assert on_eight.opened == on_two.opened
    assert sum(on_eight.opened.values()) < 2 * len(compared)  # hashing, history, no more

    # Nothing left to upload: every metadata file and pointer is compared on all eight
    # mirrors, each against the one digest taken for this push.
    with watch(eight.publish_dir) as again:
        results = push(eight, tmp_path / "again.json", "--no-read-back")
    assert {r["uploaded_files"] for r in results.values()} == {0}
    assert {r["skipped_files"] for r in results.values()} == {len(digests(eight.publish_dir))}
    assert again.scans == 1
    assert again.hashed == once
    assert again.opened == on_two.opened


# --- the pieces ---------------------------------------------------------------------------


def tree_file(path: str, size: int, local: Path = Path("/nonexistent")) -> TreeFile:
    return TreeFile(path, local, size, Phase.TARGETS)


def test_batches_follow_the_backends_size_and_keep_the_order(tmp_path: Path) -> None:
    local = LocalBackend("m", tmp_path)  # 64 files or 16 MiB per batch
    small = [tree_file(f"targets/a/{i:03d}.html", 1000) for i in range(150)]
    cut = batches(small, local)
    assert [len(b) for b in cut] == [64, 64, 22]
    assert [f for b in cut for f in b] == small
    big = local.batch_bytes
    sized = [tree_file("t/1", big // 2), tree_file("t/2", big // 2), tree_file("t/3", 1)]
    sized += [tree_file("t/huge", 3 * big), tree_file("t/4", 1)]
    assert [[f.path for f in b] for b in batches(sized, local)] == [
        ["t/1", "t/2"],
        ["t/3"],
        ["t/huge"],  # larger than a batch: alone, never split or refused
        ["t/4"],
    ]

    class OneByOne(LocalBackend):
        batch_files, batch_bytes = 1, 0  # the base class's default: every file its own call

    assert [len(b) for b in batches(small[:5], OneByOne("m", tmp_path))] == [1] * 5


def sources(folder: Path, names: Sequence[str]) -> list[TreeFile]:
    files = []
    for name in names:
        local = folder / name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(name.encode() * 100)
        files.append(TreeFile(name, folder, local.stat().st_size, Phase.TARGETS))
    return files


def test_a_local_batch_never_writes_through_a_link_out_of_the_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "mirror", tmp_path / "outside"
    (root / "targets").mkdir(parents=True)
    outside.mkdir()
    (outside / "kept.html").write_bytes(b"not yours")
    (root / "targets" / "articles").symlink_to(outside, target_is_directory=True)
    (root / "metadata").symlink_to(outside / "kept.html")  # a link where a folder should be
    (root / "inside").mkdir()
    (root / "targets" / "assets").symlink_to(root / "inside", target_is_directory=True)
    files = sources(tmp_path / "src", ["targets/articles/kept.html"])
    backend = LocalBackend("m", root)
    for batch in (files, sources(tmp_path / "src", ["metadata/1.root.json"])):
        with pytest.raises(TransportError, match="leads outside the mirror folder"):
            asyncio.run(backend.put_many(batch))
    assert [p.name for p in outside.iterdir()] == ["kept.html"]
    assert (outside / "kept.html").read_bytes() == b"not yours"
    # A link that stays inside the folder is followed, as reads follow it.
    inside = sources(tmp_path / "src", ["targets/assets/x/1.png"])
    asyncio.run(backend.put_many(inside))
    assert (root / "inside" / "x" / "1.png").read_bytes() == inside[0].local.read_bytes()
    assert asyncio.run(backend.get("targets/assets/x/1.png")) == inside[0].local.read_bytes()
    # A link at a file's own name is replaced by the file, never written through.
    (root / "targets" / "mirrors.json").symlink_to(outside / "kept.html")
    pointer = sources(tmp_path / "src", ["targets/mirrors.json"])
    asyncio.run(backend.put_many(pointer))
    assert not (root / "targets" / "mirrors.json").is_symlink()
    assert (outside / "kept.html").read_bytes() == b"not yours"


def test_a_batch_that_fails_midway_is_retried_whole_and_lands_whole(tmp_path: Path) -> None:
    class FailsOnce(LocalBackend):
        """A real local folder whose first batch breaks after two files."""

        calls = 0

        def _write_files(self, files: Sequence[tuple[str, Path | bytes, int]]) -> None:
            FailsOnce.calls += 1
            if FailsOnce.calls == 1:
                super()._write_files(files[:2])
                raise OSError(5, "Input/output error", "the mirror's disk")
            super()._write_files(files)

    files = sources(tmp_path / "src", [f"targets/a/{i}.html" for i in range(10)])
    backend = FailsOnce("m", tmp_path / "mirror")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    asyncio.run(with_retries(lambda: backend.put_many(files), RetryPolicy(), sleep=sleep))
    assert (FailsOnce.calls, len(slept)) == (2, 1)
    assert digests(tmp_path / "mirror") == {
        f.path: hashlib.sha256(f.local.read_bytes()).hexdigest() for f in files
    }
    assert not list((tmp_path / "mirror").rglob(f"{TEMP_PREFIX}*"))


def test_a_tree_file_that_changed_size_since_the_plan_is_refused(tmp_path: Path) -> None:
    (file,) = sources(tmp_path / "src", ["targets/a/1.html"])
    file.local.write_bytes(b"shorter")  # the plan said otherwise
    backend = LocalBackend("m", tmp_path / "mirror")
    with pytest.raises(StorageError, match="changed while it was pushed"):
        asyncio.run(backend.put_many([file]))
    assert not (tmp_path / "mirror" / "targets" / "a" / "1.html").exists()
    assert not list((tmp_path / "mirror").rglob(f"{TEMP_PREFIX}*"))


def test_a_session_runs_batches_within_its_concurrency(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    """`limits.concurrency` bounds batches in flight on one mirror, as it bounded files."""
    publisher = new_publisher(1)
    body, (folder,) = local_mirrors(publisher.home, 1, label="c")
    config = make_config(
        publisher.home,
        mirrors=body.replace("    local:", "    limits: {concurrency: 2}\n    local:"),
    )
    in_flight = peak = 0

    class Counting(LocalBackend):
        async def _put_many(self, files: Sequence[Any]) -> None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.01)
                await super()._put_many(files)
            finally:
                in_flight -= 1

    files = sources(tmp_path / "src", [f"targets/a/{i}.html" for i in range(64 * 6)])
    (mirror,) = config.mirrors
    backend = Counting(mirror.name, folder)
    session = MirrorSession(mirror, backend)

    async def run() -> None:
        await session.each(
            batches(files, backend), lambda b: session.call(lambda: backend.put_many(b))
        )

    asyncio.run(run())
    assert peak == 2
    assert len(digests(folder)) == len(files)
    assert os.listdir(folder) == ["targets"]
