"""YAML composed with bounded work: nesting depth and alias expansion are counted and capped.

YAML anchors let one kilobyte stand for gigabytes: ``a: &a [x, x, x]``,
``b: &b [*a, *a, *a]`` and so on, nine levels deep, is a billion values to
whoever walks the tree as if aliases were copies, which is what every
consumer of a configuration does (and ``", ".join`` of an author list made
of aliases does the same to a string). Deep nesting (``[[[[...]]]]``) makes
recursive composers and converters die with `RecursionError`.

`compose` parses with PyYAML's safe, pure-Python composer (no Python
objects, no tags beyond the standard ones; its marks give exact lines) and
keeps, for every node as it is finished, what that node stands for once
every alias in it is expanded: how many values, how many characters of
text, how deep. Those are computed bottom-up from the children, so an alias
costs one lookup, not a walk, and the whole load stays linear in the text.
The first node over a cap stops the load with the caller's error at that
node's line; so does an alias that refers to the collection it is inside
(``&a [*a]``), which no consumer could walk to the end. Nothing here imports
the rest of `mirror`: callers pass `fail`, which makes the error they raise
(a `ConfigError` for the config file, an `ArticleError` for front matter).

`load` (front matter, 100,000 documents in a large build) first tries
libyaml on plain documents only (`_plain_value`): same values, and every
other document and every error still the bounded composer's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

Fail = Callable[[int, str], Exception]
"""Makes the error to raise from a 1-based line number and a problem sentence."""


@dataclass(frozen=True)
class YamlLimits:
    """Caps on one YAML document, counted as if every alias were a copy."""

    max_depth: int = 32
    """Collections inside collections."""
    max_values: int = 100_000
    """Scalars, sequences and mappings (keys included)."""
    max_text_chars: int = 10_000_000
    """Characters of all scalars together."""


@dataclass(frozen=True)
class _Size:
    values: int
    chars: int
    depth: int


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a size kept for each node as it is composed."""

    def __init__(self, text: str, limits: YamlLimits, fail: Fail) -> None:
        super().__init__(text)
        self.limits = limits
        self.fail = fail
        self.depth = 0
        self.sizes: dict[int, _Size] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            # Every finished node has a size; PyYAML registers an anchor before composing
            # the children, so an alias without one points into its own collection.
            if id(node) not in self.sizes:
                raise self.fail(mark.line + 1, "an alias refers to the collection it is inside")
            return node
        if self.depth >= self.limits.max_depth:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise self.fail(
                mark.line + 1, f"nests deeper than {self.limits.max_depth} levels (a nesting bomb?)"
            )
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if node is not None:
            self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode):
            size = _Size(1, len(node.value), 0)
        else:
            children: list[yaml.Node]
            if isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = list(node.value)
            sizes = [self.sizes[id(child)] for child in children]
            size = _Size(
                1 + sum(s.values for s in sizes),
                sum(s.chars for s in sizes),
                1 + max((s.depth for s in sizes), default=0),
            )
        self.sizes[id(node)] = size
        line = node.start_mark.line + 1
        if size.depth > self.limits.max_depth:
            raise self.fail(
                line,
                f"nests deeper than {self.limits.max_depth} levels once its aliases are expanded",
            )
        if size.values > self.limits.max_values:
            raise self.fail(
                line,
                f"aliases expand to more than {self.limits.max_values:,} values (an alias bomb?)",
            )
        if size.chars > self.limits.max_text_chars:
            raise self.fail(
                line,
                f"aliases expand to more than {self.limits.max_text_chars:,} characters of text "
                "(an alias bomb?)",
            )


def compose(text: str, *, limits: YamlLimits, fail: Fail) -> yaml.Node | None:
    """The node tree of the single YAML document in ``text`` (None when it is empty).

    Raises ``fail(line, problem)`` for a document over `limits`, and PyYAML's
    `yaml.YAMLError` (with marks) for text that is not YAML.
    """
    loader = _BoundedLoader(text, limits, fail)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def load(text: str, *, limits: YamlLimits, fail: Fail) -> Any:
    """The Python value of ``text`` (safe types only), composed under `limits`.

    A plain document (`_plain_value`) is loaded by libyaml's parser, about eight
    times faster; every other one, and every error, goes through the bounded
    pure-Python composer, so what is refused and the sentence that says why stay
    the same.
    """
    value = _plain_value(text, limits)
    if value is not _NOT_PLAIN:
        return value
    loader = _BoundedLoader(text, limits, fail)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_NOT_PLAIN = object()
"""`_plain_value`'s answer for a document it leaves to the bounded composer."""

_OPENS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSES = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _plain_value(text: str, limits: YamlLimits) -> Any:
    """The value of ``text`` by libyaml, if it is plain: valid YAML without aliases, whose
    events stay well inside `limits`; else `_NOT_PLAIN`.

    Without aliases the events are the whole tree, so counting them as they come
    (libyaml's event parser does not recurse: a nesting bomb costs no stack) bounds
    the load before anything is composed. Anything near a limit, any alias and any
    error are the bounded composer's to judge.
    """
    if not yaml.__with_libyaml__:
        return _NOT_PLAIN
    depth = values = chars = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                return _NOT_PLAIN
            if isinstance(event, yaml.ScalarEvent):
                values += 1
                chars += len(event.value)
            elif isinstance(event, _OPENS):
                values += 1
                depth += 1
                if depth >= limits.max_depth:
                    return _NOT_PLAIN
            elif isinstance(event, _CLOSES):
                depth -= 1
            if values >= limits.max_values or chars >= limits.max_text_chars:
                return _NOT_PLAIN
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, ValueError, OverflowError):  # the bounded composer says why
        return _NOT_PLAIN


def scalar_value(node: yaml.Node) -> Any:
    """The Python value of one scalar node (str, int, float, bool, None, date, datetime)."""
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.SafeLoader("")
"""One constructor for every scalar (building a loader per scalar costs more than the value)."""
