"""What is particular to the ``webdav`` and ``http`` backends, beyond the conformance suite.

Hostile and busy servers are a tiny stdlib ``http.server`` on 127.0.0.1
scripted per path; real behaviour is checked on wsgidav and nginx.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import XMLParser

import pytest

from mirror.backends import Backend, Capability, backend_type
from mirror.backends._http_common import retry_after_seconds
from mirror.backends.webdav import MultistatusReader, _MultistatusTarget
from mirror.errors import (
    ConfigError,
    MirrorAuthError,
    OversizeError,
    ServerBusyError,
    StorageError,
    TransportError,
    UnreadableListingError,
)
from mirror.yamlnodes import load_yaml
from tests.servers import MirrorServer
from tests.servers.nginx import DAV_EXT_MODULE, NGINX, run_nginx
from tests.servers.webdav import make_backend
from tests.servers.webdav import serve as serve_webdav

MULTISTATUS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">'
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<D:multistatus xmlns:D="DAV:"><D:response><D:href>&lol9;</D:href>'
    "</D:response></D:multistatus>"
)


def response_xml(href: str, *, size: int | None = None, collection: bool = False) -> str:
    props = "<D:resourcetype><D:collection/></D:resourcetype>" if collection else ""
    if size is not None:
        props += f"<D:getcontentlength>{size}</D:getcontentlength>"
    return (
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>{props}</D:prop>"
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )


# --- a scripted server --------------------------------------------------------------------
class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers by the first path segment: /busy/, /limited/, /endless/, /bomb/, ..."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _consume_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream_forever(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        chunk = b"z" * 65536
        deadline = time.monotonic() + 30  # never outlive a broken test
        try:
            while time.monotonic() < deadline:
                self.wfile.write(chunk)
        except OSError:
            pass  # the client hung up, as it should
        self.close_connection = True

    def _handle(self) -> None:
        self._consume_body()
        kind = self.path.strip("/").split("/")[0]
        if kind == "busy":
            self._answer(503, b"busy", {"Retry-After": "2"})
        elif kind == "limited":
            later = datetime.now(UTC) + timedelta(seconds=90)
            self._answer(429, b"slow down", {"Retry-After": format_datetime(later, usegmt=True)})
        elif kind == "endless":
            self._stream_forever({"Connection": "close"})
        elif kind == "huge":
            self._stream_forever({"Content-Length": str(10**12)})
        elif kind == "redirect":
            self._answer(302, b"", {"Location": "http://127.0.0.1:9/elsewhere/"})
        elif kind == "unauthorized":
            self._answer(401, b"who are you", {"WWW-Authenticate": 'Basic realm="x"'})
        elif kind == "bomb":
            self._answer(207, BILLION_LAUGHS.encode())
        elif kind == "split":
            # The DOCTYPE arrives cut in two, in separate TCP writes.
            self.send_response(207)
            self.send_header("Content-Length", str(len(BILLION_LAUGHS)))
            self.end_headers()
            cut = BILLION_LAUGHS.index("DOCTYPE") + 3
            self.wfile.write(BILLION_LAUGHS[:cut].encode())
            self.wfile.flush()
            time.sleep(0.05)
            self.wfile.write(BILLION_LAUGHS[cut:].encode())
        elif kind == "outside":
            body = MULTISTATUS_HEAD + response_xml("/etc/passwd", size=1) + "</D:multistatus>"
            self._answer(207, body.encode())
        elif kind == "deep":
            body = MULTISTATUS_HEAD + "<D:x>" * 1000 + "</D:x>" * 1000 + "</D:multistatus>"
            self._answer(207, body.encode())
        else:
            self._answer(404, b"nothing here")

    do_GET = do_HEAD = do_PUT = do_DELETE = do_MKCOL = do_PROPFIND = _handle


@pytest.fixture(scope="module")
def scripted() -> Iterator[str]:
    """The scripted server's base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def backend_for(tmp_path: Path, type_name: str, settings_yaml: str) -> Backend:
    return make_backend(tmp_path, "m", type_name, settings_yaml)


