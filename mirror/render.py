# ruff: noqa: RUF001 - the Russian, Arabic, Persian and Hebrew texts are in their own scripts
"""Render articles into the static pages of an edition: article pages, index, about page, feed.

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
  so Russian, English and Arabic articles sit correctly side by side. The
  masthead and footer of an article page carry the *site's* language and
  direction, so an English site title is not right-aligned above an Arabic
  article, nor an Arabic site's chrome left-aligned above an English one.
  Dates are written the reader's way: Gregorian with month names for ``en``,
  ``ru``, ``ar`` and ``he``, the Solar Hijri calendar with Persian digits for
  ``fa``; ``<time datetime>`` stays RFC 3339 UTC.
- ``about.html`` (`render_about`) says which edition this is, how to check the
  copy three ways (mirror, stock minisign, ``reader.html``) with the
  fingerprints to compare, and where the next edition is: the signed mirror
  list, so every copy leads on. Its facts come in one `EditionProof`.
- Output is a pure function of the input: no clocks, no environment, no
  dictionary-order surprises. An article page depends only on the article and
  the site-wide constants (site title and language), never on the edition, its
  root or its mirrors, so an unchanged article gives the same bytes in every
  edition and is never re-uploaded.

The templates are module-level constants filled with `str.format`; every
value put into them is escaped first (`_text`). Labels in `_UI_TEXT` exist in
English, Russian, Arabic, Persian and Hebrew; the about page's longer
explanations (`_ABOUT_TEXT`) in English and Russian. Where a language has no
translation the English text is used and marked ``lang="en" dir="ltr"``, so
it keeps its direction inside a right-to-left page.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import functools
import heapq
import html
import importlib.resources
import io
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import overload

import jdatetime  # type: ignore[import-untyped]

from mirror.csp import CONTENT_SECURITY_POLICY
from mirror.ingest.model import Article, slugify, sort_articles, text_direction
from mirror.ingest.sanitize import sanitize_html, strip_invalid_chars

RENDER_VERSION = 1
"""Bump with any change to what an article page looks like (templates, helpers, escaping):
pages kept by earlier builds (`mirror.buildcache`) are then made again."""

ABOUT_MEMBER = "about.html"
"""The about page: which edition this is, how to check it, where the next one is."""

PAGE_HEAD = """\
<!doctype html>
<html lang="{lang}" dir="{dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="{up}style.css">
{links}</head>
<body>
"""
"""The start of every page: language, direction, the policy, no referrer, our stylesheet."""

ARTICLE_PAGE = """\
{head}<header class="masthead" lang="{site_lang}" dir="{site_dir}">\
<a href="../index.html"><bdi>{site_title}</bdi></a></header>
<main>
<article>
<h1>{title}</h1>
<p class="meta"><time datetime="{datetime}">{human_date}</time>{author}</p>
<div class="body">
{body}
</div>
{tags}</article>
</main>
{footer}
</body>
</html>
"""

INDEX_PAGE = """\
{head}<header class="masthead">
<h1>{site_title}</h1>
<p class="edition"><span>{publisher}</span><span>{edition_label} <code>{edition_id}</code></span>\
<time datetime="{datetime}">{human_date}</time><a href="feed.xml">{feed_label}</a></p>
</header>
<main>
{articles}
</main>
{footer}
</body>
</html>
"""

ABOUT_PAGE = """\
{head}<header class="masthead"><a href="index.html"><bdi>{site_title}</bdi></a></header>
<main class="about">
<h1>{heading}</h1>
<dl class="facts">
<dt>{publisher_label}</dt><dd><bdi>{publisher}</bdi></dd>
<dt>{edition_label}</dt><dd><code dir="ltr">{edition_id}</code></dd>
<dt>{date_label}</dt><dd><time datetime="{datetime}">{human_date}</time></dd>
</dl>
<section id="check">
<h2>{check_heading}</h2>
{check_intro}
<div class="warning" role="note">
<h3>{compare_heading}</h3>
{warning}
</div>
<h3>{mirror_heading}</h3>
{mirror_pin}
<pre dir="ltr"><code>{trust_command}</code></pre>
{mirror_verify}
<pre dir="ltr"><code>{verify_command}</code></pre>
{mirror_root}
<dl class="facts proof">
<dt>{publisher_id_label}</dt><dd><code class="fingerprint" dir="ltr">{publisher_id}</code></dd>
<dt>{root_version_label}</dt><dd>{root_version}</dd>
<dt>{root_sha256_label}</dt><dd><code class="fingerprint" dir="ltr">{root_sha256}</code></dd>
</dl>
<h3>{minisign_heading}</h3>
{minisign_text}
<pre dir="ltr"><code>{minisign_command}</code></pre>
<h3>{browser_heading}</h3>
{browser_text}
<dl class="facts proof">
<dt>{reader_sha256_label}</dt><dd><code class="fingerprint" dir="ltr">{reader_sha256}</code></dd>
</dl>
</section>
<section id="next">
<h2>{next_heading}</h2>
{mirrors}
{pass_on}
</section>
</main>
{footer}
</body>
</html>
"""

ABOUT_MIRROR = """\
<li>{name} <code class="url" dir="ltr">{url}</code>{reader}
<pre dir="ltr"><code>{command}</code></pre></li>
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
        "about": "About this edition",
        "publisher": "Publisher",
        "date": "Date",
        "check": "How to check this copy",
        "compare": "Compare the fingerprints",
        "with_mirror": "With mirror",
        "with_minisign": "With minisign",
        "in_browser": "In a browser",
        "publisher_id": "Publisher id",
        "root_version": "Root version",
        "root_sha256": "SHA-256 of root.json",
        "reader_sha256": "SHA-256 of reader.html",
        "next": "Where to get the next edition",
    },
    "ru": {
        "all_articles": "Все статьи",
        "edition": "Выпуск",
        "feed": "Лента Atom",
        "no_articles": "В этом выпуске нет статей.",
        "earlier": "Более ранние статьи",
        "about": "Об этом выпуске",
        "publisher": "Издатель",
        "date": "Дата",
        "check": "Как проверить эту копию",
        "compare": "Сверьте отпечатки",
        "with_mirror": "С помощью mirror",
        "with_minisign": "С помощью minisign",
        "in_browser": "В браузере",
        "publisher_id": "Идентификатор издателя",
        "root_version": "Версия root.json",
        "root_sha256": "SHA-256 файла root.json",
        "reader_sha256": "SHA-256 файла reader.html",
        "next": "Где взять следующий выпуск",
    },
    "ar": {
        "all_articles": "كل المقالات",
        "edition": "الإصدار",
        "feed": "خلاصة Atom",
        "no_articles": "لا يحتوي هذا الإصدار على مقالات.",
        "earlier": "مقالات سابقة",
        "about": "عن هذا الإصدار",
        "publisher": "الناشر",
        "date": "التاريخ",
        "check": "كيف تتحقق من هذه النسخة",
        "compare": "قارن البصمات",
        "with_mirror": "باستخدام mirror",
        "with_minisign": "باستخدام minisign",
        "in_browser": "في المتصفح",
        "publisher_id": "معرّف الناشر",
        "root_version": "إصدار root.json",
        "root_sha256": "بصمة SHA-256 لملف root.json",
        "reader_sha256": "بصمة SHA-256 لملف reader.html",
        "next": "من أين تحصل على الإصدار التالي",
    },
    "fa": {
        "all_articles": "همهٔ مقاله\u200cها",
        "edition": "شماره",
        "feed": "خوراک Atom",
        "no_articles": "این شماره مقاله\u200cای ندارد.",
        "earlier": "مقاله\u200cهای قدیمی\u200cتر",
        "about": "دربارهٔ این شماره",
        "publisher": "ناشر",
        "date": "تاریخ",
        "check": "چگونه این نسخه را بررسی کنید",
        "compare": "اثر انگشت\u200cها را مقایسه کنید",
        "with_mirror": "با mirror",
        "with_minisign": "با minisign",
        "in_browser": "در مرورگر",
        "publisher_id": "شناسهٔ ناشر",
        "root_version": "نسخهٔ root.json",
        "root_sha256": "SHA-256 فایل root.json",
        "reader_sha256": "SHA-256 فایل reader.html",
        "next": "شمارهٔ بعدی را از کجا بگیرید",
    },
    "he": {
        "all_articles": "כל הכתבות",
        "edition": "גיליון",
        "feed": "פיד Atom",
        "no_articles": "אין כתבות בגיליון הזה.",
        "earlier": "כתבות קודמות",
        "about": "על הגיליון הזה",
        "publisher": "מוציא לאור",
        "date": "תאריך",
        "check": "איך לבדוק את העותק הזה",
        "compare": "השוו את טביעות האצבע",
        "with_mirror": "עם mirror",
        "with_minisign": "עם minisign",
        "in_browser": "בדפדפן",
        "publisher_id": "מזהה המוציא לאור",
        "root_version": "גרסת root.json",
        "root_sha256": "SHA-256 של root.json",
        "reader_sha256": "SHA-256 של reader.html",
        "next": "איפה להשיג את הגיליון הבא",
    },
}
"""Labels of the pages' chrome and of the about page's headings, by primary language subtag."""

