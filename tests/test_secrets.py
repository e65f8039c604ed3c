"""Secret references: one parser, whose errors name where and what kind, never the value.

A value that is not a reference may be the password itself, and error messages
end up in terminals, logs and CI output: every refusal below is checked to
name file, line and key, to say what kind of value is there, and to quote
nothing of it — at the parser, and on the command line an operator sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.cli import main
from mirror.errors import ConfigError
from mirror.secrets import secret_reference
from mirror.yamlnodes import load_yaml

# (YAML for the value, what the message calls it, text that must never appear)
BAD_VALUES = {
    "float": ("12345.5", "it is a number", "12345"),
    "int": ("31337", "it is a number", "31337"),
    "list": ("[hunter2, other]", "it is a list", "hunter2"),
    "mapping": ("{secret: hunter2}", "it is a mapping", "hunter2"),
    "inline": ("hunter2", "it is inline text", "hunter2"),
    "quoted-number": ("'12345.5'", "it is inline text", "12345"),
    "empty-reference": ("'env:'", "it is an empty reference (nothing after env:)", None),
    "empty-file-reference": ("'file:  '", "an empty reference (nothing after file:)", None),
    "nothing": ("", "it is empty", None),
    "boolean": ("yes", "it is true/false", None),
    "date": ("2024-01-02", "it is a date", "2024"),
}


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_the_parser_names_where_and_what_kind_but_not_the_value(tmp_path: Path, kind: str) -> None:
    value_yaml, words, secret = BAD_VALUES[kind]
    path = tmp_path / "block.yaml"
    path.write_text(f"name: m\npassword: {value_yaml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        secret_reference(load_yaml(path).value["password"])
    message = str(caught.value)
    assert message.startswith(f"{path}:2: password: must be a reference like env:NAME or file:")
    assert words in message
    assert "\n" not in message
    if secret is not None:
        assert secret not in message + caught.value.hint


@pytest.mark.parametrize("reference", ["env:MIRROR_PASSWORD", "file:secrets/password", "file:/x"])
def test_references_pass_unchanged(tmp_path: Path, reference: str) -> None:
    path = tmp_path / "block.yaml"
    path.write_text(f"password: {reference}\n", encoding="utf-8")
    assert secret_reference(load_yaml(path).value["password"]) == reference


# --- through the command line, for every backend type that takes secrets ---------------------
# (type, the settings block with {value} where the secret goes, the key holding it)
SECRET_SETTINGS = {
    "s3-access_key_id": (
        "s3",
        "bucket: news\naccess_key_id: {value}\nsecret_access_key: env:S3_SECRET\n",
        "access_key_id",
    ),
    "s3-secret_access_key": (
        "s3",
        "bucket: news\naccess_key_id: env:S3_KEY\nsecret_access_key: {value}\n",
        "secret_access_key",
    ),
    "sftp-password": (
        "sftp",
        "host: h\nusername: u\npath: /srv\npassword: {value}\nknown_hosts: kh\n",
        "password",
    ),
    "sftp-private_key": (
        "sftp",
        "host: h\nusername: u\npath: /srv\nprivate_key: {value}\nknown_hosts: kh\n",
        "private_key",
    ),
    "sftp-private_key_passphrase": (
        "sftp",
        "host: h\nusername: u\npath: /srv\nprivate_key: file:key\n"
        "private_key_passphrase: {value}\nknown_hosts: kh\n",
        "private_key_passphrase",
    ),
    "webdav-password": (
        "webdav",
        "url: https://dav.example.org/news/\nusername: u\npassword: {value}\n",
        "password",
    ),
    "http-password": (
        "http",
        "url: https://up.example.org/news/\nusername: u\npassword: {value}\n",
        "password",
    ),
    "http-header": (
        "http",
        "url: https://up.example.org/news/\nheaders:\n  Authorization: {value}\n",
        "headers.Authorization",
    ),
}
CLI_VALUES = ("float", "int", "list", "mapping", "inline", "empty-reference")
CONFIG_HEAD = (
    "publisher:\n  name: N\nsources:\n  - type: directory\n    path: a\n"
    "keys:\n  dir: k\n  passphrase: env:NOPE\noutput: out\n"
    "mirrors:\n  - name: m\n    type: {type}\n    public_url: https://m.example.org/\n"
    "    {type}:\n"
)


@pytest.mark.parametrize("kind", CLI_VALUES)
@pytest.mark.parametrize("setting", sorted(SECRET_SETTINGS))
def test_a_bad_secret_setting_is_one_sentence_that_never_shows_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, kind: str
) -> None:
    type_name, block, key = SECRET_SETTINGS[setting]
    value_yaml, words, secret = BAD_VALUES[kind]
    head = CONFIG_HEAD.format(type=type_name)
    settings = "".join(f"      {line}\n" for line in block.format(value=value_yaml).splitlines())
    config = tmp_path / "mirror.yaml"
    config.write_text(head + settings, encoding="utf-8")
    leaf = key.rpartition(".")[2] + ":"
    rows = enumerate((head + settings).splitlines(), start=1)
    line = next(number for number, row in rows if row.strip().startswith(leaf))

    code = main(["--config", str(config), "build"])
    out, err = capsys.readouterr()

    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # one sentence, one hint
    sentence, hint = lines
    assert sentence.startswith(f"mirror: {config}:{line}: mirrors[0].{type_name}.{key}: ")
    assert "must be a reference like env:NAME or file:PATH" in sentence
    assert words in sentence
    assert hint.startswith("hint: ")
    if secret is not None:
        assert secret not in out + err


# --- the config's own secrets: the key store passphrase, the webhook secret ------------------
CONFIG_SECRETS = {
    "keys.passphrase": (
        "publisher:\n  name: N\nsources:\n  - type: directory\n    path: a\n"
        "keys:\n  dir: k\n  passphrase: {value}\noutput: out\n"
    ),
    "monitor.webhook.secret": (
        "publisher:\n  name: N\nsources:\n  - type: directory\n    path: a\n"
        "keys:\n  dir: k\n  passphrase: env:NOPE\noutput: out\n"
        "monitor:\n  webhook:\n    url: https://hooks.example.org/x\n    secret: {value}\n"
    ),
}


@pytest.mark.parametrize("kind", CLI_VALUES)
@pytest.mark.parametrize("key", sorted(CONFIG_SECRETS))
def test_a_bad_config_secret_is_one_sentence_that_never_shows_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, kind: str
) -> None:
    value_yaml, words, secret = BAD_VALUES[kind]
    text = CONFIG_SECRETS[key].format(value=value_yaml)
    config = tmp_path / "mirror.yaml"
    config.write_text(text, encoding="utf-8")
    leaf = key.rpartition(".")[2] + ":"
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.strip().startswith(leaf))

    code = main(["--config", str(config), "build"])
    out, err = capsys.readouterr()

    assert code == 3
    sentence, hint = err.strip().splitlines()
    assert sentence.startswith(f"mirror: {config}:{line}: {key}: must be a reference like env:")
    assert words in sentence
    assert hint.startswith("hint: ")
    if secret is not None:
        assert secret not in out + err
