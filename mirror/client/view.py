"""The one reader view of a mirror: what does it serve, and can a reader trust it?

`mirror fetch`, the push read-back, `mirror status`, `mirror config check`
and `mirror tuf-client` all ask this question, and all ask it here:

- `new_updater` is the only place mirror builds a python-tuf `Updater`: one
  set of caps (`UPDATER_CONFIG`, from `mirror.caps`) and one transport
  (`DeadlineFetcher`), whoever asks;
- `MirrorView` is one mirror seen through such an updater: refresh the
  metadata chain (every signature, threshold, version, length and hash
  checked by TUF), the newest edition it delegates to, that edition's
  signed member list and ``edition.json``, and any target by its signed
  hash — each answer verified or a `MirrorError` (python-tuf's errors are
  translated once, in `mirror.client.classify`);
- `MirrorView.require_version` is the one stale check: a mirror that
  verifies but serves an older timestamp than the caller knows of raises
  `StaleError`.

A view keeps its metadata in a folder of its own, seeded by the caller:
either a bootstrap root (a publisher reading its own mirrors, a first-time
reader) or a copy of what the reader already trusts (``bootstrap=None``), so
that a forged answer from any mirror is judged against the same trust.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.ngclient import Updater, UpdaterConfig

from mirror import caps, fsutil
from mirror.client.classify import translated
from mirror.client.transport import DeadlineFetcher
from mirror.client.urls import mirror_url
from mirror.errors import StaleError, TamperedError, TransportError
from mirror.trust import layout
from mirror.trust.members import MemberList, SignedFile
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import Publisher, publisher_of
from mirror.trust.verify import EditionInfo, parse_edition_info

UPDATER_CONFIG = UpdaterConfig(
    max_root_rotations=caps.MAX_ROOT_ROTATIONS,
    root_max_length=caps.ROOT_MAX_BYTES,
    timestamp_max_length=caps.TIMESTAMP_MAX_BYTES,
    snapshot_max_length=caps.SNAPSHOT_MAX_BYTES,
    targets_max_length=caps.TARGETS_MAX_BYTES,
)
"""The caps of every reader view (python-tuf's defaults allow 5 MB for a targets role)."""

_Role = TypeVar("_Role", Root, Targets, Snapshot, Timestamp)

_MAX_BYTES = {
    Root: caps.ROOT_MAX_BYTES,
    Timestamp: caps.TIMESTAMP_MAX_BYTES,
    Snapshot: caps.SNAPSHOT_MAX_BYTES,
    Targets: caps.TARGETS_MAX_BYTES,
}


def new_updater(
    metadata_dir: Path,
    metadata_url: str,
    fetcher: DeadlineFetcher,
    *,
    target_dir: Path | None = None,
    target_base_url: str | None = None,
    bootstrap: bytes | None = None,
) -> Updater:
    """A python-tuf `Updater` with mirror's caps and transport: the only place one is made.

    ``bootstrap`` is the root to start from; without it, ``metadata_dir/root.json``
    (what the caller already trusts) is the start.
    """
    return Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=metadata_url,
        target_dir=None if target_dir is None else str(target_dir),
        target_base_url=target_base_url,
        fetcher=fetcher,
        config=UPDATER_CONFIG,
        bootstrap=bootstrap,
    )


def metadata_file(metadata_dir: Path, role: str) -> Path:
    """python-tuf's name for a role in an updater's metadata folder (``<role>.json``)."""
    return metadata_dir / f"{role}.json"


def read_trusted(path: Path, kind: type[_Role]) -> Metadata[_Role]:
    """Metadata an updater stored after verifying it (bounded, parsed strictly)."""
    data = fsutil.read_bounded(path, max_bytes=_MAX_BYTES[kind], what=f"{kind.type} metadata")
    return parse_metadata(data, kind, what=str(path))


@dataclass(frozen=True)
class Served:
    """The top of a mirror's verified metadata chain."""

    timestamp_version: int
    snapshot_version: int

    def behind(self, other: Served) -> bool:
        """True when ``other`` is a newer publication than this one."""
        return (self.timestamp_version, self.snapshot_version) < (
            other.timestamp_version,
            other.snapshot_version,
        )


@dataclass(frozen=True)
class Survey:
    """What a mirror serves a reader now: the top of its chain and its newest edition."""

    served: Served
    edition: EditionInfo