def run(backend: Backend, body: Callable[[Backend], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        try:
            return await body(backend)
        finally:
            await backend.close()

    return asyncio.run(main())


# --- busy servers ------------------------------------------------------------------------------
@pytest.mark.parametrize("type_name", ["http", "webdav"])
def test_503_carries_the_retry_after_seconds(scripted: str, tmp_path: Path, type_name: str) -> None:
    backend = backend_for(tmp_path, type_name, f"url: {scripted}/busy/\n")
    with pytest.raises(ServerBusyError) as caught:
        run(backend, lambda b: b.put("metadata/timestamp.json", b"{}", size=2))
    assert caught.value.retry_after_s == 2.0
    assert "503" in str(caught.value)
    assert "retry after 2 s" in str(caught.value)
    assert isinstance(caught.value, TransportError)


def test_429_with_an_http_date_is_converted_to_seconds(scripted: str, tmp_path: Path) -> None:
    backend = backend_for(tmp_path, "http", f"url: {scripted}/limited/\n")
    with pytest.raises(ServerBusyError) as caught:
        run(backend, lambda b: b.get("metadata/timestamp.json"))
    assert caught.value.retry_after_s is not None
    assert 80 <= caught.value.retry_after_s <= 90


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),
        ("", None),
        ("9" * 400, None),  # absurd, and must not overflow
        (None, None),
    ],
)
def test_retry_after_header_forms(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


# --- endless and lying downloads --------------------------------------------------------------
def test_an_endless_download_stops_at_the_cap_quickly_and_flat(
    scripted: str, tmp_path: Path
) -> None:
    backend = backend_for(tmp_path, "http", f"url: {scripted}/endless/\n")
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(OversizeError, match="longer than the cap of 1048576 bytes"):
            run(backend, lambda b: b.get("targets/edition.zip", max_bytes=1024 * 1024))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 5
    assert peak < 8 * 1024 * 1024


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    scripted: str, tmp_path: Path
) -> None:
    backend = backend_for(tmp_path, "http", f"url: {scripted}/huge/\n")
    started = time.monotonic()
    with pytest.raises(OversizeError, match=r"is 1000000000000 bytes, over the cap of 1000 bytes"):
        run(backend, lambda b: b.get("targets/edition.zip", max_bytes=1000))
    assert time.monotonic() - started < 5


# --- other answers -----------------------------------------------------------------------------
def test_redirects_are_not_followed(scripted: str, tmp_path: Path) -> None:
    backend = backend_for(tmp_path, "http", f"url: {scripted}/redirect/\n")
    with pytest.raises(TransportError, match="redirect"):
        run(backend, lambda b: b.put("a.txt", b"x", size=1))


def test_refused_credentials_never_show_the_password(scripted: str, tmp_path: Path) -> None:
    os.environ["MIRROR_TEST_HTTP_SECRET"] = "s3cr3t-value-42"  # noqa: S105 - test value
    try:
        backend = backend_for(
            tmp_path,
            "http",
            f"url: {scripted}/unauthorized/\nusername: u\npassword: env:MIRROR_TEST_HTTP_SECRET\n"
            "headers:\n  X-Token: env:MIRROR_TEST_HTTP_SECRET\n",
        )
        with pytest.raises(MirrorAuthError) as caught:
            run(backend, lambda b: b.put("a.txt", b"x", size=1))
    finally:
        del os.environ["MIRROR_TEST_HTTP_SECRET"]
    assert "401" in str(caught.value)
    assert "s3cr3t" not in str(caught.value) + caught.value.hint


def test_a_missing_local_file_is_a_storage_error(scripted: str, tmp_path: Path) -> None:
    backend = backend_for(tmp_path, "http", f"url: {scripted}/busy/\n")
    with pytest.raises(StorageError):
        run(backend, lambda b: b.put("a.bin", tmp_path / "gone.bin", size=10))


