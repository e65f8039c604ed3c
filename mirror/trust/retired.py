"""Keys the publisher retired, recorded in the signed root: routinely, or as compromised.

Root N+1 of a rotation lists every key it replaced under ``x-mirror-retired-keys``::

    "x-mirror-retired-keys": {
      "<keyid>": {
        "role": "targets",
        "retired": "2026-12-01T10:00:00Z",
        "compromised_since": "2026-11-30T08:00:00Z",      (only for a compromised key)
        "key": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "..."}},
        "threshold": 1,
        "last_root_version": 3
      }
    }

The list is carried forward by every later root, and signed with it. A
reader whose root has walked past a rotation judges an edition signed by a
retired key with it:

- retired routinely: the edition is genuine and *superseded* (newer editions
  are signed with newer keys) — unless it claims to be created after the
  key's retirement, which no honest publisher does;
- retired as compromised: everything it signed after ``compromised_since``
  is refused, whoever holds the key now.

``key``, ``threshold`` and ``last_root_version`` (ADR 0018) say how root
``last_root_version``, the last root that listed the key, had it: the public
key itself and the role's threshold there. With them the reader's trusted
newest root alone vouches for an old edition's signature, so a reader who
pinned root 5 and never saw roots 2-4 can still check an edition signed
under root 1 — without trusting the archive's own (unverifiable) copy of
root 1, whose key ids python-tuf does not tie to the keys they name. Keys
retired together form one set (same ``last_root_version``): signatures of
two rotations' keys never add up to one threshold. Records written before
these fields existed still work through the root chain (`verify_file`).

Every field is parsed strictly; each malformed one is tampering with its own
sentence, naming the root version, the key id and the field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from securesystemslib.signer import Key
from tuf.api.metadata import Root

from mirror.errors import TamperedError

RETIRED_FIELD = "x-mirror-retired-keys"
LISTING_FIELDS = ("key", "threshold", "last_root_version")
"""The fields that let the record vouch for a retired key on its own (ADR 0018)."""


@dataclass(frozen=True)
class KeyListing:
    """How the last root that listed a retired key had it, as the newest root records it."""

    key: Key
    """The public key itself (not only its id)."""
    threshold: int
    """The role's threshold in that root."""
    root_version: int
    """That root's version: keys with the same one were retired together, as one set."""


@dataclass(frozen=True)
class RetiredKey:
    """One retired key: which role it signed for, when it was retired, since when it is unsafe."""

    keyid: str
    role: str
    retired: datetime
    compromised_since: datetime | None
    listing: KeyListing | None
    """The key as its last root listed it; None in records older than ADR 0018."""


def retirement_entry(
    role: str,
    *,
    retired: datetime,
    compromised_since: datetime | None,
    key: Key,
    threshold: int,
    last_root_version: int,
) -> dict[str, Any]:
    """The record of one retired key, as root metadata carries it.

    ``key``, ``threshold`` and ``last_root_version`` come from the root being
    replaced (version ``last_root_version``), which listed ``key`` for ``role``.
    """
    entry: dict[str, Any] = {"role": role, "retired": _iso(retired)}
    if compromised_since is not None:
        entry["compromised_since"] = _iso(compromised_since)
    entry["key"] = key.to_dict()
    entry["threshold"] = threshold
    entry["last_root_version"] = last_root_version
    return entry


def retired_keys(root: Root) -> dict[str, RetiredKey]:
    """Every key ``root`` records as retired, by key id (strictly parsed)."""
    field = root.unrecognized_fields.get(RETIRED_FIELD, {})
    if not isinstance(field, dict):
        raise TamperedError(f"root version {root.version} has a malformed {RETIRED_FIELD}")
    keys = {}
    for keyid, entry in field.items():
        record = _Record(root.version, keyid)
        if not isinstance(entry, dict):
            raise record.malformed(f"as {_kind(entry)}, not an object")
        since = entry.get("compromised_since")
        keys[keyid] = RetiredKey(
            keyid=keyid,
            role=record.text(entry, "role"),
            retired=record.time(entry, "retired"),
            compromised_since=None if since is None else record.time(entry, "compromised_since"),
            listing=record.listing(entry),
        )
    return keys


@dataclass(frozen=True)
class _Record:
    """One key's entry in root ``version``'s record, and the sentence for each flaw in it."""

    version: int
    keyid: str

    def malformed(self, problem: str) -> TamperedError:
        return TamperedError(
            f"root version {self.version} records retired key {self.keyid} {problem}"
        )

    def present(self, entry: dict[str, Any], name: str) -> Any:
        if name not in entry:
            raise self.malformed(f"without its {name}")
        return entry[name]

    def text(self, entry: dict[str, Any], name: str) -> str:
        value = self.present(entry, name)
        if not isinstance(value, str):
            raise self.malformed(f"with {name} as {_kind(value)}, not text")
        return value

    def time(self, entry: dict[str, Any], name: str) -> datetime:
        value = self.present(entry, name)
        if not isinstance(value, str):
            raise self.malformed(f"with {name} as {_kind(value)}, not a time")
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError as error:
            raise self.malformed(f"with {name} {value!r}, which is not a time") from error

    def count(self, entry: dict[str, Any], name: str) -> int:
        value = self.present(entry, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.malformed(f"with {name} as {_kind(value)}, not a whole number")
        if value < 1:
            raise self.malformed(f"with {name} {value}, below 1")
        return value

    def listing(self, entry: dict[str, Any]) -> KeyListing | None:
        if not any(name in entry for name in LISTING_FIELDS):
            return None  # a record older than ADR 0018: the root chain has to vouch
        value = self.present(entry, "key")
        if not isinstance(value, dict):
            raise self.malformed(f"with key as {_kind(value)}, not an object")
        try:
            key = Key.from_dict(self.keyid, copy.deepcopy(value))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise self.malformed("with a key that is not a usable public key") from error
        return KeyListing(
            key=key,
            threshold=self.count(entry, "threshold"),
            root_version=self.count(entry, "last_root_version"),
        )


def _kind(value: object) -> str:
    """What a JSON value is, in words (values are not echoed: they may be anything)."""
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
