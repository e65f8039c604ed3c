"""Fetching a feed over HTTP(S): one wall-clock deadline, capped bytes, refused redirects.

The feed server is someone else's, and may be hostile:

- One deadline, ``feed_timeout_s``, covers the whole exchange: DNS, every
  connect and TLS handshake, the status line, each header, any number of
  informational (1xx) answers, every redirect hop and the body. It sits
  under every socket call (`mirror.timedhttp`, the same machinery the
  reader's fetcher uses), so a server that trickles headers or floods
  ``100 Continue`` is cut off at the deadline like one that trickles the body.
- The body is capped at ``max_feed_bytes`` *after* content decoding (gzip
  and deflate are decoded here, in bounded steps, so a gzip bomb stops at
  the cap too); an over-size ``Content-Length`` is refused before reading.
- Redirects are followed by hand, at most `MAX_REDIRECTS`, only to
  ``http``/``https``, and never to a loopback, link-local, private or other
  non-public address unless the source sets ``allow_private_addresses``:
  otherwise a feed server could make the newsroom's host send requests to
  its own services (a database on 127.0.0.1, a cloud metadata endpoint on
  169.254.169.254). The address is checked after DNS, at connect time, and
  a redirect may still come back to the very address and port the
  configured URL reached (a feed on the intranet that redirects to itself).
  Through a proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, honouring
  ``NO_PROXY``) the redirect's host is looked up and checked here before the
  request.
- Credentials in the URL (``https://user:pass@host/feed``) become HTTP
  basic authentication for that origin only, and never appear in messages.
- Network failures, timeouts, 5xx and 401/403/407/408/425/429 raise
  `TransportError` (worth retrying); other HTTP errors, over-size bodies,
  redirect loops, refused redirects and undecodable bodies raise
  `SourceError`. No httpcore exception escapes.
"""

from __future__ import annotations

import base64
import urllib.request
import zlib
from collections.abc import Iterator
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import httpcore

from mirror.errors import SourceError, TransportError
from mirror.ingest.model import DEFAULT_LIMITS, IngestLimits
from mirror.timedhttp import (
    Deadline,
    DeadlineBackend,
    connection_pool,
    is_public,
    resolve,
)

MAX_REDIRECTS = 5
USER_AGENT = "mirror-ingest/0.1 (+feed reader for offline editions)"
ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.1"
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({401, 403, 407, 408, 425, 429})
CHUNK_BYTES = 64 * 1024
FEED_HINT = (
    "Check the feed's address in the configuration; open it in a browser to see what it serves."
)
PRIVATE_HINT = (
    "A feed's redirect may not lead to the newsroom's own host or network. If this feed "
    "really lives on your intranet, set allow_private_addresses: true on its source."
)


def shown_url(url: str) -> str:
    """``url`` for messages: a ``user:password@`` part is removed, since errors end up in logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _source_error(message: str, hint: str = FEED_HINT) -> SourceError:
    return SourceError(message, hint=hint)


class _AddressGuard:
    """Decides, per connection, whether a redirect may reach an address (see the docstring)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.redirected = False
        self.target = ""
        self.first: set[tuple[str, int]] = set()

    def check(self, host: str, address: str, port: int) -> None:
        if not self.redirected:
            self.first.add((address, port))
            return
        if self.allow_private or (address, port) in self.first or is_public(address):
            return
        raise _refused(self.target, host, address)


def _refused(target: str, host: str, address: str) -> SourceError:
    where = address if host.strip("[]") == address else f"{host}, which is {address}"
    return _source_error(
        f"feed redirects to {shown_url(target)} ({where}, not a public address); "
        "the redirect is refused",
        hint=PRIVATE_HINT,
    )


def fetch_feed_bytes(
    url: str, *, limits: IngestLimits = DEFAULT_LIMITS, allow_private_addresses: bool = False
) -> bytes:
    """Download ``url`` under the caps in ``limits``; raises `TransportError` or `SourceError`."""
    deadline = Deadline()
    guard = _AddressGuard(allow_private=allow_private_addresses)
    backend = DeadlineBackend(deadline, check_address=guard.check)
    pools: dict[str | None, httpcore.ConnectionPool] = {}
    configured = _checked(url, url)
    authorization = _basic_auth(configured)
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), limits.feed_timeout_s)
    current = url
    deadline.start(limits.feed_timeout_s)
    try:
        for hop in range(MAX_REDIRECTS + 1):
            parts = _checked(current, url)
            proxy = _proxy_for(parts)
            if hop:
                guard.redirected, guard.target = True, current
                if proxy is not None:
                    _check_through_proxy(guard, parts, deadline)
            pool = pools.get(proxy)
            if pool is None:
                pool = pools[proxy] = connection_pool(proxy, backend)
            headers = [
                (b"User-Agent", USER_AGENT.encode()),
                (b"Accept", ACCEPT.encode()),
                (b"Accept-Encoding", b"gzip, deflate"),
            ]
            if authorization and _origin(parts) == _origin(configured):
                headers.append((b"Authorization", authorization))
            try:
                with pool.stream(
                    "GET",
                    _without_userinfo(parts),
                    headers=headers,
                    extensions={"timeout": timeouts},
                ) as response:
                    location = _header(response, b"location")
                    if response.status in _REDIRECT_STATUS and location:
                        current = _redirect_target(current, location)
                        continue
                    _check_status(response, current)
                    return _read_capped(response, current, limits)
            except httpcore.TimeoutException as error:
                raise _timed_out(current, limits) from error
            except httpcore.UnsupportedProtocol as error:
                raise _source_error(
                    f"feed URL {shown_url(current)} uses an unsupported protocol"
                ) from error
            except httpcore.ProxyError as error:
                raise TransportError(
                    f"cannot fetch feed {shown_url(current)} through the proxy: {error}"
                ) from error
            except (httpcore.NetworkError, httpcore.ProtocolError) as error:
                detail = str(error) or type(error).__name__
                raise TransportError(f"cannot fetch feed {shown_url(current)}: {detail}") from error
        raise _source_error(f"feed {shown_url(url)} redirects more than {MAX_REDIRECTS} times")
    finally:
        deadline.stop()
        for pool in pools.values():
            pool.close()


