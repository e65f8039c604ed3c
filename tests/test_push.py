"""`mirror push`/`sync` on local mirrors: dry runs, the signed mirror list, re-runs, reports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mirror import rebuild, shards, sync
from mirror.build import BuildResult
from mirror.cli import main
from mirror.errors import QuorumError
from mirror.mirror_states import load_mirror_states, save_mirror_states
from mirror.publish import PushResult, SilentProgress
from mirror.publish_tree import Phase, TreeFile
from mirror.push_plan import MirrorPlan
from mirror.rebuild import Unchanged
from mirror.trust import layout
from mirror.trust.history import Judgement, MirrorHistory, Standing
from tests.conftest import BUILD_TIME, Publisher, make_config, write_articles


def two_mirrors(publisher: Publisher) -> tuple[Publisher, Path, Path]:
    listed, secret = publisher.home / "listed", publisher.home / "secret"
    mirrors = (
        f"  - name: listed\n    type: local\n    public_url: file://{listed}/\n"
        f"    local:\n      path: {listed}\n"
        f"  - name: secret\n    type: local\n    public_url: file://{secret}/\n"
        f"    announce: false\n    local:\n      path: {secret}\n"
    )
    config = make_config(publisher.home, mirrors=mirrors)
    return Publisher(publisher.home, config), listed, secret


def test_dry_run_prints_the_plan_and_touches_nothing(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, listed, _ = two_mirrors(new_publisher())
    publisher.build()
    capsys.readouterr()
    assert main(["--config", str(publisher.config.file), "push", "--dry-run", "-v"]) == 0
    out = capsys.readouterr().out
    assert "listed: would upload" in out
    block = out.split("listed: would upload", 1)[1].split("secret: would upload", 1)[0]
    planned = [line.strip() for line in block.splitlines()[1:] if line.startswith("  ")]
    # The plan is in publishing order: targets, versioned metadata, timestamp last.
    first_metadata = next(i for i, p in enumerate(planned) if p.startswith("metadata/"))
    assert all(p.startswith("targets/") for p in planned[:first_metadata])
    assert all(p.startswith("metadata/") for p in planned[first_metadata:])
    assert planned[-1] == "metadata/timestamp.json"
    assert not listed.exists() or not any(listed.iterdir())
    assert not (publisher.config.output_dir / "state" / "mirrors.json").exists()


def test_sync_pushes_everywhere_and_the_signed_list_names_only_announced_mirrors(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, listed, _ = two_mirrors(new_publisher())
    report = tmp_path / "r.json"
    assert main(["--config", str(publisher.config.file), "sync", "--json", str(report)]) == 0
    results = {m["mirror"]: m for m in json.loads(report.read_text())["mirrors"]}
    assert results["listed"]["verified"] is True
    assert results["secret"]["verified"] is True
    mirror_list = next((listed / "targets").glob("*.mirrors.json")).read_text()
    assert f"file://{listed}/" in mirror_list
    assert "secret" not in mirror_list

    # A second push finds nothing to do.
    assert main(["--config", str(publisher.config.file), "push", "--json", str(report)]) == 0
    again = {m["mirror"]: m for m in json.loads(report.read_text())["mirrors"]}
    assert again["listed"]["uploaded_files"] == 0
    assert again["listed"]["skipped_files"] == results["listed"]["uploaded_files"]

    capsys.readouterr()
    assert main(["--config", str(publisher.config.file), "mirrors", "list", "--json"]) == 0
    states = {m["mirror"]: m for m in json.loads(capsys.readouterr().out)["mirrors"]}
    assert states["listed"]["last_status"] == "verified"
    assert states["secret"]["announce"] is False


def test_unknown_mirror_name_and_empty_tree_are_usage_errors(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, _, _ = two_mirrors(new_publisher())
    assert main(["--config", str(publisher.config.file), "push"]) == 2
    assert "no edition" in capsys.readouterr().err
    publisher.build()
    assert main(["--config", str(publisher.config.file), "push", "--mirror", "nope"]) == 2
    assert "no mirror called 'nope'" in capsys.readouterr().err


def test_large_archives_go_to_mirrors_at_most_every_few_days(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher = new_publisher()
    mirror = publisher.home / "m"
    config = make_config(
        publisher.home,
        mirrors=f"  - name: m\n    type: local\n    public_url: file://{mirror}/\n"
        f"    local:\n      path: {mirror}\n",
        extra="edition:\n  archive_small_mb: 0\n  archive_every_days: 7\n",
    )
    publisher = Publisher(publisher.home, config)
    start = BUILD_TIME - timedelta(days=9)
    first = publisher.build(when=start)
    second = publisher.build(when=start + timedelta(hours=1))
    third = publisher.build(when=start + timedelta(days=8))
    assert (first.archive_published, second.archive_published) == (True, False)
    assert third.archive_published
    files = {p.name for p in (config.publish_dir / "targets" / "editions").glob("*.zip")}
    # Each name is <sha256>.<name>; besides the archives, only the newest latest bundle.
    assert {name.split(".", 1)[1] for name in files} == {
        f"{first.eid}.zip",
        f"{third.eid}.zip",
        f"{third.eid}.latest.zip",
    }
    assert second.zip_path.exists()  # the local copy for USB sticks and messengers is always made

    fourth = publisher.build(when=BUILD_TIME)
    assert not fourth.archive_published
    report = tmp_path / "r.json"
    # Read-back checks the newest edition and every file uploaded, not a ZIP.
    assert main(["--config", str(config.file), "push", "--json", str(report)]) == 0
    (result,) = json.loads(report.read_text())["mirrors"]
    assert result["verified"] is True


def edition_zips(publisher: Publisher) -> list[Path]:
    """The edition ZIPs of the output folder (not the latest bundle beside them)."""
    return [
        path
        for path in publisher.config.editions_dir.glob("*.zip")
        if layout.archive_edition_id(path.name) is not None
    ]


def test_sync_without_changes_keeps_the_edition_and_keeps_the_timestamp_fresh(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mirror.publish_tree import current_timestamp
    from mirror.rebuild import build_or_refresh

    publisher, _, _ = two_mirrors(new_publisher())
    config = ["--config", str(publisher.config.file)]
    assert main([*config, "sync"]) == 0
    capsys.readouterr()
    assert main([*config, "sync"]) == 0
    assert "Nothing changed since edition" in capsys.readouterr().out
    assert len(edition_zips(publisher)) == 1

    before = current_timestamp(publisher.config.publish_dir)
    assert before is not None
    later = BUILD_TIME + timedelta(days=5)  # past half of the 7-day timestamp lifetime
    result = build_or_refresh(publisher.config, now=later)
    assert isinstance(result, Unchanged)
    assert result.timestamp_refreshed
    after = current_timestamp(publisher.config.publish_dir)
    assert after is not None
    assert after.signed.version == before.signed.version + 1
    assert after.signed.expires > before.signed.expires
    assert not build_or_refresh(publisher.config, now=later).timestamp_refreshed  # type: ignore[union-attr]

    # A changed article makes a new edition again.
    (publisher.articles / "article-000.md").write_text(
        (publisher.articles / "article-000.md").read_text() + "\nUpdate.\n"
    )
    assert main([*config, "sync", "--json", str(tmp_path / "r.json")]) == 0
    assert len(edition_zips(publisher)) == 2


def test_a_newsroom_with_nothing_new_for_weeks_still_serves_an_unexpired_edition(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing changes for 40 days while the timer runs every few days: the timestamp
    alone is not enough, since the snapshot and the edition's role expire after 30 days.
    Past half their lifetime the same content becomes a new edition, and the mirrors
    still read back as a reader reads them today (before: "expired", every mirror)."""
    from datetime import UTC, datetime

    from mirror.rebuild import build_or_refresh

    publisher, _, _ = two_mirrors(new_publisher())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    publisher.build(when=start)
    made = []
    for day in range(4, 41, 4):  # every four days, as a slow timer would
        result = build_or_refresh(publisher.config, now=start + timedelta(days=day))
        made.append(isinstance(result, BuildResult))
        if isinstance(result, BuildResult):  # and it says why
            assert result.renewed is not None
            assert "past half its 30 days" in result.renewed
    # Fresh for the first half of the 30-day lifetime, then one edition each half-life.
    assert made == [False, False, False, True, False, False, False, True, False, False]
    assert len(edition_zips(publisher)) >= 2
    capsys.readouterr()
    assert main(["--config", str(publisher.config.file), "push"]) == 0, capsys.readouterr()


