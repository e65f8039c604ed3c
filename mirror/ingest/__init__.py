"""Ingest: articles in, from a folder of Markdown/HTML files or from an RSS/Atom feed.

Every source returns an `IngestResult`: the good articles, sanitised and
sorted newest first, plus an `IngestProblem` for each article it had to skip.
With ``on_error="fail"`` the first broken article raises `ArticleError`
instead. A source that cannot be read at all raises `SourceError` (or
`TransportError` for a feed URL that could not be fetched); no other
exception escapes for bad input.
"""

from mirror.ingest.directory import load_directory
from mirror.ingest.feed import load_feed
from mirror.ingest.model import (
    Article,
    Asset,
    Direction,
    IngestLimits,
    IngestProblem,
    IngestResult,
    OnError,
    is_valid_slug,
    normalize_language,
    slugify,
    sort_articles,
    text_direction,
)
from mirror.ingest.sanitize import sanitize_html

__all__ = [
    "Article",
    "Asset",
    "Direction",
    "IngestLimits",
    "IngestProblem",
    "IngestResult",
    "OnError",
    "is_valid_slug",
    "load_directory",
    "load_feed",
    "normalize_language",
    "sanitize_html",
    "slugify",
    "sort_articles",
    "text_direction",
]
