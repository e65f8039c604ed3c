"""kill -9 during `mirror sync` at several points; a re-run completes and every mirror verifies.

The test watches the file system to pick its moment (no hooks in the code
under test): while the edition ZIP is being written, while targets are being
placed in the publish tree, while a mirror has content but no metadata yet,
and while a mirror has part of the new metadata but no new timestamp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.cli import main
from tests.conftest import Publisher, make_config, write_articles


def _any(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and any(folder.rglob(pattern))


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.rglob(pattern)) if folder.is_dir() else 0


KILL_POINTS: dict[str, Callable[[Publisher, Path], bool]] = {
    "writing the edition archive": lambda p, m: _any(p.config.editions_dir, ".*.part"),
    "placing targets in the publish tree": lambda p, m: (
        _count(p.config.publish_dir / "targets", "*.html") > 20
    ),
    "mirror has content, no metadata": lambda p, m: (
        _count(m / "targets", "*") > 30 and not _any(m / "metadata", "*.json")
    ),
    # The metadata phase is some 260 files long (256 hash bins): a window wide enough
    # to hit on a loaded machine.
    "mirror has some metadata, no timestamp": lambda p, m: (
        _count(m / "metadata", "*.json") > 20 and not _any(m / "metadata", "timestamp.json")
    ),
}


def _sync(publisher: Publisher) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirror", "--config", str(publisher.config.file), "sync"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_9_then_rerun_completes(
    point: str, new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher = new_publisher(0)
    write_articles(publisher.articles, 250)
    mirror_root = publisher.home / "mirror"
    mirrors = (
        f"  - name: local\n    type: local\n    public_url: file://{mirror_root}/\n"
        f"    limits: {{concurrency: 1}}\n    local:\n      path: {mirror_root}\n"
    )
    config = make_config(publisher.home, mirrors=mirrors)
    publisher = Publisher(publisher.home, config)

    process = _sync(publisher)
    condition = KILL_POINTS[point]
    deadline = time.monotonic() + 120
    killed = False
    while process.poll() is None and time.monotonic() < deadline:
        if condition(publisher, mirror_root):
            process.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    process.wait(timeout=60)
    assert killed, f"the run finished before reaching the point: {point}"
    assert process.returncode == -signal.SIGKILL

    report = tmp_path / "report.json"
    code = main(["--config", str(config.file), "sync", "--json", str(report)])
    assert code == 0
    (result,) = json.loads(report.read_text())["mirrors"]
    assert result["verified"] is True
    # Nothing half-written survives: no temporary files in the output folder.
    leftovers = [p.name for p in config.output_dir.rglob(".*") if p.name != ".mirror.lock"]
    assert leftovers == []
