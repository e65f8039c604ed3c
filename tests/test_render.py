# ruff: noqa: RUF001 - Russian, Arabic and Persian texts are meant to be in their scripts
"""Render: article pages, index, about page, Atom feed and the stylesheet of an edition."""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.ingest import Article, Asset, load_directory, text_direction
from mirror.render import (
    AnnouncedMirror,
    EditionProof,
    SiteFile,
    SiteInfo,
    render_about,
    render_index,
    render_site,
    stylesheet,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "articles"

PROOF = EditionProof(
    publisher_id="c4e8f15faba463f08b65a38f2cdf5fbc",
    root_version=2,
    root_sha256="ab" * 32,
    minisign_public_key="RWTZzacp8U6knkxeo1YF9KgqzSuiU54FYJdI5d3aq7pcUAvyPo7Mu8K7",
    reader_page_sha256="cd" * 32,
    mirror_version="0.1.0",
    mirrors=(
        AnnouncedMirror("cloud", "https://cloud.example/news/"),
        AnnouncedMirror("usb", "file:///media/usb/news/"),
    ),
)

SITE = SiteInfo(
    title="Свободные новости",
    publisher="Свободные новости",
    language="ru",
    edition_id="2024-03-08-0001",
    edition_created=datetime(2024, 3, 8, 6, 0, tzinfo=UTC),
    proof=PROOF,
)


def make_article(slug: str, day: int, **changes: object) -> Article:
    values: dict[str, object] = {
        "slug": slug,
        "title": f"Статья {slug}",
        "date": datetime(2024, 3, day, 9, 0, tzinfo=UTC),
        "author": "Редакция",
        "language": "ru",
        "direction": "ltr",
        "tags": ("новости",),
        "summary": "Коротко про главное.",
        "body_html": "<p>Текст статьи.</p>",
        "assets": (),
        "source": f"/srv/articles/{slug}.md",
        **changes,
    }
    return Article(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def example_articles() -> tuple[Article, ...]:
    result = load_directory(EXAMPLES, default_language="ru", on_error="fail")
    return result.articles


def site_files(articles: list[Article] | tuple[Article, ...], site: SiteInfo) -> list[SiteFile]:
    """Every file `render_site` streams (as the build writes them), sorted by name."""
    return sorted(render_site(articles, site), key=lambda file: file.name)


def page_of(article: Article, site: SiteInfo) -> bytes:
    """The article's page, as the build renders it."""
    files = {file.name: file for file in render_site([article], site)}
    return files[f"articles/{article.slug}.html"].data or b""


def feed_of(articles: list[Article] | tuple[Article, ...], site: SiteInfo) -> bytes:
    """``feed.xml``, as the build renders it."""
    return {file.name: file for file in render_site(articles, site)}["feed.xml"].data or b""


@pytest.fixture(scope="module")
def example_site(example_articles: tuple[Article, ...]) -> dict[str, SiteFile]:
    return {file.name: file for file in site_files(example_articles, SITE)}


class LinkCollector(HTMLParser):
    """Every URL a page refers to, as (tag, attribute, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.html_attrs: dict[str, str | None] = {}
        self.article_attrs: list[dict[str, str | None]] = []
        self.attribute_names: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.html_attrs = dict(attrs)
        if tag == "article":
            self.article_attrs.append(dict(attrs))
        for name, value in attrs:
            self.attribute_names.add(name)
            if name in ("href", "src", "action", "data", "poster", "srcset") and value is not None:
                self.urls.append((tag, name, value))


def parse(data: bytes) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(data.decode("utf-8"))
    collector.close()
    return collector


VOID_ELEMENTS = frozenset({"meta", "link", "img", "br", "hr", "input", "source", "wbr"})
CAPTURED = frozenset({"pre", "dt", "dd", "a", "h1"})


class PageParts(HTMLParser):
    """What a reader sees of a page: its text, commands (``<pre>``), facts (``<dt>`` to
    ``<dd>``), mirror links (``ul.mirrors a``, as href and text), footer links, and
    the ``lang``/``dir`` of the masthead and footer."""

    def __init__(self, data: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.commands: list[str] = []
        self.facts: dict[str, str] = {}
        self.mirror_links: list[tuple[str, str]] = []
        self.reader_links: list[str] = []
        self.footer_links: list[str] = []
        self.chrome: dict[str, dict[str, str]] = {}
        self.heading = ""
        self._open: list[tuple[str, dict[str, str]]] = []
        self._captured: list[list[str]] = []
        self._term = ""
        self.feed(data.decode("utf-8"))
        self.close()

    @property
    def text(self) -> str:
        """Every text node, whitespace collapsed."""
        return " ".join("".join(self.texts).split())

    def _inside(self, tag: str, css_class: str | None = None) -> bool:
        return any(
            name == tag and (css_class is None or css_class in attrs.get("class", "").split())
            for name, attrs in self._open
        )

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in VOID_ELEMENTS:
            return
        if tag in ("header", "footer"):
            self.chrome[tag] = {k: v for k, v in values.items() if k in ("lang", "dir")}
        if tag == "a" and self._inside("footer"):
            self.footer_links.append(values.get("href", ""))
        self._open.append((tag, values))
        if tag in CAPTURED:
            self._captured.append([])

    def handle_endtag(self, tag: str) -> None:
        values: dict[str, str] = {}
        while self._open:
            name, values = self._open.pop()
            if name == tag:
                break
        if tag not in CAPTURED or not self._captured:
            return
        raw = "".join(self._captured.pop())
        text = " ".join(raw.split())
        if tag == "pre":
            self.commands.append(raw)
        elif tag == "dt":
            self._term = text
        elif tag == "dd":
            self.facts[self._term] = text
        elif tag == "h1" and not self.heading:
            self.heading = text
        elif tag == "a" and self._inside("ul", "mirrors") and values.get("class") == "reader":
            self.reader_links.append(values.get("href", ""))
        elif tag == "a" and self._inside("ul", "mirrors"):
            self.mirror_links.append((values.get("href", ""), text))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for buffer in self._captured:
            buffer.append(data)


# --- pages -----------------------------------------------------------------------------


def test_render_site_streams_every_file_once_pages_first(
    example_articles: tuple[Article, ...], example_site: dict[str, SiteFile]
) -> None:
    names = [file.name for file in render_site(example_articles, SITE)]
    assert len(names) == len(set(names))
    # after every article
    assert names[-4:] == ["index.html", "about.html", "feed.xml", "style.css"]
    for article in example_articles:
        assert f"articles/{article.slug}.html" in example_site
        for asset in article.assets:
            assert example_site[asset.name].source == asset.source
            assert example_site[asset.name].data is None


def test_relative_links_resolve_to_files_the_site_contains(
    example_site: dict[str, SiteFile],
) -> None:
    checked = 0
    for name, file in example_site.items():
        if not name.endswith(".html"):
            continue
        assert file.data is not None
        for tag, attribute, url in parse(file.data).urls:
            if tag == "a" and url.startswith(("https://", "http://", "file://", "mailto:", "#")):
                continue  # links the reader may follow by hand (mirrors); never loaded by the page
            assert "://" not in url, (name, url)
            assert not url.startswith(("/", "\\")), (name, url)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), url))
            assert target in example_site, (name, tag, attribute, url)
            checked += 1
    assert checked > 20


def test_no_script_and_no_remote_resource_loads(example_site: dict[str, SiteFile]) -> None:
    for name, file in example_site.items():
        if not name.endswith(".html"):
            continue
        assert file.data is not None
        text = file.data.decode("utf-8").lower()
        assert "<script" not in text
        page = parse(file.data)
        assert not [name for name in page.attribute_names if name.startswith("on")]
        assert "style" not in page.attribute_names
        for tag, attribute, url in page.urls:
            if attribute != "href" or tag == "link":
                assert not url.lower().startswith(("http:", "https:", "//", "data:")), (name, url)


def test_pages_carry_language_and_direction(
    example_site: dict[str, SiteFile], example_articles: tuple[Article, ...]
) -> None:
    for article in example_articles:
        data = example_site[f"articles/{article.slug}.html"].data
        assert data is not None
        assert parse(data).html_attrs == {"lang": article.language, "dir": article.direction}
    arabic = next(a for a in example_articles if a.language == "ar")
    assert arabic.direction == "rtl"
    index = example_site["index.html"].data
    assert index is not None
    page = parse(index)
    assert page.html_attrs == {"lang": "ru", "dir": "ltr"}
    assert page.article_attrs == [
        {"lang": a.language, "dir": a.direction} for a in example_articles
    ]


def test_cyrillic_and_arabic_are_intact(example_site: dict[str, SiteFile]) -> None:
    index = example_site["index.html"].data
    assert index is not None
    text = index.decode("utf-8")
    assert "Как проверить, что выпуск настоящий" in text
    assert "كيف تقرأ نشرتنا عندما يُحجب موقعنا" in text
    assert '<meta charset="utf-8">' in text
    assert "8 марта 2024" in text


def test_index_lists_articles_newest_first_whatever_the_input_order() -> None:
    articles = [make_article("b", 2), make_article("c", 3), make_article("a", 2)]
    page = render_index(articles, SITE).decode("utf-8")
    positions = [page.index(f'href="articles/{slug}.html"') for slug in ("c", "a", "b")]
    assert positions == sorted(positions)
    assert render_index(list(reversed(articles)), SITE) == render_index(articles, SITE)
    assert "2024-03-08-0001" in page
    assert 'href="feed.xml"' in page
    assert '<time datetime="2024-03-03T09:00:00Z">3 марта 2024</time>' in page


def test_empty_edition_still_renders() -> None:
    files = {file.name: file for file in site_files([], SITE)}
    assert set(files) == {"index.html", "about.html", "feed.xml", "style.css"}
    index = (files["index.html"].data or b"").decode()
    assert "В этом выпуске нет статей." in index
    feed = feedparser.parse(files["feed.xml"].data)
    assert not feed.bozo
    assert feed.feed.updated == "2024-03-08T06:00:00Z"


def test_article_page_depends_only_on_article_and_site_title_and_language() -> None:
    article = make_article("same", 1)
    other_edition = dataclasses.replace(
        SITE,
        edition_id="later",
        edition_created=datetime(2025, 1, 1, tzinfo=UTC),
        publisher="Someone else",
        proof=dataclasses.replace(
            PROOF, root_version=3, root_sha256="ef" * 32, reader_page_sha256="01" * 32, mirrors=()
        ),
    )
    first = page_of(article, SITE)
    assert first == page_of(article, other_edition)
    assert b"/srv/articles" not in first  # the source path is for messages, never published
    # The site's title and language frame every page: they are the only site facts it shows.
    assert first != page_of(article, dataclasses.replace(SITE, title="Other"))
    assert first != page_of(article, dataclasses.replace(SITE, language="en"))


def test_article_body_is_sanitised_again_and_values_escaped() -> None:
    article = make_article(
        "evil",
        1,
        title='<script>alert("t")</script>',
        author="<b>me</b>",
        tags=("<i>tag</i>",),
        body_html='<p onclick="x()">hi</p><script>alert(1)</script><img src="https://e.example/p.gif">'
        '<img src="../assets/evil/ok.png" alt="ok">',
    )
    page = page_of(article, dataclasses.replace(SITE, title="<Site & co>")).decode("utf-8")
    assert "<script" not in page
    assert "onclick" not in page
    assert "e.example" not in page
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in page
    assert "&lt;Site &amp; co&gt;" in page
    assert "&lt;b&gt;me&lt;/b&gt;" in page
    assert '<img src="../assets/evil/ok.png" alt="ok">' in page


def test_strict_content_security_policy_in_every_page(example_site: dict[str, SiteFile]) -> None:
    csp = (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'none'\">"
    )
    for name, file in example_site.items():
        if name.endswith(".html"):
            assert csp in (file.data or b"").decode("utf-8"), name


# --- feed ------------------------------------------------------------------------------


def test_feed_is_valid_atom(
    example_site: dict[str, SiteFile], example_articles: tuple[Article, ...]
) -> None:
    data = example_site["feed.xml"].data
    feed = feedparser.parse(data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.id == "urn:mirror:svobodnye-novosti"
    assert feed.feed.updated == "2024-03-08T05:00:00Z"
    assert [entry.id for entry in feed.entries] == [
        f"urn:mirror:svobodnye-novosti:{a.slug}" for a in example_articles
    ]
    first = feed.entries[0]
    assert first.title == example_articles[0].title
    assert first.link == f"articles/{example_articles[0].slug}.html"
    assert first.author == example_articles[0].author
    with_image = next(e for e, a in zip(feed.entries, example_articles, strict=True) if a.assets)
    assert 'src="assets/how-mirrors-work/how-mirrors-work.png"' in with_image.content[0].value
    assert "../assets" not in with_image.content[0].value


def test_stylesheet_is_package_data() -> None:
    css = stylesheet().decode("utf-8")
    assert "prefers-color-scheme: dark" in css
    assert "max-width" in css
    assert "Noto Naskh Arabic" in css
    assert "url(" not in css  # no fonts or images from anywhere


def test_site_file_needs_exactly_one_source_of_bytes() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SiteFile("x")
    with pytest.raises(ValueError, match="exactly one"):
        SiteFile("x", data=b"", source=Path("x"))


def test_duplicate_slugs_are_refused() -> None:
    with pytest.raises(ValueError, match="share a slug: same"):
        site_files([make_article("same", 1), make_article("same", 2)], SITE)


def test_article_refuses_unsafe_slug_and_asset_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="slug"):
        make_article("../etc", 1)
    with pytest.raises(ValueError, match="asset name"):
        make_article("a", 1, assets=(Asset("assets/b/x.png", tmp_path, 1),))
    with pytest.raises(ValueError, match="timezone"):
        make_article("a", 1, date=datetime(2024, 1, 1))


# --- determinism -----------------------------------------------------------------------


def test_rendering_twice_gives_identical_bytes(example_articles: tuple[Article, ...]) -> None:
    assert site_files(example_articles, SITE) == site_files(example_articles, SITE)
    assert site_files(example_articles, SITE) == site_files(example_articles[::-1], SITE)
    assert feed_of(example_articles, SITE) == feed_of(example_articles[::-1], SITE)


LANGUAGES = ["en", "ru", "ar", "he", "fa-IR", "sr-Latn", "uk", "ckb-Latn"]
BODIES = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "<p>Текст</p>",
            '<p dir="rtl" lang="ar">نص</p>',
            '<figure><img src="../assets/x/a.png" alt="a"><figcaption>c</figcaption></figure>',
            "<table><tr><td>1</td></tr></table>",
            "<script>alert(1)</script><p>x</p>",
            "]]><![CDATA[",
        ]
    ),
)


@st.composite
def articles(draw: st.DrawFn) -> Article:
    language = draw(st.sampled_from(LANGUAGES))
    return Article(
        slug=draw(st.from_regex(r"[a-z0-9]{1,12}(-[a-z0-9]{1,12}){0,3}", fullmatch=True)),
        title=draw(st.text(min_size=1, max_size=60)),
        date=draw(
            st.datetimes(
                min_value=datetime(1970, 1, 1),
                max_value=datetime(2100, 1, 1),
                timezones=st.just(UTC),
            )
        ),
        author=draw(st.text(max_size=30)),
        language=language,
        direction=text_direction(language),
        tags=tuple(draw(st.lists(st.text(min_size=1, max_size=15), max_size=3))),
        summary=draw(st.text(max_size=100)),
        body_html=draw(BODIES),
        source="generated",
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(articles(), max_size=6, unique_by=lambda a: a.slug),
    publisher=st.text(max_size=30),
    edition_id=st.text(max_size=20),
)
def test_render_is_a_pure_function_of_its_input(
    batch: list[Article], publisher: str, edition_id: str
) -> None:
    site = dataclasses.replace(SITE, publisher=publisher, edition_id=edition_id)
    first = site_files(batch, site)
    assert first == site_files(batch, site)
    assert first == site_files(list(reversed(batch)), site)
    files = {file.name: file for file in first}
    feed = feedparser.parse(files["feed.xml"].data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert len(feed.entries) == len(batch)
    index = (files["index.html"].data or b"").decode("utf-8")
    for article in batch:
        assert f'href="articles/{article.slug}.html"' in index
        page = (files[f"articles/{article.slug}.html"].data or b"").decode("utf-8")
        assert "<script" not in page


# --- a real browser --------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_console(page: Path) -> str:
    assert CHROMIUM is not None
    completed = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stderr


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chromium_loads_styles_and_images_under_the_csp_from_file_urls(
    tmp_path: Path, example_site: dict[str, SiteFile]
) -> None:
    for name, file in example_site.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if file.data is not None:
            target.write_bytes(file.data)
        else:
            assert file.source is not None
            shutil.copyfile(file.source, target)
    for page in ("index.html", "articles/how-mirrors-work.html"):
        console = chromium_console(tmp_path / page)
        assert "Content Security Policy" not in console, console
    # Control: the same check does see a violation when the policy forbids the stylesheet.
    broken = tmp_path / "articles" / "broken.html"
    page_text = (tmp_path / "articles" / "how-mirrors-work.html").read_text(encoding="utf-8")
    broken.write_text(page_text.replace("style-src 'self'", "style-src 'none'"), encoding="utf-8")
    assert "Content Security Policy" in chromium_console(broken)


def test_index_lists_older_articles_briefly_so_updates_stay_small() -> None:
    from mirror.reader.read import parse_index
    from mirror.render import INDEX_FULL_ENTRIES

    count = INDEX_FULL_ENTRIES + 5
    articles = [make_article(f"a{i:03d}", 1 + i % 28, summary=f"Summary {i}") for i in range(count)]
    page = render_index(articles, SITE)
    text = page.decode("utf-8")
    assert text.count('class="summary"') == INDEX_FULL_ENTRIES
    assert "Более ранние статьи" in text
    entries = parse_index(page)
    assert len(entries) == count  # every article is still listed and linked
    assert all(e.file.startswith("articles/a") for e in entries)
    # The brief entries cost a fraction of the full ones.
    full = render_index(articles[:INDEX_FULL_ENTRIES], SITE)
    assert len(page) - len(full) < 5 * 400


# --- dates, right-to-left chrome and the about page ------------------------------------


@pytest.mark.parametrize(
    ("language", "moment", "shown"),
    [
        ("en", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "1 December 2026"),
        ("en-GB", datetime(2024, 2, 29, 9, 0, tzinfo=UTC), "29 February 2024"),
        ("ru", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "1 декабря 2026"),
        ("ru", datetime(2024, 5, 9, 9, 0, tzinfo=UTC), "9 мая 2024"),
        ("ar", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "1 ديسمبر 2026"),
        ("ar", datetime(2024, 3, 8, 9, 0, tzinfo=UTC), "8 مارس 2024"),
        ("he", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "1 בדצמבר 2026"),
        ("he", datetime(2024, 5, 14, 9, 0, tzinfo=UTC), "14 במאי 2024"),
        # Solar Hijri, in Persian digits: Nowruz 1405, and pairs the library must agree with.
        ("fa", datetime(2026, 3, 21, 9, 0, tzinfo=UTC), "۱ فروردین ۱۴۰۵"),
        ("fa", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "۱۰ آذر ۱۴۰۵"),
        ("fa-IR", datetime(1979, 2, 11, 9, 0, tzinfo=UTC), "۲۲ بهمن ۱۳۵۷"),
        ("fa", datetime(2025, 3, 20, 9, 0, tzinfo=UTC), "۳۰ اسفند ۱۴۰۳"),  # a leap year's end
        # The day is the UTC day, as in <time datetime>: 23:30 at UTC-1 is already Nowruz.
        (
            "fa",
            datetime(2026, 3, 20, 23, 30, tzinfo=timezone(timedelta(hours=-1))),
            "۱ فروردین ۱۴۰۵",
        ),
        ("fa", datetime(600, 1, 1, tzinfo=UTC), "۰۶۰۰-۰۱-۰۱"),  # before the calendar's year 1
        ("de", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "2026-12-01"),  # no table: ISO
    ],
)
def test_dates_are_written_the_readers_way(language: str, moment: datetime, shown: str) -> None:
    article = make_article("d", 1, date=moment, language=language, direction="ltr")
    m = moment.astimezone(UTC)
    stamp = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"
    assert f'<time datetime="{stamp}">{shown}</time>' in page_of(article, SITE).decode("utf-8")


@pytest.mark.parametrize(
    ("language", "all_articles", "about", "edition"),
    [
        ("ar", "كل المقالات", "عن هذا الإصدار", "الإصدار"),
        ("fa", "همهٔ مقاله\u200cها", "دربارهٔ این شماره", "شماره"),
        ("he", "כל הכתבות", "על הגיליון הזה", "גיליון"),
    ],
)
def test_right_to_left_sites_have_their_own_labels_and_direction(
    language: str, all_articles: str, about: str, edition: str
) -> None:
    site = dataclasses.replace(SITE, language=language, edition_created=datetime(2026, 12, 1))
    files = {file.name: file.data or b"" for file in render_site([make_article("a", 1)], site)}
    index = PageParts(files["index.html"])
    assert parse(files["index.html"]).html_attrs == {"lang": language, "dir": "rtl"}
    assert edition in index.text
    assert index.chrome["footer"] == {"lang": language, "dir": "rtl"}
    about_page = PageParts(files["about.html"])
    assert about_page.heading == about
    assert f'<a href="../index.html">{all_articles}</a>' in files["articles/a.html"].decode()
    # A Russian article on this site: its own language inside, the site's chrome around it.
    article = PageParts(files["articles/a.html"])
    assert parse(files["articles/a.html"]).html_attrs == {"lang": "ru", "dir": "ltr"}
    assert article.chrome == {
        "header": {"lang": language, "dir": "rtl"},
        "footer": {"lang": language, "dir": "rtl"},
    }


def test_an_english_site_keeps_its_chrome_left_to_right_around_an_arabic_article() -> None:
    site = dataclasses.replace(SITE, title="Free News", language="en")
    arabic = make_article("ar", 1, title="عنوان", language="ar", direction="rtl")
    page = page_of(arabic, site)
    assert parse(page).html_attrs == {"lang": "ar", "dir": "rtl"}
    assert PageParts(page).chrome == {
        "header": {"lang": "en", "dir": "ltr"},
        "footer": {"lang": "en", "dir": "ltr"},
    }


def test_the_about_page_is_russian_in_full_and_english_marked_as_such_elsewhere() -> None:
    russian = render_about(SITE).decode("utf-8")
    assert 'lang="en"' not in russian
    assert "Как проверить эту копию" in russian
    assert "Поддельная копия может показать поддельные отпечатки" in russian
    assert "8 марта 2024" in russian
    for language, direction in (("uk", "ltr"), ("ur", "rtl"), ("ar", "rtl")):
        page = render_about(dataclasses.replace(SITE, language=language)).decode("utf-8")
        assert f'<html lang="{language}" dir="{direction}">' in page
        paragraphs = re.findall(r"<p[ >][^>]*", page)
        assert len(paragraphs) >= 9
        # Every explanation falls back to English, marked so that it keeps its direction.
        assert all(p.startswith('<p lang="en" dir="ltr"') for p in paragraphs), paragraphs
        assert "A forged copy can show forged fingerprints" in page
    # Languages with labels but no explanations keep their own labels.
    arabic = render_about(dataclasses.replace(SITE, language="ar")).decode("utf-8")
    assert "<h2>كيف تتحقق من هذه النسخة</h2>" in arabic
    ukrainian = render_about(dataclasses.replace(SITE, language="uk")).decode("utf-8")
    assert '<h2><span lang="en" dir="ltr">How to check this copy</span></h2>' in ukrainian


def test_an_empty_mirror_list_says_to_ask_the_publisher() -> None:
    site = dataclasses.replace(SITE, language="en", proof=dataclasses.replace(PROOF, mirrors=()))
    page = PageParts(render_about(site))
    assert "The publisher announces no mirror. Ask the publisher" in page.text
    assert page.mirror_links == []
    assert not [c for c in page.commands if c.startswith("mirror fetch")]


HOSTILE_MIRRORS = (
    AnnouncedMirror("<b>bold</b>", "javascript:alert(1)"),
    AnnouncedMirror("tab", "java\tscript:alert(1)"),
    AnnouncedMirror("space", " https://lead.example/"),
    AnnouncedMirror("newline", "https://n.example/\njavascript:alert(1)"),
    AnnouncedMirror("data", "data:text/html,<script>alert(1)</script>"),
    AnnouncedMirror("vbs", "vbscript:msgbox(1)"),
    AnnouncedMirror("quote", 'https://q.example/"onmouseover="alert(1)'),
    AnnouncedMirror("shell", "https://s.example/$(id);`id`"),
    AnnouncedMirror("usb", "FILE:///media/usb/"),
)


def test_the_about_page_escapes_the_newsrooms_values_and_links_only_web_and_file_urls() -> None:
    site = dataclasses.replace(
        SITE,
        title="<script>alert('t')</script>",
        publisher='"><img src=x onerror=alert(1)>',
        edition_id="2024'; rm -rf ~; '",
        proof=dataclasses.replace(PROOF, mirrors=HOSTILE_MIRRORS),
    )
    data = render_about(site)
    text = data.decode("utf-8")
    assert "<script" not in text
    assert "<img" not in text
    assert "<b>" not in text
    links = parse(data)
    assert not [name for name in links.attribute_names if name.startswith("on")]
    hrefs = [url for tag, _, url in links.urls if tag == "a"]
    reader = f"targets/{PROOF.reader_page_sha256}.reader.html"
    assert hrefs == [
        "index.html",  # the masthead
        'https://q.example/"onmouseover="alert(1)',
        f'https://q.example/"onmouseover="alert(1)/{reader}',
        "https://s.example/$(id);`id`",
        f"https://s.example/$(id);`id`/{reader}",
        "FILE:///media/usb/",
        f"FILE:///media/usb/{reader}",
        "index.html",
        "about.html",
    ]
    page = PageParts(data)
    linked = {"quote", "shell", "usb"}
    assert page.mirror_links == [(m.url, m.name) for m in HOSTILE_MIRRORS if m.name in linked]
    assert "<b>bold</b>" in page.text  # shown as the text it is
    # Each command, pasted into a shell, is exactly the command it says: no value adds one.
    fetches = [shlex.split(c) for c in page.commands if c.startswith("mirror fetch")]
    assert fetches == [["mirror", "fetch", "--mirror", m.url] for m in HOSTILE_MIRRORS]
    assert shlex.split(next(c for c in page.commands if c.startswith("mirror verify"))) == [
        "mirror",
        "verify",
        "2024'; rm -rf ~; '.zip",
    ]


def test_the_index_is_the_same_whether_its_lines_wait_in_memory_or_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mirror import render
    from mirror.render import INDEX_FULL_ENTRIES, IndexListing

    articles = [make_article(f"a{i:03d}", 1 + i % 28) for i in range(INDEX_FULL_ENTRIES + 40)]
    in_memory = render_index(articles, SITE)
    monkeypatch.setattr(render, "INDEX_LINES_IN_MEMORY", 500)  # a few lines, then a file
    listing = IndexListing(tmp_path)
    for article in articles:
        listing.add(article)
    assert listing._lines._rolled  # type: ignore[attr-defined]  # the lines went to a file
    assert listing.render(SITE) == in_memory
    assert list(tmp_path.iterdir()) == []  # the spilled lines had no name, and are gone
