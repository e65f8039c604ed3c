"""What the ``webdav`` and ``http`` backends share: both speak plain HTTP to a file server.

* Settings: ``url`` (the folder that is the mirror root), ``username`` and
  a ``password`` that must be a secret reference (``env:``/``file:``); each
  problem is a `ConfigError` naming file, line and key, and never quoting a
  would-be secret. A URL with ``user:pass@`` in it is refused (an inline
  secret), and so is sending credentials over plain ``http://`` to anything
  but this machine: a censor on the path would read them.
* One `httpx.AsyncClient` per backend, created lazily inside the running
  event loop (a client is bound to the loop it first ran in) and closed by
  ``_close``. Redirects are not followed: an upload target that redirects is
  misconfigured, and following could hand our credentials to another host.
* Status codes map once to the error tree: 401/403 → `MirrorAuthError`,
  404/410 → `MirrorNotFoundError`, 429/503 → `ServerBusyError` (carrying
  the server's Retry-After), anything else unexpected → `TransportError`.
* Every body we read is bounded: downloads stream under the base class's
  cap (`Backend.get`; a Content-Length over it is refused before the body is
  read), and the bodies of PUT/DELETE/MKCOL answers are drained only up to a
  few KiB, so a hostile server cannot make us buffer an endless error page.
* Uploads stream a local file in chunks with an exact Content-Length, so
  memory stays flat and servers that refuse chunked uploads still work.
* Secret values (password, header tokens) are scrubbed from every message
  we build from a foreign exception.
"""

from __future__ import annotations

import contextlib
import ipaddress
import string
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlsplit

import httpx

from mirror.backends.base import (
    Backend,
    CallLimits,
    DeclaredSize,
    ObjectInfo,
)
from mirror.backends.disk import on_disk
from mirror.errors import (
    ConfigError,
    MirrorAuthError,
    MirrorError,
    MirrorNotFoundError,
    ServerBusyError,
    StorageError,
    TransportError,
)
from mirror.secrets import Secret, resolve_secret, secret_reference
from mirror.yamlnodes import Node, required

