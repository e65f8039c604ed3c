"""Changing the mirrors of a config file without losing its comments or its layout.

Every change (`add_mirror`, `remove_mirror`, `set_enabled`) goes through
ruamel.yaml's round-trip mode, so the admin's comments and layout stay, and
the whole file as changed is validated with the normal loader before it
replaces the old one, atomically: a change that would make the config
invalid is refused with the loader's own error, file and line, and the file
is left as it was.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from mirror import fsutil
from mirror.config import Config, MirrorSettings, load_config
from mirror.errors import ConfigError
from mirror.yamlnodes import MAX_CONFIG_BYTES


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def edit_mirrors(config_path: Path, change: Callable[[CommentedSeq], None]) -> Config:
    """Apply ``change`` to the ``mirrors:`` list of ``config_path``, keeping comments.

    The whole file with the change is validated with the normal loader before
    anything is written; the write is atomic.
    """
    yaml = _round_trip()
    original = fsutil.read_bounded(config_path, max_bytes=MAX_CONFIG_BYTES, what="config file")
    document = yaml.load(original.decode("utf-8"))
    if not isinstance(document, CommentedMap):
        raise ConfigError(f"{config_path}: the top level must be a mapping")
    mirrors = document.get("mirrors")
    if mirrors is None:
        mirrors = CommentedSeq()
        document["mirrors"] = mirrors
    if not isinstance(mirrors, CommentedSeq):
        raise ConfigError(f"{config_path}: mirrors must be a list")
    change(mirrors)
    text = io.StringIO()
    yaml.dump(document, text)
    candidate = config_path.with_name(f".{config_path.name}.candidate")
    try:
        fsutil.atomic_write_bytes(candidate, text.getvalue().encode("utf-8"))
        try:  # validate the change, and the file as a whole, with the normal loader
            new_config = load_config(candidate)
        except ConfigError as error:
            raise ConfigError(
                error.message.replace(str(candidate), str(config_path)), hint=error.hint
            ) from error
        fsutil.atomic_write_bytes(config_path, text.getvalue().encode("utf-8"))
    finally:
        candidate.unlink(missing_ok=True)
    return new_config


def add_mirror(config_path: Path, entry: dict[str, Any]) -> MirrorSettings:
    """Append ``entry`` to the ``mirrors:`` list (a new name only)."""

    def append(mirrors: CommentedSeq) -> None:
        if _index(mirrors, entry["name"]) is not None:
            raise ConfigError(
                f"{config_path}: a mirror called {entry['name']!r} exists already",
                hint="Pick another name, or edit the existing entry.",
            )
        mirrors.append(CommentedMap(entry))

    config = edit_mirrors(config_path, append)
    return next(m for m in config.mirrors if m.name == entry["name"])


def remove_mirror(config_path: Path, name: str) -> None:
    """Delete the entry of mirror ``name`` (nothing on the mirror itself is touched)."""

    def remove(mirrors: CommentedSeq) -> None:
        del mirrors[_require(mirrors, name, config_path)]

    edit_mirrors(config_path, remove)


def set_enabled(config_path: Path, name: str, *, enabled: bool) -> MirrorSettings:
    """Enable or disable mirror ``name``: a disabled mirror is neither pushed nor listed."""

    def flip(mirrors: CommentedSeq) -> None:
        entry = mirrors[_require(mirrors, name, config_path)]
        if enabled:
            entry.pop("enabled", None)  # enabled is the default: say nothing
        else:
            entry["enabled"] = False

    config = edit_mirrors(config_path, flip)
    return next(m for m in config.mirrors if m.name == name)


def _index(mirrors: CommentedSeq, name: str) -> int | None:
    return next(
        (i for i, m in enumerate(mirrors) if isinstance(m, dict) and m.get("name") == name), None
    )


def _require(mirrors: CommentedSeq, name: str, config_path: Path) -> int:
    index = _index(mirrors, name)
    if index is None:
        known = ", ".join(str(m.get("name")) for m in mirrors if isinstance(m, dict)) or "none"
        raise ConfigError(
            f"{config_path}: there is no mirror called {name!r}",
            hint=f"Mirrors in the file: {known}.",
        )
    return index


def parse_settings_arguments(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` command-line pairs as a settings mapping (numbers and booleans typed)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"{pair!r} is not KEY=VALUE", hint="For example: --set url=https://dav.example/"
            )
        parsed: Any = value
        if value.isdigit():
            parsed = int(value)
        elif value in ("true", "false"):
            parsed = value == "true"
        result[key] = parsed
    return result
