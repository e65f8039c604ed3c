"""Stock tools as independent judges of what `mirror build` produces."""

from __future__ import annotations

import filecmp
import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuf.ngclient import Updater

from mirror.build import BuildResult
from mirror.cli import main
from tests.conftest import Publisher

MINISIGN = shutil.which("minisign")
UNZIP = shutil.which("unzip")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def publish_server(built: tuple[Publisher, BuildResult]) -> Iterator[str]:
    """A plain static HTTP server on 127.0.0.1 serving the publish tree."""
    _, result = built
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(result.publish_dir))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(MINISIGN is None, reason="minisign is installed by .ci/run")
def test_stock_minisign_verifies_the_signature_and_rejects_a_modified_file(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    publisher, result = built
    public_key = publisher.config.keys.dir / "minisign.pub"
    ok = subprocess.run(
        [str(MINISIGN), "-V", "-m", str(result.zip_path), "-p", str(public_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert f"edition:{result.eid}" in ok.stdout
    assert f"version:{result.version}" in ok.stdout

    modified = tmp_path / result.zip_path.name
    data = bytearray(result.zip_path.read_bytes())
    data[100] ^= 1
    modified.write_bytes(bytes(data))
    shutil.copy(result.minisig_path, tmp_path / result.minisig_path.name)
    bad = subprocess.run(
        [str(MINISIGN), "-V", "-m", str(modified), "-p", str(public_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0


@pytest.mark.skipif(UNZIP is None, reason="unzip is installed by .ci/run")
def test_stock_unzip_accepts_the_archive_and_extracts_what_mirror_extracts(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, result = built
    tested = subprocess.run(
        [str(UNZIP), "-t", str(result.zip_path)], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout
    assert "No errors detected" in tested.stdout

    by_unzip = tmp_path / "unzip"
    subprocess.run(
        [str(UNZIP), "-q", str(result.zip_path), "-d", str(by_unzip)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(by_unzip / ".mirror")  # the embedded proof; mirror extract leaves it out
    by_mirror = tmp_path / "mirror"
    code = main(
        [
            "extract",
            str(result.zip_path),
            str(by_mirror),
            "--root",
            str(publisher.root_json),
            "--state",
            str(tmp_path / "state"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert _tree(by_unzip) == _tree(by_mirror)
    for relative in _tree(by_unzip):
        assert filecmp.cmp(by_unzip / relative, by_mirror / relative, shallow=False), relative


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_stock_tuf_updater_downloads_the_edition(
    built: tuple[Publisher, BuildResult], publish_server: str, tmp_path: Path
) -> None:
    publisher, result = built
    metadata_dir = tmp_path / "metadata"
    metadata_dir.mkdir()
    updater = Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=f"{publish_server}/metadata/",
        target_base_url=f"{publish_server}/targets/",
        target_dir=str(tmp_path),
        bootstrap=publisher.root_json.read_bytes(),
    )
    updater.refresh()
    info = updater.get_targetinfo(f"editions/{result.eid}.zip")
    assert info is not None
    path = updater.download_target(info, str(tmp_path / "edition.zip"))
    assert Path(path).read_bytes() == result.zip_path.read_bytes()

    # Articles and the signed mirror list are targets too, found through the delegations.
    article = updater.get_targetinfo("articles/article-000.html")
    assert article is not None
    assert Path(updater.download_target(article, str(tmp_path / "a.html"))).stat().st_size > 0
    mirrors = updater.get_targetinfo("mirrors.json")
    assert mirrors is not None
    text = Path(updater.download_target(mirrors, str(tmp_path / "m.json"))).read_text()
    assert "mirror-a/" in text


def test_our_minisign_check_agrees_with_the_stock_tool(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    import hashlib

    from mirror.errors import TamperedError
    from mirror.keystore import minisign_public_key
    from mirror.trust.minisign import verify_prehashed

    publisher, result = built
    key = minisign_public_key(publisher.config.keys.dir)
    signature = result.minisig_path.read_text()
    digest = hashlib.blake2b(result.zip_path.read_bytes(), digest_size=64).digest()
    comment = verify_prehashed(signature, digest, key)
    assert f"edition:{result.eid}" in comment
    with pytest.raises(TamperedError):
        verify_prehashed(signature, hashlib.blake2b(b"other", digest_size=64).digest(), key)
    forged = signature.replace("trusted comment: edition:", "trusted comment: edition:X")
    with pytest.raises(TamperedError):
        verify_prehashed(forged, digest, key)
