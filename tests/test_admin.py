"""Admin commands (config check, mirrors list/add) and the rule that secrets never leak."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mirror.cli import main
from tests.conftest import Publisher, make_config
from tests.servers import MirrorServer, serve


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorServer]:
    with serve("webdav-wsgidav", tmp_path_factory.mktemp("dav")) as running:
        yield running


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorServer]:
    with serve("s3-moto", tmp_path_factory.mktemp("s3")) as running:
        yield running


def entry(name: str, server: MirrorServer, settings: str | None = None) -> str:
    block = "".join(f"      {line}\n" for line in (settings or server.settings_yaml).splitlines())
    return (
        f"  - name: {name}\n    type: {server.type_name}\n    public_url: {server.public_url}\n"
        f"    {server.type_name}:\n{block}"
    )


def secret_values(server: MirrorServer) -> list[str]:
    """The values behind every env: reference in the server's settings."""
    values = []
    for line in server.settings_yaml.splitlines():
        if "env:" in line:
            values.append(os.environ[line.split("env:", 1)[1].strip()])
    return values


def test_config_check_probes_every_mirror(
    new_publisher: Callable[..., Publisher],
    dav: MirrorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = new_publisher()
    wrong = dav.settings_yaml.replace("password: env:", "password: env:MIRROR_TEST_UNSET_")
    os.environ["MIRROR_TEST_UNSET_" + dav.settings_yaml.split("env:", 1)[1].strip()] = "nope"
    mirrors = entry("good", dav) + entry("denied", dav, wrong)
    config = make_config(publisher.home, mirrors=mirrors)
    code = main(["--config", str(config.file), "config", "check", "--json"])
    out, err = capsys.readouterr()
    assert code == 7
    assert "1 of 2 mirrors failed the probe: denied" in err
    document = json.loads(out[out.index("{") :])
    results = {m["mirror"]: m for m in document["mirrors"]}
    assert results["good"]["writable"] is True
    assert results["good"]["public"] is True
    assert results["denied"]["writable"] is False
    assert "auth" in results["denied"]["detail"]
    # The probe file was removed again.
    assert not any(p.name.startswith(".mirror-probe-") for p in Path(publisher.home).rglob("*"))


def test_mirrors_add_keeps_comments_and_validates(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    path = publisher.config.file
    path.write_text("# Our newsroom's mirrors — keep this comment\n" + path.read_text())
    before = path.read_text()

    add = ["--config", str(path), "mirrors", "add"]
    code = main([*add, "dav", "--type", "webdav", "--public-url", "https://d.example/pub/",
                 "--set", "url=https://d.example/dav/", "--set", "username=u",
                 "--set", "password=hunter2"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 3
    assert "mirrors[1].webdav.password" in err
    assert "hunter2" not in out + err
    assert path.read_text() == before  # nothing written

    code = main([*add, "dav", "--type", "webdav", "--public-url", "https://d.example/pub/",
                 "--set", "url=https://d.example/dav/", "--set", "username=u",
                 "--set", "password=env:DAV_PASSWORD", "--secret", "--tag", "eu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    text = path.read_text()
    assert text.startswith("# Our newsroom's mirrors — keep this comment\n")
    assert "password: env:DAV_PASSWORD" in text
    assert "announce: false" in text

    code = main([*add, "dav", "--type", "local", "--public-url", "file:///x/", "--set", "path=/x"])
    assert code == 3
    assert "exists already" in capsys.readouterr().err

    code = main(["--config", str(path), "mirrors", "list", "--json"])
    listed = json.loads(capsys.readouterr().out)["mirrors"]
    assert [m["mirror"] for m in listed] == ["a", "dav"]
    assert listed[1]["announce"] is False
    assert listed[1]["tags"] == ["eu"]
    assert listed[1]["last_status"] == "never pushed"


def test_secrets_appear_in_no_output_log_or_report(
    new_publisher: Callable[..., Publisher],
    dav: MirrorServer,
    s3: MirrorServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    publisher = new_publisher()
    wrong_dav = dav.settings_yaml.replace("password: env:", "password: env:MIRROR_TEST_WRONG_")
    os.environ["MIRROR_TEST_WRONG_" + dav.settings_yaml.split("env:", 1)[1].strip()] = (
        "wrong-secret-value-0x5eC12e7"
    )
    mirrors = entry("dav", dav) + entry("s3", s3) + entry("dav-wrong", dav, wrong_dav)
    config = make_config(publisher.home, mirrors=mirrors)
    report = tmp_path / "report.json"
    base = ["--config", str(config.file)]
    codes = [
        main([*base, "sync", "--json", str(report)]),
        main([*base, "push", "--dry-run"]),
        main([*base, "config", "check"]),
        main([*base, "mirrors", "list", "--json"]),
    ]
    assert codes[0] == 0  # quorum 1: the two good mirrors verified
    out, err = capfd.readouterr()
    secrets = [*secret_values(dav), *secret_values(s3), "wrong-secret-value-0x5eC12e7"]
    assert len(secrets) >= 3
    written = [report.read_text(), *(p.read_text() for p in config.output_dir.rglob("*.json"))]
    for secret in secrets:
        assert secret not in out
        assert secret not in err
        for text in written:
            assert secret not in text
    assert "dav-wrong" in out  # the failing mirror is reported, by name only


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """`mirror config check --json`: (exit code, the document, stderr)."""
    capsys.readouterr()
    code = main(["--config", str(config), "config", "check", "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_config_check_reads_the_probe_through_the_public_url_like_a_reader(
    new_publisher: Callable[..., Publisher],
    dav: MirrorServer,
    s3: MirrorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What sync meets: a private bucket and a wrong public path fail here, not after a push."""
    publisher = new_publisher()
    private = s3.settings_yaml.replace("prefix: mirror/", "prefix: private/")
    s3_private_url = s3.public_url.replace("/mirror/", "/private/")
    mirrors = (
        entry("dav", dav)
        + entry("s3", s3)
        + entry("private-bucket", s3, private).replace(s3.public_url, s3_private_url)
        + entry("wrong-path", dav).replace(dav.public_url, dav.public_url + "elsewhere/")
    )
    config = make_config(publisher.home, mirrors=mirrors)
    code, document, err = check(config.file, capsys)
    assert code == 7
    assert "2 of 4 mirrors failed the probe: private-bucket, wrong-path" in err
    results = {m["mirror"]: m for m in document["mirrors"]}
    assert results["dav"]["public"] is True
    assert results["s3"]["public"] is True
    bucket = results["private-bucket"]
    assert (bucket["writable"], bucket["public"]) == (True, False)
    assert f"readers cannot read {s3_private_url}.mirror-probe-" in bucket["detail"]
    assert "HTTP 403" in bucket["detail"]
    assert "s3:GetObject to everyone" in bucket["detail"]
    wrong = results["wrong-path"]
    assert (wrong["writable"], wrong["public"]) == (True, False)
    assert f"HTTP 404 for {dav.public_url}elsewhere/.mirror-probe-" in wrong["detail"]
    assert "public_url does not point at the folder this mirror writes to" in wrong["detail"]
    assert {c["what"]: c["ok"] for c in document["publisher"]} == {
        "passphrase": True,
        "keys": True,
        f"source {publisher.articles}": True,
    }


BROKEN = {
    "passphrase": (5, "environment variable MIRROR_TEST_NO_SUCH_VAR, which is not set"),
    "keys": (5, "no key store in"),
    "source": (6, "cannot open article folder"),
}


@pytest.mark.parametrize("what", sorted(BROKEN))
def test_config_check_checks_keys_passphrase_and_sources_with_their_exit_codes(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str], what: str
) -> None:
    code, words = BROKEN[what]
    publisher = new_publisher()
    text = publisher.config.file.read_text()
    if what == "passphrase":
        text = text.replace("file:passphrase", "env:MIRROR_TEST_NO_SUCH_VAR")
    elif what == "keys":
        text = text.replace(str(publisher.config.keys.dir), str(publisher.home / "no-keys"))
    else:
        text = text.replace("path: articles", "path: no-articles")
    publisher.config.file.write_text(text)
    exit_code, document, err = check(publisher.config.file, capsys)
    assert exit_code == code
    failed = [c for c in document["publisher"] if not c["ok"]]
    assert [c["what"].split(" ")[0] for c in failed] == [what]
    assert words in failed[0]["detail"]
    assert failed[0]["exit_code"] == code
    assert words in err


def test_mirrors_disable_enable_remove_keep_comments_and_change_what_sync_does(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    path = publisher.config.file
    second = publisher.home / "mirror-b"
    path.write_text(
        "# keep me\n"
        + path.read_text()
        + f"  - name: b  # the second one\n    type: local\n    public_url: file://{second}/\n"
        f"    local:\n      path: {second}\n"
    )
    base = ["--config", str(path), "mirrors"]
    assert main([*base, "disable", "b"]) == 0
    assert "enabled: false" in path.read_text()
    assert main(["--config", str(path), "sync"]) == 0
    assert not second.exists()  # a disabled mirror is not pushed
    assert main([*base, "enable", "b"]) == 0
    assert "enabled" not in path.read_text().split("name: b", 1)[1]
    assert main(["--config", str(path), "sync"]) == 0
    assert (second / "metadata" / "timestamp.json").is_file()
    assert main([*base, "remove", "b"]) == 0
    text = path.read_text()
    assert text.startswith("# keep me\n")
    assert "name: b" not in text
    assert (second / "metadata" / "timestamp.json").is_file()  # the mirror itself is left alone
    capsys.readouterr()
    assert main([*base, "remove", "b"]) == 3
    assert "there is no mirror called 'b'" in capsys.readouterr().err


def test_init_makes_a_newsroom_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "newsroom"
    monkeypatch.delenv("MIRROR_PASSPHRASE", raising=False)
    assert main(["init", str(folder), "--publisher", "Room"]) == 5  # no passphrase yet
    assert "MIRROR_PASSPHRASE" in capsys.readouterr().err
    assert not folder.exists() or not any(folder.iterdir())
    monkeypatch.setenv("MIRROR_PASSPHRASE", "a long test passphrase")
    assert main(["init", str(folder), "--publisher", 'Room "7"', "--language", "ru"]) == 0
    out = capsys.readouterr().out
    assert "move the root keys offline" in out
    config = (folder / "mirror.yaml").read_text()
    assert 'name: "Room \\"7\\""' in config
    assert "passphrase: env:MIRROR_PASSPHRASE" in config
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert main(["init", str(folder), "--publisher", "Other"]) == 2
    assert "init never overwrites" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert main(["--config", str(folder / "mirror.yaml"), "sync"]) == 0


def test_completion_script_knows_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    done = subprocess.run(
        ["bash", "-c", script + '\nCOMP_WORDS=(mirror mirrors ""); COMP_CWORD=2; _mirror; '
         'echo "${COMPREPLY[@]}"; COMP_WORDS=(mirror sync --dr); COMP_CWORD=2; _mirror; '
         'echo "${COMPREPLY[@]}"'],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    first, second = done.stdout.splitlines()
    assert set(first.split()) >= {"add", "list", "remove", "enable", "disable"}
    assert second.split() == ["--dry-run"]
