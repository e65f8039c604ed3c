"""The reader's own state folder: damage there is the reader's to fix, and it stays private.

Through the real CLI (`mirror verify`, `mirror fetch` from a ``file://`` mirror
of a built publish tree, `mirror trust add`): every unreadable, cut short,
non-JSON or inconsistent file under ``<state>/publishers/<id>/`` is exit 4
with one sentence naming the file and one hint to move it aside, never
"tampered", "FORGED", "unreachable" or an internal error, and a write that
fails after verification says the edition verified. The folders of the
store are 0700 and its files 0600.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.build import BuildResult
from mirror.cli import main
from tests.conftest import Publisher
from tests.test_reader_pins import run, sentence_and_hint, tree_url

Damage = Callable[[Path, Publisher], Path]
"""Damages one publisher folder of a healthy state; returns the path the sentence must name."""


def _write(name: str, content: bytes) -> Damage:
    def damage(folder: Path, _: Publisher) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes(content)
        return path

    return damage


def _folder_instead(name: str) -> Damage:
    def damage(folder: Path, _: Publisher) -> Path:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        (path / "inside").mkdir(parents=True)
        return path

    return damage


def _symlink_loop(name: str) -> Damage:
    """A file that cannot be opened at all, even by root (ELOOP)."""

    def damage(folder: Path, _: Publisher) -> Path:
        path = folder / name
        path.unlink(missing_ok=True)
        path.symlink_to(path.name)
        return path

    return damage


def _file_instead(name: str) -> Damage:
    def damage(folder: Path, _: Publisher) -> Path:
        path = folder / name
        shutil.rmtree(path, ignore_errors=True)
        path.write_text("not a folder\n")
        return path

    return damage


def _stored_root(version: int, source: Callable[[Publisher], bytes]) -> Damage:
    def damage(folder: Path, publisher: Publisher) -> Path:
        path = folder / "roots" / f"{version}.root.json"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(source(publisher))
        return path

    return damage


def _root_1(publisher: Publisher) -> bytes:
    return (publisher.config.keys.dir / "roots" / "1.root.json").read_bytes()


DAMAGES: dict[str, tuple[Damage, str]] = {
    "editions.json cut short": (_write("editions.json", b'{"version": 1, "edi'), "not valid JSON"),
    "editions.json not JSON": (_write("editions.json", b"\xff\xfe garbage"), "not valid JSON"),
    "editions.json empty": (_write("editions.json", b""), "not valid JSON"),
    "editions.json a list": (_write("editions.json", b"[]"), "is not a JSON object"),
    "editions.json version true": (
        _write("editions.json", b'{"version": true, "edition": "2026-01-01-v1"}'),
        "has no edition version",
    ),
    "editions.json without an edition id": (
        _write("editions.json", b'{"version": 3}'),
        "has no edition id",
    ),
    "editions.json a folder": (_folder_instead("editions.json"), "cannot be read"),
    "editions.json unreadable": (_symlink_loop("editions.json"), "cannot be read"),
    "a stored root not JSON": (_stored_root(2, lambda _: b"nope"), "not valid JSON"),
    "a stored root of another kind": (
        _stored_root(2, lambda _: b'{"signed": {"_type": "timestamp"}, "signatures": []}'),
        "not valid TUF metadata",
    ),
    "a stored root under another version's name": (_stored_root(2, _root_1), "says it is"),
    "the stored roots a file": (_file_instead("roots"), "is not a folder"),
    "the pinned root cut short": (_write("pinned-root.json", b'{"signed": {'), "not valid JSON"),
    "the pinned root a folder": (_folder_instead("pinned-root.json"), "cannot be read"),
}
"""Damages `mirror verify` and `mirror fetch` both read."""

FETCH_DAMAGES: dict[str, tuple[Damage, str]] = {
    "trusted timestamp not JSON": (_write("metadata/timestamp.json", b"{"), "not valid JSON"),
    "trusted root of another kind": (
        _write("metadata/root.json", b'{"signed": {"_type": "targets"}, "signatures": []}'),
        "not valid TUF metadata",
    ),
    "trusted metadata a file": (_file_instead("metadata"), "is not a folder"),
}
"""Damages of what only `mirror fetch` trusts (python-tuf's metadata)."""


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Publisher, BuildResult, Path]:
    """A publisher, its edition, and a reader state that pinned, fetched and verified it."""
    from tests.conftest import make_config, make_keys, write_articles

    home = tmp_path_factory.mktemp("state-publisher")
    write_articles(home / "articles", 2)
    config = make_config(home)
    make_keys(config)
    publisher = Publisher(home, config)
    result = publisher.build()
    state = tmp_path_factory.mktemp("healthy") / "state"
    assert main(["trust", "add", str(publisher.root_json), "--state", str(state)]) == 0
    assert main(["fetch", "--state", str(state), "--mirror", tree_url(publisher)]) == 0
    assert main(["verify", str(result.zip_path), "--state", str(state)]) == 0
    return publisher, result, state


