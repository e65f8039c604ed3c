"""One conformance suite, run against every backend type on its real server on 127.0.0.1.

Plus the guarantees of the base class itself (the byte cap, what is retried),
checked with a tiny in-memory backend where a real server cannot misbehave on cue.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror import errors as error_tree
from mirror.backends import Backend, Capability, ObjectInfo, base
from mirror.backends.base import DeclaredSize
from mirror.errors import MirrorAuthError, MirrorNotFoundError, OversizeError, TransportError
from mirror.retry import RetryPolicy, with_retries
from tests.servers import PROVIDERS, MirrorServer, public_get, serve, watching


@pytest.fixture(scope="module", params=sorted(PROVIDERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorServer]:
    flavour: str = request.param
    with serve(flavour, tmp_path_factory.mktemp(flavour)) as running:
        yield running


def exercise(server: MirrorServer, body: Callable[[Backend], Awaitable[None]]) -> None:
    """Run ``body`` with a fresh backend for ``server``, closing it afterwards."""

    async def main() -> None:
        backend = server.make_backend()
        try:
            await body(backend)
        finally:
            await backend.close()

    asyncio.run(main())


def unique(name: str) -> str:
    return f"conformance/{uuid.uuid4().hex[:12]}/{name}"


def versions_of(size: int, count: int) -> list[bytes]:
    """``count`` different files of ``size`` bytes each (a pointer file's successive versions)."""
    return [bytes([65 + i]) * size for i in range(count)]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_get_stat_roundtrip(server: MirrorServer) -> None:
    path = unique("targets/articles/abc.x.html")
    data = "Привет, мир — hello".encode() * 100

    async def body(backend: Backend) -> None:
        assert await backend.stat(path) is None
        await backend.put(path, data, size=len(data))
        assert await backend.get(path) == data
        info = await backend.stat(path)
        assert info is not None
        assert info.size == len(data)

    exercise(server, body)


def test_put_from_file_streams_large_content(server: MirrorServer, tmp_path: Path) -> None:
    path = unique("targets/editions/big.zip")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024 + 17))

    async def body(backend: Backend) -> None:
        await backend.put(path, source, size=source.stat().st_size)
        got = await backend.get(path, max_bytes=20 * 1024 * 1024)
        assert hashlib.sha256(got).digest() == hashlib.sha256(source.read_bytes()).digest()

    exercise(server, body)


def test_put_many_stores_every_file_of_a_batch(server: MirrorServer, tmp_path: Path) -> None:
    """However many files a type takes per call (`batch_files`), a batch of them lands whole."""
    prefix = unique("")
    sizes = [0, 1, 700, 64 * 1024 + 3, 5]
    names = [f"targets/a/{i}.html" for i in range(len(sizes) - 1)] + ["targets/b/c/deep.png"]
    files: list[base.LocalFile] = []
    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        local = tmp_path / f"f{i}"
        local.write_bytes(os.urandom(size))
        files.append(Upload(prefix + name, local, size))

    async def body(backend: Backend) -> None:
        await backend.put_many(files)
        await backend.put_many(files[:2])  # again: harmless, as a retried batch does
        await backend.flush()
        for file in files:
            assert await backend.get(file.path) == file.local.read_bytes(), file.path

    exercise(server, body)


@dataclass(frozen=True)
class Upload:
    """A file of this machine for `Backend.put_many`."""

    path: str
    local: Path
    size: int


def test_overwrite_replaces_the_pointer_file(server: MirrorServer) -> None:
    path = unique("metadata/timestamp.json")

    async def body(backend: Backend) -> None:
        await backend.put(path, b'{"version": 1}', size=14)
        await backend.put(path, b'{"version": 22}', size=15)
        assert await backend.get(path) == b'{"version": 22}'

    exercise(server, body)


