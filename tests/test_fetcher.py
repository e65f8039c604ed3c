"""`DeadlineFetcher` meets python-tuf's expectations of a fetcher, and resumes broken downloads."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tuf.api import exceptions

from mirror import timedhttp
from mirror.client.transport import DeadlineFetcher

BODY = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves /ok, /endless, /trickle, /gzip, /missing, /flaky (drops once), /norange."""

    flaky_calls = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        route = self.path
        if route == "/ok":
            self._send(200, BODY)
        elif route == "/missing":
            self._send(404, b"no")
        elif route == "/gzip":
            self._send(200, b"x" * 10, extra={"Content-Encoding": "gzip"})
        elif route == "/endless":
            self.send_response(200)
            self.end_headers()
            for _ in range(10_000):  # bounded: ~640 MB at most, the client stops far earlier
                try:
                    self.wfile.write(b"z" * 65536)
                except OSError:
                    return
        elif route == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"t")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
        elif route in ("/flaky", "/norange"):
            self._partial(allow_range=route == "/flaky")

    def _partial(self, *, allow_range: bool) -> None:
        wanted = self.headers.get("Range")
        if wanted and allow_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
            self.send_header("Content-Length", str(len(BODY) - start))
            self.end_headers()
            self.wfile.write(BODY[start:])
            return
        # First answer: promise everything, send a third, then drop the connection.
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY[: len(BODY) // 3])
        self.wfile.flush()
        self.connection.shutdown(2)

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """`Handler` on 127.0.0.1 (over ``tls`` when given): its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving() as url:
        yield url


@pytest.fixture
def fetcher() -> Iterator[DeadlineFetcher]:
    f = DeadlineFetcher(connect_timeout_s=2, read_timeout_s=2, download_budget_s=3)
    yield f
    f.close()


def test_download_within_length(server: str, fetcher: DeadlineFetcher) -> None:
    assert fetcher.download_bytes(f"{server}/ok", len(BODY)) == BODY
    assert fetcher.bytes_received == len(BODY)


def test_length_cap_is_enforced(server: str, fetcher: DeadlineFetcher) -> None:
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        fetcher.download_bytes(f"{server}/ok", 1000)


def test_endless_answer_stops_at_the_cap(server: str, fetcher: DeadlineFetcher) -> None:
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        fetcher.download_bytes(f"{server}/endless", 5_000_000)
    assert fetcher.bytes_received < 6_000_000


def test_trickle_is_cut_by_the_time_budget(server: str, fetcher: DeadlineFetcher) -> None:
    with pytest.raises(exceptions.SlowRetrievalError):
        fetcher.download_bytes(f"{server}/trickle", 1000)


def test_http_errors_and_refused_connections(server: str, fetcher: DeadlineFetcher) -> None:
    with pytest.raises(exceptions.DownloadHTTPError) as error:
        fetcher.download_bytes(f"{server}/missing", 1000)
    assert error.value.status_code == 404
    with pytest.raises(exceptions.DownloadError):
        fetcher.download_bytes("http://127.0.0.1:9/x", 1000)
    with pytest.raises(exceptions.DownloadError):
        fetcher.download_bytes(f"{server}/gzip", 1000)
    with pytest.raises(exceptions.DownloadError):
        fetcher.download_bytes("ftp://127.0.0.1/x", 1000)


def test_broken_download_resumes_with_range(server: str, fetcher: DeadlineFetcher) -> None:
    assert fetcher.download_bytes(f"{server}/flaky", len(BODY)) == BODY


def test_resume_is_not_faked_when_the_server_ignores_range(
    server: str, fetcher: DeadlineFetcher
) -> None:
    with pytest.raises(exceptions.DownloadError):
        fetcher.download_bytes(f"{server}/norange", len(BODY))


def test_file_urls(tmp_path: Path, fetcher: DeadlineFetcher) -> None:
    (tmp_path / "a.json").write_bytes(b"{}")
    assert fetcher.download_bytes((tmp_path / "a.json").as_uri(), 10) == b"{}"
    with pytest.raises(exceptions.DownloadHTTPError):
        fetcher.download_bytes((tmp_path / "nope").as_uri(), 10)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "socket"])
def test_a_file_mirror_serves_only_regular_files_and_never_hangs(
    tmp_path: Path, fetcher: DeadlineFetcher, kind: str
) -> None:
    """A FIFO (or any non-regular file) on a USB stick must not hold the reader."""
    import os
    import socket

    path = tmp_path / "targets" / "x.html"
    path.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    started = time.monotonic()
    with pytest.raises(exceptions.DownloadError, match="not a regular file"):
        fetcher.download_bytes(path.as_uri(), 1024)
    assert time.monotonic() - started < 2
    (tmp_path / "ok.txt").write_bytes(b"fine")
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "ok.txt")
    assert fetcher.download_bytes(link.as_uri(), 1024) == b"fine"  # a link to a regular file


def _self_signed_server_context(folder: Path) -> ssl.SSLContext:
    """TLS for 127.0.0.1 with a certificate no authority signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_pools_share_one_tls_context_and_each_still_refuses_an_unsigned_certificate(
    tmp_path: Path,
) -> None:
    """The context is made once per process and shared: sharing must not loosen it."""
    with serving(_self_signed_server_context(tmp_path)) as base:
        for _ in range(2):
            fetcher = DeadlineFetcher(connect_timeout_s=2, read_timeout_s=2, download_budget_s=3)
            try:
                with pytest.raises(exceptions.DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
                    fetcher.download_bytes(f"{base}/ok", len(BODY))
            finally:
                fetcher.close()
    shared = timedhttp.verified_tls()
    assert shared is timedhttp.verified_tls()
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname
