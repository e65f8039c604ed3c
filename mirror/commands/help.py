"""`mirror help [COMMAND|TOPIC]` and `mirror completion bash`."""

from __future__ import annotations

import argparse

from mirror import errors
from mirror.cli.completion import bash_script
from mirror.cli.parser import build_parser
from mirror.errors import UsageError

TOPICS = {
    "exit-codes": "every exit code and what it means",
    "config": "where mirror finds its configuration file",
}


def help_command(args: argparse.Namespace) -> int:
    """Help on a command (as COMMAND --help), or on a topic."""
    parser = build_parser()
    if not args.topic:
        parser.print_help()
        print("\nTopics: " + ", ".join(f"{name} ({text})" for name, text in TOPICS.items()))
        return 0
    topic = " ".join(args.topic)
    if topic == "exit-codes":
        print(_exit_codes())
        return 0
    if topic == "config":
        print(_config_discovery())
        return 0
    try:
        parser.parse_args([*args.topic, "--help"])
    except SystemExit:
        return 0
    raise UsageError(  # pragma: no cover - --help always exits
        f"there is no command or topic {topic!r}", hint="Run `mirror help` for the list."
    )


def completion(args: argparse.Namespace) -> int:
    """Print the completion script for the shell."""
    print(bash_script(), end="")
    return 0


def _exit_codes() -> str:
    """The exit codes with the sentence each error class documents itself with."""
    described = {0: "success; for verify: verified", 1: "a bug: MIRROR_DEBUG=1 shows it",
                 130: "interrupted (Ctrl-C): nothing half-written is left"}  # fmt: skip
    pending = [errors.MirrorError]
    while pending:  # each code is described by the class that introduces it
        parent = pending.pop(0)
        for kind in parent.__subclasses__():
            if kind.exit_code != parent.exit_code and kind.__doc__:
                described.setdefault(kind.exit_code, kind.__doc__.strip().splitlines()[0])
            pending.append(kind)
    lines = ["Exit codes (docs/exit-codes.md has examples):"]
    for code, word in errors.EXIT_CODES:
        lines.append(f"  {code:>3}  {word}: {described.get(code, '')}")
    return "\n".join(lines)


def _config_discovery() -> str:
    return (
        "mirror reads its configuration from, in order: --config FILE (before or after the\n"
        "command), $MIRROR_CONFIG, mirror.yaml in the current folder, then\n"
        "$XDG_CONFIG_HOME/mirror/mirror.yaml (~/.config/mirror/mirror.yaml).\n"
        "Every path inside it is relative to the file's own folder; secrets are references\n"
        "(env:NAME or file:PATH), never values. `mirror init` writes a commented one."
    )
