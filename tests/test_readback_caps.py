"""The push read-back reads with the reader's caps, not python-tuf's defaults.

An archive of about 28,000 articles published before member shards (ADR
0020) has an edition member list (one targets role) over 5 MB, python-tuf's
default cap for a targets role. The reader allows 64 MB; the read-back once
ran with the default and called every mirror of such an archive tampered.
Mirrors keep such editions as long as retention does, so they must still
read back.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater

from mirror import publish_tree
from mirror.build import edition_info, mirror_list
from mirror.client.transport import DeadlineFetcher
from mirror.keystore import load_keyring
from mirror.publish_tree import PublishedTarget
from mirror.readback import read_back_sync
from mirror.trust import layout
from mirror.trust.metadata import serializer
from mirror.trust.repository import (
    ExpiryPolicy,
    MemberLedger,
    RepositoryState,
    SignedRole,
    TargetEntry,
    sign_edition,
    sign_release,
)
from tests.conftest import BUILD_TIME

MEMBERS = 28_000
DEFAULT_TARGETS_CAP = 5_000_000


def _entry(path: str, data: bytes) -> TargetEntry:
    return TargetEntry(path, len(data), hashlib.sha256(data).hexdigest())


def _large_repository(publisher: Any) -> tuple[Path, str, int, int]:
    """A publish tree whose one edition lists ``MEMBERS`` articles; (tree, eid, ts, role size)."""
    config = publisher.config
    keyring = load_keyring(config.keys.dir, config.passphrase())
    eid = layout.edition_id(BUILD_TIME.strftime("%Y-%m-%d"), 1)
    info = edition_info(
        config, eid=eid, version=1, created=BUILD_TIME, expires=BUILD_TIME + timedelta(days=30)
    )
    mirrors = mirror_list(config)
    info_entry = _entry(layout.EDITION_INFO_MEMBER, info)
    mirrors_entry = _entry(layout.MIRROR_LIST_PATH, mirrors)
    articles = [
        TargetEntry(
            f"articles/{'long-article-slug-' * 3}{i:05d}.html",
            4000 + i,
            hashlib.sha256(str(i).encode()).hexdigest(),
        )
        for i in range(MEMBERS)
    ]
    policy = ExpiryPolicy()
    signing = sign_edition(
        RepositoryState(),
        signer=keyring.signer("targets"),
        eid=eid,
        members=MemberLedger.of([*articles, info_entry, mirrors_entry], bits=4),
        mirror_list=mirrors_entry,
        now=BUILD_TIME,
        policy=policy,
    )
    # The edition role as mirror wrote it before shards: every member listed in it.
    role = signing.edition_role.metadata()
    role.signed.targets = {
        path: TargetFile(entry.length, {"sha256": entry.sha256}, path)
        for entry in [*articles, info_entry, mirrors_entry]
        for path in [layout.manifest_path(eid, entry.path)]
    }
    role.signatures.clear()
    role.sign(keyring.signer("targets"))
    whole = SignedRole.of(signing.edition_role.name, role, role.to_bytes(serializer()))
    state = replace(signing.state, roles={**signing.state.roles, whole.name: whole})
    changed = [whole if r.name == whole.name else r for r in signing.changed]
    release = sign_release(
        state,
        targets_signer=keyring.signer("targets"),
        snapshot_signer=keyring.signer("snapshot"),
        timestamp_signer=keyring.signer("timestamp"),
        release_files=[],
        now=BUILD_TIME,
        policy=policy,
    )
    tree = config.publish_dir
    publish_tree.write_targets(
        tree,
        [
            PublishedTarget(
                layout.manifest_path(eid, layout.EDITION_INFO_MEMBER), info_entry.sha256, data=info
            ),
            PublishedTarget(layout.MIRROR_LIST_PATH, mirrors_entry.sha256, data=mirrors),
        ],
    )
    publish_tree.write_metadata(
        tree,
        root_chain=keyring.root_chain,
        roles=[*changed, *release.changed],
        snapshot=release.snapshot,
        snapshot_version=release.snapshot_version,
        timestamp=release.timestamp,
    )
    return tree, eid, release.state.timestamp_version, len(whole.data)


@pytest.mark.slow
def test_read_back_accepts_an_edition_member_list_over_5_mb(
    new_publisher: Any, tmp_path: Path
) -> None:
    publisher = new_publisher(articles=1)
    tree, eid, timestamp_version, role_bytes = _large_repository(publisher)
    assert role_bytes > DEFAULT_TARGETS_CAP
    url = tree.as_uri() + "/"

    # A stock python-tuf client with its default caps refuses this genuine repository...
    (tmp_path / "stock").mkdir()
    fetcher = DeadlineFetcher()
    stock = Updater(
        metadata_dir=str(tmp_path / "stock"),
        metadata_base_url=f"{url}metadata/",
        fetcher=fetcher,
        bootstrap=publish_tree.first_root(tree),
    )
    with pytest.raises(tuf_errors.DownloadLengthMismatchError):
        stock.get_targetinfo(layout.manifest_path(eid, layout.EDITION_INFO_MEMBER))
    fetcher.close()

    # ... while the read-back, with the reader's caps, verifies it.
    result = read_back_sync(
        url,
        bootstrap_root=publish_tree.first_root(tree),
        eid=eid,
        expected_timestamp_version=timestamp_version,
        now=BUILD_TIME + timedelta(minutes=5),
    )
    assert (result.eid, result.timestamp_version) == (eid, timestamp_version)