UPLOAD_CHUNK_BYTES = 1024 * 1024
"""How much of a local file is read (in a disk thread) per chunk sent."""
MAX_DRAINED_BODY_BYTES = 64 * 1024
"""Answers to PUT/DELETE/MKCOL/HEAD are read up to this much (to keep the connection), no more."""
USER_AGENT = "mirror (censorship-resilient mirror distributor)"
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type", "range"}
)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (``120`` or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Over ten digits is nonsense (300 years); refuse rather than overflow.
        return float(int(value)) if len(value) <= 10 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- settings -----------------------------------------------------------------------
ENDPOINT_KEYS = ("url", "username", "password")


@dataclass(frozen=True)
class Endpoint:
    """Where an HTTP-speaking mirror lives and who we are there (secrets as references)."""

    url: str
    """The mirror root folder, always ending with "/"."""
    username: str | None = None
    password_ref: str | None = None


def parse_endpoint(fields: dict[str, Node], node: Node, *, sends_secrets: bool = False) -> Endpoint:
    """Read ``url``/``username``/``password`` from an already key-checked settings mapping.

    ``sends_secrets`` says the caller has other secrets to send (header tokens),
    which, like a password, must not travel over plain HTTP to another host.
    """
    url_node = required(fields, "url", node)
    url = _parse_url(url_node)
    username = fields["username"].text() if "username" in fields else None
    password_ref = None
    if "password" in fields:
        password_ref = secret_reference(fields["password"])
        if username is None:
            raise fields["password"].fail(
                "a password needs a username", hint="Add username: next to password."
            )
    if (username is not None or sends_secrets) and not _is_safe_for_secrets(url):
        raise url_node.fail(
            "would send credentials unencrypted over http:// to another machine",
            hint="Use an https:// URL; plain http:// is only accepted for 127.0.0.1/localhost.",
        )
    return Endpoint(url=url, username=username, password_ref=password_ref)


def _parse_url(node: Node) -> str:
    text = node.text().strip()
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as error:
        raise node.fail(f"is not a valid URL ({error})") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise node.fail("must be an http:// or https:// URL with a host name")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise node.fail(
            "must not contain a user name or password",
            hint="Put the user under username: and the password as an env:/file: reference.",
        )
    if parts.query or parts.fragment:
        raise node.fail("must not have a ?query or #fragment")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_safe_for_secrets(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_header_refs(node: Node) -> tuple[tuple[str, str], ...]:
    """A ``headers:`` mapping of header name to secret reference (e.g. a bearer token)."""
    if not isinstance(node.value, dict):
        raise node.fail("must be a mapping of header names to env:/file: references")
    refs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, child in node.value.items():
        if not name or not set(name) <= _TOKEN_CHARS:
            raise child.fail("is not a valid HTTP header name")
        if name.lower() in _RESERVED_HEADERS:
            raise child.fail("is set by mirror itself and cannot be configured")
        if name.lower() in seen:
            raise child.fail("is given twice (header names are case-insensitive)")
        seen.add(name.lower())
        refs.append((name, secret_reference(child)))
    return tuple(refs)


def resolve_credentials(
    endpoint: Endpoint, header_refs: tuple[tuple[str, str], ...], base_dir: Path, mirror: str
) -> tuple[Secret | None, dict[str, Secret]]:
    """Read the password and header secrets; refuse values that cannot be sent safely."""
    password = None
    if endpoint.password_ref is not None:
        password = resolve_secret(
            endpoint.password_ref, base_dir=base_dir, what=f"password of mirror {mirror}"
        )
    headers: dict[str, Secret] = {}
    for name, reference in header_refs:
        secret = resolve_secret(
            reference, base_dir=base_dir, what=f"header {name} of mirror {mirror}"
        )
        try:
            text = secret.text()
        except UnicodeDecodeError as error:
            raise ConfigError(f"the header {name} from {reference} is not UTF-8 text") from error
        # A line break would smuggle extra headers into the request (header injection),
        # and httpx would quote the value in its error.
        if any(char in text for char in "\r\n\0") or not text.isprintable():
            raise ConfigError(
                f"the header {name} from {reference} contains line breaks or control characters"
            )
        headers[name] = secret
    return password, headers


# --- the shared backend ---------------------------------------------------------------
class HttpBackendBase(Backend):
    """A backend over one lazily created `httpx.AsyncClient` rooted at ``endpoint.url``."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        *,
        password: Secret | None = None,
        headers: Mapping[str, Secret] | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        super().__init__(name, limits=limits)
        self.endpoint = endpoint
        self._password = password
        self._headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None
        self._root_path = urlsplit(endpoint.url).path

    # --- plumbing ---------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        """The client, created on first use inside the running loop."""
        if self._client is None:
            auth = None
            if self.endpoint.username is not None:
                secret = "" if self._password is None else self._password.text()
                auth = httpx.BasicAuth(self.endpoint.username, secret)
            headers = {"User-Agent": USER_AGENT}
            headers.update({name: secret.text() for name, secret in self._headers.items()})
            self._client = httpx.AsyncClient(
                auth=auth,
                headers=headers,
                timeout=httpx.Timeout(self.limits.timeout_s),
                follow_redirects=False,
            )
        return self._client

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _url(self, path: str) -> str:
        """The URL of mirror path ``path`` (each segment percent-encoded)."""
        return self.endpoint.url + quote(path, safe="/")

    def _scrub(self, text: str) -> str:
        """``text`` with every secret value blanked out, for messages built from foreign text."""
        secrets = [self._password, *self._headers.values()]
        for secret in secrets:
            if secret is not None and secret.value:
                text = text.replace(secret.text(), "***")
        return text

    def _translate(self, error: Exception) -> MirrorError:
        host = urlsplit(self.endpoint.url).netloc
        if isinstance(error, httpx.TimeoutException):
            return TransportError(
                f"mirror {self.name}: {host} did not answer in time ({error.__class__.__name__})"
            )
        if isinstance(error, httpx.HTTPError):
            detail = self._scrub(str(error)) or error.__class__.__name__
            return TransportError(f"mirror {self.name}: talking to {host} failed ({detail})")
        if isinstance(error, OSError):
            # Sockets only: our own files are opened (and mapped to StorageError) up front.
            return TransportError(f"mirror {self.name}: network error ({error.strerror or error})")
        return TransportError(
            f"mirror {self.name}: {error.__class__.__name__}: {self._scrub(str(error))}"
        )

    def _check(self, response: httpx.Response, what: str) -> None:
        """Raise the right error for a failed answer; return for 2xx."""
        status = response.status_code
        if 200 <= status < 300:
            return
        prefix = f"mirror {self.name}: {what} failed"
        if status == 401:
            raise MirrorAuthError(f"{prefix}: the server refused our credentials (HTTP 401)")
        if status == 403:
            raise MirrorAuthError(f"{prefix}: the server forbids it (HTTP 403)")
        if status in (404, 410):
            raise MirrorNotFoundError(f"{prefix}: not found (HTTP {status})")
        if status in (429, 503):
            seconds = retry_after_seconds(response.headers.get("Retry-After"))
            later = f", retry after {seconds:g} s" if seconds is not None else ""
            raise ServerBusyError(
                f"{prefix}: the server is busy (HTTP {status}{later})", retry_after_s=seconds
            )
        if 300 <= status < 400:
            raise TransportError(
                f"{prefix}: the server redirects (HTTP {status}); redirects are not followed",
                hint="Point url: at the final address of the mirror folder.",
            )
        hint = None
        if status == 409:
            hint = "A parent folder is missing; check that url: names an existing folder."
        elif status == 413:
            hint = "The server limits upload sizes (nginx: set client_max_body_size 0)."
        elif status == 507:
            hint = "The mirror's disk or quota is full."
        raise TransportError(
            f"{prefix}: HTTP {status} {response.reason_phrase}".rstrip(), hint=hint
        )

    async def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        allow: tuple[int, ...] = (),
        content: bytes | AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request whose answer body we do not need; statuses in ``allow`` pass."""
        async with self._http().stream(method, url, content=content, headers=headers) as response:
            await drain_response(response)
            if response.status_code not in allow:
                self._check(response, what)
            return response

    # --- the interface pieces both types share ---------------------------------------------
    async def _upload(
        self, path: str, source: Path | bytes, *, size: int, allow: tuple[int, ...] = ()
    ) -> int:
        """PUT ``source`` at ``path`` with an exact Content-Length; returns the status code.

        Statuses in ``allow`` are returned instead of raised (webdav retries a 409).
        """
        headers = {"Content-Type": "application/octet-stream"}
        with contextlib.ExitStack() as stack:
            content: bytes | AsyncIterator[bytes]
            if isinstance(source, bytes):
                content = source
            else:
                try:
                    handle = stack.enter_context(source.open("rb"))
                except OSError as error:
                    # Our own file: a local problem, not the mirror's (and not "auth").
                    raise StorageError(
                        f"the file {source} cannot be read ({error.strerror})"
                    ) from error
                content = _file_chunks(handle, source, size)
                headers["Content-Length"] = str(size)
            response = await self._request(
                "PUT",
                self._url(path),
                f"uploading {path}",
                content=content,
                headers=headers,
                allow=allow,
            )
            return response.status_code

    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        # identity: we want the stored bytes, and no decompression bomb.
        headers = {"Accept-Encoding": "identity"}
        async with self._http().stream("GET", self._url(path), headers=headers) as response:
            self._check(response, f"downloading {path}")
            declared = response.headers.get("Content-Length", "")
            if declared.isascii() and declared.isdigit():
                yield DeclaredSize(int(declared))
            # Closing this generator leaves the block, which drops the connection.
            async for chunk in response.aiter_bytes():
                yield chunk

    async def _head_stat(self, path: str) -> ObjectInfo | None:
        """Size from a HEAD request's Content-Length; None for 404."""
        response = await self._request("HEAD", self._url(path), f"checking {path}", allow=(404,))
        if response.status_code == 404:
            return None
        declared = response.headers.get("Content-Length", "")
        if not (declared.isascii() and declared.isdigit()):
            raise TransportError(f"mirror {self.name}: the server gave no size for {path}")
        return ObjectInfo(path=path, size=int(declared))

    async def _delete(self, path: str) -> None:
        await self._request("DELETE", self._url(path), f"deleting {path}", allow=(404,))


async def drain_response(response: httpx.Response) -> None:
    """Read a little of an answer we do not need, so the connection can be reused."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > MAX_DRAINED_BODY_BYTES:
            return  # closing the response drops the connection instead of reading on


async def _file_chunks(handle: IO[bytes], source: Path, size: int) -> AsyncIterator[bytes]:
    """Exactly ``size`` bytes of an open file, read in a disk thread chunk by chunk."""
    remaining = size
    while remaining > 0:
        try:
            chunk = await on_disk(handle.read, min(UPLOAD_CHUNK_BYTES, remaining))
        except OSError as error:
            raise StorageError(f"the file {source} cannot be read ({error.strerror})") from error
        if not chunk:
            raise StorageError(f"the file {source} shrank to {size - remaining} bytes while sent")
        remaining -= len(chunk)
        yield chunk
