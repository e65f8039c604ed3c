"""A reader's everyday commands: pin a publisher once, then verify, fetch and read without --root.

Also what a reader types by hand or pastes: a relative --state, mirror
addresses in capitals or with a password, a mistyped address, and every
verdict and hint in the reader's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.build import BuildResult
from mirror.cli import main
from tests.censor import running_mirrors, snapshot_tree
from tests.conftest import Publisher
from tests.test_attacks import bit_flip_content, members, write_zip

CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def sentence_and_hint(err: str, *, label: str = "hint") -> tuple[str, str]:
    """The one ``mirror: ...`` sentence and the one hint line of a failure."""
    lines = [line for line in err.splitlines() if line.strip()]
    sentences = [line for line in lines if line.startswith("mirror: ")]
    hints = [line for line in lines if line.startswith(f"{label}: ")]
    assert len(sentences) == 1, err
    assert len(hints) == 1, err
    return sentences[0], hints[0]


def tree_url(publisher: Publisher) -> str:
    """A ``file://`` mirror of the publisher's publish tree as it stands."""
    return f"file://{publisher.config.publish_dir}/"


@pytest.fixture
def published(new_publisher: Callable[..., Publisher]) -> tuple[Publisher, BuildResult]:
    publisher = new_publisher()
    return publisher, publisher.build()


# --- pinning --------------------------------------------------------------------------------


