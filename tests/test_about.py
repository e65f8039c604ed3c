# ruff: noqa: RUF001 - Arabic texts are meant to be in Arabic script
"""``about.html`` in a built edition: which edition, how to check the copy, where the next is.

Judged by the tools a reader would use: stock ``minisign`` runs the page's
own command line on the built ZIP, ``mirror keys export-reader`` prints the
fingerprint the page shows, the links are those of the edition's own
``mirrors.json``, and headless Chromium opens the pages from ``file://``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path, PurePosixPath

import pytest
from tuf.api.metadata import Metadata, Root

from mirror.build import BuildResult
from mirror.cli import main
from mirror.keystore import rotate_role
from mirror.trust import layout
from tests.chromium import CHROMIUM, Chromium, Page
from tests.conftest import BUILD_TIME, Publisher, make_config, make_keys, write_articles
from tests.test_read import RecordingProxy
from tests.test_render import PageParts

MINISIGN = shutil.which("minisign")
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="chromium is installed by .ci/run"
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip
ARABIC_TITLE = "كيف تقرأ النشرة دون اتصال"


def mirrors_yaml(home: Path, entries: list[tuple[str, str, str]]) -> str:
    """A YAML mirror list of local mirrors: (name, public URL, extra YAML lines)."""
    return "".join(
        f"  - name: {name}\n    type: local\n    public_url: {url}\n"
        f"    local:\n      path: {home / 'mirrors' / name}\n{extra}"
        for name, url, extra in entries
    )


MIRRORS = [
    ("cloud", "https://cloud.example/news/", ""),
    ("query", "https://q.example/a?x=1&y=<2>", ""),
    ("usb", "file:///media/usb/news/", ""),
    ("hidden", "https://hidden.example/", "    announce: false\n"),
    ("disabled", "https://off.example/", "    enabled: false\n"),
]
"""Three announced, enabled mirrors (one URL with characters HTML must escape), and two
the about page must not show: one not announced, one disabled."""


@pytest.fixture(scope="module")
def announced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Publisher, BuildResult]:
    """A publisher with the `MIRRORS` above and one built edition."""
    home = tmp_path_factory.mktemp("announced")
    write_articles(home / "articles", 3)
    config = make_config(home, mirrors=mirrors_yaml(home, MIRRORS))
    make_keys(config)
    publisher = Publisher(home, config)
    return publisher, publisher.build()


def members(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def unpack(zip_path: Path, folder: Path) -> Path:
    """Every member of our own edition written under ``folder`` (names checked on the way)."""
    for name, data in members(zip_path).items():
        path = PurePosixPath(name)
        assert not path.is_absolute()
        assert ".." not in path.parts
        target = folder.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def about_of(result: BuildResult) -> PageParts:
    return PageParts(members(result.zip_path)["about.html"])


# --- what the page says ---------------------------------------------------------------------


def test_the_about_page_names_the_edition_and_the_root_readers_pin(
    built: tuple[Publisher, BuildResult],
) -> None:
    publisher, result = built
    page = about_of(result)
    created = result.created
    assert page.heading == "About this edition"
    assert page.facts["Publisher"] == "Test Newsroom"
    assert page.facts["Edition"] == result.eid
    assert page.facts["Date"] == f"{created.day} {MONTHS[created.month - 1]} {created.year}"
    root_bytes = publisher.root_json.read_bytes()
    root = Metadata[Root].from_bytes(root_bytes)
    assert page.facts["Root version"] == str(root.signed.version)
    assert page.facts["SHA-256 of root.json"] == hashlib.sha256(root_bytes).hexdigest()
    assert page.facts["Publisher id"] == publisher.publisher_id
    assert "mirror trust add root.json" in page.commands
    assert f"mirror verify {result.zip_path.name}" in page.commands
    assert "A forged copy can show forged fingerprints" in page.text
    assert "a printed card" in page.text


@pytest.mark.skipif(MINISIGN is None, reason="minisign is installed by .ci/run")
def test_stock_minisign_accepts_the_built_zip_with_the_pages_own_command_line(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    _, result = built
    [line] = [c for c in about_of(result).commands if c.startswith("minisign ")]
    argv = shlex.split(line)
    assert argv[:3] == ["minisign", "-Vm", result.zip_path.name]
    assert argv[3] == "-P"
    ran = subprocess.run(
        [str(MINISIGN), *argv[1:]],
        cwd=result.zip_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert f"edition:{result.eid}" in ran.stdout
    # Control: the same line refuses a copy with one byte changed.
    copy = tmp_path / result.zip_path.name
    data = bytearray(result.zip_path.read_bytes())
    data[len(data) // 2] ^= 1
    copy.write_bytes(bytes(data))
    shutil.copyfile(result.minisig_path, tmp_path / result.minisig_path.name)
    refused = subprocess.run(
        [str(MINISIGN), *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0


def test_the_reader_html_fingerprint_is_what_export_reader_prints(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, result = built
    out = tmp_path / "reader.html"
    capsys.readouterr()
    assert (
        main(["keys", "export-reader", "--root", str(publisher.root_json), "--out", str(out)]) == 0
    )
    printed = re.search(r"SHA-256: ([0-9a-f]{64})", capsys.readouterr().out)
    assert printed is not None
    shown = about_of(result).facts["SHA-256 of reader.html"]
    assert shown == printed.group(1) == hashlib.sha256(out.read_bytes()).hexdigest()


def test_the_mirror_links_are_the_editions_own_signed_list(
    announced: tuple[Publisher, BuildResult],
) -> None:
    publisher, result = announced
    signed = json.loads(members(result.zip_path)[layout.MIRROR_LIST_PATH])["mirrors"]
    page = about_of(result)
    assert page.mirror_links == [(m["url"], m["name"]) for m in signed]
    sha256 = about_of(result).facts["SHA-256 of reader.html"]
    # reader.html on each mirror that can link to it (not after a query string).
    assert page.reader_links == [
        f"https://cloud.example/news/targets/{sha256}.reader.html",
        f"file:///media/usb/news/targets/{sha256}.reader.html",
    ]
    assert [name for _, name in page.mirror_links] == ["cloud", "query", "usb"]
    assert [m.name for m in publisher.config.mirrors if m.announce and m.enabled] == [
        "cloud",
        "query",
        "usb",
    ]
    fetches = [shlex.split(c) for c in page.commands if c.startswith("mirror fetch")]
    assert fetches == [["mirror", "fetch", "--mirror", m["url"]] for m in signed]
    raw = members(result.zip_path)["about.html"].decode("utf-8")
    assert 'href="https://q.example/a?x=1&amp;y=&lt;2&gt;/"' in raw
    assert "hidden.example" not in raw
    assert "off.example" not in raw


def test_each_mirror_serves_the_reader_page_the_about_page_links_to(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher(2)
    home = publisher.home
    mirror = home / "mirrors" / "usb"
    config = make_config(
        home,
        keys_dir=publisher.config.keys.dir,
        mirrors=mirrors_yaml(home, [("usb", f"file://{mirror}/", "")]),
    )
    assert main(["--config", str(config.file), "sync"]) == 0
    exported = tmp_path / "reader.html"
    assert (
        main(["keys", "export-reader", "--root", str(publisher.root_json), "--out", str(exported)])
        == 0
    )
    capsys.readouterr()
    (edition,) = [p for p in config.editions_dir.glob("*.zip") if layout.archive_edition_id(p.name)]
    page = PageParts(members(edition)["about.html"])
    (link,) = page.reader_links
    sha256 = hashlib.sha256(exported.read_bytes()).hexdigest()
    assert link == f"file://{mirror}/targets/{sha256}.reader.html"
    # The mirror serves exactly the page export-reader writes, signed in the top-level targets.
    assert Path(link.removeprefix("file://")).read_bytes() == exported.read_bytes()
    top = Metadata.from_bytes((config.publish_dir / "metadata" / "1.targets.json").read_bytes())
    signed = top.signed.targets[layout.READER_PAGE_PATH]  # type: ignore[attr-defined]
    assert signed.hashes["sha256"] == sha256


def test_a_publisher_without_announced_mirrors_says_to_ask_the_publisher(
    new_publisher: Callable[..., Publisher],
) -> None:
    publisher = new_publisher(1)
    home = publisher.home
    quiet = Publisher(
        home, make_config(home, mirrors=mirrors_yaml(home, [MIRRORS[3]]))
    )  # one mirror, not announced
    result = quiet.build()
    assert json.loads(members(result.zip_path)[layout.MIRROR_LIST_PATH])["mirrors"] == []
    page = about_of(result)
    assert page.mirror_links == []
    assert "The publisher announces no mirror. Ask the publisher" in page.text


# --- links and bytes --------------------------------------------------------------------------


def test_every_page_links_to_the_about_page_and_the_link_resolves_inside_the_edition(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    _, result = built
    folder = unpack(result.zip_path, tmp_path / "edition")
    pages = sorted(p for p in folder.rglob("*.html"))
    assert len(pages) == 4 + 2  # four articles, the index and the about page
    for page in pages:
        links = PageParts(page.read_bytes()).footer_links
        about = [href for href in links if href.endswith("about.html")]
        index = [href for href in links if href.endswith("index.html")]
        assert len(about) == len(index) == 1, (page, links)
        assert (page.parent / about[0]).resolve() == (folder / "about.html").resolve()
        assert (page.parent / index[0]).resolve() == (folder / "index.html").resolve()
    assert (folder / "about.html").is_file()


def test_article_pages_keep_their_bytes_when_the_mirror_list_or_the_root_changes(
    new_publisher: Callable[..., Publisher],
) -> None:
    publisher = new_publisher(3)
    home = publisher.home
    first = publisher.build(when=BUILD_TIME)
    more_mirrors = Publisher(home, make_config(home, mirrors=mirrors_yaml(home, MIRRORS[:2])))
    second = more_mirrors.build(when=BUILD_TIME + timedelta(minutes=10))
    rotate_role(home / "keys", more_mirrors.config.passphrase(), "root", now=BUILD_TIME)
    third = more_mirrors.build(when=BUILD_TIME + timedelta(minutes=20))

    editions = [members(r.zip_path) for r in (first, second, third)]
    articles = [{n: d for n, d in e.items() if n.startswith("articles/")} for e in editions]
    assert len(articles[0]) == 3
    assert articles[0] == articles[1] == articles[2]
    assert editions[0][layout.MIRROR_LIST_PATH] != editions[1][layout.MIRROR_LIST_PATH]
    # ... while the about page follows the list and the root.
    abouts = [PageParts(e["about.html"]) for e in editions]
    assert [name for _, name in abouts[0].mirror_links] == ["a"]
    assert [name for _, name in abouts[1].mirror_links] == ["cloud", "query"]
    assert abouts[1].facts["Root version"] == "1"
    assert abouts[2].facts["Root version"] == "2"
    root_bytes = (home / "keys" / "root.json").read_bytes()
    assert abouts[2].facts["SHA-256 of root.json"] == hashlib.sha256(root_bytes).hexdigest()
    assert abouts[2].facts["SHA-256 of root.json"] != abouts[1].facts["SHA-256 of root.json"]


# --- in a real browser ------------------------------------------------------------------------


@contextlib.contextmanager
def recorded_browser() -> Iterator[tuple[Chromium, RecordingProxy]]:
    """A Chromium whose every request goes to a proxy that records it and forwards nothing."""
    proxy = RecordingProxy()
    with contextlib.closing(proxy), Chromium(proxy_port=proxy.port) as chromium:
        yield chromium, proxy


def csp_violations(page: Page) -> list[str]:
    return [
        entry["text"]
        for entry in page.log_entries()
        if "Content Security Policy" in entry.get("text", "")
    ]


def wait_for_page(page: Page, name: str) -> None:
    page.wait_for(
        f"location.href.endsWith({json.dumps('/' + name)}) && document.readyState === 'complete'"
    )


@pytest.mark.slow
@needs_chromium
def test_chromium_shows_the_about_page_under_the_csp_and_nothing_leaves_the_machine(
    announced: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    _, result = announced
    folder = unpack(result.zip_path, tmp_path / "edition")
    with recorded_browser() as (browser, proxy):
        tab = browser.open((folder / "about.html").as_uri(), log=True)
        # A phone: nothing may be wider than the screen, however long a key or URL.
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=3,
            mobile=True,
        )
        assert tab.evaluate("document.querySelector('h1').textContent") == "About this edition"
        assert tab.evaluate("getComputedStyle(document.body).maxWidth") != "none"  # style.css
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        assert tab.evaluate("document.querySelectorAll('ul.mirrors a:not(.reader)').length") == 3
        assert tab.evaluate("document.querySelectorAll('ul.mirrors a.reader').length") == 2
        assert csp_violations(tab) == []

        # From an article page, the footer link leads to the about page.
        tab.navigate((folder / "articles" / "article-001.html").as_uri())
        tab.evaluate("document.querySelector('footer a[href=\"../about.html\"]').click(), true")
        wait_for_page(tab, "about.html")
        assert tab.evaluate("document.querySelector('h1').textContent") == "About this edition"
        assert csp_violations(tab) == []
        assert proxy.page_hosts() == set(), proxy.seen

        # Control: the same check sees a violation when the policy forbids the stylesheet.
        broken = folder / "broken.html"
        page_text = (folder / "about.html").read_text(encoding="utf-8")
        broken.write_text(page_text.replace("style-src 'self'", "style-src 'none'"), "utf-8")
        tab.navigate(broken.as_uri())
        assert csp_violations(tab) != []


def write_arabic_article(folder: Path) -> None:
    (folder / "arabic.md").write_text(
        f"---\ntitle: {ARABIC_TITLE}\ndate: 2026-11-25T10:00:00Z\nlanguage: ar\n"
        "slug: arabic\n---\n\nهذا نص المقالة باللغة العربية.\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same articles (English, Russian and Arabic) built as an English and an Arabic
    site, each edition unpacked: site language to folder."""
    folders = {}
    for language in ("en", "ar"):
        home = tmp_path_factory.mktemp(f"site-{language}")
        write_articles(home / "articles", 2)
        write_arabic_article(home / "articles")
        config = make_config(home, language=language)
        make_keys(config)
        result = Publisher(home, config).build()
        folders[language] = unpack(result.zip_path, home / "edition")
    return folders


