"""Render articles into the static pages of an edition: article pages, index, Atom feed.

The pages are read offline, from ``file://``, by people a censor would like
to identify, so they are deliberately plain:

- No JavaScript, no remote anything: every reference is relative
  (``articles/x.html``, ``../style.css``, ``../assets/x/y.png``), and a strict
  Content-Security-Policy (`CONTENT_SECURITY_POLICY`) makes the browser refuse
  scripts, frames, fonts, remote images and remote styles even if something
  slipped through. ``referrer`` is ``no-referrer``.
- Article bodies are sanitised again here (`mirror.ingest.sanitize`), so a page
  is safe even for an `Article` that did not come from ingest; every other
  value is escaped with `html.escape`.
- Every page carries ``lang`` and ``dir``; each index entry carries its own,
  so Russian, English and Arabic articles sit correctly side by side.
- Output is a pure function of the input: no clocks, no environment, no
  dictionary-order surprises. `render_article` depends only on the article and
  the site title, so an unchanged article gives the same bytes in every
  edition and is never re-uploaded.

The templates are module-level constants filled with `str.format`; every
value put into them is escaped first.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import html
import importlib.resources
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mirror.csp import CONTENT_SECURITY_POLICY
from mirror.ingest.model import Article, slugify, sort_articles, text_direction
from mirror.ingest.sanitize import sanitize_html, strip_invalid_chars

ARTICLE_PAGE = """\
<!doctype html>
<html lang="{lang}" dir="{dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>{title} — {site_title}</title>
<link rel="stylesheet" href="../style.css">
</head>
<body>
<header class="masthead"><a href="../index.html"><bdi>{site_title}</bdi></a></header>
<main>
<article>
<h1>{title}</h1>
<p class="meta"><time datetime="{datetime}">{human_date}</time>{author}</p>
<div class="body">
{body}
</div>
{tags}</article>
</main>
<footer><a href="../index.html">{all_articles}</a></footer>
</body>
</html>
"""

INDEX_PAGE = """\
<!doctype html>
<html lang="{lang}" dir="{dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>{site_title}</title>
<link rel="stylesheet" href="style.css">
<link rel="alternate" type="application/atom+xml" href="feed.xml" title="{site_title}">
</head>
<body>
<header class="masthead">
<h1>{site_title}</h1>
<p class="edition"><span>{publisher}</span><span>{edition_label} <code>{edition_id}</code></span>\
<time datetime="{datetime}">{human_date}</time><a href="feed.xml">{feed_label}</a></p>
</header>
<main>
{articles}
</main>
</body>
</html>
"""

INDEX_BRIEF_ENTRY = """\
<li><article lang="{lang}" dir="{dir}"><a href="articles/{slug}.html">{title}</a> \
<time datetime="{datetime}">{human_date}</time></article></li>
"""

INDEX_ENTRY = """\
<li>
<article lang="{lang}" dir="{dir}">
<h2><a href="articles/{slug}.html">{title}</a></h2>
<p class="meta"><time datetime="{datetime}">{human_date}</time>{author}</p>
<p class="summary">{summary}</p>
</article>
</li>
"""

FEED = """\
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">
<id>{feed_id}</id>
<title>{site_title}</title>
<updated>{updated}</updated>
<author><name>{publisher}</name></author>
<link rel="self" href="feed.xml"/>
<link rel="alternate" type="text/html" href="index.html"/>
<generator>mirror</generator>
{entries}</feed>
"""

FEED_ENTRY = """\
<entry xml:lang="{lang}">
<id>{entry_id}</id>
<title>{title}</title>
<link rel="alternate" type="text/html" href="articles/{slug}.html"/>
<published>{datetime}</published>
<updated>{datetime}</updated>
{author}{categories}<summary type="text">{summary}</summary>
<content type="html">{content}</content>
</entry>
"""

_UI_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "all_articles": "All articles",
        "edition": "Edition",
        "feed": "Atom feed",
        "no_articles": "This edition has no articles.",
        "earlier": "Earlier articles",
    },
    "ru": {
        "all_articles": "Все статьи",  # noqa: RUF001 (Cyrillic, on purpose)
        "edition": "Выпуск",
        "feed": "Лента Atom",
        "no_articles": "В этом выпуске нет статей.",  # noqa: RUF001
        "earlier": "Более ранние статьи",
    },
}

_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
    "ru": (
        "января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
        "сентября", "октября", "ноября", "декабря",
    ),
}  # fmt: skip

# In sanitised bodies every local reference is exactly `="../assets/...`; the feed
# lives one folder up from the article pages, so it needs them without the `../`.
_PAGE_RELATIVE_ASSET = re.compile(r'(\s(?:src|href))="\.\./assets/')


@dataclass(frozen=True)
class SiteInfo:
    """Edition-wide facts shown on the index and in the feed."""

    title: str
    publisher: str
    language: str
    """BCP-47-ish tag for the index page and the feed (e.g. ``ru``)."""
    edition_id: str
    edition_created: datetime
    """When the edition was built; naive values are taken as UTC."""


@dataclass(frozen=True)
class SiteFile:
    """One file of the rendered edition: bytes rendered here, or a file to copy (assets)."""

    name: str
    """Path inside the edition: ``index.html``, ``articles/x.html``, ``assets/x/y.png``."""
    data: bytes | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        """Exactly one of `data` and `source` must be given."""
        if (self.data is None) == (self.source is None):
            raise ValueError(f"site file {self.name!r} needs exactly one of data and source")


def _text(value: str) -> str:
    """`value` escaped for HTML and XML text and attributes, XML-invalid characters removed."""
    return html.escape(strip_invalid_chars(value), quote=True)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds, four-digit year whatever the platform's strftime does."""
    m = _utc(moment)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def _primary(language: str) -> str:
    return language.lower().replace("_", "-").split("-")[0]