_ABOUT_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "check_intro": (
            "Anyone who passed this copy on to you could have changed it. Each of the three "
            "ways below proves that it is the publisher's own, unchanged; one is enough."
        ),
        "warning": (
            "A forged copy can show forged fingerprints, on this very page. Compare the "
            "fingerprints below with ones you got another way: the publisher's site, a friend, "
            "a printed card. If they differ, do not trust this copy."
        ),
        "mirror_pin": (
            "Once: get the publisher's {root_json} from the publisher another way, never from "
            "a copy like this one, and pin it:"
        ),
        "mirror_verify": "Then check each edition you are given:",
        "mirror_root": (
            "This edition is signed under the root below. The newest {root_json} has this "
            "SHA-256 ({sha256sum} shows it), and {trust_add} names this publisher id. An older "
            "version of {root_json} works too: mirror follows the publisher's signed chain of "
            "roots from it."
        ),
        "minisign": (
            "Check the ZIP file with the stock minisign tool. Its signature is the file of the "
            "same name ending in {minisig}, in the same folder:"
        ),
        "browser": (
            "Open {reader_html}, the publisher's checking page, in a browser, offline, and give "
            "it the ZIP file: it checks the file as mirror does. Before you trust the page "
            "itself, check its SHA-256 ({sha256sum_reader} shows it). For root version "
            "{root_version}, the page that mirror {mirror_version} writes has this one:"
        ),
        "next_intro": (
            "This edition carries the publisher's signed list of mirrors. {fetch} checks "
            "everything it gets from them against the root you pinned, so no mirror can hand "
            "you a forged edition."
        ),
        "no_mirrors": (
            "The publisher announces no mirror. Ask the publisher where to get the next edition."
        ),
        "pass_on": "Pass this copy on as it is: every copy carries this page.",
    },
    "ru": {
        "check_intro": (
            "Любой, кто передал вам эту копию, мог её изменить. Каждый из трёх способов ниже "
            "доказывает, что это неизменённый выпуск издателя; достаточно одного."
        ),
        "warning": (
            "Поддельная копия может показать поддельные отпечатки — прямо на этой странице. "
            "Сверьте отпечатки ниже с теми, что вы получили другим путём: с сайта издателя, от "
            "знакомого, с печатной карточки. Если они не совпадают, не доверяйте этой копии."
        ),
        "mirror_pin": (
            "Один раз: получите {root_json} у издателя другим путём, никогда не из такой копии, "
            "как эта, и закрепите его:"
        ),
        "mirror_verify": "Затем проверяйте каждый выпуск, который вам передали:",
        "mirror_root": (
            "Этот выпуск подписан под корнем, указанным ниже. У новейшего {root_json} такой "
            "SHA-256 (его покажет {sha256sum}), а {trust_add} назовёт этот идентификатор "
            "издателя. Подойдёт и более старая версия {root_json}: mirror пройдёт от неё по "
            "подписанной издателем цепочке корней."
        ),
        "minisign": (
            "Проверьте ZIP-файл стандартной программой minisign. Его подпись — файл с тем же "
            "именем и окончанием {minisig} в той же папке:"
        ),
        "browser": (
            "Откройте {reader_html}, страницу проверки от издателя, в браузере без сети и "
            "передайте ей ZIP-файл: она проверяет файл так же, как mirror. Прежде чем доверять "
            "самой странице, проверьте её SHA-256 (его покажет {sha256sum_reader}). Для версии "
            "корня {root_version} у страницы, которую создаёт mirror {mirror_version}, он такой:"
        ),
        "next_intro": (
            "В этом выпуске есть подписанный издателем список зеркал. {fetch} проверяет всё, "
            "что получает с них, по закреплённому вами корню, так что ни одно зеркало не "
            "сможет подсунуть вам поддельный выпуск."
        ),
        "no_mirrors": (
            "Издатель не объявил ни одного зеркала. Спросите у издателя, где взять следующий "
            "выпуск."
        ),
        "pass_on": "Передавайте эту копию дальше как есть: в каждой копии есть эта страница.",
    },
}
"""The about page's explanations; other languages show the English, marked as English."""

