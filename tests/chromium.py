"""Drive Debian's headless Chromium over the DevTools protocol, with the standard library only.

``--remote-debugging-pipe`` makes Chromium read protocol commands from file
descriptor 3 and write answers and events to descriptor 4, each message a
JSON object ended by a NUL byte: no websocket, no port, no chromedriver, and
no browser download. Chromium is started exactly as tests/test_read.py and
shared/TESTING.md start it (headless, no sandbox, no GPU, no background
networking, no component updates, no sync, no QUIC, a fresh profile), and
optionally behind a proxy so a recording proxy can prove that a page makes
no request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def _above_ten(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class ProtocolError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


class Chromium:
    """One headless Chromium process; use as a context manager."""

    def __init__(self, *, proxy_port: int | None = None, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._profile = Path(tempfile.mkdtemp(prefix="mirror-chromium-"))
        command_read, command_write = os.pipe()
        answer_read, answer_write = os.pipe()
        # Chromium's ends are moved to fds >= 10 so that placing them at 3 and 4 never
        # closes or overwrites one of them (os.pipe may itself return 3 or 4).
        command_read, answer_write = (_above_ten(command_read), _above_ten(answer_write))
        extra: list[str] = []
        if proxy_port is not None:
            extra += [
                f"--proxy-server=http://127.0.0.1:{proxy_port}",
                "--proxy-bypass-list=<-loopback>",
            ]

        # The pipe ends become fds 3 and 4 of Chromium by a shell redirection (a preexec_fn
        # is unsafe with threads); the originals are closed in the child.
        placement = (
            f'exec "$0" "$@" 3<&{command_read} 4>&{answer_write} '
            f"{command_read}<&- {answer_write}>&-"
        )
        self._process = subprocess.Popen(
            [
                "bash",
                "-c",
                placement,
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe",
                *extra,
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(command_read, answer_write),
        )
        os.close(command_read)
        os.close(answer_write)
        self._commands = os.fdopen(command_write, "wb")
        self._answers = os.fdopen(answer_read, "rb")
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._answers.read1(1 << 16)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                parsed = json.loads(message)
                waiting = self._waiting.pop(parsed["id"], None) if "id" in parsed else None
                if waiting is not None:
                    waiting.put(parsed)
                else:
                    self.events.put(parsed)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result."""
        answer: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            self._next_id += 1
            message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
            if session is not None:
                message["sessionId"] = session
            self._waiting[self._next_id] = answer
            self._commands.write(json.dumps(message).encode("utf-8") + b"\0")
            self._commands.flush()
        try:
            reply = answer.get(timeout=self.timeout_s)
        except queue.Empty:
            raise ProtocolError(f"no answer to {method} within {self.timeout_s} s") from None
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def open(self, url: str, *, log: bool = False) -> Page:
        """A new tab showing ``url``, once its document has loaded.

        With ``log`` the tab reports the browser's own console messages (a
        Content-Security-Policy violation among them) from its first load on:
        `Page.log_entries` returns them.
        """
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        if log:
            page.send("Log.enable")
        page.navigate(url)
        return page

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        with contextlib.suppress(ProtocolError, OSError, ValueError):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._commands, self._answers):
            with contextlib.suppress(OSError):
                stream.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Page:
    """One tab, attached over a flat session."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command for this tab."""
        return self.browser.send(method, self.session, **params)

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait until its document is complete."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), or raise its exception."""
        reply = self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ProtocolError(f"{expression[:80]}: {text}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 60.0, poll_s: float = 0.01) -> Any:
        """Poll until ``expression`` is truthy; return its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(ProtocolError):
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise ProtocolError(f"timed out waiting for {expression}")
            time.sleep(poll_s)

    def log_entries(self) -> list[dict[str, Any]]:
        """The console messages this tab reported since the last call (``Log.entryAdded``).

        Messages arrive on the same pipe as answers, in order, so every message
        sent before the answer to an earlier command is here. Other tabs'
        events stay queued.
        """
        mine: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        while True:
            try:
                event = self.browser.events.get_nowait()
            except queue.Empty:
                break
            if event.get("sessionId") == self.session and event.get("method") == "Log.entryAdded":
                mine.append(event["params"]["entry"])
            else:
                others.append(event)
        for event in others:
            self.browser.events.put(event)
        return mine

    def set_files(self, selector: str, paths: Sequence[Path]) -> None:
        """Hand ``paths`` to the file input ``selector``, as a person picking files would.

        The input is emptied first, so handing the same file again is a change too.
        """
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = ''")
        document = self.send("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=document, selector=selector)["nodeId"]
        self.send("DOM.setFileInputFiles", nodeId=node, files=[str(p) for p in paths])


@contextlib.contextmanager
def chromium(*, proxy_port: int | None = None) -> Iterator[Chromium]:
    """A Chromium for the length of a ``with`` block."""
    browser = Chromium(proxy_port=proxy_port)
    try:
        yield browser
    finally:
        browser.close()
