"""What the SFTP and git backends promise beyond the shared conformance suite."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncssh
import pytest
import yaml

from mirror.backends import Backend, CallLimits, backend_type
from mirror.backends.git import GitBackend
from mirror.backends.sftp import SFTPBackend
from mirror.cli import main
from mirror.errors import ConfigError, MirrorAuthError, StorageError, TransportError
from mirror.yamlnodes import load_yaml
from tests.conftest import Publisher, make_config
from tests.servers import MISSING, MirrorServer, serve, watching
from tests.servers.git import make_pages_repository
from tests.servers.sftp import PASSWORD, backend_from_yaml, public_line, write_client_key


def run(backend: Backend, body: Callable[[Backend], Awaitable[None]]) -> None:
    """Run ``body`` against ``backend`` in a fresh event loop, closing the backend afterwards."""

    async def main() -> None:
        try:
            await body(backend)
        finally:
            await backend.close()

    asyncio.run(main())


def variant(server: MirrorServer, folder: Path, name: str, **changes: Any) -> Backend:
    """A backend for ``server`` with some settings changed (None removes a setting)."""
    settings = yaml.safe_load(server.settings_yaml)
    for key, value in changes.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return backend_from_yaml(server.type_name, name, yaml.safe_dump(settings), folder)


def server_fingerprint(server: MirrorServer) -> str:
    """The SHA-256 fingerprint of the host key pinned in the provider's known_hosts file."""
    known_hosts = Path(yaml.safe_load(server.settings_yaml)["known_hosts"])
    key_text = known_hosts.read_text(encoding="ascii").split(" ", 1)[1]
    fingerprint: str = asyncssh.import_public_key(key_text).get_fingerprint("sha256")
    return fingerprint


def parse(tmp_path: Path, type_name: str, block: str) -> Any:
    """Parse a settings block the way the config does (for config error tests)."""
    config = tmp_path / "mirror.yaml"
    config.write_text(f"{type_name}:\n{block}", encoding="utf-8")
    kind = backend_type(type_name)
    return kind.parse_settings(load_yaml(config).value[type_name], tmp_path)


# --- SFTP ---------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["sftp-asyncssh", "sftp-openssh"])
def sftp_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorServer]:
    with serve(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def asyncssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorServer]:
    with serve("sftp-asyncssh", tmp_path_factory.mktemp("asyncssh-only")) as running:
        yield running


def test_sftp_fingerprint_pin_works(sftp_server: MirrorServer, tmp_path: Path) -> None:
    backend = variant(
        sftp_server,
        tmp_path,
        "pinned",
        known_hosts=None,
        host_key_fingerprint=server_fingerprint(sftp_server),
    )

    async def body(backend: Backend) -> None:
        await backend.put("pinned/fingerprint.txt", b"pinned", size=6)
        assert await backend.get("pinned/fingerprint.txt") == b"pinned"

    run(backend, body)


def test_sftp_host_key_mismatch_is_an_auth_error(sftp_server: MirrorServer, tmp_path: Path) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    backend = variant(
        sftp_server, tmp_path, "impostor", known_hosts=None, host_key_fingerprint=stranger
    )

    async def body(backend: Backend) -> None:
        with pytest.raises(MirrorAuthError, match="host key does not match"):
            await backend.put("never.txt", b"no", size=2)

    run(backend, body)


def test_sftp_known_hosts_with_another_key_is_an_auth_error(
    sftp_server: MirrorServer, tmp_path: Path
) -> None:
    port = yaml.safe_load(sftp_server.settings_yaml)["port"]
    other = asyncssh.generate_private_key("ssh-ed25519")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {public_line(other)}\n", encoding="ascii")
    backend = variant(sftp_server, tmp_path, "wrong-known-hosts", known_hosts=str(known_hosts))

    async def body(backend: Backend) -> None:
        with pytest.raises(MirrorAuthError, match="host key does not match the known_hosts"):
            await backend.stat("anything.txt")

    run(backend, body)