_FALLBACK_MARK = ' lang="en" dir="ltr"'
"""On text shown in English because the site's language has no translation of it."""

_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
    "ru": (
        "января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
        "сентября", "октября", "ноября", "декабря",
    ),
    "ar": (
        "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس",
        "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر",
    ),
    "he": (
        "בינואר", "בפברואר", "במרץ", "באפריל", "במאי", "ביוני", "ביולי", "באוגוסט",
        "בספטמבר", "באוקטובר", "בנובמבר", "בדצמבר",
    ),
    "fa": (
        "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان",
        "آذر", "دی", "بهمن", "اسفند",
    ),
}  # fmt: skip
"""Month names as a date writes them (``1 марта``, ``1 בדצמבר``); Persian months are Solar Hijri."""

_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

# In sanitised bodies every local reference is exactly `="../assets/...`; the feed
# lives one folder up from the article pages, so it needs them without the `../`.
_PAGE_RELATIVE_ASSET = re.compile(r'(\s(?:src|href))="\.\./assets/')


@dataclass(frozen=True)
class AnnouncedMirror:
    """One mirror of the edition's signed mirror list, as the about page shows it."""

    name: str
    url: str
    """Its public URL; shown as a link only when it is ``http(s)://`` or ``file://``."""


@dataclass(frozen=True)
class EditionProof:
    """How a reader checks this copy and where the next one is: the facts of ``about.html``.

    The build makes it once per edition from the keyring and from the very
    bytes of the edition's ``mirrors.json``, so the page can never list other
    mirrors than the signed list does, nor other fingerprints than the keys
    readers were given.
    """

    publisher_id: str
    """The id signed into the root (`mirror.trust.publisher`); ``mirror trust add`` prints it."""
    root_version: int
    """Version of the newest root, the one ``keys/root.json`` holds."""
    root_sha256: str
    """SHA-256 of the exact root.json bytes readers pin."""
    minisign_public_key: str
    """The base64 line of ``minisign.pub``, as ``minisign -P`` takes it."""
    reader_page_sha256: str
    """SHA-256 of the ``reader.html`` that ``mirror keys export-reader`` writes for this root."""
    mirror_version: str
    """The mirror version whose ``reader.html`` has that SHA-256 (the page embeds it)."""
    mirrors: tuple[AnnouncedMirror, ...]
    """The signed mirror list, in its own order; empty when the publisher announces none."""


