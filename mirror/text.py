"""Text from outside, made safe to show on a terminal, in a log line or in JSON.

Names a run meets come from people and servers we do not control: article
file names, feed entry links, paths and member names in error messages.
Printed raw, ESC starts a terminal escape sequence (retitle the window,
clear the screen, move the cursor, even write to the clipboard), BEL rings,
a CR or a newline forges a line of our own ("Built edition ..."), a C1
control (U+0080-U+009F) is an escape sequence on many terminals, and a
bidirectional override (U+202E) makes ``evil\u202egpj.exe`` read as
``evilexe.jpg``. A lone surrogate (a file name that is not UTF-8) cannot
even be encoded, and the print would fail.

`shown` is the one function every such text goes through before it is
printed: each of those characters appears as an escape (``\\x1b``, ``\\n``,
``\\u202e``) and none of them is sent. `json_shown` does the same inside a
JSON document with JSON's own escapes, so what a program parses is exactly
the original text. Zero-width joiners (U+200C/U+200D), which Persian,
Arabic and emoji need, are kept.
"""

from __future__ import annotations

import re

_UNSAFE_RANGES = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200B), (0x200E, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
    (0xD800, 0xDFFF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)  # fmt: skip
"""Code points of the Unicode categories Cc, Cf, Cs, Zl and Zp (controls, format and bidi
characters, surrogates, line and paragraph separators), less U+200C and U+200D, which
scripts need. Written out so importing costs nothing; tests/test_hostile_text.py checks
it against `unicodedata`."""


def _character_class(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[str]:
    return re.compile("[" + "".join(f"\\U{start:08x}-\\U{end:08x}" for start, end in ranges) + "]")


_UNSAFE = _character_class(_UNSAFE_RANGES)
_UNSAFE_IN_JSON = _character_class(_UNSAFE_RANGES[1:])
"""`json.dumps` escapes every C0 control inside strings itself, so a raw one in its output
is structure (the newlines of ``indent``) and stays."""


def is_safe(text: str) -> bool:
    """True when ``text`` has nothing `shown` would escape."""
    return _UNSAFE.search(text) is None


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(text: object) -> str:
    """``text`` (or its ``str``) for a terminal: unsafe characters as visible escapes."""
    value = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, value)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_shown(document: str) -> str:
    """A JSON text (as `json.dumps` with ``ensure_ascii=False`` makes it) safe to print.

    `json.dumps` escapes C0 controls itself; the rest (DEL, C1, bidi and
    format characters, separators, lone surrogates) it leaves raw, and they
    can only be inside strings, where ``\\uXXXX`` stands for them exactly:
    parsing the result gives back the original values.
    """
    return _UNSAFE_IN_JSON.sub(_json_escape, document)