WHOLE_FILE_FLAVOURS = {
    "local": "temp file + os.replace",
    "s3-moto": "an object appears whole",
    "http-nginx": "nginx writes the body to a temp file and renames it",
    "sftp-asyncssh": "temp name + posix-rename",
    "sftp-openssh": "temp name + posix-rename",
}
"""Where readers never see a partial file, and how that is done. Not webdav (PUT writes in
place, by design: see the webdav module) nor git (readers of the repository get whole commits,
tested in test_backend_ssh_git; the test pages host's checkout is not atomic)."""


def test_readers_never_see_half_a_replaced_file(server: MirrorServer) -> None:
    if server.flavour not in WHOLE_FILE_FLAVOURS:
        pytest.skip(f"{server.flavour} does not promise whole files to readers")
    path = unique("metadata/timestamp.json")
    versions = versions_of(1024 * 1024 + 7, 3)
    expected = {sha256_hex(version) for version in versions}

    async def body(backend: Backend) -> None:
        await backend.put(path, versions[0], size=len(versions[0]))
        with watching(server, path) as reads:
            await asyncio.to_thread(reads.wait_for_polls, 1)
            for round_number in range(12):
                version = versions[round_number % len(versions)]
                await backend.put(path, version, size=len(version))
            await asyncio.to_thread(reads.wait_for_polls, 1)
        assert len(reads.seen) >= 3  # the reader really was reading during the writes
        assert set(reads.seen) <= expected, set(reads.seen) - expected  # never partial or absent

    exercise(server, body)


def test_missing_file(server: MirrorServer) -> None:
    async def body(backend: Backend) -> None:
        with pytest.raises(MirrorNotFoundError):
            await backend.get(unique("nope.json"))
        assert await backend.stat(unique("nope.json")) is None
        await backend.delete(unique("nope.json"))  # deleting nothing is fine

    exercise(server, body)


def test_delete(server: MirrorServer) -> None:
    path = unique("targets/x/old.html")

    async def body(backend: Backend) -> None:
        await backend.put(path, b"old", size=3)
        await backend.delete(path)
        assert await backend.stat(path) is None

    exercise(server, body)


def test_an_over_cap_get_is_oversize_not_transport(server: MirrorServer) -> None:
    path = unique("big.bin")
    data = b"x" * 100_000

    async def body(backend: Backend) -> None:
        await backend.put(path, data, size=len(data))
        await backend.flush()
        with pytest.raises(OversizeError) as caught:
            await backend.get(path, max_bytes=1000)
        # Bad data from this mirror: never mistaken for (and retried as) network trouble.
        assert not isinstance(caught.value, TransportError)
        message = str(caught.value)
        assert message.startswith(f"mirror {backend.name}: {path} ")
        assert "cap of 1000 bytes" in message
        assert "\n" not in message
        # At the cap exactly is fine.
        assert await backend.get(path, max_bytes=len(data)) == data

    exercise(server, body)


def test_listing(server: MirrorServer) -> None:
    prefix = unique("")
    names = ["targets/a/1.html", "targets/a/2.html", "metadata/3.snapshot.json"]

    async def body(backend: Backend) -> None:
        if Capability.LISTING not in backend.capabilities:
            pytest.skip(f"{backend.type_name} cannot list")
        for i, name in enumerate(names):
            await backend.put(prefix + name, b"y" * (i + 1), size=i + 1)
        listed = {info.path: info.size for info in await backend.list(prefix)}
        assert listed == {prefix + name: i + 1 for i, name in enumerate(names)}

    exercise(server, body)


def test_files_are_served_at_the_public_url(server: MirrorServer) -> None:
    path = unique("metadata/1.root.json")
    data = b'{"signed": "public"}'

    async def body(backend: Backend) -> None:
        await backend.put(path, data, size=len(data))
        await backend.flush()

    exercise(server, body)
    response = public_get(server, path)
    assert response.status_code == 200
    assert response.content == data


