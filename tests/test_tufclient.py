"""`mirror tuf-client`: the TUF conformance suite's client protocol, against real repositories.

The repository is what `mirror build` publishes (or, for delegation graphs
our layout never makes, one signed here with python-tuf's Metadata API),
served by a stdlib HTTP server on 127.0.0.1 that records every request.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from mirror.build import BuildResult
from mirror.cli import main
from tests.conftest import Publisher


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Static files; every request path is recorded, nothing is logged."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Served:
    """A folder served over HTTP on 127.0.0.1."""

    folder: Path
    url: str
    requests: list[str] = field(default_factory=list)

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata"

    @property
    def targets_url(self) -> str:
        return f"{self.url}/targets"

    def target_requests(self) -> list[str]:
        return [path for path in self.requests if path.startswith("/targets/")]


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[Served]:
    """Serve ``folder`` (holding ``metadata/`` and ``targets/``) until the block ends."""
    requests: list[str] = []
    handler = type("Handler", (_RecordingHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Served(folder, f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(built: tuple[Publisher, BuildResult], tmp_path: Path) -> Iterator[Served]:
    """A private copy of the shared publish tree, served (so a test may tamper with it)."""
    _, result = built
    copy = tmp_path / "repository"
    shutil.copytree(result.publish_dir, copy)
    with serve(copy) as repository:
        yield repository


class Client:
    """Runs ``mirror tuf-client`` in-process with one metadata and one target folder."""

    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.metadata_dir = home / "metadata"
        self.target_dir = home / "targets"
        self.capsys = capsys

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main(["tuf-client", "--metadata-dir", str(self.metadata_dir), *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def init(self, root: Path) -> int:
        return self.run("init", str(root))[0]

    def refresh(self, repository: Served) -> tuple[int, str]:
        code, _, err = self.run("--metadata-url", repository.metadata_url, "refresh")
        return code, err

    def download(self, repository: Served, *names: str) -> tuple[int, str]:
        targets = [part for name in names for part in ("--target-name", name)]
        code, _, err = self.run(
            "--metadata-url",
            repository.metadata_url,
            *targets,
            "--target-base-url",
            repository.targets_url,
            "--target-dir",
            str(self.target_dir),
            "download",
        )
        return code, err

    def artifact(self, name: str) -> Path:
        return self.target_dir / quote(name, safe="")


@pytest.fixture
def client(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Client:
    return Client(tmp_path / "client", capsys)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_init_refresh_download(
    built: tuple[Publisher, BuildResult], served: Served, client: Client
) -> None:
    publisher, result = built
    assert client.init(publisher.root_json) == 0
    assert (client.metadata_dir / "root.json").read_bytes() == publisher.root_json.read_bytes()
    assert served.requests == []  # init makes no request

    assert client.refresh(served) == (0, "")
    for role in ("root", "timestamp", "snapshot", "targets"):
        assert (client.metadata_dir / f"{role}.json").is_file(), role  # non-versioned names

    edition = f"editions/{result.eid}.zip"
    article = "articles/article-001.html"  # found through the content hash bins
    assert client.download(served, edition, article) == (0, "")
    assert client.artifact(edition).read_bytes() == result.zip_path.read_bytes()
    assert "Статья номер 1" in client.artifact(article).read_text(encoding="utf-8")
    assert sorted(p.name for p in client.target_dir.iterdir()) == sorted(
        [quote(edition, safe=""), quote(article, safe="")]
    )  # nothing else: no temporary files left behind


def test_a_cached_artifact_is_not_downloaded_again(
    built: tuple[Publisher, BuildResult], served: Served, client: Client
) -> None:
    publisher, result = built
    edition = f"editions/{result.eid}.zip"
    assert client.init(publisher.root_json) == 0
    assert client.download(served, edition) == (0, "")
    assert len(served.target_requests()) == 1
    assert client.download(served, edition) == (0, "")
    assert len(served.target_requests()) == 1

    # A damaged local copy is not "cached": it is fetched again and replaced.
    client.artifact(edition).write_bytes(b"damaged")
    assert client.download(served, edition) == (0, "")
    assert len(served.target_requests()) == 2
    assert client.artifact(edition).read_bytes() == result.zip_path.read_bytes()


def test_a_target_altered_on_the_server_fails_and_leaves_no_file(
    built: tuple[Publisher, BuildResult], served: Served, client: Client
) -> None:
    publisher, result = built
    altered = list((served.folder / "targets" / "editions").glob(f"*.{result.eid}.zip"))
    assert altered
    for path in altered:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    assert client.init(publisher.root_json) == 0
    code, err = client.download(served, f"editions/{result.eid}.zip")
    assert code == 1
    assert "hash" in one_line(err)
    assert not client.target_dir.exists() or not any(client.target_dir.iterdir())


def test_a_missing_target_fails(
    built: tuple[Publisher, BuildResult], served: Served, client: Client
) -> None:
    publisher, _ = built
    assert client.init(publisher.root_json) == 0
    code, err = client.download(served, "articles/no-such-article.html")
    assert code == 1
    assert "no-such-article" in one_line(err)


def test_an_expired_timestamp_fails(
    built: tuple[Publisher, BuildResult], new_publisher: Callable[..., Publisher], client: Client
) -> None:
    publisher = new_publisher(keys_from=built[0])
    result = publisher.build(when=datetime.now(UTC) - timedelta(days=10))  # timestamp: 7 days
    with serve(result.publish_dir) as repository:
        assert client.init(publisher.root_json) == 0
        code, err = client.refresh(repository)
    assert code == 1
    assert "expired" in one_line(err)


def test_a_rolled_back_timestamp_fails(
    built: tuple[Publisher, BuildResult], new_publisher: Callable[..., Publisher], client: Client
) -> None:
    publisher = new_publisher(keys_from=built[0])
    first = publisher.build()
    old_timestamp = (first.publish_dir / "metadata" / "timestamp.json").read_bytes()
    second = publisher.build()
    assert second.version == first.version + 1
    with serve(second.publish_dir) as repository:
        assert client.init(publisher.root_json) == 0
        assert client.refresh(repository) == (0, "")
        (repository.folder / "metadata" / "timestamp.json").write_bytes(old_timestamp)
        code, err = client.refresh(repository)
    assert code == 1
    assert "older" in one_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus", "refresh"],
        ["refresh"],  # no --metadata-url
        ["init"],  # no trusted root
        ["--metadata-url", "http://127.0.0.1:9/metadata", "download"],  # no target options
        ["--metadata-url", "http://127.0.0.1:9/metadata", "refresh"],  # not initialised
        ["frobnicate"],
    ],
)
def test_every_usage_mistake_exits_1(client: Client, argv: list[str]) -> None:
    code, _, err = client.run(*argv)
    assert code == 1
    one_line(err)


def test_the_protocol_through_a_real_process(
    built: tuple[Publisher, BuildResult], served: Served, tmp_path: Path
) -> None:
    publisher, result = built
    metadata_dir, target_dir = tmp_path / "metadata", tmp_path / "targets"
    base = [sys.executable, "-m", "mirror", "tuf-client", "--metadata-dir", str(metadata_dir)]
    online = ["--metadata-url", served.metadata_url]
    download = [
        "--target-base-url",
        served.targets_url,
        "--target-dir",
        str(target_dir),
        "download",
    ]

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *argv], capture_output=True, text=True, timeout=60, check=False
        )

    assert run("init", str(publisher.root_json)).returncode == 0
    assert run(*online, "refresh").returncode == 0
    edition = f"editions/{result.eid}.zip"
    assert run(*online, "--target-name", edition, *download).returncode == 0
    assert (target_dir / quote(edition, safe="")).read_bytes() == result.zip_path.read_bytes()
    failed = run(*online, "--target-name", "editions/none.zip", *download)
    assert failed.returncode == 1
    one_line(failed.stderr)


# --- a diamond delegation: two roles delegate one role with different keys --------------


def _sign(metadata: Metadata[Any], *signers: CryptoSigner) -> bytes:
    for signer in signers:
        metadata.sign(signer, append=True)
    return metadata.to_bytes(JSONSerializer())


def write_diamond_repository(folder: Path, *, shared_role_signed_for_b: bool) -> Path:
    """A repository where A (``a/*``) and B (``b/*``) both delegate role ``C``.

    A trusts key ka for C, B trusts key kb. C lists ``a/x.txt`` and
    ``b/y.txt`` and is signed by ka, and by kb only if ``shared_role_signed_for_b``.
    So ``b/y.txt`` is legitimately delegated only in the second case. Returns
    the root.json to trust.
    """
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    keys = {name: CryptoSigner.generate_ed25519() for name in (*TOP_LEVEL_ROLE_NAMES, "A", "B")}
    ka, kb = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    contents = {"a/x.txt": b"artifact of branch A\n", "b/y.txt": b"artifact of branch B\n"}

    root = Root(expires=expires, consistent_snapshot=True)
    for role in TOP_LEVEL_ROLE_NAMES:
        root.add_key(keys[role].public_key, role)
    targets = Targets(expires=expires)
    targets.delegations = Delegations(
        keys={},
        roles={
            "A": DelegatedRole("A", [], 1, False, ["a/*"]),
            "B": DelegatedRole("B", [], 1, False, ["b/*"]),
        },
    )
    targets.add_key(keys["A"].public_key, "A")
    targets.add_key(keys["B"].public_key, "B")
    delegators = {}
    for name, pattern, key in (("A", "a/*", ka), ("B", "b/*", kb)):
        delegator = Targets(expires=expires)
        delegator.delegations = Delegations(
            keys={}, roles={"C": DelegatedRole("C", [], 1, False, [pattern])}
        )
        delegator.add_key(key.public_key, "C")
        delegators[name] = delegator
    shared = Targets(expires=expires)
    for path, data in contents.items():
        shared.targets[path] = TargetFile.from_data(path, data, ["sha256"])
    snapshot = Snapshot(expires=expires)
    for role_name in ("targets", "A", "B", "C"):
        snapshot.meta[f"{role_name}.json"] = MetaFile(1)
    timestamp = Timestamp(expires=expires)
    timestamp.snapshot_meta = MetaFile(1)

    metadata = folder / "metadata"
    metadata.mkdir(parents=True)
    root_bytes = _sign(Metadata(root), keys["root"])
    (metadata / "1.root.json").write_bytes(root_bytes)
    (metadata / "1.targets.json").write_bytes(_sign(Metadata(targets), keys["targets"]))
    (metadata / "1.A.json").write_bytes(_sign(Metadata(delegators["A"]), keys["A"]))
    (metadata / "1.B.json").write_bytes(_sign(Metadata(delegators["B"]), keys["B"]))
    c_signers = (ka, kb) if shared_role_signed_for_b else (ka,)
    (metadata / "1.C.json").write_bytes(_sign(Metadata(shared), *c_signers))
    (metadata / "1.snapshot.json").write_bytes(_sign(Metadata(snapshot), keys["snapshot"]))
    (metadata / "timestamp.json").write_bytes(_sign(Metadata(timestamp), keys["timestamp"]))
    for path, data in contents.items():
        directory, name = path.split("/")
        digest = shared.targets[path].hashes["sha256"]
        (folder / "targets" / directory).mkdir(parents=True, exist_ok=True)
        (folder / "targets" / directory / f"{digest}.{name}").write_bytes(data)
    trusted = folder.parent / f"{folder.name}-root.json"
    trusted.write_bytes(root_bytes)
    return trusted


def test_a_role_verified_through_one_delegator_is_not_trusted_through_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """C is signed only with the key A trusts: found through A it is fine, through B it is not.

    Whether the lookups run in one process (repeated --target-name) or in
    two (C.json then sits verified in the metadata folder), the lookup
    through B verifies C against B's keys and fails.
    """
    trusted = write_diamond_repository(tmp_path / "diamond", shared_role_signed_for_b=False)
    with serve(tmp_path / "diamond") as repository:
        one_process = Client(tmp_path / "one", capsys)
        assert one_process.init(trusted) == 0
        code, err = one_process.download(repository, "a/x.txt", "b/y.txt")
        assert code == 1, "b/y.txt was accepted through a delegation B never signed"
        assert "C" in one_line(err)
        assert one_process.artifact("a/x.txt").read_bytes() == b"artifact of branch A\n"
        assert not one_process.artifact("b/y.txt").exists()

        two_runs = Client(tmp_path / "two", capsys)
        assert two_runs.init(trusted) == 0
        assert two_runs.download(repository, "a/x.txt") == (0, "")
        assert (two_runs.metadata_dir / "C.json").is_file()  # cached after the lookup via A
        code, err = two_runs.download(repository, "b/y.txt")
        assert code == 1
        one_line(err)
        assert not two_runs.artifact("b/y.txt").exists()


def test_a_role_signed_for_both_delegators_is_found_through_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: the same graph with C also signed by B's key serves both paths."""
    trusted = write_diamond_repository(tmp_path / "diamond", shared_role_signed_for_b=True)
    with serve(tmp_path / "diamond") as repository:
        client = Client(tmp_path / "client", capsys)
        assert client.init(trusted) == 0
        assert client.download(repository, "a/x.txt", "b/y.txt") == (0, "")
        assert client.artifact("b/y.txt").read_bytes() == b"artifact of branch B\n"
