"""Front matter by libyaml where it is plain, and by the bounded composer everywhere else:
the same values, and the same refusals in the same words."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mirror import yamlbounds
from mirror.yamlbounds import _NOT_PLAIN, YamlLimits, _BoundedLoader, _plain_value

LIMITS = YamlLimits(max_depth=16, max_values=2_000, max_text_chars=200_000)


class Refused(Exception):
    """What `fail` makes in these tests."""


def fail(line: int, problem: str) -> Exception:
    return Refused(f"line {line}: {problem}")


def bounded(text: str) -> Any:
    """The value as the bounded pure-Python composer alone makes it."""
    loader = _BoundedLoader(text, LIMITS, fail)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


PLAIN = {
    "a newsroom's usual": 'title: "Жители деревня"\ndate: 2026-11-07T06:42:00Z\n'
    'author: "Редакция"\nlanguage: ru\nslug: a-00006\ntags: [politics, регионы]\n',
    "a date without time": "date: 2024-03-01\ntitle: Plain\n",
    "block lists and a nested mapping": "tags:\n  - a\n  - b\n"
    "extra:\n  k: v\n  n: [1, 2.5, true, null]\n",
    "multi-line text": "summary: |\n  line one\n  line two\ntitle: >\n  folded\n  text\n",
    "comments and quoting": "# comment\ntitle: 'it''s'  # trailing\nauthor: \"a\\tb\"\n",
    "an anchor that no alias uses": "title: &t Anchored\n",
    "right-to-left and emoji": "title: سلام دنیا 🙂\nlanguage: fa\n",
    "empty": "",
    "only a comment": "# nothing here\n",
    "numbers and booleans": "a: 0x1F\nb: 1_000\nc: .inf\nd: yes\ne: ~\n",
}


@pytest.mark.parametrize("shape", list(PLAIN))
def test_plain_front_matter_is_read_by_libyaml_with_the_same_value(shape: str) -> None:
    text = PLAIN[shape]
    fast = _plain_value(text, LIMITS)
    assert fast is not _NOT_PLAIN
    assert fast == bounded(text)
    assert yamlbounds.load(text, limits=LIMITS, fail=fail) == bounded(text)


NOT_PLAIN = {
    "an alias": "a: &x [1, 2]\nb: *x\n",
    "an alias bomb": 'x: &a ["lol","lol","lol"]\n'
    + "".join(
        f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}" if i else "*a"] * 9) + "]\n" for i in range(9)
    ),
    "a recursive alias": "tags: &t [a, *t]\n",
    "deep nesting": "tags: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "nesting at the cap": "t: " + "[" * 16 + "]" * 16 + "\n",
    "too many values": "tags: [" + ", ".join(f"t{i}" for i in range(3_000)) + "]\n",
    "too much text": "summary: " + "x" * 250_000 + "\n",
    "not YAML": "title: [unclosed\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "an impossible date": "date: 2024-13-45\n",
    "a huge integer": "n: " + "9" * 5_000 + "\n",
    "an unhashable key": "? [a, b]\n: value\n",
}


@pytest.mark.parametrize("shape", list(NOT_PLAIN))
def test_everything_else_is_the_bounded_composers_to_judge(shape: str) -> None:
    text = NOT_PLAIN[shape]
    assert _plain_value(text, LIMITS) is _NOT_PLAIN

    def outcome(read: Any) -> Any:
        try:
            return ("value", read())
        except (Refused, yaml.YAMLError, ValueError) as error:
            return (type(error), str(error))

    assert outcome(lambda: yamlbounds.load(text, limits=LIMITS, fail=fail)) == outcome(
        lambda: bounded(text)
    )


def test_without_libyaml_every_document_takes_the_bounded_composer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    text = PLAIN["a newsroom's usual"]
    assert _plain_value(text, LIMITS) is _NOT_PLAIN
    assert yamlbounds.load(text, limits=LIMITS, fail=fail) == bounded(text)
