"""A ``local`` mirror: a folder, configured through the real settings parser."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from mirror.backends import Backend, CallLimits
from mirror.backends.local import create, parse_settings
from mirror.yamlnodes import load_yaml
from tests.servers import MirrorServer

LIMITS = CallLimits(timeout_s=30.0)


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """A mirror folder in ``workdir``; there is no server to start."""
    root = workdir / "mirror-root"
    root.mkdir()
    settings_yaml = f"path: {root.resolve()}\n"  # absolute: other configs reuse it
    config = workdir / "local.yaml"
    config.write_text(settings_yaml, encoding="utf-8")

    def make_backend() -> Backend:
        settings = parse_settings(load_yaml(config), workdir)
        return create("local-test", settings, workdir, LIMITS)

    yield MirrorServer(
        flavour="local",
        type_name="local",
        settings_yaml=settings_yaml,
        public_url=f"file://{root.resolve()}/",
        make_backend=make_backend,
        make_bad_credentials_backend=None,
    )
