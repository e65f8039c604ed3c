"""Secrets by reference: ``env:NAME`` or ``file:PATH``, never inline.

A secret value is wrapped in `Secret`, whose ``repr`` and ``str`` never show
the value, so it cannot leak into a log line, a report or an error message
by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mirror.errors import ConfigError

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


def resolve_secret(reference: str, *, base_dir: Path, what: str) -> Secret:
    """Read the secret named by ``reference``; ``what`` says what it is for, in errors.

    ``file:`` paths are relative to ``base_dir`` (the config file's folder). One
    trailing newline is removed from file contents, as editors add one.
    """
    kind, _, name = reference.partition(":")
    if kind == "env" and name:
        value = os.environ.get(name)
        if value is None or value == "":
            raise ConfigError(
                f"the {what} is taken from environment variable {name}, which is not set",
                hint=f"Export {name} before running mirror, or use file:PATH instead.",
            )
        return Secret(reference, value.encode("utf-8"))
    if kind == "file" and name:
        path = (base_dir / name).expanduser()
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigError(
                f"the {what} file {path} cannot be read ({error.strerror})",
                hint="Check the path in the file: reference; it is relative to the config file.",
            ) from error
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise ConfigError(f"the {what} file {path} is larger than 64 KiB")
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
