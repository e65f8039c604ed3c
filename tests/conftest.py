"""Shared fixtures: a publisher with real keys, articles, and built editions."""

from __future__ import annotations

import shutil
import signal
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root

from mirror.build import BuildResult, build_edition
from mirror.config import Config, load_config
from mirror.keystore import init_keys
from mirror.trust.publisher import publisher_of

# A test run started in the background of a script (`cmd &`) or under nohup has SIGINT
# ignored, and every process it starts inherits that: the Ctrl-C tests would then wait
# for a Ctrl-C their child never hears. With a handler here, children start with the
# default again (an ignored signal survives exec, a handler does not).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test key store's passphrase
TEST_KDF_ROUNDS = 1
"""bcrypt-pbkdf rounds of test key stores: weak and fast (the product always uses 16)."""
BUILD_TIME = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
"""Builds happen an hour ago, so verifying with the real clock sees a fresh edition."""


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(
        b"\x00" + b"".join(bytes([x * 40 % 256, y * 60 % 256, 128]) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_articles(folder: Path, count: int = 3, *, start: int = 0) -> None:
    """Write ``count`` Markdown articles (Latin and Cyrillic); the first has an image."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        image = ""
        if i == 0:
            (folder / "photo.png").write_bytes(tiny_png())
            image = "\n![A photo](photo.png)\n"
        language = "ru" if i % 2 else "en"
        title = f"Статья номер {i}" if language == "ru" else f"Article number {i}"
        body = (
            "Это текст статьи на русском языке."
            if language == "ru"
            else "This is the body of an English article."
        )
        (folder / f"article-{i:03d}.md").write_text(
            f"---\ntitle: {title}\ndate: 2026-11-{(i % 20) + 1:02d}T10:00:00Z\n"
            f"author: Reporter {i}\nlanguage: {language}\nslug: article-{i:03d}\n"
            f"tags: [news]\n---\n\n{body}\n{image}\nParagraph {i}.\n",
            encoding="utf-8",
        )


@dataclass(frozen=True)
class Publisher:
    """A publisher set up in a temporary folder."""

    home: Path
    config: Config

    @property
    def root_json(self) -> Path:
        """The root.json readers pin."""
        return self.config.keys.dir / "root.json"

    @property
    def publisher_id(self) -> str:
        """The publisher id signed into its root."""
        root = Metadata[Root].from_bytes(self.root_json.read_bytes())
        return publisher_of(root.signed).publisher_id

    def build(self, *, when: datetime = BUILD_TIME, version: int | None = None) -> BuildResult:
        """Build an edition as `mirror build` would."""
        result = build_edition(self.config, now=when, version=version)
        assert isinstance(result, BuildResult)  # force=True always builds
        return result

    @property
    def articles(self) -> Path:
        """The publisher's article folder."""
        return self.home / "articles"


def make_config(
    home: Path,
    *,
    keys_dir: Path | None = None,
    extra: str = "",
    mirrors: str | None = None,
    language: str = "en",
) -> Config:
    """Write a config file for a publisher in ``home`` and load it.

    ``mirrors`` replaces the default single local mirror with a YAML list body;
    ``language`` is the site's.
    """
    (home / "passphrase").write_text(PASSPHRASE + "\n", encoding="utf-8")
    keys = keys_dir or home / "keys"
    if mirrors is None:
        mirrors = (
            "  - name: a\n    type: local\n"
            f"    public_url: file://{home / 'mirror-a'}/\n"
            f"    local:\n      path: {home / 'mirror-a'}\n"
        )
    (home / "mirror.yaml").write_text(
        f"publisher:\n  name: Test Newsroom\n  title: Test News\n  language: {language}\n"
        "sources:\n  - type: directory\n    path: articles\n"
        f"keys:\n  dir: {keys}\n  passphrase: file:passphrase\n"
        "output: out\n"
        f"mirrors:\n{mirrors}" + extra,
        encoding="utf-8",
    )
    return load_config(home / "mirror.yaml")


def make_keys(config: Config) -> None:
    """A test key store for ``config``'s publisher (fast, weak key derivation)."""
    init_keys(
        config.keys.dir,
        config.passphrase(),
        publisher_name=config.publisher.name,
        now=BUILD_TIME,
        kdf_rounds=TEST_KDF_ROUNDS,
    )


@pytest.fixture
def new_publisher(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Publisher]:
    """Factory: a fresh publisher with keys and a few articles."""

    def factory(articles: int = 3, *, keys_from: Publisher | None = None) -> Publisher:
        home = tmp_path_factory.mktemp("publisher")
        write_articles(home / "articles", articles)
        if keys_from is not None:
            shutil.copytree(keys_from.config.keys.dir, home / "keys")
            return Publisher(home, make_config(home))
        config = make_config(home)
        make_keys(config)
        return Publisher(home, config)

    return factory


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Publisher, BuildResult]:
    """One publisher and one built edition, shared read-only by many tests."""
    home = tmp_path_factory.mktemp("built")
    write_articles(home / "articles", 4)
    config = make_config(home)
    make_keys(config)
    publisher = Publisher(home, config)
    return publisher, publisher.build()
