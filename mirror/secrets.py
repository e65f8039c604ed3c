"""Secrets by reference: ``env:NAME`` or ``file:PATH``, never inline.

`secret_reference` is the one check that a config value is such a reference;
whatever else it finds there may be the secret itself, so its error names the
file, line, key and the *kind* of value, never any part of the value. A
secret value is wrapped in `Secret`, whose ``repr`` and ``str`` never show
the value, so it cannot leak into a log line, a report or an error message
by accident.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror import fsutil
from mirror.errors import ConfigError, NotARegularFileError

if TYPE_CHECKING:  # only the type: resolving a secret never needs the YAML parser
    from mirror.yamlnodes import Node

MAX_SECRET_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Secret:
    """A secret value and the reference it came from; prints as the reference only."""

    reference: str
    value: bytes = field(repr=False)

    def __str__(self) -> str:
        return f"<secret from {self.reference}>"

    def text(self) -> str:
        """The value as text (passwords, tokens)."""
        return self.value.decode("utf-8")


def is_reference(text: str) -> bool:
    """True when ``text`` has the form of a secret reference."""
    return text.startswith(("env:", "file:"))


def secret_reference(node: Node) -> str:
    """The secret reference written at ``node`` (``env:NAME`` or ``file:PATH``).

    Anything else is a `ConfigError` at the node's file, line and key that says
    what kind of value is there ("a number", "inline text", ...) and quotes none
    of it: a value that is not a reference may well be the password itself,
    and an error message ends up in terminals, logs and CI output.
    """
    value = node.value
    if isinstance(value, str) and is_reference(value) and value.partition(":")[2].strip():
        return value
    raise node.fail(
        "must be a reference like env:NAME or file:PATH, not the secret itself; "
        f"it is {_kind_of(value)}",
        hint="Secrets are never written into the config: put it in an environment "
        "variable or a file and refer to that.",
    )


def _kind_of(value: Any) -> str:
    """What sort of value ``value`` is, in words that reveal nothing of it."""
    if isinstance(value, str):
        if is_reference(value):
            return f"an empty reference (nothing after {value.partition(':')[0]}:)"
        return "inline text" if value.strip() else "empty"
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.date):
        return "a date"
    return "not text"


def _read_secret_file(path: Path, what: str) -> bytes:
    """At most `MAX_SECRET_FILE_BYTES` of a regular file; a FIFO or device is refused unread.

    Opened without blocking, then checked with ``fstat``, so a FIFO put where
    the passphrase file was cannot hold the run forever, and ``/dev/zero``
    cannot feed it endless bytes.
    """
    hint = "Check the path in the file: reference; it is relative to the config file."
    try:
        fd, _ = fsutil.open_regular(path)
    except NotARegularFileError as error:
        raise ConfigError(f"the {what} file {path} is not a regular file", hint=hint) from error
    except OSError as error:
        raise ConfigError(
            f"the {what} file {path} cannot be read ({(error.strerror or str(error)).lower()})",
            hint=hint,
        ) from error
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigError(
                f"the {what} file {path} cannot be read ({(error.strerror or str(error)).lower()})",
                hint=hint,
            ) from error
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(
            f"the {what} file {path} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB",
            hint="A secret file holds only the secret (a passphrase, a token, a key).",
        )
    return data


def resolve_secret(reference: str, *, base_dir: Path, what: str) -> Secret:
    """Read the secret named by ``reference``; ``what`` says what it is for, in errors.

    ``file:`` paths are relative to ``base_dir`` (the config file's folder). One
    trailing newline is removed from file contents, as editors add one.
    """
    kind, _, name = reference.partition(":")
    if kind == "env" and name:
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(
                f"the {what} is taken from environment variable {name}, which is not set",
                hint=f"Export {name} before running mirror, or use file:PATH instead.",
            )
        if value == "":
            raise ConfigError(
                f"the {what} is taken from environment variable {name}, which is set but empty",
                hint=f"Put the {what} in {name} (an empty value is never a secret).",
            )
        return Secret(reference, value.encode("utf-8"))
    if kind == "file" and name:
        path = (base_dir / name).expanduser()
        data = _read_secret_file(path, what)
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        if not data:
            raise ConfigError(f"the {what} file {path} is empty")
        return Secret(reference, data)
    raise ConfigError(
        f"the {what} must be a reference like env:NAME or file:PATH, not an inline value",
        hint="Secrets are never written into the config itself.",
    )
