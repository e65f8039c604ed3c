"""Caps on the work one article (or one feed) may cost, checked before any parser runs.

The parsers we use are fast on what people write and slow on what an
attacker writes: html5ever (inside nh3) is quadratic in nesting depth
(80,000 nested ``<div>`` took 24 s), feedparser is quadratic in the
categories of one entry (it de-duplicates tags with a list scan: 100,000
``<category>`` elements, 2.5 MB, ran past 250 s) and in the attributes of
one element, and it splits ``<media:keywords>`` at commas into tags with the
same scan. Byte caps do not help: those inputs are small. So before any of
them runs, one linear pass of our own counts what they would choke on and
refuses it with a sentence that says what it found:

- `html_problem`: an article body (HTML, or Markdown once rendered) with
  more elements, deeper nesting (counted by open and close tags, ignoring
  void elements and those whose end tag HTML lets one leave out), or more
  attributes on one element than `IngestLimits` allows.
- `scan_feed`: a feed document with an internal DTD declaring entities
  (entity expansion bombs; no feed needs them), more elements in all or
  deeper nesting than the caps, an element with too many attributes, or a
  header with more categories than ``max_tags``, is refused whole. An
  *entry* over the caps (elements, counting the escaped or CDATA HTML in
  its content too, or categories and keywords) is cut out of the document
  before feedparser sees it and reported as that entry's problem, so one
  hostile entry costs its feed nothing else. Entries past
  ``max_feed_entries`` are cut and reported once.

Whatever slips past these (a pathology nobody has found yet) still meets
the per-article CPU deadline of `mirror.ingest.workers`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from mirror.ingest.model import IngestLimits

# "[^<>]*" rather than "[^>]*": a tag never spans a "<" here, so a run of unclosed "<a"
# costs one step each instead of a scan to the end of the text each (quadratic).
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)([^<>]*)>")
_ATTRIBUTE = re.compile(r"""[^\s=/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=]*))?""")

VOID_ELEMENTS = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link",
        "meta", "param", "source", "track", "wbr", "image",
    }
)  # fmt: skip
"""Elements that never have content, so never add depth."""

OPTIONAL_END_ELEMENTS = frozenset(
    {
        "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option",
        "optgroup", "colgroup", "caption", "rb", "rt", "rp", "rtc", "html", "head", "body",
    }
)  # fmt: skip
"""Elements HTML closes by itself when the next one opens: a page of 1,000 unclosed
``<p>`` is 1,000 paragraphs side by side, not 1,000 levels deep."""


def _attribute_count(attributes: str) -> int:
    """Attributes in the text after a tag's name (``a="x y" b c=1`` is three)."""
    return len(_ATTRIBUTE.findall(attributes))


def html_problem(html: str, limits: IngestLimits) -> str | None:
    """Why ``html`` is too costly to sanitise (one sentence), or None when it is within caps."""
    if html.count("<") <= 1:
        return None
    elements = 0
    depth = 0
    long_attributes = 2 * limits.max_attributes
    for match in _HTML_TAG.finditer(html):
        closing, name, attributes = match.groups()
        name = name.lower()
        if closing:
            if name not in VOID_ELEMENTS and name not in OPTIONAL_END_ELEMENTS and depth:
                depth -= 1
            continue
        elements += 1
        if elements > limits.max_elements:
            return f"has more than {limits.max_elements:,} HTML elements"
        if len(attributes) > long_attributes:
            count = _attribute_count(attributes)
            if count > limits.max_attributes:
                return (
                    f"has an HTML element <{name[:20]}> with {count:,} attributes "
                    f"(limit {limits.max_attributes})"
                )
        if name in VOID_ELEMENTS or name in OPTIONAL_END_ELEMENTS or attributes.endswith("/"):
            continue
        depth += 1
        if depth > limits.max_depth:
            return f"nests HTML elements more than {limits.max_depth:,} levels deep"
    return None


# --- feeds ------------------------------------------------------------------------------

_XML_START = re.compile(r"<(/?)([A-Za-z_][^\s/<>]*)([^<>]*)>")
_SKIPPED = (("<!--", "-->"), ("<?", "?>"), ("<!", ">"))
"""Comments, processing instructions and declarations: skipped to their end with find."""
_ENTRY_NAMES = frozenset({"item", "entry"})
_TAG_NAMES = frozenset({"category", "subject"})
"""Elements each of which is one tag to feedparser (``dc:subject``, ``media:category``, ...)."""
_KEYWORD_NAMES = frozenset({"keywords"})
"""Elements feedparser splits at commas into tags (``media:keywords``, ``itunes:keywords``)."""


@dataclass(frozen=True)
class CutEntry:
    """An entry removed from the document before parsing: where it was, and why."""

    number: int
    """1-based position among the document's entries."""
    start: int
    end: int
    reason: str


@dataclass
class FeedScan:
    """What the pre-parse pass found: a reason to refuse the feed, or entries to cut."""

    problem: str | None = None
    entries: int = 0
    cut: list[CutEntry] = field(default_factory=list)
    too_many_entries: int = 0
    """How many entries past ``max_feed_entries`` were cut (0: none)."""