def test_sync_and_build_say_why_unchanged_content_became_a_new_edition(
    new_publisher: Callable[..., Publisher],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    publisher, _, _ = two_mirrors(new_publisher())
    config = ["--config", str(publisher.config.file)]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(time.time()) - 20 * 86400))
    assert main([*config, "build"]) == 0  # 20 days ago: two thirds of its 30 days left
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    capsys.readouterr()
    assert main([*config, "sync"]) == 0
    out = capsys.readouterr().out
    assert "Built edition " in out
    assert "(nothing changed, but edition " in out
    assert "past half its 30 days)" in out
    assert main([*config, "build"]) == 0
    assert "Nothing changed since edition" in capsys.readouterr().out


def test_the_sync_use_case_runs_with_typed_options(
    new_publisher: Callable[..., Publisher],
) -> None:
    """`mirror.sync` without the command line: build, push one mirror, state, quorum."""
    publisher, listed, secret = two_mirrors(new_publisher())
    config = publisher.config
    only_listed = sync.PushOptions(selection=sync.MirrorSelection(names=("listed",)))

    first = sync.sync(
        config, rebuild.BuildOptions(), only_listed, now=BUILD_TIME, progress=SilentProgress()
    )
    assert isinstance(first.built, BuildResult)
    assert [r.mirror for r in first.push.results] == ["listed"]
    assert first.push.results[0].verified is True
    assert first.push.edition == first.built.eid
    first.push.require_quorum()  # push.quorum 1: met by one verified mirror
    assert not secret.exists()  # not selected, not touched
    assert set(load_mirror_states(config.output.mirror_states)) == {"listed"}

    again = sync.sync(
        config,
        rebuild.BuildOptions(),
        only_listed,
        now=BUILD_TIME + timedelta(minutes=1),
        progress=SilentProgress(),
    )
    assert isinstance(again.built, Unchanged)
    assert again.push.results[0].uploaded_files == 0
    assert (listed / "metadata" / "timestamp.json").is_file()


