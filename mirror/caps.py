"""The caps on signed files, shared by every reader of them: one number per question.

A mirror, a USB stick or a messenger can hand us a file of any size. Each
kind of signed file has one cap here, and every part of mirror that reads
that kind of file — `mirror fetch`, `mirror verify`, the push read-back,
`mirror status`, `mirror tuf-client`, the publisher reading its own tree —
uses the same one. Two copies of a cap drift: the read-back once ran with
python-tuf's default of 5 MB for a targets role while the reader allowed
64 MB, so a large archive that every reader accepted was reported as
tampered by the push that published it.

Sizes follow what is signed. An edition's role lists its own pages and
one member shard per non-empty hash bin (ADR 0020), a few dozen kilobytes
whatever the archive; each shard lists the articles and assets of its bin,
about 130 bytes a member (60 KB per shard at 100,000 articles in 256 bins).
A content bin is about 200 bytes a target. The caps leave room for
millions of members.

Other caps live with the code that owns the format: the archive structure
in `mirror.edition.ArchiveLimits`, article sources in
`mirror.ingest.model.IngestLimits`, backend transfers in
`mirror.backends.base.CallLimits`.
"""

from __future__ import annotations

ROOT_MAX_BYTES = 1024 * 1024
"""One version of root metadata: pinned, stored, embedded in an edition or served."""

TIMESTAMP_MAX_BYTES = 16 * 1024
"""``timestamp.json``: one entry, a few signatures."""

SNAPSHOT_MAX_BYTES = 16 * 1024 * 1024
"""The snapshot: one line per targets role (256 bins, one role per edition kept)."""

TARGETS_MAX_BYTES = 64 * 1024 * 1024
"""Any targets role: top-level, a hash bin, or an edition's member list."""

MEMBER_SHARD_MAX_BYTES = 16 * 1024 * 1024
"""One member shard: the articles and assets of one hash bin of an edition."""

EDITION_INFO_MAX_BYTES = 64 * 1024
"""An edition's ``edition.json``: id, version, dates, publisher, title."""

MAX_ROOT_ROTATIONS = 1024
"""Root versions one walk may accept (python-tuf's refresh and the offline chain alike)."""

LATEST_BUNDLE_MAX_BYTES = 64 * 1024 * 1024
"""Largest latest bundle a reader downloads (the newest articles; with images, the most)."""

MIN_TRANSFER_RATE_BYTES_PER_S = 256 * 1024
"""The slowest transfer still taken for an honest one (2 Mbit/s): time budgets grow by a second
per this many bytes to move, so a large archive's honest download, push or read-back is never
cut off by a budget sized for a small one, while a trickling censor still is."""
