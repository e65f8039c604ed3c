"""Every source's articles as the build needs them: made in worker processes, or kept.

An article the build cache (`mirror.buildcache`) knows, with the same bytes,
settings and versions, is not parsed again: its metadata comes from the
cache and its page is copied, compressed, from the previous edition's ZIP
(`EditionWriter.add_raw`). Every other article is one job in a worker
process, under the per-article CPU deadline (`mirror.ingest.workers`): the
worker parses and sanitises it, renders its page and compresses it, so both
cores do the per-article work while the parent only writes bytes. Articles
come out in source order either way, so the edition does not depend on what
was cached: a build from an empty cache gives the same bytes.

`predict` answers "would a build change anything?" from the cache alone:
it stats (and where the stat changed, hashes) every source file and asset,
parses nothing, and gives up at the first article it would have to parse.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mirror import publish_tree
from mirror.buildcache import BuildCache, entry_key
from mirror.config import Config, DirectorySource, Source
from mirror.edition import ArchiveMember, EditionArchive, PreparedMember, prepare_member
from mirror.errors import MirrorError, StorageError
from mirror.ingest import Article, Asset, IngestProblem
from mirror.ingest.directory import (
    ArticleFile,
    ParsedFile,
    article_file,
    article_files,
    is_article_name,
    open_directory,
    parse_article,
    read_article,
    replay_references,
)
from mirror.ingest.feed import FeedDocument, entry_article, read_feed
from mirror.ingest.model import DEFAULT_LIMITS, IngestLimits, ProblemLog
from mirror.ingest.workers import Overrun, Runner
from mirror.render import RenderedArticle, SiteInfo, render_article


@dataclass(frozen=True)
class ReadyArticle(RenderedArticle):
    """An article with its page member ready: compressed in a worker, or in the last edition."""

    page_name: str
    page_sha256: str
    page_size: int
    prepared: PreparedMember | None
    """The compressed page; None when it is copied from the previous edition's ZIP."""
    kept: ArchiveMember | None
    """The previous edition's ZIP member to copy the page from, when not ``prepared``."""
    payload_crc32: int
    """CRC-32 of the compressed page, which checks the copy."""


@dataclass
class PreviousEdition:
    """The newest edition before this build: its signed members and its ZIP, if usable."""

    members: dict[str, str]
    """Member name -> signed SHA-256."""
    archive: EditionArchive | None
    publish_dir: Path

    def close_archive(self) -> None:
        """Close its ZIP and forget its index (23 MB at 100,000 articles): nothing more is
        copied from it."""
        if self.archive is not None:
            self.archive.close()
            self.archive = None

    def close(self) -> None:
        """Close its ZIP and forget its members too: nothing is compared with it any more."""
        self.close_archive()
        self.members.clear()

    def reusable(self, name: str, sha256: str) -> ArchiveMember | None:
        """The ZIP member to copy for ``name`` with content ``sha256``, if the last edition had
        exactly that and the publish tree still holds it as its own copy."""
        if self.archive is None or self.members.get(name) != sha256:
            return None
        member = self.archive.find(name)
        if member is None:
            return None
        try:
            target = os.stat(publish_tree.target_file_path(self.publish_dir, name, sha256))
        except OSError:
            return None
        # A target with other links (an older tree linked sources in) is replaced by a copy.
        return member if target.st_nlink == 1 else None


@dataclass(frozen=True)
class _Job:
    """What a worker needs besides the source: how to render and compress, where bodies go."""

    site: SiteInfo
    compresslevel: int
    bodies_dir: Path | None


_Made = tuple[Article | str, PreparedMember | None, str | None]
"""A worker's answer: article (or reason), its compressed page, its body's SHA-256."""


def _finish(result: Article | str, job: _Job) -> _Made:
    """Render and compress an article's page, store its body (in the worker)."""
    if not isinstance(result, Article):
        return result, None, None
    page, body = render_article(result, job.site)
    prepared = prepare_member(page.name, page.data or b"", compresslevel=job.compresslevel)
    body_sha: str | None = None
    if job.bodies_dir is not None:
        # The cache is a speed-up: a body it cannot keep (a full disk) is made again
        # next time, and the disk's own trouble is the edition's write to report.
        with contextlib.suppress(OSError):
            body_sha = write_body(job.bodies_dir, body)
    return result, prepared, body_sha


