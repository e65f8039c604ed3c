"""Keys the publisher retired, recorded in the signed root: routinely, or as compromised.

Root N+1 of a rotation lists every key it replaced under ``x-mirror-retired-keys``::

    "x-mirror-retired-keys": {
      "<keyid>": {"role": "targets", "retired": "2026-12-01T10:00:00Z"},
      "<keyid>": {"role": "targets", "retired": "...", "compromised_since": "..."}
    }

The list is carried forward by every later root, and signed with it. A
reader whose root has walked past a rotation judges an edition signed by a
retired key with it:

- retired routinely: the edition is genuine and *superseded* (newer editions
  are signed with newer keys) — unless it claims to be created after the
  key's retirement, which no honest publisher does;
- retired as compromised: everything it signed after ``compromised_since``
  is refused, whoever holds the key now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tuf.api.metadata import Root

from mirror.errors import TamperedError

RETIRED_FIELD = "x-mirror-retired-keys"


@dataclass(frozen=True)
class RetiredKey:
    """One retired key: which role it signed for, when it was retired, since when it is unsafe."""

    keyid: str
    role: str
    retired: datetime
    compromised_since: datetime | None


def retirement_entry(
    role: str, *, retired: datetime, compromised_since: datetime | None
) -> dict[str, str]:
    """The record of one retired key, as root metadata carries it."""
    entry = {"role": role, "retired": _iso(retired)}
    if compromised_since is not None:
        entry["compromised_since"] = _iso(compromised_since)
    return entry


def retired_keys(root: Root) -> dict[str, RetiredKey]:
    """Every key ``root`` records as retired, by key id (strictly parsed)."""
    field = root.unrecognized_fields.get(RETIRED_FIELD, {})
    if not isinstance(field, dict):
        raise TamperedError(f"root version {root.version} has a malformed {RETIRED_FIELD}")
    keys = {}
    for keyid, entry in field.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("role"), str):
            raise TamperedError(f"root version {root.version} records key {keyid} malformed")
        since = entry.get("compromised_since")
        keys[keyid] = RetiredKey(
            keyid=keyid,
            role=entry["role"],
            retired=_parse(entry.get("retired"), root),
            compromised_since=None if since is None else _parse(since, root),
        )
    return keys


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any, root: Root) -> datetime:
    if not isinstance(value, str):
        raise TamperedError(f"root version {root.version} records a retirement without a time")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as error:
        raise TamperedError(f"root version {root.version} records the time {value!r}") from error