@dataclass(frozen=True)
class SiteInfo:
    """Edition-wide facts shown on the index, the about page and in the feed.

    Article pages use only `title` and `language`, constants of the site, so
    an article's page does not change from one edition to the next.
    """

    title: str
    publisher: str
    language: str
    """BCP-47-ish tag for the index page, the about page, the feed and every page's chrome."""
    edition_id: str
    edition_created: datetime
    """When the edition was built; naive values are taken as UTC."""
    proof: EditionProof
    """What ``about.html`` shows to check this copy and find the next one."""


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
    """``1 March 2024``, ``1 марта 2024``, ``1 مارس 2024``, ``1 במרץ 2024``, ``11 اسفند 1402``.

    Gregorian with Western digits for every language with a month table but
    Persian, which gets the Solar Hijri calendar in Persian digits; ISO
    ``2024-03-01`` for languages without a table. The day is the UTC day, as
    in ``<time datetime>``.
    """
    m = _utc(moment)
    primary = _primary(language)
    iso = f"{m.year:04d}-{m.month:02d}-{m.day:02d}"
    if primary == "fa":
        return _solar_hijri_date(m, iso).translate(_PERSIAN_DIGITS)
    months = _MONTHS.get(primary)
    if months is None:
        return iso
    return f"{m.day} {months[m.month - 1]} {m.year}"


