"""The Content-Security-Policy of an edition's pages, wherever they are shown.

The publisher writes it into every page (`mirror.render`), and `mirror read
--serve` sends it as a header (`mirror.reader.read`): one policy, in a module
that imports nothing, so the reader-only install shares it without loading
the publisher's Markdown, feed and HTML-sanitising libraries.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)
"""Only our own stylesheet and images; no script, frame, font, media or form target.

``'self'`` on a ``file://`` page matches the edition's own ``file:`` URLs:
checked with headless Chromium (tests/test_render.py), which loads the
stylesheet and images and reports no violation. ``base-uri`` and
``form-action`` are listed because ``default-src`` does not cover them.
"""
