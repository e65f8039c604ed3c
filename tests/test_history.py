"""A publisher that lost or rewound its local state never harms a mirror, and restore mends it.

The diverged-history class, several ways: a lost output folder, an old
backup of it, a second host with the same keys (one after the other, and
interleaved inside one push). After every step each mirror must still serve
a genuine, complete edition to a stock python-tuf client; a reader who saw a
newer edition is never moved back; a refused run exits 9 and writes nothing;
`mirror restore` followed by a sync brings every mirror forward.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tuf.api.metadata import Metadata, Snapshot, Targets
from tuf.ngclient import Updater

from mirror.cli import main
from mirror.client.transport import DeadlineFetcher
from mirror.errors import HistoryConflictError
from mirror.publish import PushTree, SilentProgress, create_backend, execute
from mirror.push_plan import plan_mirror
from mirror.push_session import MirrorSession
from mirror.trust import layout
from tests.conftest import Publisher, make_config, write_articles

MIRRORS = ("a", "b")


def with_mirrors(publisher: Publisher, mirror_home: Path) -> Publisher:
    """The publisher with two local mirrors under ``mirror_home`` (shared between hosts)."""
    body = "".join(
        f"  - name: {n}\n    type: local\n    public_url: file://{mirror_home / n}/\n"
        f"    local:\n      path: {mirror_home / n}\n"
        for n in MIRRORS
    )
    config = make_config(publisher.home, mirrors=body, extra="push:\n  quorum: 2\n")
    return Publisher(publisher.home, config)


def second_host(publisher: Publisher, tmp_path: Path) -> Publisher:
    """Another host with the same keys and articles, a copy of the output, the same mirrors."""
    home = tmp_path / "host-b"
    shutil.copytree(publisher.home, home)
    return with_mirrors(Publisher(home, publisher.config), tmp_path / "m")


def run(publisher: Publisher, *args: str) -> int:
    return main(["--config", str(publisher.config.file), *args])


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file of a mirror folder and its SHA-256: to show nothing was written."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stock_client_reads_a_complete_edition(mirror: Path, root: bytes, work: Path) -> str:
    """A stock python-tuf client reads the newest edition and downloads every member of it."""
    work.mkdir(parents=True)
    updater = Updater(
        metadata_dir=str(work),
        metadata_base_url=f"{mirror.as_uri()}/metadata/",
        target_base_url=f"{mirror.as_uri()}/targets/",
        target_dir=str(work),
        fetcher=DeadlineFetcher(),  # only the transport is ours: it reads file:// URLs
        bootstrap=root,
    )
    updater.refresh()
    snapshot = Metadata[Snapshot].from_file(str(work / "snapshot.json")).signed
    eids = [
        n.removesuffix(".json").removeprefix(layout.EDITION_ROLE_PREFIX)
        for n in snapshot.meta
        if n.startswith(layout.EDITION_ROLE_PREFIX)
    ]
    eid = layout.newest_edition(eids)
    assert updater.get_targetinfo(layout.manifest_path(eid, layout.EDITION_INFO_MEMBER))
    role = Metadata[Targets].from_file(str(work / f"{layout.edition_role(eid)}.json")).signed
    for path in role.targets:
        member = path.split("/", 2)[2]
        name = member if layout.is_content_path(member) else path
        info = updater.get_targetinfo(name)
        assert info is not None, name
        updater.download_target(info, str(work / hashlib.sha256(name.encode()).hexdigest()))
    return eid


def every_mirror_is_genuine(mirrors: Path, root: bytes, work: Path) -> set[str]:
    """Each mirror serves a complete edition a stock client accepts; the editions served."""
    runs = len(list(work.glob("*"))) if work.exists() else 0
    return {
        stock_client_reads_a_complete_edition(mirrors / name, root, work / f"{runs}-{name}")
        for name in MIRRORS
    }


def reader_fetch(
    publisher: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """What a reader (one state folder per test) gets from mirror a."""
    capsys.readouterr()
    state = tmp_path / "reader"
    url = (tmp_path / "m" / "a").as_uri() + "/"
    code = main(
        [
            "fetch",
            "--root",
            str(publisher.root_json),
            "--mirror",
            url,
            "--state",
            str(state),
            "--json",
        ]
    )
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0, document
    return document


@pytest.fixture
def host_a(new_publisher: Callable[..., Publisher], tmp_path: Path) -> Publisher:
    """A publisher whose two mirrors live in ``<tmp>/m/``, with edition 1 published."""
    publisher = with_mirrors(new_publisher(), tmp_path / "m")
    assert run(publisher, "sync") == 0
    return publisher


def test_a_lost_output_folder_is_refused_and_restore_continues_the_history(
    host_a: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_articles(host_a.articles, 1, start=10)
    assert run(host_a, "sync") == 0
    seen = reader_fetch(host_a, tmp_path, capsys)
    root = (host_a.config.keys.dir / "roots" / "1.root.json").read_bytes()
    before = {n: tree_digest(tmp_path / "m" / n) for n in MIRRORS}

    # The sync host loses its output folder (a container without its volume).
    shutil.rmtree(host_a.config.output_dir)
    capsys.readouterr()
    assert run(host_a, "sync") == 9
    err = capsys.readouterr().err
    assert "nothing was built or pushed" in err
    assert "the local publish tree is empty" in err
    assert "mirror restore --from" in err
    assert {n: tree_digest(tmp_path / "m" / n) for n in MIRRORS} == before
    assert not (host_a.config.publish_dir / "metadata" / "timestamp.json").exists()
    assert every_mirror_is_genuine(tmp_path / "m", root, tmp_path / "stock") == {seen["edition"]}

    # Restore takes the history back; the next sync continues it, and readers follow.
    capsys.readouterr()
    assert run(host_a, "restore", "--from", "a") == 0
    assert "every one verified" in capsys.readouterr().out
    write_articles(host_a.articles, 1, start=11)
    assert run(host_a, "sync") == 0
    after = reader_fetch(host_a, tmp_path, capsys)
    assert after["version"] == seen["version"] + 1
    assert after["updated"] is True
    assert every_mirror_is_genuine(tmp_path / "m", root, tmp_path / "stock") == {after["edition"]}


def test_an_old_backup_of_the_output_folder_never_rolls_readers_back(
    host_a: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(host_a.config.output_dir, backup)
    write_articles(host_a.articles, 1, start=10)
    assert run(host_a, "sync") == 0
    seen = reader_fetch(host_a, tmp_path, capsys)
    root = (host_a.config.keys.dir / "roots" / "1.root.json").read_bytes()
    before = {n: tree_digest(tmp_path / "m" / n) for n in MIRRORS}

    # The host is restored from yesterday's backup.
    shutil.rmtree(host_a.config.output_dir)
    shutil.copytree(backup, host_a.config.output_dir)
    local_timestamp = (host_a.config.publish_dir / "metadata" / "timestamp.json").read_bytes()
    for command in (["sync"], ["push"], ["sync", "--dry-run"], ["push", "--dry-run"]):
        capsys.readouterr()
        assert run(host_a, *command) == 9, command
        err = capsys.readouterr().err
        assert "newer than the local tree's" in err, (command, err)
        assert {n: tree_digest(tmp_path / "m" / n) for n in MIRRORS} == before
        assert (host_a.config.publish_dir / "metadata" / "timestamp.json").read_bytes() == (
            local_timestamp
        )
    again = reader_fetch(host_a, tmp_path, capsys)
    assert (again["edition"], again["version"]) == (seen["edition"], seen["version"])
    assert every_mirror_is_genuine(tmp_path / "m", root, tmp_path / "stock") == {seen["edition"]}

    assert run(host_a, "restore", "--from", (tmp_path / "m" / "b").as_uri()) == 0
    kept = list(host_a.config.output_dir.glob("publish.before-restore-*"))
    assert len(kept) == 1  # the tree it replaced is kept, not deleted
    assert run(host_a, "sync", "--force") == 0
    after = reader_fetch(host_a, tmp_path, capsys)
    assert after["version"] == seen["version"] + 1


def test_a_second_host_with_the_same_keys_is_refused_until_it_restores(
    host_a: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host_b = second_host(host_a, tmp_path)
    root = (host_a.config.keys.dir / "roots" / "1.root.json").read_bytes()
    write_articles(host_a.articles, 1, start=10)
    write_articles(host_b.articles, 1, start=20)
    assert run(host_b, "build") == 0  # B's own version 2, not yet pushed
    assert run(host_a, "sync") == 0  # A's version 2 reaches the mirrors first
    seen = reader_fetch(host_a, tmp_path, capsys)
    before = {n: tree_digest(tmp_path / "m" / n) for n in MIRRORS}

    capsys.readouterr()
    assert run(host_b, "push") == 9
    err = capsys.readouterr().err
    assert "with other bytes" in err
    assert {n: tree_digest(tmp_path / "m" / n) for n in MIRRORS} == before
    assert every_mirror_is_genuine(tmp_path / "m", root, tmp_path / "stock") == {seen["edition"]}

    assert run(host_b, "restore", "--from", "a") == 0
    assert run(host_b, "sync") == 0  # B continues from A's history, with its own article
    after = reader_fetch(host_a, tmp_path, capsys)
    assert after["version"] == seen["version"] + 1
    capsys.readouterr()
    assert run(host_a, "sync", "--force") == 9  # now A is the one behind
    assert "newer than the local tree's" in capsys.readouterr().err
    assert every_mirror_is_genuine(tmp_path / "m", root, tmp_path / "stock") == {after["edition"]}


def test_a_push_that_another_host_overtakes_stops_before_writing_metadata(
    host_a: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Interleaved inside one push: B publishes between A's plan and A's execution."""
    host_b = second_host(host_a, tmp_path)
    root = (host_a.config.keys.dir / "roots" / "1.root.json").read_bytes()
    write_articles(host_a.articles, 1, start=10)
    write_articles(host_b.articles, 1, start=20)
    assert run(host_a, "build") == 0
    mirror = host_a.config.mirrors[0]

    async def plan_then_execute_after_b() -> None:
        backend = create_backend(host_a.config, mirror)
        session = MirrorSession(mirror, backend)
        tree = PushTree.read(host_a.config)
        plan = await plan_mirror(session, tree.files, tree.history, max_delete=1000)
        assert not plan.refused
        assert await asyncio.to_thread(run, host_b, "sync") == 0  # B overtakes
        try:
            await execute(session, plan, progress=SilentProgress())
        finally:
            await backend.close()

    with pytest.raises(HistoryConflictError, match="changed while this push ran"):
        asyncio.run(plan_then_execute_after_b())
    served = every_mirror_is_genuine(tmp_path / "m", root, tmp_path / "stock")
    assert len(served) == 1  # B's edition, complete, on both mirrors
    capsys.readouterr()
    assert run(host_a, "push") == 9


def test_another_publishers_repository_is_refused_and_left_untouched(
    host_a: Publisher,
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = with_mirrors(new_publisher(), tmp_path / "m")  # pointed at host A's mirrors
    before = tree_digest(tmp_path / "m" / "a")
    capsys.readouterr()
    assert run(other, "sync") == 9
    assert "another publisher" in capsys.readouterr().err
    assert tree_digest(tmp_path / "m" / "a") == before
