"""The command line as an operator meets it: help, bad config, bad keys, broken articles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.cli import main
from tests.conftest import Publisher


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence_and_hint(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("mirror: ")
    assert lines[1].startswith("hint: ")
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["keys"],
        ["keys", "init"],
        ["keys", "rotate"],
        ["build"],
        ["verify"],
        ["extract"],
    ],
)
def test_every_command_has_help(argv: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mirror", *argv, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0
    assert "usage: mirror" in completed.stdout


def test_bad_arguments_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify")
    assert code == 2
    assert "FILE" in one_sentence_and_hint(err)
    code, _, err = run(capsys, "verify", "no-such-edition.zip")
    assert code == 4
    assert "no-such-edition.zip (no such file or directory)" in one_sentence_and_hint(err)
    code, _, err = run(capsys, "keys", "rotate", "nobody")
    assert code == 2
    one_sentence_and_hint(err)
    code, _, err = run(capsys)
    assert code == 2


CONFIG_MISTAKES = {
    "unknown key with a suggestion": (
        "edition:\n  expire_days: 3\n",
        "mirror.yaml:11: edition.expire_days: is not a known setting",
        "Did you mean 'expires_days'?",
    ),
    "wrong type": (
        "edition:\n  expires_days: soon\n",
        "mirror.yaml:11: edition.expires_days: must be a whole number",
        "",
    ),
    "bad choice": (
        "on_article_error: ignore\n",
        "mirror.yaml:10: on_article_error: 'ignore' is not one of skip, fail",
        "",
    ),
    "key given twice": (
        "output: elsewhere\n",
        "mirror.yaml:10: output: is given twice",
        "",
    ),
    "yaml syntax": (
        "edition: [unclosed\n",
        "mirror.yaml:11: is not valid YAML",
        "",
    ),
}


@pytest.mark.parametrize("mistake", sorted(CONFIG_MISTAKES))
def test_config_mistakes_name_file_line_and_key(
    mistake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra, message, hint = CONFIG_MISTAKES[mistake]
    config = tmp_path / "mirror.yaml"
    config.write_text(
        "publisher:\n  name: N\nsources:\n  - type: directory\n    path: a\n"
        "keys:\n  dir: k\n  passphrase: env:NOPE\noutput: out\n" + extra,
        encoding="utf-8",
    )
    code, _, err = run(capsys, "--config", str(config), "build")
    assert code == 3
    sentence = one_sentence_and_hint(err)
    assert message in sentence, sentence
    assert hint in err


def test_inline_passphrase_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mirror.yaml"
    config.write_text(
        "publisher:\n  name: N\nsources: []\nkeys:\n  dir: k\n  passphrase: hunter2\noutput: o\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "--config", str(config), "build")
    assert code == 3
    assert "keys.passphrase" in one_sentence_and_hint(err)
    assert "hunter2" not in out + err


def test_missing_passphrase_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mirror.yaml"
    config.write_text(
        "publisher:\n  name: N\nsources: []\nkeys:\n  dir: k\n  passphrase: env:MIRROR_TEST_UNSET\n"
        "output: o\n",
        encoding="utf-8",
    )
    code, _, err = run(capsys, "--config", str(config), "keys", "init")
    assert code == 5  # docs/exit-codes.md: keys, passphrase missing or wrong
    assert "MIRROR_TEST_UNSET, which is not set" in one_sentence_and_hint(err)
    os.environ["MIRROR_TEST_UNSET"] = ""
    try:
        code, _, err = run(capsys, "--config", str(config), "keys", "init")
    finally:
        del os.environ["MIRROR_TEST_UNSET"]
    assert code == 5
    assert "MIRROR_TEST_UNSET, which is set but empty" in one_sentence_and_hint(err)


def test_wrong_passphrase(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    (publisher.home / "passphrase").write_text("not the passphrase\n")
    code, out, err = run(capsys, "--config", str(publisher.config.file), "build")
    assert code == 5
    assert "passphrase is wrong" in one_sentence_and_hint(err)
    assert "not the passphrase" not in out + err
    assert not publisher.config.editions_dir.exists()


def test_keys_init_never_overwrites(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    before = publisher.root_json.read_bytes()
    code, _, err = run(capsys, "--config", str(publisher.config.file), "keys", "init")
    assert code == 5
    assert "already holds a key store" in one_sentence_and_hint(err)
    assert publisher.root_json.read_bytes() == before


def test_broken_article_is_skipped_and_reported(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    (publisher.articles / "broken.md").write_text("---\ntitle: No date\n---\nBody\n")
    code, out, err = run(capsys, "--config", str(publisher.config.file), "build")
    assert code == 0, err
    assert "broken.md" in err
    assert "3 articles, 1 skipped" in out


def test_broken_article_fails_the_run_when_configured(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    (publisher.articles / "broken.md").write_text("---\ntitle: No date\n---\nBody\n")
    config = publisher.config.file
    config.write_text(config.read_text() + "on_article_error: fail\n")
    code, _, err = run(capsys, "--config", str(config), "build")
    assert code == 6
    assert "broken.md" in one_sentence_and_hint(err)
    # Nothing half-written: no edition archive, no (partial) temp file, no metadata.
    assert not publisher.config.editions_dir.exists() or not any(
        publisher.config.editions_dir.iterdir()
    )
    assert not (publisher.config.publish_dir / "metadata").exists()


def test_build_json_and_keys_commands(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    code, out, _ = run(capsys, "--config", str(publisher.config.file), "build", "--json")
    assert code == 0
    assert '"version": 1' in out
    code, out, _ = run(
        capsys, "--config", str(publisher.config.file), "keys", "rotate", "timestamp"
    )
    assert code == 0
    assert "root is now version 2" in out
    code, _, err = run(
        capsys, "--config", str(publisher.config.file), "build", "--edition-version", "1"
    )
    assert code == 2
    assert "not newer" in one_sentence_and_hint(err)


def test_global_options_work_after_the_command_too(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    config = str(publisher.config.file)
    code, out, _ = run(capsys, "sync", "--config", config, "--log-format", "json")
    assert code == 0
    code, out, _ = run(capsys, "mirrors", "list", "--json", "--config", config)
    assert code == 0
    assert json.loads(out)["mirrors"][0]["last_status"] == "verified"


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["--bogus"], "mirror: unrecognized arguments: --bogus"),
        (["sync", "--shard"], "mirror: sync: argument --shard: expected one argument"),
        (["keys", "rotate", "nobody"], "mirror: keys rotate: argument role: invalid choice"),
    ],
)
def test_usage_errors_name_the_command_and_the_option_once(
    capsys: pytest.CaptureFixture[str], argv: list[str], sentence: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    line = one_sentence_and_hint(err)
    assert line.startswith(sentence)
    assert line.count("mirror") == 1


def test_config_is_found_in_the_user_config_folder(
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = new_publisher()
    user = tmp_path / "xdg" / "mirror"
    user.mkdir(parents=True)
    (user / "mirror.yaml").write_text(
        publisher.config.file.read_text()
        .replace("path: articles", f"path: {publisher.articles}")
        .replace("file:passphrase", f"file:{publisher.home / 'passphrase'}")
        .replace("output: out", f"output: {publisher.home / 'out'}")
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MIRROR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no mirror.yaml here
    code, out, err = run(capsys, "config", "check", "--json")
    assert code == 0, err
    assert json.loads(out)["config"] == str(user / "mirror.yaml")


def test_json_dash_puts_the_report_alone_on_stdout_and_each_failure_is_said_once(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    config = publisher.config.file
    config.write_text(
        config.read_text()
        + "  - name: broken\n    type: local\n    public_url: file:///proc/none/\n"
        "    local:\n      path: /proc/none\n"
    )
    code, out, err = run(capsys, "--config", str(config), "sync", "--json", "-")
    assert code == 0  # quorum 1: mirror a verified
    report = json.loads(out)
    assert {m["mirror"]: m["verified"] for m in report["mirrors"]} == {"a": True, "broken": None}
    code, out, err = run(capsys, "--config", str(config), "push")
    assert code == 0
    failures = [line for line in (out + err).splitlines() if "FAILED" in line or "warning" in line]
    assert len(failures) == 1, out + err  # the summary line, not a log line as well
    assert failures[0].startswith("broken: FAILED (unreachable)")
