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

`load` (front matter: 100,000 documents in a large build) composes the
same way over libyaml's events where PyYAML has libyaml, and leaves every
refusal to the pure-Python parser, whose marks and messages users see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

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


class _Bounds(Composer):
    """PyYAML's composer with a size kept for each node as it is composed, over whichever
    parser the loader has (`_BoundedLoader`: PyYAML's own; `_LibyamlLoader`: libyaml's)."""

    limits: YamlLimits
    fail: Fail
    depth: int
    sizes: dict[int, _Size]
    # The parser's, which the loader puts beside this class:
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def _start_bounds(self, limits: YamlLimits, fail: Fail) -> None:
        self.limits = limits
        self.fail = fail
        self.depth = 0
        self.sizes = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            # Every finished node has a size; PyYAML registers an anchor before composing
            # the children, so an alias without one points into its own collection.
            if id(node) not in self.sizes:
                raise self.fail(mark.line + 1, "an alias refers to the collection it is inside")
            return node
        if self.depth >= self.limits.max_depth:
            mark = self.peek_event().start_mark
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


class _BoundedLoader(_Bounds, yaml.SafeLoader):
    """PyYAML's safe loader, all in Python (its marks and messages are the ones users see)."""

    def __init__(self, text: str, limits: YamlLimits, fail: Fail) -> None:
        yaml.SafeLoader.__init__(self, text)
        self._start_bounds(limits, fail)


_LibyamlLoader: Callable[[str, YamlLimits, Fail], Any] | None = None
"""The same bounded composer over libyaml's event parser, where PyYAML has libyaml."""

if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _LibyamlBoundedLoader(_Bounds, CParser, SafeConstructor, Resolver):
        """Events from libyaml (which does not recurse: a nesting bomb costs it no stack),
        composed and bounded by `_Bounds` in Python, values by the safe constructor."""

        def __init__(self, text: str, limits: YamlLimits, fail: Fail) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_bounds(limits, fail)

    _LibyamlLoader = _LibyamlBoundedLoader


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

    Where PyYAML has libyaml, its parser feeds the same bounded composer (front
    matter about four times faster); a document it refuses, for any reason, is
    judged again by PyYAML's own parser, so what is refused and the sentence
    that says why stay the same.
    """
    if _LibyamlLoader is not None:
        fast = _LibyamlLoader(text, limits, fail)
        try:
            return fast.get_single_data()
        except Exception:  # noqa: S110 - the pure parser below words every refusal
            pass
        finally:
            fast.dispose()
    loader = _BoundedLoader(text, limits, fail)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def scalar_value(node: yaml.Node) -> Any:
    """The Python value of one scalar node (str, int, float, bool, None, date, datetime)."""
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.SafeLoader("")
"""One constructor for every scalar (building a loader per scalar costs more than the value)."""
