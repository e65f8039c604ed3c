"""A mirror's listing, as the push's plan takes it in: a folder mirror is walked a chunk
at a time (never held whole), and what it lists is kept as one number per tree file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Generator
from pathlib import Path

from mirror.backends import ObjectInfo, base
from mirror.backends.local import TEMP_PREFIX, LocalBackend
from mirror.publish_tree import Phase, TreeFile, TreeFiles
from mirror.push_plan import UNUSABLE, _Inventory


def listed(backend: LocalBackend, prefix: str = "") -> dict[str, int]:
    async def run() -> dict[str, int]:
        seen: dict[str, int] = {}

        def each(info: ObjectInfo) -> None:
            assert info.path not in seen, f"{info.path} listed twice"
            seen[info.path] = info.size

        await backend.scan(prefix, each)
        return seen

    return asyncio.run(run())


def test_a_folder_mirror_lists_every_regular_file_once_across_many_chunks(
    tmp_path: Path,
) -> None:
    root = tmp_path / "mirror"
    expected: dict[str, int] = {}
    for folder in ("targets/articles", "targets/assets", "metadata"):
        (root / folder).mkdir(parents=True)
    count = 2 * base.LOCAL_LIST_CHUNK + 7  # three chunks, the last one short
    for i in range(count):
        folder = "targets/articles" if i % 3 else "targets/assets"
        path = f"{folder}/{i:05}.html"
        (root / path).write_bytes(b"x" * (i % 17))
        expected[path] = i % 17
    (root / "metadata/1.root.json").write_bytes(b"{}")
    expected["metadata/1.root.json"] = 2
    # Not the mirror's files: an interrupted write, links planted by someone else, a FIFO.
    (root / "targets" / f"{TEMP_PREFIX}abc-0").write_bytes(b"half")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (root / "targets/linked-folder").symlink_to(outside)
    (root / "targets/linked-file.html").symlink_to(outside / "secret.txt")
    os.mkfifo(root / "metadata/pipe.json")

    backend = LocalBackend("folder", root)
    assert listed(backend) == expected
    assert listed(backend, "metadata/") == {"metadata/1.root.json": 2}
    # A prefix is a prefix of names, not a folder: "targets/a" takes in both folders.
    assert listed(backend, "targets/a") == {p: s for p, s in expected.items() if "targets/" in p}
    assert listed(backend, "targets/assets/0000") == {
        p: s for p, s in expected.items() if p.startswith("targets/assets/0000")
    }
    assert listed(backend, "nothing/here/") == {}
    assert listed(LocalBackend("missing", tmp_path / "no-such-folder")) == {}


def test_a_walk_is_handed_on_a_chunk_at_a_time_and_closed_when_the_listing_stops() -> None:
    made: list[int] = []
    closed: list[bool] = []

    def walk() -> Generator[int, None, None]:
        try:
            for i in range(5 * base.LOCAL_LIST_CHUNK):
                made.append(i)
                yield i
        finally:
            closed.append(True)

    async def first_items(wanted: int) -> list[int]:
        seen: list[int] = []
        made_when_seen: list[int] = []
        listing = base.walk_in_thread(walk())
        async for item in listing:
            seen.append(item)
            made_when_seen.append(len(made))
            if len(seen) == wanted:
                break
        await listing.aclose()  # what `async for` leaves to the generator's owner
        assert made_when_seen[0] == base.LOCAL_LIST_CHUNK  # one chunk, not the whole walk
        return seen

    assert asyncio.run(first_items(base.LOCAL_LIST_CHUNK + 1)) == list(
        range(base.LOCAL_LIST_CHUNK + 1)
    )
    assert len(made) == 2 * base.LOCAL_LIST_CHUNK  # the second chunk, no third
    assert closed == [True]


def test_the_inventory_keeps_a_size_per_tree_file_and_refuses_impossible_ones(
    tmp_path: Path,
) -> None:
    files = TreeFiles(
        TreeFile(f"targets/{i}.html", tmp_path, 10, Phase.TARGETS, None) for i in range(5)
    )
    inventory = _Inventory(files)
    inventory.see(ObjectInfo("targets/0.html", 10))
    inventory.see(ObjectInfo("targets/1.html", 0))
    inventory.see(ObjectInfo("targets/2.html", -3))  # a hostile server's sizes
    inventory.see(ObjectInfo("targets/3.html", 2**64))
    inventory.see(ObjectInfo("targets/old.html", 4))
    assert [inventory.size_at(at) for at in range(5)] == [10, 0, UNUSABLE, UNUSABLE, None]
    assert all(inventory.size_at(at) != file.size for at, file in enumerate(files) if at)
    assert inventory.others == {"targets/old.html"}
    assert inventory.count == 5
    assert files.position("targets/4.html") == 4
    assert files.position("targets/old.html") is None


def test_a_repository_mirror_lists_neither_its_git_folder_nor_unfinished_writes(
    tmp_path: Path,
) -> None:
    """The rules the git mirror walks its work tree with (`base.folder_files`)."""
    from mirror.backends.git import TEMP_MARKER, _not_published, _unfinished

    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "objects" / "pack").write_bytes(b"p")
    (tmp_path / "targets" / f"{TEMP_MARKER}half").mkdir(parents=True)
    (tmp_path / "targets" / f"{TEMP_MARKER}half" / "x.html").write_bytes(b"x")
    (tmp_path / "targets" / f"{TEMP_MARKER}a.html").write_bytes(b"half")
    (tmp_path / "targets" / "a.html").write_bytes(b"whole")
    (tmp_path / "targets" / "link.html").symlink_to(tmp_path / "targets" / "a.html")
    walk = base.folder_files(
        os.fspath(tmp_path),
        "",
        skip_file=_unfinished,
        skip_folder=_not_published,
    )
    assert [(info.path, info.size) for info in walk] == [("targets/a.html", 5)]
