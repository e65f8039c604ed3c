"""The README's commands work when pasted into a shell."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
README = (CHECKOUT / "README.md").read_text(encoding="utf-8")


def block_after(heading: str) -> str:
    """The first ```sh block after ``heading``."""
    section = README.split(heading, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None, heading
    return match.group(1)


@pytest.mark.slow
def test_the_newsroom_section_works_as_pasted(tmp_path: Path) -> None:
    script = block_after("## A newsroom of your own")
    assert "mirror init" in script
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")},
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / ".config"),
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    newsroom = tmp_path / "newsroom"
    assert (newsroom / "mirrors" / "local" / "metadata" / "2.root.json").is_file()
    assert "Rotated the targets keys" in done.stdout
    assert done.stderr.count("mirror: ") == 0, done.stderr  # no error, no warning line


@pytest.mark.slow
def test_the_quick_start_and_try_it_work_as_pasted(tmp_path: Path) -> None:
    """In a copy of the checkout (the example writes out/ and mirrors/ beside config/)."""
    first = README.split("```sh\n", 1)[1].split("\n", 1)[0]
    sync = first.split("&& ", 2)[2]  # the venv and the install are this checkout's own
    assert sync.startswith(".venv/bin/mirror --config config/example.yaml sync")
    for folder in ("config", "examples"):
        subprocess.run(["cp", "-r", str(CHECKOUT / folder), str(tmp_path)], check=True)
    (tmp_path / ".venv").symlink_to(CHECKOUT / ".venv")
    script = sync + "\n" + block_after("## Try it")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")}}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "mirrors" / "a" / "metadata" / "timestamp.json").is_file()
    assert "verified: Example Newsroom" in done.stdout
    assert "Signature and comment signature verified" in done.stdout + done.stderr
