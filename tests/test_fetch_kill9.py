"""kill -9 during `mirror fetch`: the edition fetched before stays whole, and a re-run completes.

The reader first fetches edition 1 from an honest mirror; then the publisher
builds a much bigger edition 2, served by a slow but finite mirror, and the
test kills the reader with SIGKILL while edition 2 is coming in. It picks
its moment from what the mirror has sent (no hooks in the code under test).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from mirror.trust import layout
from tests.censor import CensorMirror, MirrorSpec, censor_mirrors, running_mirrors, snapshot_tree
from tests.conftest import BUILD_TIME, Publisher, make_keys, write_articles
from tests.test_fetch_censor import (
    assert_complete_edition,
    fetch,
    fetch_command,
    library_edition,
    reader_env,
    secret_mirror_config,
    tree_digest,
)

NEW_ARTICLES = 400
KILL_LIMIT_S = 60.0


@dataclass(frozen=True)
class TwoEditions:
    """A small edition 1 and a big edition 2 of one publisher."""

    root_json: Path
    first: Path
    second: Path
    first_eid: str
    second_eid: str
    first_zip: Path
    second_zip: Path


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory) -> TwoEditions:
    """Edition 1 (3 articles), then edition 2 (403 articles), each tree kept."""
    home = tmp_path_factory.mktemp("kill9")
    write_articles(home / "articles", 3)
    config = secret_mirror_config(home)
    make_keys(config)
    publisher = Publisher(home, config)
    first = publisher.build(when=BUILD_TIME - timedelta(minutes=30))
    snapshot_tree(config.publish_dir, home / "trees" / "first")
    write_articles(publisher.articles, NEW_ARTICLES, start=3)
    second = publisher.build()
    snapshot_tree(config.publish_dir, home / "trees" / "second")
    root_json = home / "pinned-root.json"
    root_json.write_bytes(publisher.root_json.read_bytes())
    return TwoEditions(
        root_json,
        home / "trees" / "first",
        home / "trees" / "second",
        first.eid,
        second.eid,
        first.zip_path,
        second.zip_path,
    )


KILL_POINTS: dict[str, Callable[[CensorMirror], bool]] = {
    "first content request": lambda m: any(s.path.startswith("targets/") for s in m.served()),
    "100 KB of content sent": lambda m: m.sent("targets") >= 100_000,
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_9_mid_fetch_keeps_edition_1_and_a_rerun_completes(
    editions: TwoEditions, tmp_path: Path, point: str
) -> None:
    state = tmp_path / "state"
    with censor_mirrors([("honest", editions.first)]) as urls:
        first = fetch(editions.root_json, urls, state)
    assert first.code == 0, f"exit {first.code}\n{first.stdout}\n{first.stderr}"
    kept = library_edition(state, editions.first_eid)
    assert_complete_edition(kept, editions.first_zip)
    before = tree_digest(kept)

    slow = MirrorSpec("slow", editions.second, delay_s=0.05, rate_bytes_s=100_000)
    with running_mirrors([slow]) as (mirror,):
        command = fetch_command(editions.root_json, [mirror.url], state, "--json")
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=reader_env()
        )
        condition = KILL_POINTS[point]
        deadline = time.monotonic() + KILL_LIMIT_S
        killed = False
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if condition(mirror):
                    process.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.005)
        finally:
            if process.poll() is None and not killed:
                process.kill()
            process.wait(timeout=30)
    assert killed, f"the fetch ended (exit {process.returncode}) before: {point}"
    assert process.returncode == -signal.SIGKILL

    # Edition 1 is exactly as it was, and nothing in the library looks like a half edition.
    assert tree_digest(library_edition(state, editions.first_eid)) == before
    (library,) = state.glob("publishers/*/library")
    complete = {editions.first_eid: editions.first_zip, editions.second_eid: editions.second_zip}
    for folder in library.iterdir():
        if layout.EDITION_ID_RE.match(folder.name):
            assert folder.name in complete, f"unexpected edition {folder.name} in the library"
            assert_complete_edition(folder, complete[folder.name])
    if not (library / editions.second_eid).exists():
        (record,) = state.glob("publishers/*/editions.json")
        assert json.loads(record.read_text())["version"] == 1, "state claims a missing edition"

    with censor_mirrors([("honest", editions.second)]) as urls:
        again = fetch(editions.root_json, urls, state)
    assert again.code == 0, f"exit {again.code}\n{again.stdout}\n{again.stderr}"
    assert again.document["edition"] == editions.second_eid
    assert_complete_edition(library_edition(state, editions.second_eid), editions.second_zip)
    leftovers = sorted(p.name for p in library.iterdir() if p.name.startswith("."))
    assert leftovers == [], f"half-assembled editions left behind: {leftovers}"
    # The killed run's scratch (probes, downloads, staging) was swept by the rerun.
    (scratch,) = state.glob("publishers/*/tmp")
    assert list(scratch.iterdir()) == [], "a killed fetch's temporary files were left behind"