class MirrorView:
    """One mirror, read as a reader reads it, through its own metadata folder."""

    def __init__(
        self, url: str, folder: Path, fetcher: DeadlineFetcher, *, bootstrap: bytes | None
    ) -> None:
        self.url = mirror_url(url)
        self.folder = folder
        self.fetcher = fetcher
        self._bootstrap = bootstrap
        self._tuf: Updater | None = None
        self._served: Served | None = None

    @property
    def _updater(self) -> Updater:
        """The view's python-tuf updater, made on first use (it reads the trusted root)."""
        if self._tuf is None:
            with translated():
                self._tuf = new_updater(
                    self.folder,
                    f"{self.url}metadata/",
                    self.fetcher,
                    target_dir=self.folder,
                    target_base_url=f"{self.url}targets/",
                    bootstrap=self._bootstrap,
                )
        return self._tuf

    # --- the metadata chain ---------------------------------------------------------
    def publishes_anything(self) -> bool:
        """Whether the mirror serves a ``timestamp.json`` at all (HTTP 404 / no file: False).

        Nothing is verified here: it only tells "nothing published yet" from
        every other answer, which `refresh` then judges.
        """
        try:
            self.fetcher.download_bytes(
                f"{self.url}metadata/timestamp.json", caps.TIMESTAMP_MAX_BYTES
            )
        except tuf_errors.DownloadHTTPError as error:
            return error.status_code != 404
        except tuf_errors.DownloadError:
            pass  # any other answer: `refresh` will say what it means
        return True

    def fetch(self, path: str, *, max_bytes: int) -> bytes | None:
        """A file of the mirror's tree as it is served, unverified; None when it has none."""
        try:
            with translated():
                return self.fetcher.download_bytes(f"{self.url}{path}", max_bytes)
        except TransportError as error:
            if isinstance(error.__cause__, tuf_errors.DownloadHTTPError) and (
                error.__cause__.status_code == 404
            ):
                return None
            raise

    def claimed_publisher(self) -> Publisher | None:
        """Who the mirror's first root names as its publisher: unverified, None if unreadable.

        Only to tell a reader *why* a mirror failed verification: one that
        serves another newsroom's repository (the wrong root pinned, a
        mistyped address) is not necessarily forging anything.
        """
        try:
            data = self.fetch("metadata/1.root.json", max_bytes=caps.ROOT_MAX_BYTES)
            if data is None:
                return None
            claimed = publisher_of(parse_metadata(data, Root, what="root version 1").signed)
        except Exception:  # any failure means "it does not say"
            return None
        return None if claimed.publisher_id == "unknown" else claimed

    def refresh(self) -> Served:
        """Walk root → timestamp → snapshot → targets; what the mirror serves, verified."""
        with translated():
            self._updater.refresh()
        self._served = Served(
            self.trusted("timestamp", Timestamp).signed.version,
            self.trusted("snapshot", Snapshot).signed.version,
        )
        return self._served

    @property
    def served(self) -> Served:
        """What `refresh` found."""
        if self._served is None:
            raise RuntimeError("refresh() the view first")
        return self._served

    def require_version(self, timestamp_version: int, *, expected: str) -> None:
        """Raise `StaleError` unless the mirror serves ``timestamp_version`` or newer.

        ``expected`` says where that version comes from, e.g. "the local tree is at".
        """
        if self.served.timestamp_version < timestamp_version:
            raise StaleError(
                f"serves timestamp version {self.served.timestamp_version}, "
                f"{expected} {timestamp_version}"
            )

    def trusted(self, role: str, kind: type[_Role]) -> Metadata[_Role]:
        """A role the updater has verified and stored (``root``, ``timestamp``, a targets role)."""
        return read_trusted(metadata_file(self.folder, role), kind)

    def root_history(self, first: int, last: int) -> dict[int, bytes]:
        """Root versions ``first``..``last`` that the updater accepted on the way (bounded).

        python-tuf keeps every root it accepted in ``root_history/``.
        """
        return {
            version: fsutil.read_bounded(
                self.folder / "root_history" / f"{version}.root.json",
                max_bytes=caps.ROOT_MAX_BYTES,
                what="root metadata",
            )
            for version in range(first, last + 1)
        }

    # --- editions -------------------------------------------------------------------
    def _delegated(self, role: str, probe_path: str) -> Targets:
        """A delegated role, verified by looking up a path only its delegation matches."""
        with translated():
            self._updater.get_targetinfo(probe_path)
        return self.trusted(role, Targets).signed

    def newest_edition(self) -> str:
        """The newest edition the verified metadata delegates to (by version)."""
        manifests = self._delegated(layout.MANIFESTS_ROLE, "manifests/-/-")
        roles = manifests.delegations.roles if manifests.delegations else None
        eids = [
            name.removeprefix(layout.EDITION_ROLE_PREFIX)
            for name in (roles or {})
            if name.startswith(layout.EDITION_ROLE_PREFIX)
            and layout.EDITION_ID_RE.match(name.removeprefix(layout.EDITION_ROLE_PREFIX))
        ]
        if not eids:
            raise TamperedError("the mirror's metadata lists no edition")
        return layout.newest_edition(eids)

    def edition_archives(self) -> list[str]:
        """Ids of the editions whose ZIP the verified metadata lists, oldest first."""
        editions = self._delegated(layout.EDITIONS_ROLE, "editions/-")
        eids = [
            eid for path in editions.targets if (eid := layout.archive_edition_id(path)) is not None
        ]
        return sorted(eids, key=layout.edition_version)

    def member_list(self, eid: str) -> MemberList:
        """The signed member list of edition ``eid``, as its verified role gives it.

        Its pages are there at once; its articles and assets come with the
        member shards the role lists (ADR 0020), which the caller adds as it
        gets their bytes (`MemberList.add_shard`: the signed ones only) — from
        its own cache, or with `download`.
        """
        self.target(layout.manifest_path(eid, layout.EDITION_INFO_MEMBER))  # loads its role
        role = self.trusted(layout.edition_role(eid), Targets)
        prefix = f"manifests/{eid}/"
        listed = {}
        for path, target in role.signed.targets.items():
            sha256 = target.hashes.get("sha256")
            if not path.startswith(prefix) or not isinstance(sha256, str):
                raise TamperedError(f"the member list of {eid} names {path}")
            listed[path.removeprefix(prefix)] = SignedFile(target.length, sha256)
        return MemberList(listed)

    def edition_info(self, eid: str) -> EditionInfo:
        """Edition ``eid``'s ``edition.json``, downloaded and checked against its signed hash."""
        info = self.target(layout.manifest_path(eid, layout.EDITION_INFO_MEMBER))
        if info.length > caps.EDITION_INFO_MAX_BYTES:
            raise TamperedError(f"the edition.json of {eid} is signed as {info.length} bytes")
        path = self.download(info, self.folder / f".edition-{eid}.json")
        try:
            edition = parse_edition_info(path.read_bytes())
        finally:
            path.unlink(missing_ok=True)
        if edition.eid != eid:
            raise TamperedError(f"its role for edition {eid} describes edition {edition.eid}")
        return edition

    def survey(self) -> Survey:
        """Refresh, then the newest edition and its ``edition.json``: what a reader would get."""
        served = self.refresh()
        return Survey(served, self.edition_info(self.newest_edition()))

    # --- targets --------------------------------------------------------------------
    def target(self, path: str) -> TargetFile:
        """The signed description of target ``path``; `TamperedError` if nothing lists it."""
        info = self.listed(path)
        if info is None:
            raise TamperedError(f"the metadata does not list {path}")
        return info

    def listed(self, path: str) -> TargetFile | None:
        """The signed description of target ``path``, or None when the metadata lists none."""
        with translated():
            return self._updater.get_targetinfo(path)

    def download(self, info: TargetFile, destination: Path, *, from_url: str | None = None) -> Path:
        """Download a target, checked against this view's verified metadata.

        ``from_url`` fetches the bytes from another mirror's address: every
        byte is still checked against the hash this view verified, so which
        mirror sent them does not matter.
        """
        base = f"{mirror_url(from_url or self.url)}targets/"
        with translated(), self.fetcher.budget_for(info.length):
            return Path(self._updater.download_target(info, str(destination), base))

    def download_published(self, tree_path: str, size: int, destination: Path) -> Path:
        """A file of the publish tree under its consistent-snapshot name, checked by that name.

        Targets are published as ``targets/<dir>/<sha256>.<name>`` with the
        hash the signed metadata gives them, and a reader requesting that
        name checks exactly this hash and length. Checking by name keeps
        memory flat where asking the updater about 12,000 targets would load
        every bin and edition role (the push read-back checks every file it
        uploaded this way).
        """
        expected = PurePosixPath(tree_path).name.split(".", 1)[0]
        digest = hashlib.sha256()
        length = 0
        with (
            translated(),
            self.fetcher.budget_for(size),
            self.fetcher.download_file(f"{self.url}{tree_path}", size) as data,
            destination.open("wb") as out,
        ):
            while chunk := data.read(1024 * 1024):
                digest.update(chunk)
                length += len(chunk)
                out.write(chunk)
        if length != size or digest.hexdigest() != expected:
            raise TamperedError(f"serves a {tree_path} that does not match its signed hash")
        return destination
