"""The reader-only install: ``pip install mirror`` without extras (docs/adr/0017).

A fresh virtual environment gets mirror from this checkout with its base
dependencies only, from the package index like a reader's ``pipx install``;
there, the reader's commands work on a real edition and a real publish
tree, no package of the ``publish`` extra is installed, and a newsroom
command says which extra to install instead of failing with a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from mirror.build import BuildResult
from mirror.cli import extras
from mirror.cli.extras import EXTRA, PUBLISH_MODULES, missing_extra
from mirror.errors import MissingExtraError
from tests.conftest import Publisher
from tests.test_reader_pins import sentence_and_hint

CHECKOUT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (``markdown-it-py>=4`` -> ...)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


PUBLISH = {_name(r) for r in PROJECT["optional-dependencies"][EXTRA]}
BASE = {_name(r) for r in PROJECT["dependencies"]}


def test_the_table_of_missing_modules_is_the_publish_extra() -> None:
    """Every package of the extra has its import name in `PUBLISH_MODULES`, and only those."""
    assert {_name(d) for d in PUBLISH_MODULES.values()} == PUBLISH
    provided = metadata.packages_distributions()
    for module, distribution in PUBLISH_MODULES.items():
        assert _name(distribution) in {_name(d) for d in provided[module]}, module
    assert not BASE & PUBLISH
    assert f"mirror[{EXTRA}]" in PROJECT["optional-dependencies"]["test"]


def test_a_module_outside_the_extra_is_not_blamed_on_it() -> None:
    """A missing module that no extra provides is a broken install or a bug (exit 1), not 2."""
    assert missing_extra(ModuleNotFoundError(name="no_such_module"), "sync") is None
    missing = missing_extra(ModuleNotFoundError(name="ruamel.yaml"), "mirrors add")
    assert isinstance(missing, MissingExtraError)
    assert missing.exit_code == 2
    assert missing.distribution == "ruamel.yaml"
    assert "`mirror mirrors add` needs mirror's publish extra" in missing.message


class _Installed:
    """What `importlib.metadata` finds of an installed mirror: only its PEP 610 source record."""

    def __init__(self, direct_url: dict[str, object] | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


PYTHON = shlex.quote(sys.executable)


@pytest.mark.parametrize(
    ("direct_url", "pipx", "command"),
    [
        ({"url": "file:///src/mirror", "dir_info": {}}, False,
         f"{PYTHON} -m pip install '/src/mirror[publish]'"),
        ({"url": "file:///src/mirror", "dir_info": {"editable": True}}, False,
         f"{PYTHON} -m pip install -e '/src/mirror[publish]'"),
        ({"url": "file:///w/mirror-0.1.0-py3-none-any.whl", "archive_info": {}}, False,
         f"{PYTHON} -m pip install '/w/mirror-0.1.0-py3-none-any.whl[publish]'"),
        ({"url": "file:///src/my%20mirror", "dir_info": {}}, True,
         "pipx install --force '/src/my mirror[publish]'"),
        ({"url": "https://example.org/mirror.git", "vcs_info": {"vcs": "git", "commit_id": "ab12"}},
         True, "pipx install --force 'mirror[publish] @ git+https://example.org/mirror.git@ab12'"),
    ],
)  # fmt: skip
def test_the_hint_adds_the_extra_from_the_source_this_install_came_from(
    direct_url: dict[str, object],
    pipx: bool,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(metadata, "distribution", lambda name: _Installed(direct_url))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    if pipx:
        (tmp_path / "pipx_metadata.json").write_text("{}", encoding="utf-8")
    assert extras.install_hint() == (
        f"Add it from the source this install came from: {command} (docs/install.md)."
    )


def test_without_a_record_of_the_source_the_hint_warns_off_the_bare_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed by name from a wheelhouse: pip kept no source, so the hint says where to look."""
    monkeypatch.setattr(metadata, "distribution", lambda name: _Installed(None))
    hint = extras.install_hint()
    assert hint == MissingExtraError.default_hint
    assert "--find-links WHEELHOUSE 'mirror[publish]'" in hint
    assert "the PyPI project named mirror is another one" in hint


@pytest.fixture(scope="session")
def reader_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding mirror from this checkout without extras: its ``bin`` folder.

    The checkout is copied first, so the build writes nothing beside the
    sources. The venv has no pip of its own (``--without-pip`` saves the
    seconds of ensurepip); the test venv's pip installs into it, from the
    index and pip's cache, as ``pipx install`` would.
    """
    base = tmp_path_factory.mktemp("reader-install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, source / name)
    shutil.copytree(
        CHECKOUT / "mirror", source / "mirror", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    installed = subprocess.run(
        [*pip, "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv / "bin"


def _mirror(bin_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MIRROR_", "LC_", "LANG"))},
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [str(bin_dir / "mirror"), *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.slow
def test_a_reader_only_install_reads_and_verifies_and_names_the_extra_for_the_rest(
    reader_venv: Path, built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    publisher, edition = built
    state = str(tmp_path / "state")
    installed = subprocess.run(
        [str(reader_venv / "python"), "-c", "import importlib.metadata as m, json; "
         "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    names = {_name(n) for n in json.loads(installed.stdout)}
    assert "mirror" in names
    assert names >= BASE
    assert names & PUBLISH == set(), "a reader-only install pulled the publisher's packages"

    assert _mirror(reader_venv, "--version", cwd=tmp_path).stdout.startswith("mirror ")

    verified = _mirror(
        reader_venv, "verify", str(edition.zip_path), "--root", str(publisher.root_json),
        "--state", state, cwd=tmp_path,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"verified: Test Newsroom, edition {edition.eid}")

    pinned = _mirror(reader_venv, "trust", "add", str(publisher.root_json), "--state", state,
                     cwd=tmp_path)  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr
    assert "Test Newsroom" in pinned.stdout

    fetched = _mirror(
        reader_venv, "fetch", "--mirror", f"file://{edition.publish_dir}/", "--only",
        "--state", state, cwd=tmp_path,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.startswith(f"verified: Test Newsroom, edition {edition.eid}")

    opened = _mirror(reader_venv, "read", "--state", state, cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr
    index = Path(opened.stdout.strip().removeprefix("file://"))
    assert index.name == "index.html"
    assert index.is_file()

    page = _mirror(reader_venv, "keys", "export-reader", "--root", str(publisher.root_json),
                   "--out", str(tmp_path / "reader.html"), cwd=tmp_path)  # fmt: skip
    assert page.returncode == 0, page.stderr
    assert "SHA-256: " in page.stdout

    config = str(publisher.home / "mirror.yaml")
    for command in (["sync"], ["keys", "init"], ["config", "check"]):
        refused = _mirror(reader_venv, "--config", config, *command, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        sentence, hint = sentence_and_hint(refused.stderr)
        assert sentence.startswith(f"mirror: `mirror {' '.join(command)}` needs mirror's publish")
        assert "this reader-only install lacks" in sentence
        # The source it came from, never the bare name (PyPI's "mirror" is another project).
        source = reader_venv.parent.parent / "source"
        assert f"-m pip install '{source}[publish]'" in hint
