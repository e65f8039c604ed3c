"""Where every kind of file lives in the TUF repository, and which role signs it.

::

    root ─┬─ timestamp ── snapshot (versions of every targets role)
          └─ targets                      lists  mirrors.json (the signed mirror list) and
              │                                  reader.html (the browser's checking page)
              ├─ content   articles/*, assets/*/*      ─► 2**bits succinct hash bins content-XX
              ├─ editions  editions/*                  lists <id>.zip and <id>.zip.minisig, and
              │                                        <id>.latest.zip (the newest articles)
              └─ manifests manifests/*/* … /*/*/*/*    ─► edition-<id>: one role per edition,
                                                          listing that ZIP's pages as
                                                          manifests/<id>/<member>, and its
                                                          articles and assets through member
                                                          shards manifests/<id>/members/<bin>.json

Why this shape (docs/adr/0003-metadata-layout.md): adding ten articles to a
large archive re-signs only the ten bins they fall in plus a small
per-edition role whose member shards (ADR 0020) change only where the new
articles fall, so incremental updates stay small; the edition ZIP can
carry its own proof (root chain, targets, manifests, its edition role) with
no circularity, because the ZIP's own hash lives only in ``editions``,
which the ZIP does not embed. All delegations are *terminating*, so a role
can never be used to claim a path outside its patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

CONTENT_ROLE = "content"
EDITIONS_ROLE = "editions"
MANIFESTS_ROLE = "manifests"
EDITION_ROLE_PREFIX = "edition-"
TOP_LEVEL_ROLES = ("root", "timestamp", "snapshot", "targets")
ONLINE_ROLES = ("targets", "snapshot", "timestamp")

CONTENT_PATTERNS = ("articles/*", "assets/*/*")
EDITIONS_PATTERNS = ("editions/*",)
MANIFESTS_PATTERNS = ("manifests/*/*", "manifests/*/*/*", "manifests/*/*/*/*")

MIRROR_LIST_PATH = "mirrors.json"
"""Stable target path of the signed mirror list (top-level ``targets`` lists it)."""

READER_PAGE_PATH = "reader.html"
"""Target path of the publisher's ``reader.html`` for the newest root (top-level ``targets``
lists it), so a reader with only a browser can get it from any mirror and check its hash."""

EDITION_INFO_MEMBER = "edition.json"
"""ZIP member carrying the edition's id, version, created and expires times."""

ARCHIVE_METADATA_DIR = ".mirror/"
"""Folder inside an edition ZIP that holds the embedded signed metadata."""

EDITION_ID_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}-v[0-9]{1,12}$")


def edition_id(created_date: str, version: int) -> str:
    """The id of an edition: its creation date and version, e.g. ``2026-11-26-v7``."""
    return f"{created_date}-v{version}"


def edition_version(eid: str) -> int:
    """The version number inside an edition id (``2026-11-26-v7`` -> 7)."""
    return int(eid.rsplit("-v", 1)[1])


def newest_edition(eids: Iterable[str]) -> str:
    """The edition id with the highest version (the newest edition)."""
    return max(eids, key=edition_version)


def edition_date(eid: str) -> date:
    """The creation date inside an edition id."""
    return date.fromisoformat(eid[:10])


def edition_role(eid: str) -> str:
    """Name of the role that lists the members of edition ``eid``."""
    return f"{EDITION_ROLE_PREFIX}{eid}"


def edition_role_patterns(eid: str) -> list[str]:
    """Paths the per-edition role may list: its own manifest folder, nothing else."""
    return [f"manifests/{eid}/*", f"manifests/{eid}/*/*", f"manifests/{eid}/*/*/*"]


MEMBER_SHARD_RE = re.compile(r"^members/[0-9a-f]{1,8}\.json$")
"""Name of a member shard under ``manifests/<id>/`` (`mirror.trust.members`, ADR 0020)."""

MAX_MEMBER_NAME_BYTES = 512
"""Longest member name, in UTF-8 bytes (as an edition ZIP allows)."""


def member_shard(suffix: str) -> str:
    """The name under ``manifests/<id>/`` of the member shard of hash bin ``suffix`` (hex)."""
    return f"members/{suffix}.json"


def is_member_shard(name: str) -> bool:
    """Whether an edition role's entry (a name under ``manifests/<id>/``) is a member shard."""
    return MEMBER_SHARD_RE.fullmatch(name) is not None


def archive_shard_name(name: str) -> str:
    """Where an edition ZIP embeds member shard ``name``: with the signed metadata."""
    return f"{ARCHIVE_METADATA_DIR}{name}"


def manifest_path(eid: str, member: str) -> str:
    """Target path under which edition ``eid`` lists its ZIP member ``member``."""
    return f"manifests/{eid}/{member}"


def edition_zip_path(eid: str) -> str:
    """Target path of the edition archive itself."""
    return f"editions/{eid}.zip"


LATEST_SUFFIX = ".latest.zip"
"""Ending of a latest bundle's name: the newest articles of one edition, for a bad link."""


def latest_bundle_path(eid: str) -> str:
    """Target path of the small "latest articles" bundle of edition ``eid``."""
    return f"editions/{eid}{LATEST_SUFFIX}"


def is_latest_bundle(path: str) -> bool:
    """Whether a target (or tree) path names a latest bundle."""
    return path.endswith(LATEST_SUFFIX)


def archive_edition_id(path: str) -> str | None:
    """The edition id of an edition archive's target path ``editions/<id>.zip``, else None.

    Signatures (``.minisig``) and latest bundles are not edition archives.
    """
    name = path.rsplit("/", 1)[-1]
    eid = name.removesuffix(".zip")
    return eid if name.endswith(".zip") and EDITION_ID_RE.match(eid) else None


CONTENT_PREFIXES = ("articles/", "assets/")
"""Where members live that are shared across editions (the content bins list them)."""


def is_content_path(member: str) -> bool:
    """Articles and assets are shared across editions and live in the content bins."""
    return member.startswith(CONTENT_PREFIXES)


def archive_root_name(version: int) -> str:
    """Name of root version ``version`` inside an edition ZIP."""
    return f"{ARCHIVE_METADATA_DIR}root/{version}.root.json"


def archive_role_name(role: str) -> str:
    """Name of a non-root role's metadata inside an edition ZIP."""
    return f"{ARCHIVE_METADATA_DIR}{role}.json"
