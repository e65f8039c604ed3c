"""`mirror verify` and `mirror extract`: an edition file checked with only a pinned root."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from pathlib import Path

from mirror.cli.output import print_json, shown
from mirror.clock import reader_now
from mirror.errors import MirrorError
from mirror.reader import pins
from mirror.reader.store import ReaderStore
from mirror.reader.verdicts import Language, default_language, localized, sentence
from mirror.reader.verify_file import verify_edition
from mirror.trust.publisher import publisher_of


def verify(args: argparse.Namespace) -> int:
    """Verify an edition file offline against a pinned root."""
    return _verify(args, extract_to=None)


def extract(args: argparse.Namespace) -> int:
    """Verify, then write the edition's files into a new folder."""
    return _verify(args, extract_to=Path(args.dest))


def _verify(args: argparse.Namespace, *, extract_to: Path | None) -> int:
    language: Language = args.lang or default_language()
    store = ReaderStore.at(args.state)
    try:
        pinned = pins.root_for_edition(store, Path(args.file), root=args.root)
        publisher = store.publisher(publisher_of(pinned.signed).publisher_id)
        verdict = verify_edition(
            Path(args.file),
            pinned=pinned,
            trust=publisher.trust(),
            now=reader_now(),
            allow_expired=args.allow_expired,
            extract_to=extract_to,
        )
        publisher.apply(verdict.update)
    except MirrorError as error:
        raise localized(error, language) from error
    fresh = verdict.freshness
    if args.json:
        print_json(
            {
                "verdict": "expired-allowed"
                if fresh.expired
                else "superseded"
                if verdict.superseded
                else "verified",
                "superseded": None
                if verdict.superseded is None
                else {
                    "signed_under_root_version": verdict.superseded.root_version,
                    "key_retired": verdict.superseded.retired.isoformat(),
                    "newest_root_version": verdict.superseded.newest_root_version,
                },
                "publisher": verdict.publisher,
                "edition": verdict.eid,
                "version": verdict.version,
                "created": verdict.created.isoformat(),
                "expires": verdict.expires.isoformat(),
                "age_seconds": int(fresh.age.total_seconds()),
                "expired_roles": list(fresh.expired_roles),
                "root_version": verdict.root_version,
                "members": verdict.members,
                "bytes": verdict.content_bytes,
                "extracted_to": str(extract_to) if extract_to else None,
            }
        )
        return 0
    values = {
        "publisher": verdict.publisher,
        "eid": verdict.eid,
        "version": verdict.version,
        "date": verdict.created.astimezone(UTC).strftime("%Y-%m-%d"),  # as the page says it
        "expires": verdict.expires.strftime("%Y-%m-%d"),
        "days": fresh.age.days,
    }
    if fresh.expired:
        print(shown(sentence("expired-allowed", language, **values)), file=sys.stderr)
    print(shown(sentence("verified", language, **values)))
    if verdict.superseded is not None:
        old = verdict.superseded
        line = sentence(
            "superseded",
            language,
            root_version=old.root_version,
            retired=old.retired.strftime("%Y-%m-%d"),
            newest_root_version=old.newest_root_version,
        )
        print(f"  {line}")
    if args.verbose:
        print(f"  title:        {shown(verdict.title)}")
        print(f"  created:      {verdict.created.isoformat()}")
        print(f"  expires:      {verdict.expires.isoformat()}")
        print(f"  root version: {verdict.root_version}")
        print(f"  members:      {verdict.members} files, {verdict.content_bytes:,} bytes")
    if extract_to is not None:
        print(f"  extracted to: {shown(extract_to)}")
    return 0
