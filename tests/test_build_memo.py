"""The remembered unchanged verdict (`mirror.build_memo`): recalled only while every input
and output is as it was, and never past the next re-signing."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror import build, build_memo, buildcache
from mirror.build import BuildResult
from mirror.config import FeedSource, load_config
from mirror.rebuild import Unchanged, build_or_refresh
from tests.conftest import BUILD_TIME, Publisher, write_articles

LATER = BUILD_TIME + timedelta(hours=1)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each real build run from now on (a spy: the build itself is the real one), with the
    racy-clean window closed, since the tests write their inputs just before building."""
    calls: list[bool] = []
    real = build.build_edition

    def counted(*args: Any, **kwargs: Any) -> BuildResult | Unchanged:
        calls.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "build_edition", counted)
    monkeypatch.setattr(buildcache, "RACY_WINDOW_NS", 0)
    return calls


def built_and_remembered(publisher: Publisher) -> Unchanged:
    """A first edition, then the run that finds it unchanged the long way and remembers."""
    publisher.build()
    found = build_or_refresh(publisher.config, now=LATER)
    assert isinstance(found, Unchanged)
    assert (publisher.config.output.build_verdict).is_file()
    return found


def test_an_unchanged_run_is_recalled_without_a_build(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    found = built_and_remembered(publisher)
    assert len(builds) == 1
    for minutes in (5, 10, 15):
        again = build_or_refresh(publisher.config, now=LATER + timedelta(minutes=minutes))
        assert again == found
    assert len(builds) == 1  # recalled three times


def test_the_skipped_articles_are_recalled_with_the_verdict(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    (publisher.articles / "broken.md").write_text("---\ntitle: [unclosed\n---\nBody\n")
    found = built_and_remembered(publisher)
    assert found.problems
    again = build_or_refresh(publisher.config, now=LATER)
    assert len(builds) == 1
    assert again.problems == found.problems


def _same_size_edit(publisher: Publisher) -> None:
    """One letter changed, the size and the modification time kept (only ctime moves)."""
    path = publisher.articles / "article-001.md"
    info = path.stat()
    path.write_text(path.read_text().replace("Paragraph 1.", "Paragraph 7."))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _new_image_bytes(publisher: Publisher) -> None:
    path = publisher.articles / "photo.png"
    path.write_bytes(path.read_bytes() + b"\0")


CHANGES: dict[str, tuple[Callable[[Publisher], object], bool]] = {
    # name: (what changes, whether that makes a new edition)
    "an article edited, size and mtime kept": (_same_size_edit, True),
    "a new article": (lambda p: write_articles(p.articles, 1, start=50), True),
    "an article removed": (lambda p: (p.articles / "article-002.md").unlink(), True),
    "an image's bytes": (_new_image_bytes, True),
    "an article touched, same bytes": (lambda p: (p.articles / "article-000.md").touch(), False),
    "a hidden file in the source": (lambda p: (p.articles / ".notes").write_text("x"), False),
    "a file in the key store": (lambda p: (p.config.keys.dir / "README").write_text("x"), False),
    "the newest edition's ZIP removed": (
        lambda p: next(p.config.editions_dir.glob("*-v1.zip")).unlink(),
        False,
    ),
    "a metadata file of the publish tree touched": (
        lambda p: (p.config.publish_dir / "metadata" / "timestamp.json").touch(),
        False,
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_to_an_input_or_output_means_a_build_finds_out(
    new_publisher: Callable[..., Publisher], builds: list[bool], change: str
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    make_change, new_edition = CHANGES[change]
    make_change(publisher)
    result = build_or_refresh(publisher.config, now=LATER)
    assert len(builds) == 2, "the memo was trusted after the change"
    assert isinstance(result, BuildResult) is new_edition


def test_a_changed_setting_means_a_build_finds_out(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    file = publisher.config.file
    file.write_text(file.read_text().replace("title: Test News", "title: Other News"))
    result = build_or_refresh(load_config(file), now=LATER)
    assert len(builds) == 2
    assert isinstance(result, BuildResult)  # the title is on every page


def test_the_verdict_ends_when_the_timestamp_is_due(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    due = BUILD_TIME + timedelta(days=4)  # past half of the 7-day timestamp
    refreshed = build_or_refresh(publisher.config, now=due)
    assert isinstance(refreshed, Unchanged)
    assert refreshed.timestamp_refreshed
    assert len(builds) == 2
    # Remembered again after the refresh, until the next one.
    assert build_or_refresh(publisher.config, now=due + timedelta(hours=1)) == dataclasses.replace(
        refreshed, timestamp_refreshed=False
    )
    assert len(builds) == 2


def test_the_verdict_ends_when_the_edition_is_due_for_renewal(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    for day in (4, 8, 12):  # the timestamp re-signed on the way; the edition holds
        assert isinstance(
            build_or_refresh(publisher.config, now=BUILD_TIME + timedelta(days=day)), Unchanged
        )
    renewed = build_or_refresh(publisher.config, now=BUILD_TIME + timedelta(days=16))
    assert isinstance(renewed, BuildResult)
    assert renewed.renewed is not None


def test_force_builds_whatever_the_memo_says(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    forced = build_or_refresh(publisher.config, now=LATER, force=True)
    assert isinstance(forced, BuildResult)
    assert forced.version == 2


def test_inputs_changed_just_before_the_verdict_are_not_trusted(
    new_publisher: Callable[..., Publisher], builds: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written twice within the file system's clock tick keeps its times: a verdict
    reached within the racy window of the newest change is not recalled (Git's racily
    clean entries; `buildcache.changed_lately`)."""
    monkeypatch.setattr(buildcache, "RACY_WINDOW_NS", 3600 * 10**9)  # every input is fresh
    publisher = new_publisher()
    built_and_remembered(publisher)
    for _ in range(2):
        assert isinstance(build_or_refresh(publisher.config, now=LATER), Unchanged)
    assert len(builds) == 3


@pytest.mark.parametrize(
    "memo",
    [b"", b"{not json", b"[]", b'{"format": 1}', b'{"format": 1, "inputs": 5}', b"\xff" * 100],
)
def test_a_damaged_memo_is_a_build_not_an_error(
    new_publisher: Callable[..., Publisher], builds: list[bool], memo: bytes
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    path = publisher.config.output.build_verdict
    path.write_bytes(memo)
    assert isinstance(build_or_refresh(publisher.config, now=LATER), Unchanged)
    assert len(builds) == 2
    assert build_or_refresh(publisher.config, now=LATER) is not None
    assert len(builds) == 2  # remembered again


def test_a_feed_is_known_only_by_fetching_it(new_publisher: Callable[..., Publisher]) -> None:
    publisher = new_publisher()
    with_feed = dataclasses.replace(publisher.config, sources=(FeedSource("feed.xml"),))
    assert build_memo.Inputs.read(with_feed) is None
    assert build_memo.Inputs.read(publisher.config) is not None


def test_a_new_library_version_is_another_input(
    new_publisher: Callable[..., Publisher], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    publisher = new_publisher()
    before = build_memo.Inputs.read(publisher.config)
    monkeypatch.setattr(build_memo, "library_versions", lambda: {"cmarkgfm": "0"})
    after = build_memo.Inputs.read(publisher.config)
    assert before is not None
    assert after is not None
    assert before.digest != after.digest


def test_the_changed_files_are_named_for_the_build(
    new_publisher: Callable[..., Publisher], builds: list[bool]
) -> None:
    publisher = new_publisher()
    built_and_remembered(publisher)
    assert build_memo.Inputs.read(publisher.config).changed == frozenset()  # type: ignore[union-attr]
    write_articles(publisher.articles, 1, start=50)
    (publisher.articles / "article-000.md").touch()
    inputs = build_memo.Inputs.read(publisher.config)
    assert inputs is not None
    assert inputs.changed == frozenset({(0, "article-050.md"), (0, "article-000.md")})


@pytest.mark.parametrize(
    ("change", "predicted"),
    [
        ("a new article", False),  # a changed file the cache does not know: straight to a build
        ("an article touched, same bytes", True),  # the cache knows its bytes: predicted
        ("an image's bytes", True),  # not an article: the prediction finds it
    ],
)
def test_a_new_article_skips_the_prediction_and_a_touched_one_does_not(
    new_publisher: Callable[..., Publisher],
    builds: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    predicted: bool,
) -> None:
    from mirror.build_sources import SourceReader

    publisher = new_publisher()
    built_and_remembered(publisher)
    predictions: list[bool] = []
    real = SourceReader.predict

    def counted(self: SourceReader) -> Any:
        predictions.append(True)
        return real(self)

    monkeypatch.setattr(SourceReader, "predict", counted)
    make_change, new_edition = CHANGES[change]
    make_change(publisher)
    result = build_or_refresh(publisher.config, now=LATER)
    assert isinstance(result, BuildResult) is new_edition
    assert bool(predictions) is predicted
