"""The build cache: unchanged articles are not parsed again, every key rebuilds what it
affects, a damaged or foreign cache is ignored, and a build from the cache is byte for byte
the build from scratch."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror import build as build_module
from mirror import build_sources, buildcache
from mirror.build import BuildResult, build_edition
from mirror.build_sources import _entry_job, _file_job
from mirror.cli import main
from mirror.config import Config, load_config
from mirror.edition import EditionArchive, EditionWriter
from mirror.ingest.model import DEFAULT_LIMITS
from mirror.ingest.workers import Overrun, WorkerPool
from mirror.rebuild import Unchanged
from tests.conftest import BUILD_TIME, Publisher, make_config, tiny_png
from tests.test_build import FIXED_MIRRORS, _files

PARSE_JOBS = (_file_job, _entry_job)


class CountingPool(WorkerPool):
    """A real worker pool that counts the articles handed to workers to parse."""

    parsed: list[str] = []  # noqa: RUF012 - one list per test (reset by the fixture)

    def map(self, function: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any | Overrun]:
        def counted() -> Iterator[Any]:
            for job in jobs:
                if getattr(job, "function", None) in PARSE_JOBS:
                    CountingPool.parsed.append(job.source)
                yield job

        return super().map(function, counted())


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources parsed by builds in this test (the build's own pool, counting)."""
    CountingPool.parsed = []
    monkeypatch.setattr(build_module, "WorkerPool", CountingPool)
    return CountingPool.parsed


def _build(config: Config, minutes: int, *, force: bool = True) -> BuildResult | Unchanged:
    return build_edition(
        config, now=BUILD_TIME + timedelta(minutes=minutes), force=force, workers=1
    )


def _parsed_after(parses: list[str], config: Config, minutes: int) -> list[str]:
    parses.clear()
    result = _build(config, minutes)
    assert isinstance(result, BuildResult)
    return [Path(source).name for source in parses]


def test_second_build_parses_nothing_and_a_changed_byte_one_article(
    new_publisher: Callable[..., Publisher], parses: list[str]
) -> None:
    publisher = new_publisher(4)
    assert len(_parsed_after(parses, publisher.config, 0)) == 4
    assert _parsed_after(parses, publisher.config, 1) == []
    article = publisher.articles / "article-002.md"
    article.write_bytes(article.read_bytes().replace(b"Paragraph 2.", b"Paragraph 2!"))
    assert _parsed_after(parses, publisher.config, 2) == ["article-002.md"]


class PausePool(WorkerPool):
    """A real worker pool that records, for each job it is handed, whether it is a pause."""

    jobs: list[bool] = []  # noqa: RUF012 - one list per test (reset by the test)

    def map(self, function: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any | Overrun]:
        def recorded() -> Iterator[Any]:
            for job in jobs:
                PausePool.jobs.append(job is build_sources._PAUSE)
                yield job

        return super().map(function, recorded())


