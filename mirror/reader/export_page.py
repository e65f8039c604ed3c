"""`reader.html`: the browser verifier and the publisher's pinned root, assembled into one file.

The page's sources are readable files in ``mirror/reader_page/`` (an HTML
template, one stylesheet, eight scripts). Assembly inlines them, and with
them every number and name the Python reader decides by, so that the two
readers cannot drift apart:

- the archive caps (`mirror.edition.ArchiveLimits`), the caps on signed files
  (`mirror.caps`), strict JSON's limits (`mirror.trust.strictjson`), the root
  chain bound and clock skew (`mirror.trust.verify`), the layout names
  (`mirror.trust.layout`, `mirror.trust.publisher`), the field that records
  retired keys (`mirror.trust.retired`);
- Python's own case folding (``str.casefold`` differs from JavaScript's
  ``toLowerCase``: "ß", "ﬁ", final sigma), which decides name collisions;
- the key types python-tuf accepts, and the verdict table
  (`mirror.reader.page_verdicts`, built from `mirror.errors`).

The script runs under a Content-Security-Policy that allows exactly its own
hash and no network. The result is deterministic: the same root bytes and
the same mirror (and Python) give byte-identical pages, so anyone can
rebuild a page and compare its SHA-256 with the one the publisher announced.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import html
import json
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from securesystemslib.signer import KEY_FOR_TYPE_AND_SCHEME
from tuf.api.metadata import Root

from mirror import __version__, caps, fsutil
from mirror.edition import _RATIO_MIN_BYTES, ArchiveLimits
from mirror.errors import UsageError
from mirror.reader.page_verdicts import verdict_table
from mirror.reader.verify_file import load_pinned_root
from mirror.trust import layout, strictjson, verify
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import PUBLISHER_FIELD, Publisher, publisher_of
from mirror.trust.retired import LISTING_FIELDS, RETIRED_FIELD

SOURCES = "reader_page"
"""Folder of the page's sources inside the `mirror` package."""

SCRIPTS = (
    "base.js",
    "strictjson.js",
    "sha256.js",
    "zip.js",
    "tuf.js",
    "verify.js",
    "store.js",
    "view.js",
)
"""The page's scripts, in the order they are inlined (each extends ``MirrorReader``)."""

INDEX_MEMBER = "index.html"
"""The member the page opens first (written by `mirror.render`)."""

STREAM_HASH_BYTES = 64 * 1024 * 1024
"""Members larger than this are hashed chunk by chunk in JavaScript, not held whole."""

_FORBIDDEN_IN_SCRIPT = ("</script", "<!--", "@@")


@dataclass(frozen=True)
class ReaderPage:
    """An assembled ``reader.html`` and what it embeds."""

    html: bytes
    sha256: str
    publisher: Publisher
    root_version: int


def _source(name: str) -> str:
    return (resources.files("mirror") / SOURCES / name).read_text(encoding="utf-8")


def _casefold_table() -> dict[str, str]:
    """Every code point whose ``str.casefold`` is not itself (about 1,500 of them)."""
    return dict(_casefold_pairs())


@functools.cache
def _casefold_pairs() -> tuple[tuple[str, str], ...]:
    """`_casefold_table`'s pairs, found once per process (about 50 ms).

    Case folding has no context, so a block of code points that folds to itself
    holds none of them: only the few blocks that change are looked at one by one
    (a build makes this page every time; one by one it took 0.4 s).
    """
    pairs: list[tuple[str, str]] = []
    for start in range(0, sys.maxunicode + 1, _CASEFOLD_BLOCK):
        block = "".join(map(chr, range(start, min(start + _CASEFOLD_BLOCK, sys.maxunicode + 1))))
        if block.casefold() == block:
            continue
        for offset, char in enumerate(block):
            folded = char.casefold()
            if folded != char:
                pairs.append((str(start + offset), folded))
    return tuple(pairs)


_CASEFOLD_BLOCK = 256


