"""Faults injected between `mirror push` and a real WebDAV server: healthy mirrors complete,
faulty ones are reported with the right reason and completed by the next run."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mirror.cli import main
from mirror.publish import push_all
from tests.conftest import Publisher, make_config
from tests.faultproxy import Fault, FaultProxy, fault_proxy
from tests.servers.webdav import USER, dav_server

PASSWORD_ENV = "MIRROR_TEST_FAULT_DAV_PASSWORD"  # noqa: S105 - a variable name
WRONG_ENV = "MIRROR_TEST_FAULT_DAV_WRONG"


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A wsgidav server; yields its base URL."""
    os.environ[PASSWORD_ENV] = secrets.token_urlsafe(12)
    os.environ[WRONG_ENV] = "wrong-" + os.environ[PASSWORD_ENV]
    root = tmp_path_factory.mktemp("dav")
    with dav_server(root, password=os.environ[PASSWORD_ENV]) as base:
        yield base


@pytest.fixture
def proxy(dav: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of the WebDAV server."""
    port = urlsplit(dav).port
    assert port is not None
    with fault_proxy(port) as running:
        yield running


def mirror_block(
    name: str, base: str, folder: str, *, password_env: str = PASSWORD_ENV, timeout_s: float = 2
) -> str:
    return (
        f"  - name: {name}\n    type: webdav\n    public_url: {base}/pub/{folder}/\n"
        f"    limits: {{timeout_s: {timeout_s:g}, retries: 3, deadline_s: 20}}\n"
        f"    webdav:\n      url: {base}/dav/{folder}/\n      username: {USER}\n"
        f"      password: env:{password_env}\n"
    )


def setup(
    new_publisher: Callable[..., Publisher],
    dav: str,
    proxy: FaultProxy,
    *,
    faulty_password_env: str = PASSWORD_ENV,
) -> Publisher:
    """A publisher with one healthy mirror and one behind the proxy; one edition built."""
    publisher = new_publisher()
    folder = secrets.token_hex(4)
    # The healthy mirror's calls get time to spare: on a loaded machine a 2 s call limit
    # made it retry now and then, which is not what these tests are about.
    mirrors = mirror_block("healthy", dav, f"h{folder}", timeout_s=30) + mirror_block(
        "faulty", f"http://127.0.0.1:{proxy.port}", f"f{folder}", password_env=faulty_password_env
    )
    config = make_config(publisher.home, mirrors=mirrors, extra="push:\n  quorum: 1\n")
    publisher = Publisher(publisher.home, config)
    publisher.build()
    return publisher


def push(publisher: Publisher, tmp_path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    report = tmp_path / f"report-{secrets.token_hex(3)}.json"
    code = main(["--config", str(publisher.config.file), "push", "--json", str(report)])
    document = json.loads(report.read_text())
    return code, {m["mirror"]: m for m in document["mirrors"]}


TRANSIENT_FAULTS = {
    "latency": Fault("latency", latency_s=0.02),
    "reset in the middle of an upload": Fault("reset", connections=2, after_bytes=1500),
    "truncated responses": Fault("truncate", connections=2, after_bytes=40),
    "503 with Retry-After": Fault("status", connections=2, status=503, retry_after="1"),
    "500 once": Fault("status", connections=1, status=500),
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT_FAULTS))
def test_transient_faults_are_retried_and_every_mirror_verifies(
    fault: str,
    new_publisher: Callable[..., Publisher],
    dav: str,
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    publisher = setup(new_publisher, dav, proxy)
    proxy.set_fault(TRANSIENT_FAULTS[fault])
    code, results = push(publisher, tmp_path)
    assert code == 0
    assert results["healthy"]["verified"] is True
    assert results["faulty"]["verified"] is True, results["faulty"]
    if fault != "latency":
        assert results["faulty"]["retries"] >= 1
    assert results["healthy"]["retries"] == 0


PERSISTENT_FAULTS = {
    "500 every time": (Fault("status", status=500), "unreachable"),
    "503 every time": (Fault("status", status=503, retry_after="0"), "unreachable"),
    "reset every upload": (Fault("reset", after_bytes=200), "unreachable"),
    "black hole": (Fault("blackhole"), "unreachable"),
}


@pytest.mark.parametrize("fault", sorted(PERSISTENT_FAULTS))
def test_broken_mirror_is_reported_and_completed_by_the_next_run(
    fault: str,
    new_publisher: Callable[..., Publisher],
    dav: str,
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    publisher = setup(new_publisher, dav, proxy)
    injected, kind = PERSISTENT_FAULTS[fault]
    proxy.set_fault(injected)
    code, results = push(publisher, tmp_path)
    assert code == 0  # quorum 1: the healthy mirror verified
    assert results["healthy"]["verified"] is True
    faulty = results["faulty"]
    assert faulty["pushed"] is False
    assert faulty["error_kind"] == kind, faulty
    # A broken mirror never holds the healthy one back past its own deadline.
    assert results["healthy"]["seconds"] < 20

    proxy.set_fault(Fault())
    code, results = push(publisher, tmp_path)
    assert code == 0
    assert results["faulty"]["verified"] is True
    assert results["healthy"]["uploaded_files"] == 0  # nothing left to do there


def test_wrong_credentials_fail_fast_without_retries(
    new_publisher: Callable[..., Publisher],
    dav: str,
    proxy: FaultProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = setup(new_publisher, dav, proxy, faulty_password_env=WRONG_ENV)
    code, results = push(publisher, tmp_path)
    assert code == 0
    assert results["faulty"]["error_kind"] == "auth"
    assert results["faulty"]["retries"] == 0
    out, err = capsys.readouterr()
    for secret in (os.environ[PASSWORD_ENV], os.environ[WRONG_ENV]):
        assert secret not in out + err


def test_quorum_not_reached(
    new_publisher: Callable[..., Publisher],
    dav: str,
    proxy: FaultProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = setup(new_publisher, dav, proxy)
    config = publisher.config.file
    config.write_text(config.read_text().replace("quorum: 1", "quorum: 2"))
    proxy.set_fault(Fault("status", status=500))
    code, _ = push(publisher, tmp_path)
    assert code == 8
    assert "only 1 of 2 mirrors verified" in capsys.readouterr().err


def test_the_push_waits_as_long_as_retry_after_says(
    new_publisher: Callable[..., Publisher], dav: str, proxy: FaultProxy
) -> None:
    """Through the whole pipeline, a 503's Retry-After sets the wait (recorded, not slept)."""
    publisher = setup(new_publisher, dav, proxy)
    proxy.set_fault(Fault("status", connections=2, status=503, retry_after="17"))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    results = asyncio.run(push_all(publisher.config, sleep=sleep))
    by_name = {r.mirror: r for r in results}
    assert by_name["faulty"].pushed, by_name["faulty"]
    assert by_name["faulty"].retries == len(waits) == 2
    assert waits == [17.0, 17.0]
    assert by_name["healthy"].retries == 0


def test_a_slow_honest_mirror_gets_the_time_its_bytes_need(
    new_publisher: Callable[..., Publisher], dav: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A deadline sized for small pushes must not fail a large one on an honest slow link:
    the push and its read-back each get `deadline_s` plus a second per 256 KiB they move."""
    publisher = new_publisher()
    (publisher.articles / "big.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(4 << 20))
    article = publisher.articles / "article-001.md"
    article.write_text(article.read_text(encoding="utf-8") + "\n![Big](big.jpg)\n", "utf-8")
    folder = secrets.token_hex(4)
    block = mirror_block("slow", f"http://127.0.0.1:{proxy.port}", f"s{folder}", timeout_s=30)
    config = make_config(publisher.home, mirrors=block.replace("deadline_s: 20", "deadline_s: 1"))
    publisher = Publisher(publisher.home, config)
    publisher.build()
    proxy.set_fault(Fault("latency", latency_s=0.01))
    code, results = push(publisher, tmp_path)
    assert code == 0, results
    assert results["slow"]["verified"] is True, results["slow"]
    assert results["slow"]["seconds"] > 1  # more than deadline_s alone would have allowed