def _file_key(context: str, file: ArticleFile, sha256: str | None) -> str:
    """The cache key of an article file with these bytes: its resolved folder and path, never
    ``file.source`` (the path as messages spell it, which follows how the command line named
    the config: ``--config mirror.yaml`` and ``--config /srv/news/mirror.yaml`` are one
    newsroom, and a build between the two made every article again)."""
    return entry_key(context, "file", str(file.root), str(file.path), sha256)


def _file_job(job: tuple[ArticleFile, bytes | str, _Job]) -> tuple[ParsedFile, _Made]:
    file, data, how = job
    parsed = ParsedFile(data) if isinstance(data, str) else parse_article(file, data)
    return parsed, _finish(parsed.result, how)


def _entry_job(job: tuple[Any, str, str, IngestLimits, _Job]) -> _Made:
    entry, source, language, limits, how = job
    return _finish(entry_article((entry, source, language, limits)), how)


def write_body(folder: Path, body: str) -> str:
    """Store a sanitised body under its SHA-256 (temp file and rename; the name checks it).

    Not flushed to disk: the cache is a speed-up, and a body torn by a power cut
    no longer matches its name, so it is made again. A failed write (a full disk)
    leaves no temporary file behind.
    """
    data = body.encode("utf-8")
    sha256 = hashlib.sha256(data).hexdigest()
    path = folder / sha256
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{sha256}.{os.getpid()}.tmp"
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return sha256


# -- the cache entry of one article -------------------------------------------------------


def _entry(made: _Made, parsed: ParsedFile | None = None) -> dict[str, Any]:
    result, prepared, body_sha = made
    entry: dict[str, Any] = {"body": body_sha}
    if isinstance(result, Article):
        entry["article"] = {
            "slug": result.slug,
            "title": result.title,
            "date": result.date.isoformat(),
            "author": result.author,
            "language": result.language,
            "direction": result.direction,
            "tags": list(result.tags),
            "summary": result.summary,
        }
        if prepared is not None:
            entry["page"] = [prepared.name, prepared.sha256, prepared.size, prepared.payload_crc32]
    else:
        entry["reason"] = result
    if parsed is not None:
        entry["references"] = [list(ref) for ref in parsed.references]
        entry["assets"] = [[a.name, str(a.source), a.size] for a in parsed.assets]
        entry["asset_problems"] = list(parsed.asset_problems)
    return entry