def test_a_refused_connection_is_a_transport_error(tmp_path: Path) -> None:
    from tests.servers import free_port

    backend = backend_for(tmp_path, "webdav", f"url: http://127.0.0.1:{free_port()}/dav/\n")
    with pytest.raises(TransportError) as caught:
        run(backend, lambda b: b.stat("a.txt"))
    assert not isinstance(caught.value, MirrorAuthError)


# --- hostile listings --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("bomb", "DOCTYPE"),
        ("split", "DOCTYPE"),
        ("deep", "nests elements"),
        ("outside", "outside"),
    ],
)
def test_hostile_propfind_answers_are_refused(
    scripted: str, tmp_path: Path, kind: str, message: str
) -> None:
    backend = backend_for(tmp_path, "webdav", f"url: {scripted}/{kind}/\n")
    with pytest.raises(TransportError, match=message):
        run(backend, lambda b: b.list("targets/"))


def test_a_doctype_is_refused_in_stat_too(scripted: str, tmp_path: Path) -> None:
    backend = backend_for(tmp_path, "webdav", f"url: {scripted}/bomb/\n")
    with pytest.raises(TransportError, match="DOCTYPE"):
        run(backend, lambda b: b.stat("metadata/timestamp.json"))


def test_doctype_cut_across_chunks_is_refused_before_parsing() -> None:
    reader = MultistatusReader()
    cut = BILLION_LAUGHS.index("DOCTYPE") + 2
    reader.feed(BILLION_LAUGHS[:cut].encode())
    with pytest.raises(UnreadableListingError, match="DOCTYPE"):
        reader.feed(BILLION_LAUGHS[cut:].encode())


def test_the_parser_target_refuses_a_doctype_even_without_the_text_check() -> None:
    parser = XMLParser(target=_MultistatusTarget())  # noqa: S314 - this is the guard under test
    with pytest.raises(UnreadableListingError, match="DOCTYPE"):
        parser.feed(BILLION_LAUGHS)


def test_listing_size_is_capped() -> None:
    reader = MultistatusReader(max_bytes=1000)
    reader.feed(MULTISTATUS_HEAD.encode())
    with pytest.raises(UnreadableListingError, match="longer than 1000 bytes"):
        reader.feed(response_xml("/dav/a", size=1).encode() * 10)


def test_multistatus_keeps_only_props_that_came_back_200() -> None:
    # Apache-style: found props in one propstat, missing ones in a 404 propstat.
    body = (
        MULTISTATUS_HEAD
        + response_xml("/dav/a/", collection=True)
        + "<D:response><D:href>/dav/a/%D0%BF.html</D:href>"
        "<D:propstat><D:prop><D:getcontentlength>12</D:getcontentlength><D:resourcetype/>"
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        "<D:propstat><D:prop><D:getcontentlength>999</D:getcontentlength></D:prop>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
        "<D:response><D:href>/dav/gone</D:href><D:status>HTTP/1.1 404 Not Found</D:status>"
        "</D:response></D:multistatus>"
    ).encode()
    reader = MultistatusReader()
    entries = [entry for i in range(0, len(body), 7) for entry in reader.feed(body[i : i + 7])]
    entries += reader.close()
    assert [(e.href, e.is_collection, e.size) for e in entries] == [
        ("/dav/a/", True, None),
        ("/dav/a/%D0%BF.html", False, 12),
    ]


def test_a_listing_in_another_encoding_is_refused() -> None:
    reader = MultistatusReader()
    with pytest.raises(UnreadableListingError, match="UTF-8"):
        reader.feed('<?xml version="1.0" encoding="UTF-16"?><a/>'.encode("utf-16"))


# --- real servers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wsgidav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MirrorServer, Path]]:
    """The wsgidav provider's server, and the folder it serves (its workdir's data/)."""
    workdir = tmp_path_factory.mktemp("wsgidav")
    with serve_webdav(workdir) as running:
        yield running, workdir / "data"


