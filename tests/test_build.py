"""`mirror build`: reproducible editions, small incremental metadata, key rotation, extraction."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.cli import main
from mirror.config import load_config
from mirror.keystore import rotate_role
from tests.conftest import BUILD_TIME, Publisher, make_config
from tests.test_attacks import members, write_zip

SETTINGS_SMALL_BINS = "trust:\n  hash_bin_bits: 2\n"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


FIXED_MIRRORS = (
    "  - name: a\n    type: local\n    public_url: https://a.example.org/news/\n"
    "    local:\n      path: /nonexistent/mirror-a\n"
)
"""The same signed mirror list for every rebuild (it is part of the edition)."""


def _rebuild_elsewhere(publisher: Publisher, home: Path, extra: str = "") -> Publisher:
    """The same articles, keys and settings in a fresh folder with a fresh output tree."""
    shutil.copytree(publisher.articles, home / "articles")
    config = make_config(
        home, keys_dir=publisher.config.keys.dir, extra=extra, mirrors=FIXED_MIRRORS
    )
    return Publisher(home, config)


def test_rebuild_is_byte_identical(new_publisher: Callable[..., Publisher], tmp_path: Path) -> None:
    original = new_publisher(5)
    first = _rebuild_elsewhere(original, tmp_path / "one")
    second = _rebuild_elsewhere(original, tmp_path / "two")
    a = first.build(version=7)
    b = second.build(version=7)
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    assert a.minisig_path.read_bytes() == b.minisig_path.read_bytes()
    assert _files(a.publish_dir) == _files(b.publish_dir)


ARTICLE_TEXT = st.text(
    alphabet=st.sampled_from("abcdefghij KLMNOP пример текста ЖЩЮ.,!?\n"), min_size=1, max_size=300
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bodies=st.lists(ARTICLE_TEXT, min_size=1, max_size=5),
    day=st.integers(min_value=1, max_value=28),
)
def test_property_rebuild_is_byte_identical(
    bodies: list[str],
    day: int,
    new_publisher: Callable[..., Publisher],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    publisher = new_publisher(0)
    for i, body in enumerate(bodies):
        (publisher.articles / f"p{i}.md").write_text(
            f"---\ntitle: Заголовок {i}\ndate: 2026-10-{day:02d}\nlanguage: ru\n---\n\n{body}\n",
            encoding="utf-8",
        )
    editions = []
    for _ in range(2):
        home = tmp_path_factory.mktemp("rebuild")
        copy = _rebuild_elsewhere(publisher, home, SETTINGS_SMALL_BINS)
        editions.append(copy.build(version=3))
    assert editions[0].zip_path.read_bytes() == editions[1].zip_path.read_bytes()
    assert _files(editions[0].publish_dir) == _files(editions[1].publish_dir)


def test_adding_articles_changes_little_metadata(new_publisher: Callable[..., Publisher]) -> None:
    publisher = new_publisher(60)
    publisher.build()
    metadata = publisher.config.publish_dir / "metadata"
    before = set(metadata.iterdir())
    for i in range(3):
        (publisher.articles / f"new-{i}.md").write_text(
            f"---\ntitle: New {i}\ndate: 2026-11-25\n---\n\nFresh news {i}.\n", encoding="utf-8"
        )
    publisher.build(when=BUILD_TIME + timedelta(minutes=10))
    added = sorted(p.name for p in set(metadata.iterdir()) - before if p.name != "root.json")
    bins = [name for name in added if ".content-" in name]
    # Three new articles touch at most three of the 256 bins; plus targets, manifests,
    # editions, the new edition's role and snapshot. timestamp.json is rewritten in place.
    assert 1 <= len(bins) <= 3
    assert len(added) == len(bins) + 5, added


def test_root_rotation_old_and_new_editions_verify_through_the_chain(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    pinned_v1 = tmp_path / "root-v1.json"
    shutil.copy(publisher.root_json, pinned_v1)
    old = publisher.build()
    rotate_role(publisher.config.keys.dir, publisher.config.passphrase(), "root", now=BUILD_TIME)
    new = publisher.build(when=BUILD_TIME + timedelta(minutes=1))
    state = tmp_path / "state"
    for edition in (old, new):
        code = main(
            ["verify", str(edition.zip_path), "--root", str(pinned_v1), "--state", str(state)]
        )
        assert code == 0, capsys.readouterr().err
    # The reader's state now trusts root version 2; the old edition still verifies.
    assert len(list((state / "publishers").rglob("2.root.json"))) == 1
    code = main(
        ["verify", str(old.zip_path), "--root", str(pinned_v1), "--state", str(tmp_path / "s2")]
    )
    assert code == 0


def test_targets_rotation_keeps_old_editions_genuine(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    pinned = tmp_path / "root-v1.json"
    shutil.copy(publisher.root_json, pinned)
    old = publisher.build()
    rotate_role(publisher.config.keys.dir, publisher.config.passphrase(), "targets", now=BUILD_TIME)
    new = publisher.build(when=BUILD_TIME + timedelta(minutes=1))
    fresh_reader = ["--root", str(pinned), "--state", str(tmp_path / "fresh")]
    assert main(["verify", str(old.zip_path), *fresh_reader]) == 0
    updated_reader = ["--root", str(pinned), "--state", str(tmp_path / "updated")]
    assert main(["verify", str(new.zip_path), *updated_reader]) == 0
    capsys.readouterr()
    # A reader who walked to root 2 still knows the old edition as genuine: it is older
    # than the one it has (rollback), not forged (tests/test_rotation.py has the rest).
    assert main(["verify", str(old.zip_path), *updated_reader]) == 13
    err = capsys.readouterr().err
    assert "older than version 2 that you already verified" in err
    assert "required publisher keys" not in err


def test_extract_refuses_a_non_empty_destination(
    built: tuple[Publisher, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, _ = built
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    zip_path = next(publisher.config.editions_dir.glob("*.zip"))
    code = main(["extract", str(zip_path), str(dest), "--root", str(publisher.root_json)])
    assert code == 2
    assert (dest / "mine.txt").read_text() == "keep me"
    assert "not empty" in capsys.readouterr().err


def test_extract_of_a_tampered_edition_writes_nothing(
    built: tuple[Publisher, object], tmp_path: Path
) -> None:
    publisher, _ = built
    zip_path = next(publisher.config.editions_dir.glob("*.zip"))
    content = members(zip_path)
    content["index.html"] = content["index.html"].replace(b"<body", b"<body data-x")
    hostile = write_zip(tmp_path / "h.zip", content)
    out = tmp_path / "out"
    out.mkdir()
    code = main(
        [
            "extract",
            str(hostile),
            str(out / "edition"),
            "--root",
            str(publisher.root_json),
            "--state",
            str(tmp_path / "state"),
        ]
    )
    assert code == 10
    assert list(out.iterdir()) == []  # no edition folder, no staging folder left behind


def test_example_config_loads() -> None:
    config = load_config(Path(__file__).parent.parent / "config" / "example.yaml")
    assert config.publisher.name == "Example Newsroom"
    assert config.mirrors[0].announce


def test_source_date_epoch_makes_cli_builds_reproducible(
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = new_publisher(3)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(BUILD_TIME.timestamp())))
    archives = []
    for name in ("one", "two"):
        copy = _rebuild_elsewhere(original, tmp_path / name)
        assert main(["--config", str(copy.config.file), "build", "--json"]) == 0
        archives.append(Path(json.loads(capsys.readouterr().out)["zip"]).read_bytes())
    assert archives[0] == archives[1]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    assert main(["--config", str(original.config.file), "build"]) == 2
    assert "SOURCE_DATE_EPOCH" in capsys.readouterr().err
