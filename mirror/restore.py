"""`mirror restore --from MIRROR`: take this publisher's history back from a mirror.

A newsroom whose sync host was lost, seized, rebuilt without its volume or
restored from an old backup has a local publish tree that is empty or older
than what its mirrors serve; every push from it is refused (exit 9). Restore
reads one mirror as a reader would — from the key store's first root,
through the public URL — verifies the whole repository offline
(`mirror.trust.audit`: every role, every version, every target's length and
hash), and makes it the local publish tree. The next sync then continues the
version history: no reader who saw the old versions is ever moved back.

The mirror's root chain must be the key store's (the same bytes, no newer
root): a key store that is behind the published root cannot sign for it.
The tree that was there is kept beside the new one (``publish.before-restore-
<time>``), never deleted; the new tree is assembled in a hidden folder and
renamed into place only once complete.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tuf.api.metadata import Snapshot

from mirror import caps, fsutil, keystore, publish_tree, runlocks
from mirror.client.transport import DeadlineFetcher
from mirror.client.urls import is_mirror_url, mirror_url
from mirror.client.view import MirrorView
from mirror.config import Config
from mirror.errors import KeyStoreError, StorageError, TamperedError, UsageError
from mirror.trust.audit import AuditedRepository, audit
from mirror.trust.history import snapshot_version_of
from mirror.trust.metadata import parse_metadata

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Restored:
    """What the local publish tree holds now."""

    source: str
    timestamp_version: int
    eids: tuple[str, ...]
    files: int
    bytes: int
    kept_previous: Path | None
    """Where the tree that was there before now lies (None: there was none)."""


def source_url(config: Config, source: str) -> str:
    """The public URL of the mirror named ``source`` in the config, or ``source`` as a URL."""
    for mirror in config.mirrors:
        if mirror.name == source:
            return mirror.public_url
    if is_mirror_url(source):
        return mirror_url(source)
    known = ", ".join(m.name for m in config.mirrors) or "none"
    raise UsageError(
        f"--from {source!r} is neither a mirror in {config.file} nor a URL",
        hint=f"Name a configured mirror ({known}) or give its public URL.",
    )


def restore(config: Config, source: str, *, now: datetime) -> Restored:
    """Verify the mirror ``source`` and make its repository the local publish tree."""
    url = source_url(config, source)
    chain = keystore.load_root_chain(config.keys.dir)
    output = config.output
    with runlocks.building(output):
        fsutil.ensure_dir(output.path)
        staging = output.path / f".restore-{secrets.token_hex(4)}"
        fetcher = DeadlineFetcher(read_timeout_s=TIMEOUT_S, download_budget_s=TIMEOUT_S)
        try:
            view = MirrorView(url, staging / "view", fetcher, bootstrap=chain[0])
            repository = _read_repository(view, first_root=chain[0])
            _require_key_store_chain(repository, chain, config.keys.dir)
            tree = staging / "publish"
            files, size = _write_tree(view, repository, tree)
            kept = _swap_in(tree, output.publish_dir, now=now)
        finally:
            fetcher.close()
            shutil.rmtree(staging, ignore_errors=True)
    release = publish_tree.current_release(output.publish_dir)
    return Restored(
        source=url,
        timestamp_version=repository.state.timestamp_version,
        eids=() if release is None else release.eids,
        files=files,
        bytes=size,
        kept_previous=kept,
    )


def _read_repository(view: MirrorView, *, first_root: bytes) -> AuditedRepository:
    """Every metadata file the mirror's timestamp leads to, verified together."""
    view.folder.mkdir(parents=True)
    timestamp = view.fetch(publish_tree.TIMESTAMP, max_bytes=caps.TIMESTAMP_MAX_BYTES)
    if timestamp is None:
        raise UsageError(
            f"{view.url} publishes nothing (no metadata/timestamp.json): nothing to restore",
            hint="Name a mirror that serves this publisher's editions.",
        )
    roots: dict[int, bytes] = {}
    for version in range(2, caps.MAX_ROOT_ROTATIONS + 2):
        data = view.fetch(publish_tree.root_name(version), max_bytes=caps.ROOT_MAX_BYTES)
        if data is None:
            break
        roots[version] = data
    snapshot_version = snapshot_version_of(timestamp)
    if snapshot_version is None:
        raise TamperedError(f"{view.url} serves a timestamp.json that is not valid metadata")
    snapshot = _required(view, publish_tree.role_name("snapshot", snapshot_version))
    listed = parse_metadata(snapshot, Snapshot, what="the snapshot").signed
    roles = {
        name.removesuffix(".json"): _required(
            view, publish_tree.role_name(name.removesuffix(".json"), meta.version)
        )
        for name, meta in listed.meta.items()
    }
    return audit(first_root, roots=roots, timestamp=timestamp, snapshot=snapshot, roles=roles)


def _required(view: MirrorView, path: str) -> bytes:
    data = view.fetch(path, max_bytes=caps.TARGETS_MAX_BYTES)
    if data is None:
        raise TamperedError(f"{view.url} lacks {path}, which its metadata names")
    return data


def _require_key_store_chain(
    repository: AuditedRepository, chain: tuple[bytes, ...], keys_dir: Path
) -> None:
    """The published root chain must be the key store's, or a part of it."""
    for version, published in enumerate(repository.roots, start=1):
        if version > len(chain):
            raise KeyStoreError(
                f"the mirror publishes root version {version}, but the key store in {keys_dir} "
                f"ends at version {len(chain)}",
                hint="Bring the key store up to date first: `mirror keys import-root` with the "
                "newer root (from the offline machine), then restore again.",
            )
        if published != chain[version - 1]:
            raise KeyStoreError(
                f"the mirror's root version {version} is not the one in the key store {keys_dir}",
                hint="Check that this is the key store of the publisher that mirror serves.",
            )


def _write_tree(view: MirrorView, repository: AuditedRepository, tree: Path) -> tuple[int, int]:
    """Write the verified metadata, then download and check every target it lists."""
    state = repository.state
    publish_tree.write_metadata(
        tree,
        root_chain=repository.roots,
        roles=list(state.roles.values()),
        snapshot=repository.snapshot,
        snapshot_version=state.snapshot_version,
        timestamp=repository.timestamp,
    )
    targets = publish_tree.referenced_targets(state)
    size = 0
    for path, length in sorted(targets.items()):
        destination = publish_tree.targets_dir(tree) / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        view.download_published(f"targets/{path}", length, destination)
        size += length
    metadata = sum(1 for _ in publish_tree.metadata_dir(tree).iterdir())
    return len(targets) + metadata, size


def _swap_in(tree: Path, publish_dir: Path, *, now: datetime) -> Path | None:
    """Put the restored tree in place, keeping the one it replaces beside it."""
    kept = None
    try:
        if publish_dir.exists():
            kept = publish_dir.with_name(f"publish.before-restore-{now:%Y%m%dT%H%M%SZ}")
            os.replace(publish_dir, kept)
        os.replace(tree, publish_dir)
    except OSError as error:
        raise StorageError(
            f"cannot put the restored tree in place at {publish_dir} ({error.strerror})"
        ) from error
    fsutil.fsync_dir(publish_dir.parent)
    return kept
