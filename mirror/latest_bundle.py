"""The latest bundle: an edition's newest articles in one small signed file, for a bad link.

A first fetch of a large archive is hundreds of megabytes before a reader
sees one article; on a throttled or metered link it never finishes. So each
build also writes ``editions/<id>.latest.zip``: the articles of the last
``edition.latest_days`` days (at most ``edition.latest_max_articles``, at
least the newest `LATEST_MIN_ARTICLES` after a quiet week), an index of
them, the stylesheet, ``edition.json``, the signed mirror list and the about
page, and, with ``edition.latest_images``, their images.

Its members are the edition's own members, byte for byte (copied out of the
edition ZIP just written), except ``index.html``, which lists only what the
bundle holds; so a reader who fetched the bundle first already has those
articles in the cache when the whole edition follows. The bundle is one
target of the ``editions`` role, verified by its signed hash as a whole
(`mirror fetch` gets it right after the top of the metadata chain, without
the edition's large member list).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mirror.edition import ArchiveDigest, EditionArchive, EditionWriter
from mirror.ingest import Article
from mirror.ingest.model import sort_articles
from mirror.render import SiteInfo, render_index
from mirror.trust import layout

LATEST_MIN_ARTICLES = 10
"""A bundle holds at least this many articles (if the edition has them), however old."""

BUNDLE_MEMBERS = ("style.css", "about.html", layout.EDITION_INFO_MEMBER, layout.MIRROR_LIST_PATH)
"""Edition members every bundle carries, besides its articles (those the edition has)."""

_MEMBER_MAX_BYTES = 64 * 1024 * 1024


class LatestPicker:
    """The newest articles of one build, kept as they stream past (bodies dropped)."""

    def __init__(self, *, created: datetime, days: int, max_articles: int) -> None:
        self.since = created - timedelta(days=days)
        self.max_articles = max_articles
        self._kept: list[Article] = []

    def offer(self, article: Article) -> None:
        """Consider one article; memory stays bounded by ``max_articles``."""
        self._kept.append(dataclasses.replace(article, body_html=""))
        if len(self._kept) >= 2 * self.max_articles + LATEST_MIN_ARTICLES:
            self._kept = list(sort_articles(self._kept)[: self.max_articles])

    def chosen(self) -> list[Article]:
        """The bundle's articles, newest first."""
        newest = list(sort_articles(self._kept)[: self.max_articles])
        recent = [a for a in newest if _aware(a.date) >= self.since]
        return recent if len(recent) >= LATEST_MIN_ARTICLES else newest[:LATEST_MIN_ARTICLES]


def _aware(moment: datetime) -> datetime:
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def write_latest_bundle(
    edition_zip: Path,
    destination: Path,
    articles: Sequence[Article],
    site: SiteInfo,
    *,
    images: bool,
    timestamp: datetime,
    compresslevel: int,
) -> ArchiveDigest:
    """Write the bundle of ``articles`` at ``destination``, members copied from ``edition_zip``."""
    names = [f"articles/{a.slug}.html" for a in articles]
    if images:
        names += [asset.name for a in articles for asset in a.assets]
    with (
        EditionArchive.open(edition_zip) as edition,
        EditionWriter(destination, timestamp=timestamp, compresslevel=compresslevel) as writer,
        tempfile.TemporaryDirectory(prefix=".latest-", dir=destination.parent) as scratch,
    ):
        writer.add_bytes("index.html", render_index(articles, site))
        for name in [*BUNDLE_MEMBERS, *names]:
            member = edition.find(name)
            if member is None:
                continue
            if member.size <= 1024 * 1024:
                writer.add_bytes(name, edition.read(member, max_bytes=_MEMBER_MAX_BYTES))
                continue
            copy = Path(scratch) / "member"
            with copy.open("wb") as out:
                for chunk in edition.iter_chunks(member, max_bytes=_MEMBER_MAX_BYTES):
                    out.write(chunk)
            writer.add_file(name, copy)
        return writer.close()
