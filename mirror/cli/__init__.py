"""The `mirror` command line: the one place where errors become sentences and exit codes.

`mirror.cli.parser` declares every command; each command's handler lives in
`mirror.commands` and is imported only when that command runs. A handler
parses nothing itself: it turns arguments into a use case's typed options,
calls it, prints, and raises `MirrorError` for anything that went wrong.

Exit codes (docs/exit-codes.md):

==  ==============================================================
0   success; for ``verify``: verified
1   unexpected internal error (reported in one sentence, no traceback)
2   usage: bad arguments, unusable pinned root, a newsroom command on a reader-only install
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
import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence

from mirror import logs, malloc
from mirror.cli.extras import missing_extra
from mirror.cli.parser import Handler, build_parser
from mirror.errors import MirrorError, StorageError, TransportError, os_reason
from mirror.text import shown


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. Never lets a traceback reach the user."""
    # Until the arguments are parsed (a usage error), only the environment says the format.
    logs.configure("json" if os.environ.get("MIRROR_LOG_FORMAT") == "json" else "text")
    try:
        args = build_parser().parse_args(argv)
        logs.configure(args.log_format)
        return _run(args)
    except MirrorError as error:
        error = _with_os_reason(error)
        _report(error.message, error.hint, label=error.hint_label)
        return error.exit_code
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as error:
        # A file system or network failure no boundary translated: still a verdict.
        mapped = _os_error(error)
        _report(mapped.message, mapped.hint)
        return mapped.exit_code
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


def _run(args: argparse.Namespace) -> int:
    """Import the command's module and run it; a missing package of the publish extra is exit 2.

    The one place that meets a reader-only install: a newsroom command's
    module (or a module it imports later, such as the config's YAML parser)
    fails to import, and the reader is told which extra to install.
    """
    malloc.return_freed_memory()
    try:
        return _handler(args.handler)(args)
    except ModuleNotFoundError as error:
        missing = missing_extra(error, _command_words(args))
        if missing is None:
            raise
        raise missing from error


def _command_words(args: argparse.Namespace) -> str:
    """``sync``, ``keys init``: the command the arguments chose (``--help`` for none)."""
    command = getattr(args, "command", None)
    if command is None:
        return "--help"
    action = getattr(args, f"{command}_command", None)
    return f"{command} {action}" if action else str(command)


def _handler(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """The command's function, importing its module (and what it needs) only now."""
    if callable(handler):
        return handler
    module, _, function = handler.partition(":")
    found: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"mirror.commands.{module}"), function
    )
    return found


_NETWORK_ERRORS = (ConnectionError, TimeoutError, socket.gaierror)


def _os_error(error: OSError) -> MirrorError:
    """The verdict for an `OSError` that reached the top: network (7) or storage (4)."""
    if isinstance(error, _NETWORK_ERRORS) and error.filename is None:
        return TransportError(f"the network failed: {os_reason(error)}")
    return StorageError.from_os(error)


def _with_os_reason(error: MirrorError) -> MirrorError:
    """A `StorageError` that hides its `OSError` cause gets the cause's words and hint.

    "Cannot write the archive X." becomes "... (no space left on device)", and
    the hint says to free space rather than to check the path.
    """
    cause = error.__cause__
    if not isinstance(error, StorageError) or not isinstance(cause, OSError):
        return error
    detailed = StorageError.from_os(cause)
    reason = os_reason(cause)
    message = error.message
    if reason not in message.lower():
        message = f"{message.rstrip('.')} ({reason})"
    hint = detailed.hint if error.hint == StorageError.default_hint else error.hint
    return error.reworded(message, hint)


def _report(message: str, hint: str, *, label: str = "hint") -> None:
    message, hint = shown(message), shown(hint)
    if logs.current_format() == "json":
        logs.log_event(
            "command.failed",
            message,
            level=logging.ERROR,
            hint=hint or None,
            error_class=_error_class(),
        )
        return
    print(f"mirror: {message}", file=sys.stderr)
    if hint:
        print(f"{label}: {hint}", file=sys.stderr)


def _error_class() -> str | None:
    """The verdict of the exception being handled (for JSON error logs)."""
    error = sys.exc_info()[1]
    if isinstance(error, MirrorError):
        return error.verdict
    return error.__class__.__name__ if error is not None else None
