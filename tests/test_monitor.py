"""`mirror status`, metrics, webhooks, JSON logs and push shards, against real loopback servers.

Mirrors are `tests.censor` servers on 127.0.0.1 serving copies of one
publisher's tree: honest (healthy), an older tree (stale), flipped bytes
(tampered), an expired tree, and nothing listening (unreachable).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mirror import shards
from mirror.cli import main
from mirror.client.transport import DeadlineFetcher
from mirror.errors import UsageError
from tests.censor import censor_mirrors, snapshot_tree
from tests.conftest import (
    BUILD_TIME,
    PASSPHRASE,
    Publisher,
    make_config,
    make_keys,
    write_articles,
)

REPO = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "webhook-secret-0c5f7e"  # noqa: S105 - a test value that must never be logged
PROXY_PASSWORD = "proxy-pass-9d1a"  # noqa: S105 - a test value that must never be logged


@dataclass(frozen=True)
class Trees:
    """A publisher whose local tree is at edition 2, with a copy of the edition-1 tree."""

    home: Path
    old: Path
    new: Path
    expired: Path


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    home = tmp_path_factory.mktemp("monitored")
    write_articles(home / "articles", 3)
    config = make_config(home)

    make_keys(config)
    publisher = Publisher(home, config)
    saved = home / "trees"
    publisher.build(when=datetime.now(UTC) - timedelta(days=40))
    snapshot_tree(config.publish_dir, saved / "expired")
    publisher.build(when=BUILD_TIME - timedelta(minutes=30))
    snapshot_tree(config.publish_dir, saved / "old")
    write_articles(publisher.articles, 2, start=3)
    publisher.build()
    snapshot_tree(config.publish_dir, saved / "new")
    return Trees(home, saved / "old", saved / "new", saved / "expired")


def fresh_home(trees: Trees, tmp_path: Path) -> Path:
    """A copy of the publisher (keys, output, state) only this test uses."""
    home = tmp_path / "home"
    shutil.copytree(trees.home, home, ignore=shutil.ignore_patterns("trees"))
    return home


def write_config(home: Path, mirrors: dict[str, str], extra: str = "") -> Path:
    """A config whose mirrors are read at the given public URLs (pushed nowhere)."""
    body = "".join(
        f"  - name: {name}\n    type: local\n    public_url: {url}\n"
        f"    local:\n      path: {home / 'unused' / name}\n"
        for name, url in mirrors.items()
    )
    path = home / "mirror.yaml"
    path.write_text(
        "publisher:\n  name: Test Newsroom\n  title: Test News\n  language: en\n"
        "sources:\n  - type: directory\n    path: articles\n"
        f"keys:\n  dir: {home / 'keys'}\n  passphrase: file:passphrase\n"
        f"output: out\nmirrors:\n{body}{extra}",
        encoding="utf-8",
    )
    return path


def status(config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = config.parent / f"status-{time.monotonic_ns()}.json"
    with out.open("w") as handle, contextlib.redirect_stdout(handle):
        code = main(["--config", str(config), "status", "--json", *extra])
    text = out.read_text()
    return code, json.loads(text) if text.strip() else {}


def by_mirror(document: dict[str, Any], vantage: str = "direct") -> dict[str, dict[str, Any]]:
    return {m["mirror"]: m for m in document["mirrors"] if m["vantage_point"] == vantage}


# --- status ---------------------------------------------------------------------------


def test_status_classifies_every_mirror_and_exits_8_below_quorum(
    trees: Trees, tmp_path: Path
) -> None:
    home = fresh_home(trees, tmp_path)
    specs = [
        ("honest", trees.new),
        ("stale", trees.old),
        ("tamper", trees.new),
        ("refused", trees.new),
        ("expired", trees.expired),
    ]
    with censor_mirrors(specs) as urls:
        names = ["good", "old", "flipped", "gone", "dated"]
        config = write_config(home, dict(zip(names, urls, strict=True)), "push:\n  quorum: 1\n")
        code, document = status(config)
        assert code == 0
        rows = by_mirror(document)
        assert {name: rows[name]["verdict"] for name in names} == {
            "good": "healthy",
            "old": "stale",
            "flipped": "tampered",
            "gone": "unreachable",
            "dated": "expired",
        }
        assert rows["good"]["lag_versions"] == 0
        assert rows["good"]["served_timestamp_version"] == rows["good"]["local_timestamp_version"]
        assert rows["old"]["lag_versions"] >= 1
        assert 25 <= rows["old"]["lag_minutes"] <= 35  # edition 1 was built 30 min earlier
        assert rows["gone"]["reachable"] is False
        assert rows["flipped"]["reachable"] is True
        assert all(row["response_seconds"] >= 0 for row in rows.values())
        assert document["healthy_per_vantage_point"] == {"direct": 1}

        config.write_text(config.read_text().replace("quorum: 1", "quorum: 2"))
        code, _ = status(config)
        assert code == 8


def test_status_table_names_each_verdict(
    trees: Trees, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = fresh_home(trees, tmp_path)
    with censor_mirrors([("honest", trees.new), ("stale", trees.old)]) as urls:
        config = write_config(home, {"good": urls[0], "old": urls[1]})
        assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    assert "healthy" in out
    assert "STALE" in out


# --- vantage points through a proxy -------------------------------------------------------


@dataclass
class ForwardProxy:
    """A forwarding HTTP proxy on 127.0.0.1 that counts what it relays."""

    port: int = 0
    requests: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    state = ForwardProxy()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            state.auth.append(self.headers.get("Proxy-Authorization"))
            if not self.path.startswith("http://127.0.0.1:"):
                self.send_error(403)
                return
            try:
                with opener.open(self.path, timeout=10) as upstream:
                    body = upstream.read()
                    code = upstream.status
            except urllib.error.HTTPError as error:
                body, code = b"", error.code
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_checks_go_through_each_vantage_points_proxy(
    trees: Trees,
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home = fresh_home(trees, tmp_path)
    monkeypatch.setenv(
        "MIRROR_TEST_PROXY", f"http://reader:{PROXY_PASSWORD}@127.0.0.1:{forward_proxy.port}"
    )
    extra = (
        "monitor:\n  vantage_points:\n"
        "    - name: abroad\n      proxy: env:MIRROR_TEST_PROXY\n"
        "    - name: censored\n      proxy: http://127.0.0.1:9\n"  # nothing listens
    )
    with censor_mirrors([("honest", trees.new), ("tamper", trees.new)]) as urls:
        config = write_config(home, {"good": urls[0], "flipped": urls[1]}, extra)
        code, document = status(config)
    abroad = by_mirror(document, "abroad")
    censored = by_mirror(document, "censored")
    assert abroad["good"]["verdict"] == "healthy"
    assert abroad["flipped"]["verdict"] == "tampered"
    assert censored["good"]["verdict"] == "unreachable"
    assert censored["flipped"]["verdict"] == "unreachable"
    assert code == 8  # from "censored", no mirror is healthy
    # Every request of the "abroad" checks reached the mirrors through the proxy.
    assert any("/pub/metadata/timestamp.json" in r for r in forward_proxy.requests)
    assert any("edition.json" in r for r in forward_proxy.requests)
    assert len({r.split("/pub/")[0] for r in forward_proxy.requests}) == 2  # both mirrors
    assert forward_proxy.auth
    assert all(a and a.startswith("Basic ") for a in forward_proxy.auth)
    out, err = capfd.readouterr()
    assert PROXY_PASSWORD not in out + err + json.dumps(document)


def test_socks5_proxies_are_supported() -> None:
    fetcher = DeadlineFetcher(proxy="socks5://127.0.0.1:9050")  # needs httpx[socks] (socksio)
    fetcher.close()


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("  vantage_points:\n    - name: x\n      proxy: http://u:pw@h:1\n", "password inline"),
        ("  vantage_points:\n    - name: x\n      proxy: ftp://h\n", "socks5://"),
        ("  vantage_points:\n    - {name: a}\n    - {name: a}\n", "used twice"),
        ("  webhook:\n    url: https://h/x\n    secret: s3cret\n", "not the secret itself"),
        ("  metrics:\n    prot: 1\n", "Did you mean 'port'"),
    ],
)
def test_monitor_config_errors_name_the_line(
    trees: Trees, tmp_path: Path, block: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home = fresh_home(trees, tmp_path)
    config = write_config(home, {"a": "http://127.0.0.1:9/"}, "monitor:\n" + block)
    assert main(["--config", str(config), "status"]) == 3
    err = capsys.readouterr().err
    assert problem in err
    assert re.search(r"mirror\.yaml:\d+: monitor\.", err), err
    assert "s3cret" not in err
    assert "pw@" not in err


# --- metrics ---------------------------------------------------------------------------


def _families(text: str) -> dict[str, list[Any]]:
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def test_watch_serves_metrics_and_stops_cleanly_on_ctrl_c(trees: Trees, tmp_path: Path) -> None:
    home = fresh_home(trees, tmp_path)
    with censor_mirrors([("honest", trees.new), ("stale", trees.old)]) as urls:
        config = write_config(home, {"good": urls[0], "old": urls[1]})
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "mirror", "--config", str(config), "status"),
                *("--watch", "0.5", "--metrics-port", "0", "--json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            text=True,
        )
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
            assert match, line
            url = match.group(0)
            deadline = time.monotonic() + 60
            families: dict[str, list[Any]] = {}
            while time.monotonic() < deadline:
                families = _families(httpx.get(url, timeout=5).text)
                if families.get("mirror_mirror_healthy"):
                    break
                time.sleep(0.2)
            healthy = {s.labels["mirror"]: s.value for s in families["mirror_mirror_healthy"]}
            assert healthy == {"good": 1.0, "old": 0.0}
            lag = {s.labels["mirror"]: s.value for s in families["mirror_mirror_lag_versions"]}
            assert lag["good"] == 0
            assert lag["old"] >= 1
            verdict = {
                (s.labels["mirror"], s.labels["verdict"]): s.value
                for s in families["mirror_mirror_verdict"]
            }
            assert verdict[("old", "stale")] == 1
            assert verdict[("old", "healthy")] == 0
            assert all(
                s.labels["vantage_point"] == "direct" for s in families["mirror_mirror_healthy"]
            )
            assert families["mirror_mirror_response_seconds"][0].value > 0
            stamp = families["mirror_mirror_last_check_timestamp_seconds"][0].value
            assert abs(stamp - time.time()) < 120
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    first = json.loads(out.splitlines()[0])  # --watch --json: one document per line
    assert {m["mirror"] for m in first["mirrors"]} == {"good", "old"}


def local_mirrors(home: Path, names: list[str], extra: str = "") -> Path:
    body = "".join(
        f"  - name: {n}\n    type: local\n    public_url: file://{home / 'm' / n}/\n"
        f"    local:\n      path: {home / 'm' / n}\n"
        for n in names
    )
    return make_config(home, mirrors=body, extra=extra).file


def test_sync_writes_a_node_exporter_textfile(new_publisher: Any, tmp_path: Path) -> None:
    publisher = new_publisher()
    config = local_mirrors(publisher.home, ["a", "b"])
    textfile = tmp_path / "textfile" / "mirror.prom"
    before = time.time()
    assert main(["--config", str(config), "sync", "--metrics-textfile", str(textfile)]) == 0
    families = _families(textfile.read_text())
    assert families["mirror_sync_success"][0].value == 1
    assert families["mirror_sync_last_success_timestamp_seconds"][0].value >= before
    verified = {s.labels["mirror"]: s.value for s in families["mirror_push_mirror_verified"]}
    assert verified == {"a": 1.0, "b": 1.0}
    failed = {s.labels["mirror"]: s.value for s in families["mirror_push_mirror_failed"]}
    assert failed == {"a": 0.0, "b": 0.0}
    pushed = {s.labels["mirror"]: s.value for s in families["mirror_push_mirror_uploaded_bytes"]}
    assert pushed["a"] > 0
    phases = {s.labels["phase"] for s in families["mirror_sync_duration_seconds"]}
    assert phases == {"build", "push"}
    success_time = families["mirror_sync_last_success_timestamp_seconds"][0].value

    # A failed push keeps the last success time and says it failed.
    config.write_text(config.read_text() + "push:\n  quorum: 3\n")
    assert main(["--config", str(config), "push", "--metrics-textfile", str(textfile)]) == 8
    families = _families(textfile.read_text())
    assert families["mirror_sync_success"][0].value == 0
    assert families["mirror_sync_last_success_timestamp_seconds"][0].value == success_time
    assert [p.name for p in textfile.parent.iterdir()] == ["mirror.prom"]  # atomic: no temp left


# --- webhook ---------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str = ""
    events: list[tuple[dict[str, Any], bytes, str]] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.fail_next:
                state.fail_next -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            state.events.append(
                (json.loads(body), body, self.headers.get("X-Mirror-Signature", ""))
            )
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_webhook_sends_one_signed_event_per_change_never_twice(
    trees: Trees,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = fresh_home(trees, tmp_path)
    monkeypatch.setenv("MIRROR_TEST_WEBHOOK", WEBHOOK_SECRET)
    extra = (
        f"monitor:\n  webhook:\n    url: {receiver.url}\n    secret: env:MIRROR_TEST_WEBHOOK\n"
        "    timeout_s: 2\n    retries: 2\n"
    )
    with censor_mirrors(
        [("honest", trees.new), ("stale", trees.old), ("tamper", trees.new), ("honest", trees.new)]
    ) as urls:
        mirrors = {"good": urls[0], "old": urls[1], "flipped": urls[2]}
        config = write_config(home, mirrors, extra)
        receiver.fail_next = 1  # the first POST fails once: retried, still one event
        status(config, "--webhook-once")
        first = sorted((e["mirror"], e["event"], e["verdict"]) for e, _, _ in receiver.events)
        assert first == [("flipped", "unhealthy", "tampered"), ("old", "unhealthy", "stale")]
        for document, body, signature in receiver.events:
            expected = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(signature, f"sha256={expected}")
            assert set(document) == {
                "event",
                "mirror",
                "vantage_point",
                "verdict",
                "previous",
                "detail",
                "time",
            }
            assert document["previous"] is None
            assert document["vantage_point"] == "direct"

        status(config, "--webhook-once")  # a second run (a restart): nothing new to say
        assert len(receiver.events) == 2

        # "old" catches up (now served by an honest mirror): exactly one recovery event.
        config = write_config(home, {**mirrors, "old": urls[3]}, extra)
        status(config, "--webhook-once")
        status(config, "--webhook-once")
    assert len(receiver.events) == 3
    last = receiver.events[-1][0]
    assert (last["mirror"], last["event"], last["verdict"], last["previous"]) == (
        "old",
        "recovered",
        "healthy",
        "stale",
    )
    out, err = capsys.readouterr()
    assert WEBHOOK_SECRET not in out + err
    assert WEBHOOK_SECRET not in (home / "out" / "state" / "monitor.json").read_text()


def test_without_watch_or_webhook_once_no_alert_is_sent(
    trees: Trees, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = fresh_home(trees, tmp_path)
    monkeypatch.setenv("MIRROR_TEST_WEBHOOK", WEBHOOK_SECRET)
    extra = f"monitor:\n  webhook:\n    url: {receiver.url}\n    secret: env:MIRROR_TEST_WEBHOOK\n"
    with censor_mirrors([("tamper", trees.new)]) as urls:
        status(write_config(home, {"flipped": urls[0]}, extra))
    assert receiver.events == []


# --- JSON logs -------------------------------------------------------------------------


def test_json_logs_are_one_object_per_line_without_secrets(
    trees: Trees,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    receiver: Receiver,
) -> None:
    home = fresh_home(trees, tmp_path)
    monkeypatch.setenv("MIRROR_TEST_WEBHOOK", WEBHOOK_SECRET)
    monkeypatch.setenv("MIRROR_TEST_PROXY", f"http://u:{PROXY_PASSWORD}@127.0.0.1:9")
    extra = (
        f"monitor:\n  webhook:\n    url: {receiver.url}\n    secret: env:MIRROR_TEST_WEBHOOK\n"
        "  vantage_points:\n    - name: direct\n"
        "    - name: tor\n      proxy: env:MIRROR_TEST_PROXY\n"
    )
    with censor_mirrors([("honest", trees.new), ("tamper", trees.new)]) as urls:
        config = write_config(home, {"good": urls[0], "flipped": urls[1]}, extra)
        code = main(["--log-format", "json", "--config", str(config), "status", "--webhook-once"])
    assert code == 8  # from "tor" nothing is healthy
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in err.splitlines()]
    checked = [r for r in records if r["event"] == "mirror.checked"]
    assert {(r["mirror"], r["vantage_point"]) for r in checked} == {
        ("good", "direct"),
        ("flipped", "direct"),
        ("good", "tor"),
        ("flipped", "tor"),
    }
    for record in checked:
        assert {"time", "level", "message", "duration_s", "error_class", "edition"} <= set(record)
    assert records[-1]["event"] == "command.failed"
    assert records[-1]["error_class"] == "quorum"
    for secret in (WEBHOOK_SECRET, PROXY_PASSWORD, PASSPHRASE):
        assert secret not in out + err

    # push/sync log each mirror's result, with the edition and its duration.
    publisher_home = tmp_path / "pusher"
    shutil.copytree(trees.home, publisher_home, ignore=shutil.ignore_patterns("trees", "out"))
    config = local_mirrors(publisher_home, ["a", "b"])
    assert main(["--log-format", "json", "--config", str(config), "sync"]) == 0
    _, err = capsys.readouterr()
    records = [json.loads(line) for line in err.splitlines()]
    pushed = [r for r in records if r["event"] == "mirror.pushed"]
    assert {r["mirror"] for r in pushed} == {"a", "b"}
    assert all(r["edition"] and r["duration_s"] >= 0 and r["error_class"] is None for r in pushed)
    built = [r for r in records if r["event"] == "edition.built"]
    assert len(built) == 1
    assert built[0]["duration_s"] > 0
    assert PASSPHRASE not in err


# --- shards ----------------------------------------------------------------------------


def test_shard_assignment_is_stable_and_validated() -> None:
    names = [f"mirror-{i}" for i in range(40)]
    for count in (1, 2, 3, 7):
        owners = [[shards.Shard(i, count).owns(n) for i in range(count)] for n in names]
        assert all(sum(row) == 1 for row in owners)
    assert shards.shard_of("s3-eu", 5) == shards.shard_of("s3-eu", 5)
    for bad in ("2/2", "1", "-1/2", "a/b", "0/0", "1/0"):
        with pytest.raises(UsageError):
            shards.parse_shard(bad)


def test_bad_shard_is_a_usage_error(new_publisher: Any, capsys: pytest.CaptureFixture[str]) -> None:
    publisher = new_publisher()
    assert main(["--config", str(publisher.config.file), "push", "--shard", "3/2"]) == 2
    assert "--shard" in capsys.readouterr().err


def test_two_push_shards_run_at_once_and_push_every_mirror_exactly_once(
    new_publisher: Any, tmp_path: Path
) -> None:
    publisher = new_publisher(0)
    write_articles(publisher.articles, 150)
    names = [f"m{i}" for i in range(6)]
    home = publisher.home
    body = "".join(
        f"  - name: {n}\n    type: local\n    public_url: file://{home / 'm' / n}/\n"
        f"    limits: {{concurrency: 1}}\n    local:\n      path: {home / 'm' / n}\n"
        for n in names
    )
    config = make_config(home, mirrors=body, extra="push:\n  quorum: 6\n")
    Publisher(home, config).build()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "mirror", "--config", str(config.file), "push"),
                *("--shard", f"{i}/2", "--json", str(tmp_path / f"shard{i}.json")),
                *("--metrics-textfile", str(tmp_path / f"shard{i}.prom")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in (0, 1)
    ]
    both_running = False
    while any(p.poll() is None for p in processes):
        both_running = both_running or all(p.poll() is None for p in processes)
        time.sleep(0.01)
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert both_running, "the shards did not overlap"
    assert time.monotonic() - started < 120
    pushed: list[str] = []
    for i in (0, 1):
        document = json.loads((tmp_path / f"shard{i}.json").read_text())
        assert all(m["verified"] for m in document["mirrors"])
        assert {m["mirror"] for m in document["mirrors"]} == {
            n for n in names if shards.shard_of(n, 2) == i
        }
        pushed += [m["mirror"] for m in document["mirrors"]]
        families = _families((tmp_path / f"shard{i}.prom").read_text())
        assert {s.labels["shard"] for s in families["mirror_push_mirror_verified"]} == {f"{i}/2"}
    assert sorted(pushed) == sorted(names)  # every mirror exactly once
    state = json.loads((config.output_dir / "state" / "mirrors.json").read_text())
    assert set(state) == set(names)  # both shards' results merged, none lost


def test_the_same_mirror_is_never_pushed_by_two_runs_at_once(
    new_publisher: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    publisher.build()
    config = publisher.config
    from mirror import runlocks

    with runlocks.mirrors_locked(config.output, ["a"]):
        assert main(["--config", str(config.file), "push"]) == 4
    assert "pushing to mirror a" in capsys.readouterr().err
    assert main(["--config", str(config.file), "push"]) == 0


def test_sync_shards_other_than_0_do_not_build(
    new_publisher: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    publisher.build()
    before = (publisher.config.publish_dir / "metadata" / "timestamp.json").read_bytes()
    code = main(["--config", str(publisher.config.file), "sync", "--shard", "1/2"])
    assert code in (0, 8)  # mirror "a" may belong to shard 0: then this shard pushes nothing
    after = (publisher.config.publish_dir / "metadata" / "timestamp.json").read_bytes()
    assert before == after
    assert "shard 1/2: pushing the current publish tree" in capsys.readouterr().out