def _timed_out(url: str, limits: IngestLimits) -> TransportError:
    return TransportError(
        f"feed {shown_url(url)} timed out: the exchange took longer than "
        f"{limits.feed_timeout_s:g} s (connect, headers and body together)",
        hint="The feed server is slow or stalling on purpose; the next run tries again.",
    )


def _checked(url: str, configured: str) -> SplitResult:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as error:
        raise _source_error(f"feed URL {shown_url(url)} has an invalid port") from error
    if parts.scheme not in ("http", "https"):
        if url == configured:
            raise _source_error(f"feed URL {shown_url(url)} uses an unsupported protocol")
        raise _source_error(
            f"feed {shown_url(configured)} redirects to an unsupported URL {shown_url(url)!r}"
        )
    if not parts.hostname or port == 0:
        raise _source_error(f"feed URL {shown_url(url)} is not valid: it names no host")
    return parts


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _basic_auth(parts: SplitResult) -> bytes | None:
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return b"Basic " + base64.b64encode(pair)


def _without_userinfo(parts: SplitResult) -> str:
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], fragment="").geturl()


def _proxy_for(parts: SplitResult) -> str | None:
    """The proxy the environment names for this URL, if any (``NO_PROXY`` honoured)."""
    proxies = urllib.request.getproxies_environment()
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxies or bypass(parts.hostname or "", proxies):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def _check_through_proxy(guard: _AddressGuard, parts: SplitResult, deadline: Deadline) -> None:
    """Through a proxy the connection goes to the proxy, so the target is checked here."""
    if guard.allow_private:
        return
    host = parts.hostname or ""
    try:
        addresses = resolve(host, parts.port or 443, deadline.bound(None))
    except httpcore.ConnectError:
        return  # the proxy may know names we do not; it cannot reach our own host by them
    for address in addresses:
        if not is_public(address):
            raise _refused(guard.target, host, address)


def _header(response: httpcore.Response, name: bytes) -> str:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _redirect_target(current: str, location: str) -> str:
    try:
        target = urljoin(current, location.strip())
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError as error:
        raise _source_error(f"feed {shown_url(current)} redirects to an invalid URL") from error
    if parts.scheme not in ("http", "https"):
        raise _source_error(
            f"feed {shown_url(current)} redirects to an unsupported URL {shown_url(location)!r}"
        )
    return target


def _check_status(response: httpcore.Response, url: str) -> None:
    status = response.status
    if status < 400:
        return
    reason = response.extensions.get("reason_phrase", b"")
    phrase = reason.decode("latin-1", "replace") if isinstance(reason, bytes) else ""
    message = f"feed {shown_url(url)} answered HTTP {status} {phrase}".rstrip()
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise TransportError(message)
    raise _source_error(message)


def _read_capped(response: httpcore.Response, url: str, limits: IngestLimits) -> bytes:
    cap = limits.max_feed_bytes
    declared = _header(response, b"content-length").strip()
    encoding = _header(response, b"content-encoding").strip().lower()
    if declared.isdigit() and int(declared) > cap and encoding in ("", "identity"):
        raise _source_error(f"feed {shown_url(url)} is {declared} bytes, over the limit of {cap}")
    chunks: list[bytes] = []
    received = 0
    for chunk in _decoded(response.iter_stream(), encoding, url, cap):
        received += len(chunk)
        if received > cap:
            raise _source_error(f"feed {shown_url(url)} is larger than the limit of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(raw: Iterator[bytes], encoding: str, url: str, cap: int) -> Iterator[bytes]:
    """The body without its content encoding, in steps of at most ``cap + 1`` bytes."""
    if encoding in ("", "identity"):
        yield from raw
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise _source_error(f"feed {shown_url(url)} was sent {encoding}-encoded, which is not read")
    wbits = 31 if encoding != "deflate" else 15
    decoder = zlib.decompressobj(wbits)
    try:
        for chunk in raw:
            data = chunk
            while data:
                out = decoder.decompress(data, cap + 1)
                yield out
                data = decoder.unconsumed_tail
                if decoder.eof and decoder.unused_data:  # another gzip member follows
                    data = decoder.unused_data
                    decoder = zlib.decompressobj(wbits)
        yield decoder.flush()
    except zlib.error as error:
        raise _source_error(f"feed {shown_url(url)} sent a body that cannot be decoded") from error
