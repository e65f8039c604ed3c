"""Root keys kept offline: propose online, sign offline, import online; readers follow."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mirror.cli import main
from tests.conftest import BUILD_TIME, Publisher


def split_keys(publisher: Publisher, offline: Path) -> None:
    """Move the root keys to an 'offline machine' (a copy of the key store)."""
    shutil.copytree(publisher.config.keys.dir, offline)
    for key in publisher.config.keys.dir.glob("root-*.key"):
        key.unlink()
    for key in offline.glob("*.key"):
        if not key.name.startswith("root-"):
            key.unlink()  # the offline machine holds only root keys


def test_offline_root_rotates_an_online_key_and_readers_follow(
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = new_publisher()
    pinned = tmp_path / "pinned-root.json"
    shutil.copy(publisher.root_json, pinned)
    old = publisher.build()
    offline = tmp_path / "offline-keys"
    split_keys(publisher, offline)
    config = ["--config", str(publisher.config.file)]

    # Without root keys online, a plain rotation explains the offline flow.
    assert main([*config, "keys", "rotate", "targets"]) == 5
    assert "propose-root" in capsys.readouterr().err

    assert main([*config, "keys", "propose-root", "targets"]) == 0
    proposal = next((publisher.config.keys.dir / "proposals").glob("2.root.json"))
    # An unsigned proposal is refused like any forged root would be.
    assert main([*config, "keys", "import-root", str(proposal)]) == 10

    carried = tmp_path / "usb" / proposal.name
    carried.parent.mkdir()
    shutil.copy(proposal, carried)
    assert main([*config, "keys", "sign-root", str(carried), "--keys-dir", str(offline)]) == 0
    signed = carried.with_name("2.root.signed.json")
    assert main([*config, "keys", "import-root", str(signed)]) == 0
    assert "Root is now version 2" in capsys.readouterr().out

    new = publisher.build(when=BUILD_TIME + timedelta(minutes=1))
    reader = ["--root", str(pinned), "--state", str(tmp_path / "reader")]
    assert main(["verify", str(old.zip_path), *reader]) == 0
    assert main(["verify", str(new.zip_path), *reader]) == 0  # walks root 1 -> 2
    assert (publisher.config.keys.dir / "retired").is_dir()


def test_a_proposal_signed_below_threshold_is_refused(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher = new_publisher()
    offline = tmp_path / "offline-keys"
    split_keys(publisher, offline)
    for extra in sorted(offline.glob("root-*.key"))[1:]:
        extra.unlink()  # only one of the 2-of-3 root keys made it to the offline machine
    config = ["--config", str(publisher.config.file)]
    assert main([*config, "keys", "propose-root", "renew"]) == 0
    proposal = publisher.config.keys.dir / "proposals" / "2.root.json"
    assert main([*config, "keys", "sign-root", str(proposal), "--keys-dir", str(offline)]) == 0
    signed = proposal.with_name("2.root.signed.json")
    assert main([*config, "keys", "import-root", str(signed)]) == 10
    assert not (publisher.config.keys.dir / "roots" / "2.root.json").exists()
