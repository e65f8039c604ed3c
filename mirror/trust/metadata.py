"""Parsing untrusted TUF metadata into typed python-tuf objects, strictly.

python-tuf's own deserializer uses plain `json.loads`; we parse with
`strictjson` first (duplicate keys, floats and huge numbers rejected) and
turn every error python-tuf raises for malformed input into a
`TamperedError`, so callers see one error family for hostile metadata.
"""

from __future__ import annotations

from typing import TypeVar

from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from mirror.errors import TamperedError
from mirror.trust import strictjson

T = TypeVar("T", Root, Targets, Snapshot, Timestamp)


def parse_metadata(data: bytes, kind: type[T], *, what: str) -> Metadata[T]:
    """Parse ``data`` as signed metadata of type ``kind``; raise `TamperedError` if it is not."""
    document = strictjson.loads(data, what=what)
    try:
        metadata: Metadata[T] = Metadata.from_dict(document)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise TamperedError(f"{what} is not valid TUF metadata ({error})") from error
    if not isinstance(metadata.signed, kind):
        raise TamperedError(f"{what} is {metadata.signed.type} metadata, expected {kind.type}")
    return metadata


def serializer() -> JSONSerializer:
    """How all metadata is written: compact JSON, deterministic for the same content."""
    return JSONSerializer(compact=True)
