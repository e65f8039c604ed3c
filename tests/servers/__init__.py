"""Real mirror servers on 127.0.0.1 for tests, one provider module per backend flavour.

A provider is a context manager ``serve(workdir: Path) -> Iterator[MirrorServer]``
that starts its server on 127.0.0.1 (never any other address), yields how to
reach it, and stops it. `PROVIDERS` maps a flavour name to its module path;
the conformance suite runs every flavour.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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


def public_get(server: MirrorServer, path: str) -> httpx.Response:
    """What a reader gets for ``path`` at the server's public URL (``file://`` read directly)."""
    if server.public_url.startswith("file://"):
        local = Path(server.public_url.removeprefix("file://")) / path
        try:
            return httpx.Response(200, content=local.read_bytes())
        except FileNotFoundError:
            return httpx.Response(404)
    return httpx.get(server.public_url + path, timeout=10)


MISSING = "missing"
"""What `PublicReads` records for a 403/404 answer."""


@dataclass
class PublicReads:
    """Every answer a polling reader got for one public file: SHA-256 hex, `MISSING` or a status."""

    seen: list[str] = field(default_factory=list)

    def wait_for_polls(self, count: int, *, timeout_s: float = 30.0) -> None:
        """Block until the reader has polled ``count`` more times."""
        target = len(self.seen) + count
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < target and time.monotonic() < deadline:
            time.sleep(0.01)


@contextlib.contextmanager
def watching(server: MirrorServer, path: str) -> Iterator[PublicReads]:
    """Poll ``path`` at the public URL, as fast as a reader can, while the block runs."""
    reads = PublicReads()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                answer = public_get(server, path)
            except httpx.HTTPError as error:
                reads.seen.append(f"error {error.__class__.__name__}")
                continue
            if answer.status_code in (403, 404):
                reads.seen.append(MISSING)
            elif answer.status_code == 200:
                reads.seen.append(hashlib.sha256(answer.content).hexdigest())
            else:
                reads.seen.append(f"HTTP {answer.status_code}")

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        yield reads
    finally:
        stop.set()
        reader.join(timeout=30)


__all__ = [
    "MISSING",
    "PROVIDERS",
    "MirrorServer",
    "PublicReads",
    "free_port",
    "public_get",
    "serve",
    "wait_for_port",
    "watching",
]
