"""`mirror fetch` against a censor: one honest mirror among nine hostile ones, or none.

The trees served are snapshots of one publisher's publish tree:

- ``old``: after edition 1;
- ``new``: after edition 2, the newest honest state;
- ``expired``: after edition 3, built 40 days ago on top of ``new``. Its
  versions are the *highest* on offer, so the only right verdict for it is
  "expired", whatever order a reader looks at mirrors in (an expired tree
  with lower versions could as rightly be called stale).

The first half of this file tests the harness itself with stock tools (a
python-tuf `Updater`, raw sockets), so a failure in the second half is the
reader's, not the censor's. The fetch tests run ``python -m mirror fetch``
as a subprocess with short timeouts (``--connect-timeout 1 --timeout 3``)
and a hard wall-clock limit, so a censor that holds the reader fails the
test instead of hanging it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater

from mirror.client.transport import DeadlineFetcher
from mirror.config import Config
from tests.censor import (
    BEHAVIOURS,
    MirrorSpec,
    SpecLike,
    censor_mirrors,
    running_mirrors,
    snapshot_tree,
    tamper_bytes,
)
from tests.conftest import BUILD_TIME, Publisher, make_config, make_keys, write_articles

REPO = Path(__file__).resolve().parent.parent
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 3
FETCH_LIMIT_S = 90.0
"""A fetch still running after this is a failure: some censor held the reader."""
FETCH_BUDGET_S = 30.0
"""Ten mirrors, nine hostile, with 1 s/3 s timeouts: a reader should be done well within this."""
CYRILLIC = re.compile("[\u0400-\u04ff]")
REFUSED_VERDICTS = {"stale", "rollback"}

EXPECTED_VERDICTS: dict[str, set[str]] = {
    "honest": {"ok"},
    "blackhole": {"unreachable"},
    "reset": {"unreachable"},
    "refused": {"unreachable"},
    "trickle": {"unreachable"},
    "tamper": {"tampered"},
    "tamper-targets": {"tampered"},
    "mixandmatch": {"tampered"},
    # Over-long data is data the publisher did not sign (DESIGN: "lie about lengths").
    "endless": {"tampered"},
    "expired": {"expired"},
    # The genuine metadata, fast, then no content: demoted at the first file it fails.
    "withhold": {"unreachable"},
    "stall": {"unreachable"},
    "drip": {"unreachable"},
    # The list is in the edition itself: a mirror that withholds mirrors.json hides nothing.
    "withhold-list": {"ok"},
    # Older than another mirror, or than the reader's state: both are refusals of old data.
    "stale": REFUSED_VERDICTS,
    "rollback": REFUSED_VERDICTS,
}
"""The verdict `--json` must give each kind of mirror."""

HOSTILE = (
    "blackhole",
    "reset",
    "tamper",
    "stale",
    "rollback",
    "expired",
    "mixandmatch",
    "trickle",
    "endless",
)


# --- the trees ------------------------------------------------------------------------


def secret_mirror_config(home: Path) -> Config:
    """A publisher config whose one mirror is secret.

    The signed mirror list is then empty, so a reader tries exactly the
    mirrors a test gives it (and no ``file://`` folder that never existed).
    """
    folder = home / "mirror-a"
    mirrors = (
        f"  - name: a\n    type: local\n    announce: false\n    public_url: file://{folder}/\n"
        f"    local:\n      path: {folder}\n"
    )
    return make_config(home, mirrors=mirrors)


@dataclass(frozen=True)
class Trees:
    """Publish trees of one publisher at three moments, and what readers pin."""

    root_json: Path
    old: Path
    new: Path
    expired: Path
    old_eid: str
    new_eid: str
    expired_eid: str
    new_zip: Path

    def spec(self, behaviour: str) -> SpecLike:
        """The mirror playing ``behaviour`` over the right trees."""
        if behaviour == "stale":
            return ("stale", self.old)
        if behaviour == "expired":
            return ("expired", self.expired)
        if behaviour in ("rollback", "mixandmatch"):
            return (behaviour, self.new, self.old)
        return (behaviour, self.new)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    """Build editions 1, 2 and an expired 3, keeping a copy of the tree after each."""
    home = tmp_path_factory.mktemp("censored")
    write_articles(home / "articles", 3)
    config = secret_mirror_config(home)
    make_keys(config)
    publisher = Publisher(home, config)
    saved = home / "trees"
    old = publisher.build(when=BUILD_TIME - timedelta(minutes=30))
    snapshot_tree(config.publish_dir, saved / "old")
    write_articles(publisher.articles, 2, start=3)
    new = publisher.build()
    snapshot_tree(config.publish_dir, saved / "new")
    expired = publisher.build(when=datetime.now(UTC) - timedelta(days=40))
    snapshot_tree(config.publish_dir, saved / "expired")
    root_json = home / "pinned-root.json"
    root_json.write_bytes(publisher.root_json.read_bytes())
    return Trees(
        root_json=root_json,
        old=saved / "old",
        new=saved / "new",
        expired=saved / "expired",
        old_eid=old.eid,
        new_eid=new.eid,
        expired_eid=expired.eid,
        new_zip=new.zip_path,
    )


# --- running the reader -----------------------------------------------------------------


@dataclass(frozen=True)
class FetchRun:
    """One finished `mirror fetch`."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def document(self) -> dict[str, Any]:
        """The ``--json`` document on stdout."""
        try:
            document = json.loads(self.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"stdout is not JSON (exit {self.code}):\n{self.stdout}\n{self.stderr}")
        assert isinstance(document, dict)
        return document

    def verdicts(self) -> dict[str, str]:
        """Per-mirror verdicts by URL."""
        rows = self.document["mirrors"]
        urls = [row["url"] for row in rows]
        assert len(urls) == len(set(urls)), f"a mirror is listed twice: {urls}"
        return {row["url"]: row["verdict"] for row in rows}


def reader_env() -> dict[str, str]:
    """The environment for a reader subprocess: our checkout, no proxies."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env.pop("ALL_PROXY", None)
    env.pop("all_proxy", None)
    env.pop("MIRROR_DEBUG", None)
    env["PYTHONPATH"] = str(REPO)
    return env


def fetch_command(root: Path, urls: Sequence[str], state: Path, *extra: str) -> list[str]:
    """``python -m mirror fetch`` with short timeouts."""
    command = [
        sys.executable,
        "-m",
        "mirror",
        "fetch",
        "--root",
        str(root),
        "--state",
        str(state),
        "--connect-timeout",
        str(CONNECT_TIMEOUT_S),
        "--timeout",
        str(READ_TIMEOUT_S),
    ]
    for url in urls:
        command += ["--mirror", url]
    return command + list(extra)


def fetch(
    root: Path,
    urls: Sequence[str],
    state: Path,
    *,
    as_json: bool = True,
    lang: str = "en",
) -> FetchRun:
    """Run `mirror fetch` to the end (failing the test if it outlives `FETCH_LIMIT_S`)."""
    extra = ["--lang", lang] + (["--json"] if as_json else [])
    command = fetch_command(root, urls, state, *extra)
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=FETCH_LIMIT_S,
            env=reader_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"mirror fetch still ran after {FETCH_LIMIT_S:g} s (a censor held it): "
            f"stderr so far: {error.stderr!r}"
        )
    return FetchRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def assert_sentence_and_hint(run: FetchRun) -> None:
    """Failure is one ``mirror: ...`` sentence and one ``hint: ...`` on stderr, no traceback."""
    assert "Traceback" not in run.stderr + run.stdout
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    sentences = [line for line in lines if line.startswith("mirror: ")]
    hints = [line for line in lines if line.startswith("hint: ")]
    assert len(sentences) == 1, f"want one sentence on stderr, got:\n{run.stderr}"
    assert len(hints) == 1, f"want one hint on stderr, got:\n{run.stderr}"
    assert len(sentences[0]) > len("mirror: ") + 10


def library_edition(state: Path, eid: str) -> Path:
    """``<state>/publishers/<id>/library/<eid>`` (the only publisher in ``state``)."""
    found = list(state.glob(f"publishers/*/library/{eid}"))
    assert len(found) == 1, f"edition {eid} is not in the library: {found}"
    return found[0]


def tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def assert_complete_edition(folder: Path, archive: Path) -> None:
    """Every reader-facing member of ``archive`` is in ``folder`` with the same bytes."""
    assert (folder / "index.html").read_text(encoding="utf-8").lstrip().startswith("<")
    with zipfile.ZipFile(archive) as edition:
        for name in edition.namelist():
            if name.startswith(".mirror/") or name.endswith("/"):
                continue
            placed = folder / name
            assert placed.is_file(), f"{name} is missing from {folder}"
            assert placed.read_bytes() == edition.read(name), f"{name} differs in {folder}"


# --- the harness, judged by stock tools ---------------------------------------------------


def stock_updater(url: str, trees: Trees, folder: Path) -> Updater:
    """A stock python-tuf `Updater` for the mirror at ``url`` (fresh or reusing ``folder``)."""
    metadata = folder / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    return Updater(
        metadata_dir=str(metadata),
        metadata_base_url=f"{url}metadata/",
        target_base_url=f"{url}targets/",
        target_dir=str(folder / "targets"),
        fetcher=DeadlineFetcher(connect_timeout_s=1, read_timeout_s=2, download_budget_s=5),
        bootstrap=trees.root_json.read_bytes(),
    )


def timestamp_version(updater: Updater) -> int:
    """The timestamp version the updater now trusts."""
    data = (Path(updater._dir) / "timestamp.json").read_bytes()
    version = json.loads(data)["signed"]["version"]
    assert isinstance(version, int)
    return version


def test_harness_knows_every_behaviour() -> None:
    assert set(EXPECTED_VERDICTS) == set(BEHAVIOURS) - {"slow"}


def test_honest_mirror_serves_a_tree_stock_tuf_accepts(trees: Trees, tmp_path: Path) -> None:
    with censor_mirrors([("honest", trees.new)]) as (url,):
        updater = stock_updater(url, trees, tmp_path)
        updater.refresh()
        info = updater.get_targetinfo(f"manifests/{trees.new_eid}/index.html")
        assert info is not None
        (tmp_path / "targets").mkdir()
        assert Path(updater.download_target(info)).read_bytes().lstrip().startswith(b"<")
    assert timestamp_version(updater) == 2


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("tamper", tuf_errors.UnsignedMetadataError),
        ("mixandmatch", tuf_errors.LengthOrHashMismatchError),
        ("expired", tuf_errors.ExpiredMetadataError),
        ("endless", tuf_errors.DownloadLengthMismatchError),
    ],
)
def test_hostile_metadata_is_refused_by_stock_tuf(
    trees: Trees, tmp_path: Path, behaviour: str, error: type[Exception]
) -> None:
    with censor_mirrors([trees.spec(behaviour)]) as (url,), pytest.raises(error):
        stock_updater(url, trees, tmp_path).refresh()


def test_tamper_targets_passes_metadata_but_not_content(trees: Trees, tmp_path: Path) -> None:
    with censor_mirrors([("tamper-targets", trees.new)]) as (url,):
        updater = stock_updater(url, trees, tmp_path)
        updater.refresh()
        info = updater.get_targetinfo(f"manifests/{trees.new_eid}/index.html")
        assert info is not None
        (tmp_path / "targets").mkdir()
        with pytest.raises(tuf_errors.LengthOrHashMismatchError):
            updater.download_target(info)


@pytest.mark.parametrize("behaviour", ["stale", "rollback"])
def test_old_data_is_valid_alone_and_a_rollback_after_newer(
    trees: Trees, tmp_path: Path, behaviour: str
) -> None:
    with censor_mirrors([trees.spec(behaviour), ("honest", trees.new)]) as (old_url, new_url):
        fresh = stock_updater(old_url, trees, tmp_path / "fresh")
        fresh.refresh()
        assert timestamp_version(fresh) == 1
        stock_updater(new_url, trees, tmp_path / "seen").refresh()
        with pytest.raises(tuf_errors.BadVersionNumberError):
            stock_updater(old_url, trees, tmp_path / "seen").refresh()


def test_tamper_keeps_json_syntax_and_flips_other_files() -> None:
    signed = b'{"signed":{"expires":"2026-12-03T10:00:00Z","version":1}}'
    forged = tamper_bytes(signed, path="metadata/timestamp.json")
    assert forged != signed
    assert json.loads(forged)["signed"]["expires"] == "2027-12-03T10:00:00Z"
    assert tamper_bytes(b"abc", path="targets/x.html") == b"acc"


def _raw_get(port: int, path: str = "/pub/metadata/timestamp.json") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("ascii"))
    return sock


def test_blackhole_accepts_and_never_answers(trees: Trees) -> None:
    with running_mirrors([("blackhole", trees.new)]) as (mirror,), _raw_get(mirror.port) as sock:
        sock.settimeout(1.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_reset_resets(trees: Trees) -> None:
    with (
        running_mirrors([("reset", trees.new)]) as (mirror,),
        _raw_get(mirror.port) as sock,
        pytest.raises(ConnectionResetError),
    ):
        sock.recv(1)


def test_refused_has_nobody_listening(trees: Trees) -> None:
    with (
        running_mirrors([("refused", trees.new)]) as (mirror,),
        pytest.raises(ConnectionRefusedError),
    ):
        socket.create_connection(("127.0.0.1", mirror.port), timeout=2)


def test_trickle_sends_one_byte_per_half_second(trees: Trees) -> None:
    spec = MirrorSpec("trickle", trees.new)
    with running_mirrors([spec]) as (mirror,), _raw_get(mirror.port) as sock:
        received = b""
        started = time.monotonic()
        while len(received) < 4:
            chunk = sock.recv(100)
            assert len(chunk) == 1
            received += chunk
        assert received == b"HTTP"
        assert time.monotonic() - started >= 1.4


def test_endless_streams_without_end(trees: Trees) -> None:
    with running_mirrors([("endless", trees.new)]) as (mirror,), _raw_get(mirror.port) as sock:
        received = 0
        while received < 4 * 1024 * 1024:
            chunk = sock.recv(1 << 16)
            assert chunk, "the endless mirror ended"
            received += len(chunk)


def test_paths_outside_the_mirror_root_are_not_served(trees: Trees) -> None:
    with running_mirrors([("honest", trees.new)]) as (mirror,):
        for path in ("/metadata/timestamp.json", "/pub/../pub/metadata/timestamp.json"):
            with _raw_get(mirror.port, path) as sock:
                assert sock.recv(100).startswith(b"HTTP/1.0 404")
        with _raw_get(mirror.port) as sock:
            assert sock.recv(100).startswith(b"HTTP/1.0 200")


def test_leaving_the_block_releases_held_connections_quickly(trees: Trees) -> None:
    held: list[socket.socket] = []
    with running_mirrors([trees.spec(b) for b in ("blackhole", "trickle", "endless")]) as mirrors:
        held = [_raw_get(mirror.port) for mirror in mirrors]
        time.sleep(0.5)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    for sock in held:
        sock.close()


# --- one honest mirror among nine hostile ones ------------------------------------------


def lineup(honest_at: int) -> list[str]:
    """The ten behaviours with the honest mirror at position ``honest_at``."""
    behaviours = list(HOSTILE)
    behaviours.insert(honest_at, "honest")
    return behaviours


@pytest.mark.parametrize("honest_at", range(10))
def test_one_honest_mirror_is_enough(trees: Trees, tmp_path: Path, honest_at: int) -> None:
    behaviours = lineup(honest_at)
    with censor_mirrors([trees.spec(b) for b in behaviours]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state")
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    document = run.document
    assert document["verdict"] == "verified"
    assert document["edition"] == trees.new_eid
    assert document["version"] == 2
    assert document["mirror"] == urls[honest_at]
    assert document["downloaded_bytes"] > 0
    verdicts = run.verdicts()
    assert set(verdicts) == set(urls)
    wrong = {
        f"{behaviour} (#{i})": verdicts[url]
        for i, (behaviour, url) in enumerate(zip(behaviours, urls, strict=True))
        if verdicts[url] not in EXPECTED_VERDICTS[behaviour]
    }
    assert wrong == {}, f"mirrors with the wrong verdict: {wrong}"
    for row in document["mirrors"]:
        if row["verdict"] != "ok":
            assert isinstance(row["detail"], str), row
            assert row["detail"], row
    edition = Path(document["path"])
    assert edition == library_edition(tmp_path / "state", trees.new_eid)
    assert_complete_edition(edition, trees.new_zip)
    assert run.seconds < FETCH_BUDGET_S, f"the censor held the reader for {run.seconds:.1f} s"


# --- no honest mirror -------------------------------------------------------------------


@pytest.fixture
def reader_with_edition_2(trees: Trees, tmp_path: Path) -> Path:
    """A reader state that already verified edition 2 (from an honest mirror)."""
    state = tmp_path / "state"
    with censor_mirrors([("honest", trees.new)]) as urls:
        run = fetch(trees.root_json, urls, state)
    assert run.code == 0, run.stderr
    return state


@pytest.mark.parametrize(
    "behaviours",
    [
        ["tamper", "tamper"],
        ["tamper-targets"],
        ["mixandmatch", "endless"],
        ["tamper", "blackhole", "reset"],
    ],
    ids="+".join,
)
def test_only_forgeries_exit_10(trees: Trees, tmp_path: Path, behaviours: list[str]) -> None:
    with censor_mirrors([trees.spec(b) for b in behaviours]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state", as_json=False)
    assert run.code == 10, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert_sentence_and_hint(run)
    assert not list((tmp_path / "state").glob("publishers/*/library/*/index.html"))


@pytest.mark.parametrize(
    "behaviours",
    [["blackhole", "reset"], ["blackhole", "reset", "refused", "trickle"]],
    ids="+".join,
)
def test_only_unreachable_mirrors_exit_7(
    trees: Trees, tmp_path: Path, behaviours: list[str]
) -> None:
    with censor_mirrors([trees.spec(b) for b in behaviours]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state", as_json=False)
    assert run.code == 7, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert_sentence_and_hint(run)


def test_only_old_mirrors_after_edition_2_exit_13(
    trees: Trees, reader_with_edition_2: Path
) -> None:
    with censor_mirrors([trees.spec("stale"), trees.spec("rollback")]) as urls:
        run = fetch(trees.root_json, urls, reader_with_edition_2, as_json=False)
    assert run.code == 13, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert_sentence_and_hint(run)


def test_only_expired_mirrors_exit_11(trees: Trees, tmp_path: Path) -> None:
    with censor_mirrors([trees.spec("expired"), trees.spec("expired")]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state", as_json=False)
    assert run.code == 11, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert_sentence_and_hint(run)


def test_expired_newer_data_after_edition_2_exits_11(
    trees: Trees, reader_with_edition_2: Path
) -> None:
    with censor_mirrors([trees.spec("expired")]) as urls:
        run = fetch(trees.root_json, urls, reader_with_edition_2)
    assert run.code == 11, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.document["verdict"] == "expired"
    assert list(run.verdicts().values()) == ["expired"]
    assert_complete_edition(library_edition(reader_with_edition_2, trees.new_eid), trees.new_zip)


@pytest.mark.parametrize(
    ("behaviours", "code", "verdict"),
    [
        (["tamper", "blackhole", "mixandmatch", "reset"], 10, "tampered"),
        (["tamper-targets"], 10, "tampered"),
        (["blackhole", "refused"], 7, "unreachable"),
        (["expired"], 11, "expired"),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, list) else str(value),
)
def test_json_names_each_mirror_when_all_fail(
    trees: Trees, tmp_path: Path, behaviours: list[str], code: int, verdict: str
) -> None:
    with censor_mirrors([trees.spec(b) for b in behaviours]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state")
    assert run.code == code, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.document["verdict"] == verdict
    verdicts = run.verdicts()
    wrong = {
        f"{behaviour} (#{i})": verdicts.get(url)
        for i, (behaviour, url) in enumerate(zip(behaviours, urls, strict=True))
        if verdicts.get(url) not in EXPECTED_VERDICTS[behaviour]
    }
    assert wrong == {}, f"mirrors with the wrong verdict: {wrong}"
    assert "Traceback" not in run.stderr


def test_trickle_alone_cannot_hold_the_reader(trees: Trees, tmp_path: Path) -> None:
    """``--timeout 3`` is per read *and per file*: one byte every 0.5 s must not beat it."""
    with censor_mirrors([trees.spec("trickle")]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state")
    assert run.code == 7, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.seconds < 6 * READ_TIMEOUT_S, (
        f"one trickling mirror held the reader {run.seconds:.0f} s"
    )


@pytest.mark.parametrize("forged_at", [0, 1])
def test_forged_content_beside_an_honest_mirror(
    trees: Trees, tmp_path: Path, forged_at: int
) -> None:
    """Signed metadata, forged files: the reader falls back, and names the forger if it saw it."""
    specs = [trees.spec("honest")]
    specs.insert(forged_at, trees.spec("tamper-targets"))
    with running_mirrors(specs) as mirrors:
        run = fetch(trees.root_json, [m.url for m in mirrors], tmp_path / "state")
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.document["mirror"] == mirrors[1 - forged_at].url
    assert_complete_edition(Path(run.document["path"]), trees.new_zip)
    forger = mirrors[forged_at]
    if any(s.path.startswith("targets/") for s in forger.served()):
        assert run.verdicts()[forger.url] == "tampered", (
            f"the reader downloaded forged files from {forger.url} and called it "
            f"{run.verdicts()[forger.url]!r}"
        )


# --- rollback across runs ----------------------------------------------------------------


def test_after_edition_2_every_mirror_with_edition_1_is_refused(
    trees: Trees, reader_with_edition_2: Path
) -> None:
    state = reader_with_edition_2
    kept = library_edition(state, trees.new_eid)
    before = tree_digest(kept)
    behaviours = ["stale", "rollback", "stale"]
    with censor_mirrors([trees.spec(b) for b in behaviours]) as urls:
        run = fetch(trees.root_json, urls, state)
    assert run.code == 13, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.document["verdict"] == "stale"
    verdicts = run.verdicts()
    assert set(verdicts) == set(urls)
    assert set(verdicts.values()) <= REFUSED_VERDICTS, verdicts
    # The library keeps edition 2, untouched, and takes nothing from the old mirrors.
    assert tree_digest(library_edition(state, trees.new_eid)) == before
    assert not list(state.glob(f"publishers/*/library/{trees.old_eid}"))
    (editions,) = state.glob("publishers/*/editions.json")
    assert json.loads(editions.read_text())["version"] == 2


def test_edition_2_again_is_already_newest(trees: Trees, reader_with_edition_2: Path) -> None:
    with censor_mirrors([trees.spec("stale"), ("honest", trees.new)]) as urls:
        run = fetch(trees.root_json, urls, reader_with_edition_2)
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.document["edition"] == trees.new_eid
    assert run.verdicts()[urls[0]] in REFUSED_VERDICTS


# --- Russian ------------------------------------------------------------------------------


def test_russian_verdict_on_success(trees: Trees, tmp_path: Path) -> None:
    with censor_mirrors([trees.spec("tamper"), ("honest", trees.new)]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state", as_json=False, lang="ru")
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    first = run.stdout.strip().splitlines()[0]
    assert CYRILLIC.search(first), f"the verdict line is not in Russian: {first!r}"
    assert trees.new_eid in run.stdout


def test_russian_verdict_on_failure(trees: Trees, tmp_path: Path) -> None:
    with censor_mirrors([trees.spec("tamper")]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state", as_json=False, lang="ru")
    assert run.code == 10, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr
    sentence = next(line for line in run.stderr.splitlines() if line.startswith("mirror: "))
    assert CYRILLIC.search(sentence), f"the verdict is not in Russian: {sentence!r}"


# --- the censor's cheapest attack: fast genuine metadata, then no content ----------------

CONTENT_LIARS = ("withhold", "stall", "drip")


def slow_honest(trees: Trees) -> MirrorSpec:
    """An honest mirror too slow to finish its metadata within the first mirror's grace."""
    return MirrorSpec("slow", trees.new, delay_s=0.4, rate_bytes_s=2_000_000)


@pytest.mark.parametrize("liar", [*CONTENT_LIARS, "withhold-list"])
@pytest.mark.parametrize("honest_at", [0, 1])
def test_a_fast_liar_cannot_cut_the_reader_off_a_slower_honest_mirror(
    trees: Trees, tmp_path: Path, liar: str, honest_at: int
) -> None:
    specs: list[SpecLike] = [trees.spec(liar)]
    specs.insert(honest_at, slow_honest(trees))
    with censor_mirrors(specs) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state")
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    document = run.document
    assert (document["edition"], document["version"]) == (trees.new_eid, 2)
    verdicts = run.verdicts()
    if liar == "withhold-list":
        # It serves every edition file, so the fetch may be over before the slow one answers.
        rows = {row["url"]: row for row in document["mirrors"]}
        slow = rows[urls[honest_at]]
        assert slow["verdict"] == "ok" or "still had not answered" in slow["detail"], slow
    else:
        assert document["mirror"] == urls[honest_at]
        assert verdicts[urls[honest_at]] == "ok"
    assert verdicts[urls[1 - honest_at]] in EXPECTED_VERDICTS[liar]
    assert_complete_edition(Path(document["path"]), trees.new_zip)
    assert run.seconds < FETCH_BUDGET_S


@pytest.mark.parametrize("honest_at", [0, len(CONTENT_LIARS)])  # first and last
def test_every_content_liar_at_once_in_front_of_a_slow_honest_mirror(
    trees: Trees, tmp_path: Path, honest_at: int
) -> None:
    specs: list[SpecLike] = [trees.spec(liar) for liar in CONTENT_LIARS]
    specs.insert(honest_at, slow_honest(trees))
    with censor_mirrors(specs) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state")
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.document["mirror"] == urls[honest_at]
    assert_complete_edition(Path(run.document["path"]), trees.new_zip)
    state = json.loads(
        (
            library_edition(tmp_path / "state", trees.new_eid).parent.parent / "mirrors.json"
        ).read_text()
    )
    assert state["mirrors"][urls[honest_at]]["last_verdict"] == "ok"
    assert run.seconds < FETCH_BUDGET_S


def test_a_mirror_that_withholds_the_list_cannot_hide_it(trees: Trees, tmp_path: Path) -> None:
    """The signed list is read from the verified edition, not from the mirror's copy."""
    with censor_mirrors([trees.spec("withhold-list")]) as urls:
        run = fetch(trees.root_json, urls, tmp_path / "state")
    assert run.code == 0, run.stderr
    folder = library_edition(tmp_path / "state", trees.new_eid).parent.parent
    listed = json.loads((folder / "mirrors.json").read_text())["signed_list"]
    edition_list = json.loads((Path(run.document["path"]) / "mirrors.json").read_text())
    assert listed == [m["url"] for m in edition_list["mirrors"]]
