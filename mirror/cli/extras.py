"""What the ``publish`` extra adds to the reader's install, and how to add it to this one.

The base install of mirror is the reader: ``fetch``, ``verify``, ``extract``,
``read``, ``trust``, ``tuf-client``, ``keys export-reader --root``. The
newsroom's commands also need the packages below (S3, SSH, Prometheus,
Markdown, feeds, HTML sanitising, YAML, tables, encrypted key files, Solar
Hijri dates), which the ``publish`` extra brings
(docs/adr/0017-reader-only-install.md).

On a reader-only install a newsroom command's module fails to import one of
them; `missing_extra` turns that `ModuleNotFoundError` into a sentence and a
hint a reader can act on. The hint names the source this install came from
(pip records it, PEP 610), never the bare name ``mirror``: the project of
that name on PyPI is someone else's, and ``pip install 'mirror[publish]'``
would replace this mirror with it. tests/test_reader_install.py holds
`PUBLISH_MODULES` equal to the extra in pyproject.toml.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mirror.errors import MissingExtraError

EXTRA = "publish"

PUBLISH_MODULES: dict[str, str] = {
    "aiobotocore": "aiobotocore",
    "asyncssh": "asyncssh",
    "bcrypt": "bcrypt",
    "feedparser": "feedparser",
    "httpx": "httpx",
    "jdatetime": "jdatetime",
    "cmarkgfm": "cmarkgfm",
    "nh3": "nh3",
    "prometheus_client": "prometheus-client",
    "rich": "rich",
    "ruamel": "ruamel.yaml",
    "yaml": "pyyaml",
}
"""Top-level import name -> the distribution of the ``publish`` extra that provides it."""


def missing_extra(error: ModuleNotFoundError, command: str) -> MissingExtraError | None:
    """The error for ``command`` when ``error`` is a package of the extra; None otherwise.

    Any other missing module is a broken install or a bug, and is left to the
    CLI's last line of defence (exit 1) rather than blamed on the extra.
    """
    module = (error.name or "").partition(".")[0]
    distribution = PUBLISH_MODULES.get(module)
    if distribution is None:
        return None
    return MissingExtraError(
        f"`mirror {command}` needs mirror's {EXTRA} extra (the newsroom's packages), which "
        f"this reader-only install lacks: {distribution} is not installed",
        module=module,
        distribution=distribution,
        hint=install_hint(),
    )


def install_hint() -> str:
    """The command that adds the extra to this very install, from the source it came from."""
    requirement, editable = _source_requirement()
    if requirement is None:
        return MissingExtraError.default_hint
    if (Path(sys.prefix) / "pipx_metadata.json").is_file():  # a venv pipx made and manages
        command = f"pipx install --force {shlex.quote(requirement)}"
    else:
        flag = "-e " if editable else ""
        command = f"{shlex.quote(sys.executable)} -m pip install {flag}{shlex.quote(requirement)}"
    return f"Add it from the source this install came from: {command} (docs/install.md)."


def _source_requirement() -> tuple[str | None, bool]:
    """``/path/to/checkout[publish]`` (and whether editable), from pip's record of the source.

    None when mirror was installed by name (from a wheelhouse or an index):
    then only the person who installed it knows where from.
    """
    from importlib import metadata  # noqa: PLC0415 - only for the hint: 50 ms at every start

    try:
        recorded = metadata.distribution("mirror").read_text("direct_url.json")
        source: dict[str, Any] = json.loads(recorded or "null") or {}
    except (metadata.PackageNotFoundError, ValueError):
        return None, False
    url = source.get("url")
    if not isinstance(url, str):
        return None, False
    editable = bool((source.get("dir_info") or {}).get("editable"))
    if url.startswith("file://"):
        return f"{unquote(urlsplit(url).path)}[{EXTRA}]", editable
    vcs = source.get("vcs_info") or {}
    if vcs.get("vcs") and vcs.get("commit_id"):
        return f"mirror[{EXTRA}] @ {vcs['vcs']}+{url}@{vcs['commit_id']}", False
    return f"mirror[{EXTRA}] @ {url}", False
