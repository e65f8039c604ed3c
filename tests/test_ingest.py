"""Ingest: folders of Markdown/HTML and RSS/Atom feeds, from files and from a real HTTP server."""

from __future__ import annotations

import gzip
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mirror.build import iter_articles
from mirror.config import load_config
from mirror.errors import ArticleError, SourceError, TransportError
from mirror.ingest import (
    Article,
    IngestLimits,
    IngestProblem,
    IngestResult,
    load_directory,
    load_feed,
    sanitize_html,
    slugify,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "articles"

PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDAT\x08\xd7c\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def article_text(body: str = "Some text.", **front: str) -> str:
    fields = {"title": "A title", "date": "2024-03-01T10:00:00+03:00", **front}
    lines = [f"{key}: {value}" for key, value in fields.items() if value != "<omit>"]
    return "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"


def load(root: Path, **kwargs: object) -> IngestResult:
    options: dict[str, object] = {"default_language": "ru", "on_error": "skip", **kwargs}
    return load_directory(root, **options)  # type: ignore[arg-type]


def only_problem(result: IngestResult) -> tuple[str, str]:
    assert len(result.problems) == 1, result.problems
    return result.problems[0].source, result.problems[0].reason


# --- the examples folder ---------------------------------------------------------------


def test_examples_load_with_zero_problems() -> None:
    result = load(EXAMPLES, on_error="fail")
    assert result.problems == ()
    assert len(result.articles) >= 5
    languages = {article.language for article in result.articles}
    assert {"ru", "en", "ar"} <= languages
    assert any(article.assets for article in result.articles)
    arabic = next(article for article in result.articles if article.language == "ar")
    assert arabic.direction == "rtl"


# --- a good folder ---------------------------------------------------------------------


def test_markdown_and_html_with_image_asset(tmp_path: Path) -> None:
    write(tmp_path / "photos" / "Фото 1.PNG", PNG_BYTES)
    write(
        tmp_path / "news" / "Первая новость.md",
        article_text(
            "# Заголовок\n\nПривет, **мир**.\n\n"  # noqa: RUF001 (Cyrillic on purpose)
            "![Фото](../photos/%D0%A4%D0%BE%D1%82%D0%BE%201.PNG)\n",
            author="[Анна, Борис]",
            tags="[новости, город]",
        ),
    )
    write(
        tmp_path / "news" / "second.html",
        article_text(
            '<p>Second <img src="../photos/Фото 1.PNG" alt="x"></p>',
            title="Second",
            date="2024-03-02",
            language="en",
            slug="second-story",
        ),
    )
    result = load(tmp_path)
    assert result.problems == ()
    assert [a.slug for a in result.articles] == ["second-story", "pervaia-novost"]
    russian = result.articles[1]
    assert russian.title == "A title"
    assert russian.author == "Анна, Борис"
    assert russian.tags == ("новости", "город")
    assert russian.language == "ru"
    assert russian.direction == "ltr"
    assert russian.date == datetime(2024, 3, 1, 7, 0, tzinfo=UTC)
    assert russian.summary.startswith("Заголовок Привет, мир.")
    assert "<h2>Заголовок</h2>" in russian.body_html  # the page's h1 is the title
    assert russian.source == str(tmp_path / "news" / "Первая новость.md")
    (asset,) = russian.assets
    assert asset.name == "assets/pervaia-novost/foto-1.png"
    assert asset.source == (tmp_path / "photos" / "Фото 1.PNG").resolve()
    assert asset.size == len(PNG_BYTES)
    assert 'src="../assets/pervaia-novost/foto-1.png"' in russian.body_html
    english = result.articles[0]
    assert english.date == datetime(2024, 3, 2, tzinfo=UTC)
    assert english.assets[0].name == "assets/second-story/foto-1.png"


def test_same_image_twice_is_one_asset_and_clashing_names_are_numbered(tmp_path: Path) -> None:
    write(tmp_path / "a" / "photo.jpg", b"first")
    write(tmp_path / "b" / "photo.jpg", b"second")
    write(
        tmp_path / "story.md",
        article_text(
            "![one](a/photo.jpg) ![again](a/photo.jpg) ![two](b/photo.jpg)"
            " [report](b/report.pdf) [other article](other.md) [anchor](#top)"
        ),
    )
    write(tmp_path / "b" / "report.pdf", b"%PDF-1.4")
    result = load(tmp_path)
    assert result.problems == ()
    (article,) = result.articles
    names = [asset.name for asset in article.assets]
    assert names == [
        "assets/story/photo.jpg",
        "assets/story/2-photo.jpg",
        "assets/story/report.pdf",
    ]
    assert article.body_html.count('src="../assets/story/photo.jpg"') == 2
    assert 'src="../assets/story/2-photo.jpg"' in article.body_html
    assert 'href="../assets/story/report.pdf"' in article.body_html
    assert "other.md" not in article.body_html
    assert 'href="#top"' in article.body_html


def test_bom_crlf_and_defaults(tmp_path: Path) -> None:
    text = article_text("Body line one.\r\nBody line two.", title="Windows file").replace(
        "\n", "\r\n"
    )
    write(tmp_path / "win.md", b"\xef\xbb\xbf" + text.encode("utf-8"))
    (article,) = load(tmp_path, on_error="fail").articles
    assert article.title == "Windows file"
    assert article.author == ""
    assert article.tags == ()
    assert article.summary == "Body line one. Body line two."


def test_naive_time_is_utc_and_long_summary_is_cut(tmp_path: Path) -> None:
    write(tmp_path / "x.md", article_text("word " * 200, date="2024-03-01 12:30:00"))
    (article,) = load(tmp_path).articles
    assert article.date == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert len(article.summary) <= 201
    assert article.summary.endswith("…")


def test_hidden_files_and_other_suffixes_are_skipped(tmp_path: Path) -> None:
    write(tmp_path / ".draft.md", article_text())
    write(tmp_path / ".git" / "notes.md", article_text())
    write(tmp_path / "notes.txt", "not an article")
    write(tmp_path / "real.MD", article_text())
    result = load(tmp_path)
    assert [a.slug for a in result.articles] == ["real"]
    assert result.problems == ()


def test_symlinked_article_outside_root_is_not_read(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.md", article_text("private"))
    root = tmp_path / "root"
    write(root / "ok.md", article_text())
    (root / "leak.md").symlink_to(secret)
    (root / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    result = load(root)
    assert [a.slug for a in result.articles] == ["ok"]
    source, reason = only_problem(result)
    assert source == str(root / "leak.md")
    assert "outside" in reason


def test_fifo_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")
    write(tmp_path / "ok.md", article_text())
    result = load(tmp_path)
    assert only_problem(result) == (str(tmp_path / "pipe.md"), "not a regular file")


def test_missing_root_and_bad_default_language_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        load(tmp_path / "nope")
    write(tmp_path / "file.md", article_text())
    with pytest.raises(SourceError, match="not a folder"):
        load(tmp_path / "file.md")
    with pytest.raises(SourceError, match="language"):
        load(tmp_path, default_language="Russian!")


def test_unknown_on_error_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        load(tmp_path, on_error="ignore")


# --- broken articles -------------------------------------------------------------------

BROKEN: list[tuple[str, str | bytes, str]] = [
    ("no-title.md", article_text(title="<omit>"), "missing title"),
    ("blank-title.md", article_text(title="'  '"), "missing title"),
    ("no-date.md", article_text(date="<omit>"), "missing date"),
    ("bad-date.md", article_text(date="yesterday"), "invalid date 'yesterday'"),
    ("list.md", "---\n- a\n- b\n---\nbody\n", "front matter must be a mapping"),
    ("yaml.md", "---\ntitle: ok\ndate: 2024-01-01\ntags: [a, b\n---\nbody\n", "(line 4:"),
    ("no-front-matter.md", "# Just markdown\n", "no front matter"),
    ("unclosed.md", "---\ntitle: x\n", "not closed"),
    ("latin1.md", article_text("caf\xe9").encode("latin-1"), "not valid UTF-8 at byte"),
    ("bad-slug.md", article_text(slug="Bad Slug!"), "invalid slug"),
    ("bad-language.md", article_text(language="'русский'"), "invalid language"),
    ("norway.md", article_text(language="no"), "quote the tag"),
    ("bad-tags.md", article_text(tags="[[nested]]"), "tags must be a list of words"),
    ("empty.html", article_text("<script>alert(1)</script><style>p{}</style>"), "empty body"),
    ("missing-image.md", article_text("![x](nowhere.png)"), "missing image: 'nowhere.png'"),
    ("passwd.md", article_text("![x](../../etc/passwd)"), "image outside the article folder"),
    ("svg.md", article_text("![x](pic.svg)"), "image type not allowed"),
    ("hidden.md", article_text("![x](.hidden/pic.png)"), "hidden file"),
    ("big-image.md", article_text("![x](big.png)"), "image too large"),
    ("missing-pdf.md", article_text("[report](report.pdf)"), "missing linked file"),
    ("too-big.md", article_text("x" * 5000), "file too large"),
]


@pytest.fixture
def broken_folder(tmp_path: Path) -> Path:
    write(tmp_path / "pic.svg", "<svg/>")
    write(tmp_path / ".hidden" / "pic.png", PNG_BYTES)
    write(tmp_path / "big.png", b"x" * 3000)
    return tmp_path


@pytest.mark.parametrize(("name", "content", "reason"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_article_is_a_problem_naming_the_file(
    broken_folder: Path, name: str, content: str | bytes, reason: str
) -> None:
    write(broken_folder / name, content)
    write(broken_folder / "zz-good.md", article_text("Still here."))
    limits = IngestLimits(max_article_bytes=4000, max_asset_bytes=2000)
    result = load(broken_folder, limits=limits)
    assert [a.slug for a in result.articles] == ["zz-good"]
    source, got = only_problem(result)
    assert source == str(broken_folder / name)
    assert reason in got

    with pytest.raises(ArticleError) as raised:
        load(broken_folder, limits=limits, on_error="fail")
    assert raised.value.source == str(broken_folder / name)
    assert reason in raised.value.reason


def test_invalid_utf8_names_the_byte(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + article_text("ok").encode() + b"caf\xe9\n"
    write(tmp_path / "x.md", data)
    bad_byte = data.index(b"\xe9")
    _, reason = only_problem(load(tmp_path))
    assert reason == f"not valid UTF-8 at byte {bad_byte}"


def test_yaml_error_reports_file_line(tmp_path: Path) -> None:
    write(tmp_path / "x.md", "---\ntitle: ok\ndate: 2024-01-01\nauthor: [a\n---\nbody\n")
    _, reason = only_problem(load(tmp_path))
    assert reason.startswith("front matter is not valid YAML (line ")


def test_symlinked_image_leaving_root_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "outside.png", PNG_BYTES)
    root = tmp_path / "root"
    write(root / "x.md", article_text("![x](link.png)"))
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    _, reason = only_problem(load(root))
    assert "outside the article folder" in reason


def test_duplicate_slug_in_folder_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path / "a.md", article_text(slug="same", title="First"))
    write(tmp_path / "b.md", article_text(slug="same", title="Second"))
    result = load(tmp_path)
    assert [a.title for a in result.articles] == ["First"]
    source, reason = only_problem(result)
    assert source == str(tmp_path / "b.md")
    assert "duplicate slug 'same'" in reason
    assert str(tmp_path / "a.md") in reason


def test_pathological_nesting_does_not_crash(tmp_path: Path) -> None:
    write(tmp_path / "quotes.md", article_text(">" * 5000 + " deep\n\n" + "<div>" * 5000 + "x"))
    write(tmp_path / "yaml.md", "---\ntitle: " + "[" * 5000 + "\n---\nbody\n")
    result = load(tmp_path)
    assert [a.slug for a in result.articles] == ["quotes"]
    source, reason = only_problem(result)
    assert source == str(tmp_path / "yaml.md")
    assert "YAML" in reason


def build_sources(folder: Path, sources: str) -> tuple[list[Article], list[IngestProblem]]:
    """What `mirror build` ingests from the YAML ``sources`` list given (one pass, in order)."""
    (folder / "mirror.yaml").write_text(
        "publisher:\n  name: N\n  title: T\n  language: ru\n"
        f"sources:\n{sources}"
        "keys:\n  dir: keys\n  passphrase: env:UNUSED\noutput: out\n",
        encoding="utf-8",
    )
    items = list(iter_articles(load_config(folder / "mirror.yaml"), workers=1))
    return (
        [i for i in items if isinstance(i, Article)],
        [i for i in items if isinstance(i, IngestProblem)],
    )


def test_a_slug_taken_by_an_earlier_source_is_a_problem_for_the_later(tmp_path: Path) -> None:
    write(tmp_path / "one" / "story.md", article_text(title="One", date="2024-01-01"))
    write(tmp_path / "two" / "story.md", article_text(title="Two", date="2024-02-01"))
    write(tmp_path / "two" / "other.md", article_text(title="Other", date="2024-03-01"))
    articles, problems = build_sources(
        tmp_path, "  - {type: directory, path: one}\n  - {type: directory, path: two}\n"
    )
    assert sorted(a.title for a in articles) == ["One", "Other"]
    assert [p.source for p in problems] == [str(tmp_path / "two" / "story.md")]
    assert "duplicate slug 'story'" in problems[0].reason


# --- hostile HTML ----------------------------------------------------------------------

HOSTILE = """
<script>alert(1)</script>
<img src=x.png onerror="alert(2)">
<a href="javascript:alert(3)">js</a> <a href=" JaVaScRiPt:alert(4)">js2</a>
<a href="&#106;avascript:alert(5)">js3</a> <a href="data:text/html,<script>alert(6)</script>">d</a>
<iframe src="https://evil.example/frame"></iframe>
<p style="background:url(https://evil.example/track)">styled</p>
<img src="https://evil.example/pixel.gif" alt="pixel"> <img src="//evil.example/p.gif">
<img src="/etc/passwd"> <img src="data:image/svg+xml,<svg onload=alert(7)>">
<base href="https://evil.example/">
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<svg><script>alert(8)</script><a xlink:href="javascript:alert(9)">svg</a></svg>
<math><mtext><style><img src=x.png onerror=alert(10)></style></mtext></math>
<form action="https://evil.example/"><input name="password"></form>
<object data="x.swf"></object><embed src="x.swf">
<link rel="stylesheet" href="https://evil.example/x.css">
<noscript><p title="</noscript><img src=x.png onerror=alert(11)>"></noscript>
<p onclick="alert(12)" class="x" id="y">text
<a href="https://ok.example/" target="_blank">ok</a></p>
"""


def test_hostile_html_comes_out_clean(tmp_path: Path) -> None:
    write(tmp_path / "x.png", PNG_BYTES)
    write(tmp_path / "hostile.html", article_text(HOSTILE))
    (article,) = load(tmp_path, on_error="fail").articles
    body = article.body_html.lower()
    for forbidden in [
        "<script", "onerror", "onclick", "onload", "javascript:", "data:", "<iframe", "style=",
        "evil.example", "<base", "<meta", "refresh", "<svg", "<math", "<form", "<input",
        "<object", "<embed", "<link", "alert(", "class=", "id=", "target=", "/etc/passwd",
    ]:  # fmt: skip
        assert forbidden not in body, forbidden
    assert '<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>' in body
    # Remote, protocol-relative, absolute and data: images are gone; the local one stays bare.
    assert set(re.findall(r"<img[^>]*>", body)) == {'<img src="../assets/hostile/x.png">'}
    assert sanitize_html(article.body_html) == article.body_html


def test_local_img_named_x_with_onerror_keeps_only_safe_attributes(tmp_path: Path) -> None:
    write(tmp_path / "x.png", PNG_BYTES)
    write(tmp_path / "a.html", article_text('<img src="x.png" onerror="alert(1)" width="10">'))
    (article,) = load(tmp_path).articles
    assert article.body_html == '<img src="../assets/a/x.png" width="10">'


def test_lang_and_dir_survive_with_valid_values_only() -> None:
    html = '<p lang="ar" dir="RTL">نص</p><p dir="sideways" lang="x y">t</p>'
    assert sanitize_html(html) == '<p lang="ar" dir="rtl">نص</p><p>t</p>'


def test_slugify_transliterates_and_truncates() -> None:
    assert (
        slugify("Как читать нас, если сайт заблокирован") == "kak-chitat-nas-esli-sait-zablokirovan"
    )
    assert slugify("Café — déjà vu!") == "cafe-deja-vu"
    assert slugify("مرحبا") == ""
    long = slugify("word " * 40)
    assert len(long) <= 80
    assert not long.endswith("-")


# --- feeds from files ------------------------------------------------------------------

RSS_FULL = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Новости</title><link>https://news.example/</link><language>ru-RU</language>
<item>
  <title>Первая &amp; главная</title>
  <link>https://news.example/2024/first</link>
  <guid>https://news.example/?p=1</guid>
  <pubDate>Mon, 04 Mar 2024 10:00:00 +0300</pubDate>
  <author>ivan@news.example (Иван Петров)</author>
  <category>политика</category><category>город</category>
  <description>Короткое описание.</description>
  <content:encoded><![CDATA[<p>Полный текст. <img src="https://news.example/pic.jpg">
  <a href="/about">Контакты</a> <a href="https://other.example/x">ссылка</a></p>
  <script>alert(1)</script>]]></content:encoded>
</item>
<item>
  <title>No date here</title><guid>https://news.example/?p=2</guid>
  <description>text</description>
</item>
<item>
  <guid>https://news.example/?p=3</guid><pubDate>Mon, 04 Mar 2024 11:00:00 +0300</pubDate>
  <description>untitled</description>
</item>
</channel></rss>
"""

RSS_SUMMARY_ONLY = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>T</title><link>https://x.example/</link>
<item><title>Summary only</title><link>https://x.example/a</link>
<pubDate>Tue, 05 Mar 2024 09:00:00 GMT</pubDate>
<description>&lt;p&gt;Just the &lt;em&gt;description&lt;/em&gt;.&lt;/p&gt;</description></item>
</channel></rss>
"""

ATOM_FULL = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar">
<title>أخبار</title><id>urn:example:feed</id><updated>2024-03-05T10:00:00Z</updated>
<entry>
  <title>عنوان الخبر</title><id>urn:example:1</id>
  <link href="https://ar.example/1"/>
  <updated>2024-03-05T10:00:00Z</updated>
  <author><name>كاتب</name></author>
  <summary>ملخص قصير</summary>
  <content type="html">&lt;p&gt;النص الكامل&lt;/p&gt;&lt;iframe src="https://evil.example"&gt;&lt;/iframe&gt;</content>
</entry>
<entry>
  <title type="html">Plain &lt;b&gt;text&lt;/b&gt;</title><id>urn:example:2</id>
  <published>2024-03-04T10:00:00Z</published><updated>2024-03-05T10:00:00Z</updated>
  <content type="text" xml:lang="en">First paragraph &lt;not a tag&gt;.

Second paragraph.</content>
</entry>
</feed>
"""

ATOM_SUMMARY_ONLY = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:t</id>
<updated>2024-03-05T10:00:00Z</updated>
<entry><title>Only summary</title><id>urn:t:1</id><updated>2024-03-05T10:00:00Z</updated>
<summary type="html">&lt;p&gt;Summary &lt;img src="pic.png"&gt; body&lt;/p&gt;</summary></entry>
</feed>
"""


def feed_from_file(tmp_path: Path, text: str, **kwargs: object) -> IngestResult:
    write(tmp_path / "feed.xml", text)
    options: dict[str, object] = {
        "base_dir": tmp_path,
        "default_language": "en",
        "on_error": "skip",
        **kwargs,
    }
    return load_feed("feed.xml", **options)  # type: ignore[arg-type]


def test_rss_with_full_content(tmp_path: Path) -> None:
    result = feed_from_file(tmp_path, RSS_FULL)
    (article,) = result.articles
    assert article.title == "Первая & главная"
    assert article.date == datetime(2024, 3, 4, 7, 0, tzinfo=UTC)
    assert article.author == "Иван Петров"
    assert article.language == "ru-RU"
    assert article.tags == ("политика", "город")
    assert article.summary == "Короткое описание."
    assert article.slug.startswith("pervaia-glavnaia-")
    assert len(article.slug.rsplit("-", 1)[1]) == 8
    assert article.assets == ()
    assert article.source == "https://news.example/2024/first"
    body = article.body_html
    assert "Полный текст." in body
    assert "<img" not in body
    assert "<script" not in body
    assert 'href="https://other.example/x"' in body
    assert "/about" not in body  # a relative link with no base cannot work offline
    assert {p.reason for p in result.problems} == {
        "missing date (no published or updated)",
        "missing title",
    }
    # An entry is named by its link (here the permalink guid), else by its position.
    assert {p.source for p in result.problems} == {
        "https://news.example/?p=2",
        "https://news.example/?p=3",
    }
    again = feed_from_file(tmp_path, RSS_FULL)
    assert again.articles[0].slug == article.slug


def test_rss_without_full_content_uses_description(tmp_path: Path) -> None:
    (article,) = feed_from_file(tmp_path, RSS_SUMMARY_ONLY).articles
    assert article.body_html == "<p>Just the <em>description</em>.</p>"
    assert article.summary == "Just the description."
    assert article.language == "en"


def test_atom_with_full_content_and_text_content(tmp_path: Path) -> None:
    result = feed_from_file(tmp_path, ATOM_FULL)
    assert result.problems == ()
    arabic, plain = result.articles
    assert arabic.title == "عنوان الخبر"
    assert arabic.language == "ar"
    assert arabic.direction == "rtl"
    assert arabic.author == "كاتب"
    assert arabic.body_html == "<p>النص الكامل</p>"
    assert arabic.summary == "ملخص قصير"
    assert arabic.slug.startswith("entry-")
    assert plain.title == "Plain text"
    assert plain.date == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    assert plain.language == "en"
    assert plain.body_html == "<p>First paragraph &lt;not a tag&gt;.</p><p>Second paragraph.</p>"


def test_atom_summary_only_drops_images(tmp_path: Path) -> None:
    (article,) = feed_from_file(tmp_path, ATOM_SUMMARY_ONLY).articles
    assert article.body_html == "<p>Summary  body</p>"


def test_feed_fail_mode_raises_for_first_bad_entry(tmp_path: Path) -> None:
    with pytest.raises(ArticleError, match="missing date") as raised:
        feed_from_file(tmp_path, RSS_FULL, on_error="fail")
    assert raised.value.source == "https://news.example/?p=2"


def test_feed_file_errors_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read feed file"):
        load_feed("missing.xml", base_dir=tmp_path, default_language="en", on_error="skip")
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        feed_from_file(tmp_path, "<html><body>a web page</body></html>")
    with pytest.raises(SourceError, match="larger than the limit"):
        feed_from_file(tmp_path, RSS_FULL, limits=IngestLimits(max_feed_bytes=100))
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        feed_from_file(tmp_path, "")


def test_feed_entry_over_article_cap_is_a_problem(tmp_path: Path) -> None:
    result = feed_from_file(tmp_path, RSS_FULL, limits=IngestLimits(max_article_bytes=20))
    assert any("entry too large" in p.reason for p in result.problems)


# --- feeds over HTTP -------------------------------------------------------------------

SERVED_RSS = RSS_FULL.replace("https://news.example/2024/first", "/2024/first")
_GZIP_BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024), compresslevel=9)


class FeedServer(ThreadingHTTPServer):
    """A loopback HTTP server whose handlers stop sleeping or streaming once told to."""

    daemon_threads = True
    stopping: threading.Event


class FeedHandler(BaseHTTPRequestHandler):
    """Serves a good feed and the misbehaviours a hostile or broken server can show."""

    server: FeedServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        stopping = self.server.stopping
        path = self.path
        try:
            if path == "/feed.xml":
                self._send(200, SERVED_RSS.encode(), {"Content-Type": "application/rss+xml"})
            elif path.startswith("/hop/"):
                remaining = int(path.rsplit("/", 1)[1])
                target = "/feed.xml" if remaining == 0 else f"/hop/{remaining - 1}"
                self._send(302, b"", {"Location": target})
            elif path == "/loop":
                self._send(301, b"", {"Location": "/loop"})
            elif path == "/to-ftp":
                self._send(302, b"", {"Location": "ftp://127.0.0.1/feed"})
            elif path == "/missing":
                self._send(404, b"no")
            elif path == "/broken":
                self._send(503, b"down")
            elif path == "/page":
                self._send(200, b"<html><body>not a feed</body></html>")
            elif path == "/huge-declared":
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 1024**3))
                self.end_headers()
            elif path == "/gzip-bomb":
                self._send(200, _GZIP_BOMB, {"Content-Encoding": "gzip"})
            elif path == "/endless":
                self.send_response(200)
                self.end_headers()  # no length: the body ends when the connection does
                chunk = b"<rss>" + b"x" * 65536
                for _ in range(20_000):
                    if stopping.is_set():
                        break
                    self.wfile.write(chunk)
            elif path == "/trickle":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(300):
                    if stopping.wait(0.05):
                        break
                    self.wfile.write(b" ")
                    self.wfile.flush()
            elif path == "/silent":
                stopping.wait(10)
            else:
                self._send(404, b"unknown")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


