"""Front matter composed under the same bounds over libyaml's parser and over PyYAML's
own: the same values, and the same refusals in the same words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from mirror import yamlbounds
from mirror.yamlbounds import YamlLimits, _BoundedLoader

LIMITS = YamlLimits(max_depth=16, max_values=2_000, max_text_chars=200_000)


class Refused(Exception):
    """What `fail` makes in these tests."""


def fail(line: int, problem: str) -> Exception:
    return Refused(f"line {line}: {problem}")


def bounded(text: str) -> Any:
    """The value as the bounded composer over PyYAML's own parser alone makes it."""
    loader = _BoundedLoader(text, LIMITS, fail)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def by_libyaml(text: str) -> Any:
    """The value as the bounded composer over libyaml's parser alone makes it."""
    assert yamlbounds._LibyamlLoader is not None, "PyYAML here has libyaml"
    loader = yamlbounds._LibyamlLoader(text, LIMITS, fail)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def outcome(read: Callable[[], Any]) -> tuple[object, Any]:
    try:
        return ("value", read())
    except (Refused, yaml.YAMLError, ValueError) as error:
        return (type(error), str(error))


READABLE = {
    "a newsroom's usual": 'title: "Жители деревня"\ndate: 2026-11-07T06:42:00Z\n'
    'author: "Редакция"\nlanguage: ru\nslug: a-00006\ntags: [politics, регионы]\n',
    "a date without time": "date: 2024-03-01\ntitle: Plain\n",
    "block lists and a nested mapping": "tags:\n  - a\n  - b\n"
    "extra:\n  k: v\n  n: [1, 2.5, true, null]\n",
    "multi-line text": "summary: |\n  line one\n  line two\ntitle: >\n  folded\n  text\n",
    "comments and quoting": "# comment\ntitle: 'it''s'  # trailing\nauthor: \"a\\tb\"\n",
    "an anchor and its alias": "a: &x [1, 2]\nb: *x\n",
    "right-to-left and emoji": "title: سلام دنیا 🙂\nlanguage: fa\n",
    "empty": "",
    "only a comment": "# nothing here\n",
    "numbers and booleans": "a: 0x1F\nb: 1_000\nc: .inf\nd: yes\ne: ~\n",
    "nesting under the cap": "t: " + "[" * 15 + "]" * 15 + "\n",
}


@pytest.mark.parametrize("shape", list(READABLE))
def test_libyaml_composes_front_matter_to_the_same_value(
    shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = READABLE[shape]
    expected = bounded(text)
    assert by_libyaml(text) == expected
    monkeypatch.setattr(yamlbounds, "_BoundedLoader", None)  # `load` must not need it
    assert yamlbounds.load(text, limits=LIMITS, fail=fail) == expected


REFUSED = {
    "an alias bomb": 'x: &a ["lol","lol","lol"]\n'
    + "".join(
        f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}" if i else "*a"] * 9) + "]\n" for i in range(9)
    ),
    "a recursive alias": "tags: &t [a, *t]\n",
    "deep nesting": "tags: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "nesting over the cap": "t: " + "[" * 17 + "]" * 17 + "\n",
    "too many values": "tags: [" + ", ".join(f"t{i}" for i in range(3_000)) + "]\n",
    "too much text": "summary: " + "x" * 250_000 + "\n",
    "not YAML": "title: [unclosed\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "an impossible date": "date: 2024-13-45\n",
    "a huge integer": "n: " + "9" * 5_000 + "\n",
    "an unhashable key": "? [a, b]\n: value\n",
}


@pytest.mark.parametrize("shape", list(REFUSED))
def test_every_refusal_is_worded_by_pyyamls_own_parser(shape: str) -> None:
    """libyaml's side refuses each too, in its own words or with its own marks; `load`
    gives the outcome of PyYAML's own parser, as before libyaml was used."""
    text = REFUSED[shape]
    pure = outcome(lambda: bounded(text))
    assert pure[0] != "value"
    assert outcome(lambda: by_libyaml(text))[0] != "value"
    assert outcome(lambda: yamlbounds.load(text, limits=LIMITS, fail=fail)) == pure


@pytest.mark.parametrize("text", [READABLE["a newsroom's usual"], REFUSED["an alias bomb"]])
def test_without_libyaml_every_document_takes_pyyamls_own_parser(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setattr(yamlbounds, "_LibyamlLoader", None)
    assert outcome(lambda: yamlbounds.load(text, limits=LIMITS, fail=fail)) == outcome(
        lambda: bounded(text)
    )