def _outcome(
    entry: Mapping[str, Any], source: str, assets: tuple[Asset, ...] = ()
) -> Article | str | None:
    """The article (body left out) or reason an entry records; None if it is malformed."""
    try:
        if "reason" in entry:
            return str(entry["reason"])
        meta = entry["article"]
        return Article(
            slug=str(meta["slug"]),
            title=str(meta["title"]),
            date=datetime.fromisoformat(str(meta["date"])),
            author=str(meta["author"]),
            language=str(meta["language"]),
            direction="rtl" if meta["direction"] == "rtl" else "ltr",
            tags=tuple(str(tag) for tag in meta["tags"]),
            summary=str(meta["summary"]),
            body_html="",
            assets=assets,
            source=source,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _recorded_assets(entry: Mapping[str, Any]) -> tuple[tuple[Asset, ...], tuple[str, ...]] | None:
    try:
        assets = tuple(
            Asset(name=str(name), source=Path(str(source)), size=int(size))
            for name, source, size in entry.get("assets", [])
        )
        return assets, tuple(str(p) for p in entry.get("asset_problems", []))
    except (TypeError, ValueError):
        return None


def _page(entry: Mapping[str, Any]) -> tuple[str, str, int, int] | None:
    page = entry.get("page")
    if not (isinstance(page, list) and len(page) == 4):
        return None
    name, sha256, size, crc = page
    if not (isinstance(name, str) and isinstance(sha256, str)):
        return None
    if not (isinstance(size, int) and isinstance(crc, int)):
        return None
    return name, sha256, size, crc


# -- sources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    """An article (or problem) the cache knows, with what its page is."""

    source: str
    outcome: Article | str
    page: tuple[str, str, int, int]
    """(name, SHA-256, size, CRC-32 of its compressed bytes) of an article's page; empty
    for a problem."""
    body_sha: str
    key: str
    remake: Callable[[], _Miss] | None = None
    """The job that makes the article again, should its stored body be gone."""
    member: ArchiveMember | None = None
    """The previous edition's ZIP member holding its page (set by `SourceReader.items`)."""


@dataclass(frozen=True)
class _Miss:
    """A source that has to be parsed."""

    source: str
    key: str
    job: Any
    function: Callable[[Any], Any]
    parsed: bool
    """Whether the worker's answer is a (ParsedFile, made) pair (files) or made (entries)."""


class SourceReader:
    """Reads the configured sources for `predict` and `items`, each feed fetched once a build."""

    def __init__(self, config: Config, cache: BuildCache, runner: Runner, site: SiteInfo) -> None:
        self.config = config
        self.cache = cache
        self.runner = runner
        self.how = _Job(
            site=site,
            compresslevel=config.edition.compression_level,
            bodies_dir=cache.folder / "bodies",
        )
        self._feeds: dict[str, FeedDocument] = {}
        self.previous: PreviousEdition | None = None
        """Set by `items`: a kept article needs its page in the previous edition."""

    # -- one article ------------------------------------------------------------------

    def _file_item(self, file: ArticleFile) -> _Hit | _Miss:
        data: bytes | str | None = None
        sha256: str | None = None
        try:
            info = os.stat(file.path)
        except OSError:
            info = None
        if info is not None:
            sha256 = self.cache.known_hash(file.path, info)
        if sha256 is None:
            read_ns = time.time_ns()
            data = read_article(file)
            if isinstance(data, bytes):
                sha256 = hashlib.sha256(data).hexdigest()
                if info is not None and info.st_size == len(data):
                    self.cache.remember_hash(file.path, info, sha256, read_ns)
        key = _file_key(self.cache.context, file, sha256)
        entry = self.cache.entry(key) if sha256 is not None else None
        if entry is not None:
            hit = self._file_hit(file, key, entry)
            if hit is None:
                self.cache.forget(key)
            elif (usable := self._usable(hit)) is not None:
                return usable
        return self._file_miss(file, key, data)

    def _file_miss(self, file: ArticleFile, key: str, data: bytes | str | None) -> _Miss:
        if data is None:
            data = read_article(file)
            if isinstance(data, bytes):
                sha256 = hashlib.sha256(data).hexdigest()
                key = _file_key(self.cache.context, file, sha256)
        return _Miss(file.source, key, (file, data, self.how), _file_job, parsed=True)

    def _file_hit(self, file: ArticleFile, key: str, entry: Mapping[str, Any]) -> _Hit | None:
        recorded = _recorded_assets(entry)
        if recorded is None:
            return None
        references = entry.get("references", [])
        slug = entry.get("article", {}).get("slug", "") if "article" in entry else ""
        if references:
            try:
                now = replay_references(file, str(slug), [(str(k), str(u)) for k, u in references])
            except (TypeError, ValueError):
                return None
            if now != recorded:
                return None  # an image or linked file moved, grew or went away
        outcome = _outcome(entry, file.source, recorded[0])
        hit = self._hit(file.source, key, entry, outcome)
        if hit is None:
            return None
        return replace(hit, remake=functools.partial(self._file_miss, file, key, None))

    def _hit(
        self, source: str, key: str, entry: Mapping[str, Any], outcome: Article | str | None
    ) -> _Hit | None:
        if outcome is None:
            return None
        page = _page(entry)
        body = entry.get("body")
        if not isinstance(outcome, Article):
            return _Hit(source, outcome, ("", "", 0, 0), "", key)
        if page is None or not isinstance(body, str):
            return None
        return _Hit(source, outcome, page, body, key)

    def _entry_item(
        self, source: str, entry: Any, language: str, limits: IngestLimits
    ) -> _Hit | _Miss:
        content = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=repr)
        # Not ``source`` either: the entry's link, or the feed as the config spells its path.
        key = entry_key(self.cache.context, "feed-entry", language, content)
        found = self.cache.entry(key)
        if found is not None:
            hit = self._hit(source, key, found, _outcome(found, source))
            if hit is None:
                self.cache.forget(key)
            elif (usable := self._usable(hit)) is not None:
                return usable
        return _Miss(
            source, key, (entry, source, language, limits, self.how), _entry_job, parsed=False
        )

    def _usable(self, hit: _Hit) -> _Hit | None:
        """``hit``, with the previous edition's member to copy its page from; None if that
        edition does not hold it (a kept article's page is copied from there)."""
        if self.previous is None or not isinstance(hit.outcome, Article):
            return hit
        name, sha256, _, _ = hit.page
        member = self.previous.reusable(name, sha256)
        return None if member is None else replace(hit, member=member)

    # -- whole sources ------------------------------------------------------------------

    def _source_items(
        self, source: Source, log: ProblemLog
    ) -> Iterator[_Hit | _Miss | IngestProblem]:
        config = self.config
        if isinstance(source, DirectorySource):
            root, language = open_directory(source.path, config.publisher.language)
            reported = len(log.problems)
            files = article_files(root, source.path, language, DEFAULT_LIMITS, log)
            yield from log.problems[reported:]
            for file in files:
                yield self._file_item(file)
            return
        limits = replace(DEFAULT_LIMITS, feed_timeout_s=source.timeout_s)
        document = self._feeds.get(source.location)
        if document is None:
            document = read_feed(
                source.location,
                default_language=config.publisher.language,
                limits=limits,
                allow_private_addresses=source.allow_private_addresses,
                runner=self.runner,
            )
            self._feeds[source.location] = document
        for cut_source, reason in document.cut:
            yield log.report(cut_source, reason)
        for entry_source, entry in document.entries:
            yield self._entry_item(entry_source, entry, document.language, limits)

    def _all_items(self, log: ProblemLog) -> Iterator[_Hit | _Miss | IngestProblem]:
        for source in self.config.sources:
            yield from self._source_items(source, log)

    def would_parse(self, suspects: Collection[tuple[int, str]]) -> bool:
        """Whether one of ``suspects`` ((source index, relative path): files that changed) is
        an article file the cache does not know, so that `predict` would say None: a build
        with a new article need not read every other source to find that out."""
        for index, source in enumerate(self.config.sources):
            names = sorted(rel for at, rel in suspects if at == index and is_article_name(rel))
            if not names or not isinstance(source, DirectorySource):
                continue
            root, language = open_directory(source.path, self.config.publisher.language)
            for rel in names:
                file = article_file(root, source.path, rel, language, DEFAULT_LIMITS)
                if isinstance(self._file_item(file), _Miss):
                    return True
        return False

    def predict(self) -> tuple[dict[str, str], tuple[IngestProblem, ...]] | None:
        """The members (name -> SHA-256) of every article page and asset a build would
        write, and its problems, if the cache knows every article; None as soon as one
        would have to be parsed (or an asset cannot be read: the build reports it)."""
        log = ProblemLog(self.config.on_article_error)
        pages: dict[int, tuple[str, str, int, int]] = {}
        problems: list[IngestProblem] = []
        missed = False

        def articles() -> Iterator[Article | IngestProblem]:
            nonlocal missed
            for item in self._all_items(log):
                if isinstance(item, _Miss):
                    missed = True
                    return
                if isinstance(item, IngestProblem):
                    yield item
                elif isinstance(item.outcome, Article):
                    pages[id(item.outcome)] = item.page
                    yield item.outcome
                else:
                    yield log.report(item.source, item.outcome)

        members: dict[str, str] = {}
        for item in log.first_slug_wins(articles()):
            if isinstance(item, IngestProblem):
                problems.append(item)
                continue
            name, sha256, _, _ = pages[id(item)]
            members[name] = sha256
            for asset in item.assets:
                try:
                    members[asset.name], _ = self.cache.file_hash(
                        asset.source, max_bytes=DEFAULT_LIMITS.max_asset_bytes
                    )
                except MirrorError:
                    return None
        if missed:
            return None
        return members, tuple(problems)

    def items(
        self, log: ProblemLog, previous: PreviousEdition | None
    ) -> Iterator[ReadyArticle | IngestProblem]:
        """Every article ready for `render_site`, in source order, slugs unique.

        Articles the cache knows whose page the previous edition holds are
        given with ``prepared=None`` and the member to copy from there (``kept``); the others are
        made by workers, as they come, at most a window ahead.
        """
        self.previous = previous
        stream = self._all_items(log)
        buffer: collections.deque[_Hit | _Miss | IngestProblem] = collections.deque()

        def jobs() -> Iterator[_Miss]:
            # The runner reads jobs a window ahead; articles the cache knows are no jobs, so
            # a pause stands in after every `PAUSE_EVERY` of them in a row: an update of a
            # large archive never holds more than a window of pauses' worth in `buffer`.
            known = 0
            for item in stream:
                buffer.append(item)
                if isinstance(item, _Miss):
                    known = 0
                    yield item
                elif (known := known + 1) >= PAUSE_EVERY:
                    known = 0
                    buffer.append(_PAUSE)
                    yield _PAUSE

        results = iter(self.runner.map(_call, jobs()))
        ready: collections.deque[Any] = collections.deque()
        made: dict[int, ReadyArticle] = {}

        def articles() -> Iterator[Article | IngestProblem]:
            while True:
                while buffer:
                    item = buffer.popleft()
                    if item is _PAUSE:
                        _ = ready.popleft() if ready else next(results)
                        continue
                    if isinstance(item, _Miss):
                        outcome = ready.popleft() if ready else next(results)
                        converted = self._made(item, outcome, log)
                    elif isinstance(item, _Hit):
                        converted = self._kept(item, log)
                    else:
                        converted = item
                    if isinstance(converted, ReadyArticle):
                        made[id(converted.article)] = converted
                        yield converted.article
                    else:
                        yield converted
                try:
                    ready.append(next(results))
                except StopIteration:
                    if not buffer:
                        return

        for item in log.first_slug_wins(articles()):
            yield made.pop(id(item)) if isinstance(item, Article) else item

    def _kept(self, hit: _Hit, log: ProblemLog) -> ReadyArticle | IngestProblem:
        if not isinstance(hit.outcome, Article):
            return log.report(hit.source, hit.outcome)
        name, sha256, size, crc = hit.page
        return ReadyArticle(
            article=hit.outcome,
            body=functools.partial(self._cached_body, hit),
            page_name=name,
            page_sha256=sha256,
            page_size=size,
            prepared=None,
            kept=hit.member,
            payload_crc32=crc,
        )

    def _cached_body(self, hit: _Hit) -> str:
        """A kept article's body for the feed: from the cache, else made again by a worker.

        Asked for only after every article went past (`render_site` builds the
        feed last), so the workers are idle by then.
        """
        body = self.cache.body(hit.body_sha)
        if body is not None:
            return body
        self.cache.forget(hit.key)
        if hit.remake is not None:
            miss = hit.remake()
            (outcome,) = self.runner.map(_call, [miss])
            made = self._made(miss, outcome, ProblemLog("skip"))
            if isinstance(made, ReadyArticle) and made.page_sha256 == hit.page[1]:
                return made.article.body_html
        raise StorageError(
            f"{hit.source} changed while the edition was being built",
            hint="Build again.",
        )

    def _made(self, miss: _Miss, outcome: Any, log: ProblemLog) -> ReadyArticle | IngestProblem:
        if isinstance(outcome, Overrun):
            return log.report(miss.source, outcome.reason)
        parsed: ParsedFile | None = None
        if miss.parsed:
            parsed, outcome = outcome
        result, prepared, _ = outcome
        if not (miss.parsed and isinstance(miss.job[1], str)):  # a file that could not be read
            self.cache.put(miss.key, _entry(outcome, parsed))
        if not isinstance(result, Article):
            return log.report(miss.source, result)
        if prepared is None:  # pragma: no cover - workers compress every article's page
            raise ValueError(f"{miss.source} came back without its page")
        return ReadyArticle(
            article=result,
            body=functools.partial(str, result.body_html),
            page_name=prepared.name,
            page_sha256=prepared.sha256,
            page_size=prepared.size,
            prepared=prepared,
            kept=None,
            payload_crc32=prepared.payload_crc32,
        )


def _call(miss: _Miss) -> Any:
    return miss.function(miss.job)


def _nothing(_: object) -> None:
    """The job of a pause: nothing."""


PAUSE_EVERY = 32
"""Articles the cache knows, in a row, after which `SourceReader.items` hands the runner a pause."""

_PAUSE = _Miss(source="", key="", job=None, function=_nothing, parsed=False)
"""A job that does nothing (see `SourceReader.items`)."""
