"""SFTP mirrors (``type: sftp``), spoken with asyncssh.

Settings::

    sftp:
      host: mirror.example.org
      port: 22                                  # optional
      username: news
      path: /srv/mirror                         # remote root folder
      private_key: file:keys/mirror_ed25519     # key and/or password
      private_key_passphrase: env:SFTP_KEY_PASS # optional
      password: env:SFTP_PASSWORD
      known_hosts: keys/known_hosts             # pin the host key with a known_hosts file,
      host_key_fingerprint: SHA256:...          # or by fingerprint: exactly one of the two

Security decisions:

* The server's host key is always pinned, by a known_hosts file or a SHA-256
  fingerprint; there is no "accept any key" mode. An unpinned connection would
  hand the credentials and the uploads to whoever sits on the path (a censor
  with a network position). A mismatch is a `MirrorAuthError`: retrying will
  not change the key, a human has to look.
* Nothing is taken from the environment of the account running `mirror`: no
  ``~/.ssh/config``, no agent, no default ``~/.ssh/id_*`` keys, no GSSAPI. Only
  the credentials named in the config are offered, so a mirror never logs in
  with a key the admin did not mean to use there.
* Uploads go to a temporary name in the target folder and are renamed over the
  target with the ``posix-rename@openssh.com`` extension (atomic on POSIX
  servers), so a reader never sees a half-written ``timestamp.json``. Servers
  without it get remove-then-rename (readers may briefly see no file, never a
  partial one); the backend remembers that and stops asking for posix-rename.
* Downloads stat first, so the base class refuses a file over the cap before
  reading it, and then stream in chunks that it counts against the cap.

One SSH connection and one SFTP session per backend, opened on first use
inside the running event loop and reopened when the server dropped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import posixpath
import re
import secrets as token_source
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import asyncssh
from asyncssh.constants import FILEXFER_TYPE_DIRECTORY, FILEXFER_TYPE_REGULAR

from mirror.backends.base import (
    Backend,
    CallLimits,
    Capability,
    DeclaredSize,
    ObjectInfo,
)
from mirror.backends.registry import BackendType, register
from mirror.errors import (
    ConfigError,
    MirrorAuthError,
    MirrorError,
    MirrorNotFoundError,
    StorageError,
    TransportError,
)
from mirror.secrets import Secret, resolve_secret, secret_reference
from mirror.yamlnodes import Node, required, whole

CHUNK_BYTES: Final = 1024 * 1024
"""Local file reads and remote reads per request batch (asyncssh pipelines within one chunk)."""
TEMP_MARKER: Final = ".mirror-upload-"
"""Starts every temporary upload name; `list` hides such leftovers of interrupted uploads."""
MAX_KNOWN_HOSTS_BYTES: Final = 1024 * 1024
CLEANUP_TIMEOUT_S: Final = 5.0

SETTING_KEYS: Final = (
    "host",
    "port",
    "username",
    "path",
    "private_key",
    "private_key_passphrase",
    "password",
    "known_hosts",
    "host_key_fingerprint",
)
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_HOST = re.compile(r"[A-Za-z0-9.:_\-\[\]%]+")


@dataclass(frozen=True)
class SFTPSettings:
    """An ``sftp:`` block; secrets are kept as references until the backend is created."""

    host: str
    port: int
    username: str
    path: str
    private_key: str | None
    private_key_passphrase: str | None
    password: str | None
    known_hosts: Path | None
    host_key_fingerprint: str | None


def parse_settings(node: Node, base_dir: Path) -> SFTPSettings:
    """Read an ``sftp:`` block; every problem is a `ConfigError` naming file, line and key."""
    fields = node.mapping(SETTING_KEYS)
    host = required(fields, "host", node).text()
    if not _HOST.fullmatch(host):
        raise fields["host"].fail("must be a host name or IP address")
    port = whole(fields, "port", 22, minimum=1, maximum=65535)
    username = required(fields, "username", node).text()
    path = required(fields, "path", node).text()
    if "\x00" in path or "\\" in path:
        raise fields["path"].fail("must be a POSIX path on the server")

    private_key = _optional_reference(fields, "private_key")
    passphrase = _optional_reference(fields, "private_key_passphrase")
    password = _optional_reference(fields, "password")
    if private_key is None and password is None:
        raise node.fail(
            "needs private_key or password",
            hint="Give private_key: file:PATH (preferred) or password: env:NAME.",
        )
    if passphrase is not None and private_key is None:
        raise fields["private_key_passphrase"].fail("is given without private_key")

    known_hosts: Path | None = None
    if "known_hosts" in fields:
        known_hosts = (base_dir / fields["known_hosts"].text()).expanduser()
    fingerprint: str | None = None
    if "host_key_fingerprint" in fields:
        fingerprint = fields["host_key_fingerprint"].text().strip().rstrip("=")
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise fields["host_key_fingerprint"].fail(
                "must be a SHA-256 fingerprint: SHA256: followed by 43 base64 characters",
                hint="Print it on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
            )
    if (known_hosts is None) == (fingerprint is None):
        raise node.fail(
            "needs exactly one of known_hosts or host_key_fingerprint to pin the server's key",
            hint="Without a pinned host key anyone on the network path could pose as the mirror.",
        )
    return SFTPSettings(
        host=host,
        port=port,
        username=username,
        path=path,
        private_key=private_key,
        private_key_passphrase=passphrase,
        password=password,
        known_hosts=known_hosts,
        host_key_fingerprint=fingerprint,
    )


def _optional_reference(fields: dict[str, Node], name: str) -> str | None:
    """The secret reference under ``name``, or None when the key is absent."""
    return secret_reference(fields[name]) if name in fields else None


@dataclass(frozen=True)
class HostKeyPin:
    """How the server's host key is checked: a known_hosts list or a SHA-256 fingerprint."""

    known_hosts: asyncssh.SSHKnownHosts | None
    fingerprint: str | None
    described: str
    """For messages: which pin did not match."""