@dataclass
class _Entry:
    number: int
    start: int
    depth: int
    elements: int = 0
    tags: int = 0
    problem: str | None = None


def feed_text(data: bytes) -> tuple[str, str | None]:
    """The document as text for scanning, and its UTF-16/32 codec (None: ASCII-compatible).

    ASCII-compatible encodings (UTF-8, windows-1251, KOI8-R, ...) are read as
    Latin-1, which keeps every offset a byte offset.
    """
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, "replace"), codec
    for prefix, codec in (
        (b"<\0\0\0", "utf-32-le"),
        (b"\0\0\0<", "utf-32-be"),
        (b"<\0", "utf-16-le"),
        (b"\0<", "utf-16-be"),
    ):
        if data.startswith(prefix):
            return data.decode(codec, "replace"), codec
    return data.decode("latin-1"), None


def scan_feed(text: str, limits: IngestLimits) -> FeedScan:
    """Count what feedparser would have to do with ``text`` (see the module docstring)."""
    scan = FeedScan()
    if "<!ENTITY" in text:
        scan.problem = "declares XML entities in a DTD (an entity expansion bomb?); feeds need none"
        return scan
    depth = 0
    elements = 0
    head_tags = 0
    entry: _Entry | None = None
    position = 0
    start = text.find("<")
    while start >= 0:
        if entry is not None:
            # HTML in an entry's content, escaped or in CDATA, is parsed by feedparser
            # (relative links) and by our sanitiser: its elements count for the entry.
            entry.elements += text.count("&lt;", position, start)
        if text.startswith("<![CDATA[", start):
            end = text.find("]]>", start + 9)
            end = len(text) if end < 0 else end + 3
            if entry is not None:
                entry.elements += text.count("<", start + 9, end)
            position, start = end, text.find("<", end)
            continue
        skipped = next((close for open_, close in _SKIPPED if text.startswith(open_, start)), None)
        if skipped is not None:
            end = text.find(skipped, start + 2)
            end = len(text) if end < 0 else end + len(skipped)
            position, start = end, text.find("<", end)
            continue
        match = _XML_START.match(text, start)
        if match is None:  # a stray "<": feedparser's loose parser reads it as text
            position, start = start + 1, text.find("<", start + 1)
            continue
        position, start = match.end(), text.find("<", match.end())
        closing, name, attributes = match.groups()
        local = name.rpartition(":")[2].lower()
        if closing:
            depth = max(depth - 1, 0)
            if entry is not None and depth == entry.depth and local in _ENTRY_NAMES:
                _close_entry(scan, entry, match.end(), limits)
                entry = None
            continue
        elements += 1
        if elements > limits.max_feed_elements:
            scan.problem = f"has more than {limits.max_feed_elements:,} XML elements"
            return scan
        self_closing = attributes.endswith("/")
        if len(attributes) > 2 * limits.max_attributes:
            count = _attribute_count(attributes)
            if count > limits.max_attributes:
                scan.problem = (
                    f"has an element <{name[:30]}> with {count:,} attributes "
                    f"(limit {limits.max_attributes})"
                )
                return scan
        tags = 0
        if local in _TAG_NAMES:
            tags = 1
        elif local in _KEYWORD_NAMES and not self_closing:
            end = start if start >= 0 else len(text)
            tags = text.count(",", match.end(), end) + 1
        if entry is None and local in _ENTRY_NAMES and not self_closing:
            scan.entries += 1
            entry = _Entry(scan.entries, match.start(), depth)
        elif entry is not None:
            entry.elements += 1
            entry.tags += tags
        else:
            head_tags += tags
            if head_tags > limits.max_tags:
                scan.problem = f"has more than {limits.max_tags} categories in its header"
                return scan
        if not self_closing:
            depth += 1
            if depth > limits.max_depth:
                scan.problem = f"nests XML elements more than {limits.max_depth:,} levels deep"
                return scan
    if entry is not None:  # an unclosed last entry: feedparser's loose parser still reads it
        _close_entry(scan, entry, len(text), limits)
    return scan


def _close_entry(scan: FeedScan, entry: _Entry, end: int, limits: IngestLimits) -> None:
    if entry.number > limits.max_feed_entries:
        scan.too_many_entries += 1
        reason = f"the feed has more than {limits.max_feed_entries:,} entries"
    elif entry.elements > limits.max_elements:
        reason = f"entry has more than {limits.max_elements:,} elements (XML and HTML)"
    elif entry.tags > limits.max_tags:
        reason = f"entry has {entry.tags:,} categories or keywords (limit {limits.max_tags})"
    else:
        return
    scan.cut.append(CutEntry(entry.number, entry.start, end, reason))


def without_cut_entries(text: str, cut: list[CutEntry]) -> str:
    """``text`` with the cut entries' spans removed."""
    parts: list[str] = []
    position = 0
    for entry in cut:
        parts.append(text[position : entry.start])
        position = entry.end
    parts.append(text[position:])
    return "".join(parts)