def test_webdav_put_recreates_a_folder_removed_behind_its_back(
    wsgidav: tuple[MirrorServer, Path],
) -> None:
    server, root = wsgidav

    async def body(backend: Backend) -> None:
        await backend.put("removed/deeper/one.txt", b"1", size=1)
        # Someone cleans up on the server; the backend still believes the folders exist.
        shutil.rmtree(root / "removed")
        await backend.put("removed/deeper/two.txt", b"22", size=2)
        info = await backend.stat("removed/deeper/two.txt")
        assert info is not None
        assert info.size == 2

    run(server.make_backend(), body)


def test_webdav_names_are_percent_encoded(wsgidav: tuple[MirrorServer, Path]) -> None:
    server, root = wsgidav
    name = "odd/статья #1 100%?.html"

    async def body(backend: Backend) -> list[Any]:
        await backend.put(name, b"hi", size=2)
        return await backend.list("odd/")

    listed = run(server.make_backend(), body)
    assert (root / name).read_bytes() == b"hi"
    assert [(i.path, i.size) for i in listed] == [(name, 2)]


def test_webdav_lists_in_one_request_where_depth_infinity_is_answered(
    wsgidav: tuple[MirrorServer, Path],
) -> None:
    server, _ = wsgidav

    async def body(backend: Backend) -> list[Any]:
        await backend.put("deep/a/1.html", b"1", size=1)
        await backend.put("deep/a/b/2.html", b"22", size=2)
        listed = await backend.list("deep/")
        assert getattr(backend, "_depth_infinity", None) is True  # no walking needed
        return listed

    listed = run(server.make_backend(), body)
    assert {i.path: i.size for i in listed} == {"deep/a/1.html": 1, "deep/a/b/2.html": 2}


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")
@pytest.mark.skipif(not DAV_EXT_MODULE.exists(), reason="nginx dav-ext module is not installed")
def test_webdav_lists_depth_by_depth_where_infinity_is_refused(tmp_path: Path) -> None:
    os.environ["MIRROR_TEST_NGINX_DAV"] = "nginx-dav-password"
    try:
        with run_nginx(tmp_path / "nginx", "nginx-dav-password") as url:
            backend = backend_for(
                tmp_path,
                "webdav",
                f"url: {url}\nusername: publisher\npassword: env:MIRROR_TEST_NGINX_DAV\n",
            )
            names = {"targets/a/1.html": 1, "targets/a/b/2.html": 2, "targets/c/3.html": 3}

            async def body(b: Backend) -> list[Any]:
                for name, size in names.items():
                    await b.put(name, b"x" * size, size=size)
                await b.put("metadata/1.root.json", b"{}", size=2)
                first = await b.list("targets/")
                second = await b.list("targets/a")
                assert getattr(b, "_depth_infinity", None) is False  # it fell back, once
                return [first, second, await b.stat("targets/a/b/2.html"), await b.stat("targets")]

            first, second, info, folder = run(backend, body)
    finally:
        del os.environ["MIRROR_TEST_NGINX_DAV"]
    assert {i.path: i.size for i in first} == names
    assert {i.path: i.size for i in second} == {"targets/a/1.html": 1, "targets/a/b/2.html": 2}
    assert info.size == 2
    assert folder is None  # a collection is not a file


def test_capabilities(tmp_path: Path) -> None:
    webdav = backend_for(tmp_path, "webdav", "url: https://dav.example.org/news\n")
    plain = backend_for(tmp_path, "http", "url: https://up.example.org/news/\n")
    assert webdav.capabilities == frozenset({Capability.LISTING})
    assert plain.capabilities == frozenset()
    with pytest.raises(NotImplementedError):
        asyncio.run(plain.list())


# --- configuration -------------------------------------------------------------------------------
def settings_error(tmp_path: Path, type_name: str, text: str) -> ConfigError:
    path = tmp_path / "block.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        backend_type(type_name).parse_settings(load_yaml(path), tmp_path)
    return caught.value