def _human_date(moment: datetime, language: str) -> str:
    """``1 March 2024`` / ``1 марта 2024``; ISO ``2024-03-01`` for languages without a table."""
    m = _utc(moment)
    months = _MONTHS.get(_primary(language))
    if months is None:
        return f"{m.year:04d}-{m.month:02d}-{m.day:02d}"
    return f"{m.day} {months[m.month - 1]} {m.year}"


def _ui(language: str, key: str) -> str:
    return _UI_TEXT.get(_primary(language), _UI_TEXT["en"])[key]


def _direction(language: str) -> str:
    return text_direction(language) if language else "ltr"


def _author_span(author: str) -> str:
    return f"<span>{_text(author)}</span>" if author else ""


def _tag_list(tags: Sequence[str]) -> str:
    if not tags:
        return ""
    items = "".join(f"<li>{_text(tag)}</li>" for tag in tags)
    return f'<ul class="tags">{items}</ul>\n'


def _safe_body(article: Article) -> str:
    return sanitize_html(article.body_html).strip()


def _article_page(article: Article, site_title: str, body: str) -> bytes:
    page = ARTICLE_PAGE.format(
        lang=_text(article.language),
        dir=article.direction,
        csp=CONTENT_SECURITY_POLICY,
        title=_text(article.title),
        site_title=_text(site_title),
        datetime=_timestamp(article.date),
        human_date=_text(_human_date(article.date, article.language)),
        author=_author_span(article.author),
        body=body,
        tags=_tag_list(article.tags),
        all_articles=_text(_ui(article.language, "all_articles")),
    )
    return page.encode("utf-8")


INDEX_FULL_ENTRIES = 100
"""Newest articles listed with author and summary; older ones get one short line each,
so the page every edition replaces stays small for readers who update."""


def render_index(articles: Sequence[Article], site: SiteInfo) -> bytes:
    """``index.html``: every article newest first, with edition id and date and the feed link.

    The newest `INDEX_FULL_ENTRIES` carry author and summary; the rest are
    listed briefly (title and date) under "Earlier articles".
    """
    ordered = sort_articles(articles)
    entries = "".join(_index_entry(a, brief=False) for a in ordered[:INDEX_FULL_ENTRIES])
    earlier = "".join(_index_entry(a, brief=True) for a in ordered[INDEX_FULL_ENTRIES:])
    listing = (
        f'<ol class="articles">\n{entries}</ol>'
        if entries
        else f"<p>{_text(_ui(site.language, 'no_articles'))}</p>"
    )
    if earlier:
        listing += (
            f'\n<h2 class="earlier">{_text(_ui(site.language, "earlier"))}</h2>\n'
            f'<ol class="articles brief">\n{earlier}</ol>'
        )
    page = INDEX_PAGE.format(
        lang=_text(site.language),
        dir=_direction(site.language),
        csp=CONTENT_SECURITY_POLICY,
        site_title=_text(site.title),
        publisher=_text(site.publisher),
        edition_label=_text(_ui(site.language, "edition")),
        edition_id=_text(site.edition_id),
        datetime=_timestamp(site.edition_created),
        human_date=_text(_human_date(site.edition_created, site.language)),
        feed_label=_text(_ui(site.language, "feed")),
        articles=listing,
    )
    return page.encode("utf-8")


