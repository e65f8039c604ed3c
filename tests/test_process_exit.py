"""A `mirror` process leaves no process behind: when it exits, its whole session is gone.

A service manager judges a run by its process group: under systemd, a oneshot
unit whose main process exited while another of its processes lived on (here
Python's fork server and resource tracker, which used to notice their parent
was gone only after it had exited) was sent SIGTERM and, in a cgroup v1
container, waited out its stop timeout: a successful sync ended as "timeout".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hostile import ROOT, article, newsroom


def _session_members(session: int) -> list[str]:
    """The processes still in ``session`` (pid and command), read from /proc."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session:  # after ")": state, ppid, pgrp, session
            left.append(f"{entry.name} {command}")
    return left


def test_a_build_with_worker_processes_leaves_none_of_them_behind(tmp_path: Path) -> None:
    config = newsroom(tmp_path)
    for number in range(6):
        (tmp_path / "articles" / f"a{number}.md").write_text(
            article(title=f"Article {number}"), encoding="utf-8"
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "mirror", "--config", str(config), "build"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _, err = process.communicate(timeout=120)
    left = _session_members(process.pid)
    assert process.returncode == 0, err
    assert left == [], left
