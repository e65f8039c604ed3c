"""A python-tuf fetcher over httpx (and ``file://``), bounded in time and size.

python-tuf's `FetcherInterface` caps lengths and wraps errors in
`DownloadError`; this adds what a hostile mirror needs on top: a connect
and read timeout on every request, a total time budget per download (a
mirror trickling one byte a second cannot hold a reader forever), and
``file://`` URLs so local mirrors and USB copies are read the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from tuf.api import exceptions
from tuf.ngclient import FetcherInterface

CHUNK_BYTES = 256 * 1024
MAX_RESUMES = 3
"""How many times one download may resume after its connection broke."""


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

    @contextlib.contextmanager
    def budget_for(self, length: int, *, min_rate_bytes_per_s: int = 256 * 1024) -> Iterator[None]:
        """Raise the time budget while downloading a file of ``length`` signed bytes."""
        saved = self.download_budget_s
        self.download_budget_s = saved + length / min_rate_bytes_per_s
        try:
            yield
        finally:
            self.download_budget_s = saved

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return self._guarded(url, self._fetch_file(Path(unquote(parts.path))))
        if parts.scheme not in ("http", "https"):
            raise exceptions.DownloadError(f"unsupported URL scheme in {url}")
        return self._guarded(url, self._fetch_http(url))

    @staticmethod
    def _guarded(url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Turn any error met while streaming into python-tuf's `DownloadError`.

        python-tuf wraps only errors raised when ``_fetch`` is called; ours
        stream lazily, so they are wrapped here, as the fetcher contract says.
        """
        try:
            yield from chunks
        except exceptions.DownloadError:
            raise
        except Exception as error:
            raise exceptions.DownloadError(f"failed to download {url}: {error}") from error

    def _fetch_http(self, url: str) -> Iterator[bytes]:
        """Stream ``url``; if the connection drops mid-way, resume with an HTTP Range request.

        A resumed answer is used only if it is a 206 starting exactly where we
        stopped; anything else ends the download with the original error.
        Every byte is still checked by python-tuf against the signed hash.
        """
        deadline = time.monotonic() + self.download_budget_s
        received = 0
        for attempt in range(MAX_RESUMES + 1):
            headers = {"Range": f"bytes={received}-"} if received else {}
            try:
                with self._client.stream("GET", url, headers=headers) as response:
                    self._check_answer(url, response, resumed_at=received)
                    for chunk in response.iter_raw():  # as received: the budget is checked often
                        if time.monotonic() > deadline:
                            raise exceptions.SlowRetrievalError(
                                f"{url} took longer than {self.download_budget_s:g} s"
                            )
                        self.bytes_received += len(chunk)
                        received += len(chunk)
                        yield chunk
                    return
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if received == 0 or attempt == MAX_RESUMES:
                    raise
                # The connection broke mid-file: ask for the rest.

    @staticmethod
    def _check_answer(url: str, response: httpx.Response, *, resumed_at: int) -> None:
        if resumed_at:
            expected = f"bytes {resumed_at}-"
            if response.status_code != 206 or not response.headers.get(
                "Content-Range", ""
            ).startswith(expected):
                raise exceptions.DownloadError(f"{url} cannot resume at byte {resumed_at}")
        elif response.status_code != 200:
            raise exceptions.DownloadHTTPError(
                f"{url} answered HTTP {response.status_code}", response.status_code
            )
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        if encoding != "identity":
            raise exceptions.DownloadError(f"{url} was sent {encoding}-encoded; refused")

    def _fetch_file(self, path: Path) -> Iterator[bytes]:
        try:
            handle = path.open("rb")
        except FileNotFoundError as error:
            raise exceptions.DownloadHTTPError(f"{path} does not exist", 404) from error
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                self.bytes_received += len(chunk)
                yield chunk
