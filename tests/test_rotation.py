"""Key rotation does not outlaw the past; a key marked compromised does.

Through the real CLI: `mirror keys rotate targets` (routine) leaves every
edition signed before it genuine — "superseded" — for readers on any root;
`mirror keys rotate targets --compromised --since T` makes whatever the old
key signed after T refused, saying so.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror.cli import main
from mirror.config import load_config
from tests.conftest import BUILD_TIME, Publisher


def verify(
    capsys: pytest.CaptureFixture[str], zip_path: Path, root: Path, state: Path
) -> tuple[int, dict[str, Any] | None, str]:
    capsys.readouterr()
    code = main(["verify", str(zip_path), "--root", str(root), "--state", str(state), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def rotate(publisher: Publisher, *extra: str) -> None:
    assert main(["--config", str(publisher.config.file), "keys", "rotate", "targets", *extra]) == 0


@pytest.fixture
def before_and_after(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> tuple[Publisher, Path, Path]:
    """A publisher with root 1 pinned by old readers and an edition signed under it."""
    publisher = new_publisher()
    root_1 = tmp_path / "root-1.json"
    shutil.copy(publisher.root_json, root_1)
    old = publisher.build()
    return publisher, root_1, old.zip_path


def test_a_routine_rotation_leaves_old_editions_genuine_and_superseded(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, root_1, old_zip = before_and_after
    rotate(publisher)
    new = publisher.build(when=BUILD_TIME + timedelta(minutes=5))
    root_2 = publisher.root_json  # what a new reader pins now

    # A new reader who pinned root 2 is handed the old edition on a USB stick.
    code, document, err = verify(capsys, old_zip, root_2, tmp_path / "new-reader")
    assert code == 0, err
    assert document is not None
    assert document["verdict"] == "superseded"
    assert document["superseded"]["signed_under_root_version"] == 1
    assert document["superseded"]["newest_root_version"] == 2

    capsys.readouterr()
    code = main(["verify", str(old_zip), "--root", str(root_2), "--state", str(tmp_path / "t")])
    assert code == 0
    assert "genuine, but superseded: signed under root version 1" in capsys.readouterr().out

    # An old reader (root 1) who never saw root 2 verifies it as it always did.
    code, document, _ = verify(capsys, old_zip, root_1, tmp_path / "old-reader")
    assert (code, document and document["verdict"]) == (0, "verified")

    # The new edition is simply verified.
    code, document, _ = verify(capsys, new.zip_path, root_2, tmp_path / "third")
    assert (code, document and document["verdict"]) == (0, "verified")


def test_a_compromised_key_makes_what_it_signed_after_the_stated_time_refused(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _, before_leak = before_and_after
    # A thief with a copy of the key store signs an edition after the key leaked.
    after_leak = thief_of(publisher, tmp_path).build(when=BUILD_TIME + timedelta(minutes=40))
    leaked_at = (BUILD_TIME + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rotate(publisher, "--compromised", "--since", leaked_at)
    root_2 = publisher.root_json

    code, document, err = verify(capsys, after_leak.zip_path, root_2, tmp_path / "r1")
    assert code == 10, err
    assert "compromised since" in err
    assert "Someone else may hold that key" in err
    code, document, err = verify(capsys, before_leak, root_2, tmp_path / "r2")
    assert code == 0, err  # signed while the key was still the publisher's own
    assert document is not None
    assert document["verdict"] == "superseded"


def test_rotate_options_are_checked(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    base = ["--config", str(publisher.config.file), "keys", "rotate"]
    for argv, words in (
        ([*base, "targets", "--since", "2026-01-01T00:00Z"], "--since goes with --compromised"),
        ([*base, "targets", "--compromised", "--since", "soon"], "is not a time"),
        ([*base, "targets", "--compromised", "--since", "2999-01-01T00:00Z"], "in the future"),
        ([*base, "minisign", "--compromised"], "cannot be marked compromised"),
    ):
        capsys.readouterr()
        assert main(argv) in (2, 5), argv
        assert words in capsys.readouterr().err, argv


def thief_of(publisher: Publisher, tmp_path: Path) -> Publisher:
    """Someone holding a copy of the publisher's key store and tree, as they are now."""
    thief = tmp_path / "thief"
    shutil.copytree(publisher.home, thief)
    config = thief / "mirror.yaml"
    config.write_text(config.read_text().replace(str(publisher.home), str(thief)))
    return Publisher(thief, load_config(config))


def test_a_routinely_retired_key_cannot_vouch_for_an_edition_made_after_it_was_retired(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _, _ = before_and_after
    thief = thief_of(publisher, tmp_path)  # holds the old key, and keeps it after the rotation
    rotate(publisher)
    late = thief.build(when=datetime.now(UTC) + timedelta(minutes=1))
    code, _, err = verify(capsys, late.zip_path, publisher.root_json, tmp_path / "reader")
    assert code == 10, err
    assert "after the key that signed it was retired" in err
