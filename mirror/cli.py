"""The `mirror` command line: the one place where errors become sentences and exit codes.

Exit codes (docs/exit-codes.md):

==  ==============================================================
0   success; for ``verify``: verified
1   unexpected internal error (reported in one sentence, no traceback)
2   usage: bad arguments, unusable pinned root
3   configuration file invalid
4   local file system error
5   keys missing, passphrase missing or wrong
6   article source unreadable, or a broken article with on_article_error: fail
7   network failure
8   quorum not reached: fewer mirrors verified than ``push.quorum``
10  tampered: signatures, keys, hashes, lengths or metadata do not match
11  expired
12  not yet valid (created in the future: wrong clock or forgery)
13  rollback: older than an edition this reader already verified
14  unsafe archive: hostile or over-limit ZIP structure
==  ==============================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from mirror import __version__, fsutil, publish_tree, verdicts
from mirror.admin import add_mirror, parse_settings_arguments, probe_all
from mirror.build import build_edition
from mirror.config import MIRROR_TYPES, Config, load_config
from mirror.errors import MirrorError, QuorumError, TransportError, UsageError
from mirror.offline import load_pinned_root, verify_edition
from mirror.publish import ReadBackRequest, push_all
from mirror.read import (
    EditionServer,
    EditionSummary,
    Shelf,
    choose_shelf,
    iter_summaries,
    read_index,
    select_edition,
    summarize,
)
from mirror.reader import Fetcher, FetchFailure
from mirror.report import (
    BarProgress,
    PlainProgress,
    load_mirror_states,
    print_plain,
    print_table,
    report_document,
    save_mirror_states,
    write_json_report,
)
from mirror.state import ReaderState, default_state_dir
from mirror.trust.keys import init_keys, rotate_role
from mirror.tufclient import TufClientUsageError
from mirror.verdicts import Language, default_language

DEFAULT_CONFIG = "mirror.yaml"


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"Run `{self.prog} --help` for usage.")


def now_utc() -> datetime:
    """The current time, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        if not epoch.isdigit():
            raise UsageError(
                "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970",
                hint="Unset it or set it to e.g. $(git log -1 --format=%ct).",
            )
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return reader_now()


def reader_now() -> datetime:
    """The reader's clock: always the real time (SOURCE_DATE_EPOCH is for builds only)."""
    return datetime.now(UTC).replace(microsecond=0)


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("MIRROR_CONFIG") or DEFAULT_CONFIG)


def _load_config(args: argparse.Namespace) -> Config:
    return load_config(_config_path(args))


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False, default=str))


# --- keys -------------------------------------------------------------------


