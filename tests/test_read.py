"""`mirror read` as a reader meets it: open, list and serve a verified edition, offline."""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mirror.build import BuildResult
from mirror.cli import main
from mirror.csp import CONTENT_SECURITY_POLICY
from mirror.reader.read import EditionServer, open_edition, parse_index
from mirror.reader.store import LibraryEdition, ReaderStore
from mirror.reader.verify_file import load_pinned_root
from tests.conftest import Publisher

CHROMIUM = "/usr/bin/chromium"
TITLES = ["Article number 0", "Статья номер 1", "Article number 2", "Статья номер 3"]
"""The `built` fixture's four articles (tests/conftest.py `write_articles`)."""
RUSSIAN_BODY = "Это текст статьи на русском языке."


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def library(
    built: tuple[Publisher, BuildResult], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, LibraryEdition]:
    """A reader state whose library holds the `built` edition (verified from its ZIP)."""
    publisher, result = built
    state_dir = tmp_path_factory.mktemp("reader") / "state"
    _, edition = open_edition(
        ReaderStore(state_dir),
        str(result.zip_path),
        pinned=load_pinned_root(publisher.root_json),
        now=datetime.now(UTC),
    )
    return state_dir, edition


# --- opening -----------------------------------------------------------------------------


def test_read_verifies_a_file_into_the_library_and_prints_its_url(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, result = built
    state = str(tmp_path / "state")
    with_file = ("read", str(result.zip_path), "--root", str(publisher.root_json))
    code, out, err = run(capsys, *with_file, "--state", state)
    assert code == 0, err
    url = out.strip()
    assert len(out.splitlines()) == 1  # one line: can be piped to a browser
    assert url.startswith("file:///")
    assert url.endswith(f"/library/{result.eid}/index.html")
    assert Path(urlsplit(url).path).is_file()
    assert "Test Newsroom" in err
    assert result.eid in err
    assert f"{result.created:%Y-%m-%d}" in err

    # Afterwards: the newest edition, by id, and the same file again all open the same copy.
    for argv in (("read",), ("read", result.eid), with_file):
        code, out, err = run(capsys, *argv, "--state", state)
        assert (code, out.strip()) == (0, url), err
    editions_dir = Path(urlsplit(url).path).parent.parent
    assert [p.name for p in editions_dir.iterdir()] == [result.eid]  # no staging leftovers


def test_read_json_describes_the_edition(
    library: tuple[Path, LibraryEdition], capsys: pytest.CaptureFixture[str]
) -> None:
    state, edition = library
    code, out, _ = run(capsys, "read", "--state", str(state), "--json")
    assert code == 0
    document = json.loads(out)
    assert document["edition"] == edition.eid
    assert document["article_count"] == 4
    assert document["url"] == edition.index.resolve().as_uri()


def test_without_a_library_the_hint_says_how_to_get_an_edition(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, result = built
    code, out, err = run(capsys, "read", "--state", str(tmp_path / "empty"))
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert lines[0].startswith("mirror: there is no edition in your library")
    assert "mirror fetch --root ROOT.json --mirror URL" in lines[1]
    assert "mirror read FILE.zip --root ROOT.json" in lines[1]

    code, _, err = run(capsys, "read", str(result.zip_path), "--state", str(tmp_path / "empty"))
    assert code == 2
    assert "--root" in err


def test_an_edition_not_in_the_library_is_named(
    library: tuple[Path, LibraryEdition], capsys: pytest.CaptureFixture[str]
) -> None:
    state, edition = library
    code, _, err = run(capsys, "read", "2020-01-01-v99", "--state", str(state))
    assert code == 2
    assert "2020-01-01-v99 is not in your library" in err
    assert edition.eid in err  # the hint lists what is there


def test_a_tampered_file_is_refused_and_the_library_is_untouched(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, result = built
    data = bytearray(result.zip_path.read_bytes())
    with zipfile.ZipFile(result.zip_path) as archive:  # flip a byte inside an article's data
        member = archive.getinfo("articles/article-001.html")
    header = 30 + len(member.filename.encode()) + len(member.extra)
    data[member.header_offset + header + member.compress_size // 2] ^= 0x20
    tampered = tmp_path / result.zip_path.name
    tampered.write_bytes(bytes(data))
    state = tmp_path / "state"
    code, out, err = run(
        capsys, "read", str(tampered), "--root", str(publisher.root_json), "--state", str(state)
    )
    assert code in (10, 14), err
    assert out == ""
    assert not list(state.glob("publishers/*/library/*"))  # no edition, no staging leftovers


def test_several_publishers_need_root(
    built: tuple[Publisher, BuildResult],
    library: tuple[Path, LibraryEdition],
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state"
    shutil.copytree(library[0], state)
    other = new_publisher(1)
    other_result = other.build()
    code, _, err = run(
        capsys, "read", str(other_result.zip_path), "--root", str(other.root_json),
        "--state", str(state),
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "read", "--state", str(state))
    assert code == 2
    assert "--root" in err
    code, out, _ = run(capsys, "read", "--state", str(state), "--root", str(built[0].root_json))
    assert code == 0
    assert f"/library/{library[1].eid}/" in out


# --- listing --------------------------------------------------------------------------------


def test_list_shows_the_editions_and_the_articles(
    library: tuple[Path, LibraryEdition], capsys: pytest.CaptureFixture[str]
) -> None:
    state, edition = library
    code, out, _ = run(capsys, "read", "--list", "--state", str(state))
    assert code == 0
    assert edition.eid in out
    for title in TITLES:
        assert title in out
    assert "articles/article-001.html" in out

    code, out, _ = run(capsys, "read", "--list", "--json", "--state", str(state))
    assert code == 0
    document = json.loads(out)
    assert [e["edition"] for e in document["editions"]] == [edition.eid]
    assert document["editions"][0]["article_count"] == 4
    articles = {a["title"]: a for a in document["articles"]}
    assert sorted(articles) == sorted(TITLES)
    russian = articles["Статья номер 1"]
    assert russian["language"] == "ru"
    assert russian["date"] == "2026-11-02T10:00:00Z"
    assert russian["author"] == "Reporter 1"
    assert russian["file"] == "articles/article-001.html"
    assert (edition.path / russian["file"]).is_file()


def test_the_index_parser_keeps_only_our_article_links() -> None:
    entry = (
        '<li><article lang="en" dir="ltr"><h2><a href="{href}">T &amp; more</a></h2>'
        '<p class="meta"><time datetime="2026-01-01T00:00:00Z">1 January</time>'
        '<span>A</span></p><p class="summary">S</p></article></li>'
    )
    hrefs = ["articles/good.html", "../secret.html", "https://evil.example/x.html",
             "articles/../x.html", "articles/.hidden.html", "articles/a/b.html"]  # fmt: skip
    page = "<main><ol>" + "".join(entry.format(href=h) for h in hrefs) + "</ol></main>"
    outside = entry.format(href="articles/outside.html")  # not inside <main>
    entries = parse_index((outside + page).encode())
    assert [e.file for e in entries] == ["articles/good.html"]
    assert entries[0].title == "T & more"
    assert entries[0].author == "A"


# --- serving --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_copy(
    library: tuple[Path, LibraryEdition], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EditionServer]:
    """An EditionServer over a private copy of the edition, with bait outside it."""
    _, edition = library
    tmp_path = tmp_path_factory.mktemp("served")
    folder = tmp_path / "site" / "edition"
    shutil.copytree(edition.path, folder)
    (tmp_path / "site" / "secret.txt").write_text("outside the edition\n")
    (folder / "escape.html").symlink_to(tmp_path / "site" / "secret.txt")
    (folder / "articles" / "escape-dir").symlink_to(tmp_path / "site")
    server = EditionServer(folder)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def request(
    server: EditionServer, path: str, *, method: str = "GET", host: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send ``path`` exactly as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"127.0.0.1:{server.port}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_serve_answers_the_index_and_an_article_with_strict_headers(
    served_copy: EditionServer,
) -> None:
    assert served_copy.server_address[0] == "127.0.0.1"
    status, headers, body = request(served_copy, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Статья номер 1".encode() in body
    status, _, body = request(served_copy, "/articles/article-001.html?utm=x")
    assert status == 200
    assert RUSSIAN_BODY.encode() in body
    status, headers, _ = request(served_copy, "/style.css")
    assert (status, headers["Content-Type"]) == (200, "text/css; charset=utf-8")
    status, headers, body = request(served_copy, "/", method="HEAD")
    assert status == 200
    assert int(headers["Content-Length"]) > 0
    assert body == b""


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/articles/../../secret.txt",
        "/articles/..%2f..%2fsecret.txt",
        "/articles/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..\\secret.txt",
        "/escape.html",  # a symlink to a file outside
        "/articles/escape-dir/secret.txt",  # a symlinked folder pointing outside
        "/articles/",  # no directory listings
        "/articles",
        "//etc/passwd",
        "/index.html%00.png",
        "/.mirror/targets.json",
        "http://127.0.0.1/../secret.txt",
    ],
)
def test_serve_refuses_escapes_and_listings(served_copy: EditionServer, path: str) -> None:
    status, headers, body = request(served_copy, path)
    assert status == 404
    assert b"outside the edition" not in body
    assert headers["Cache-Control"] == "no-store"


def test_serve_refuses_other_host_names_and_methods(served_copy: EditionServer) -> None:
    status, _, _ = request(served_copy, "/", host="attacker.example:80")  # DNS rebinding
    assert status == 421
    assert request(served_copy, "/", host=f"localhost:{served_copy.port}")[0] == 200
    assert request(served_copy, "/", method="POST")[0] == 501


def test_read_serve_runs_until_ctrl_c(library: tuple[Path, LibraryEdition]) -> None:
    state, _ = library
    process = subprocess.Popen(
        [sys.executable, "-m", "mirror", "read", "--serve", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no URL printed"
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            assert "Статья номер 3" in response.read().decode("utf-8")
        with urllib.request.urlopen(f"{url}articles/article-003.html", timeout=10) as response:  # noqa: S310
            assert RUSSIAN_BODY in response.read().decode("utf-8")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- headless Chromium as the independent judge ---------------------------------------------

BROWSER_SERVICE_HOSTS = frozenset(
    {
        "accounts.google.com",
        "clients2.google.com",
        "clientservices.googleapis.com",
        "content-autofill.googleapis.com",
        "optimizationguide-pa.googleapis.com",
        "redirector.gvt1.com",
        "safebrowsing.googleapis.com",
        "update.googleapis.com",
        "android.clients.google.com",
        "dl.google.com",
        "edgedl.me.gvt1.com",
        "www.gstatic.com",
        "www.google.com",
    }
)
"""Chromium's own background calls (time, sign-in, component updates), made whatever page is
open and despite ``--disable-background-networking``; measured with Chromium 156. The
recording proxy still sees them; they are told apart from page traffic by exact host."""


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards nothing and records each request's target."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    line = connection.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    continue
                if line:
                    self.seen.append(line)

    def hosts(self) -> set[str]:
        """Host names of everything requested (``CONNECT host:443`` or ``GET http://host/``)."""
        found = set()
        for line in self.seen:
            parts = line.split()
            target = parts[1] if len(parts) > 1 else ""
            found.add(
                target.rsplit(":", 1)[0] if parts[0] == "CONNECT" else urlsplit(target).hostname
            )
        return {host for host in found if host}

    def page_hosts(self) -> set[str]:
        """Hosts requested other than Chromium's own background services."""
        return self.hosts() - BROWSER_SERVICE_HOSTS

    def close(self) -> None:
        self._socket.close()


def chromium_dump_dom(url: str, profile: Path, proxy: RecordingProxy) -> str:
    completed = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>",
            "--dump-dom", url,
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is installed by .ci/run")
def test_chromium_reads_the_edition_from_file_urls_and_nothing_leaves_the_machine(
    library: tuple[Path, LibraryEdition], tmp_path: Path
) -> None:
    _, edition = library
    proxy = RecordingProxy()
    try:
        index = chromium_dump_dom(edition.index.resolve().as_uri(), tmp_path / "p1", proxy)
        for title in TITLES:
            assert title in index
        assert index.count("<article") == 4

        article = edition.path / "articles" / "article-001.html"
        page = chromium_dump_dom(article.resolve().as_uri(), tmp_path / "p2", proxy)
        assert "<h1>Статья номер 1</h1>" in page
        assert RUSSIAN_BODY in page
        assert 'lang="ru"' in page

        assert proxy.page_hosts() == set(), proxy.seen

        # Control: the same setup does see a page that reaches out.
        leaky = tmp_path / "leaky.html"
        leaky.write_text('<!doctype html><img src="http://leak.invalid/pixel.png">')
        chromium_dump_dom(leaky.as_uri(), tmp_path / "p3", proxy)
        assert proxy.page_hosts() == {"leak.invalid"}, proxy.seen
    finally:
        proxy.close()
