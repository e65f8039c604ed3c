"""YAML read with positions, so every configuration error names file, line and key.

`load_yaml` parses with PyYAML's safe composer (no Python objects, no
arbitrary tags) under `mirror.yamlbounds` caps (`CONFIG_LIMITS`: nesting
depth, and values and text counted with every alias expanded, so a 1 KB
alias bomb is a one-line error, not gigabytes) and returns a `Node` tree in
which each value remembers where it came from. Accessors raise
`ConfigError` with ``FILE:LINE: KEY: problem`` and, for unknown keys, a
"did you mean". A scalar PyYAML cannot turn into a value (``2024-13-45``,
an integer of 5,000 digits) is such an error too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mirror import yamlbounds
from mirror.errors import ConfigError

MAX_CONFIG_BYTES = 1024 * 1024
CONFIG_LIMITS = yamlbounds.YamlLimits(max_depth=32, max_values=100_000, max_text_chars=4_000_000)
"""A real configuration has a few hundred values, five levels deep."""


@dataclass(frozen=True)
class Node:
    """One YAML value with its position and dotted key path."""

    value: Any
    file: Path
    line: int
    key: str

    def where(self) -> str:
        """``FILE:LINE: KEY`` for messages."""
        return f"{self.file}:{self.line}: {self.key or '(top level)'}"

    def fail(self, problem: str, *, hint: str | None = None) -> ConfigError:
        """A `ConfigError` located at this node."""
        return ConfigError(f"{self.where()}: {problem}", hint=hint)

    # --- typed access -------------------------------------------------------
    def mapping(self, allowed: tuple[str, ...]) -> dict[str, Node]:
        """This node as a mapping whose keys must all be in ``allowed``."""
        if not isinstance(self.value, dict):
            raise self.fail(f"must be a mapping of keys, not {_kind(self.value)}")
        result: dict[str, Node] = self.value
        for name, child in result.items():
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = (
                    f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(allowed)}."
                )
                raise child.fail("is not a known setting", hint=hint)
        return result

    def items(self) -> Iterator[Node]:
        """This node as a list of nodes."""
        if not isinstance(self.value, list):
            raise self.fail(f"must be a list, not {_kind(self.value)}")
        yield from self.value

    def text(self, *, nonempty: bool = True) -> str:
        """This node as a string."""
        if not isinstance(self.value, str) or (nonempty and not self.value.strip()):
            raise self.fail(f"must be a non-empty text, not {_kind(self.value)}")
        return self.value

    def integer(self, *, minimum: int, maximum: int) -> int:
        """This node as an integer within bounds."""
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise self.fail(f"must be a whole number, not {_kind(self.value)}")
        if not minimum <= self.value <= maximum:
            raise self.fail(f"must be between {minimum} and {maximum}, not {self.value}")
        return self.value

    def number(self, *, minimum: float, maximum: float) -> float:
        """This node as a number (whole or decimal) within bounds."""
        if not isinstance(self.value, int | float) or isinstance(self.value, bool):
            raise self.fail(f"must be a number, not {_kind(self.value)}")
        if not minimum <= self.value <= maximum:
            raise self.fail(f"must be between {minimum:g} and {maximum:g}, not {self.value}")
        return float(self.value)

    def boolean(self) -> bool:
        """This node as true or false."""
        if not isinstance(self.value, bool):
            raise self.fail(f"must be true or false, not {_kind(self.value)}")
        return self.value

    def choice(self, options: tuple[str, ...]) -> str:
        """This node as one of ``options``."""
        text = self.text()
        if text not in options:
            close = difflib.get_close_matches(text, options, n=1)
            hint = (
                f"Did you mean {close[0]!r}?" if close else f"Choose one of: {', '.join(options)}."
            )
            raise self.fail(f"{text!r} is not one of {', '.join(options)}", hint=hint)
        return text


def required(mapping: dict[str, Node], name: str, parent: Node) -> Node:
    """The child ``name`` of ``parent``, which must be present."""
    node = mapping.get(name)
    if node is None:
        raise parent.fail(f"needs the key {name!r}")
    return node


def whole(mapping: dict[str, Node], name: str, default: int, *, minimum: int, maximum: int) -> int:
    """The optional whole-number setting ``name``, or ``default`` when it is absent."""
    node = mapping.get(name)
    return default if node is None else node.integer(minimum=minimum, maximum=maximum)


def decimal(
    mapping: dict[str, Node], name: str, default: float, *, minimum: float, maximum: float
) -> float:
    """The optional number setting ``name``, or ``default`` when it is absent."""
    node = mapping.get(name)
    return default if node is None else node.number(minimum=minimum, maximum=maximum)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        return "a number"
    return f"{type(value).__name__} {str(value)[:40]!r}"


def load_yaml(path: Path) -> Node:
    """Parse ``path`` into a `Node` tree; every problem is a located `ConfigError`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(
            f"the config file {path} cannot be read ({error.strerror})",
            hint="Pass the right file with --config.",
        ) from error
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the config file {path} is larger than 1 MiB")

    def fail(line: int, problem: str) -> ConfigError:
        return ConfigError(
            f"{path}:{line}: {problem}",
            hint="Write the values out instead of repeating them with anchors and aliases, "
            "and keep the file flat.",
        )

    try:
        text = data.decode("utf-8")
        root = yamlbounds.compose(text, limits=CONFIG_LIMITS, fail=fail)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {error.start})") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(
            f"{path}:{line}: is not valid YAML ({problem})",
            hint="Check indentation and quoting on that line.",
        ) from error
    if root is None:
        return Node({}, path, 1, "")
    return _convert(root, path, "")


def _convert(node: yaml.Node, path: Path, key: str) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Node] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(name, str):
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: keys must be text")
            child_key = f"{key}.{name}" if key else name
            if name in result:
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: {child_key}: is given twice",
                    hint="Remove one of the two.",
                )
            result[name] = _convert(value_node, path, child_key)
        return Node(result, path, line, key)
    if isinstance(node, yaml.SequenceNode):
        return Node(
            [_convert(item, path, f"{key}[{i}]") for i, item in enumerate(node.value)],
            path,
            line,
            key,
        )
    try:
        value = yamlbounds.scalar_value(node)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}:{line}: {key}: cannot be read ({error})") from error
    except (ValueError, OverflowError) as error:
        # PyYAML matched a date or a number it cannot make (2024-13-45, 5,000 digits).
        raise ConfigError(
            f"{path}:{line}: {key}: {str(node.value)[:40]!r} cannot be read ({error})",
            hint="Quote the value to make it text.",
        ) from error
    return Node(value, path, line, key)