def directions(page: Page) -> dict[str, str]:
    return dict(
        page.evaluate(
            "Object.fromEntries(['html', '.masthead', '.body', 'footer', 'main pre']"
            ".filter(s => document.querySelector(s))"
            ".map(s => [s, getComputedStyle(document.querySelector(s)).direction]))"
        )
    )


@pytest.mark.slow
@needs_chromium
def test_chromium_puts_the_sites_chrome_in_the_sites_direction(
    bilingual: dict[str, Path],
) -> None:
    english, arabic = bilingual["en"], bilingual["ar"]
    with recorded_browser() as (browser, proxy):
        tab = browser.open((english / "articles" / "arabic.html").as_uri(), log=True)
        # An English site: its masthead stays left-to-right above an Arabic article.
        assert tab.evaluate("document.querySelector('h1').textContent") == ARABIC_TITLE
        assert directions(tab) == {
            "html": "rtl",
            ".masthead": "ltr",
            ".body": "rtl",
            "footer": "ltr",
        }
        # An Arabic site: its chrome is right-to-left everywhere, around an English article too.
        tab.navigate((arabic / "articles" / "article-000.html").as_uri())
        assert directions(tab) == {
            "html": "ltr",
            ".masthead": "rtl",
            ".body": "ltr",
            "footer": "rtl",
        }
        assert tab.evaluate("document.querySelector('footer a').textContent") == "كل المقالات"
        tab.navigate((arabic / "articles" / "arabic.html").as_uri())
        assert directions(tab)[".masthead"] == "rtl"
        tab.navigate((arabic / "index.html").as_uri())
        assert directions(tab)[".masthead"] == "rtl"
        # Its about page: Arabic headings, right to left, with commands left to right.
        tab.evaluate("document.querySelector('footer a[href=\"about.html\"]').click(), true")
        wait_for_page(tab, "about.html")
        assert tab.evaluate("document.querySelector('h1').textContent") == "عن هذا الإصدار"
        assert directions(tab) == {
            "html": "rtl",
            ".masthead": "rtl",
            "footer": "rtl",
            "main pre": "ltr",
        }
        # The explanations are English there, and keep their direction.
        assert tab.evaluate(
            "[...document.querySelectorAll('main p')]"
            ".every(p => p.lang === 'en' && getComputedStyle(p).direction === 'ltr')"
        )
        assert csp_violations(tab) == []
        assert proxy.page_hosts() == set(), proxy.seen