def create(name: str, settings: SFTPSettings, base_dir: Path, limits: CallLimits) -> SFTPBackend:
    """Resolve the secrets and the host key pin, and build the backend (no network yet)."""
    client_key: asyncssh.SSHKey | None = None
    if settings.private_key is not None:
        key_secret = resolve_secret(
            settings.private_key, base_dir=base_dir, what=f"SFTP private key of mirror {name}"
        )
        passphrase: Secret | None = None
        if settings.private_key_passphrase is not None:
            passphrase = resolve_secret(
                settings.private_key_passphrase,
                base_dir=base_dir,
                what=f"SFTP private key passphrase of mirror {name}",
            )
        client_key = _import_key(name, key_secret, passphrase)
    password: Secret | None = None
    if settings.password is not None:
        password = resolve_secret(
            settings.password, base_dir=base_dir, what=f"SFTP password of mirror {name}"
        )
    if settings.known_hosts is not None:
        pin = HostKeyPin(
            _read_known_hosts(name, settings.known_hosts),
            None,
            f"the known_hosts file {settings.known_hosts}",
        )
    elif settings.host_key_fingerprint is not None:
        pin = HostKeyPin(
            None,
            settings.host_key_fingerprint,
            f"host_key_fingerprint {settings.host_key_fingerprint}",
        )
    else:
        raise ConfigError(f"mirror {name}: the SFTP host key is not pinned")
    return SFTPBackend(
        name,
        host=settings.host,
        port=settings.port,
        username=settings.username,
        root=settings.path,
        client_key=client_key,
        password=password,
        host_key=pin,
        limits=limits,
    )


def _import_key(name: str, key: Secret, passphrase: Secret | None) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_private_key(
            key.value, None if passphrase is None else passphrase.value
        )
    except asyncssh.KeyEncryptionError as error:
        raise ConfigError(
            f"the SFTP private key of mirror {name} ({key.reference}) cannot be decrypted",
            hint="Check private_key_passphrase; it is required for an encrypted key.",
        ) from error
    except (asyncssh.KeyImportError, ValueError) as error:
        if passphrase is None and "assphrase" in str(error):
            raise ConfigError(
                f"the SFTP private key of mirror {name} ({key.reference}) is encrypted",
                hint="Add private_key_passphrase: env:NAME or file:PATH.",
            ) from error
        raise ConfigError(
            f"the SFTP private key of mirror {name} ({key.reference}) is not a private key",
            hint="Give an OpenSSH or PEM private key file, e.g. from `ssh-keygen -t ed25519`.",
        ) from error


def _read_known_hosts(name: str, path: Path) -> asyncssh.SSHKnownHosts:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KNOWN_HOSTS_BYTES + 1)
    except OSError as error:
        raise ConfigError(
            f"the known_hosts file {path} of mirror {name} cannot be read ({error.strerror})",
            hint="The path is relative to the config file; create it with ssh-keyscan, "
            "then check the key out of band.",
        ) from error
    if len(data) > MAX_KNOWN_HOSTS_BYTES:
        raise ConfigError(f"the known_hosts file {path} of mirror {name} is larger than 1 MiB")
    try:
        return asyncssh.import_known_hosts(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, asyncssh.KeyImportError) as error:
        raise ConfigError(
            f"the known_hosts file {path} of mirror {name} is not in known_hosts format"
        ) from error