def page_data(root_bytes: bytes) -> dict[str, Any]:
    """Everything the page's scripts read from the Python reader, as one JSON-ready object."""
    limits = dataclasses.asdict(ArchiveLimits())
    limits["ratio_min_bytes"] = _RATIO_MIN_BYTES
    return {
        "format": 1,
        "mirror_version": __version__,
        "root": base64.b64encode(root_bytes).decode("ascii"),
        "json": {
            "max_int_digits": strictjson.MAX_INT_DIGITS,
            "max_document_bytes": strictjson.MAX_DOCUMENT_BYTES,
        },
        "limits": limits,
        "caps": {
            "root_max_bytes": caps.ROOT_MAX_BYTES,
            "targets_max_bytes": caps.TARGETS_MAX_BYTES,
            "edition_info_max_bytes": caps.EDITION_INFO_MAX_BYTES,
            "member_shard_max_bytes": caps.MEMBER_SHARD_MAX_BYTES,
        },
        "verify": {
            "max_root_chain": caps.MAX_ROOT_ROTATIONS,
            "clock_skew_s": int(verify.CLOCK_SKEW.total_seconds()),
        },
        "layout": {
            "archive_metadata_dir": layout.ARCHIVE_METADATA_DIR,
            "edition_role_prefix": layout.EDITION_ROLE_PREFIX,
            "manifests_role": layout.MANIFESTS_ROLE,
            "edition_info_member": layout.EDITION_INFO_MEMBER,
            "member_shard_re": layout.MEMBER_SHARD_RE.pattern,
            "content_prefixes": list(layout.CONTENT_PREFIXES),
            "max_member_name_bytes": layout.MAX_MEMBER_NAME_BYTES,
            "edition_id_re": layout.EDITION_ID_RE.pattern,
            "publisher_field": PUBLISHER_FIELD,
            "retired_keys_field": RETIRED_FIELD,
            "retired_listing_fields": list(LISTING_FIELDS),
            "index_member": INDEX_MEMBER,
        },
        "key_types": sorted([list(pair) for pair in KEY_FOR_TYPE_AND_SCHEME]),
        "casefold": _casefold_table(),
        "stream_hash_bytes": STREAM_HASH_BYTES,
        "verdicts": verdict_table(),
    }


def _script() -> str:
    parts = []
    for name in SCRIPTS:
        text = _source(name)
        for forbidden in _FORBIDDEN_IN_SCRIPT:
            if forbidden in text.lower():
                raise ValueError(f"mirror/{SOURCES}/{name} contains {forbidden!r}")
        parts.append(f"/* ---- {name} ---- */\n{text}")
    return "\n".join(parts)


def _json_for_html(value: dict[str, Any]) -> str:
    """Compact, sorted, ASCII JSON that cannot close the <script> element holding it."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_reader_page(root_bytes: bytes) -> ReaderPage:
    """Assemble ``reader.html`` around ``root_bytes`` (a root already checked by the caller).

    Deterministic: the same root bytes give the same page for one mirror version.
    """
    root = parse_metadata(root_bytes, Root, what="the root to embed")
    publisher = publisher_of(root.signed)
    threshold = root.signed.roles[Root.type]
    script = _script()
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    policy = (
        f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    root_info = (
        f"{publisher.name}, root version {root.signed.version} "
        f"({threshold.threshold} of {len(threshold.keyids)} keys), id {publisher.publisher_id}"
    )
    values = {
        "@@CSP@@": policy,
        "@@TITLE@@": html.escape(f"{publisher.name}: check an edition"),
        "@@PUBLISHER@@": html.escape(publisher.name),
        "@@ROOT_INFO@@": html.escape(root_info),
        "@@VERSION@@": html.escape(__version__),
        "@@STYLE@@": _source("reader.css"),
        "@@DATA@@": _json_for_html(page_data(root_bytes)),
        "@@SCRIPT@@": script,
    }
    # One pass: text inserted for one marker is never searched for another.
    text = re.sub(r"@@[A-Z_]+@@", lambda match: values[match.group(0)], _source("reader.html"))
    data = text.encode("utf-8")
    return ReaderPage(
        html=data,
        sha256=hashlib.sha256(data).hexdigest(),
        publisher=publisher,
        root_version=root.signed.version,
    )


def export_reader_page(root_path: Path, out: Path) -> ReaderPage:
    """Check the root at ``root_path`` as a reader's pinned root, then write ``out`` atomically.

    Raises `UsageError` for a root a reader could not pin, `StorageError` when
    the root cannot be read or the page cannot be written.
    """
    try:
        load_pinned_root(root_path)
    except UsageError as error:
        raise error.reworded(
            error.message, "Embed the root.json of the key store (keys/root.json), or pass --root."
        ) from error
    root_bytes = fsutil.read_bounded(root_path, max_bytes=caps.ROOT_MAX_BYTES, what="root")
    page = build_reader_page(root_bytes)
    fsutil.atomic_write_bytes(out, page.html)
    return page