def test_sftp_refused_connection_is_a_transport_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once the socket is closed
    key = tmp_path / "key"
    write_client_key(key)
    settings = (
        f"host: 127.0.0.1\nport: {port}\nusername: u\npath: /\nprivate_key: file:{key}\n"
        f"host_key_fingerprint: {asyncssh.generate_private_key('ssh-ed25519').get_fingerprint()}\n"
    )
    backend = backend_from_yaml("sftp", "closed", settings, tmp_path)

    async def body(backend: Backend) -> None:
        with pytest.raises(TransportError) as caught:
            await backend.stat("x.txt")
        assert not isinstance(caught.value, MirrorAuthError)
        assert "refused" in str(caught.value)

    run(backend, body)


def test_sftp_password_login_and_wrong_password(
    asyncssh_server: MirrorServer, tmp_path: Path
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    good = variant(
        asyncssh_server, tmp_path, "password", private_key=None, password=f"file:{password_file}"
    )

    async def works(backend: Backend) -> None:
        await backend.put("password/ok.txt", b"ok", size=2)
        assert await backend.get("password/ok.txt") == b"ok"

    run(good, works)

    wrong_password = "not-the-password-" + "x" * 8
    os.environ["MIRROR_TEST_SFTP_WRONG_PASSWORD"] = wrong_password
    try:
        bad = variant(
            asyncssh_server,
            tmp_path,
            "wrong-password",
            private_key=None,
            password="env:MIRROR_TEST_SFTP_WRONG_PASSWORD",  # noqa: S106 - a reference
        )
    finally:
        del os.environ["MIRROR_TEST_SFTP_WRONG_PASSWORD"]

    async def refused(backend: Backend) -> None:
        with pytest.raises(MirrorAuthError, match="refused the login") as caught:
            await backend.stat("password/ok.txt")
        assert wrong_password not in str(caught.value)
        assert wrong_password not in repr(backend.__dict__)

    run(bad, refused)


def test_sftp_reconnects_after_a_drop_and_across_event_loops(
    asyncssh_server: MirrorServer,
) -> None:
    backend = asyncssh_server.make_backend()
    assert isinstance(backend, SFTPBackend)

    async def first() -> None:
        try:
            await backend.put("reconnect/a.txt", b"a", size=1)
            assert backend._connection is not None
            backend._connection.close()  # the server (or a middlebox) drops us
            await backend._connection.wait_closed()
            assert await backend.get("reconnect/a.txt") == b"a"
        finally:
            await backend.close()

    async def second() -> None:
        try:
            assert await backend.get("reconnect/a.txt") == b"a"
        finally:
            await backend.close()

    asyncio.run(first())
    asyncio.run(second())  # the same backend object, used again from a new event loop


def spy_on_renames(backend: SFTPBackend) -> list[str]:
    """Record which of posix_rename, rename and remove the backend's SFTP session is asked for."""
    sftp = backend._sftp
    assert sftp is not None
    calls: list[str] = []

    def recording(name: str, method: Callable[..., Awaitable[None]]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> None:
            calls.append(name)
            await method(*args, **kwargs)

        return call

    for name in ("posix_rename", "rename", "remove"):
        setattr(sftp, name, recording(name, getattr(sftp, name)))
    return calls


def test_sftp_replaces_with_posix_rename(sftp_server: MirrorServer) -> None:
    backend = sftp_server.make_backend()
    path = "posix-rename/timestamp.json"
    versions = [bytes([65 + i]) * (1024 * 1024) for i in range(2)]
    expected = {hashlib.sha256(version).hexdigest() for version in versions}

    async def body(backend: Backend) -> None:
        assert isinstance(backend, SFTPBackend)
        await backend.put(path, versions[0], size=len(versions[0]))
        calls = spy_on_renames(backend)
        with watching(sftp_server, path) as reads:
            for round_number in range(6):
                version = versions[(round_number + 1) % 2]
                await backend.put(path, version, size=len(version))
            await asyncio.to_thread(reads.wait_for_polls, 1)
        # One atomic rename over the old file per put; the old file is never removed first.
        assert calls == ["posix_rename"] * 6
        assert set(reads.seen) <= expected  # never partial, never missing

    run(backend, body)


def test_sftp_without_posix_rename_falls_back_to_remove_then_rename(
    asyncssh_server: MirrorServer,
) -> None:
    backend = asyncssh_server.make_backend()
    path = "plain-rename/timestamp.json"
    first = b"1"
    versions = [bytes([65 + i]) * (1024 * 1024) for i in range(2)]
    # The watcher may still read the first file before the next one replaces it: whole.
    expected = {hashlib.sha256(version).hexdigest() for version in [first, *versions]}

    async def body(backend: Backend) -> None:
        assert isinstance(backend, SFTPBackend)
        await backend.put(path, first, size=len(first))
        assert backend._sftp is not None
        # Pretend the server never offered posix-rename@openssh.com (nor SFTPv5 rename).
        backend._sftp._handler._supports_posix_rename = False
        calls = spy_on_renames(backend)
        with watching(asyncssh_server, path) as reads:
            for version in versions:
                await backend.put(path, version, size=len(version))
            await asyncio.to_thread(reads.wait_for_polls, 1)
        assert await backend.get(path) == versions[-1]
        # Asked once, refused, remembered: after that straight to the fallback.
        assert calls == ["posix_rename", "remove", "rename", "remove", "rename"]
        # Readers may miss the file for a moment, but never see half of it.
        assert set(reads.seen) <= expected | {MISSING}
        assert [info.path for info in await backend.list("plain-rename/")] == [path]

    run(backend, body)


def test_sftp_failed_upload_leaves_no_temporary_file(
    asyncssh_server: MirrorServer, tmp_path: Path
) -> None:
    backend = asyncssh_server.make_backend()

    async def body(backend: Backend) -> None:
        await backend.put("failed/keep.txt", b"keep", size=4)
        with pytest.raises(StorageError):
            await backend.put("failed/gone.txt", tmp_path / "no-such-file", size=1)
        assert [info.path for info in await backend.list("failed/")] == ["failed/keep.txt"]

    run(backend, body)
    # The provider's chroot sits next to its known_hosts file; look at it directly.
    settings = yaml.safe_load(asyncssh_server.settings_yaml)
    folder = Path(settings["known_hosts"]).parent / "root" / "failed"
    assert sorted(child.name for child in folder.iterdir()) == ["keep.txt"]


def test_sftp_listing_prefix_is_a_string_prefix(asyncssh_server: MirrorServer) -> None:
    backend = asyncssh_server.make_backend()

    async def body(backend: Backend) -> None:
        for name in ("pfx/ab/1", "pfx/abc/2", "pfx/b/3", "pfx/ab.txt"):
            await backend.put(name, b"x", size=1)
        # A temporary file left by an interrupted upload is not a mirror file.
        settings = yaml.safe_load(asyncssh_server.settings_yaml)
        chroot = Path(settings["known_hosts"]).parent / "root"
        (chroot / "pfx/ab/.mirror-upload-0123456789abcdef").write_bytes(b"partial")
        listed = sorted(info.path for info in await backend.list("pfx/ab"))
        assert listed == ["pfx/ab.txt", "pfx/ab/1", "pfx/abc/2"]
        assert await backend.list("pfx/none/") == []

    run(backend, body)


SFTP_BASE = "  host: 127.0.0.1\n  username: news\n  path: /srv\n  private_key: file:key\n"


@pytest.mark.parametrize(
    ("block", "located", "problem"),
    [
        (
            "  host: h\n  username: u\n  path: /\n  password: hunter2\n  known_hosts: kh\n",
            "mirror.yaml:5: sftp.password",
            "not the secret itself",
        ),
        (
            "  host: h\n  username: u\n  path: /\n  private_key: |\n    -----BEGIN\n"
            "  known_hosts: kh\n",
            "mirror.yaml:5: sftp.private_key",
            "not the secret itself",
        ),
        (SFTP_BASE, "mirror.yaml:2: sftp", "exactly one of known_hosts or host_key_fingerprint"),
        (
            SFTP_BASE + "  known_hosts: kh\n  host_key_fingerprint: SHA256:" + "A" * 43 + "\n",
            "mirror.yaml:2: sftp",
            "exactly one of",
        ),
        (SFTP_BASE + "  host_key_fingerprint: abc\n", "sftp.host_key_fingerprint", "SHA-256"),
        (SFTP_BASE + "  known_hosts: kh\n  port: 70000\n", "mirror.yaml:7: sftp.port", "between"),
        (SFTP_BASE + "  known_hosts: kh\n  pasword: env:X\n", "sftp.pasword", "not a known"),
        (
            "  host: h\n  username: u\n  path: /\n  known_hosts: kh\n",
            "mirror.yaml:2: sftp",
            "needs private_key or password",
        ),
        (
            "  username: u\n  path: /\n  password: env:P\n  known_hosts: kh\n",
            "mirror.yaml:2: sftp",
            "needs the key 'host'",
        ),
    ],
)
def test_sftp_config_errors_are_located(
    tmp_path: Path, block: str, located: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, "sftp", block)
    message = str(caught.value)
    assert located in message
    assert problem in message
    assert "hunter2" not in message


def test_sftp_config_missing_files_are_config_errors(tmp_path: Path) -> None:
    kind = backend_type("sftp")
    settings = parse(tmp_path, "sftp", SFTP_BASE + "  known_hosts: known_hosts\n")
    with pytest.raises(ConfigError, match=r"private key of mirror m file .* cannot be read"):
        kind.create("m", settings, tmp_path, CallLimits())
    (tmp_path / "key").write_text("not a key\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a private key"):
        kind.create("m", settings, tmp_path, CallLimits())
    write_client_key(tmp_path / "key")
    with pytest.raises(ConfigError, match=r"known_hosts file .* cannot be read"):
        kind.create("m", settings, tmp_path, CallLimits())
    (tmp_path / "known_hosts").write_text("", encoding="ascii")
    assert isinstance(kind.create("m", settings, tmp_path, CallLimits()), SFTPBackend)


# --- git ----------------------------------------------------------------------------
def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )
    return result.stdout


@pytest.fixture
def pages(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh bare repository (with its publishing hook) and its www folder."""
    return make_pages_repository(tmp_path / "server")


def git_backend(
    bare: Path, folder: Path, name: str = "news", *, path: str = "site", **extra: str
) -> GitBackend:
    settings = f"repository: {bare.as_uri()}\npath: '{path}'\n" + "".join(
        f"{key}: {value}\n" for key, value in extra.items()
    )
    backend = backend_from_yaml("git", name, settings, folder)
    assert isinstance(backend, GitBackend)
    return backend


def commits(bare: Path, branch: str = "gh-pages") -> list[str]:
    return git("--git-dir", str(bare), "log", "--format=%s", branch).splitlines()


def test_git_one_commit_per_flush_and_none_without_changes(
    pages: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, www = pages
    backend = git_backend(bare, tmp_path / "config")

    async def body(backend: Backend) -> None:
        await backend.flush()  # nothing put yet: nothing to publish, and no error
        await backend.put("metadata/timestamp.json", b'{"v": 1}', size=8)
        await backend.put("targets/a.html", b"<p>a</p>", size=8)
        await backend.flush()
        await backend.flush()  # nothing changed: no commit, no push
        await backend.put("targets/a.html", b"<p>a</p>", size=8)  # same bytes again
        await backend.flush()
        await backend.put("metadata/timestamp.json", b'{"v": 2}', size=8)
        await backend.delete("targets/a.html")
        await backend.flush()

    run(backend, body)
    assert commits(bare) == [
        "Publish mirror news in site: 0 added, 1 changed, 1 removed",
        "Publish mirror news in site: 2 added, 0 changed, 0 removed",
    ]
    assert (www / "site/metadata/timestamp.json").read_bytes() == b'{"v": 2}'
    assert not (www / "site/targets/a.html").exists()
    log = git("--git-dir", str(bare), "log", "-1", "--format=%an <%ae>|%cn <%ce>", "gh-pages")
    assert log.strip() == "mirror <mirror@localhost>|mirror <mirror@localhost>"


def test_git_unflushed_changes_are_not_published_and_are_discarded(
    pages: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, www = pages
    folder = tmp_path / "config"

    async def put_only(backend: Backend) -> None:
        await backend.put("published.txt", b"yes", size=3)
        await backend.flush()
        await backend.put("pending.txt", b"crash before flush", size=18)

    run(git_backend(bare, folder), put_only)
    assert (www / "site/published.txt").exists()
    assert not (www / "site/pending.txt").exists()

    async def next_run(backend: Backend) -> None:
        # The clone is a cache of the remote: what was never pushed is not there.
        assert await backend.stat("pending.txt") is None
        assert await backend.get("published.txt") == b"yes"

    run(git_backend(bare, folder), next_run)


def test_git_keeps_other_content_and_merges_a_concurrent_writer(
    pages: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, www = pages
    # Someone else's site lives on the branch outside our folders.
    seed = tmp_path / "seed"
    git("clone", "-q", str(bare), str(seed))
    git("checkout", "-q", "-b", "gh-pages", cwd=seed)
    (seed / "index.html").write_text("site", encoding="utf-8")
    git("add", "index.html", cwd=seed)
    git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "site", cwd=seed)
    git("push", "-q", "origin", "gh-pages", cwd=seed)

    one = git_backend(bare, tmp_path / "one", "one", path="one")
    two = git_backend(bare, tmp_path / "two", "two", path="two")

    async def body() -> None:
        try:
            # Both clone the same tip; the second push is rejected and re-applied on top.
            assert await one.stat("x.txt") is None
            assert await two.stat("x.txt") is None
            await one.put("x.txt", b"one", size=3)
            await two.put("x.txt", b"two", size=3)
            await one.flush()
            await two.flush()
        finally:
            await one.close()
            await two.close()

    asyncio.run(body())
    assert (www / "index.html").read_text(encoding="utf-8") == "site"
    assert (www / "one/x.txt").read_bytes() == b"one"
    assert (www / "two/x.txt").read_bytes() == b"two"
    assert commits(bare)[:2] == [
        "Publish mirror two in two: 1 added, 0 changed, 0 removed",
        "Publish mirror one in one: 1 added, 0 changed, 0 removed",
    ]


def test_git_publishes_exact_bytes_despite_gitattributes_and_gitignore(
    pages: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, _ = pages
    seed = tmp_path / "seed"
    git("clone", "-q", str(bare), str(seed))
    git("checkout", "-q", "-b", "gh-pages", cwd=seed)
    (seed / ".gitattributes").write_text("* text eol=crlf\n", encoding="utf-8")
    (seed / ".gitignore").write_text("*.zip\n", encoding="utf-8")
    git("add", ".", cwd=seed)
    git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "attrs", cwd=seed)
    git("push", "-q", "origin", "gh-pages", cwd=seed)
    text = "line one\r\nline two\nстрока три\n".encode()  # noqa: RUF001 - Cyrillic on purpose

    async def body(backend: Backend) -> None:
        await backend.put("article.html", text, size=len(text))
        await backend.put("edition.zip", b"PK\x03\x04", size=4)
        await backend.flush()

    run(git_backend(bare, tmp_path / "config"), body)
    show = ["git", "--git-dir", str(bare), "show"]
    blob = subprocess.run([*show, "gh-pages:site/article.html"], capture_output=True, check=True)
    assert blob.stdout == text
    archive = subprocess.run([*show, "gh-pages:site/edition.zip"], capture_output=True, check=True)
    assert archive.stdout == b"PK\x03\x04"


def test_git_hostile_symlink_in_the_branch_is_never_followed(
    pages: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, _ = pages
    outside = tmp_path / "outside"
    outside.mkdir()
    seed = tmp_path / "seed"
    git("clone", "-q", str(bare), str(seed))
    git("checkout", "-q", "-b", "gh-pages", cwd=seed)
    (seed / "site").mkdir()
    (seed / "site/evil").symlink_to(outside)
    git("add", ".", cwd=seed)
    git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "evil", cwd=seed)
    git("push", "-q", "origin", "gh-pages", cwd=seed)

    async def body(backend: Backend) -> None:
        with pytest.raises(StorageError):
            await backend.put("evil/planted.txt", b"x", size=1)
        # The link arrives as a plain file holding its target's name.
        assert await backend.get("evil") == str(outside).encode()

    run(git_backend(bare, tmp_path / "config"), body)
    assert list(outside.iterdir()) == []


def test_git_refuses_paths_into_the_git_folder(pages: tuple[Path, Path], tmp_path: Path) -> None:
    bare, _ = pages

    async def body(backend: Backend) -> None:
        with pytest.raises(StorageError, match=r"\.git"):
            await backend.put("x/.git/config", b"[core]\n", size=7)

    run(git_backend(bare, tmp_path / "config", path=""), body)


def test_git_work_dir_has_one_user_at_a_time(pages: tuple[Path, Path], tmp_path: Path) -> None:
    bare, _ = pages
    first = git_backend(bare, tmp_path / "config")
    second = git_backend(bare, tmp_path / "config")

    async def body() -> None:
        try:
            await first.stat("a.txt")
            with pytest.raises(TransportError, match="in use by another run"):
                await second.stat("a.txt")
        finally:
            await first.close()
            await second.close()

    asyncio.run(body())


def test_git_unreachable_repository_is_a_one_line_transport_error(tmp_path: Path) -> None:
    backend = backend_from_yaml(
        "git", "gone", f"repository: {tmp_path / 'no-such-repo.git'}\n", tmp_path
    )

    async def body(backend: Backend) -> None:
        with pytest.raises(TransportError) as caught:
            await backend.stat("a.txt")
        assert not isinstance(caught.value, MirrorAuthError)
        assert "\n" not in str(caught.value)
        assert "does not appear to be a git repository" in str(caught.value)

    run(backend, body)


def test_git_hanging_remote_times_out_and_git_is_killed(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # and never say a word
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    backend = backend_from_yaml(
        "git",
        "hanging",
        f"repository: git://127.0.0.1:{port}/repo.git\n",
        tmp_path,
        limits=CallLimits(timeout_s=1.0),
    )

    async def body(backend: Backend) -> None:
        with pytest.raises(TransportError, match="longer than 1 s"):
            await backend.stat("a.txt")

    try:
        run(backend, body)
    finally:
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()
        listener.close()
    survivors = subprocess.run(
        ["pgrep", "-f", f"127.0.0.1:{port}/repo.git"], check=False, capture_output=True, text=True
    )
    assert survivors.stdout == ""


@pytest.mark.parametrize(
    ("block", "located", "problem"),
    [
        ("  branch: main\n", "mirror.yaml:2: git", "needs the key 'repository'"),
        (
            "  repository: https://bot:hunter2@example.org/r.git\n",
            "mirror.yaml:2: git.repository",
            "contains a password",
        ),
        (
            "  repository: ext::sh -c touch% /tmp/pwned\n",
            "mirror.yaml:2: git.repository",
            "remote helper",
        ),
        ("  repository: r\n  branch: --force\n", "mirror.yaml:3: git.branch", "branch name"),
        ("  repository: r\n  branch: a..b\n", "mirror.yaml:3: git.branch", "branch name"),
        ("  repository: r\n  path: ../up\n", "mirror.yaml:3: git.path", "relative folder"),
        ("  repository: r\n  path: x/.git\n", "mirror.yaml:3: git.path", ".git"),
        ("  repository: r\n  author_email: a>b\n", "git.author_email", "must not contain"),
        ("  repository: r\n  brnch: x\n", "mirror.yaml:3: git.brnch", "not a known setting"),
    ],
)
def test_git_config_errors_are_located(
    tmp_path: Path, block: str, located: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, "git", block)
    assert located in str(caught.value)
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_git_settings_defaults_and_paths(tmp_path: Path) -> None:
    settings = parse(tmp_path, "git", "  repository: repos/pages.git\n")
    assert settings.repository == str((tmp_path / "repos/pages.git").resolve())
    assert (settings.branch, settings.path) == ("gh-pages", "")
    assert (settings.author_name, settings.author_email) == ("mirror", "mirror@localhost")
    backend = backend_type("git").create("news", settings, tmp_path, CallLimits())
    assert isinstance(backend, GitBackend)
    assert backend.work_dir == tmp_path / ".mirror-git" / "news"
    scp = parse(tmp_path, "git", "  repository: git@github.com:org/site.git\n  path: /news/\n")
    assert (scp.repository, scp.path) == ("git@github.com:org/site.git", "news")


# --- the whole pipeline -----------------------------------------------------------
def mirror_entry(server: MirrorServer, name: str) -> str:
    block = "".join(f"      {line}\n" for line in server.settings_yaml.splitlines())
    return (
        f"  - name: {name}\n    type: {server.type_name}\n    public_url: {server.public_url}\n"
        f"    limits: {{timeout_s: 20, retries: 2, deadline_s: 120}}\n"
        f"    {server.type_name}:\n{block}"
    )


def test_push_to_sftp_and_git_mirrors_verifies_and_reruns_upload_nothing(
    new_publisher: Callable[..., Publisher],
    sftp_server: MirrorServer,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    with serve("git-bare", tmp_path_factory.mktemp("git-push")) as pages_server:
        publisher = new_publisher()
        # Each run publishes into a folder of its own on the shared SFTP server.
        settings = yaml.safe_load(sftp_server.settings_yaml)
        folder = f"push-{tmp_path.name}"
        settings["path"] = f"{settings['path'].rstrip('/')}/{folder}"
        sftp = MirrorServer(
            flavour=sftp_server.flavour,
            type_name="sftp",
            settings_yaml=yaml.safe_dump(settings),
            public_url=f"{sftp_server.public_url}{folder}/",
            make_backend=sftp_server.make_backend,
            make_bad_credentials_backend=None,
        )
        mirrors = mirror_entry(sftp, "ssh") + mirror_entry(pages_server, "pages")
        config = make_config(publisher.home, mirrors=mirrors)
        publisher = Publisher(publisher.home, config)
        publisher.build()
        bare = Path(urlsplit(yaml.safe_load(pages_server.settings_yaml)["repository"]).path)

        code, results = push_report(publisher, tmp_path / "first.json")
        assert code == 0, results
        assert results["ssh"]["verified"] is True, results["ssh"]
        assert results["pages"]["verified"] is True, results["pages"]
        assert results["ssh"]["uploaded_files"] > 0
        history = commits(bare)
        assert len(history) == 3  # one commit per publishing phase: targets, metadata, pointers

        code, results = push_report(publisher, tmp_path / "second.json")
        assert code == 0, results
        assert results["ssh"]["uploaded_files"] == 0
        assert results["pages"]["uploaded_files"] == 0
        assert commits(bare) == history


def push_report(publisher: Publisher, report: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    code = main(["--config", str(publisher.config.file), "push", "--json", str(report)])
    document = json.loads(report.read_text(encoding="utf-8"))
    return code, {entry["mirror"]: entry for entry in document["mirrors"]}
