"""Hostile static mirrors on 127.0.0.1: what a censor can do to a reader, one server each.

A mirror is a dumb file store; every censor trick below is played by a
`CensorMirror` serving a copy of a publish tree (``metadata/`` and
``targets/``) under the URL prefix ``/pub/``, so readers must also build
URLs under a mirror root that is not the server root:

==============  ==================================================================
behaviour       what the reader gets
==============  ==================================================================
honest          the tree, byte for byte
slow            the tree, ``delay_s`` late and ``rate_bytes_s`` fast (finite; kill -9 tests)
blackhole       a TCP connection that never answers
reset           a TCP reset (RST) once the request line arrives
refused         nothing listens on the port (connection refused)
tamper          every file with one byte changed: JSON metadata keeps its syntax
                but loses its signature (a digit of ``expires`` moves), other files
                get one bit flipped
tamper-targets  honest metadata, every file under ``targets/`` with one bit flipped
stale           an older publish tree, served honestly (a frozen mirror)
rollback        the current tree with the older tree's ``timestamp.json``
expired         a tree whose timestamp expired, served honestly
mixandmatch     the current tree, but every snapshot request answered with the
                older tree's newest snapshot (snapshot from A, targets from B)
trickle         the whole response, status line included, one byte per 0.5 s
endless         ``200 OK`` and garbage until the reader hangs up or the server stops
withhold        the genuine metadata, fast; ``404`` for every file under ``targets/``
stall           the genuine metadata, fast; every ``targets/`` request left unanswered
drip            the genuine metadata, fast; every ``targets/`` answer trickled
withhold-list   the tree honestly, except ``404`` for the signed mirror list
==============  ==================================================================

Every loop here is bounded: by the response's length, by the server's stop
event (set when the ``with`` block ends), and by `MAX_CONNECTION_S`. Each
connection's socket has a one-second timeout, so no thread can block for
longer than that without re-checking the stop event; stopping a server joins
all of its threads.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal, cast, get_args
from urllib.parse import unquote, urlsplit

Behaviour = Literal[
    "honest",
    "slow",
    "blackhole",
    "reset",
    "refused",
    "tamper",
    "tamper-targets",
    "stale",
    "rollback",
    "expired",
    "mixandmatch",
    "trickle",
    "endless",
    "withhold",
    "stall",
    "drip",
    "withhold-list",
]
BEHAVIOURS: tuple[Behaviour, ...] = get_args(Behaviour)
NEEDS_OLDER: frozenset[Behaviour] = frozenset({"rollback", "mixandmatch"})

PREFIX = "/pub/"
"""Every mirror serves its tree under this path, not at the server root."""
MAX_CONNECTION_S = 120.0
"""No connection is held longer than this, whatever the behaviour."""
SOCKET_TIMEOUT_S = 1.0
"""Longest a handler thread blocks on its socket before re-checking the stop event."""
CHUNK_BYTES = 64 * 1024
_SNAPSHOT_RE = re.compile(r"^metadata/([0-9]+\.)?snapshot\.json$")
_EXPIRES_RE = re.compile(rb'"expires" ?: ?"[0-9]{3}([0-9])')


@dataclass(frozen=True)
class MirrorSpec:
    """What one mirror serves and how."""

    behaviour: Behaviour
    tree: Path
    """The publish tree served (for ``stale``/``expired``: the old or expired tree)."""
    older: Path | None = None
    """``rollback``: the tree whose timestamp is served; ``mixandmatch``: whose snapshot."""
    delay_s: float = 0.05
    """``slow``: wait before each response."""
    rate_bytes_s: float = 100_000.0
    """``slow``: at most this many bytes a second (sent in 1 KiB pieces)."""
    trickle_interval_s: float = 0.5
    """``trickle``: the pause between two bytes."""

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown censor behaviour {self.behaviour!r}")
        if self.behaviour in NEEDS_OLDER and self.older is None:
            raise ValueError(f"{self.behaviour} needs an older tree")
        if not (self.tree / "metadata").is_dir():
            raise ValueError(f"{self.tree} is not a publish tree (no metadata/)")


SpecLike = MirrorSpec | tuple[str, Path] | tuple[str, Path, Path]


def as_spec(spec: SpecLike) -> MirrorSpec:
    """``("stale", tree)`` or ``("rollback", tree, older)`` as a `MirrorSpec`."""
    if isinstance(spec, MirrorSpec):
        return spec
    behaviour = spec[0]
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown censor behaviour {behaviour!r}")
    older = spec[2] if len(spec) == 3 else None
    return MirrorSpec(behaviour, spec[1], older)


@dataclass(frozen=True)
class Served:
    """One request a mirror saw (logged when it arrives, before the answer)."""

    path: str
    """Relative to the mirror root, e.g. ``metadata/timestamp.json``."""
    at: float
    """`time.monotonic` when the request arrived."""


def snapshot_tree(publish_dir: Path, dest: Path) -> Path:
    """Copy the publish tree as it is now to ``dest`` (a moment to serve later)."""
    shutil.copytree(publish_dir, dest)
    return dest


def tamper_bytes(data: bytes, *, path: str) -> bytes:
    """``data`` with one change a signature or hash check must catch.

    Signed JSON keeps its syntax (one digit of the first ``expires`` moves), so
    the reader has to check the signature, not just fail to parse; anything
    else gets the middle byte's low bit flipped.
    """
    if path.endswith(".json"):
        match = _EXPIRES_RE.search(data)
        if match is not None:
            at = match.start(1)
            digit = (data[at] - ord("0") + 1) % 10
            return data[:at] + bytes([ord("0") + digit]) + data[at + 1 :]
    if not data:
        return b"\x00"
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def newest_snapshot(tree: Path) -> bytes:
    """The snapshot the tree's timestamp points at."""
    timestamp = json.loads((tree / "metadata" / "timestamp.json").read_bytes())
    version = int(timestamp["signed"]["meta"]["snapshot.json"]["version"])
    return (tree / "metadata" / f"{version}.snapshot.json").read_bytes()


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that joins its handler threads when closed."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, mirror: CensorMirror) -> None:
        self.mirror = mirror
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Plays the mirror's behaviour on one connection (HTTP/1.0: one request each)."""

    timeout = SOCKET_TIMEOUT_S
    server_version = "censor/1"
    deadline = 0.0
    """`time.monotonic` after which this connection is dropped, whatever the behaviour."""

    @property
    def mirror(self) -> CensorMirror:
        return cast(_Server, self.server).mirror

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is `CensorMirror.requests`."""

    def handle(self) -> None:
        self.deadline = time.monotonic() + MAX_CONNECTION_S
        behaviour = self.mirror.spec.behaviour
        try:
            if behaviour == "blackhole":
                self._wait(MAX_CONNECTION_S)
            elif behaviour == "reset":
                self.rfile.readline(65537)
                # SO_LINGER with a zero timeout turns close() into a RST.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            else:
                super().handle()
        except OSError:
            pass  # the reader hung up, or reset us: nothing to answer

    def do_HEAD(self) -> None:
        """HEAD as GET without the body is not needed by readers: refuse it."""
        self._send_raw(b"HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")

    def do_GET(self) -> None:
        """Answer according to the mirror's behaviour."""
        path = self._relative_path()
        if path is not None:
            self.mirror.log(path)
        spec = self.mirror.spec
        if spec.behaviour == "endless":
            self._endless()
            return
        content = path is not None and path.startswith("targets/")
        if content and spec.behaviour == "stall":
            self._wait(MAX_CONNECTION_S)
            return
        withheld = (content and spec.behaviour == "withhold") or (
            spec.behaviour == "withhold-list"
            and path is not None
            and re.fullmatch(r"targets/[0-9a-f]{64}\.mirrors\.json", path) is not None
        )
        body = self.mirror.body(path) if path is not None and not withheld else None
        if body is None:
            response = b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        else:
            response = (
                b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + body
            )
        if spec.behaviour == "trickle" or (content and spec.behaviour == "drip"):
            for i in range(len(response)):
                if self._wait(spec.trickle_interval_s):
                    return
                self._send_raw(response[i : i + 1], path=path)
            return
        if spec.behaviour == "slow":
            if self._wait(spec.delay_s):
                return
            piece = 1024
            for start in range(0, len(response), piece):
                if start and self._wait(piece / spec.rate_bytes_s):
                    return
                self._send_raw(response[start : start + piece], path=path)
            return
        self._send_raw(response, path=path)

    def _relative_path(self) -> str | None:
        """The request's path under the mirror root, or None if it is outside or unsafe."""
        raw = unquote(urlsplit(self.path).path)
        if not raw.startswith(PREFIX):
            return None
        relative = raw.removeprefix(PREFIX)
        parts = relative.split("/")
        if not relative or any(part in ("", ".", "..") for part in parts) or "\\" in relative:
            return None
        return relative

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the server is stopping or the connection is too old."""
        seconds = min(seconds, max(self.deadline - time.monotonic(), 0.0))
        return self.mirror.stopping.wait(seconds) or time.monotonic() >= self.deadline

    def _send_raw(self, data: bytes, *, path: str | None = None) -> None:
        """Send all of ``data`` unless the server stops or the reader goes away first."""
        view = memoryview(data)
        while view:
            if self.mirror.stopping.is_set() or time.monotonic() >= self.deadline:
                return
            try:
                sent = self.connection.send(view[:CHUNK_BYTES])
            except TimeoutError:
                continue  # the reader is not reading; check the stop event and try again
            view = view[sent:]
            self.mirror.count(path, sent)

    def _endless(self) -> None:
        self._send_raw(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        garbage = (b'{"signed": ' + b"A" * 1021 + b"\n") * (CHUNK_BYTES // 1032)
        while not self.mirror.stopping.is_set() and time.monotonic() < self.deadline:
            self._send_raw(garbage)


@dataclass
class CensorMirror:
    """One mirror on 127.0.0.1 playing ``spec.behaviour``; start it, then stop it."""

    spec: MirrorSpec
    stopping: threading.Event = field(default_factory=threading.Event)
    requests: list[Served] = field(default_factory=list)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    """Bytes sent so far (headers included) by top folder: ``metadata``, ``targets``, ``other``."""
    port: int = 0
    _server: _Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The mirror root a reader is given."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def start(self) -> None:
        """Listen on a free port (``refused``: find a free port and leave it closed)."""
        if self.spec.behaviour == "refused":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            return
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop answering, end every connection, join every thread."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def log(self, path: str) -> None:
        """Record a request."""
        with self._lock:
            self.requests.append(Served(path, time.monotonic()))

    def count(self, path: str | None, sent: int) -> None:
        """Add ``sent`` bytes to the tally of ``path``'s top folder."""
        top = path.split("/", 1)[0] if path else "other"
        with self._lock:
            self.bytes_sent[top] = self.bytes_sent.get(top, 0) + sent

    def sent(self, top: str) -> int:
        """Bytes sent so far for paths under the top folder ``top``."""
        with self._lock:
            return self.bytes_sent.get(top, 0)

    def served(self) -> list[Served]:
        """The requests so far (a copy)."""
        with self._lock:
            return list(self.requests)

    def body(self, path: str) -> bytes | None:
        """What this mirror answers for ``path``, or None for 404."""
        spec = self.spec
        if spec.behaviour == "rollback" and path == "metadata/timestamp.json":
            assert spec.older is not None
            return _read(spec.older, path)
        if spec.behaviour == "mixandmatch" and _SNAPSHOT_RE.match(path):
            assert spec.older is not None
            if _read(spec.tree, path) is None:
                return None
            return newest_snapshot(spec.older)
        data = _read(spec.tree, path)
        if data is None:
            return None
        if spec.behaviour == "tamper" or (
            spec.behaviour == "tamper-targets" and path.startswith("targets/")
        ):
            return tamper_bytes(data, path=path)
        return data


def _read(tree: Path, path: str) -> bytes | None:
    """The file at ``path`` under ``tree``, if it is a regular file inside the tree."""
    candidate = tree.joinpath(*path.split("/"))
    try:
        if not candidate.resolve().is_relative_to(tree.resolve()) or not candidate.is_file():
            return None
        return candidate.read_bytes()
    except OSError:
        return None


@contextlib.contextmanager
def running_mirrors(specs: Sequence[SpecLike]) -> Iterator[list[CensorMirror]]:
    """Start one `CensorMirror` per spec; stop them all when the block ends."""
    mirrors = [CensorMirror(as_spec(spec)) for spec in specs]
    try:
        for mirror in mirrors:
            mirror.start()
        yield mirrors
    finally:
        for mirror in mirrors:
            mirror.stopping.set()  # release every held connection at once, then join
        for mirror in mirrors:
            mirror.stop()


@contextlib.contextmanager
def censor_mirrors(specs: Sequence[SpecLike]) -> Iterator[list[str]]:
    """Mirrors per ``(behaviour, tree[, older tree])``; yields their URLs in the same order."""
    with running_mirrors(specs) as mirrors:
        yield [mirror.url for mirror in mirrors]
