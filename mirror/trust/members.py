"""An edition's signed member list, in shards (ADR 0020): its pages in the role, the rest by bin.

The per-edition role (``edition-<id>``, ADR 0003) must say exactly which
members the edition has. Listing every member in it made the role grow with
the archive — about 180 bytes a member, 18 MB at 100,000 articles — and all
of it new in every edition, since the role is the edition's own; python-tuf
needs about 170 MB to verify a role of that size. So the role lists:

* the edition's own pages directly (``index.html``, ``feed.xml``,
  ``about.html``, ``style.css``, ``edition.json``, ``mirrors.json``): they
  change with every edition anyway;
* its articles and assets (``articles/…``, ``assets/…/…``) through **member
  shards**: ``members/<bin>.json``, one per non-empty hash bin, each a signed
  target of the role (length and SHA-256) whose bytes list the members of
  that bin. Bins are cut exactly like the content bins: the first ``bits``
  bits of SHA-256 of the member's name, in hex.

A shard names no edition, so a shard whose bin did not change is byte for
byte the previous edition's: a reader's cache (files by hash) already holds
it, and ten new articles cost a reader ten shards, not the whole list. In an
edition ZIP the shards are embedded metadata (`layout.archive_shard_name`).

What the checks here stop:

* a shard that is not the one signed (any changed byte, a swapped shard):
  `MemberList.add_shard` requires the signed length and SHA-256;
* a member slipped into the wrong shard, or given two hashes by two shards:
  every name a shard lists must fall in that shard's own bin, so each member
  has exactly one shard that may list it; a name listed twice (in the role
  and a shard, or twice in one shard) is tampering;
* a shard that smuggles pages or metadata: shards list articles and assets
  only, under the caps of `mirror.caps` (size) and safe names;
* shards cut with two bit lengths: one edition, one ``bits``.

Pure: bytes and values in, a verified member list or `TamperedError` out.
Editions from before shards list every member in the role; they still
verify (a role with no shards is a whole member list).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mirror import caps
from mirror.errors import TamperedError
from mirror.trust import layout, strictjson

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_BITS = 32
"""SHA-256's first four bytes: the most a bin can use (as python-tuf's succinct bins)."""


@dataclass(frozen=True, slots=True)
class SignedFile:
    """A member as the signed metadata describes it."""

    length: int
    sha256: str


@dataclass(frozen=True)
class Shard:
    """One member shard as the publisher writes it: its member name and exact bytes."""

    name: str
    """``members/<bin>.json``, the name under ``manifests/<id>/``."""
    data: bytes


def bin_suffix(member: str, bits: int) -> str:
    """The hash bin of ``member``: its SHA-256's first ``bits`` bits, as zero-padded hex.

    The same cut as python-tuf's succinct hash bins, so a member's shard
    is the bin its content target ``articles/…`` lives in.
    """
    first = int.from_bytes(hashlib.sha256(member.encode("utf-8")).digest()[:4], "big")
    width = len(f"{2**bits - 1:x}")
    return f"{first >> (_MAX_BITS - bits):0{width}x}"


def in_shards(member: str) -> bool:
    """Whether a member is listed through a shard (articles and assets), not in the role."""
    return layout.is_content_path(member)


def write_shards(members: Iterable[tuple[str, int, str]], *, bits: int) -> list[Shard]:
    """The shards of an edition's articles and assets: (name, length, SHA-256 hex) each.

    Members that are not content are skipped (the role lists them). The
    bytes depend on the members of the bin only, never on the edition.
    """
    bins: dict[str, dict[str, dict[str, int | str]]] = {}
    for name, length, sha256 in members:
        if in_shards(name):
            bins.setdefault(bin_suffix(name, bits), {})[name] = {"length": length, "sha256": sha256}
    return [
        Shard(layout.member_shard(suffix), _shard_bytes(suffix, bits, bins[suffix]))
        for suffix in sorted(bins)
    ]


def _shard_bytes(suffix: str, bits: int, members: dict[str, dict[str, int | str]]) -> bytes:
    document = {"bin": suffix, "bits": bits, "members": members}
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def read_shard(name: str, data: bytes) -> tuple[int, dict[str, SignedFile]]:
    """The bit length and the members of shard ``name`` (already checked against its hash)."""
    what = f"the member list shard {name}"
    if len(data) > caps.MEMBER_SHARD_MAX_BYTES:
        raise TamperedError(f"{what} is larger than {caps.MEMBER_SHARD_MAX_BYTES} bytes")
    document = strictjson.loads(data, what=what)
    if set(document) != {"bin", "bits", "members"}:
        raise TamperedError(f"{what} is not a member shard (its fields are bin, bits and members)")
    bits, suffix, listed = document["bits"], document["bin"], document["members"]
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= _MAX_BITS:
        raise TamperedError(f"{what} gives no valid bit length")
    if not isinstance(suffix, str) or layout.member_shard(suffix) != name:
        raise TamperedError(f"{what} is not the shard of its own bin")
    if not isinstance(listed, dict):
        raise TamperedError(f"{what} lists no members")
    members: dict[str, SignedFile] = {}
    for member, entry in listed.items():
        if not _safe_name(member) or not in_shards(member) or bin_suffix(member, bits) != suffix:
            raise TamperedError(f"{what} lists {member!r}, which is not a member of its bin")
        members[member] = _signed_file(entry, what=f"{what}: {member}")
    return bits, members


def _safe_name(member: str) -> bool:
    """A relative name of plain segments: it becomes a file in a reader's library."""
    parts = member.split("/")
    return (
        len(member.encode("utf-8")) <= layout.MAX_MEMBER_NAME_BYTES
        and all(part not in ("", ".", "..") for part in parts)
        and not any(c in member for c in "\\\x00")
    )


