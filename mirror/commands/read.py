"""`mirror read`: open an edition from the reader's library, list it, or serve it."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from tuf.api.metadata import Metadata, Root

from mirror.cli.output import print_json, shown
from mirror.clock import reader_now
from mirror.errors import MirrorError, UsageError
from mirror.reader import pins
from mirror.reader.read import (
    EditionServer,
    EditionSummary,
    is_edition_file,
    iter_summaries,
    open_edition,
    read_index,
    summarize,
)
from mirror.reader.store import LibraryEdition, PublisherStore, ReaderStore
from mirror.reader.verdicts import default_language, localized


def read(args: argparse.Namespace) -> int:
    """Open an edition from the reader's library: print its URL, list it, or serve it."""
    if args.serve and args.list:
        raise UsageError("--serve and --list do not go together", hint="Use one of them.")
    store = ReaderStore.at(args.state)
    now = reader_now()
    try:
        pinned = _pinned(store, args)
        publisher, edition = open_edition(
            store, args.edition, pinned=pinned, now=now, allow_expired=args.allow_expired
        )
    except MirrorError as error:
        raise localized(error, args.lang or default_language()) from error
    summary = summarize(edition)
    if args.list:
        return _print_read_list(publisher, edition, summary, as_json=args.json)
    if args.serve:
        return _serve_edition(summary, port=args.port)
    if args.json:
        print_json({**_edition_document(summary), "publisher_id": publisher.publisher_id})
        return 0
    expired = (
        f"; expired {summary.expires:%Y-%m-%d}, may be out of date"
        if summary.expires <= now
        else ""
    )
    print(
        f"{shown(summary.publisher)}: edition {summary.eid} of {summary.created:%Y-%m-%d}, "
        f"{summary.articles} articles{expired}",
        file=sys.stderr,
    )
    print(shown(summary.index_url))
    return 0


def _pinned(store: ReaderStore, args: argparse.Namespace) -> Metadata[Root] | None:
    """The root to read against: --root or --publisher, the pin an edition file names, or none.

    Without either, an edition of the library is opened under the trust it
    was verified with when it was fetched.
    """
    if args.root or args.publisher:
        return pins.root_for_command(store, root=args.root, publisher=args.publisher)
    if is_edition_file(args.edition):
        return pins.root_for_edition(store, Path(args.edition), root=None)
    return None


def _edition_document(summary: EditionSummary) -> dict[str, Any]:
    return {
        "publisher": summary.publisher,
        "edition": summary.eid,
        "version": summary.version,
        "title": summary.title,
        "created": summary.created.isoformat(),
        "expires": summary.expires.isoformat(),
        "article_count": summary.articles,
        "path": str(summary.path),
        "url": summary.index_url,
    }


def _print_read_list(
    publisher: PublisherStore, edition: LibraryEdition, selected: EditionSummary, *, as_json: bool
) -> int:
    summaries = list(iter_summaries(publisher))
    articles = read_index(edition)
    if as_json:
        print_json(
            {
                "publisher": selected.publisher,
                "publisher_id": publisher.publisher_id,
                "library": str(publisher.library_dir),
                "editions": [_edition_document(s) for s in summaries],
                "selected": selected.eid,
                "articles": [
                    {
                        "title": a.title,
                        "date": a.date,
                        "language": a.language,
                        "direction": a.direction,
                        "author": a.author,
                        "summary": a.summary,
                        "file": a.file,
                    }
                    for a in articles
                ],
            }
        )
        return 0
    plural = "" if len(summaries) == 1 else "s"
    print(
        f"{shown(selected.publisher)}: {len(summaries)} edition{plural} "
        f"in {shown(publisher.library_dir)}"
    )
    print(f"  {'EDITION':<16} {'VERSION':>7}  {'DATE':<10}  {'ARTICLES':>8}")
    for s in summaries:
        mark = "*" if s.eid == selected.eid else " "
        print(f"{mark} {s.eid:<16} {s.version:>7}  {s.created:%Y-%m-%d}  {s.articles:>8}")
    print(f"Articles in edition {selected.eid} ({shown(selected.title)}):")
    print(f"  {'DATE':<10}  {'LANG':<5} {'FILE':<40} TITLE")
    for a in articles:
        print(shown(f"  {a.date[:10]:<10}  {a.language:<5} {a.file:<40} {a.title}"))
    return 0


def _serve_edition(summary: EditionSummary, *, port: int) -> int:
    server = EditionServer(summary.path, port=port)
    try:
        print(
            f"{shown(summary.publisher)}: serving edition {summary.eid} read-only on {server.url} "
            "(127.0.0.1 only); Ctrl-C stops",
            file=sys.stderr,
        )
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        server.server_close()
    return 0
