"""What the ``publish`` extra adds to the reader's install, by the name each package imports as.

The base install of mirror is the reader: ``fetch``, ``verify``, ``extract``,
``read``, ``trust``, ``tuf-client``, ``keys export-reader --root``. The
newsroom's commands also need the packages below (S3, SSH, Prometheus,
Markdown, feeds, HTML sanitising, YAML, tables, encrypted key files), which
``pip install 'mirror[publish]'`` brings (docs/adr/0016-reader-only-install.md).

On a reader-only install a newsroom command's module fails to import one of
them; `missing_extra` turns that `ModuleNotFoundError` into the sentence and
hint a reader can act on. tests/test_reader_install.py holds this table equal
to the extra in pyproject.toml.
"""

from __future__ import annotations

from mirror.errors import MissingExtraError

EXTRA = "publish"

PUBLISH_MODULES: dict[str, str] = {
    "aiobotocore": "aiobotocore",
    "asyncssh": "asyncssh",
    "bcrypt": "bcrypt",
    "feedparser": "feedparser",
    "httpx": "httpx",
    "markdown_it": "markdown-it-py",
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
    )
