"""Real mirror servers on 127.0.0.1 for tests, one provider module per backend flavour.

A provider is a context manager ``serve(workdir: Path) -> Iterator[MirrorServer]``
that starts its server on 127.0.0.1 (never any other address), yields how to
reach it, and stops it. `PROVIDERS` maps a flavour name to its module path;
the conformance suite runs every flavour.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mirror.backends import Backend


@dataclass(frozen=True)
class MirrorServer:
    """A running server and how `mirror` reaches it."""

    flavour: str
    """Provider name, e.g. "sftp-openssh"."""
    type_name: str
    """The backend ``type:`` that talks to it."""
    settings_yaml: str
    """YAML for the ``<type>:`` block of a mirror entry (indented by the caller); secrets as
    ``env:``/``file:`` references that the provider has set up."""
    public_url: str
    """Where readers GET the files (ends with "/")."""
    make_backend: Callable[[], Backend]
    """A fresh backend for this server with correct credentials."""
    make_bad_credentials_backend: Callable[[], Backend] | None
    """A backend whose credentials the server refuses (None where there are none)."""


PROVIDERS: dict[str, str] = {
    "local": "tests.servers.local",
    "s3-moto": "tests.servers.s3",
    "webdav-wsgidav": "tests.servers.webdav",
    "http-nginx": "tests.servers.nginx",
    "sftp-asyncssh": "tests.servers.sftp",
    "sftp-openssh": "tests.servers.openssh",
    "git-bare": "tests.servers.git",
}


def serve(flavour: str, workdir: Path) -> contextlib.AbstractContextManager[MirrorServer]:
    """Start the server of ``flavour`` in ``workdir``."""
    module = importlib.import_module(PROVIDERS[flavour])
    factory: Callable[[Path], contextlib.AbstractContextManager[MirrorServer]] = module.serve
    return factory(workdir)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout_s: float = 15.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


__all__ = ["PROVIDERS", "MirrorServer", "free_port", "serve", "wait_for_port"]
