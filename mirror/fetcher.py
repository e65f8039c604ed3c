"""A python-tuf fetcher over httpx (and ``file://``), bounded in time and size.

python-tuf's `FetcherInterface` caps lengths and wraps errors in
`DownloadError`; this adds what a hostile mirror needs on top: a connect
and read timeout on every request, a total time budget per download (a
mirror trickling one byte a second cannot hold a reader forever), and
``file://`` URLs so local mirrors and USB copies are read the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from tuf.api import exceptions
from tuf.ngclient import FetcherInterface

CHUNK_BYTES = 256 * 1024


class MirrorFetcher(FetcherInterface):
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
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            proxy=proxy,
            # Ask for the bytes as stored: hashes are over them, and a compressed
            # answer could inflate without bound inside one chunk.
            headers={"User-Agent": "mirror-reader", "Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return self._fetch_file(Path(unquote(parts.path)))
        if parts.scheme not in ("http", "https"):
            raise exceptions.DownloadError(f"unsupported URL scheme in {url}")
        return self._fetch_http(url)

    def _fetch_http(self, url: str) -> Iterator[bytes]:
        deadline = time.monotonic() + self.download_budget_s
        with self._client.stream("GET", url) as response:
            if response.status_code != 200:
                raise exceptions.DownloadHTTPError(
                    f"{url} answered HTTP {response.status_code}", response.status_code
                )
            encoding = response.headers.get("Content-Encoding", "identity").lower()
            if encoding != "identity":
                raise exceptions.DownloadError(f"{url} was sent {encoding}-encoded; refused")
            for chunk in response.iter_raw(CHUNK_BYTES):
                if time.monotonic() > deadline:
                    raise exceptions.SlowRetrievalError(
                        f"{url} took longer than {self.download_budget_s:g} s"
                    )
                self.bytes_received += len(chunk)
                yield chunk

    def _fetch_file(self, path: Path) -> Iterator[bytes]:
        try:
            handle = path.open("rb")
        except FileNotFoundError as error:
            raise exceptions.DownloadHTTPError(f"{path} does not exist", 404) from error
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                self.bytes_received += len(chunk)
                yield chunk