@pytest.mark.parametrize(
    ("type_name", "text", "line", "problem"),
    [
        ("webdav", "username: alice\n", 1, "needs the key 'url'"),
        ("webdav", "url: ftp://dav.example.org/\n", 1, "must be an http:// or https:// URL"),
        ("webdav", "url: https://\n", 1, "with a host name"),
        ("webdav", "url: https://h:99999/\n", 1, "not a valid URL"),
        ("webdav", "url: https://h/?q=1\n", 1, "?query"),
        ("webdav", "url: https://h/\npasword: env:X\n", 2, "not a known setting"),
        ("webdav", "url: https://h/\npassword: env:X\n", 2, "needs a username"),
        ("webdav", "url: https://h/\nusername: [a]\n", 2, "non-empty text"),
        ("http", "url: https://h/\natomic_put: true\n", 2, "not a known setting"),
        ("http", "url: https://h/\nheaders:\n  X-Token: inline-token\n", 3, "reference"),
        ("http", "url: https://h/\nheaders:\n  'Bad Name': env:X\n", 3, "header name"),
        ("http", "url: https://h/\nheaders:\n  Host: env:X\n", 3, "set by mirror"),
        ("http", "url: https://h/\nheaders: env:X\n", 2, "mapping"),
        (
            "http",
            "url: http://upload.example.org/\nusername: a\npassword: env:X\n",
            1,
            "unencrypted",
        ),
        ("http", "url: http://upload.example.org/\nheaders:\n  X-T: env:X\n", 1, "unencrypted"),
    ],
)
def test_config_errors_name_the_line(
    tmp_path: Path, type_name: str, text: str, line: int, problem: str
) -> None:
    error = settings_error(tmp_path, type_name, text)
    assert f"block.yaml:{line}:" in str(error)
    assert problem in str(error)


@pytest.mark.parametrize("type_name", ["webdav", "http"])
@pytest.mark.parametrize("password", ["hunter2-inline", "'31337.5'", "31337.5", "'env:'"])
def test_an_inline_password_is_refused_without_being_echoed(
    tmp_path: Path, type_name: str, password: str
) -> None:
    error = settings_error(
        tmp_path, type_name, f"url: https://h/\nusername: alice\npassword: {password}\n"
    )
    assert "block.yaml:3: password" in str(error)
    assert "env:NAME or file:PATH" in str(error)
    shown = str(error) + error.hint
    assert "hunter2" not in shown
    assert "31337" not in shown


def test_credentials_in_the_url_are_refused_without_being_echoed(tmp_path: Path) -> None:
    error = settings_error(tmp_path, "webdav", "url: https://alice:hunter2@h/dav/\n")
    assert "block.yaml:1: url" in str(error)
    assert "hunter2" not in str(error) + error.hint


def test_plain_http_is_fine_without_credentials_and_on_loopback(tmp_path: Path) -> None:
    for text in (
        "url: http://mirror.example.org/news\n",
        "url: http://127.0.0.1:8080/news/\nusername: a\npassword: env:X\n",
        "url: http://localhost/news/\nusername: a\n",
        "url: https://h/\nusername: a\npassword: file:secret.txt\n",
    ):
        path = tmp_path / "ok.yaml"
        path.write_text(text, encoding="utf-8")
        settings = backend_type("webdav").parse_settings(load_yaml(path), tmp_path)
        assert settings.endpoint.url.endswith("/")


def test_secrets_resolve_at_create_with_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MIRROR_TEST_UNSET_VARIABLE"):
        backend_for(
            tmp_path,
            "webdav",
            "url: https://h/\nusername: a\npassword: env:MIRROR_TEST_UNSET_VARIABLE\n",
        )
    (tmp_path / "token").write_text("Bearer abc\r\nX-Evil: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line breaks") as caught:
        backend_for(tmp_path, "http", "url: https://h/\nheaders:\n  Authorization: file:token\n")
    assert "abc" not in str(caught.value)
    (tmp_path / "password").write_text("from-a-file\n", encoding="utf-8")
    backend = backend_for(
        tmp_path, "http", "url: https://h/\nusername: a\npassword: file:password\n"
    )
    assert "from-a-file" not in repr(vars(backend))
