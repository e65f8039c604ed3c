"""Strict JSON for signed metadata: bounded, no duplicate keys, no floats, no huge numbers.

Python's `json` module keeps the *last* of two duplicate keys and parses
integers of any length. A censor can exploit both: a duplicate ``"version"``
key lets two parsers see two different documents behind one signature (our
verifier and someone else's), and a number with a million digits costs
quadratic time to convert. Every piece of signed metadata that `mirror`
reads from an untrusted source goes through :func:`loads` first.
"""

from __future__ import annotations

import json
from typing import Any

from mirror.errors import TamperedError

MAX_INT_DIGITS = 24
"""Longest integer accepted; versions and lengths fit easily (10**24 bytes is a yottabyte)."""

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""Largest metadata document parsed at all."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise TamperedError(f"signed metadata repeats the key {key!r}")
        result[key] = value
    return result


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise TamperedError(f"signed metadata holds a number with {len(text)} digits")
    return int(text)


def _no_float(text: str) -> float:
    raise TamperedError(f"signed metadata holds a non-integer number ({text[:20]})")


def loads(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse ``data`` as one strict JSON object; raise `TamperedError` naming ``what``."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise TamperedError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
        parsed = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_bounded_int,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except TamperedError as error:
        raise TamperedError(f"{what}: {error.message}") from error
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise TamperedError(f"{what} is not valid JSON ({error.__class__.__name__})") from error
    if not isinstance(parsed, dict):
        raise TamperedError(f"{what} is not a JSON object")
    return parsed


def dumps(value: dict[str, Any]) -> bytes:
    """Stable, human-readable JSON for `mirror`'s own files (sorted keys, UTF-8, newline)."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