def test_pinned_once_then_no_command_needs_root(
    published: tuple[Publisher, BuildResult],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher, built = published
    monkeypatch.chdir(tmp_path)  # --state relative to where the reader is
    code, out, err = run(capsys, "trust", "add", str(publisher.root_json), "--state", "st")
    assert code == 0, err
    assert "Pinned Test Newsroom" in out
    assert (tmp_path / "st" / "publishers").is_dir()
    code, out, _ = run(capsys, "trust", "add", str(publisher.root_json), "--state", "st", "--json")
    assert code == 0
    assert json.loads(out)["new"] is False  # the same root again: re-pinned, nothing lost

    code, out, err = run(capsys, "verify", str(built.zip_path), "--state", "st")
    assert code == 0, err
    assert out.startswith("verified: Test Newsroom")

    code, out, err = run(
        capsys, "fetch", "--state", "st", "--mirror", tree_url(publisher), "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["verdict"] == "verified"
    assert Path(document["path"]).is_relative_to(tmp_path / "st")  # absolute, under ./st

    monkeypatch.chdir(tmp_path.parent)  # the state folder given again from elsewhere
    code, out, err = run(capsys, "read", "--state", str(tmp_path / "st"))
    assert code == 0, err
    assert out.strip().endswith(f"/library/{built.eid}/index.html")
    code, out, err = run(capsys, "read", str(built.zip_path), "--state", str(tmp_path / "st"))
    assert code == 0, err  # an edition file: checked against the pin it names

    code, out, _ = run(capsys, "trust", "list", "--state", str(tmp_path / "st"), "--json")
    assert code == 0
    assert json.loads(out)["pinned"] == [
        {"publisher": "Test Newsroom", "publisher_id": publisher.publisher_id, "root_version": 1}
    ]


def test_without_a_pin_or_root_the_hint_says_how_to_pin(
    published: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, built = published
    state = str(tmp_path / "st")
    for argv in (
        ("verify", str(built.zip_path)),
        ("fetch", "--mirror", tree_url(publisher)),
        ("read", str(built.zip_path)),
    ):
        code, _, err = run(capsys, *argv, "--state", state)
        assert code == 2, (argv, err)
        sentence, hint = sentence_and_hint(err)
        assert "no publisher is pinned yet" in sentence
        assert "mirror trust add ROOT.json" in hint
    assert not (tmp_path / "st" / "publishers").exists()  # nothing written by a refusal


def test_an_edition_of_a_publisher_not_pinned_is_another_publishers(
    published: tuple[Publisher, BuildResult],
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _ = published
    other = new_publisher()
    edition = other.build().zip_path
    state = str(tmp_path / "st")
    assert run(capsys, "trust", "add", str(publisher.root_json), "--state", state)[0] == 0
    code, _, err = run(capsys, "verify", str(edition), "--state", state)
    assert code == 15, err
    sentence, hint = sentence_and_hint(err)
    # Both publishers are called Test Newsroom: the ids tell them apart.
    assert f"Test Newsroom (id {other.publisher_id}), whom you have not pinned" in sentence
    assert "mirror trust add" in hint
    # Pinned too, it verifies; and with two pins, fetch asks which.
    assert run(capsys, "trust", "add", str(other.root_json), "--state", state)[0] == 0
    assert run(capsys, "verify", str(edition), "--state", state)[0] == 0
    code, _, err = run(capsys, "fetch", "--state", state, "--mirror", tree_url(publisher))
    assert code == 2
    assert "--publisher" in sentence_and_hint(err)[1]
    code, _, err = run(
        capsys,
        "fetch",
        "--state",
        state,
        "--publisher",
        publisher.publisher_id,
        "--mirror",
        tree_url(publisher),
    )
    assert code == 0, err


def test_an_older_root_does_not_replace_a_newer_pin(
    published: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, _ = published
    old = tmp_path / "root-v1.json"
    old.write_bytes(publisher.root_json.read_bytes())
    assert main(["--config", str(publisher.config.file), "keys", "rotate", "timestamp"]) == 0
    state = str(tmp_path / "st")
    assert run(capsys, "trust", "add", str(publisher.root_json), "--state", state)[0] == 0
    code, _, err = run(capsys, "trust", "add", str(old), "--state", state)
    assert code == 2
    assert "older version 1" in sentence_and_hint(err)[0]
    code, out, _ = run(capsys, "trust", "list", "--state", state)
    assert "root version 2" in out


# --- the reader's language ------------------------------------------------------------------


def test_verdicts_and_hints_in_russian(
    published: tuple[Publisher, BuildResult],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher, built = published
    state = str(tmp_path / "st")
    forged = write_zip(tmp_path / "forged.zip", bit_flip_content(members(built.zip_path)))
    root = ("--root", str(publisher.root_json), "--state", state)

    code, _, err = run(capsys, "verify", str(forged), *root, "--lang", "ru")
    assert code == 10
    sentence, hint = sentence_and_hint(err, label="подсказка")
    assert any(c in CYRILLIC for c in sentence.lower())
    assert any(c in CYRILLIC for c in hint.lower())

    monkeypatch.setenv("LANG", "ru_RU.UTF-8")  # the locale decides without --lang
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    code, out, _ = run(capsys, "verify", str(built.zip_path), *root)
    assert code == 0
    assert any(c in CYRILLIC for c in out.lower())
    code, _, err = run(capsys, "fetch", "--state", str(tmp_path / "none"), "--mirror", "x")
    assert code == 2
    sentence_and_hint(err, label="подсказка")
    code, _, err = run(capsys, "verify", str(forged), *root, "--lang", "en")
    assert code == 10
    sentence_and_hint(err)  # --lang wins over the locale


# --- mirror addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("example.org/news", "it has no scheme"),
        ("ftp://example.org/news/", "its scheme is 'ftp'"),
        ("https:///news/", "it names no host"),
        ("http://127.0.0.1:port/", "not a mirror address"),
    ],
)
def test_a_mistyped_mirror_address_is_named(
    published: tuple[Publisher, BuildResult],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    address: str,
    words: str,
) -> None:
    publisher, _ = published
    argv = ("fetch", "--root", str(publisher.root_json), "--state", str(tmp_path / "st"))
    code, _, err = run(capsys, *argv, "--mirror", address)
    assert code == 2, err
    sentence, hint = sentence_and_hint(err)
    assert words in sentence
    assert "https://host/path/" in hint


def test_addresses_in_capitals_and_with_a_password(
    published: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, _ = published
    tree = snapshot_tree(publisher.config.publish_dir, tmp_path / "tree")
    state = tmp_path / "st"
    argv = ("fetch", "--root", str(publisher.root_json), "--state", str(state), "--json")
    secret = "s3cret-Pa55word"  # noqa: S105 - the password a reader put in an address
    with running_mirrors([("honest", tree)]) as (mirror,):
        upper = mirror.url.replace("http://", "HTTP://")
        code, out, err = run(capsys, *argv, "--mirror", upper, "--only")
        assert code == 0, err
        assert json.loads(out)["mirror"] == mirror.url  # one form of each address

        with_password = mirror.url.replace("://", f"://reader:{secret}@")
        code, out, err = run(capsys, *argv, "--mirror", with_password, "--only")
        assert code == 0, err
        assert json.loads(out)["mirrors"][0]["url"] == mirror.url.replace("://", "://***@")
        assert secret not in out + err
    # A mirror that fails with a password in its address: not in the verdict either.
    code, out, err = run(
        capsys,
        *argv,
        "--mirror",
        f"http://reader:{secret}@127.0.0.1:9/pub/",
        "--only",
        "--connect-timeout",
        "1",
    )
    assert code == 7
    assert secret not in out + err
    stored = "".join(p.read_text(errors="replace") for p in state.rglob("*.json"))
    assert secret not in stored


def test_only_asks_only_the_addresses_given(
    published: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, _ = published
    state = str(tmp_path / "st")
    argv = ("fetch", "--root", str(publisher.root_json), "--state", state, "--json")
    tree = tree_url(publisher)
    assert run(capsys, *argv, "--mirror", tree)[0] == 0  # learns the signed list (mirror-a)
    code, out, _ = run(capsys, *argv, "--mirror", tree)
    assert code == 0
    listed = {row["url"] for row in json.loads(out)["mirrors"]}
    assert listed == {tree, f"file://{publisher.home / 'mirror-a'}/"}
    code, out, _ = run(capsys, *argv, "--mirror", tree, "--only")
    assert code == 0
    assert [row["url"] for row in json.loads(out)["mirrors"]] == [tree]
    code, _, err = run(capsys, *argv, "--only")
    assert code == 2
    assert "--only" in sentence_and_hint(err)[0]


# --- a mirror of another newsroom -----------------------------------------------------------


def test_a_mirror_of_another_publisher_is_not_called_forged(
    published: tuple[Publisher, BuildResult],
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _ = published
    other = new_publisher()
    other.build()
    argv = ("fetch", "--root", str(publisher.root_json), "--state", str(tmp_path / "st"))
    code, out, err = run(capsys, *argv, "--mirror", tree_url(other), "--json")
    assert code == 15, err
    document = json.loads(out)
    assert document["verdict"] == "other-publisher"
    (row,) = document["mirrors"]
    assert row["verdict"] == "other-publisher"
    assert other.publisher_id in row["detail"]
    code, out, err = run(capsys, *argv, "--mirror", tree_url(other))
    assert code == 15
    assert "another publisher's editions" in out
    sentence, hint = sentence_and_hint(err)
    assert "another publisher" in sentence
    assert "root.json" in hint
    # Beside an honest mirror, it is only one mirror's verdict.
    code, out, err = run(
        capsys, *argv, "--mirror", tree_url(other), "--mirror", tree_url(publisher), "--json"
    )
    assert code == 0, err
    verdicts = {row["url"]: row["verdict"] for row in json.loads(out)["mirrors"]}
    assert verdicts[tree_url(other)] == "other-publisher"
    assert verdicts[tree_url(publisher)] == "ok"