def test_an_update_reads_a_large_archive_only_a_window_ahead(
    new_publisher: Callable[..., Publisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Articles the cache knows are no jobs for the workers; without a pause after each
    `PAUSE_EVERY` of them, the build read every source ahead of the first new article and
    held all of them in memory at once (100,000 articles: hundreds of megabytes)."""
    publisher = new_publisher(5 * build_sources.PAUSE_EVERY)
    _build(publisher.config, 0)
    (publisher.articles / "zz-new.md").write_text(
        "---\ntitle: New\ndate: 2026-11-30T10:00:00Z\n---\n\nNew.\n", encoding="utf-8"
    )
    PausePool.jobs = []
    monkeypatch.setattr(build_module, "WorkerPool", PausePool)
    assert isinstance(_build(publisher.config, 5), BuildResult)
    assert PausePool.jobs.count(True) == 5
    assert PausePool.jobs[-1] is False  # the new article, read after the last pause


def test_touching_a_file_without_changing_it_reuses_it(
    new_publisher: Callable[..., Publisher], parses: list[str]
) -> None:
    publisher = new_publisher(3)
    _parsed_after(parses, publisher.config, 0)
    article = publisher.articles / "article-001.md"
    os.utime(article, ns=(1_000_000_000, 1_000_000_000))
    assert _parsed_after(parses, publisher.config, 1) == []


def test_the_stat_fast_path_skips_reading(
    new_publisher: Callable[..., Publisher],
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(buildcache, "RACY_WINDOW_NS", 0)
    publisher = new_publisher(3)
    _parsed_after(parses, publisher.config, 0)
    reads: list[str] = []
    real = build_sources.SourceReader._file_miss

    def spy(self: Any, file: Any, key: str, data: Any) -> Any:
        reads.append(file.source)
        return real(self, file, key, data)

    monkeypatch.setattr(build_sources.SourceReader, "_file_miss", spy)
    assert _parsed_after(parses, publisher.config, 1) == []
    assert reads == []


def _replace_config(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, **changes)


SETTING_CHANGES: dict[str, Callable[[Config], Config]] = {
    "publisher language": lambda c: _replace_config(
        c, publisher=dataclasses.replace(c.publisher, language="ru")
    ),
    "site title": lambda c: _replace_config(
        c, publisher=dataclasses.replace(c.publisher, title="Другой заголовок")
    ),
    "on_article_error": lambda c: _replace_config(c, on_article_error="fail"),
    "compression level": lambda c: _replace_config(
        c, edition=dataclasses.replace(c.edition, compression_level=1)
    ),
}


@pytest.mark.parametrize("setting", sorted(SETTING_CHANGES))
def test_a_setting_that_pages_depend_on_rebuilds_every_article(
    setting: str, new_publisher: Callable[..., Publisher], parses: list[str]
) -> None:
    publisher = new_publisher(3)
    _parsed_after(parses, publisher.config, 0)
    changed = SETTING_CHANGES[setting](publisher.config)
    assert len(_parsed_after(parses, changed, 1)) == 3
    assert _parsed_after(parses, changed, 2) == []


VERSION_CHANGES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "RENDER_VERSION": lambda m: m.setattr(build_module, "RENDER_VERSION", 999),
    "INGEST_VERSION": lambda m: m.setattr(build_module, "INGEST_VERSION", 999),
    "limits": lambda m: m.setattr(
        build_module, "DEFAULT_LIMITS", dataclasses.replace(DEFAULT_LIMITS, max_tags=7)
    ),
    "nh3 version": lambda m: m.setattr(
        buildcache, "library_versions", lambda: {"nh3": "0.0.0-other"}
    ),
    "cmarkgfm version": lambda m: m.setattr(
        buildcache, "library_versions", lambda: {"cmarkgfm": "9.9"}
    ),
    "feedparser version": lambda m: m.setattr(
        buildcache, "library_versions", lambda: {"feedparser": "1.0"}
    ),
}


@pytest.mark.parametrize("change", sorted(VERSION_CHANGES))
def test_a_new_parser_sanitiser_or_template_version_rebuilds_every_article(
    change: str,
    new_publisher: Callable[..., Publisher],
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher = new_publisher(3)
    _parsed_after(parses, publisher.config, 0)
    VERSION_CHANGES[change](monkeypatch)
    assert len(_parsed_after(parses, publisher.config, 1)) == 3


def test_an_image_that_changes_is_archived_anew_one_that_grows_reparses(
    new_publisher: Callable[..., Publisher], parses: list[str]
) -> None:
    publisher = new_publisher(3)
    _parsed_after(parses, publisher.config, 0)
    photo = publisher.articles / "photo.png"
    same_size = bytearray(photo.read_bytes())
    same_size[-13] ^= 0xFF
    photo.write_bytes(bytes(same_size))
    assert _parsed_after(parses, publisher.config, 1) == []
    result = _build(publisher.config, 2)
    assert isinstance(result, BuildResult)
    with EditionArchive.open(result.zip_path) as archive:
        member = archive.find("assets/article-000/photo.png")
        assert member is not None
        assert archive.read(member, max_bytes=10_000) == bytes(same_size)
    photo.write_bytes(tiny_png(8, 8))
    assert _parsed_after(parses, publisher.config, 3) == ["article-000.md"]


def _twins(
    new_publisher: Callable[..., Publisher], tmp_path: Path, articles: int = 6
) -> tuple[Publisher, Publisher]:
    original = new_publisher(articles)
    twins = []
    for name in ("incremental", "scratch"):
        home = tmp_path / name
        shutil.copytree(original.articles, home / "articles")
        config = make_config(home, keys_dir=original.config.keys.dir, mirrors=FIXED_MIRRORS)
        twins.append(Publisher(home, config))
    return twins[0], twins[1]


def _add_articles(publisher: Publisher) -> None:
    for i in range(3):
        (publisher.articles / f"new-{i}.md").write_text(
            f"---\ntitle: Новость {i}\ndate: 2026-11-25T0{i}:00:00Z\n---\n\nFresh news {i}.\n",
            encoding="utf-8",
        )
    (publisher.articles / "article-003.md").unlink()


def test_incremental_build_is_byte_identical_to_a_build_from_scratch(
    new_publisher: Callable[..., Publisher], tmp_path: Path, parses: list[str]
) -> None:
    incremental, scratch = _twins(new_publisher, tmp_path)
    for publisher in (incremental, scratch):
        _build(publisher.config, 0)
        _add_articles(publisher)
    shutil.rmtree(scratch.config.output.build_cache)
    for old in scratch.config.editions_dir.glob("*.zip"):
        old.unlink()
    parses.clear()
    a = _build(incremental.config, 10)
    assert sorted(Path(p).name for p in parses) == ["new-0.md", "new-1.md", "new-2.md"]
    b = _build(scratch.config, 10)
    assert isinstance(a, BuildResult)
    assert isinstance(b, BuildResult)
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    assert _files(a.publish_dir) == _files(b.publish_dir)


def _sql(statement: str) -> Callable[[Path], object]:
    """A change made through SQLite itself: the database is whole, an entry or a fact is not."""

    def change(path: Path) -> None:
        with contextlib.closing(sqlite3.connect(path)) as database:
            database.execute(statement)
            database.commit()

    return change


DAMAGE: dict[str, Callable[[Path], object]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "header overwritten": lambda p: p.write_bytes(b"0" * 100 + p.read_bytes()[100:]),
    "random bytes": lambda p: p.write_bytes(random.Random(1).randbytes(4096)),  # noqa: S311
    "edited entry": _sql('UPDATE articles SET entry = replace(entry, \'"slug":"\', \'"slug":"x\')'),
    "other mirror version": _sql("UPDATE meta SET value = '0.0.0-' || value WHERE name = 'mirror'"),
    "other format": _sql("UPDATE meta SET value = '1' WHERE name = 'format'"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_or_foreign_cache_is_ignored_and_rebuilt(
    damage: str, new_publisher: Callable[..., Publisher], tmp_path: Path, parses: list[str]
) -> None:
    incremental, scratch = _twins(new_publisher, tmp_path, 4)
    for publisher in (incremental, scratch):
        _build(publisher.config, 0)
    DAMAGE[damage](incremental.config.output.build_cache / "index.sqlite")
    shutil.rmtree(scratch.config.output.build_cache)
    parses.clear()
    a = _build(incremental.config, 5)
    assert len(parses) == 4
    b = _build(scratch.config, 5)
    assert isinstance(a, BuildResult)
    assert isinstance(b, BuildResult)
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    assert _parsed_after(parses, incremental.config, 6) == []


def test_a_damaged_body_or_earlier_zip_is_made_again(
    new_publisher: Callable[..., Publisher], tmp_path: Path, parses: list[str]
) -> None:
    incremental, scratch = _twins(new_publisher, tmp_path, 4)
    for publisher in (incremental, scratch):
        _build(publisher.config, 0)
    for body in (incremental.config.output.build_cache / "bodies").iterdir():
        body.write_bytes(b"<p>not what was sanitised</p>")
    a = _build(incremental.config, 5)
    b = _build(scratch.config, 5)
    assert isinstance(a, BuildResult)
    assert isinstance(b, BuildResult)
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    zip_a = a.zip_path.read_bytes()
    a.zip_path.write_bytes(zip_a[:-30] + b"\0" * 30)  # the central directory broken
    parses.clear()
    again = _build(incremental.config, 6)
    assert len(parses) == 4  # no usable earlier ZIP: every page made again
    assert isinstance(again, BuildResult)


def test_bodies_the_cache_cannot_keep_are_made_again_and_the_build_goes_on(
    new_publisher: Callable[..., Publisher], tmp_path: Path, parses: list[str]
) -> None:
    """The cache is a speed-up: a body folder it cannot write (here a file in its place)
    is no article's problem, and the edition is the same as one built from scratch."""
    incremental, scratch = _twins(new_publisher, tmp_path, 3)
    bodies = incremental.config.output.build_cache / "bodies"
    bodies.parent.mkdir(parents=True, exist_ok=True)
    bodies.write_bytes(b"not a folder")
    a = _build(incremental.config, 0)
    b = _build(scratch.config, 0)
    assert isinstance(a, BuildResult)
    assert isinstance(b, BuildResult)
    assert a.problems == b.problems == ()
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    bodies.unlink()
    parses.clear()
    again, fresh = _build(incremental.config, 5), _build(scratch.config, 5)
    assert isinstance(again, BuildResult)
    assert isinstance(fresh, BuildResult)
    assert again.zip_path.read_bytes() == fresh.zip_path.read_bytes()


FEED_WITHOUT_LINKS = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>Wire</title><id>urn:wire</id><updated>2026-11-30T10:00:00Z</updated>"
    + "".join(
        f"<entry><title>Wire {n}</title><id>urn:wire:{n}</id>"
        "<updated>2026-11-30T10:00:00Z</updated>"
        f'<content type="html">&lt;p&gt;Wire story {n}.&lt;/p&gt;</content></entry>'
        for n in (1, 2)
    )
    + "</feed>"
)


def test_the_config_named_another_way_is_the_same_newsroom(
    new_publisher: Callable[..., Publisher],
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """How the command line names the config is not a change to the newsroom. The cache
    keyed each article by its path as messages spell it, which follows that name: a timer's
    `mirror --config /srv/news/mirror.yaml sync` after an operator's `mirror --config
    mirror.yaml build` in that folder made every article again (100,000 articles: 3 minutes
    instead of 40 s). Feed entries without a link were keyed by the feed's spelled path too."""
    publisher = new_publisher(3)
    home = publisher.home
    (home / "wire.xml").write_text(FEED_WITHOUT_LINKS, encoding="utf-8")
    config_file = home / "mirror.yaml"
    config_file.write_text(
        config_file.read_text(encoding="utf-8").replace(
            "    path: articles\n", "    path: articles\n  - type: feed\n    path: wire.xml\n"
        ),
        encoding="utf-8",
    )
    linked = tmp_path / "linked-newsroom"
    linked.symlink_to(home)
    spellings = [
        (home, Path("mirror.yaml")),  # from its folder
        (tmp_path, config_file),  # the whole path, from elsewhere
        (home / "articles", Path("../mirror.yaml")),  # relative, from a folder below
        (tmp_path, linked / "mirror.yaml"),  # through a linked folder
        (home, Path("./mirror.yaml")),
    ]
    parsed_by_run = []
    for minutes, (folder, name) in enumerate(spellings):
        monkeypatch.chdir(folder)
        parsed_by_run.append(_parsed_after(parses, load_config(name), minutes))
    first, *later = parsed_by_run
    assert len(first) == 5  # three articles and two feed entries
    assert later == [[]] * (len(spellings) - 1)


def test_sync_with_nothing_changed_parses_no_article(
    new_publisher: Callable[..., Publisher], parses: list[str]
) -> None:
    publisher = new_publisher(5)
    config_file = str(publisher.home / "mirror.yaml")
    assert main(["--config", config_file, "sync"]) == 0
    assert len(parses) == 5
    parses.clear()
    assert main(["--config", config_file, "sync"]) == 0
    assert parses == []
    assert isinstance(_build(publisher.config, 30, force=False), Unchanged)
    assert parses == []


def test_raw_copies_keep_crc_and_pass_the_strict_reader_and_unzip(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    _, result = built
    copy = tmp_path / "copy.zip"
    with EditionArchive.open(result.zip_path) as source:
        with EditionWriter(copy, timestamp=BUILD_TIME) as writer:
            for member in source.members:
                writer.add_raw(source, member, sha256="")
        with EditionArchive.open(copy) as copied:
            for old, new in zip(source.members, copied.members, strict=True):
                assert (new.name, new.crc32, new.size, new.compressed_size) == (
                    old.name,
                    old.crc32,
                    old.size,
                    old.compressed_size,
                )
                assert copied.read(new, max_bytes=10**8) == source.read(old, max_bytes=10**8)
    assert copy.read_bytes() == result.zip_path.read_bytes()
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(copy)], check=True, capture_output=True)
