"""The one HTML policy every article body passes through, whatever its source.

Articles are written by people we trust, but their HTML is not: it comes from
CMS exports, pasted embeds and third-party feeds, and an edition is opened by
readers whom a censor would like to identify. The policy is an allowlist run
by nh3 (ammonia, an html5ever-based sanitiser), so anything not named here is
removed. It runs once per body, at ingest, where it also rewrites local images
to edition assets, and returns a `SanitizedHtml`: render passes every body
through `sanitize_html` again, which returns a `SanitizedHtml` as it is (the
policy is idempotent, so the result would be the same string) and sanitises
anything else, so a page is safe even if an `Article` was built by other code.

What each choice stops:

- Tags: only structural and text tags (`ALLOWED_TAGS`). No ``script``,
  ``iframe``, ``object``, ``embed``, ``svg``, ``math``, ``form``: script
  execution, plugin content, frames that load remote pages, SVG/MathML
  namespace confusion (``<svg><script>``, mXSS) and phishing forms. No
  ``link``, ``meta``, ``base``: remote stylesheets, ``http-equiv=refresh``
  redirects to a censor's page, and ``<base href>`` silently re-pointing every
  relative link and image. The contents of script, style, frame and foreign
  content tags are dropped with the tag (`CONTENT_REMOVED_TAGS`) so no
  half-parsed code leaks into the text.
- Attributes: a short allowlist per tag (`ALLOWED_ATTRIBUTES`). No ``on*``
  event handlers (script), no ``style`` (CSS can load remote fonts and
  images, which leak the reader's IP address, and can overlay fake UI), no
  ``class``/``id`` (they would hook into our stylesheet or clobber anchors),
  no ``srcset``/``background``/``poster`` (extra remote loads).
  ``lang`` and ``dir`` are allowed anywhere, with checked values, because
  mixed Russian/Arabic text needs them.
- URLs: ``href`` may be ``http``, ``https``, ``mailto``, a ``#fragment`` or
  a relative reference that the caller maps to an edition asset; ``src`` (only
  on ``img``) may only be a relative reference into the edition's
  ``assets/`` folder. ``javascript:``, ``data:`` and ``vbscript:`` links
  (script), remote images (tracking pixels: readers are offline, and a
  remote load tells the censor who reads what), protocol-relative ``//host``
  and absolute ``/path`` references (which from ``file://`` reach the
  network or the reader's own disk) are all removed. An image that loses its
  ``src`` is removed entirely rather than left as a broken ``<img>``.
- Links: ``rel="noopener noreferrer nofollow"`` is forced onto every ``a``:
  no ``window.opener`` access from the target, no ``Referer`` telling the
  target where the reader came from.
- Comments are stripped (conditional comments, hidden payloads).

``data:`` images are dropped too, although the page CSP would allow them:
publishers ship images as files, which become signed edition targets with
their own length and hash, and inline blobs would only hide large payloads
inside article text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser

import nh3

UrlRewrite = Callable[[str], str | None]
"""Maps a relative URL to its edition URL, or None to drop it. Must never raise."""

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code",
        "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption",
        "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
        "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong",
        "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u",
        "ul", "var", "wbr",
    }
)  # fmt: skip
"""Structural and text tags only. ``h1`` is kept but demoted to ``h2``: the page title is the h1."""

CONTENT_REMOVED_TAGS = frozenset(
    {
        "applet", "embed", "frame", "frameset", "iframe", "math", "noembed", "noframes",
        "noscript", "object", "script", "select", "style", "svg", "template", "textarea",
        "title", "xmp",
    }
)  # fmt: skip
"""Tags removed together with everything inside them."""

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"lang", "dir"}),
    "a": frozenset({"href", "title"}),
    "abbr": frozenset({"title"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "ol": frozenset({"start", "reversed"}),
    "td": frozenset({"colspan", "rowspan"}),
    "th": frozenset({"colspan", "rowspan", "scope"}),
    "time": frozenset({"datetime"}),
}
"""Attributes allowed per tag (``*``: on every tag). Values are checked by `_filter_attribute`."""

URL_SCHEMES = frozenset({"http", "https", "mailto"})
"""Schemes allowed in ``href``; ``src`` gets no scheme at all (see `_filter_attribute`)."""

LINK_REL = "noopener noreferrer nofollow"

EDITION_REFERENCE = re.compile(r"\.\./assets/[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9][a-z0-9._-]*")
"""What an ``img src`` (or a local ``href``) looks like once rewritten to an edition asset."""

_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LANGUAGE_VALUE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_DIR_VALUES = frozenset({"ltr", "rtl", "auto"})
_NUMBER_LIMITS = {"width": 4, "height": 4, "colspan": 3, "rowspan": 3, "start": 9}
_SCOPE_VALUES = frozenset({"row", "col", "rowgroup", "colgroup"})
# nh3 escapes "<" and ">" inside attribute values and text, so in its output every
# "<" opens a tag and "[^>]*" spans exactly one tag: these patterns are exact there.
_IMG_TAG = re.compile(r"<img\b[^>]*>")
_H1_TAG = re.compile(r"<(/?)h1(?=[\s>])")


def strip_invalid_chars(text: str) -> str:
    """Remove characters that XML 1.0 forbids (C0 controls, lone surrogates, U+FFFE/F).

    They have no business in an article, break the Atom feed, and lone
    surrogates would make UTF-8 encoding fail later.
    """
    return _INVALID_CHARS.sub("", text)


def keep_edition_reference(url: str) -> str | None:
    """Default rewrite: keep only URLs that already point at an edition asset."""
    return url if EDITION_REFERENCE.fullmatch(url) else None


def drop_all_urls(url: str) -> str | None:
    """A rewrite that drops every relative URL (feeds: they have no local files)."""
    return None


_STATELESS_REWRITES: frozenset[UrlRewrite] = frozenset({keep_edition_reference, drop_all_urls})


class SanitizedHtml(str):
    """HTML that `sanitize_html` produced: sanitising it again would change nothing.

    Only `sanitize_html` makes one. It survives pickling (articles come back
    from worker processes) and `strip`; any other string operation gives a
    plain `str`, which is sanitised again wherever it is used.
    """

    __slots__ = ()

    def strip(self, chars: str | None = None) -> SanitizedHtml:
        """Surrounding whitespace removed; still sanitised."""
        return SanitizedHtml(str.strip(self, chars))


def is_local_reference(url: str) -> bool:
    """Whether `url` is a relative path: no scheme, not ``/abs``, ``//host``, ``?q`` or ``#f``."""
    url = url.strip()
    return bool(url) and not _SCHEME.match(url) and url[0] not in "/\\?#"


