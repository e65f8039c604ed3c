"""Helpers for the hostile-input tests: a newsroom on disk, the real CLI, a hostile feed server.

The feed server speaks raw HTTP over a socket, so it can misbehave in ways
an HTTP library will not: a status line and then headers one byte at a
time, an endless run of ``100 Continue``, a body that trickles, silence.
Every loop it runs is bounded in count and time and stops when the server
does; it listens on 127.0.0.1 only. bench/hostile.py uses the same helpers
to record the timings that the tests only bound.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PASSPHRASE, TEST_KDF_ROUNDS

ROOT = Path(__file__).resolve().parent.parent

GOOD_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:t</id>
<updated>2024-03-05T10:00:00Z</updated>
<entry><title>A good entry</title><id>urn:t:good</id><updated>2024-03-05T10:00:00Z</updated>
<content type="html">&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;, a good one.&lt;/p&gt;</content>
</entry>
</feed>
"""


@dataclass(frozen=True)
class Ran:
    """One run of the real `mirror` command."""

    code: int
    out: str
    err: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        """Every line on stderr."""
        return self.err.strip().splitlines()

    def sentence(self) -> str:
        """The one-line error (``mirror: ...``), checking the hint line follows it."""
        errors = [line for line in self.lines if line.startswith("mirror: ")]
        assert len(errors) == 1, self.err
        index = self.lines.index(errors[0])
        assert self.lines[index + 1].startswith("hint: "), self.err
        assert "Traceback" not in self.err
        assert "internal error" not in self.err
        return errors[0]


def cli(*argv: str, timeout_s: float = 180, env: dict[str, str] | None = None) -> Ran:
    """Run ``python -m mirror ARGV`` as an operator would; return code, output and time."""
    environment = {**os.environ, **(env or {})}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        environment.pop(name, None)
    environment.pop("MIRROR_DEBUG", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mirror", *argv],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=timeout_s,
        check=False,
        env=environment,
        cwd=ROOT,
    )
    return Ran(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def newsroom(
    home: Path,
    *,
    sources: str = "  - type: directory\n    path: articles\n",
    keys: bool = True,
    extra: str = "",
) -> Path:
    """A newsroom folder: config (with ``sources``, a YAML list body), passphrase, keys."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "articles").mkdir(exist_ok=True)
    (home / "passphrase").write_text(PASSPHRASE + "\n", encoding="utf-8")
    config = home / "mirror.yaml"
    config.write_text(
        "publisher:\n  name: Hostile Test\n  language: en\n"
        f"sources:\n{sources}"
        "keys:\n  dir: keys\n  passphrase: file:passphrase\n"
        "output: out\n" + extra,
        encoding="utf-8",
    )
    if keys:
        from mirror.config import load_config
        from mirror.keystore import init_keys
        from tests.conftest import BUILD_TIME

        loaded = load_config(config)
        init_keys(
            loaded.keys.dir,
            loaded.passphrase(),
            publisher_name="Hostile Test",
            now=BUILD_TIME,
            kdf_rounds=TEST_KDF_ROUNDS,
        )
    return config


def article(title: str = "A fine article", *, body: str = "Some text.", extra: str = "") -> str:
    """An article file's text with front matter."""
    return f"---\ntitle: {title}\ndate: 2024-03-01T09:00:00Z\n{extra}---\n{body}\n"


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its SHA-256: to show nothing changed."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def leftovers(folder: Path) -> list[str]:
    """Temporary files a run left behind (``.*.part``, ``.*.tmp``, staged copies)."""
    if not folder.exists():
        return []
    return sorted(
        str(path)
        for path in folder.rglob(".*")
        if path.is_file() and path.suffix in (".part", ".tmp")
    )


# --- a hostile feed server ---------------------------------------------------------------

Behaviour = Callable[[socket.socket, "HostileServer", str], None]


class HostileServer(socketserver.ThreadingTCPServer):
    """A loopback server whose answer depends on the request path (see `BEHAVIOURS`)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()
        self.requests: list[str] = []
        self.routes: dict[str, Behaviour] = dict(BEHAVIOURS)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    server: HostileServer

    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.settimeout(10)
        request = b""
        try:
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                request += chunk
        except OSError:
            return
        line = request.split(b"\r\n", 1)[0].decode("latin-1")
        path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
        self.server.requests.append(path)
        route = path.split("?", 1)[0]
        behaviour = self.server.routes.get(route, _not_found)
        with contextlib.suppress(OSError):  # the client gave up, as it should
            behaviour(connection, self.server, path)


def _send(connection: socket.socket, status: str, body: bytes, headers: str = "") -> None:
    connection.sendall(
        f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}"
        "Connection: close\r\n\r\n".encode("latin-1")
        + body
    )


def _not_found(connection: socket.socket, server: HostileServer, path: str) -> None:
    _send(connection, "404 Not Found", b"no")


def _feed(connection: socket.socket, server: HostileServer, path: str) -> None:
    _send(connection, "200 OK", GOOD_ATOM.encode(), "Content-Type: application/atom+xml\r\n")


def _trickle_headers(connection: socket.socket, server: HostileServer, path: str) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(600):  # at most 60 s
        if server.stopping.wait(0.1):
            return
        connection.sendall(b"X")  # one byte of an endless header line


def _continue_flood(connection: socket.socket, server: HostileServer, path: str) -> None:
    for _ in range(6000):  # at most 60 s
        if server.stopping.wait(0.01):
            return
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _trickle_body(connection: socket.socket, server: HostileServer, path: str) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n<feed")
    for _ in range(600):
        if server.stopping.wait(0.1):
            return
        connection.sendall(b" ")


def _silent(connection: socket.socket, server: HostileServer, path: str) -> None:
    server.stopping.wait(60)


def _redirect(connection: socket.socket, server: HostileServer, path: str) -> None:
    target = path.split("?to=", 1)[1] if "?to=" in path else "/feed.xml"
    _send(connection, "302 Found", b"", f"Location: {target}\r\n")


BEHAVIOURS: dict[str, Behaviour] = {
    "/feed.xml": _feed,
    "/trickle-headers": _trickle_headers,
    "/continue-flood": _continue_flood,
    "/trickle-body": _trickle_body,
    "/silent": _silent,
    "/redirect": _redirect,
}


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    """A running `HostileServer`, stopped (and every loop in it ended) afterwards."""
    server = HostileServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def canary() -> Iterator[HostileServer]:
    """A second server standing for a service on the newsroom's own host."""
    with hostile_server() as server:
        yield server
