"""An asyncssh SFTP server on 127.0.0.1, chrooted to a folder that a stdlib HTTP server publishes.

Also home of two helpers the other SSH/git providers share: `serve_folder` (the
read-only public URL over a folder) and `backend_from_yaml` (a backend built the
way the config builds it, from a YAML settings block).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh

from mirror.backends import Backend, CallLimits, backend_type
from mirror.yamlnodes import load_yaml
from tests.servers import MirrorServer

USERNAME = "news"
PASSWORD = "correct-horse-sftp-password"  # noqa: S105 - the test server's own password
TEST_LIMITS = CallLimits(timeout_s=30.0)


# --- shared helpers ---------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """GET/HEAD only (the stdlib handler has no PUT or DELETE), without request logging."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_folder(root: Path) -> Iterator[str]:
    """Serve ``root`` read-only over HTTP on 127.0.0.1; yields the base URL (ends with "/")."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="public-url", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def sftp_mirror(
    flavour: str,
    *,
    port: int,
    username: str,
    path: str,
    keys: tuple[Path, Path, Path],
    public_url: str,
    workdir: Path,
) -> MirrorServer:
    """How `mirror` reaches an SFTP server on 127.0.0.1.

    ``keys`` is (known_hosts, an authorised client key, a key the server refuses).
    """
    known_hosts, client_key_file, bad_key_file = keys
    settings = (
        f"host: 127.0.0.1\nport: {port}\nusername: {username}\npath: {path}\n"
        f"known_hosts: {known_hosts}\n"
    )
    good = settings + f"private_key: file:{client_key_file}\n"
    bad = settings + f"private_key: file:{bad_key_file}\n"
    return MirrorServer(
        flavour=flavour,
        type_name="sftp",
        settings_yaml=good,
        public_url=public_url,
        make_backend=lambda: backend_from_yaml("sftp", flavour, good, workdir),
        make_bad_credentials_backend=lambda: backend_from_yaml(
            "sftp", f"{flavour}-bad", bad, workdir
        ),
    )


def backend_from_yaml(
    type_name: str,
    name: str,
    settings_yaml: str,
    folder: Path,
    *,
    limits: CallLimits = TEST_LIMITS,
) -> Backend:
    """Parse ``settings_yaml`` as the ``<type>:`` block of a config in ``folder`` and build it."""
    kind = backend_type(type_name)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.{type_name}.yaml"
    indented = "".join(f"  {line}\n" for line in settings_yaml.splitlines())
    config.write_text(f"{kind.settings_key}:\n{indented}", encoding="utf-8")
    node = load_yaml(config).value[kind.settings_key]
    settings = kind.parse_settings(node, folder)
    return kind.create(name, settings, folder, limits)


def write_client_key(path: Path) -> asyncssh.SSHKey:
    """A new ed25519 key, written in OpenSSH format with owner-only permissions."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    return key


def public_line(key: asyncssh.SSHKey) -> str:
    """The ``ssh-ed25519 AAAA...`` text of a key's public half."""
    return key.export_public_key("openssh").decode("ascii").strip()


# --- the asyncssh server -------------------------------------------------------------
class _PasswordServer(asyncssh.SSHServer):
    """Public key auth (from authorized_client_keys) plus one fixed password."""

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USERNAME and hmac.compare_digest(password, PASSWORD)


class SFTPServerThread:
    """An asyncssh SFTP server running in its own thread and event loop."""

    def __init__(self, root: Path, host_key: asyncssh.SSHKey, authorized_keys: Path) -> None:
        self.root = root
        self.host_key = host_key
        self.authorized_keys = authorized_keys
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sftp-server", daemon=True)

    def start(self) -> None:
        """Start listening; returns once the port is bound."""
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise TimeoutError("the asyncssh SFTP server did not start")
        if self._failure is not None:
            raise RuntimeError("the asyncssh SFTP server did not start") from self._failure

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        root = os.fsencode(self.root)
        try:
            acceptor = self._loop.run_until_complete(
                asyncssh.listen(
                    "127.0.0.1",
                    0,
                    server_host_keys=[self.host_key],
                    authorized_client_keys=str(self.authorized_keys),
                    server_factory=_PasswordServer,
                    sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
                    allow_scp=False,
                )
            )
        except BaseException as error:  # reported to start()
            self._failure = error
            self._ready.set()
            self._loop.close()
            return
        self.port = acceptor.get_port()
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            acceptor.close()
            self._loop.run_until_complete(acceptor.wait_closed())
            self._loop.close()

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """Start an asyncssh SFTP server and the public HTTP view of its folder."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_file = workdir / "client_ed25519"
    write_client_key(client_key_file)
    bad_key_file = workdir / "stranger_ed25519"
    write_client_key(bad_key_file)
    authorized = workdir / "authorized_keys"
    authorized.write_text(
        public_line(asyncssh.read_private_key(client_key_file)) + "\n", encoding="ascii"
    )
    (workdir / "password").write_text(PASSWORD + "\n", encoding="utf-8")

    server = SFTPServerThread(root, host_key, authorized)
    server.start()
    try:
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(
            f"[127.0.0.1]:{server.port} {public_line(host_key)}\n", encoding="ascii"
        )
        with serve_folder(root) as public_url:
            yield sftp_mirror(
                "sftp-asyncssh",
                port=server.port,
                username=USERNAME,
                path="/",
                keys=(known_hosts, client_key_file, bad_key_file),
                public_url=public_url,
                workdir=workdir,
            )
    finally:
        server.stop()
