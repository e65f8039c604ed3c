"""`mirror fetch`: the newest edition from the mirrors that still work, verified."""

from __future__ import annotations

import argparse
import sys

from mirror.cli.output import print_json, shown
from mirror.clock import reader_now
from mirror.errors import MirrorError, TransportError, VerificationError
from mirror.reader import pins, verdicts
from mirror.reader.fetch import EditionFetch, FetchReport
from mirror.reader.store import ReaderStore
from mirror.reader.verdicts import HINT_LABEL, Language, default_language, localized


def fetch(args: argparse.Namespace) -> int:
    """Fetch, verify and store the newest edition; one line per mirror that did not give it."""
    language: Language = args.lang or default_language()
    store = ReaderStore.at(args.state)
    quiet = args.json or not sys.stderr.isatty()
    try:
        report = EditionFetch(
            pinned=pins.root_for_command(store, root=args.root, publisher=args.publisher),
            store=store,
            now=reader_now(),
            connect_timeout_s=args.connect_timeout,
            timeout_s=args.timeout,
            deadline_s=args.deadline,
            use_signed_list=not args.only,
            mode="latest-only" if args.latest else "archive" if args.archive else "latest-first",
            progress=None if quiet else (lambda text: print(shown(text), file=sys.stderr)),
        ).run(args.mirror or [])
    except MirrorError as error:  # before any mirror was asked: the pin, an address, --only
        raise localized(error, language) from error
    if isinstance(report.error, VerificationError | TransportError):
        raise _failure(report, report.error, language, as_json=args.json)
    if report.error is not None:  # a local problem (disk, usage): not the mirrors' verdict
        raise localized(report.error, language)
    fetched = report.fetched
    if fetched is None:  # unreachable: a report has an edition or an error
        raise MirrorError("the fetch ended with neither an edition nor an error")
    if args.json:
        print_json(
            {
                "verdict": "verified",
                "publisher": fetched.publisher,
                "edition": fetched.eid,
                "version": fetched.version,
                "date": fetched.created.isoformat(),
                "mirror": fetched.mirror,
                "updated": fetched.updated,
                "complete": fetched.edition.complete,
                "mirrors": [o.as_json() for o in report.outcomes],
                "downloaded_bytes": report.downloaded_bytes,
                "received_bytes": report.received_bytes,
                "path": str(fetched.edition.path),
            }
        )
        return 0
    print(
        shown(
            verdicts.say(
                "verified",
                language,
                publisher=fetched.publisher,
                eid=fetched.eid,
                version=fetched.version,
                date=fetched.created.strftime("%Y-%m-%d"),
                mirror=fetched.mirror,
            )
        )
    )
    if not fetched.updated:
        print(f"  {verdicts.say('already', language)}")
    if not fetched.edition.complete:
        print(f"  {verdicts.say('latest-only', language)}")
    for outcome in report.outcomes:
        if outcome.verdict != "ok":
            print(
                shown(verdicts.mirror_line(outcome.url, outcome.verdict, outcome.detail, language))
            )
    print(shown(f"  {verdicts.say('open', language, url=fetched.edition.index.as_uri())}"))
    return 0


def _failure(
    report: FetchReport, error: MirrorError, language: Language, *, as_json: bool
) -> MirrorError:
    """Print each mirror's outcome; the error in the reader's language, same class and code."""
    sentence, hint = verdicts.failure(
        error.verdict,
        language,
        count=sum(1 for o in report.outcomes if o.verdict == error.verdict)
        if error.verdict == "tampered"
        else len(report.outcomes),
        now=reader_now().strftime("%Y-%m-%d %H:%M UTC"),
    )
    if as_json:
        print_json(
            {
                "verdict": "stale" if error.verdict == "rollback" else error.verdict,
                "publisher": report.publisher,
                "mirrors": [o.as_json() for o in report.outcomes],
            }
        )
    else:
        for outcome in report.outcomes:
            print(
                shown(verdicts.mirror_line(outcome.url, outcome.verdict, outcome.detail, language))
            )
    return error.reworded(sentence, hint, hint_label=HINT_LABEL[language])