def test_wrong_credentials_are_an_auth_error(server: MirrorServer) -> None:
    if server.make_bad_credentials_backend is None:
        pytest.skip(f"{server.flavour} has no credentials")
    backend = server.make_bad_credentials_backend()

    async def body() -> None:
        try:
            with pytest.raises(MirrorAuthError):
                await backend.put(unique("denied.txt"), b"no", size=2)
        finally:
            await backend.close()

    asyncio.run(body())


# --- the base class's own guarantees ----------------------------------------------------
class ScriptedBackend(Backend):
    """In memory: `_read` declares ``declared`` (if not None), then sends ``data`` in chunks."""

    type_name = "scripted"

    def __init__(self, data: bytes, *, declared: int | None, chunk_bytes: int = 100) -> None:
        super().__init__("scripted")
        self.data = data
        self.declared = declared
        self.chunk_bytes = chunk_bytes
        self.chunks_sent = 0
        self.closed = False

    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        try:
            if self.declared is not None:
                yield DeclaredSize(self.declared)
            for offset in range(0, len(self.data), self.chunk_bytes):
                self.chunks_sent += 1
                yield self.data[offset : offset + self.chunk_bytes]
        finally:
            self.closed = True

    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        raise NotImplementedError

    async def _stat(self, path: str) -> ObjectInfo | None:
        raise NotImplementedError

    async def _delete(self, path: str) -> None:
        raise NotImplementedError


def test_a_declared_size_over_the_cap_is_refused_before_any_body_is_read() -> None:
    backend = ScriptedBackend(b"x" * 5000, declared=5000)
    with pytest.raises(OversizeError, match="is 5000 bytes, over the cap of 1000 bytes"):
        asyncio.run(backend.get("a.bin", max_bytes=1000))
    assert backend.chunks_sent == 0
    assert backend.closed


@pytest.mark.parametrize("declared", [None, 10], ids=["undeclared", "understated"])
def test_bytes_are_counted_as_they_arrive_and_reading_stops_at_the_cap(
    declared: int | None,
) -> None:
    backend = ScriptedBackend(b"x" * 100_000, declared=declared)
    with pytest.raises(OversizeError, match="longer than the cap of 1000 bytes"):
        asyncio.run(backend.get("a.bin", max_bytes=1000))
    assert backend.chunks_sent == 11  # the first chunk past the cap, and not one more
    assert backend.closed  # the connection or file behind `_read` is released


def test_a_file_of_exactly_the_cap_arrives_whole() -> None:
    backend = ScriptedBackend(b"abc" * 1000, declared=3000, chunk_bytes=7)
    assert asyncio.run(backend.get("a.bin", max_bytes=3000)) == b"abc" * 1000
    assert backend.closed


def test_an_oversize_error_is_never_retried() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    async def oversized() -> bytes:
        calls.append(1)
        raise OversizeError("mirror m: a.bin is longer than the cap of 10 bytes")

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with pytest.raises(OversizeError):
        asyncio.run(with_retries(oversized, RetryPolicy(retries=4), sleep=no_sleep))
    assert calls == [1]
    assert sleeps == []


def test_a_transport_error_is_retried_with_the_same_policy() -> None:
    # The contrast that makes the test above mean something: same policy, same sleep.
    calls: list[int] = []
    sleeps: list[float] = []

    async def flaky() -> bytes:
        calls.append(1)
        raise TransportError("mirror m: connection reset")

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with pytest.raises(TransportError):
        asyncio.run(with_retries(flaky, RetryPolicy(retries=4), sleep=no_sleep))
    assert len(calls) == 5
    assert len(sleeps) == 4


def test_no_backend_defines_an_exception_class() -> None:
    # Every failure is a leaf of mirror/errors.py, with its verdict, exit code and hint;
    # control flow inside a backend is values, not private exceptions.
    ours = {name for name, value in vars(error_tree).items() if isinstance(value, type)}
    for module in sorted(Path(base.__file__).parent.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base).rpartition(".")[2] for base in node.bases}
                assert not bases & (ours | {"Exception", "BaseException"}), (
                    f"{module.name}: class {node.name} derives from {sorted(bases)}"
                )
