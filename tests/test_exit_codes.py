"""docs/exit-codes.md and the program agree: every documented code, run through the real CLI.

The table in the docs, the error tree's `EXIT_CODES` (which the help text
prints) and what each case below makes `mirror` exit with must be one truth.
Every failing case must also end in one sentence and one hint on stderr,
never a traceback.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mirror.build import BuildResult
from mirror.cli import main
from mirror.errors import EXIT_CODES
from tests import hostile_zip
from tests.conftest import Publisher, make_config, make_keys
from tests.test_attacks import bit_flip_content, members, write_zip

DOCS = Path(__file__).resolve().parent.parent / "docs" / "exit-codes.md"


def documented_codes() -> set[int]:
    return {int(code) for code in re.findall(r"^\| +(\d+) \|", DOCS.read_text(), re.M)}


def test_the_docs_list_exactly_the_exit_codes_of_the_error_tree() -> None:
    assert documented_codes() == {code for code, _ in EXIT_CODES}


def test_the_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for code, word in EXIT_CODES:
        assert f"{code} {word}" in text


Case = Callable[[Publisher, BuildResult, Path], list[str]]


def _verify(path: Path, publisher: Publisher, tmp: Path) -> list[str]:
    return ["verify", str(path), "--root", str(publisher.root_json), "--state", str(tmp / "st")]


def _config_with(publisher: Publisher, tmp: Path, mirrors: str, extra: str = "") -> str:
    home = tmp / "home"
    shutil.copytree(publisher.home, home, ignore=shutil.ignore_patterns("out", "mirror-*"))
    text = make_config(home, mirrors=mirrors, extra=extra).file
    text.write_text(text.read_text().replace(str(home / "keys"), str(publisher.config.keys.dir)))
    return str(text)


def case_ok(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    return _verify(built.zip_path, p, tmp)


def case_usage(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    return ["verify", str(built.zip_path), "--no-such-option"]


def case_config(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    (tmp / "bad.yaml").write_text("publisher: [unclosed\n")
    return ["--config", str(tmp / "bad.yaml"), "build"]


def case_storage(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    return _verify(tmp / "no-such-edition.zip", p, tmp)


def case_keys(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    config = _config_with(p, tmp, "  []\n")
    Path(config).write_text(Path(config).read_text().replace(str(p.config.keys.dir), "nokeys"))
    return ["--config", config, "build"]


def case_sources(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    config = _config_with(p, tmp, "  []\n")
    Path(config).write_text(Path(config).read_text().replace("path: articles", "path: gone"))
    return ["--config", config, "build"]


def case_network(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    return [
        "fetch", "--root", str(p.root_json), "--state", str(tmp / "st"),
        "--mirror", "http://127.0.0.1:9/", "--connect-timeout", "1", "--timeout", "2",
    ]  # fmt: skip


def case_quorum(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    (tmp / "a-file").write_text("not a folder")
    mirrors = (
        f"  - name: good\n    type: local\n    public_url: file://{tmp / 'good'}/\n"
        f"    local:\n      path: {tmp / 'good'}\n"
        f"  - name: broken\n    type: local\n    public_url: file://{tmp / 'a-file'}/x/\n"
        f"    local:\n      path: {tmp / 'a-file' / 'x'}\n"
    )
    return ["--config", _config_with(p, tmp, mirrors, "push:\n  quorum: 2\n"), "sync"]


def case_history(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    mirror = p.config.mirrors[0].settings.path  # the `built` publisher's own mirror
    assert main(["--config", str(p.config.file), "push"]) == 0
    other = tmp / "other"
    shutil.copytree(p.home, other, ignore=shutil.ignore_patterns("out", "keys", "mirror-*"))
    config = make_config(
        other,
        mirrors=f"  - name: a\n    type: local\n    public_url: file://{mirror}/\n"
        f"    local:\n      path: {mirror}\n",
    )
    assert main(["--config", str(config.file), "keys", "init"]) == 0  # another publisher
    return ["--config", str(config.file), "sync"]


def case_tampered(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    path = write_zip(tmp / "flipped.zip", bit_flip_content(members(built.zip_path)))
    return _verify(path, p, tmp)


def case_expired(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    return _verify(_build_at(p, tmp, datetime.now(UTC) - timedelta(days=40)), p, tmp)


def case_not_yet_valid(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    return _verify(_build_at(p, tmp, datetime.now(UTC) + timedelta(days=2)), p, tmp)


def case_rollback(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    newer = _build_at(p, tmp, built.created + timedelta(minutes=5))
    assert main(_verify(newer, p, tmp)) == 0
    return _verify(built.zip_path, p, tmp)


def case_unsafe(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    damaged = hostile_zip.HOSTILE_VARIANTS["dotdot_name"](built.zip_path.read_bytes())
    (tmp / "hostile.zip").write_bytes(damaged)
    return _verify(tmp / "hostile.zip", p, tmp)


def case_other_publisher(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    home = tmp / "other-newsroom"
    home.mkdir()
    other = Publisher(home, make_config(home))
    make_keys(other.config)
    return _verify(built.zip_path, other, tmp)


def case_incomplete(p: Publisher, built: BuildResult, tmp: Path) -> list[str]:
    data = built.zip_path.read_bytes()
    (tmp / "cut-short.zip").write_bytes(data[: len(data) // 2])
    return _verify(tmp / "cut-short.zip", p, tmp)


def _build_at(publisher: Publisher, tmp: Path, when: datetime) -> Path:
    """An edition of the same publisher, built at ``when`` in a copy of its output folder."""
    home = tmp / f"at-{when:%Y%m%d%H%M%S}"
    shutil.copytree(publisher.home, home)
    config = make_config(home, keys_dir=publisher.config.keys.dir)
    return Publisher(home, config).build(when=when).zip_path


CASES: dict[int, Case] = {
    0: case_ok,
    2: case_usage,
    3: case_config,
    4: case_storage,
    5: case_keys,
    6: case_sources,
    7: case_network,
    8: case_quorum,
    9: case_history,
    10: case_tampered,
    11: case_expired,
    12: case_not_yet_valid,
    13: case_rollback,
    14: case_unsafe,
    15: case_other_publisher,
    16: case_incomplete,
}


def test_every_documented_code_has_a_case_here() -> None:
    assert documented_codes() - set(CASES) == {1, 130}  # the two below


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_documented_exit_code(
    code: int,
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = new_publisher()
    built = publisher.build()
    argv = CASES[code](publisher, built, tmp_path)
    capsys.readouterr()
    assert main(argv) == code, capsys.readouterr().err
    _, err = capsys.readouterr()
    if code:
        lines = err.strip().splitlines()
        assert lines[-2].startswith("mirror: "), err
        assert lines[-1].startswith("hint: "), err
        assert "Traceback" not in err


def test_internal_error_and_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mirror.reader import pins

    def bug(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    def interrupt(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    root = tmp_path / "root.json"
    root.write_text("{}")
    for replacement, code, words in ((bug, 1, "internal error"), (interrupt, 130, "interrupted")):
        monkeypatch.setattr(pins, "root_for_edition", replacement)
        assert main(["verify", "x.zip", "--root", str(root)]) == code
        err = capsys.readouterr().err
        assert err.startswith(f"mirror: {words}")
        assert "Traceback" not in err


READER_VERDICTS = (7, 10, 11, 12, 13, 14, 15, 16)
"""The codes a reader meets (fetch and verify): each must read in Russian too."""
CYRILLIC = re.compile("[\u0400-\u04ff]")


@pytest.mark.parametrize("code", READER_VERDICTS)
def test_each_reader_verdict_in_russian(
    code: int,
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = new_publisher()
    built = publisher.build()
    argv = [*CASES[code](publisher, built, tmp_path), "--lang", "ru"]
    capsys.readouterr()
    assert main(argv) == code  # the same verdict and exit code in every language
    lines = capsys.readouterr().err.strip().splitlines()
    sentence, hint = lines[-2], lines[-1]
    assert sentence.startswith("mirror: ")
    assert CYRILLIC.search(sentence), sentence
    assert hint.startswith("подсказка: ")
    assert CYRILLIC.search(hint.removeprefix("подсказка: ")), hint
    assert "Traceback" not in "\n".join(lines)
