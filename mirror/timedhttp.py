"""HTTP under one wall-clock deadline: httpcore with the deadline under every socket call.

A hostile or broken server has more tricks than a long answer: it can
accept a connection and say nothing (black hole), send the status line and
then one header byte a second, flood ``100 Continue`` answers, or trickle
the body, so that no single read ever times out. So every exchange that
must end in time runs here under a `Deadline`: each DNS look-up, connect,
TLS handshake, read and write gets ``min(its own timeout, time left)``, and
when the budget is spent the next socket call raises httpcore's
`ReadTimeout`, wherever the exchange is: the status line, the headers, an
informational answer or the body. httpcore (the engine under httpx) is used
because only its network-backend hook lets the deadline sit under every
socket call.

Two users, one piece of code: the reader's fetcher
(`mirror.client.transport.DeadlineFetcher`, a budget per download) and the
publisher's feed fetch (`mirror.ingest.feed`, one budget over the whole
exchange, redirects included). The feed also passes ``check_address``,
which sees every address a connection is about to be made to, after DNS,
so a redirect to a name that resolves to 127.0.0.1 is caught as surely as
one to the literal address (and a DNS answer that changes between look-ups
cannot slip past: the address checked is the address connected to).

DNS itself runs in a helper thread the caller stops waiting for at the
deadline: ``getaddrinfo`` has no timeout of its own, and a slow name server
(the attacker's, for the attacker's domain) would otherwise hold the run.
This module imports nothing else of `mirror`.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import httpcore

AddressCheck = Callable[[str, str, int], None]
"""Called with (host, address, port) before each connection; raises to refuse it."""


class Deadline:
    """The wall-clock limit of the exchange in progress (None: no exchange, no limit)."""

    def __init__(self) -> None:
        self.until: float | None = None

    def start(self, budget_s: float) -> None:
        """Begin an exchange that must end within ``budget_s`` seconds from now."""
        self.until = time.monotonic() + budget_s

    def stop(self) -> None:
        """The exchange is over: no limit until the next `start`."""
        self.until = None

    def bound(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to the time left; raise when none is left."""
        if self.until is None:
            return timeout
        left = self.until - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the exchange's time budget is spent")
        return left if timeout is None else min(timeout, left)

    @property
    def passed(self) -> bool:
        """True once the deadline is behind us."""
        return self.until is not None and time.monotonic() >= self.until


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every call respects the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.bound(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.bound(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.bound(timeout))
        return DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with the deadline under every look-up, connect, read and write."""

    def __init__(self, deadline: Deadline, *, check_address: AddressCheck | None = None) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline
        self._check_address = check_address

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port, self._deadline.bound(timeout))
        failure: Exception | None = None
        for address in addresses:
            if self._check_address is not None:
                self._check_address(host, address, port)
            try:
                stream = self._inner.connect_tcp(
                    address, port, self._deadline.bound(timeout), local_address, socket_options
                )
            except httpcore.ConnectError as error:  # try the next address, as browsers do
                failure = error
                continue
            return DeadlineStream(stream, self._deadline)
        raise failure or httpcore.ConnectError(f"{host} has no address to connect to")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, self._deadline.bound(timeout), socket_options
        )
        return DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses of ``host`` (an IP literal is its own), within ``timeout`` seconds."""
    literal = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(literal))]
    except ValueError:
        pass
    answer: dict[str, Any] = {}

    def look_up() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(literal, port, type=socket.SOCK_STREAM)
        except OSError as error:
            answer["error"] = error

    helper = threading.Thread(target=look_up, name="mirror-dns", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive():
        raise httpcore.ConnectTimeout(f"looking up {literal} took too long")
    if "error" in answer:
        raise httpcore.ConnectError(f"cannot look up {literal}: {answer['error']}")
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in answer["infos"]:
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def is_public(address: str) -> bool:
    """Whether ``address`` is on the public internet (not loopback, private, link-local, ...).

    An IPv4 address mapped into IPv6 (``::ffff:127.0.0.1``) is judged as the
    IPv4 address it is; ``0.0.0.0`` and ``::`` (which reach the local host)
    are not public.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """The TLS settings of every exchange made here: certificates checked against
    certifi's authorities and the host name. Made once per process and shared (an
    `ssl.SSLContext` is safe to share between connections and threads): loading the
    authorities costs about 20 ms of CPU, and a reader probes each mirror with a pool
    of its own. httpcore sets the ALPN protocols on the context it is given, the same
    ``http/1.1`` for every pool made here; a pool that asked for HTTP/2 would need a
    context of its own."""
    return ssl.create_default_context(cafile=certifi.where())


def connection_pool(proxy: str | None, backend: httpcore.NetworkBackend) -> httpcore.ConnectionPool:
    """A connection pool, direct or through an HTTP or SOCKS5 proxy.

    Credentials in the proxy URL (``http://user:pass@host:port``) are passed
    as proxy authentication, never sent to the servers.
    """
    context = verified_tls()
    if proxy is None:
        return httpcore.ConnectionPool(ssl_context=context, network_backend=backend)
    parts = urlsplit(proxy)
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if parts.scheme in ("socks5", "socks5h"):
        return httpcore.SOCKSProxy(
            proxy_url=bare, proxy_auth=auth, ssl_context=context, network_backend=backend
        )
    return httpcore.HTTPProxy(
        proxy_url=bare, proxy_auth=auth, ssl_context=context, network_backend=backend
    )
