"""The latest bundle: today's articles first, verified, on a bad link; the archive after.

Built by `mirror build` beside each edition (`mirror.latest_bundle`) and
fetched first by `mirror fetch` (`mirror.reader.fetch`), through the real
CLI and a real HTTP mirror on 127.0.0.1 whose request log shows what the
reader asked for.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mirror import publish_tree
from mirror.build import BuildResult
from mirror.cli import main
from mirror.reader.read import parse_index
from mirror.trust import layout
from tests.censor import CensorMirror, running_mirrors, snapshot_tree
from tests.conftest import BUILD_TIME, Publisher, make_config, tiny_png

NEW = 12
OLD = 30


def write_article(folder: Path, slug: str, age: timedelta, *, image: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    picture = ""
    if image:
        (folder / f"{slug}.png").write_bytes(tiny_png())
        picture = f"\n![a picture]({slug}.png)\n"
    when = (BUILD_TIME - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: Story {slug}\ndate: {when}\nauthor: Reporter\nlanguage: en\n"
        f"slug: {slug}\n---\n\nThe text of {slug}.{picture}\n",
        encoding="utf-8",
    )


def newsroom(publisher: Publisher, *, new: int = NEW, old: int = OLD, extra: str = "") -> Publisher:
    """``new`` articles of the last hours (the first with an image), ``old`` of last month."""
    articles = publisher.articles
    for path in articles.iterdir():
        path.unlink()
    for i in range(new):
        write_article(articles, f"new-{i:02d}", timedelta(hours=i + 1), image=i == 0)
    for i in range(old):
        write_article(articles, f"old-{i:02d}", timedelta(days=30, hours=i))
    if extra:
        config = make_config(publisher.home, keys_dir=publisher.config.keys.dir, extra=extra)
        return Publisher(publisher.home, config)
    return publisher


def bundle_of(publisher: Publisher, built: BuildResult) -> Path:
    """The latest bundle of ``built`` in the publish tree (none is kept beside the editions)."""
    folder = publisher.config.publish_dir / "targets" / "editions"
    found = list(folder.glob(f"*.{built.eid}{layout.LATEST_SUFFIX}"))
    assert len(found) <= 1
    return found[0] if found else folder / "none"


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def article_slugs(members: dict[str, bytes]) -> set[str]:
    return {
        name.removeprefix("articles/").removesuffix(".html")
        for name in members
        if name.startswith("articles/")
    }


# --- the build ------------------------------------------------------------------------------


def test_the_bundle_holds_the_newest_articles_as_the_edition_has_them(
    new_publisher: Callable[..., Publisher],
) -> None:
    publisher = newsroom(new_publisher())
    built = publisher.build()
    bundle = zip_members(bundle_of(publisher, built))
    edition = zip_members(built.zip_path)
    assert article_slugs(bundle) == {f"new-{i:02d}" for i in range(NEW)}
    assert not any(name.startswith("assets/") for name in bundle)  # no images by default
    for name in ("style.css", layout.EDITION_INFO_MEMBER, layout.MIRROR_LIST_PATH):
        assert name in bundle
    for name, data in bundle.items():
        if name != "index.html":
            assert data == edition[name], f"{name} differs from the edition's"
    listed = {entry.file.removeprefix("articles/").removesuffix(".html") for entry in
              parse_index(bundle["index.html"])}  # fmt: skip
    assert listed == article_slugs(bundle)
    assert len(bundle_of(publisher, built).read_bytes()) < 1024 * 1024

    # Listed, with its hash, in the signed editions role and placed in the publish tree.
    state = publish_tree.load_state(publisher.config.publish_dir)
    editions = state.roles[layout.EDITIONS_ROLE].metadata().signed.targets
    signed = editions[layout.latest_bundle_path(built.eid)]
    data = bundle_of(publisher, built).read_bytes()
    assert signed.length == len(data)
    signed.verify_length_and_hashes(data)
    tree = publisher.config.publish_dir / "targets" / "editions"
    assert (tree / f"{signed.hashes['sha256']}.{built.eid}.latest.zip").read_bytes() == data


@pytest.mark.parametrize(
    ("new", "extra", "expected"),
    [
        (NEW, "edition:\n  latest_max_articles: 5\n", {f"new-{i:02d}" for i in range(5)}),
        # A quiet week: the newest ten however old, so a reader still gets something.
        (0, "", {f"old-{i:02d}" for i in range(10)}),
        (3, "", {f"new-{i:02d}" for i in range(3)} | {f"old-{i:02d}" for i in range(7)}),
        (NEW, "edition:\n  latest_days: 0\n", None),
    ],
)
def test_how_many_articles_the_bundle_holds(
    new_publisher: Callable[..., Publisher], new: int, extra: str, expected: set[str] | None
) -> None:
    publisher = newsroom(new_publisher(), new=new, extra=extra)
    built = publisher.build()
    state = publish_tree.load_state(publisher.config.publish_dir)
    listed = state.roles[layout.EDITIONS_ROLE].metadata().signed.targets
    if expected is None:
        assert not bundle_of(publisher, built).exists()
        assert not any(layout.is_latest_bundle(path) for path in listed)
        return
    assert article_slugs(zip_members(bundle_of(publisher, built))) == expected


def test_images_go_in_only_when_asked(new_publisher: Callable[..., Publisher]) -> None:
    publisher = newsroom(new_publisher(), extra="edition:\n  latest_images: true\n")
    built = publisher.build()
    bundle = zip_members(bundle_of(publisher, built))
    edition = zip_members(built.zip_path)
    images = [name for name in bundle if name.startswith("assets/")]
    assert len(images) == 1
    assert bundle[images[0]] == edition[images[0]]


def test_only_the_newest_editions_bundle_is_kept(new_publisher: Callable[..., Publisher]) -> None:
    publisher = newsroom(new_publisher())
    first = publisher.build()
    write_article(publisher.articles, "newest", timedelta(minutes=5))
    second = publisher.build(when=BUILD_TIME + timedelta(minutes=10))
    state = publish_tree.load_state(publisher.config.publish_dir)
    listed = state.roles[layout.EDITIONS_ROLE].metadata().signed.targets
    assert [p for p in listed if layout.is_latest_bundle(p)] == [
        layout.latest_bundle_path(second.eid)
    ]
    tree = publisher.config.publish_dir / "targets" / "editions"
    assert [p.name.split(".", 1)[1] for p in tree.glob("*.latest.zip")] == [
        f"{second.eid}.latest.zip"
    ]
    assert not bundle_of(publisher, first).exists()
    assert not any(publisher.config.editions_dir.glob("*.latest.zip"))  # no local copies
    assert not any((publisher.config.output.path / "latest").iterdir())
    assert "newest" in article_slugs(zip_members(bundle_of(publisher, second)))


# --- the reader -----------------------------------------------------------------------------


def fetch(
    capsys: pytest.CaptureFixture[str],
    publisher: Publisher,
    state: Path,
    *urls: str,
    mode: str = "",
) -> dict[str, object]:
    argv = ["fetch", "--root", str(publisher.root_json), "--state", str(state), "--json", "--only"]
    for url in urls:
        argv += ["--mirror", url]
    capsys.readouterr()
    code = main([*argv, *([mode] if mode else [])])
    out, err = capsys.readouterr()
    document: dict[str, object] = json.loads(out)
    assert code == 0, (out, err)
    return document


def requested(mirror: CensorMirror, since: int = 0) -> list[str]:
    return [served.path for served in mirror.served()[since:]]


def test_latest_first_then_the_rest_without_asking_twice(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Few old articles: the rest comes member by member (with most missing, the ZIP would).
    publisher = newsroom(new_publisher(), old=6)
    built = publisher.build()
    tree = snapshot_tree(publisher.config.publish_dir, tmp_path / "tree")
    state = tmp_path / "reader"
    with running_mirrors([("honest", tree)]) as (mirror,):
        latest = fetch(capsys, publisher, state, mirror.url, mode="--latest")
        assert latest["complete"] is False
        assert latest["edition"] == built.eid
        folder = Path(str(latest["path"]))
        assert folder.name == f"{built.eid}.latest"
        assert {f"new-{i:02d}.html" for i in range(NEW)} == {
            p.name for p in (folder / "articles").iterdir()
        }
        asked = requested(mirror)
        assert any(path.endswith(f"{built.eid}.latest.zip") for path in asked)
        # Neither the edition's member list nor any single article: one small file.
        assert not any(f"edition-{built.eid}" in path for path in asked)
        assert not any("/articles/" in path for path in asked)

        # `mirror read` opens what there is: the newest articles.
        capsys.readouterr()
        assert main(["read", "--state", str(state)]) == 0
        assert capsys.readouterr().out.strip() == (folder / "index.html").as_uri()

        before = len(mirror.served())
        whole = fetch(capsys, publisher, state, mirror.url)
        assert whole["complete"] is True
        assert Path(str(whole["path"])).name == built.eid
        again = requested(mirror, before)
        assert not any("/articles/" in p and "new-" in p for p in again), again
        assert any("/articles/" in p and "old-" in p for p in again)
        assert not folder.exists()  # the bundle made way for the whole edition


def test_archive_skips_the_bundle_and_default_gets_both(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = newsroom(new_publisher())
    built = publisher.build()
    tree = snapshot_tree(publisher.config.publish_dir, tmp_path / "tree")
    with running_mirrors([("honest", tree)]) as (mirror,):
        document = fetch(capsys, publisher, tmp_path / "a", mirror.url, mode="--archive")
        assert document["complete"] is True
        assert not any(layout.is_latest_bundle(p) for p in requested(mirror))
        before = len(mirror.served())
        document = fetch(capsys, publisher, tmp_path / "b", mirror.url)
        assert document["complete"] is True
        assert any(layout.is_latest_bundle(p) for p in requested(mirror, before))
        assert Path(str(document["path"])).name == built.eid


def test_a_forged_bundle_is_one_mirrors_verdict(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = newsroom(new_publisher())
    built = publisher.build()
    honest = snapshot_tree(publisher.config.publish_dir, tmp_path / "honest")
    forged = snapshot_tree(publisher.config.publish_dir, tmp_path / "forged")
    (bundle,) = (forged / "targets" / "editions").glob("*.latest.zip")
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    with running_mirrors([("honest", forged), ("slow", honest)]) as (liar, good):
        document = fetch(capsys, publisher, tmp_path / "r", liar.url, good.url, mode="--latest")
        assert document["complete"] is False
        verdicts = {row["url"]: row["verdict"] for row in document["mirrors"]}  # type: ignore[attr-defined]
        assert verdicts == {liar.url: "tampered", good.url: "ok"}
    # The liar alone: --latest has nothing genuine to give, and says so.
    with running_mirrors([("honest", forged)]) as (liar,):
        argv = ["fetch", "--root", str(publisher.root_json), "--state", str(tmp_path / "s")]
        code = main([*argv, "--mirror", liar.url, "--only", "--latest"])
        assert code == 10
    out, err = capsys.readouterr()
    assert f"editions/{built.eid}.latest.zip" in out
    assert "forged" in err


def test_a_publisher_without_bundles_still_serves_latest_readers(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = newsroom(new_publisher(), extra="edition:\n  latest_days: 0\n")
    publisher.build()
    url = f"file://{publisher.config.publish_dir}/"
    document = fetch(capsys, publisher, tmp_path / "r", url, mode="--latest")
    assert document["complete"] is True  # nothing smaller to give: the whole edition
