"""Retention: old editions and the content only they used leave the repository and the
mirrors, after the new timestamp is live, within guards."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuf.api.metadata import Metadata, Targets

from mirror.cli import main
from tests.conftest import Publisher, make_config

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def setup(new_publisher: Callable[..., Publisher], extra: str = "") -> tuple[Publisher, Path]:
    publisher = new_publisher(3)
    mirror = publisher.home / "mirror"
    mirrors = (
        f"  - name: m\n    type: local\n    public_url: file://{mirror}/\n"
        f"    local:\n      path: {mirror}\n"
    )
    config = make_config(
        publisher.home,
        mirrors=mirrors,
        extra="edition:\n  retention_days: 10\n  keep_newest: 2\n" + extra,
    )
    return Publisher(publisher.home, config), mirror


def build_series(publisher: Publisher, days_ago: list[int], *, start: int = 0) -> list[str]:
    """One edition per entry, each with one article only it has (``only-<start + i>``)."""
    eids = []
    for i, ago in enumerate(days_ago, start=start):
        for old in publisher.articles.glob("only-*.md"):
            old.unlink()
        (publisher.articles / f"only-{i}.md").write_text(
            f"---\ntitle: Only in edition {i}\ndate: 2026-10-0{i + 1}\nslug: only-{i}\n---\n\n"
            f"Text {i}.\n",
            encoding="utf-8",
        )
        eids.append(publisher.build(when=NOW - timedelta(days=ago)).eid)
    return eids


def manifests_roles(publish: Path) -> set[str]:
    timestamp = json.loads((publish / "metadata" / "timestamp.json").read_text())
    snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    snapshot = json.loads((publish / "metadata" / f"{snapshot_version}.snapshot.json").read_text())
    version = snapshot["signed"]["meta"]["manifests.json"]["version"]
    manifests = Metadata[Targets].from_file(str(publish / "metadata" / f"{version}.manifests.json"))
    assert manifests.signed.delegations is not None
    assert manifests.signed.delegations.roles is not None
    return set(manifests.signed.delegations.roles)


def test_old_editions_and_their_content_leave_the_repository_and_the_mirror(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher, mirror = setup(new_publisher)
    publish = publisher.config.publish_dir
    first_two = build_series(publisher, [40, 30])
    # Pushed while they were current (read-back would now call them expired).
    assert main(["--config", str(publisher.config.file), "push", "--no-read-back"]) == 0
    assert list((mirror / "targets" / "articles").glob("*.only-0.html"))

    later = build_series(publisher, [20, 0], start=2)
    # Within 10 days: only the newest; the newest two are kept whatever their age.
    assert manifests_roles(publish) == {f"edition-{eid}" for eid in later}
    assert not list((publish / "targets" / "articles").glob("*.only-0.html"))
    assert not list((publish / "targets" / "editions").glob(f"*.{first_two[0]}.zip"))
    assert list((publish / "targets" / "articles").glob("*.only-3.html"))

    report = tmp_path / "report.json"
    assert main(["--config", str(publisher.config.file), "push", "--json", str(report)]) == 0
    (result,) = json.loads(report.read_text())["mirrors"]
    assert result["verified"] is True
    assert result["deleted_files"] > 0
    assert not list((mirror / "targets" / "articles").glob("*.only-0.html"))
    assert not list((mirror / "targets" / "editions").glob(f"*.{first_two[1]}.zip*"))
    mirrored = {p.relative_to(mirror) for p in mirror.rglob("*") if p.is_file()}
    local = {p.relative_to(publish) for p in publish.rglob("*") if p.is_file()}
    assert mirrored == local


def test_deletion_is_guarded_by_max_delete(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher, mirror = setup(new_publisher, extra="push:\n  max_delete: 1\n")
    build_series(publisher, [40, 30])
    # Pushed while they were current (read-back would now call them expired).
    assert main(["--config", str(publisher.config.file), "push", "--no-read-back"]) == 0
    before = {p for p in mirror.rglob("*") if p.is_file()}
    build_series(publisher, [20, 0], start=2)
    report = tmp_path / "report.json"
    assert main(["--config", str(publisher.config.file), "push", "--json", str(report)]) == 0
    (result,) = json.loads(report.read_text())["mirrors"]
    assert result["verified"] is True
    assert result["deleted_files"] == 0
    assert "max_delete" in result["retention_note"]
    assert before <= {p for p in mirror.rglob("*") if p.is_file()}