def _solar_hijri_date(moment: datetime, iso: str) -> str:
    """``10 آذر 1405``: the Solar Hijri date of ``moment`` (jdatetime converts); ISO before 622."""
    try:
        day = jdatetime.date.fromgregorian(date=moment.date())
    except ValueError:  # before the calendar's year 1 (March 622): no Solar Hijri date
        return iso
    return f"{day.day} {_MONTHS['fa'][day.month - 1]} {day.year}"


def _ui(language: str, key: str) -> str:
    return _UI_TEXT.get(_primary(language), _UI_TEXT["en"])[key]


def _label(language: str, key: str) -> str:
    """A label as HTML in ``language``; the English one, marked English, if it has none."""
    if _primary(language) in _UI_TEXT:
        return _text(_ui(language, key))
    return f"<span{_FALLBACK_MARK}>{_text(_ui(language, key))}</span>"


def _explain(language: str, key: str, **markup: str) -> str:
    """One paragraph of the about page in ``language`` (else English, marked English).

    ``markup`` fills the text's ``{placeholders}`` with HTML made here (code
    spans), after the text itself is escaped.
    """
    table = _ABOUT_TEXT.get(_primary(language))
    mark = ""
    if table is None:
        table, mark = _ABOUT_TEXT["en"], _FALLBACK_MARK
    return f"<p{mark}>{_text(table[key]).format(**markup)}</p>"


def _code(text: str) -> str:
    return f'<code dir="ltr">{_text(text)}</code>'


def _direction(language: str) -> str:
    return text_direction(language) if language else "ltr"


def _head(*, lang: str, direction: str, title: str, up: str, links: str = "") -> str:
    """`PAGE_HEAD` for a page ``up`` from the edition's top; ``title`` is escaped here."""
    return PAGE_HEAD.format(
        lang=_text(lang),
        dir=direction,
        csp=CONTENT_SECURITY_POLICY,
        title=_text(title),
        up=up,
        links=links,
    )


def _footer(language: str, *, up: str, current: str | None = None) -> str:
    """Every page's footer: all articles and the about page, in the site's language.

    ``up`` leads from the page's folder to the edition's top (``../`` from
    ``articles/``); ``current`` marks the link to the page itself.
    """
    links = []
    for target, key in (("index.html", "all_articles"), (ABOUT_MEMBER, "about")):
        here = ' aria-current="page"' if target == current else ""
        links.append(f'<a href="{up}{target}"{here}>{_label(language, key)}</a>')
    return (
        f'<footer lang="{_text(language)}" dir="{_direction(language)}">{"".join(links)}</footer>'
    )


def _author_span(author: str) -> str:
    return f"<span>{_text(author)}</span>" if author else ""


def _tag_list(tags: Sequence[str]) -> str:
    if not tags:
        return ""
    items = "".join(f"<li>{_text(tag)}</li>" for tag in tags)
    return f'<ul class="tags">{items}</ul>\n'


def _safe_body(article: Article) -> str:
    return sanitize_html(article.body_html).strip()


def _article_page(article: Article, site_title: str, site_language: str, body: str) -> bytes:
    """An article's page: the article, framed by the site's chrome in the site's language.

    Nothing here names the edition, so the page keeps its bytes across editions.
    """
    page = ARTICLE_PAGE.format(
        head=_head(
            lang=article.language,
            direction=article.direction,
            title=f"{article.title} — {site_title}",
            up="../",
        ),
        title=_text(article.title),
        site_title=_text(site_title),
        site_lang=_text(site_language),
        site_dir=_direction(site_language),
        datetime=_timestamp(article.date),
        human_date=_text(_human_date(article.date, article.language)),
        author=_author_span(article.author),
        body=body,
        tags=_tag_list(article.tags),
        footer=_footer(site_language, up="../"),
    )
    return page.encode("utf-8")


INDEX_FULL_ENTRIES = 100
INDEX_LINES_IN_MEMORY = 1024 * 1024
"""Bytes of brief index lines kept in memory before they go to a temporary file."""
"""Newest articles listed with author and summary; older ones get one short line each,
so the page every edition replaces stays small for readers who update."""