def _build_filter(
    rewrite_image_src: UrlRewrite, rewrite_link_href: UrlRewrite
) -> Callable[[str, str, str], str | None]:
    def filter_attribute(element: str, attribute: str, value: str) -> str | None:
        # nh3 has already removed URLs with schemes outside URL_SCHEMES when it calls
        # this, and it does not re-check what we return, so every branch returns
        # either the value nh3 accepted or one we constructed.
        try:
            return _filter_attribute(
                element, attribute, value, rewrite_image_src, rewrite_link_href
            )
        except Exception:  # a filter that raises only loses the attribute; make it explicit
            return None

    return filter_attribute


def _filter_attribute(
    element: str,
    attribute: str,
    value: str,
    rewrite_image_src: UrlRewrite,
    rewrite_link_href: UrlRewrite,
) -> str | None:
    if attribute == "src":
        # Only a relative reference survives, and only as the rewrite made it.
        if element != "img" or not is_local_reference(value):
            return None
        rewritten = rewrite_image_src(value.strip())
        return rewritten if rewritten and EDITION_REFERENCE.fullmatch(rewritten) else None
    if attribute == "href":
        stripped = value.strip()
        if stripped.startswith("#"):
            return stripped
        if _SCHEME.match(stripped):
            return stripped  # scheme already vetted by nh3 (http, https, mailto)
        if not is_local_reference(stripped):
            return None
        rewritten = rewrite_link_href(stripped)
        return rewritten if rewritten and EDITION_REFERENCE.fullmatch(rewritten) else None
    if attribute == "dir":
        return value.lower() if value.lower() in _DIR_VALUES else None
    if attribute == "lang":
        return value if _LANGUAGE_VALUE.fullmatch(value) else None
    if attribute in _NUMBER_LIMITS:
        short = len(value) <= _NUMBER_LIMITS[attribute]
        return value if value.isascii() and value.isdigit() and short else None
    if attribute == "scope":
        return value if value in _SCOPE_VALUES else None
    if attribute == "reversed":
        return ""
    return value


