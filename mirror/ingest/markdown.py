"""Markdown article bodies to HTML: CommonMark with tables and strikethrough, by cmark-gfm.

`cmarkgfm` binds GitHub's C implementation (the one PyPI renders untrusted
READMEs with): over 5 times faster than markdown-it-py on the bench corpus,
and iterative where a recursive parser overflows its stack on deeply nested
input (docs/adr/0019-commonmark-by-cmark-gfm.md). Raw HTML is kept
(``CMARK_OPT_UNSAFE``) because every body is sanitised afterwards
(`mirror.ingest.sanitize`), as it was with markdown-it-py's ``html=True``;
the GFM tag filter and autolinks are left off, so the extensions are exactly
the two markdown-it-py enabled.
"""

from __future__ import annotations

import cmarkgfm
from cmarkgfm.cmark import Options

EXTENSIONS = ("table", "strikethrough")
OPTIONS = Options.CMARK_OPT_UNSAFE


def markdown_to_html(text: str) -> str:
    """The HTML of a Markdown body, not yet sanitised."""
    html: str = cmarkgfm.markdown_to_html_with_extensions(
        text, options=OPTIONS, extensions=list(EXTENSIONS)
    )
    return html