def render_index(articles: Iterable[Article], site: SiteInfo) -> bytes:
    """``index.html``: every article newest first, with edition id and date and the feed link.

    The newest `INDEX_FULL_ENTRIES` carry author and summary; the rest are
    listed briefly (title and date) under "Earlier articles".
    """
    listing = IndexListing()
    for article in articles:
        listing.add(article)
    return listing.render(site)


class IndexListing:
    """What ``index.html`` lists, gathered one article at a time and kept small.

    An archive of 100,000 articles is listed in one page; keeping every
    article for it (title, summary, tags...) cost about a kilobyte each. So
    each article leaves only its brief line, encoded once into one buffer,
    and its place in the order (newest first, ties by slug, as
    `sort_articles`) in two arrays; only the newest `INDEX_FULL_ENTRIES` are
    kept whole, for their summaries.
    """

    def __init__(self, spill_dir: Path | None = None) -> None:
        self._times = array.array("d")
        """Each article's date as negated seconds: ascending is newest first."""
        self._slugs: list[str] = []
        # Closed by `render`, else when the listing is dropped (a spilled file has no name).
        self._lines = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=INDEX_LINES_IN_MEMORY,
            prefix=".mirror-index-",
            dir=None if spill_dir is None else os.fspath(spill_dir),
        )
        """The brief lines, one after the other: in memory up to `INDEX_LINES_IN_MEMORY`,
        then in a file in ``spill_dir`` (23 MB at 100,000 articles)."""
        self._ends = array.array("Q")
        """Where each article's brief line ends in `_lines`."""
        self._newest: list[tuple[tuple[float, str], Article]] = []
        """The newest articles, in order, at most `INDEX_FULL_ENTRIES`."""

    def add(self, article: Article) -> None:
        """List ``article`` (its body is not kept)."""
        key = (-article.date.timestamp(), article.slug)
        self._times.append(key[0])
        self._slugs.append(article.slug)
        line = _index_entry(article, brief=True).encode("utf-8")
        self._lines.write(line)
        self._ends.append(self._lines.tell())
        newest = self._newest
        if len(newest) < INDEX_FULL_ENTRIES or key < newest[-1][0]:
            bisect.insort(newest, (key, dataclasses.replace(article, body_html="")))
            del newest[INDEX_FULL_ENTRIES:]

    def render(self, site: SiteInfo) -> bytes:
        """The page, as bytes: the brief lines are copied in order as they were encoded (once
        rendered, the listing is used up)."""
        times, slugs = self._times, self._slugs
        order = sorted(range(len(slugs)), key=lambda i: (times[i], slugs[i]))
        entries = "".join(_index_entry(article, brief=False) for _, article in self._newest)
        earlier = order[INDEX_FULL_ENTRIES:]
        listing = (
            f'<ol class="articles">\n{entries}</ol>'
            if entries
            else f"<p>{_label(site.language, 'no_articles')}</p>"
        )
        if earlier:
            listing += (
                f'\n<h2 class="earlier">{_label(site.language, "earlier")}</h2>\n'
                f'<ol class="articles brief">\n{_EARLIER}</ol>'
            )
        feed_link = (
            '<link rel="alternate" type="application/atom+xml" href="feed.xml" '
            f'title="{_text(site.title)}">\n'
        )
        page = INDEX_PAGE.format(
            head=_head(
                lang=site.language,
                direction=_direction(site.language),
                title=site.title,
                up="",
                links=feed_link,
            ),
            site_title=_text(site.title),
            publisher=_text(site.publisher),
            edition_label=_label(site.language, "edition"),
            edition_id=_text(site.edition_id),
            datetime=_timestamp(site.edition_created),
            human_date=_text(_human_date(site.edition_created, site.language)),
            feed_label=_label(site.language, "feed"),
            articles=listing,
            footer=_footer(site.language, up="", current="index.html"),
        )
        if not earlier:
            self._lines.close()
            return page.encode("utf-8")
        before, after = page.rsplit(_EARLIER, 1)  # after every title, before our footer
        # One copy in memory: BytesIO hands over its buffer as the page.
        out = io.BytesIO()
        out.write(before.encode("utf-8"))
        with self._lines as lines:
            ends = self._ends
            for index in earlier:
                start = ends[index - 1] if index else 0
                lines.seek(start)
                line = lines.read(ends[index] - start)
                if len(line) != ends[index] - start:
                    raise OSError(f"the index's temporary file gave back {len(line)} bytes")
                out.write(line)
        out.write(after.encode("utf-8"))
        return out.getvalue()