def _index_entry(article: Article, *, brief: bool) -> str:
    common = {
        "lang": _text(article.language),
        "dir": article.direction,
        "slug": article.slug,
        "title": _text(article.title),
        "datetime": _timestamp(article.date),
        "human_date": _text(_human_date(article.date, article.language)),
    }
    if brief:
        return INDEX_BRIEF_ENTRY.format(**common)
    return INDEX_ENTRY.format(
        **common, author=_author_span(article.author), summary=_text(article.summary)
    )


def _publisher_key(publisher: str) -> str:
    return slugify(publisher) or "publisher"


FEED_ENTRIES = 50
"""How many of the newest articles ``feed.xml`` carries (with full content)."""


def newest(articles: Iterable[Article], count: int = FEED_ENTRIES) -> tuple[Article, ...]:
    """The ``count`` newest articles, in feed order, keeping only that many in memory."""
    # The same order as `sort_articles` (newest first, then slug), cut at ``count``.
    kept = heapq.nsmallest(count, articles, key=lambda a: (-a.date.timestamp(), a.slug))
    return sort_articles(kept)


def _feed(articles: Sequence[Article], site: SiteInfo, bodies: dict[str, str]) -> bytes:
    ordered = sort_articles(articles)
    publisher_key = _publisher_key(site.publisher)
    entries = []
    for article in ordered:
        author = (
            f"<author><name>{_text(article.author)}</name></author>\n" if article.author else ""
        )
        categories = "".join(f'<category term="{_text(tag)}"/>\n' for tag in article.tags)
        content = _PAGE_RELATIVE_ASSET.sub(r'\1="assets/', bodies[article.slug])
        entries.append(
            FEED_ENTRY.format(
                lang=_text(article.language),
                entry_id=f"urn:mirror:{publisher_key}:{article.slug}",
                title=_text(article.title),
                slug=article.slug,
                datetime=_timestamp(article.date),
                author=author,
                categories=categories,
                summary=_text(article.summary),
                content=_text(content),
            )
        )
    updated = ordered[0].date if ordered else site.edition_created
    feed = FEED.format(
        lang=_text(site.language),
        feed_id=f"urn:mirror:{publisher_key}",
        site_title=_text(site.title),
        updated=_timestamp(updated),
        publisher=_text(site.publisher),
        entries="".join(entries),
    )
    return feed.encode("utf-8")


@functools.cache
def stylesheet() -> bytes:
    """``style.css``, shipped as package data in ``mirror/render_assets/``."""
    return (importlib.resources.files("mirror") / "render_assets" / "style.css").read_bytes()


def render_site(articles: Iterable[Article], site: SiteInfo) -> Iterator[SiteFile]:
    """Every file of the edition's readable part, streamed in one pass.

    Each article's page (``articles/<slug>.html``, depending only on the
    article and the site title) and its assets (`SiteFile` entries with a
    ``source`` path for the edition writer to stream) are yielded as the
    article arrives; the article is then forgotten but for its index line,
    except for the newest `FEED_ENTRIES`, whose sanitised bodies the feed
    reuses (each body is sanitised once). ``index.html``, ``feed.xml`` and
    ``style.css`` come last. Raises `ValueError` if two articles share a slug,
    which ingest never produces.
    """
    listed: list[Article] = []
    slugs: set[str] = set()
    feed: tuple[Article, ...] = ()
    feed_bodies: dict[str, str] = {}
    for article in articles:
        if article.slug in slugs:
            raise ValueError(f"two articles share a slug: {article.slug}")
        slugs.add(article.slug)
        body = _safe_body(article)
        yield SiteFile(
            f"articles/{article.slug}.html", data=_article_page(article, site.title, body)
        )
        for asset in article.assets:
            yield SiteFile(asset.name, source=asset.source)
        listed.append(dataclasses.replace(article, body_html=""))
        feed = newest([*feed, article])
        kept = {a.slug for a in feed}
        if article.slug in kept:
            feed_bodies[article.slug] = body
        feed_bodies = {slug: text for slug, text in feed_bodies.items() if slug in kept}
    yield SiteFile("index.html", data=render_index(listed, site))
    yield SiteFile("feed.xml", data=_feed(feed, site, feed_bodies))
    yield SiteFile("style.css", data=stylesheet())
