"""A python-tuf fetcher for hostile mirrors: bounded in size, bounded in *total* time.

python-tuf's `FetcherInterface` caps lengths and wraps errors in
`DownloadError`. A censor has more tricks than a long answer: it can accept a
connection and say nothing (black hole), or send one byte every half second,
headers included, so that no single read ever times out (trickle). So every
download here runs under a wall-clock deadline enforced at the socket: each
connect, read and write gets ``min(its own timeout, time left)``, and the
download fails with `SlowRetrievalError` when the budget is spent, wherever
it is — in the TLS handshake, the status line, the headers or the body.

HTTP is spoken with httpcore under `mirror.timedhttp`, the deadline machinery
the publisher's feed fetch uses too.
``file://`` URLs are read the same way, so a local mirror or a USB copy is
just another mirror. A download whose connection breaks mid-file resumes
with an HTTP Range request (only if the answer is a 206 starting exactly
where we stopped); every byte is still checked by python-tuf against the
signed hash.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpcore
from tuf.api import exceptions
from tuf.ngclient import FetcherInterface

from mirror import caps, fsutil
from mirror.timedhttp import Deadline, DeadlineBackend, connection_pool

CHUNK_BYTES = 256 * 1024
MAX_RESUMES = 3
"""How many times one download may resume after its connection broke."""
USER_AGENT = b"mirror-reader"


class DeadlineFetcher(FetcherInterface):
    """Fetches http(s) and file URLs with timeouts and a per-download time budget."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        download_budget_s: float = 600.0,
        proxy: str | None = None,
    ) -> None:
        self.download_budget_s = download_budget_s
        self.bytes_received = 0
        """Everything this fetcher received, metadata and targets (for reports)."""
        self._timeouts = {
            "connect": connect_timeout_s,
            "read": read_timeout_s,
            "write": read_timeout_s,
            "pool": connect_timeout_s,
        }
        self._deadline = Deadline()
        self._pool = connection_pool(proxy, DeadlineBackend(self._deadline))

    @contextlib.contextmanager
    def budget_for(self, length: int) -> Iterator[None]:
        """Raise the time budget while downloading a file of ``length`` signed bytes.

        By the time the slowest honest link needs for them
        (`caps.MIN_TRANSFER_RATE_BYTES_PER_S`).
        """
        saved = self.download_budget_s
        self.download_budget_s = saved + length / caps.MIN_TRANSFER_RATE_BYTES_PER_S
        try:
            yield
        finally:
            self.download_budget_s = saved

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return self._guarded(url, self._fetch_file(Path(unquote(parts.path))))
        if parts.scheme not in ("http", "https"):
            raise exceptions.DownloadError(f"unsupported URL scheme in {url}")
        return self._guarded(url, self._fetch_http(url))

    def _guarded(self, url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Turn any error met while streaming into python-tuf's `DownloadError`.

        python-tuf wraps only errors raised when ``_fetch`` is called; ours
        stream lazily, so they are wrapped here, as the fetcher contract says.
        A timeout after the deadline is a `SlowRetrievalError`.
        """
        self._deadline.until = time.monotonic() + self.download_budget_s
        try:
            yield from chunks
        except exceptions.DownloadError:
            raise
        except httpcore.TimeoutException as error:
            if self._deadline.passed:
                raise exceptions.SlowRetrievalError(
                    f"{url} took longer than {self.download_budget_s:g} s"
                ) from error
            raise exceptions.DownloadError(f"{url}: timed out ({error})") from error
        except Exception as error:
            raise exceptions.DownloadError(f"failed to download {url}: {error}") from error
        finally:
            self._deadline.until = None

    def _fetch_http(self, url: str) -> Iterator[bytes]:
        """Stream ``url``; if the connection drops mid-way, resume with an HTTP Range request."""
        received = 0
        for attempt in range(MAX_RESUMES + 1):
            headers = [(b"User-Agent", USER_AGENT), (b"Accept-Encoding", b"identity")]
            if received:
                headers.append((b"Range", f"bytes={received}-".encode("ascii")))
            try:
                with self._pool.stream(
                    "GET", url, headers=headers, extensions={"timeout": self._timeouts}
                ) as response:
                    self._check_answer(url, response, resumed_at=received)
                    for chunk in response.iter_stream():
                        self.bytes_received += len(chunk)
                        received += len(chunk)
                        yield chunk
                    return
            except (httpcore.ReadError, httpcore.RemoteProtocolError):
                if received == 0 or attempt == MAX_RESUMES or self._deadline.passed:
                    raise
                # The connection broke mid-file: ask for the rest.

    @staticmethod
    def _check_answer(url: str, response: httpcore.Response, *, resumed_at: int) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        if resumed_at:
            content_range = headers.get("content-range", "")
            if response.status != 206 or not content_range.startswith(f"bytes {resumed_at}-"):
                raise exceptions.DownloadError(f"{url} cannot resume at byte {resumed_at}")
        elif response.status != 200:
            raise exceptions.DownloadHTTPError(
                f"{url} answered HTTP {response.status}", response.status
            )
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            # Hashes are over the stored bytes, and a compressed answer could
            # inflate without bound inside one chunk: refuse it.
            raise exceptions.DownloadError(f"{url} was sent {encoding}-encoded; refused")

    def _fetch_file(self, path: Path) -> Iterator[bytes]:
        """A file of a ``file://`` mirror (a folder, a USB stick): regular files only.

        Opened without blocking and checked with ``fstat`` before any read, so a
        FIFO, a device or a socket planted in the mirror is refused at once
        instead of hanging the reader; a symbolic link is followed only to a
        regular file. Reads still count against the download's deadline.
        """
        try:
            fd, _ = fsutil.open_regular(path)
        except FileNotFoundError as error:
            raise exceptions.DownloadHTTPError(f"{path} does not exist", 404) from error
        except OSError as error:  # a FIFO, a socket (ENXIO), a device: not a file
            raise exceptions.DownloadError(f"{path} is not a regular file; refused") from error
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                self._deadline.bound(None)  # raises once the download's time is up
                self.bytes_received += len(chunk)
                yield chunk