def test_a_shard_must_reach_its_share_of_the_quorum(
    new_publisher: Callable[..., Publisher],
) -> None:
    publisher, _, _ = two_mirrors(new_publisher())
    config = dataclasses.replace(
        publisher.config, push=dataclasses.replace(publisher.config.push, quorum=2)
    )
    whole = sync.MirrorSelection()
    half = sync.MirrorSelection(shard=shards.Shard(0, 2))
    assert whole.quorum(config, selected=2) == 2
    assert half.quorum(config, selected=1) == 1  # 2 * 1/2 mirrors, rounded up
    assert half.quorum(config, selected=0) == 0
    outcome = sync.PushOutcome(
        results=(),
        edition=None,
        quorum=1,
        dry_run=False,
        read_back=True,
        shard="0/2",
        whole_quorum=2,
    )
    with pytest.raises(QuorumError, match=r"only 0 of 0 mirrors verified; the quorum is 1 "):
        outcome.require_quorum()


def _plan(report: Path) -> dict[str, list[str]]:
    document = json.loads(report.read_text())
    return {m["mirror"]: m["plan"]["uploads"] for m in document["mirrors"]}


def _uploaded(report: Path) -> dict[str, int]:
    return {m["mirror"]: m["uploaded_files"] for m in json.loads(report.read_text())["mirrors"]}


@pytest.mark.parametrize("command", ["sync", "push"])
def test_the_dry_run_plan_is_what_the_real_run_uploads(
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """On a fresh mirror, after one new article, and with nothing changed."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(BUILD_TIME.timestamp())))
    publisher, listed, _ = two_mirrors(new_publisher())
    config = str(publisher.config.file)
    steps = ["fresh mirror", "one new article", "nothing changed"]
    for step in steps:
        if step == "one new article":
            write_articles(publisher.articles, 1, start=50)
        if command == "push":
            assert main(["--config", config, "build"]) == 0
        dry, real = tmp_path / f"{step}-dry.json", tmp_path / f"{step}-real.json"
        before = {p.name for p in listed.rglob("*")} if listed.exists() else set()
        assert main(["--config", config, command, "--dry-run", "--json", str(dry)]) == 0
        assert ({p.name for p in listed.rglob("*")} if listed.exists() else set()) == before
        assert main(["--config", config, command, "--json", str(real)]) == 0
        planned = _plan(dry)
        assert planned == _plan(real), step
        assert _uploaded(real) == {name: len(paths) for name, paths in planned.items()}, step
        if step == "nothing changed":
            assert planned == {"listed": [], "secret": []}
        else:
            assert planned["listed"], step


def test_naming_one_mirror_asks_for_that_mirror(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    """`sync --mirror NAME` with push.quorum 2: one verified mirror of one named is enough."""
    publisher, _, _ = two_mirrors(new_publisher())
    config = publisher.config.file
    config.write_text(config.read_text() + "push:\n  quorum: 2\n")
    assert main(["--config", str(config), "sync", "--mirror", "listed"]) == 0
    capsys.readouterr()
    config.write_text(config.read_text().replace("path: " + str(publisher.home / "secret"),
                                                 "path: /proc/no-such-place"))  # fmt: skip
    assert main(["--config", str(config), "push"]) == 8  # all mirrors: the whole quorum
    assert "only 1 of 2 mirrors verified; the quorum is 2" in capsys.readouterr().err


def test_the_state_of_every_mirror_survives_a_first_push_of_a_large_archive(
    tmp_path: Path,
) -> None:
    """A first push of 100,000 articles uploads 120,000 files to each mirror. With every
    path in it, the state of three such mirrors was 39 MB, past what is read back, so the
    next run saw no state at all and `mirror mirrors list` lost every mirror's last run."""
    files = tuple(
        TreeFile(f"targets/articles/{i:064x}.a-{i:06d}.html", tmp_path, 9_000, Phase.TARGETS)
        for i in range(120_000)
    )
    judgement = Judgement(Standing.EMPTY, None, 1, "the mirror publishes nothing yet")
    history = MirrorHistory(timestamp=None, roots={}, first_root=None, snapshot=None)
    plan = MirrorPlan(judgement, history, uploads=files)
    results = [
        PushResult(mirror=f"m{n}", type="local", pushed=True, verified=True, plan=plan)
        for n in range(3)
    ]
    path = tmp_path / "state" / "mirrors.json"
    path.parent.mkdir()
    save_mirror_states(path, results, BUILD_TIME)
    states = load_mirror_states(path)
    assert set(states) == {"m0", "m1", "m2"}
    assert states["m0"]["plan"]["upload_files"] == 120_000
    assert path.stat().st_size < 64 * 1024