def _copy(healthy: tuple[Publisher, BuildResult, Path], to: Path) -> tuple[Path, Path]:
    publisher, _, state = healthy
    shutil.copytree(state, to, symlinks=True)
    return to, to / "publishers" / publisher.publisher_id


MOVE_ASIDE = "hint: This is your own copy, not a mirror's: move "


def assert_local(
    code: int, out: str, err: str, path: Path, words: str, *, hint_starts: str = MOVE_ASIDE
) -> None:
    """Exit 4, one sentence naming ``path`` and saying ``words``, and the move-aside hint."""
    assert code == 4, err
    sentence, hint = sentence_and_hint(err)
    assert str(path) in sentence, sentence
    assert words in sentence, sentence
    assert hint.startswith(hint_starts), hint
    for blame in ("tampered", "FORGED", "internal error", "unreachable", "Traceback"):
        assert blame not in out + err, (blame, err)


@pytest.mark.parametrize("damage", sorted({**DAMAGES, **FETCH_DAMAGES}))
def test_a_damaged_state_file_is_the_readers_own_problem_for_verify_and_fetch(
    damage: str,
    healthy: tuple[Publisher, BuildResult, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, result, _ = healthy
    make, words = {**DAMAGES, **FETCH_DAMAGES}[damage]
    state, folder = _copy(healthy, tmp_path / "state")
    path = make(folder, publisher)
    mirror = tree_url(publisher)
    root = str(publisher.root_json)
    commands: list[tuple[str, ...]] = [("fetch", "--state", str(state), "--mirror", mirror)]
    if damage not in FETCH_DAMAGES:
        commands.append(("verify", str(result.zip_path), "--state", str(state)))
    if damage in DAMAGES and not damage.startswith("the pinned root"):  # --root skips the pin
        commands += [
            ("verify", str(result.zip_path), "--root", root, "--state", str(state)),
            ("fetch", "--root", root, "--state", str(state), "--mirror", mirror, "--only"),
        ]
    for argv in commands:
        code, out, err = run(capsys, *argv)
        assert_local(code, out, err, path, words)


def test_stored_roots_that_do_not_follow_from_the_pin_are_local_damage(
    healthy: tuple[Publisher, BuildResult, Path],
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A version missing between two, or a root of another chain: not "tampered"."""
    publisher, result, _ = healthy
    other = new_publisher()
    assert main(["--config", str(other.config.file), "keys", "rotate", "targets"]) == 0
    for label, version, source in (
        ("a gap", 3, _root_1),
        ("another chain", 2, lambda _: other.root_json.read_bytes()),
    ):
        state, folder = _copy(healthy, tmp_path / label)
        roots = folder / "roots"
        roots.mkdir(exist_ok=True)
        data = source(publisher)
        if label == "a gap":  # a genuine-looking root 3 file with no root 2 before it
            data = data.replace(b'"version":1', b'"version":3')
        (roots / f"{version}.root.json").write_bytes(data)
        for argv in (
            ("verify", str(result.zip_path), "--state", str(state)),
            ("fetch", "--state", str(state), "--mirror", tree_url(publisher)),
        ):
            code, out, err = run(capsys, *argv)
            words = "do not follow from your pinned root"
            assert_local(code, out, err, roots, words, hint_starts=f"{MOVE_ASIDE}the roots folder")


def test_moving_the_damaged_file_aside_as_the_hint_says_mends_it(
    healthy: tuple[Publisher, BuildResult, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, result, _ = healthy
    state, folder = _copy(healthy, tmp_path / "state")
    (folder / "editions.json").write_bytes(b"{")
    assert run(capsys, "fetch", "--state", str(state), "--mirror", tree_url(publisher))[0] == 4
    (folder / "editions.json").rename(folder / "editions.json.broken")
    assert run(capsys, "fetch", "--state", str(state), "--mirror", tree_url(publisher))[0] == 0
    assert run(capsys, "verify", str(result.zip_path), "--state", str(state))[0] == 0
    assert (folder / "editions.json").is_file()


def test_a_store_that_cannot_take_the_verified_edition_is_a_local_verdict(
    healthy: tuple[Publisher, BuildResult, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mirror verified; the reader's cache or library cannot be written: exit 4."""
    publisher, _, _ = healthy
    for name in ("cache", "library"):
        state, folder = _copy(healthy, tmp_path / name)
        shutil.rmtree(folder / "cache")
        shutil.rmtree(folder / "library")
        (folder / name).write_text("a file where a folder belongs\n")
        code, out, err = run(
            capsys, "fetch", "--state", str(state), "--mirror", tree_url(publisher)
        )
        assert_local(code, out, err, folder / name, "cannot", hint_starts="hint: ")


def _limit_file_size() -> None:
    """In the child: files may not grow past 16 bytes (a full disk, as the kernel says it)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))


def test_a_full_disk_after_verification_says_the_edition_verified(
    healthy: tuple[Publisher, BuildResult, Path], tmp_path: Path
) -> None:
    """`mirror verify` in a process whose files cannot grow: writing editions.json fails."""
    publisher, result, _ = healthy
    state = tmp_path / "state"
    argv = [
        "verify",
        str(result.zip_path),
        "--root",
        str(publisher.root_json),
        "--state",
        str(state),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "mirror", *argv],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_limit_file_size,  # no threads in the child before exec
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
    )
    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("mirror: the edition verified, but your reader state could not be ")
    assert "editions.json" in lines[0]
    assert "file too large" in lines[0].lower()
    assert lines[1].startswith("hint: The file is larger than that file system allows")
    assert not (state / "publishers" / publisher.publisher_id / "editions.json").exists()


def test_the_readers_state_is_private(
    healthy: tuple[Publisher, BuildResult, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What someone reads is sensitive: every folder 0700, every file 0600, under any umask."""
    publisher, result, state = healthy
    old = os.umask(0o002)
    try:
        fresh = tmp_path / "fresh"
        assert run(capsys, "trust", "add", str(publisher.root_json), "--state", str(fresh))[0] == 0
        assert run(capsys, "verify", str(result.zip_path), "--state", str(fresh))[0] == 0
        assert run(capsys, "fetch", "--state", str(fresh), "--mirror", tree_url(publisher))[0] == 0
    finally:
        os.umask(old)
    for root in (state, fresh):
        found = [root, *root.rglob("*")]
        assert len(found) > 10
        for path in found:
            mode = path.lstat().st_mode & 0o777
            assert mode == (0o700 if path.is_dir() else 0o600), (oct(mode), path)
    # An older state folder with open permissions is tightened when it is next written.
    loose, folder = _copy(healthy, tmp_path / "loose")
    for path in [loose / "publishers", *(loose / "publishers").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert run(capsys, "fetch", "--state", str(loose), "--mirror", tree_url(publisher))[0] == 0
    for path in (loose / "publishers", folder, folder / "editions.json", folder / "metadata"):
        assert path.stat().st_mode & 0o077 == 0, path
