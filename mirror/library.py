"""A reader's verified editions and content cache, one folder per publisher.

::

    <state dir>/publishers/<publisher id>/
      roots/<N>.root.json        trusted roots (see `mirror.state`)
      editions.json              newest edition version verified (rollback protection)
      metadata/                  trusted TUF metadata, python-tuf's non-versioned names
      mirrors.json               mirror health and the last signed mirror list
      cache/<sha256>             verified files by hash: an update fetches only new ones
      library/<edition id>/      complete, verified editions, ready to open offline

Everything under ``library/`` and ``cache/`` was verified against signed
hashes before it was placed, and is placed atomically (temporary name, then
rename), so a crash never leaves a half edition that looks complete: an
edition folder exists only once all of it is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mirror import fsutil
from mirror.errors import StorageError
from mirror.state import ReaderState
from mirror.trust import layout, strictjson

HEALTH_FILE = "mirrors.json"


@dataclass(frozen=True)
class LibraryEdition:
    """One complete edition in the library."""

    eid: str
    version: int
    path: Path

    @property
    def index(self) -> Path:
        """The page a reader opens first."""
        return self.path / "index.html"


@dataclass(frozen=True)
class Library:
    """One publisher's folder in the reader state."""

    folder: Path

    @classmethod
    def of(cls, state: ReaderState, publisher_id: str) -> Library:
        """The library of ``publisher_id`` in ``state``."""
        return cls(state.publisher_dir(publisher_id))

    @property
    def metadata_dir(self) -> Path:
        """Trusted TUF metadata (python-tuf `Updater` layout)."""
        return self.folder / "metadata"

    @property
    def cache_dir(self) -> Path:
        """Verified files by SHA-256."""
        return self.folder / "cache"

    @property
    def editions_dir(self) -> Path:
        """Complete editions by id."""
        return self.folder / "library"

    # --- editions ------------------------------------------------------------------
    def editions(self) -> list[LibraryEdition]:
        """Complete editions, oldest first."""
        found = []
        if self.editions_dir.is_dir():
            for path in self.editions_dir.iterdir():
                eid = path.name
                if layout.EDITION_ID_RE.match(eid) and (path / "edition.json").is_file():
                    found.append(LibraryEdition(eid, layout.edition_version(eid), path))
        return sorted(found, key=lambda e: e.version)

    def latest(self) -> LibraryEdition | None:
        """The newest complete edition, if any."""
        editions = self.editions()
        return editions[-1] if editions else None

    def find(self, eid: str) -> LibraryEdition | None:
        """The edition ``eid``, if it is complete in the library."""
        return next((e for e in self.editions() if e.eid == eid), None)

    def install(self, eid: str, members: Mapping[str, Path]) -> LibraryEdition:
        """Assemble edition ``eid`` from verified files (member name -> cached file).

        Files are hard-linked (copied across file systems) into a staging folder
        that is renamed into place only when complete.
        """
        if not layout.EDITION_ID_RE.match(eid):
            raise StorageError(f"{eid!r} is not an edition id")
        fsutil.ensure_dir(self.editions_dir)
        final = self.editions_dir / eid
        staging = Path(tempfile.mkdtemp(prefix=f".{eid}.", dir=self.editions_dir))
        try:
            for member, source in members.items():
                target = staging.joinpath(*PurePosixPath(member).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise StorageError(f"cannot assemble edition {eid} in {final} ({error})") from error
        fsutil.fsync_dir(self.editions_dir)
        return LibraryEdition(eid, layout.edition_version(eid), final)

    # --- cache ---------------------------------------------------------------------
    def cached(self, sha256: str) -> Path | None:
        """The verified file with this hash, if the cache has it."""
        path = self.cache_dir / sha256
        return path if path.is_file() else None

    def cache_file(self, sha256: str, source: Path) -> Path:
        """Move an already verified file into the cache under its hash."""
        fsutil.ensure_dir(self.cache_dir)
        destination = self.cache_dir / sha256
        try:
            os.replace(source, destination)
        except OSError:
            try:
                shutil.copyfile(source, destination.with_suffix(".tmp"))
                os.replace(destination.with_suffix(".tmp"), destination)
            except OSError as error:
                raise StorageError(f"cannot store {destination} ({error})") from error
        return destination

    # --- mirror health ------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"mirrors": {url: {...}}, "signed_list": [url, ...]}``."""
        path = self.folder / HEALTH_FILE
        if not path.is_file():
            return {"mirrors": {}, "signed_list": []}
        try:
            document = strictjson.loads(
                fsutil.read_bounded(path, max_bytes=4 * 1024 * 1024, what="mirror health"),
                what=str(path),
            )
        except Exception:  # a damaged health file only costs us its hints
            return {"mirrors": {}, "signed_list": []}
        document.setdefault("mirrors", {})
        document.setdefault("signed_list", [])
        return document

    def save_health(self, document: dict[str, Any]) -> None:
        """Write mirror health atomically."""
        data = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        fsutil.atomic_write_bytes(self.folder / HEALTH_FILE, data.encode("utf-8"))