def _remove_sourceless_images(html: str) -> str:
    def replace(match: re.Match[str]) -> str:
        return match.group(0) if ' src="' in match.group(0) else ""

    return _IMG_TAG.sub(replace, html)


def _cleaner(rewrite_image_src: UrlRewrite, rewrite_link_href: UrlRewrite) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags=CONTENT_REMOVED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_build_filter(rewrite_image_src, rewrite_link_href),
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=URL_SCHEMES,
    )


# Building a Cleaner costs twice as much as cleaning a typical article, so the ones
# with module-level rewrites (render, feeds) are built once; per-article ones are not
# cached, as each holds that article's asset collector.
_shared_cleaner = functools.cache(_cleaner)


def sanitize_html(
    html: str,
    *,
    rewrite_image_src: UrlRewrite = keep_edition_reference,
    rewrite_link_href: UrlRewrite = keep_edition_reference,
) -> SanitizedHtml:
    """Return `html` reduced to the allowlist described in this module's docstring.

    `rewrite_image_src` receives every relative ``img src`` and
    `rewrite_link_href` every relative ``href`` (not fragments), stripped of
    surrounding space; each returns the edition URL (``../assets/<slug>/<file>``)
    or None to drop it. Anything they return that is not such a URL is
    dropped as well, so a buggy callback cannot open a hole. The defaults keep
    only references that already point into ``../assets/``, which makes the
    function idempotent on its own output: given its own output (a
    `SanitizedHtml`) and the defaults, it returns it without parsing again.
    """
    if isinstance(html, SanitizedHtml) and (
        rewrite_image_src is keep_edition_reference and rewrite_link_href is keep_edition_reference
    ):
        return html
    if rewrite_image_src in _STATELESS_REWRITES and rewrite_link_href in _STATELESS_REWRITES:
        cleaner = _shared_cleaner(rewrite_image_src, rewrite_link_href)
    else:
        cleaner = _cleaner(rewrite_image_src, rewrite_link_href)
    cleaned = cleaner.clean(strip_invalid_chars(html))
    cleaned = _remove_sourceless_images(cleaned)
    return SanitizedHtml(_H1_TAG.sub(r"<\1h2", cleaned))


_BLOCK_TAGS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
        "td", "th", "blockquote", "pre", "figure", "figcaption", "hr", "table", "dd", "dt",
    }
)  # fmt: skip


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in CONTENT_REMOVED_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in CONTENT_REMOVED_TAGS and self._skip_depth:
            self._skip_depth -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment, whitespace collapsed to single spaces."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return collapse_whitespace("".join(collector.parts))


def collapse_whitespace(text: str) -> str:
    """`text` with invalid characters removed and every run of whitespace turned into one space."""
    return " ".join(strip_invalid_chars(text).split())


def unique_tags(texts: Iterable[str]) -> tuple[str, ...]:
    """Tags with whitespace collapsed, empty ones dropped, each kept once, in first-seen order.

    A set remembers what was seen: the list scan it replaces made 100,000
    tags cost 5 * 10^9 comparisons.
    """
    seen: set[str] = set()
    tags: list[str] = []
    for text in texts:
        tag = collapse_whitespace(text)
        if tag and tag not in seen:
            seen.add(tag)
            tags.append(tag)
    return tuple(tags)


def summarize(text: str, max_chars: int = 200) -> str:
    """The first `max_chars` or so of `text`, cut at a word boundary, with an ellipsis if cut."""
    text = collapse_whitespace(text)
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    if " " in cut[max_chars // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-—") + "…"
