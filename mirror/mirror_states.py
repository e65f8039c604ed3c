"""Each mirror's last push, remembered in the output folder for `mirror mirrors list`.

Push shards run at once, so a run merges its results into the file under a
short exclusive lock (`mirror.runlocks.exclusive`); the write is atomic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mirror import fsutil
from mirror.errors import MirrorError
from mirror.publish import PushResult

MAX_STATES_BYTES = 16 * 1024 * 1024


def load_mirror_states(path: Path) -> dict[str, Any]:
    """Each mirror's last result, by name (empty when there is none or it is unreadable)."""
    if not path.exists():
        return {}
    try:
        states = json.loads(fsutil.read_bounded(path, max_bytes=MAX_STATES_BYTES, what="state"))
    except (ValueError, MirrorError):
        return {}
    return states if isinstance(states, dict) else {}


def save_mirror_states(path: Path, results: Sequence[PushResult], when: datetime) -> None:
    """Remember each mirror's last result, for `mirror mirrors list`; merged, atomic.

    Counts, not the paths of every file uploaded: with the paths, one first push of
    100,000 articles to three mirrors made a 39 MB file, past `MAX_STATES_BYTES`, so
    the next run read nothing back and every other mirror's state was lost.
    """
    states = load_mirror_states(path)
    for result in results:
        states[result.mirror] = {**result.as_json(files=False), "when": when.isoformat()}
    data = json.dumps(states, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    fsutil.atomic_write_bytes(path, data.encode("utf-8"))