_EARLIER = "\x00earlier\x00"
"""Where the brief lines go in the page (ingest strips NUL from every text; only the footer,
ours, comes after it)."""


_LINKABLE_URL = re.compile(r"(?:https?|file)://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
"""A mirror URL that may become a link: http(s) or file, and nothing a browser would strip.

Browsers drop tabs and newlines inside URLs and leading spaces and controls,
so ``java\tscript:`` would run as ``javascript:``; any such character, or
any other scheme, and the URL is shown as text only.
"""


def _mirror_entry(mirror: AnnouncedMirror, reader_page_sha256: str) -> str:
    name = f"<bdi>{_text(mirror.name)}</bdi>"
    reader = ""
    if _LINKABLE_URL.fullmatch(mirror.url):
        name = f'<a href="{_text(mirror.url)}">{name}</a>'
        if "?" not in mirror.url and "#" not in mirror.url:
            # The published reader.html under its consistent-snapshot (hash-prefixed) name.
            page = f"{mirror.url.rstrip('/')}/targets/{reader_page_sha256}.reader.html"
            reader = f' <a class="reader" href="{_text(page)}" dir="ltr">reader.html</a>'
    return ABOUT_MIRROR.format(
        name=name,
        url=_text(mirror.url),
        reader=reader,
        command=_command("mirror", "fetch", "--mirror", mirror.url),
    )


def _command(*words: str) -> str:
    """A command line to copy into a shell, quoted so that no value can add a command."""
    return _text(shlex.join(words))


def render_about(site: SiteInfo) -> bytes:
    """``about.html``: this edition, three ways to check the copy, and the mirrors to go on to.

    All of it comes from `SiteInfo` and its `EditionProof`; the edition's ZIP
    is named ``<edition id>.zip`` in the commands, as the build names it.
    """
    language, proof = site.language, site.proof
    archive = f"{site.edition_id}.zip"
    if proof.mirrors:
        items = "".join(_mirror_entry(m, proof.reader_page_sha256) for m in proof.mirrors)
        mirrors = (
            _explain(language, "next_intro", fetch=_code("mirror fetch"))
            + f'\n<ul class="mirrors">\n{items}</ul>'
        )
    else:
        mirrors = _explain(language, "no_mirrors")
    page = ABOUT_PAGE.format(
        head=_head(
            lang=language,
            direction=_direction(language),
            title=f"{_ui(language, 'about')} — {site.title}",
            up="",
        ),
        heading=_label(language, "about"),
        site_title=_text(site.title),
        publisher_label=_label(language, "publisher"),
        publisher=_text(site.publisher),
        edition_label=_label(language, "edition"),
        edition_id=_text(site.edition_id),
        date_label=_label(language, "date"),
        datetime=_timestamp(site.edition_created),
        human_date=_text(_human_date(site.edition_created, language)),
        check_heading=_label(language, "check"),
        check_intro=_explain(language, "check_intro"),
        compare_heading=_label(language, "compare"),
        warning=_explain(language, "warning"),
        mirror_heading=_label(language, "with_mirror"),
        mirror_pin=_explain(language, "mirror_pin", root_json=_code("root.json")),
        trust_command=_command("mirror", "trust", "add", "root.json"),
        mirror_verify=_explain(language, "mirror_verify"),
        verify_command=_command("mirror", "verify", archive),
        mirror_root=_explain(
            language,
            "mirror_root",
            root_json=_code("root.json"),
            sha256sum=_code("sha256sum root.json"),
            trust_add=_code("mirror trust add"),
        ),
        publisher_id_label=_label(language, "publisher_id"),
        publisher_id=_text(proof.publisher_id),
        root_version_label=_label(language, "root_version"),
        root_version=proof.root_version,
        root_sha256_label=_label(language, "root_sha256"),
        root_sha256=_text(proof.root_sha256),
        minisign_heading=_label(language, "with_minisign"),
        minisign_text=_explain(language, "minisign", minisig=_code(".minisig")),
        minisign_command=_command("minisign", "-Vm", archive, "-P", proof.minisign_public_key),
        browser_heading=_label(language, "in_browser"),
        browser_text=_explain(
            language,
            "browser",
            reader_html=_code("reader.html"),
            sha256sum_reader=_code("sha256sum reader.html"),
            root_version=str(proof.root_version),
            mirror_version=_text(proof.mirror_version),
        ),
        reader_sha256_label=_label(language, "reader_sha256"),
        reader_sha256=_text(proof.reader_page_sha256),
        next_heading=_label(language, "next"),
        mirrors=mirrors,
        pass_on=_explain(language, "pass_on"),
        footer=_footer(language, up="", current=ABOUT_MEMBER),
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
    kept = heapq.nsmallest(count, articles, key=_feed_key)
    return sort_articles(kept)


def _feed_key(article: Article) -> tuple[float, str]:
    """Ascending is `sort_articles`'s order: newest first, then by slug."""
    return (-article.date.timestamp(), article.slug)


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


def render_article(article: Article, site: SiteInfo) -> tuple[SiteFile, str]:
    """One article's page (depending only on the article and the site's title and
    language) and the sanitised body it shows, which the feed reuses."""
    body = _safe_body(article)
    data = _article_page(article, site.title, site.language, body)
    page = SiteFile(f"articles/{article.slug}.html", data=data)
    return page, body


@dataclass(frozen=True)
class RenderedArticle:
    """An article whose page the caller already has, made by `render_article` (in a worker
    process, or by an earlier build): `render_site` gives it back in its page's place."""

    article: Article
    """Its ``body_html`` may be left empty: `body` gives the body if the feed carries it."""
    body: Callable[[], str]


@overload
def render_site(
    articles: Iterable[Article], site: SiteInfo, *, spill_dir: Path | None = None
) -> Iterator[SiteFile]: ...


@overload
def render_site(
    articles: Iterable[Article | RenderedArticle], site: SiteInfo, *, spill_dir: Path | None = None
) -> Iterator[SiteFile | RenderedArticle]: ...


def render_site(
    articles: Iterable[Article | RenderedArticle], site: SiteInfo, *, spill_dir: Path | None = None
) -> Iterator[SiteFile | RenderedArticle]:
    """Every file of the edition's readable part, streamed in one pass.

    Each article's page (``articles/<slug>.html``, depending only on the
    article and the site's title and language) and its assets (`SiteFile` entries with a
    ``source`` path for the edition writer to stream) are yielded as the
    article arrives; the article is then forgotten but for its index line,
    except for the newest `FEED_ENTRIES`, whose sanitised bodies the feed
    reuses (each body is sanitised once). A `RenderedArticle` is given back
    as it came, in its page's place, and its body asked for only if the
    final feed carries it. ``index.html``, ``about.html``, ``feed.xml`` and
    ``style.css`` come last. Raises `ValueError` if two articles share a slug,
    which ingest never produces. The index's lines wait in a temporary file in
    ``spill_dir`` (the system's temporary folder by default).
    """
    listed = IndexListing(spill_dir)
    slugs: set[str] = set()
    feed: tuple[Article, ...] = ()
    feed_bodies: dict[str, Callable[[], str]] = {}
    for item in articles:
        if isinstance(item, RenderedArticle):
            article, body_of = item.article, item.body
        else:
            article = item
        if article.slug in slugs:
            raise ValueError(f"two articles share a slug: {article.slug}")
        slugs.add(article.slug)
        if isinstance(item, RenderedArticle):
            yield item
        else:
            page, body = render_article(article, site)
            body_of = functools.partial(str, body)
            yield page
        for asset in article.assets:
            yield SiteFile(asset.name, source=asset.source)
        listed.add(article)
        if len(feed) < FEED_ENTRIES or _feed_key(article) < _feed_key(feed[-1]):
            # Only an article newer than the oldest the feed keeps changes the feed.
            feed = newest([*feed, article])
            kept = {a.slug for a in feed}
            if article.slug in kept:
                feed_bodies[article.slug] = body_of
            feed_bodies = {slug: text for slug, text in feed_bodies.items() if slug in kept}
    yield SiteFile("index.html", data=listed.render(site))
    yield SiteFile(ABOUT_MEMBER, data=render_about(site))
    bodies = {slug: body_of() for slug, body_of in feed_bodies.items()}
    yield SiteFile("feed.xml", data=_feed(feed, site, bodies))
    yield SiteFile("style.css", data=stylesheet())