def cmd_keys_init(args: argparse.Namespace) -> int:
    """Create the key store and root version 1."""
    config = _load_config(args)
    root = init_keys(
        config.keys.dir,
        config.passphrase(),
        publisher_name=args.publisher or config.publisher.name,
        now=now_utc(),
        root_threshold=args.root_threshold,
        root_keys=args.root_keys,
    )
    keys_dir = config.keys.dir
    print(f"Created keys for {args.publisher or config.publisher.name} in {keys_dir}")
    print(f"  root: {args.root_threshold} of {args.root_keys} keys, version {root.version}")
    print(f"  give readers to pin:   {keys_dir / 'root.json'}")
    print(f"  minisign public key:   {keys_dir / 'minisign.pub'}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Replace a role's keys and sign the next root version."""
    config = _load_config(args)
    root = rotate_role(config.keys.dir, config.passphrase(), args.role, now=now_utc())
    if root is None:
        print(f"Rotated the minisign key; new public key in {config.keys.dir / 'minisign.pub'}")
    else:
        print(
            f"Rotated the {args.role} keys; root is now version {root.version} "
            f"({config.keys.dir / 'root.json'}). Rebuild to publish it."
        )
    return 0


# --- build ------------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> int:
    """Ingest, render, archive, sign, and update the local publish tree."""
    config = _load_config(args)
    with _output_lock(config):
        result = build_edition(config, now=now_utc(), version=args.edition_version)
    for problem in result.problems:
        print(f"skipped {problem.source}: {problem.reason}", file=sys.stderr)
    if args.json:
        _print_json(
            {
                "edition": result.eid,
                "version": result.version,
                "created": result.created.isoformat(),
                "expires": result.expires.isoformat(),
                "zip": str(result.zip_path),
                "minisig": str(result.minisig_path),
                "publish_dir": str(result.publish_dir),
                "articles": result.articles,
                "skipped": [{"source": p.source, "reason": p.reason} for p in result.problems],
                "bytes": result.archive.length,
                "sha256": result.archive.sha256,
                "targets_written": result.targets_written,
            }
        )
    else:
        print(
            f"Built edition {result.eid} (version {result.version}): {result.articles} articles, "
            f"{len(result.problems)} skipped, {result.archive.length:,} bytes"
        )
        print(f"  archive:   {result.zip_path}")
        print(f"  minisign:  {result.minisig_path}")
        print(f"  publish:   {result.publish_dir} ({result.targets_written} new files)")
    return 0


# --- push / sync -------------------------------------------------------------


def _read_back_request(config: Config) -> ReadBackRequest:
    """What every mirror must serve after this push: the local tree's newest state."""
    release = publish_tree.current_release(config.publish_dir)
    if release is None or not release.eids:
        raise UsageError(
            f"there is no edition in {config.publish_dir} to push",
            hint="Run `mirror build` (or `mirror sync`) first.",
        )
    return ReadBackRequest(
        bootstrap_root=fsutil.read_bounded(
            config.publish_dir / "metadata" / "1.root.json",
            max_bytes=1024 * 1024,
            what="root metadata",
        ),
        eid=release.eids[-1],
        timestamp_version=release.timestamp_version,
        now=reader_now(),
    )


def _push(args: argparse.Namespace, config: Config) -> int:
    mirrors = config.mirrors
    if args.mirror:
        known = {m.name: m for m in config.mirrors}
        unknown = [name for name in args.mirror if name not in known]
        if unknown:
            raise UsageError(
                f"there is no mirror called {unknown[0]!r} in {config.file}",
                hint=f"Known mirrors: {', '.join(known) or 'none'}.",
            )
        mirrors = tuple(known[name] for name in args.mirror)
    verify = None if args.dry_run or args.no_read_back else _read_back_request(config)
    console = Console(stderr=False)
    interactive = sys.stdout.isatty()
    if interactive:
        with BarProgress(console) as bars:
            results = asyncio.run(
                push_all(
                    config, progress=bars, dry_run=args.dry_run, verify=verify, mirrors=mirrors
                )
            )
    else:
        results = asyncio.run(
            push_all(
                config,
                progress=PlainProgress(sys.stderr),
                dry_run=args.dry_run,
                verify=verify,
                mirrors=mirrors,
            )
        )
    if args.dry_run:
        for result in results:
            print(f"{result.mirror}: would upload {len(result.planned)} files")
            for path in result.planned:
                print(f"  {path}")
        return 0
    if interactive:
        print_table(results, console)
    else:
        print_plain(results)
    good = sum(1 for r in results if r.ok)
    if args.json:
        write_json_report(
            Path(args.json),
            report_document(
                results,
                edition=verify.eid if verify else None,
                quorum=config.push.quorum,
                verified=good,
            ),
        )
    save_mirror_states(config.output_dir / "state" / "mirrors.json", results, reader_now())
    if good < config.push.quorum:
        raise QuorumError(
            f"only {good} of {len(results)} mirrors {'verified' if verify else 'were pushed'}; "
            f"the quorum is {config.push.quorum}"
        )
    return 0


def _output_lock(config: Config) -> contextlib.AbstractContextManager[None]:
    """One build/push at a time per output folder."""
    return fsutil.exclusive_lock(config.output_dir / ".mirror.lock", what="building or pushing")


def cmd_push(args: argparse.Namespace) -> int:
    """Push the publish tree as it stands to every mirror, then read each back."""
    config = _load_config(args)
    with _output_lock(config):
        return _push(args, config)


def cmd_sync(args: argparse.Namespace) -> int:
    """Build a new edition, push it everywhere, read every mirror back."""
    config = _load_config(args)
    with _output_lock(config):
        if args.dry_run:
            print("would build a new edition, then push:")
            return _push(args, config)
        result = build_edition(config, now=now_utc(), version=args.edition_version)
        for problem in result.problems:
            print(f"skipped {problem.source}: {problem.reason}", file=sys.stderr)
        print(
            f"Built edition {result.eid} (version {result.version}): {result.articles} articles, "
            f"{result.archive.length:,} bytes"
        )
        return _push(args, config)


# --- config check / mirrors ----------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate the config, then probe every mirror (reach, auth, write, public URL)."""
    config = _load_config(args)
    print(f"{config.file}: valid ({len(config.mirrors)} mirrors)")
    results = asyncio.run(probe_all(config))
    if args.json:
        _print_json({"config": str(config.file), "mirrors": [r.as_json() for r in results]})
    else:
        table = Table(title="mirror config check")
        for column in ("mirror", "type", "writable", "public", "time", "detail"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(
                r.mirror,
                r.type,
                "yes" if r.writable else "NO",
                "yes" if r.public else "NO",
                f"{r.seconds:.1f} s",
                r.detail,
            )
        Console(width=max(100, Console().width)).print(table)
    failed = [r.mirror for r in results if not (r.writable and r.public)]
    if failed:
        raise TransportError(
            f"{len(failed)} of {len(results)} mirrors failed the probe: {', '.join(failed)}",
            hint="The detail column says what failed for each mirror.",
        )
    return 0


def cmd_mirrors_list(args: argparse.Namespace) -> int:
    """Every configured mirror with its last known state."""
    config = _load_config(args)
    states = load_mirror_states(config.output_dir / "state" / "mirrors.json")
    rows = []
    for m in config.mirrors:
        state = states.get(m.name, {})
        rows.append(
            {
                "mirror": m.name,
                "type": m.type,
                "public_url": m.public_url,
                "announce": m.announce,
                "enabled": m.enabled,
                "tags": list(m.tags),
                "last_run": state.get("when"),
                "last_status": _last_status(state),
                "last_error": state.get("error"),
            }
        )
    if args.json:
        _print_json({"mirrors": rows})
        return 0
    table = Table(title=f"mirrors in {config.file}")
    for column in ("mirror", "type", "public URL", "listed", "enabled", "last run", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["mirror"],
            row["type"],
            row["public_url"],
            "yes" if row["announce"] else "secret",
            "yes" if row["enabled"] else "no",
            row["last_run"] or "never",
            row["last_status"] + (f" — {row['last_error']}" if row["last_error"] else ""),
        )
    Console(width=max(120, Console().width)).print(table)
    return 0


def _last_status(state: dict[str, Any]) -> str:
    if not state:
        return "never pushed"
    if state.get("error"):
        return f"failed ({state.get('error_kind')})"
    return "verified" if state.get("verified") else "pushed"


def cmd_mirrors_add(args: argparse.Namespace) -> int:
    """Append a validated mirror entry to the config file, keeping its comments."""
    entry: dict[str, Any] = {
        "name": args.name,
        "type": args.type,
        "public_url": args.public_url,
    }
    if args.secret:
        entry["announce"] = False
    if args.tag:
        entry["tags"] = list(args.tag)
    entry[args.type] = parse_settings_arguments(args.set or [])
    path = _config_path(args)
    added = add_mirror(path, entry)
    listed = "listed in the signed mirror list" if added.announce else "kept secret"
    print(f"Added mirror {added.name} ({added.type}, {listed}) to {path}")
    print("Run `mirror config check` to probe it.")
    return 0


# --- fetch --------------------------------------------------------------------


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch the newest edition from the mirrors that still work, verified."""
    language: Language = args.lang or default_language()
    pinned = load_pinned_root(Path(args.root))
    state = ReaderState(Path(args.state) if args.state else default_state_dir())
    quiet = args.json or not sys.stderr.isatty()
    fetcher = Fetcher(
        pinned=pinned,
        state=state,
        now=reader_now(),
        connect_timeout_s=args.connect_timeout,
        timeout_s=args.timeout,
        progress=None if quiet else (lambda text: print(text, file=sys.stderr)),
    )
    try:
        result = fetcher.run(args.mirror or [])
    except FetchFailure as failure:
        sentence, hint = verdicts.failure(
            failure.verdict,
            language,
            count=sum(1 for o in failure.outcomes if o.verdict == failure.verdict)
            if failure.verdict == "tampered"
            else len(failure.outcomes),
            now=reader_now().strftime("%Y-%m-%d %H:%M UTC"),
        )
        if args.json:
            _print_json(
                {
                    "verdict": "stale" if failure.verdict == "rollback" else failure.verdict,
                    "publisher": fetcher.publisher.name,
                    "mirrors": [o.as_json() for o in failure.outcomes],
                }
            )
        else:
            for outcome in failure.outcomes:
                print(verdicts.mirror_line(outcome.url, outcome.verdict, outcome.detail, language))
        raise type(failure)(MirrorError(sentence, hint=hint), failure.outcomes) from failure
    if args.json:
        _print_json(
            {
                "verdict": "verified",
                "publisher": result.publisher,
                "edition": result.eid,
                "version": result.version,
                "date": result.created.isoformat(),
                "mirror": result.mirror,
                "updated": result.updated,
                "mirrors": [o.as_json() for o in result.outcomes],
                "downloaded_bytes": result.downloaded_bytes,
                "received_bytes": result.received_bytes,
                "path": str(result.edition.path),
            }
        )
        return 0
    print(
        verdicts.say(
            "verified",
            language,
            publisher=result.publisher,
            eid=result.eid,
            version=result.version,
            date=result.created.strftime("%Y-%m-%d"),
            mirror=result.mirror,
        )
    )
    if not result.updated:
        print(f"  {verdicts.say('already', language)}")
    for outcome in result.outcomes:
        if outcome.verdict != "ok":
            print(verdicts.mirror_line(outcome.url, outcome.verdict, outcome.detail, language))
    print(f"  {verdicts.say('open', language, url=result.edition.index.as_uri())}")
    return 0


# --- verify / extract -------------------------------------------------------


def _verify(args: argparse.Namespace, *, extract_to: Path | None) -> int:
    pinned = load_pinned_root(Path(args.root))
    state = ReaderState(Path(args.state) if args.state else default_state_dir())
    verdict = verify_edition(
        Path(args.file),
        pinned=pinned,
        state=state,
        now=reader_now(),
        allow_expired=args.allow_expired,
        extract_to=extract_to,
    )
    fresh = verdict.freshness
    if args.json:
        _print_json(
            {
                "verdict": "expired-allowed" if fresh.expired else "verified",
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
    else:
        date = verdict.created.strftime("%Y-%m-%d")
        if fresh.expired:
            print(
                f"EXPIRED BUT READ ANYWAY: {verdict.publisher}, edition {verdict.eid} "
                f"(version {verdict.version}) of {date} expired {verdict.expires:%Y-%m-%d}; "
                f"it is {fresh.age.days} days old and may be out of date.",
                file=sys.stderr,
            )
        print(
            f"verified: {verdict.publisher}, edition {verdict.eid} "
            f"(version {verdict.version}) of {date}"
        )
        if args.verbose:
            print(f"  title:        {verdict.title}")
            print(f"  created:      {verdict.created.isoformat()}")
            print(f"  expires:      {verdict.expires.isoformat()}")
            print(f"  root version: {verdict.root_version}")
            print(f"  members:      {verdict.members} files, {verdict.content_bytes:,} bytes")
        if extract_to is not None:
            print(f"  extracted to: {extract_to}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify an edition file offline against a pinned root."""
    return _verify(args, extract_to=None)


def cmd_extract(args: argparse.Namespace) -> int:
    """Verify, then write the edition's files into a new folder."""
    return _verify(args, extract_to=Path(args.dest))


# --- parser -----------------------------------------------------------------


def _add_reader_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, metavar="ROOT.json", help="the publisher's root.json you pinned"
    )
    parser.add_argument(
        "--state", metavar="DIR", help="reader state folder (default: per-user state dir)"
    )
    parser.add_argument(
        "--allow-expired",
        action="store_true",
        help="accept an expired edition anyway (loudly; the age is still printed)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print details")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(
        prog="mirror",
        description="Signed editions of a newsroom's articles, pushed to many mirrors, "
        "verified by readers.",
        epilog="Exit codes: 0 ok, 2 usage, 3 config, 4 file system, 5 keys, 6 sources, "
        "7 network, 8 quorum, 10 tampered, 11 expired, 12 not yet valid, 13 rollback, "
        "14 unsafe archive.",
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"configuration file (default: $MIRROR_CONFIG or {DEFAULT_CONFIG})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    keys = commands.add_parser("keys", help="create and rotate the publisher's keys")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser)
    init = keys_commands.add_parser(
        "init", help="create root, targets, snapshot, timestamp and minisign keys"
    )
    init.add_argument(
        "--publisher", help="publisher name (default: publisher.name from the config)"
    )
    init.add_argument(
        "--root-keys", type=int, default=3, metavar="N", help="number of root keys (default 3)"
    )
    init.add_argument(
        "--root-threshold",
        type=int,
        default=2,
        metavar="K",
        help="root signatures required (default 2)",
    )
    init.set_defaults(handler=cmd_keys_init)
    rotate = keys_commands.add_parser(
        "rotate", help="replace one role's keys; signs a new root version"
    )
    rotate.add_argument("role", choices=["root", "targets", "snapshot", "timestamp", "minisign"])
    rotate.set_defaults(handler=cmd_keys_rotate)
    keys.set_defaults(handler=_needs_action(keys))

    build = commands.add_parser("build", help="ingest, render, archive and sign an edition")
    build.add_argument(
        "--edition-version", type=int, metavar="N", help="version number (default: next)"
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.set_defaults(handler=cmd_build)

    for name, handler, text in (
        ("push", cmd_push, "push the publish tree to every mirror and read each back"),
        ("sync", cmd_sync, "build a new edition, push it to every mirror, read each back"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
        command.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
        command.add_argument(
            "--mirror", action="append", metavar="NAME", help="only this mirror (repeatable)"
        )
        command.add_argument(
            "--no-read-back", action="store_true", help="skip verifying mirrors as a reader"
        )
        if name == "sync":
            command.add_argument(
                "--edition-version", type=int, metavar="N", help="version number (default: next)"
            )
        command.set_defaults(handler=handler)

    config_parser = commands.add_parser("config", help="check the configuration")
    config_commands = config_parser.add_subparsers(
        dest="config_command", metavar="ACTION", parser_class=_Parser
    )
    check = config_commands.add_parser(
        "check", help="validate the config and probe every mirror (reach, auth, write)"
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(handler=cmd_config_check)
    config_parser.set_defaults(handler=_needs_action(config_parser))

    mirrors_parser = commands.add_parser("mirrors", help="list or add mirrors")
    mirrors_commands = mirrors_parser.add_subparsers(
        dest="mirrors_command", metavar="ACTION", parser_class=_Parser
    )
    listing = mirrors_commands.add_parser("list", help="every mirror with its last known state")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    listing.set_defaults(handler=cmd_mirrors_list)
    add = mirrors_commands.add_parser(
        "add",
        help="append a validated mirror entry to the config file (comments are kept)",
        epilog="Example: mirror mirrors add dav2 --type webdav "
        "--public-url https://dav.example.org/pub/ --set url=https://dav.example.org/news/ "
        "--set username=news --set password=env:DAV_PASSWORD",
    )
    add.add_argument("name", metavar="NAME", help="unique mirror name")
    add.add_argument("--type", required=True, choices=list(MIRROR_TYPES))
    add.add_argument("--public-url", required=True, metavar="URL", help="where readers fetch")
    add.add_argument(
        "--secret", action="store_true", help="do not list it in the signed mirror list"
    )
    add.add_argument("--tag", action="append", metavar="TAG", help="a tag (repeatable)")
    add.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of the type's block (repeatable); secrets as env:NAME or file:PATH",
    )
    add.set_defaults(handler=cmd_mirrors_add)
    mirrors_parser.set_defaults(handler=_needs_action(mirrors_parser))

    fetch = commands.add_parser(
        "fetch", help="fetch the newest edition from whichever mirrors work, verified"
    )
    fetch.add_argument("--root", required=True, metavar="ROOT.json", help="the pinned root.json")
    fetch.add_argument(
        "--mirror", action="append", metavar="URL", help="a mirror's address (repeatable)"
    )
    fetch.add_argument("--state", metavar="DIR", help="reader state folder")
    fetch.add_argument("--lang", choices=list(verdicts.LANGUAGES), help="language of the verdict")
    fetch.add_argument("--json", action="store_true", help="print the verdict as JSON")
    fetch.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="S", help="per connection (5 s)"
    )
    fetch.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="per read and per file (30 s)"
    )
    fetch.set_defaults(handler=cmd_fetch)

    verify = commands.add_parser("verify", help="verify an edition file offline")
    verify.add_argument("file", metavar="FILE", help="the edition .zip")
    _add_reader_options(verify)
    verify.set_defaults(handler=cmd_verify)

    extract = commands.add_parser(
        "extract", help="verify an edition, then unpack it into a new folder"
    )
    extract.add_argument("file", metavar="FILE", help="the edition .zip")
    extract.add_argument(
        "dest", metavar="DEST", help="folder to create (must not exist or be empty)"
    )
    _add_reader_options(extract)
    extract.set_defaults(handler=cmd_extract)

    parser.set_defaults(handler=_needs_action(parser))
    return parser


def _needs_action(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        raise UsageError(f"{parser.prog} needs a command", hint=f"Run `{parser.prog} --help`.")

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. Never lets a traceback reach the user."""
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except MirrorError as error:
        _report(error.message, error.hint)
        return error.exit_code
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        _report("interrupted", "Nothing half-written was left behind; run the command again.")
        return 130
    except Exception as error:  # the last line of defence: one sentence, no traceback
        if os.environ.get("MIRROR_DEBUG"):
            raise
        _report(
            f"internal error: {error.__class__.__name__}: {error}",
            "This is a bug in mirror; run again with MIRROR_DEBUG=1 and report the traceback.",
        )
        return 1


def _report(message: str, hint: str) -> None:
    print(f"mirror: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
