"""S3 behaviour beyond the conformance suite: multipart, whole objects, config errors."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mirror.backends import Backend, CallLimits, backend_type
from mirror.backends.s3 import S3Backend, S3Settings, create, parse_settings
from mirror.errors import ConfigError, MirrorAuthError, StorageError, TransportError
from mirror.yamlnodes import load_yaml
from tests.servers import MirrorServer, free_port, watching
from tests.servers.s3 import (
    BUCKET,
    KEY_ENV,
    PREFIX,
    SECRET_ENV,
    backend_factory,
    endpoint_of,
    serve,
    settings_yaml,
    sync_client,
)

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorServer]:
    with serve(tmp_path_factory.mktemp("s3")) as running:
        yield running


@pytest.fixture
def small_threshold(server: MirrorServer, tmp_path: Path) -> Callable[[], Backend]:
    """Backends that switch to multipart uploads at 5 MiB."""
    yaml_text = settings_yaml(endpoint_of(server), extra="multipart_threshold_mb: 5\n")
    return backend_factory(tmp_path, "s3-multipart", yaml_text)


def run(make_backend: Callable[[], Backend], body: Callable[[S3Backend], Awaitable[None]]) -> None:
    async def main() -> None:
        backend = make_backend()
        assert isinstance(backend, S3Backend)
        try:
            await body(backend)
        finally:
            await backend.close()

    asyncio.run(main())


def unique(name: str) -> str:
    return f"s3-tests/{uuid.uuid4().hex[:12]}/{name}"


def pending_uploads(server: MirrorServer, path: str) -> list[object]:
    answer = sync_client(server).list_multipart_uploads(Bucket=BUCKET, Prefix=PREFIX + path)
    uploads: list[object] = answer.get("Uploads", [])
    return uploads


# --- multipart ------------------------------------------------------------------------


def test_large_file_goes_up_in_parts(
    server: MirrorServer, small_threshold: Callable[[], Backend], tmp_path: Path
) -> None:
    path = unique("targets/editions/big.zip")
    source = tmp_path / "big.zip"
    source.write_bytes(os.urandom(17 * MIB + 5))

    async def body(backend: S3Backend) -> None:
        await backend.put(path, source, size=source.stat().st_size)
        got = await backend.get(path, max_bytes=20 * MIB)
        assert hashlib.sha256(got).digest() == hashlib.sha256(source.read_bytes()).digest()

    run(small_threshold, body)
    head = sync_client(server).head_object(Bucket=BUCKET, Key=PREFIX + path)
    assert head["ETag"].endswith('-3"')  # 8 + 8 + 1 MiB: three parts
    assert head["ContentType"] == "application/zip"
    assert pending_uploads(server, path) == []


def test_large_bytes_go_up_in_parts(
    server: MirrorServer, small_threshold: Callable[[], Backend]
) -> None:
    path = unique("targets/big.bin")
    data = os.urandom(9 * MIB)

    async def body(backend: S3Backend) -> None:
        await backend.put(path, data, size=len(data))
        assert await backend.get(path, max_bytes=10 * MIB) == data

    run(small_threshold, body)
    head = sync_client(server).head_object(Bucket=BUCKET, Key=PREFIX + path)
    assert head["ETag"].endswith('-2"')


def test_failed_multipart_upload_is_aborted_and_leaves_nothing(
    server: MirrorServer, small_threshold: Callable[[], Backend], tmp_path: Path
) -> None:
    path = unique("targets/editions/broken.zip")
    source = tmp_path / "short.zip"
    source.write_bytes(os.urandom(12 * MIB))  # shorter than the size we announce

    async def body(backend: S3Backend) -> None:
        with pytest.raises(StorageError, match="changed size"):
            await backend.put(path, source, size=20 * MIB)
        assert await backend.stat(path) is None

    run(small_threshold, body)
    assert pending_uploads(server, path) == []


def test_missing_local_file_is_a_local_error(
    server: MirrorServer, small_threshold: Callable[[], Backend], tmp_path: Path
) -> None:
    async def body(backend: S3Backend) -> None:
        with pytest.raises(StorageError, match="cannot be read"):
            await backend.put(unique("a.zip"), tmp_path / "nope.zip", size=1)
        with pytest.raises(StorageError, match="cannot be read"):
            await backend.put(unique("b.zip"), tmp_path / "nope.zip", size=30 * MIB)

    run(small_threshold, body)


# --- whole objects ----------------------------------------------------------------------


def test_readers_never_see_half_a_multipart_object(
    server: MirrorServer, small_threshold: Callable[[], Backend]
) -> None:
    path = unique("metadata/timestamp.json")
    versions = [bytes([65 + i]) * (6 * MIB) for i in range(2)]  # multipart at 5 MiB
    expected = {hashlib.sha256(version).hexdigest() for version in versions}

    async def body(backend: S3Backend) -> None:
        await backend.put(path, versions[0], size=len(versions[0]))
        with watching(server, path) as reads:
            await asyncio.to_thread(reads.wait_for_polls, 1)
            for round_number in range(4):
                version = versions[(round_number + 1) % 2]
                await backend.put(path, version, size=len(version))
            await asyncio.to_thread(reads.wait_for_polls, 1)
        assert len(reads.seen) >= 3
        assert set(reads.seen) <= expected

    run(small_threshold, body)
    assert pending_uploads(server, path) == []


def test_a_failed_replacement_leaves_the_old_object_whole(
    server: MirrorServer, small_threshold: Callable[[], Backend], tmp_path: Path
) -> None:
    path = unique("targets/editions/replaced.zip")
    old = os.urandom(6 * MIB)
    source = tmp_path / "short.zip"
    source.write_bytes(os.urandom(12 * MIB))  # shorter than the size we announce

    async def body(backend: S3Backend) -> None:
        await backend.put(path, old, size=len(old))
        with pytest.raises(StorageError, match="changed size"):
            await backend.put(path, source, size=20 * MIB)
        assert await backend.get(path, max_bytes=len(old)) == old

    run(small_threshold, body)
    assert pending_uploads(server, path) == []


# --- what readers and admins see -----------------------------------------------------------


def test_public_url_serves_with_a_content_type_and_refuses_anonymous_writes(
    server: MirrorServer,
) -> None:
    path = unique("metadata/timestamp.json")

    async def body(backend: S3Backend) -> None:
        await backend.put(path, b"{}", size=2)

    run(server.make_backend, body)
    answer = httpx.get(server.public_url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert httpx.put(server.public_url + path, content=b"evil", timeout=10).status_code == 403
    outside = f"{endpoint_of(server)}/{BUCKET}/outside.json"
    assert httpx.get(outside, timeout=10).status_code == 403


def test_listing_ignores_folder_markers_and_strips_the_prefix(server: MirrorServer) -> None:
    folder = unique("")
    sync_client(server).put_object(Bucket=BUCKET, Key=PREFIX + folder + "marker/", Body=b"")

    async def body(backend: S3Backend) -> None:
        await backend.put(folder + "a.json", b"1", size=1)
        assert [(i.path, i.size) for i in await backend.list(folder)] == [(folder + "a.json", 1)]

    run(server.make_backend, body)


def test_auth_error_names_the_mirror_and_hides_the_secret(server: MirrorServer) -> None:
    backend = server.make_bad_credentials_backend
    assert backend is not None

    async def body(bad: S3Backend) -> None:
        with pytest.raises(MirrorAuthError) as caught:
            await bad.get(unique("x.json"))
        message = str(caught.value)
        assert "s3-bad" in message
        assert "SignatureDoesNotMatch" in message
        assert os.environ[SECRET_ENV] not in message
        assert os.environ[SECRET_ENV][::-1] not in message

    run(backend, body)


def test_unknown_access_key_is_an_auth_error(server: MirrorServer, tmp_path: Path) -> None:
    os.environ["MIRROR_TEST_S3_OTHER_KEY"] = "AKIANOTAREALKEY00000"
    yaml_text = settings_yaml(endpoint_of(server)).replace(
        f"env:{KEY_ENV}", "env:MIRROR_TEST_S3_OTHER_KEY"
    )
    try:

        async def body(backend: S3Backend) -> None:
            with pytest.raises(MirrorAuthError):
                await backend.put(unique("x.json"), b"x", size=1)

        run(backend_factory(tmp_path, "s3-unknown", yaml_text), body)
    finally:
        del os.environ["MIRROR_TEST_S3_OTHER_KEY"]


def test_nothing_listening_is_a_transport_error_not_auth(tmp_path: Path) -> None:
    os.environ.setdefault(KEY_ENV, "key")
    os.environ.setdefault(SECRET_ENV, "secret")
    yaml_text = settings_yaml(f"http://127.0.0.1:{free_port()}")

    async def body(backend: S3Backend) -> None:
        with pytest.raises(TransportError) as caught:
            await backend.get("metadata/timestamp.json")
        assert not isinstance(caught.value, MirrorAuthError)
        assert "s3-down" in str(caught.value)

    run(backend_factory(tmp_path, "s3-down", yaml_text), body)


# --- config ---------------------------------------------------------------------------------


def parse(tmp_path: Path, block: str) -> S3Settings:
    config = tmp_path / "mirror.yaml"
    config.write_text("s3:\n" + "".join(f"  {line}\n" for line in block.splitlines()))
    return parse_settings(load_yaml(config).value["s3"], tmp_path)


GOOD = "bucket: news\naccess_key_id: env:K\nsecret_access_key: file:secret.txt\n"


def test_settings_defaults_and_registration(tmp_path: Path) -> None:
    settings = parse(tmp_path, GOOD + "prefix: mirror\n")
    assert settings == S3Settings(
        bucket="news",
        access_key_id_ref="env:K",
        secret_access_key_ref="file:secret.txt",  # noqa: S106 - a reference, not a secret
        prefix="mirror/",
    )
    registered = backend_type("s3")
    assert registered.settings_key == "s3"
    assert registered.parse_settings is parse_settings


def test_inline_secret_is_rejected_at_its_line_without_echoing_it(tmp_path: Path) -> None:
    block = "bucket: news\naccess_key_id: env:K\nsecret_access_key: wJalrXUtnFEMIK7MDENG\n"
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, block)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'mirror.yaml'}:4: s3.secret_access_key: ")
    assert "wJalrXUtnFEMIK7MDENG" not in message
    assert "env:NAME" in message


@pytest.mark.parametrize(
    ("extra", "line", "key", "words"),
    [
        ("adressing: path", 5, "s3.adressing", "Did you mean 'addressing'?"),
        ("addressing: vhost", 5, "s3.addressing", "is not one of path, virtual"),
        ("multipart_threshold_mb: 2", 5, "s3.multipart_threshold_mb", "between 5 and 512"),
        ("prefix: ../other", 5, "s3.prefix", "relative folder"),
        ("endpoint_url: https://k:s@s3.example.com", 5, "s3.endpoint_url", "user name"),
        ("endpoint_url: ftp://s3.example.com", 5, "s3.endpoint_url", "http:// or https://"),
    ],
)
def test_bad_settings_name_file_line_and_key(
    tmp_path: Path, extra: str, line: int, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, GOOD + extra)
    assert str(caught.value).startswith(f"{tmp_path / 'mirror.yaml'}:{line}: {key}: ")
    assert words in str(caught.value) + str(caught.value.hint)


def test_missing_bucket_is_located_at_the_block(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mirror\.yaml:2: s3: needs the key 'bucket'"):
        parse(tmp_path, "access_key_id: env:K\nsecret_access_key: env:S\n")


def test_unset_secret_is_a_config_error_at_create(tmp_path: Path) -> None:
    settings = parse(tmp_path, GOOD.replace("env:K", "env:MIRROR_TEST_S3_SURELY_UNSET"))
    with pytest.raises(ConfigError, match="MIRROR_TEST_S3_SURELY_UNSET"):
        create("news-s3", settings, tmp_path, CallLimits())
