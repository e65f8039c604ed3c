"""Split the mirrors among several workers: ``--shard I/N`` and ``--tag TAG``.

A mirror belongs to shard ``int(sha256(name)[:8]) mod N``: stable across runs,
hosts and Python versions (unlike `hash`), and independent of the order of the
config file, so adding a mirror never moves the others between shards.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mirror.config import MirrorSettings
from mirror.errors import UsageError

MAX_SHARDS = 1024


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def builds(self) -> bool:
        """Shard 0 builds and signs; the others only push the shared tree."""
        return self.index == 0

    def owns(self, mirror_name: str) -> bool:
        """True when ``mirror_name`` is assigned to this shard."""
        return shard_of(mirror_name, self.count) == self.index


def shard_of(mirror_name: str, count: int) -> int:
    """The shard a mirror belongs to among ``count``."""
    digest = hashlib.sha256(mirror_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``"I/N"`` with ``0 <= I < N``; anything else is a usage error."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise UsageError(
            f"--shard {text!r} is not of the form I/N", hint="For example --shard 0/3."
        )
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS or index >= count:
        raise UsageError(
            f"--shard {text}: needs 0 <= I < N and 1 <= N <= {MAX_SHARDS}",
            hint="Shards are numbered from 0: with N workers use 0/N … (N-1)/N.",
        )
    return Shard(index, count)


def select_mirrors(
    mirrors: Sequence[MirrorSettings],
    *,
    names: Sequence[str] | None,
    tags: Sequence[str] | None,
    shard: Shard | None,
    config_file: str,
) -> tuple[MirrorSettings, ...]:
    """The mirrors a run works on: by name, then by tag (any of), then by shard."""
    chosen = tuple(mirrors)
    if names:
        known = {m.name: m for m in mirrors}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UsageError(
                f"there is no mirror called {unknown[0]!r} in {config_file}",
                hint=f"Known mirrors: {', '.join(known) or 'none'}.",
            )
        chosen = tuple(known[name] for name in names)
    if tags:
        wanted = set(tags)
        chosen = tuple(m for m in chosen if wanted & set(m.tags))
        if not chosen:
            raise UsageError(
                f"no mirror in {config_file} has the tag {', '.join(sorted(wanted))}",
                hint="Add tags: [...] to the mirrors, or check the spelling.",
            )
    if shard is not None:
        chosen = tuple(m for m in chosen if shard.owns(m.name))
    return chosen