class _FingerprintPinnedClient(asyncssh.SSHClient):
    """Accepts the server only if its host key has the pinned SHA-256 fingerprint."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        offered = key.get_fingerprint("sha256")
        return hmac.compare_digest(offered.encode(), self._fingerprint.encode())


class SFTPBackend(Backend):
    """A folder on an SFTP server."""

    type_name = "sftp"
    capabilities = frozenset({Capability.LISTING})

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        username: str,
        root: str,
        client_key: asyncssh.SSHKey | None,
        password: Secret | None,
        host_key: HostKeyPin,
        limits: CallLimits | None = None,
    ) -> None:
        super().__init__(name, limits=limits)
        self.host = host
        self.port = port
        self.username = username
        self.root = posixpath.normpath(root) if root not in ("", ".") else "."
        self._client_key = client_key
        self._password = password
        self._host_key = host_key
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._posix_rename = True
        self._known_folders: set[str] = set()

    # --- connection ------------------------------------------------------------
    async def _client(self) -> asyncssh.SFTPClient:
        """The SFTP session, connecting (again) when there is none or it was dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A connection belongs to the loop that opened it; a backend reused from a
            # new asyncio.run() forgets the old one (that loop is gone) and reconnects.
            self._connection, self._sftp, self._loop = None, None, loop
            self._lock = None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._sftp is not None and self._connection is not None:
                if not self._connection.is_closed():
                    return self._sftp
                self._forget()
            self._connection, self._sftp = await self._connect()
            return self._sftp

    async def _connect(self) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        pin = self._host_key
        fingerprint = pin.fingerprint
        factory: Callable[[], asyncssh.SSHClient] = asyncssh.SSHClient
        if fingerprint is not None:
            factory = partial(_FingerprintPinnedClient, fingerprint)
        connection = await asyncssh.connect(
            self.host,
            self.port,
            username=self.username,
            client_factory=factory,
            # The fingerprint path trusts no key up front and lets the client above decide.
            known_hosts=pin.known_hosts if pin.known_hosts is not None else ([], [], []),
            client_keys=None if self._client_key is None else [self._client_key],
            password=None if self._password is None else self._password.text(),
            config=None,
            agent_path=None,
            pkcs11_provider=None,
            gss_auth=False,
            gss_kex=False,
            host_based_auth=False,
            connect_timeout=self.limits.timeout_s,
            login_timeout=self.limits.timeout_s,
            keepalive_interval=30,
        )
        try:
            sftp = await connection.start_sftp_client()
        except BaseException:
            connection.close()
            raise
        # asyncssh has no public flag for the extension; without it posix_rename fails
        # with SFTPOpUnsupported, which `_replace` also handles.
        handler = getattr(sftp, "_handler", None)
        self._posix_rename = bool(getattr(handler, "_supports_posix_rename", True))
        self._known_folders.clear()
        return connection, sftp

    def _forget(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._sftp = None, None

    async def _close(self) -> None:
        connection, sftp = self._connection, self._sftp
        self._connection, self._sftp = None, None
        if self._loop is not asyncio.get_running_loop():
            return  # opened in a loop that is gone; nothing left to close here
        if sftp is not None:
            sftp.exit()
        if connection is not None:
            connection.close()
            await connection.wait_closed()

    # --- paths -------------------------------------------------------------------
    def _remote(self, path: str) -> str:
        return posixpath.join(self.root, path)

    def _relative(self, remote: str) -> str:
        return posixpath.relpath(remote, self.root)

    # --- operations ----------------------------------------------------------------
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        sftp = await self._client()
        target = self._remote(path)
        folder = posixpath.dirname(target)
        # A short random name: "<name>.tmp" could exceed the server's name length limit.
        temp = posixpath.join(folder, f"{TEMP_MARKER}{token_source.token_hex(8)}")
        await self._ensure_folder(sftp, folder)
        try:
            try:
                handle = await sftp.open(temp, "wb", encoding=None)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                # Someone removed the folder since we made it; make it again, once.
                self._known_folders.discard(folder)
                await self._ensure_folder(sftp, folder)
                handle = await sftp.open(temp, "wb", encoding=None)
            async with handle:
                if isinstance(source, bytes):
                    await handle.write(source)
                else:
                    async for chunk in _read_chunks(source):
                        await handle.write(chunk)
            await self._replace(sftp, temp, target)
        except BaseException:
            await self._discard(sftp, temp)
            raise

    async def _ensure_folder(self, sftp: asyncssh.SFTPClient, folder: str) -> None:
        if folder not in self._known_folders:
            await sftp.makedirs(folder, exist_ok=True)
            self._known_folders.add(folder)

    async def _replace(self, sftp: asyncssh.SFTPClient, temp: str, target: str) -> None:
        if self._posix_rename:
            try:
                await sftp.posix_rename(temp, target)
                return
            except asyncssh.SFTPOpUnsupported:
                self._posix_rename = False
        # Plain SFTP rename refuses to overwrite: remove first. Readers may miss the
        # file for a moment but never see a partial one.
        with contextlib.suppress(asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            await sftp.remove(target)
        await sftp.rename(temp, target)

    async def _discard(self, sftp: asyncssh.SFTPClient, temp: str) -> None:
        """Best effort: remove a temporary upload after a failure (bounded, never raises)."""
        with contextlib.suppress(Exception, TimeoutError):
            async with asyncio.timeout(CLEANUP_TIMEOUT_S):
                await sftp.remove(temp)

    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        sftp = await self._client()
        remote = self._remote(path)
        try:
            attrs = await sftp.stat(remote)
            if attrs.type == FILEXFER_TYPE_DIRECTORY:
                raise MirrorNotFoundError(f"mirror {self.name}: {path} is a folder, not a file")
            if attrs.size is not None:
                yield DeclaredSize(attrs.size)
            async with sftp.open(remote, "rb", encoding=None) as handle:
                # The size can change (or lie) between stat and read; what arrives is counted.
                while True:
                    chunk: bytes = await handle.read(CHUNK_BYTES)
                    if not chunk:
                        return
                    yield chunk
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath) as error:
            raise MirrorNotFoundError(f"mirror {self.name}: {path} does not exist") from error

    async def _stat(self, path: str) -> ObjectInfo | None:
        sftp = await self._client()
        try:
            attrs = await sftp.stat(self._remote(path))
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return None
        if attrs.type == FILEXFER_TYPE_DIRECTORY:
            return None
        return ObjectInfo(path, attrs.size or 0)

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        sftp = await self._client()
        # The prefix is a string prefix, not necessarily a folder: walk from the folder
        # that holds everything starting with it, and prune the rest.
        start = prefix.rpartition("/")[0]
        pending = [self._remote(start) if start else self.root]
        while pending:
            folder = pending.pop()
            try:
                entries = [entry async for entry in sftp.scandir(folder)]
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                continue
            for entry in entries:
                name = str(entry.filename)
                if name in (".", ".."):
                    continue
                remote = posixpath.join(folder, name)
                relative = self._relative(remote)
                if entry.attrs.type == FILEXFER_TYPE_DIRECTORY:
                    if (relative + "/").startswith(prefix) or prefix.startswith(relative + "/"):
                        pending.append(remote)
                elif (
                    entry.attrs.type == FILEXFER_TYPE_REGULAR
                    and relative.startswith(prefix)
                    and not name.startswith(TEMP_MARKER)
                ):
                    yield ObjectInfo(relative, entry.attrs.size or 0)

    async def _delete(self, path: str) -> None:
        sftp = await self._client()
        with contextlib.suppress(asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            await sftp.remove(self._remote(path))

    # --- errors --------------------------------------------------------------------
    def _translate(self, error: Exception) -> MirrorError:
        where = f"mirror {self.name} ({self.host}:{self.port})"
        if isinstance(error, asyncssh.HostKeyNotVerifiable):
            return MirrorAuthError(
                f"{where}: the server's host key does not match {self._host_key.described}",
                hint="Someone may be posing as the mirror. If the server's key really changed, "
                "check the new key out of band and update the pin.",
            )
        if isinstance(error, asyncssh.PermissionDenied):
            return MirrorAuthError(f"{where}: the server refused the login as {self.username}")
        if isinstance(error, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
            return MirrorAuthError(f"{where}: permission denied ({_reason(error)})")
        if isinstance(error, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            return MirrorNotFoundError(f"{where}: no such file or folder ({_reason(error)})")
        if isinstance(error, asyncssh.Error):
            self._forget_if_broken()
            return TransportError(f"{where}: {error.__class__.__name__}: {_reason(error)}")
        if isinstance(error, ConnectionRefusedError):
            return TransportError(f"{where}: connection refused")
        if isinstance(error, OSError) and not isinstance(error, PermissionError):
            self._forget_if_broken()
            return TransportError(f"{where}: {error.strerror or error}")
        return super()._translate(error)

    def _forget_if_broken(self) -> None:
        if self._connection is not None and self._connection.is_closed():
            self._connection, self._sftp = None, None


async def _read_chunks(source: Path) -> AsyncIterator[bytes]:
    """A local file in chunks; a local read failure is ours (`StorageError`), not the mirror's."""
    try:
        with source.open("rb") as local:
            while chunk := local.read(CHUNK_BYTES):
                yield chunk
    except OSError as error:
        raise StorageError(f"{source} cannot be read ({error.strerror})") from error


def _reason(error: asyncssh.Error) -> str:
    return str(error.reason or error.__class__.__name__)


register(
    BackendType(
        name="sftp",
        settings_key="sftp",
        parse_settings=parse_settings,
        create=create,
        public_read_hint=("a web server must serve the SFTP folder at public_url, to anyone"),
    )
)