@pytest.fixture(scope="session")
def feed_server() -> Iterator[str]:
    server = FeedServer(("127.0.0.1", 0), FeedHandler)
    server.stopping = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def base_url(feed_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    return feed_server


def fetch(url: str, **limits: float) -> IngestResult:
    return load_feed(
        url,
        base_dir=Path("/nonexistent"),
        default_language="en",
        on_error="skip",
        limits=IngestLimits(**limits),  # type: ignore[arg-type]
    )


def test_feed_over_http(base_url: str) -> None:
    result = fetch(f"{base_url}/feed.xml")
    (article,) = result.articles
    assert article.title == "Первая & главная"
    assert article.source == f"{base_url}/2024/first"  # resolved against the feed URL
    assert 'href="https://other.example/x"' in article.body_html
    assert f'href="{base_url}/about"' in article.body_html
    assert "<img" not in article.body_html
    assert len(result.problems) == 2


def test_feed_redirects_are_followed_up_to_five(base_url: str) -> None:
    assert len(fetch(f"{base_url}/hop/4").articles) == 1
    with pytest.raises(SourceError, match="redirects more than 5 times"):
        fetch(f"{base_url}/hop/5")
    with pytest.raises(SourceError, match="redirects more than 5 times"):
        fetch(f"{base_url}/loop")
    with pytest.raises(SourceError, match="unsupported URL"):
        fetch(f"{base_url}/to-ftp")


def test_feed_http_errors(base_url: str) -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch(f"{base_url}/missing")
    with pytest.raises(TransportError, match="HTTP 503"):
        fetch(f"{base_url}/broken")
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        fetch(f"{base_url}/page")


def test_credentials_in_feed_url_stay_out_of_messages(base_url: str) -> None:
    with_password = base_url.replace("http://", "http://reader:s3cret@")
    with pytest.raises(SourceError) as raised:
        fetch(f"{with_password}/missing")
    assert "s3cret" not in str(raised.value)
    assert f"{base_url}/missing" in str(raised.value)


def test_endless_feed_is_capped(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="larger than the limit of 1048576 bytes"):
        fetch(f"{base_url}/endless", max_feed_bytes=1024 * 1024)
    assert time.monotonic() - started < 10


def test_declared_huge_feed_is_refused_before_reading(base_url: str) -> None:
    with pytest.raises(SourceError, match="over the limit"):
        fetch(f"{base_url}/huge-declared", max_feed_bytes=1024 * 1024)


def test_gzip_bomb_is_capped_after_decoding(base_url: str) -> None:
    with pytest.raises(SourceError, match="larger than the limit"):
        fetch(f"{base_url}/gzip-bomb", max_feed_bytes=1024 * 1024)


def test_trickling_server_hits_the_total_deadline(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError, match="took longer than 1 s"):
        fetch(f"{base_url}/trickle", feed_timeout_s=1.0)
    assert time.monotonic() - started < 5


def test_silent_server_times_out(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        fetch(f"{base_url}/silent", feed_timeout_s=0.5)
    assert time.monotonic() - started < 5


def test_refused_connection_is_a_transport_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match="cannot fetch feed"):
        fetch(f"http://127.0.0.1:{port}/feed.xml", feed_timeout_s=2.0)


def test_articles_from_both_sources_merge(tmp_path: Path, base_url: str) -> None:
    write(tmp_path / "articles" / "local.md", article_text(date="2024-03-10"))
    feed = f"  - {{type: feed, url: '{base_url}/feed.xml'}}\n"
    articles, problems = build_sources(tmp_path, "  - {type: directory, path: articles}\n" + feed)
    assert articles[0].slug == "local"
    assert len(articles) > 1  # and the feed's, after the folder's
    assert all("duplicate" not in p.reason for p in problems)