def _signed_file(entry: object, *, what: str) -> SignedFile:
    if not isinstance(entry, dict) or set(entry) != {"length", "sha256"}:
        raise TamperedError(f"{what} is not a length and a SHA-256 hash")
    length, sha256 = entry["length"], entry["sha256"]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise TamperedError(f"{what} has no valid length")
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise TamperedError(f"{what} has no SHA-256 hash")
    return SignedFile(length, sha256)


class MemberList:
    """The members of one edition: those its verified role lists, and those of its shards.

    Built from the role's entries (member name -> signed file); the shards
    it names are then added as their bytes arrive (`add_shard`), and
    `members` is whole once `missing` is empty.
    """

    def __init__(self, listed: Mapping[str, SignedFile]) -> None:
        self.shards: dict[str, SignedFile] = {}
        """Shard name -> its signed length and hash, as the role lists it."""
        self.members: dict[str, SignedFile] = {}
        """Member name -> signed file: the role's own entries, then each added shard's."""
        for name, signed in listed.items():
            if layout.is_member_shard(name):
                self.shards[name] = signed
            else:
                self.members[name] = signed
        self._added: set[str] = set()
        self._bits: int | None = None

    @property
    def missing(self) -> list[str]:
        """Shards not added yet, in name order."""
        return sorted(name for name in self.shards if name not in self._added)

    def add_shard(self, name: str, data: bytes) -> None:
        """Add the members of shard ``name`` from its bytes, which must be the signed ones."""
        signed = self.shards.get(name)
        if signed is None:
            raise TamperedError(f"the edition's member list names no shard {name}")
        if name in self._added:
            raise TamperedError(f"the member list shard {name} is given twice")
        if len(data) != signed.length or hashlib.sha256(data).hexdigest() != signed.sha256:
            raise TamperedError(f"the member list shard {name} is not the one the publisher signed")
        bits, members = read_shard(name, data)
        if self._bits is not None and bits != self._bits:
            raise TamperedError(f"the member list shard {name} is cut with another bit length")
        for member in members:
            if member in self.members:
                raise TamperedError(f"the edition's member list gives {member} twice")
        self._bits = bits
        self._added.add(name)
        self.members.update(members)

    def complete(self) -> dict[str, SignedFile]:
        """Every member, once every shard was added."""
        if self.missing:
            raise TamperedError(f"the member list shard {self.missing[0]} is missing")
        return self.members
