"""The reader's local state: trusted roots and the newest edition seen, per publisher.

::

    <state dir>/publishers/<publisher id>/roots/<N>.root.json   roots accepted by a chain walk
    <state dir>/publishers/<publisher id>/editions.json         {"version": N, "edition": id}

The default folder is the per-user state dir (``platformdirs``); ``--state``
picks another. This state is what makes rollback detectable across runs: a
reader who once verified version 7 refuses version 6 afterwards, and a
reader whose chain walked to root 3 never falls back to root 2. Every file is
written atomically; a crash leaves the previous state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from mirror import fsutil
from mirror.errors import StorageError
from mirror.trust import strictjson

MAX_ROOT_BYTES = 1024 * 1024
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def default_state_dir() -> Path:
    """The per-user state folder, e.g. ``~/.local/state/mirror`` on Linux."""
    return Path(platformdirs.user_state_dir("mirror", appauthor=False))


@dataclass(frozen=True)
class PublisherState:
    """What this reader trusts for one publisher."""

    roots: dict[int, bytes]
    highest: tuple[int, str] | None


@dataclass(frozen=True)
class ReaderState:
    """Access to the state folder."""

    directory: Path

    def publishers(self) -> list[str]:
        """Ids of the publishers this reader has state for."""
        folder = self.directory / "publishers"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if _SAFE_ID.match(p.name))

    def publisher_dir(self, publisher_id: str) -> Path:
        """The folder holding everything about one publisher."""
        return self._publisher_dir(publisher_id)

    def _publisher_dir(self, publisher_id: str) -> Path:
        if not _SAFE_ID.match(publisher_id):
            raise StorageError(f"publisher id {publisher_id[:40]!r} cannot name a state folder")
        return self.directory / "publishers" / publisher_id

    def load(self, publisher_id: str) -> PublisherState:
        """Read the state for ``publisher_id`` (empty if this reader never saw it)."""
        folder = self._publisher_dir(publisher_id)
        roots: dict[int, bytes] = {}
        roots_dir = folder / "roots"
        if roots_dir.is_dir():
            for path in roots_dir.glob("*.root.json"):
                version = path.name.split(".", 1)[0]
                if version.isdigit():
                    roots[int(version)] = fsutil.read_bounded(
                        path, max_bytes=MAX_ROOT_BYTES, what="stored root"
                    )
        highest: tuple[int, str] | None = None
        editions = folder / "editions.json"
        if editions.is_file():
            document = strictjson.loads(
                fsutil.read_bounded(editions, max_bytes=65536, what="reader state"),
                what=str(editions),
            )
            seen_version, seen_eid = document.get("version"), document.get("edition")
            if isinstance(seen_version, int) and isinstance(seen_eid, str):
                highest = (seen_version, seen_eid)
        return PublisherState(roots=roots, highest=highest)

    def save(self, publisher_id: str, *, roots: dict[int, bytes], highest: tuple[int, str]) -> None:
        """Record newly accepted roots and the newest edition verified (never lowering it)."""
        folder = self._publisher_dir(publisher_id)
        for version, data in sorted(roots.items()):
            path = folder / "roots" / f"{version}.root.json"
            if not path.exists():
                fsutil.atomic_write_bytes(path, data)
        current = self.load(publisher_id).highest
        if current is None or highest[0] > current[0]:
            fsutil.atomic_write_bytes(
                folder / "editions.json",
                strictjson.dumps({"version": highest[0], "edition": highest[1]}),
            )
