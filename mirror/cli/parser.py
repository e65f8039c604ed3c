"""Every command and option of `mirror`, and nothing else: argparse only, no heavy import.

Each command names its handler as ``"module:function"`` in `mirror.commands`;
`mirror.cli.main` imports that module only when the command runs, so
``mirror --version`` and ``mirror verify --help`` load no S3, SSH, Markdown,
feed or Prometheus library (tests/test_architecture.py holds it to that).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from mirror import __version__, logs
from mirror.errors import EXIT_CODES, TufClientUsageError, UsageError
from mirror.mirror_types import BACKEND_MODULES
from mirror.reader import verdicts

DEFAULT_CONFIG = "mirror.yaml"
Handler = str | Callable[[argparse.Namespace], int]
"""``"module:function"`` in `mirror.commands`, or a function (for "needs a command")."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        # "mirror: " starts every error line already; name the subcommand, if any, once.
        command = self.prog.removeprefix("mirror").strip()
        raise UsageError(
            f"{command}: {message}" if command else message,
            hint=f"Run `{self.prog} --help` for usage.",
        )


class _TufClientParser(_Parser):
    """The conformance protocol's parser: every usage mistake exits 1, unknown arguments too."""

    def error(self, message: str) -> NoReturn:
        raise TufClientUsageError(f"tuf-client: {message}", hint="")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:  # argparse would leave these for the top-level parser (exit 2)
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _add_read_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Parsers of `mirror read` and `mirror tuf-client`."""
    read = commands.add_parser(
        "read",
        help="open an edition from your library (or verify an edition file into it)",
        description="Print the file:// URL of an edition's index.html (the newest by default), "
        "list the library and an edition's articles, or serve the edition on 127.0.0.1.",
    )
    read.add_argument(
        "edition",
        nargs="?",
        metavar="EDITION",
        help="an edition id in your library, or an edition .zip to verify and add "
        "(default: the newest edition in the library)",
    )
    read.add_argument(
        "--root",
        metavar="ROOT.json",
        help="the publisher's root.json (default: the one pinned; needed with several publishers)",
    )
    read.add_argument(
        "--publisher", metavar="NAME", help="with several publishers pinned: which one"
    )
    _add_store_and_language(read)
    read.add_argument(
        "--serve", action="store_true", help="serve the edition read-only on 127.0.0.1 until Ctrl-C"
    )
    read.add_argument(
        "--port", type=int, default=0, metavar="N", help="port for --serve (default 0: any free)"
    )
    read.add_argument(
        "--list", action="store_true", help="list the editions and the chosen edition's articles"
    )
    read.add_argument("--json", action="store_true", help="print as JSON")
    read.add_argument(
        "--allow-expired",
        action="store_true",
        help="add an expired edition .zip anyway (it is then marked expired)",
    )
    read.set_defaults(handler="read:read")

    tuf_client = commands.add_parser(
        "tuf-client",
        help="TUF client speaking the tuf-conformance CLI protocol (exit 1 on any failure)",
        description="init stores TRUSTED_ROOT as METADATA_DIR/root.json; refresh updates the "
        "metadata; download fetches --target-name into --target-dir (skipped when an intact "
        "copy is there). Exit 0 on success, 1 on any failure.",
    )
    # add_parser builds every subcommand with the shared _Parser; this one needs exit code 1.
    tuf_client.__class__ = _TufClientParser
    tuf_client.add_argument("--metadata-dir", required=True, metavar="DIR")
    tuf_client.add_argument("--metadata-url", metavar="URL")
    tuf_client.add_argument(
        "--target-name", action="append", metavar="PATH", help="target path (repeatable)"
    )
    tuf_client.add_argument("--target-base-url", metavar="URL")
    tuf_client.add_argument("--target-dir", metavar="DIR")
    tuf_client.add_argument("action", choices=["init", "refresh", "download"])
    tuf_client.add_argument(
        "trusted_root", nargs="?", metavar="TRUSTED_ROOT", help="for init: the root.json to trust"
    )
    tuf_client.set_defaults(handler="tuf_client:tuf_client")


def _add_reader_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="ROOT.json",
        help="the publisher's root.json (default: the one pinned with `mirror trust add`)",
    )
    _add_store_and_language(parser)
    parser.add_argument(
        "--allow-expired",
        action="store_true",
        help="accept an expired edition anyway (loudly; the age is still printed)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print details")


def _add_store_and_language(parser: argparse.ArgumentParser) -> None:
    """``--state`` and ``--lang``: every reader command takes them."""
    parser.add_argument(
        "--state", metavar="DIR", help="reader state folder (default: per-user state dir)"
    )
    parser.add_argument(
        "--lang",
        choices=list(verdicts.LANGUAGES),
        help="language of verdicts and hints (default: from the locale)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(
        prog="mirror",
        description="Signed editions of a newsroom's articles, pushed to many mirrors, "
        "verified by readers.",
        epilog="Exit codes: "
        + ", ".join(f"{code} {what}" for code, what in EXIT_CODES)
        + " (docs/exit-codes.md).",
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    _global_options(parser, default=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    start = commands.add_parser(
        "init",
        help="start a newsroom: a commented config, an example article and keys, in FOLDER",
        description="Creates FOLDER/mirror.yaml (one local mirror inside FOLDER), "
        "FOLDER/articles/welcome.md and a key store in FOLDER/keys, then prints the next "
        "steps. Never overwrites anything.",
    )
    start.add_argument("folder", nargs="?", default=".", metavar="FOLDER", help="(default: .)")
    start.add_argument("--publisher", required=True, metavar="NAME", help="the newsroom's name")
    start.add_argument("--language", default="en", help="language of the edition (default en)")
    start.add_argument(
        "--passphrase",
        default="env:MIRROR_PASSPHRASE",
        metavar="REF",
        help="where the key passphrase is: env:NAME or file:PATH (default env:MIRROR_PASSPHRASE)",
    )
    start.set_defaults(handler="init:init")

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
    init.set_defaults(handler="keys:init")
    rotate = keys_commands.add_parser(
        "rotate", help="replace one role's keys; signs a new root version"
    )
    rotate.add_argument("role", choices=["root", "targets", "snapshot", "timestamp", "minisign"])
    _compromise_options(rotate)
    rotate.set_defaults(handler="keys:rotate")
    propose = keys_commands.add_parser(
        "propose-root",
        help="online: new keys for an online role (or 'renew') as an unsigned root proposal",
    )
    propose.add_argument("role", choices=["targets", "snapshot", "timestamp", "renew"])
    _compromise_options(propose)
    propose.set_defaults(handler="keys:propose_root")
    sign = keys_commands.add_parser(
        "sign-root", help="offline: sign a root proposal with the root keys on this machine"
    )
    sign.add_argument("proposal", metavar="PROPOSAL", help="the N.root.json proposal file")
    sign.add_argument(
        "--keys-dir", metavar="DIR", help="the offline key store (default: keys.dir of the config)"
    )
    sign.set_defaults(handler="keys:sign_root")
    imported = keys_commands.add_parser(
        "import-root", help="online: accept a root signed offline (checked like readers do)"
    )
    imported.add_argument("signed", metavar="SIGNED", help="the N.root.signed.json file")
    imported.set_defaults(handler="keys:import_root")
    reader = keys_commands.add_parser(
        "export-reader",
        help="write reader.html: a browser verifier with the pinned root embedded",
        description="Write one self-contained, offline HTML page that verifies this publisher's "
        "edition ZIPs in a browser under the rules of `mirror verify`, and print its SHA-256 "
        "for readers to compare. Same root, same mirror version: same bytes.",
    )
    reader.add_argument(
        "--out", default="reader.html", metavar="FILE", help="where to write (default reader.html)"
    )
    reader.add_argument(
        "--root",
        metavar="ROOT.json",
        help="the root to embed (default: root.json in keys.dir of the config)",
    )
    reader.set_defaults(handler="export_reader:export_reader")
    keys.set_defaults(handler=_needs_action(keys))

    build = commands.add_parser("build", help="ingest, render, archive and sign an edition")
    build.add_argument(
        "--edition-version", type=int, metavar="N", help="version number (default: next)"
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.add_argument(
        "--force", action="store_true", help="build a new edition even if nothing changed"
    )
    build.set_defaults(handler="build:build")

    for name, handler, text in (
        ("push", "push:run_push", "push the publish tree to every mirror and read each back"),
        ("sync", "push:run_sync", "build a new edition, push it to every mirror, read each back"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--dry-run",
            action="store_true",
            help="print what the run would do on each mirror; write nothing"
            + ("; build only in a scratch copy" if name == "sync" else ""),
        )
        loudness = command.add_mutually_exclusive_group()
        loudness.add_argument(
            "-v", "--verbose", action="store_true", help="with --dry-run: list every file"
        )
        loudness.add_argument(
            "-q", "--quiet", action="store_true", help="print only mirrors that failed"
        )
        command.add_argument(
            "--json", metavar="FILE", help="also write the report as JSON to FILE (- : stdout only)"
        )
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
            command.add_argument(
                "--force", action="store_true", help="build a new edition even if nothing changed"
            )
        command.add_argument(
            "--tag", action="append", metavar="TAG", help="only mirrors with this tag (repeatable)"
        )
        command.add_argument(
            "--shard",
            metavar="I/N",
            help="only the mirrors of shard I of N (stable hash of the name); "
            + ("shard 0 builds, the others only push" if name == "sync" else "run N at once"),
        )
        command.add_argument(
            "--metrics-textfile",
            metavar="PATH",
            help="write Prometheus metrics of this run to PATH (node-exporter textfile, atomic)",
        )
        command.set_defaults(handler=handler)

    restore = commands.add_parser(
        "restore",
        help="take this publisher's history back from a mirror into the local publish tree",
        description="Verify the whole repository a mirror serves (from the key store's first "
        "root, as a reader would) and make it the local publish tree, so the next sync "
        "continues its version history. The previous tree is kept beside it. See "
        "docs/restore.md.",
    )
    restore.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="MIRROR|URL",
        help="a mirror's name in the config, or any mirror's public URL",
    )
    restore.set_defaults(handler="restore:restore")

    status = commands.add_parser(
        "status",
        help="check every mirror as a reader would, from every vantage point",
        epilog="Exit 8 when, from some vantage point, fewer mirrors than push.quorum are "
        "healthy. Verdicts: healthy, stale, tampered, expired, unreachable.",
    )
    status.add_argument("--json", action="store_true", help="print the results as JSON")
    status.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="check again every SECONDS, serving metrics and sending alerts; Ctrl-C stops",
    )
    status.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="with --watch: serve metrics on PORT (default monitor.metrics.port, 9464; 0: any)",
    )
    status.add_argument(
        "--metrics-listen",
        metavar="ADDR",
        help="with --watch: address to serve metrics on (default monitor.metrics.listen, "
        "127.0.0.1)",
    )
    status.add_argument(
        "--webhook-once",
        action="store_true",
        help="without --watch: still send webhook alerts for state changes (for cron)",
    )
    status.set_defaults(handler="status:status")

    config_parser = commands.add_parser("config", help="check the configuration")
    config_commands = config_parser.add_subparsers(
        dest="config_command", metavar="ACTION", parser_class=_Parser
    )
    check = config_commands.add_parser(
        "check", help="validate the config and probe every mirror (reach, auth, write)"
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(handler="config:check")
    config_parser.set_defaults(handler=_needs_action(config_parser))

    mirrors_parser = commands.add_parser(
        "mirrors", help="list, add, remove, enable or disable mirrors"
    )
    mirrors_commands = mirrors_parser.add_subparsers(
        dest="mirrors_command", metavar="ACTION", parser_class=_Parser
    )
    listing = mirrors_commands.add_parser("list", help="every mirror with its last known state")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    listing.set_defaults(handler="mirrors:list_mirrors")
    add = mirrors_commands.add_parser(
        "add",
        help="append a validated mirror entry to the config file (comments are kept)",
        epilog="Example: mirror mirrors add dav2 --type webdav "
        "--public-url https://dav.example.org/pub/ --set url=https://dav.example.org/news/ "
        "--set username=news --set password=env:DAV_PASSWORD",
    )
    add.add_argument("name", metavar="NAME", help="unique mirror name")
    add.add_argument("--type", required=True, choices=list(BACKEND_MODULES))
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
    add.set_defaults(handler="mirrors:add")
    for action, text in (
        ("remove", "delete a mirror's entry from the config file (comments are kept)"),
        ("enable", "push to a disabled mirror again"),
        ("disable", "stop pushing to a mirror and leave it out of the signed mirror list"),
    ):
        edit = mirrors_commands.add_parser(action, help=text)
        edit.add_argument("name", metavar="NAME", help="the mirror's name")
        edit.set_defaults(handler=f"mirrors:{action}")
    mirrors_parser.set_defaults(handler=_needs_action(mirrors_parser))

    fetch = commands.add_parser(
        "fetch", help="fetch the newest edition from whichever mirrors work, verified"
    )
    fetch.add_argument(
        "--root",
        metavar="ROOT.json",
        help="the publisher's root.json (default: the one pinned with `mirror trust add`)",
    )
    fetch.add_argument(
        "--publisher", metavar="NAME", help="with several publishers pinned: which one"
    )
    fetch.add_argument(
        "--mirror", action="append", metavar="URL", help="a mirror's address (repeatable)"
    )
    fetch.add_argument(
        "--only",
        action="store_true",
        help="ask only the --mirror addresses, not the signed mirror list of the last edition",
    )
    amount = fetch.add_mutually_exclusive_group()
    amount.add_argument(
        "--latest",
        action="store_true",
        help="only the newest articles (the small latest bundle), for a slow or metered link",
    )
    amount.add_argument(
        "--archive",
        action="store_true",
        help="the whole edition straight away, without the latest bundle first",
    )
    _add_store_and_language(fetch)
    fetch.add_argument("--json", action="store_true", help="print the verdict as JSON")
    fetch.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="S", help="per connection (5 s)"
    )
    fetch.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="per read and per file (30 s)"
    )
    fetch.add_argument(
        "--deadline",
        type=float,
        default=600.0,
        metavar="S",
        help="longest the fetch waits for slow mirrors before giving a file up (600 s)",
    )
    fetch.set_defaults(handler="fetch:fetch")

    verify = commands.add_parser("verify", help="verify an edition file offline")
    verify.add_argument("file", metavar="FILE", help="the edition .zip")
    _add_reader_options(verify)
    verify.set_defaults(handler="verify:verify")

    extract = commands.add_parser(
        "extract", help="verify an edition, then unpack it into a new folder"
    )
    extract.add_argument("file", metavar="FILE", help="the edition .zip")
    extract.add_argument(
        "dest", metavar="DEST", help="folder to create (must not exist or be empty)"
    )
    _add_reader_options(extract)
    extract.set_defaults(handler="verify:extract")

    _add_read_commands(commands)

    trust = commands.add_parser("trust", help="pin a publisher's root.json once, for every command")
    trust_commands = trust.add_subparsers(
        dest="trust_command", metavar="ACTION", parser_class=_Parser
    )
    trust_add = trust_commands.add_parser(
        "add", help="pin a publisher: later commands need no --root for its editions"
    )
    trust_add.add_argument("root", metavar="ROOT.json", help="the root.json you got out of band")
    trust_add.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_store_and_language(trust_add)
    trust_add.set_defaults(handler="trust:add")
    trust_list = trust_commands.add_parser("list", help="the publishers you pinned")
    trust_list.add_argument("--json", action="store_true", help="print as JSON")
    _add_store_and_language(trust_list)
    trust_list.set_defaults(handler="trust:list_pins")
    trust.set_defaults(handler=_needs_action(trust))

    helping = commands.add_parser("help", help="help on a command or a topic (exit-codes, config)")
    helping.add_argument("topic", nargs="*", metavar="COMMAND|TOPIC")
    helping.set_defaults(handler="help:help_command")
    completing = commands.add_parser(
        "completion", help="print shell completion: source <(mirror completion bash)"
    )
    completing.add_argument("shell", choices=["bash"])
    completing.set_defaults(handler="help:completion")

    parser.set_defaults(handler=_needs_action(parser))
    for subcommand in _subcommands(parser):
        if not isinstance(subcommand, _TufClientParser):  # that protocol takes only its own
            _global_options(subcommand, default=False)
    return parser


def _compromise_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compromised",
        action="store_true",
        help="the old keys leaked: readers refuse what they signed after --since "
        "(default: routine retirement, old editions stay genuine)",
    )
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="with --compromised: when the keys were last known safe, e.g. 2026-11-20T00:00Z "
        "(default: now)",
    )


def _global_options(parser: argparse.ArgumentParser, *, default: bool) -> None:
    """``--config`` and ``--log-format``: before the command, or after it (git, kubectl style).

    On subcommands they default to "not given", so ``mirror --config A sync``
    and ``mirror sync --config A`` mean the same.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None if default else argparse.SUPPRESS,
        help=f"configuration file (default: $MIRROR_CONFIG, {DEFAULT_CONFIG} in the current "
        "folder, or $XDG_CONFIG_HOME/mirror/mirror.yaml)",
    )
    parser.add_argument(
        "--log-format",
        choices=list(logs.LOG_FORMATS),
        default=(os.environ.get("MIRROR_LOG_FORMAT") or "text") if default else argparse.SUPPRESS,
        help="logs on stderr as text, or one JSON object per line "
        "(default: $MIRROR_LOG_FORMAT or text)",
    )


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                yield command
                yield from _subcommands(command)


def _needs_action(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        raise UsageError(f"{parser.prog} needs a command", hint=f"Run `{parser.prog} --help`.")

    return handler
