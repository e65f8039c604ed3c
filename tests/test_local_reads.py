"""Reading the publisher's own files: bounded reads and the publish tree's scan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror import fsutil, publish_tree
from mirror.errors import StorageError
from mirror.publish_tree import Phase


def test_a_bounded_read_takes_the_whole_file_up_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "role.json"
    path.write_bytes(b"x" * 1000)
    assert fsutil.read_bounded(path, max_bytes=64 * 1024 * 1024, what="role") == b"x" * 1000
    assert fsutil.read_bounded(path, max_bytes=1000, what="role") == b"x" * 1000
    with pytest.raises(StorageError, match="larger than 999 bytes"):
        fsutil.read_bounded(path, max_bytes=999, what="role")


def test_a_bounded_read_follows_a_file_that_grew_after_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read asks for the size the file had; what was written since is read too,
    and still counted against the cap."""
    path = tmp_path / "growing.json"
    path.write_bytes(b"y" * (3 * 1024 * 1024 + 5))
    real_fstat = os.fstat

    def smaller(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 10, *info[7:]))  # st_size as when it was opened

    monkeypatch.setattr(os, "fstat", smaller)  # what open_regular sees
    data = fsutil.read_bounded(path, max_bytes=4 * 1024 * 1024, what="file")
    assert data == b"y" * (3 * 1024 * 1024 + 5)
    with pytest.raises(StorageError, match="larger than"):
        fsutil.read_bounded(path, max_bytes=2 * 1024 * 1024, what="file")


def test_the_tree_scan_lists_what_a_push_publishes_in_publishing_order(tmp_path: Path) -> None:
    tree = tmp_path / "publish"
    files = {
        "targets/articles/aa.one.html": b"1",
        "targets/assets/x/bb.photo.jpg": b"22",
        "metadata/1.root.json": b"{}",
        "metadata/2.snapshot.json": b"{3}",
        "metadata/timestamp.json": b"{t}",
        "metadata/root.json": b"{r}",
        "targets/articles/.cc.two.html.tmp": b"half",  # an interrupted write
        "stray.txt": b"not ours",
    }
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "dd.secret.html").write_bytes(b"never published")
    (tree / "targets" / "linked").symlink_to(outside, target_is_directory=True)

    scanned = publish_tree.scan_tree(tree)
    assert [f.path for f in scanned] == [
        "targets/articles/aa.one.html",
        "targets/assets/x/bb.photo.jpg",
        "metadata/1.root.json",
        "metadata/2.snapshot.json",
        "metadata/root.json",
        "metadata/timestamp.json",
    ]
    assert [f.phase for f in scanned][-2:] == [Phase.POINTERS, Phase.POINTERS]
    found = scanned.find("targets/assets/x/bb.photo.jpg")
    assert found is not None
    assert found.size == 2
    assert found.sha256 is None
    pointer = scanned.find("metadata/timestamp.json")
    assert pointer is not None
    assert pointer.sha256 is not None
    assert scanned.find("stray.txt") is None
    assert scanned.find("targets/linked/dd.secret.html") is None


@pytest.mark.parametrize("where", ["metadata/7.targets.json", "targets/articles/aa.one.html"])
def test_a_fifo_in_the_tree_is_refused_at_once_not_waited_on(tmp_path: Path, where: str) -> None:
    """A FIFO planted where the tree has a file would make a push (or a build) wait for a
    writer forever; it is one sentence instead."""
    tree = tmp_path / "publish"
    (tree / where).parent.mkdir(parents=True)
    os.mkfifo(tree / where)
    with pytest.raises(StorageError, match="is not a regular file"):
        publish_tree.scan_tree(tree)
    with pytest.raises(StorageError, match="is not a regular file") as raised:
        fsutil.read_bounded(tree / where, max_bytes=1024, what="published metadata")
    assert raised.value.hint is not None
