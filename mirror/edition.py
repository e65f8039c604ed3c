"""Edition archives: a deterministic ZIP writer and a strict, bounded ZIP reader.

Readers get edition ZIPs from hostile mirrors, messengers and USB sticks, so
the reader proves the whole structure sane before anything is read, and the
writer produces exactly the narrow dialect the reader accepts. Neither uses
`zipfile`: it tolerates prepended and trailing data, duplicate names and
overlapping members, each of which hides data from one tool that another
tool shows. The format is parsed with `struct`; every read is capped by the
file size or an `ArchiveLimits` value, never by a length the file declares.

Rules `EditionArchive.open` enforces (each raises `UnsafeArchiveError` with one
sentence naming the member and the rule), and the attack each one stops:

1. End record exactly at the end of the file, without a comment; a ZIP64
   end record and locator only when a 32-bit field is saturated, and only
   directly before the end record; all disk numbers 0; entry counts agree.
   Stops trailing data and comments that smuggle a second archive or
   payload past tools that only look at the front (polyglots).
2. The members' local headers and data tile the file from byte 0 to the
   central directory with no gap and no overlap, in central-directory order,
   and the central directory runs exactly to the end record. Stops prepended
   stubs (self-extractors, polyglots), hidden data between members, and
   overlapping members (several entries sharing one span: the quadratic
   "non-recursive zip bomb", and archives that unpack differently per tool).
3. Each local header agrees with its central entry (name bytes, method,
   flags, CRC-32, sizes; ZIP64 values resolved); the only extra field allowed
   anywhere is ZIP64. Stops archives that show one name or content to tools
   reading local headers (streaming unzip) and another to central readers.
4. Only STORED and DEFLATE; no encryption; no data descriptor; no unknown
   flag bits (bit 11, and bits 1-2 for deflate, are allowed). Stops size
   games with descriptors and parsers we have not audited.
5. Only regular files: no symlink, directory, device, FIFO or socket modes,
   no set-uid/set-gid/sticky bits, no MS-DOS directory bit, no name ending
   in '/'. Stops link-following writes outside the target and device nodes.
6. Names: valid UTF-8 (ASCII when bit 11 is clear); no control, line
   separator or bidirectional-override characters; no backslash, no leading
   '/', no drive letter or ':' at all, no empty, '.' or '..' segment; byte,
   segment and depth caps. Stops path traversal (zip slip) on POSIX and
   Windows, alternate data streams, and names that spoof their extension.
7. No duplicate names, no two names equal after NFC + casefold (they land on
   one file on macOS/Windows, and which one wins depends on the tool), and no
   name that is both a file and a folder of another member.
8. Caps on member count, each size, the total size, and the compression
   ratio of deflated members over 64 KiB. Stops zip bombs before inflating.

`EditionArchive.iter_chunks` then inflates with a hard output cap of the
declared size + 1, so a member whose real data is longer (or shorter) than
declared, or whose CRC-32 is wrong, raises instead of exhausting memory or
disk. Chunks already yielded are untrusted until the generator finishes.
Once `open` proved the structure sane, a member whose data then fails its
own checks (corrupt deflate data, data after the stream, more or fewer bytes
than declared, a wrong CRC-32) holds changed bytes: that is `TamperedError`
(exit 10, like a wrong signed hash), never `UnsafeArchiveError`, whichever
member it is and whoever reads it (`_damaged` is that one rule). Only the
structure, and a declared size over the caller's cap, are unsafe-archive.

`EditionWriter` writes members in the order added, with one fixed DOS
timestamp (UTC, clamped to 1980-2107), mode 0o100644 made by Unix, the UTF-8
flag, no extra fields except ZIP64 where a value needs it (sizes or offsets
>= 0xFFFFFFFF, 65,535 or more members), no comments and no data descriptors,
into a temp file in the destination folder that is fsynced and then replaces
the destination atomically on `close`. It applies rules 6 and 7 to names, so
it cannot write an archive the reader refuses for its names; the size caps
of rule 8 are the reader's policy and are not applied when writing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import os
import stat
import struct
import tempfile
import unicodedata
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import BinaryIO, Final, Self, overload

from mirror import fsutil
from mirror.errors import (
    IncompleteEditionError,
    NotARegularFileError,
    StorageError,
    TamperedError,
    UnsafeArchiveError,
)

__all__ = [
    "ArchiveDigest",
    "ArchiveLimits",
    "ArchiveMember",
    "EditionArchive",
    "EditionWriter",
    "MemberDigest",
    "MemberIndex",
    "PreparedMember",
    "prepare_member",
]

CHUNK_BYTES: Final = 1024 * 1024
"""Size of every read and of every inflated chunk."""

METHOD_STORED: Final = 0
METHOD_DEFLATED: Final = 8

# Values at or above these limits go into ZIP64 fields. Module variables (not
# constants) so tests can lower them and exercise every ZIP64 path with tiny files.
_ZIP64_LIMIT = 0xFFFFFFFF
_ZIP64_COUNT_LIMIT = 0xFFFF

_U32_SENTINEL: Final = 0xFFFFFFFF
_U16_SENTINEL: Final = 0xFFFF

_LOCAL: Final = struct.Struct("<IHHHHHIIIHH")
_CENTRAL: Final = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD: Final = struct.Struct("<IHHHHIIH")
_ZIP64_EOCD: Final = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR: Final = struct.Struct("<IIQI")
_EXTRA_HEADER: Final = struct.Struct("<HH")

_LOCAL_SIG: Final = 0x04034B50
_CENTRAL_SIG: Final = 0x02014B50
_EOCD_SIG: Final = 0x06054B50
_ZIP64_EOCD_SIG: Final = 0x06064B50
_ZIP64_LOCATOR_SIG: Final = 0x07064B50
_ZIP64_EXTRA_ID: Final = 0x0001
_ZIP64_LOCAL_EXTRA: Final = 20
"""Bytes of the only extra field a local header may carry: ZIP64, both sizes."""
_DIRECTORY_WINDOW: Final = CHUNK_BYTES
"""Bytes of the central directory read at a time while it is checked."""

_FLAG_ENCRYPTED: Final = 0x0001
_FLAG_DEFLATE_OPTIONS: Final = 0x0006
_FLAG_DATA_DESCRIPTOR: Final = 0x0008
_FLAG_STRONG_ENCRYPTION: Final = 0x0040
_FLAG_UTF8: Final = 0x0800
_FLAG_MASKED_HEADERS: Final = 0x2000

_VERSION_DEFAULT: Final = 20
_VERSION_ZIP64: Final = 45
_HOST_UNIX: Final = 3
_HOST_OSX: Final = 19
_DOS_DIRECTORY: Final = 0x10
_REGULAR_FILE_ATTR: Final = (stat.S_IFREG | 0o644) << 16

_RATIO_MIN_BYTES: Final = 64 * 1024
_MAX_EOCD_SEARCH: Final = _EOCD.size + 0xFFFF

_STORED_SUFFIXES: Final = frozenset(
    {
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif",
        ".mp3", ".mp4", ".m4a", ".ogg", ".opus", ".webm",
        ".zip", ".gz", ".bz2", ".xz", ".zst", ".woff", ".woff2", ".pdf",
    }
)  # fmt: skip

# Bidirectional embeddings, overrides, isolates and marks: they make
# "evil\u202egpj.html" display as "evilhtml.jpg".
_BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_CONTROL_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})

_FILE_TYPES: Final = {
    stat.S_IFLNK: "a symlink",
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps the reader enforces before reading any member data."""

    max_members: int = 200_000
    max_total_bytes: int = 8 * 1024**3
    """Sum of the declared uncompressed sizes."""
    max_member_bytes: int = 2 * 1024**3
    max_name_bytes: int = 512
    """Whole name, in UTF-8 bytes."""
    max_segment_bytes: int = 255
    """One path segment, in UTF-8 bytes."""
    max_depth: int = 8
    """Path segments in one name."""
    max_ratio: int = 100
    """Uncompressed / compressed size, checked for deflated members over 64 KiB."""

    def ratio_accepted(self, size: int, compressed_size: int) -> bool:
        """Whether a deflated member of these sizes is within the zip-bomb cap.

        The one rule for both sides: the reader refuses an archive with a member
        beyond it, and the writer stores such a member instead of deflating it,
        so a very repetitive page or file never makes an edition unreadable.
        """
        return size <= _RATIO_MIN_BYTES or size <= self.max_ratio * max(compressed_size, 1)


@dataclass(frozen=True, slots=True)
class MemberDigest:
    """What the writer reports for one member: its uncompressed length and SHA-256."""

    name: str
    length: int
    sha256: str
    """Lower-case hex."""


@dataclass(frozen=True)
class ArchiveDigest:
    """Length and digests of the whole finished archive file."""

    length: int
    sha256: str
    """Lower-case hex."""
    blake2b_512: bytes
    """Raw 64-byte digest, as minisign's prehashed signatures need it."""


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """One member of an opened archive, with its structure already validated."""

    name: str
    method: int
    """0 (stored) or 8 (deflated)."""
    compressed_size: int
    size: int
    crc32: int
    header_offset: int
    data_offset: int


class MemberIndex(Sequence[ArchiveMember]):
    """An opened archive's members in archive order, packed: seven numbers each in one
    array, the names in a list, an `ArchiveMember` made when one is asked for.

    120,000 members as objects, each with its own int objects, took about 40 MB;
    packed they take a third of that.
    """

    _STRIDE: Final = 7
    """method, flags, compressed size, size, CRC-32, header offset, data offset."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._numbers = array("Q")
        self._at: dict[str, int] = {}

    def add(
        self, name: str, *, method: int, flags: int, compressed_size: int, size: int, crc32: int,
        header_offset: int,
    ) -> None:  # fmt: skip
        """One more member, its data offset not known yet (`set_data_offset`)."""
        self._at[name] = len(self.names)
        self.names.append(name)
        self._numbers.extend((method, flags, compressed_size, size, crc32, header_offset, 0))

    def flags(self, index: int) -> int:
        return self._numbers[index * self._STRIDE + 1]

    def set_data_offset(self, index: int, offset: int) -> None:
        self._numbers[index * self._STRIDE + 6] = offset

    def find(self, name: str) -> ArchiveMember | None:
        """The member called exactly ``name``, or None."""
        index = self._at.get(name)
        return None if index is None else self[index]

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> ArchiveMember: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ArchiveMember, ...]: ...
    def __getitem__(self, index: int | slice) -> ArchiveMember | tuple[ArchiveMember, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        name = self.names[index]  # raises IndexError, negative indexes count from the end
        at = (index % len(self.names)) * self._STRIDE
        method, _, compressed_size, size, crc32, header_offset, data_offset = self._numbers[
            at : at + self._STRIDE
        ]
        return ArchiveMember(name, method, compressed_size, size, crc32, header_offset, data_offset)


# ---------------------------------------------------------------------------
# Names


def _show(name: str | bytes) -> str:
    """A name for an error message: quoted, escaped, and cut short."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _name_problem(name: str, limits: ArchiveLimits) -> str | None:
    """Why `name` is not a safe member name, or None when it is."""
    if not name:
        return "has an empty name"
    # Printable ASCII (every name mirror writes) holds no control or bidirectional character.
    for char in "" if name.isascii() and name.isprintable() else name:
        if unicodedata.category(char) in _CONTROL_CATEGORIES:
            return f"has a control character U+{ord(char):04X} in its name"
        if char in _BIDI_CONTROLS:
            return f"has a bidirectional formatting character U+{ord(char):04X} in its name"
    name_bytes = len(name.encode("utf-8"))
    if name_bytes > limits.max_name_bytes:
        return (
            f"has a name of {name_bytes} bytes, over the cap of {limits.max_name_bytes} "
            "(name too long)"
        )
    if "\\" in name:
        return "has a backslash in its name"
    if name.startswith("/"):
        return "has an absolute name (it starts with '/')"
    if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
        return "starts with a drive letter"
    if ":" in name:
        return "has ':' in its name (a Windows drive or alternate data stream)"
    if name.endswith("/"):
        return "is a directory (its name ends with '/'); only regular files are allowed"
    segments = name.split("/")
    for segment in segments:
        if segment == "":
            return "has an empty path segment"
        if segment in (".", ".."):
            return f"has a '{segment}' path segment (path traversal)"
        segment_bytes = len(segment.encode("utf-8"))
        if segment_bytes > limits.max_segment_bytes:
            return (
                f"has a path segment of {segment_bytes} bytes, over the cap of "
                f"{limits.max_segment_bytes} (segment too long)"
            )
    if len(segments) > limits.max_depth:
        return (
            f"is {len(segments)} segments deep, over the cap of {limits.max_depth} (path too deep)"
        )
    return None


def _collision_key(name: str) -> str:
    """Two names with one key land on one file on case-insensitive or normalising systems."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class _NameRegistry:
    """Rejects duplicate names, case/normalisation collisions and file/folder clashes.

    Files are kept by the hash of their collision key, next to the name itself
    (which the archive's records hold anyway): a key string per member cost
    about 80 bytes. A hash match is confirmed with the key recomputed from the
    name, and the rare names whose hashes collide are kept by their whole key.
    """

    def __init__(self) -> None:
        self._files: dict[int, str] = {}
        self._by_key: dict[str, str] = {}
        """Files whose key's hash another key took first."""
        self._folders: dict[str, str] = {}

    def _file(self, key: str) -> str | None:
        """The name added with collision key ``key``, if any."""
        found = self._files.get(hash(key))
        if found is not None and _collision_key(found) == key:
            return found
        return self._by_key.get(key)

    def check(self, name: str) -> None:
        """Raise if `name` clashes with a name already added."""
        key = _collision_key(name)
        other = self._file(key)
        if other == name:
            raise UnsafeArchiveError(f"Member {_show(name)} appears twice (duplicate names).")
        if other is not None:
            # Escape names that only differ in normalisation, or the message shows twins.
            same_text = unicodedata.normalize("NFC", other) == unicodedata.normalize("NFC", name)
            show = ascii if same_text else _show
            raise UnsafeArchiveError(
                f"Members {show(other)} and {show(name)} collide when case and Unicode "
                "normalisation are ignored."
            )
        if key in self._folders:
            raise UnsafeArchiveError(
                f"Member {_show(name)} is also a folder of member {_show(self._folders[key])} "
                "(file/folder collision)."
            )
        for prefix in _folder_keys(key):
            clash = self._file(prefix)
            if clash is not None:
                raise UnsafeArchiveError(
                    f"Member {_show(name)} uses member {_show(clash)} as a folder "
                    "(file/folder collision)."
                )

    def add(self, name: str) -> None:
        """Record `name`; call `check` first."""
        key = _collision_key(name)
        for prefix in _folder_keys(key):
            self._folders.setdefault(prefix, name)
        taken = self._files.setdefault(hash(key), name)
        if taken is not name and _collision_key(taken) != key:
            self._by_key[key] = name

    def admit(self, name: str) -> None:
        self.check(name)
        self.add(name)


def _folder_keys(key: str) -> Iterator[str]:
    """'a/b/c' -> 'a', 'a/b'."""
    position = key.find("/")
    while position >= 0:
        yield key[:position]
        position = key.find("/", position + 1)


# ---------------------------------------------------------------------------
# Writer


def _dos_date_time(timestamp: datetime) -> tuple[int, int]:
    """MS-DOS (date, time) of `timestamp` in UTC (naive means UTC), clamped to 1980-2107."""
    moment = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp
    moment = moment.astimezone(UTC)
    if moment.year < 1980:
        return (1 << 5) | 1, 0
    if moment.year > 2107:
        return (127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date, time


def _wants_deflate(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() not in _STORED_SUFFIXES


@dataclass(frozen=True)
class PreparedMember:
    """A member compressed ahead of writing: what `EditionWriter.add_prepared` takes.

    Made by `prepare_member` only, so the bytes are those `add_bytes` would
    write; small enough to send back from a worker process.
    """

    name: str
    method: int
    crc32: int
    size: int
    sha256: str
    payload: bytes
    """The bytes stored in the archive: deflated, or the data itself."""
    compresslevel: int
    data: bytes
    """The member's bytes (the publish tree keeps them uncompressed)."""
    payload_crc32: int
    """CRC-32 of `payload`, to check a later raw copy of it without inflating."""


def prepare_member(name: str, data: bytes, *, compresslevel: int) -> PreparedMember:
    """Compress ``data`` as the writer does: deflate unless the name says it is compressed
    already, and store it when deflating does not make it smaller or makes it smaller
    than the reader's zip-bomb cap accepts (`ArchiveLimits.ratio_accepted`)."""
    method, payload = METHOD_STORED, data
    if data and _wants_deflate(name):
        compressor = zlib.compressobj(compresslevel, zlib.DEFLATED, -15)
        deflated = compressor.compress(data) + compressor.flush()
        if len(deflated) < len(data) and ArchiveLimits().ratio_accepted(len(data), len(deflated)):
            method, payload = METHOD_DEFLATED, deflated
    return PreparedMember(
        name=name,
        method=method,
        crc32=zlib.crc32(data),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        payload=payload,
        compresslevel=compresslevel,
        data=data,
        payload_crc32=zlib.crc32(payload),
    )


@dataclass(frozen=True, slots=True)
class _WrittenMember:
    name_bytes: bytes
    method: int
    crc32: int
    compressed_size: int
    size: int
    header_offset: int
    zip64_local: bool


class EditionWriter:
    """Writes a deterministic edition ZIP to `path`, atomically.

    Same names, bytes, timestamp and level give a byte-identical file. Members
    appear in the order added (the caller sorts). A naive `timestamp` is taken
    as UTC. Bad or colliding names raise `UnsafeArchiveError` and leave the
    writer usable; a failed write to the archive raises `StorageError` and
    the writer can then only be discarded. Use as a context manager:
    leaving the block normally calls `close` (unless `discard` was called);
    leaving it with an exception removes the temp file and leaves `path`
    untouched.
    """

    def __init__(self, path: Path, *, timestamp: datetime, compresslevel: int = 6) -> None:
        if not 0 <= compresslevel <= 9:
            raise ValueError(f"compresslevel must be 0-9, not {compresslevel}")
        self._path = path
        self._level = compresslevel
        self._date, self._time = _dos_date_time(timestamp)
        self._names = _NameRegistry()
        self._limits = ArchiveLimits()
        self._central = bytearray()
        """The central directory, each member's entry appended as it is written (a record
        object per member took about 250 bytes; 120,000 members, 30 MB)."""
        self._count = 0
        self._offset = 0
        self._digest: ArchiveDigest | None = None
        self._failed = False
        self._discarded = False
        try:
            fd, temp_name = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".part", dir=path.parent
            )
        except OSError as error:
            raise StorageError(f"Cannot create a temporary file next to {path}.") from error
        self._temp_path = Path(temp_name)
        self._file: BinaryIO = os.fdopen(fd, "w+b")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._discarded:
            self.close()
        else:
            self.discard()

    def add_bytes(self, name: str, data: bytes) -> MemberDigest:
        """Add one member from memory; returns its length and SHA-256."""
        return self.add_prepared(prepare_member(name, data, compresslevel=self._level))

    def add_prepared(self, prepared: PreparedMember) -> MemberDigest:
        """Add a member compressed ahead by `prepare_member` (in a worker process, say).

        It must have been prepared at this writer's compression level: the
        bytes are then exactly what `add_bytes` would have written.
        """
        if prepared.compresslevel != self._level:
            raise ValueError(
                f"{prepared.name!r} was compressed at level {prepared.compresslevel}, "
                f"not {self._level}"
            )
        self._append(
            prepared.name, prepared.method, prepared.crc32, prepared.size, prepared.payload
        )
        return MemberDigest(name=prepared.name, length=prepared.size, sha256=prepared.sha256)

    def add_raw(
        self,
        archive: EditionArchive,
        member: ArchiveMember,
        *,
        sha256: str,
        payload_crc32: int | None = None,
    ) -> MemberDigest:
        """Copy ``member`` of ``archive`` (opened by the strict reader) without recompressing it.

        The compressed bytes are copied as they are, with the method, CRC-32
        and sizes of the archive's checked central directory, so the result is
        the member `add_bytes` would write for the same data at the same level
        (zlib gives the same bytes for the same data, level and version). The
        copy is checked while it is made (`EditionArchive.iter_raw`: a stored
        member against the CRC-32, a deflated one against ``payload_crc32`` when
        the caller recorded it, else inflated and checked); a damaged member raises
        `UnsafeArchiveError` and is rolled back, leaving the writer usable, so
        a damaged earlier archive is never republished. ``sha256`` is the
        member's signed hash in the edition ``archive`` belongs to; the caller
        has matched it against what this edition needs.
        """
        name_bytes = self._check_name(member.name)
        written = _WrittenMember(
            name_bytes=name_bytes,
            method=member.method,
            crc32=member.crc32,
            compressed_size=member.compressed_size,
            size=member.size,
            header_offset=self._offset,
            zip64_local=member.size >= _ZIP64_LIMIT,
        )
        header = self._local_header(written)
        try:
            self._file.write(header)
            try:
                for chunk in archive.iter_raw(member, payload_crc32=payload_crc32):
                    self._file.write(chunk)
            except (UnsafeArchiveError, StorageError):
                self._file.seek(written.header_offset)
                self._file.truncate()
                raise
        except OSError as error:
            self._failed = True
            raise StorageError(f"Cannot write the archive {self._path}.") from error
        self._names.add(member.name)
        self._listed(written)
        self._offset += len(header) + member.compressed_size
        return MemberDigest(name=member.name, length=member.size, sha256=sha256)

    def _append(self, name: str, method: int, crc32: int, size: int, payload: bytes) -> None:
        name_bytes = self._check_name(name)
        member = _WrittenMember(
            name_bytes=name_bytes,
            method=method,
            crc32=crc32,
            compressed_size=len(payload),
            size=size,
            header_offset=self._offset,
            zip64_local=size >= _ZIP64_LIMIT,
        )
        header = self._local_header(member)
        self._write(lambda: self._file.write(header + payload))
        self._names.add(name)
        self._listed(member)
        self._offset += len(header) + len(payload)

    def add_file(self, name: str, source: Path) -> MemberDigest:
        """Add one member streamed from `source` in 1 MiB chunks (memory stays flat).

        The local header is written first, then the data, then the header is
        patched with the CRC-32 and sizes. If deflating does not make the data
        smaller, or makes it smaller than the reader's zip-bomb cap accepts, the
        data is written again, stored.
        """
        name_bytes = self._check_name(name)
        try:
            size = source.stat().st_size
        except OSError as error:
            raise StorageError(f"Cannot read {source}.") from error
        header = _WrittenMember(
            name_bytes=name_bytes,
            method=METHOD_DEFLATED if size and self._wants_deflate(name) else METHOD_STORED,
            crc32=0,
            compressed_size=0,
            size=size,
            header_offset=self._offset,
            zip64_local=size >= _ZIP64_LIMIT,
        )
        data_offset = self._offset + len(self._local_header(header))
        try:
            self._file.write(self._local_header(header))
            try:
                crc, sha256, compressed_size = self._copy(
                    source, size, deflate=header.method == METHOD_DEFLATED
                )
                if header.method == METHOD_DEFLATED and (
                    compressed_size >= size
                    or not self._limits.ratio_accepted(size, compressed_size)
                ):
                    self._file.seek(data_offset)
                    self._file.truncate()
                    stored = self._copy(source, size, deflate=False)
                    if stored[:2] != (crc, sha256):
                        raise StorageError(f"{source} changed while it was being archived.")
                    compressed_size = stored[2]
                    header = dataclasses.replace(header, method=METHOD_STORED)
            except StorageError:
                # The source failed, not the archive: drop this member and carry on.
                self._file.seek(header.header_offset)
                self._file.truncate()
                raise
            member = dataclasses.replace(header, crc32=crc, compressed_size=compressed_size)
            self._file.seek(member.header_offset)
            self._file.write(self._local_header(member))
            self._file.seek(data_offset + compressed_size)
        except OSError as error:
            self._failed = True
            raise StorageError(f"Cannot write the archive {self._path}.") from error
        self._names.add(name)
        self._listed(member)
        self._offset = data_offset + compressed_size
        return MemberDigest(name=name, length=size, sha256=sha256)

    def close(self) -> ArchiveDigest:
        """Write the central directory, fsync, and move the file onto `path`.

        Returns the length, SHA-256 and BLAKE2b-512 of the finished file,
        hashed in one streamed pass over what is on disk. Calling it again
        returns the same digest.
        """
        if self._digest is not None:
            return self._digest
        if self._failed or self._file.closed:
            self.discard()
            raise StorageError(f"The archive {self._path} was not finished after a write error.")
        try:
            self._write_central_directory()
            # What only checked and listed the members is not needed once it is written.
            self._central, self._names = bytearray(), _NameRegistry()
            self._file.flush()
            os.fsync(self._file.fileno())
            digest = self._hash_file()
            self._file.close()
            os.chmod(self._temp_path, 0o644)
            os.replace(self._temp_path, self._path)
        except OSError as error:
            self.discard()
            raise StorageError(f"Cannot write the archive {self._path}.") from error
        self._digest = digest
        try:
            _fsync_folder(self._path.parent)
        except OSError as error:
            raise StorageError(
                f"The archive {self._path} was written but may not survive a crash."
            ) from error
        return digest

    # -- internals ---------------------------------------------------------

    def _check_name(self, name: str) -> bytes:
        """Writer state and name rules; the name is not recorded yet."""
        if self._digest is not None or self._file.closed:
            raise ValueError("the edition writer is already closed")
        if self._failed:
            raise StorageError(f"The archive {self._path} cannot continue after a write error.")
        problem = _name_problem(name, self._limits)
        if problem is not None:
            raise UnsafeArchiveError(f"Member {_show(name)} {problem}.")
        self._names.check(name)
        return name.encode("utf-8")

    @staticmethod
    def _wants_deflate(name: str) -> bool:
        return _wants_deflate(name)

    def _write(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OSError as error:
            self._failed = True
            raise StorageError(f"Cannot write the archive {self._path}.") from error

    def _local_header(self, member: _WrittenMember) -> bytes:
        if member.zip64_local:
            extra = _EXTRA_HEADER.pack(_ZIP64_EXTRA_ID, 16) + struct.pack(
                "<QQ", member.size, member.compressed_size
            )
            compressed_field = size_field = _U32_SENTINEL
            version = _VERSION_ZIP64
        else:
            extra = b""
            compressed_field, size_field = member.compressed_size, member.size
            version = _VERSION_DEFAULT
        fixed = _LOCAL.pack(
            _LOCAL_SIG,
            version,
            _FLAG_UTF8,
            member.method,
            self._time,
            self._date,
            member.crc32,
            compressed_field,
            size_field,
            len(member.name_bytes),
            len(extra),
        )
        return fixed + member.name_bytes + extra

    def _copy(self, source: Path, size: int, *, deflate: bool) -> tuple[int, str, int]:
        """Stream `source` into the archive; returns (crc32, sha256 hex, bytes written)."""
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, -15) if deflate else None
        crc, sha256, read, written = 0, hashlib.sha256(), 0, 0
        try:
            stream = source.open("rb")
        except OSError as error:
            raise StorageError(f"Cannot read {source}.") from error
        with stream:
            while True:
                try:
                    chunk = stream.read(CHUNK_BYTES)
                except OSError as error:
                    raise StorageError(f"Cannot read {source}.") from error
                if not chunk:
                    break
                read += len(chunk)
                if read > size:
                    break
                crc = zlib.crc32(chunk, crc)
                sha256.update(chunk)
                out = compressor.compress(chunk) if compressor else chunk
                self._file.write(out)
                written += len(out)
        if read != size:
            # The header (and the ZIP64 decision) was made from the old size.
            raise StorageError(f"{source} changed size while it was being archived.")
        if compressor is not None:
            out = compressor.flush()
            self._file.write(out)
            written += len(out)
        return crc, sha256.hexdigest(), written

    def _listed(self, member: _WrittenMember) -> None:
        """Add a written member's entry to the central directory."""
        self._central += self._central_entry(member)
        self._count += 1

    def _write_central_directory(self) -> None:
        cd_offset = self._offset
        cd_size = len(self._central)
        count = self._count
        self._file.write(self._central)
        if count >= _ZIP64_COUNT_LIMIT or cd_size >= _ZIP64_LIMIT or cd_offset >= _ZIP64_LIMIT:
            zip64_offset = cd_offset + cd_size
            self._file.write(
                _ZIP64_EOCD.pack(
                    _ZIP64_EOCD_SIG,
                    _ZIP64_EOCD.size - 12,
                    (_HOST_UNIX << 8) | _VERSION_ZIP64,
                    _VERSION_ZIP64,
                    0,
                    0,
                    count,
                    count,
                    cd_size,
                    cd_offset,
                )
            )
            self._file.write(_ZIP64_LOCATOR.pack(_ZIP64_LOCATOR_SIG, 0, zip64_offset, 1))
        count_field = _U16_SENTINEL if count >= _ZIP64_COUNT_LIMIT else count
        self._file.write(
            _EOCD.pack(
                _EOCD_SIG,
                0,
                0,
                count_field,
                count_field,
                _U32_SENTINEL if cd_size >= _ZIP64_LIMIT else cd_size,
                _U32_SENTINEL if cd_offset >= _ZIP64_LIMIT else cd_offset,
                0,
            )
        )

    def _central_entry(self, member: _WrittenMember) -> bytes:
        size, compressed_size, offset = member.size, member.compressed_size, member.header_offset
        values: list[int] = []
        if size >= _ZIP64_LIMIT:
            values.append(size)
            size = _U32_SENTINEL
        if compressed_size >= _ZIP64_LIMIT:
            values.append(compressed_size)
            compressed_size = _U32_SENTINEL
        if offset >= _ZIP64_LIMIT:
            values.append(offset)
            offset = _U32_SENTINEL
        extra = b""
        if values:
            extra = _EXTRA_HEADER.pack(_ZIP64_EXTRA_ID, 8 * len(values)) + struct.pack(
                f"<{len(values)}Q", *values
            )
        version = _VERSION_ZIP64 if values or member.zip64_local else _VERSION_DEFAULT
        fixed = _CENTRAL.pack(
            _CENTRAL_SIG,
            (_HOST_UNIX << 8) | version,
            version,
            _FLAG_UTF8,
            member.method,
            self._time,
            self._date,
            member.crc32,
            compressed_size,
            size,
            len(member.name_bytes),
            len(extra),
            0,
            0,
            0,
            _REGULAR_FILE_ATTR,
            offset,
        )
        return fixed + member.name_bytes + extra

    def _hash_file(self) -> ArchiveDigest:
        """Both digests in one pass over the file, BLAKE2b in a thread (hashlib lets go of
        the GIL), so hashing a large archive takes one digest's time on two cores."""
        sha256, blake2b = hashlib.sha256(), hashlib.blake2b(digest_size=64)
        length = 0
        self._file.seek(0)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as helper:
            pending: concurrent.futures.Future[None] | None = None
            while chunk := self._file.read(CHUNK_BYTES):
                if pending is not None:
                    pending.result()
                pending = helper.submit(blake2b.update, chunk)
                sha256.update(chunk)
                length += len(chunk)
            if pending is not None:
                pending.result()
        return ArchiveDigest(length=length, sha256=sha256.hexdigest(), blake2b_512=blake2b.digest())

    def discard(self) -> None:
        """Drop the temp file; `path` is left as it was and nothing more can be written."""
        self._failed = True
        self._discarded = True
        with contextlib.suppress(OSError):  # the file is being thrown away
            self._file.close()
        try:
            self._temp_path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StorageError(f"Cannot remove the temporary file {self._temp_path}.") from error


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; folders cannot be opened for fsync on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Reader


class _Reader:
    """Bounded positional reads from the archive file; short reads are truncation."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file = file
        self.size = size

    def at(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise UnsafeArchiveError(
                f"The archive is truncated: {what} runs past the end of the file."
            )
        data = os.pread(self.file.fileno(), length, offset)
        if len(data) != length:
            raise UnsafeArchiveError(
                f"The archive is truncated: {what} runs past the end of the file."
            )
        return data


@dataclass(frozen=True)
class _Directory:
    count: int
    cd_offset: int
    cd_end: int


def _find_directory(reader: _Reader, limits: ArchiveLimits) -> _Directory:
    """Rule 1: locate and check the (ZIP64) end of central directory record."""
    size = reader.size
    if size < _EOCD.size:
        raise IncompleteEditionError(_what_it_is_instead(reader))
    if reader.at(size - _EOCD.size, 4, "the end record") != _EOCD_SIG.to_bytes(4, "little"):
        _diagnose_missing_end(reader)
    eocd_pos = size - _EOCD.size
    (_, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment_len) = _EOCD.unpack(
        reader.at(eocd_pos, _EOCD.size, "the end record")
    )
    if comment_len:
        raise UnsafeArchiveError(
            f"The end record declares a comment of {comment_len} bytes; comments are not allowed."
        )
    if disk or cd_disk:
        raise UnsafeArchiveError(
            "The end record names a disk other than 0; multi-disk archives are not allowed."
        )
    if disk_entries != entries:
        raise UnsafeArchiveError("The end record's entry counts disagree.")
    needs_zip64 = entries == _U16_SENTINEL or _U32_SENTINEL in (cd_size, cd_offset)
    locator_pos = eocd_pos - _ZIP64_LOCATOR.size
    has_locator = locator_pos >= 0 and reader.at(locator_pos, 4, "the ZIP64 locator") == (
        _ZIP64_LOCATOR_SIG.to_bytes(4, "little")
    )
    if not needs_zip64:
        if cd_offset + cd_size != eocd_pos:
            if has_locator:
                raise UnsafeArchiveError("The archive has a ZIP64 end record it does not need.")
            _raise_misplaced_directory(cd_offset, cd_size, eocd_pos)
        _check_count(entries, cd_size, limits)
        return _Directory(count=entries, cd_offset=cd_offset, cd_end=eocd_pos)

    if not has_locator:
        raise UnsafeArchiveError(
            "The end record needs a ZIP64 end record, but none is directly before it."
        )
    (_, locator_disk, zip64_pos, total_disks) = _ZIP64_LOCATOR.unpack(
        reader.at(locator_pos, _ZIP64_LOCATOR.size, "the ZIP64 locator")
    )
    if locator_disk != 0 or total_disks != 1:
        raise UnsafeArchiveError(
            "The ZIP64 locator names a disk other than 0; multi-disk archives are not allowed."
        )
    expected_pos = locator_pos - _ZIP64_EOCD.size
    if zip64_pos != expected_pos or expected_pos < 0:
        raise UnsafeArchiveError("The ZIP64 end record is not directly before its locator.")
    (
        sig,
        record_size,
        _,
        _,
        z_disk,
        z_cd_disk,
        z_disk_entries,
        z_entries,
        z_cd_size,
        z_cd_offset,
    ) = _ZIP64_EOCD.unpack(reader.at(zip64_pos, _ZIP64_EOCD.size, "the ZIP64 end record"))
    if sig != _ZIP64_EOCD_SIG or record_size != _ZIP64_EOCD.size - 12:
        raise UnsafeArchiveError("The ZIP64 end record is malformed or has extensible data.")
    if z_disk or z_cd_disk:
        raise UnsafeArchiveError(
            "The ZIP64 end record names a disk other than 0; multi-disk archives are not allowed."
        )
    if z_disk_entries != z_entries:
        raise UnsafeArchiveError("The ZIP64 end record's entry counts disagree.")
    for field, sentinel, value in (
        (entries, _U16_SENTINEL, z_entries),
        (cd_size, _U32_SENTINEL, z_cd_size),
        (cd_offset, _U32_SENTINEL, z_cd_offset),
    ):
        if field not in (sentinel, value):
            raise UnsafeArchiveError(
                "The end record and the ZIP64 end record disagree (entry counts inconsistent)."
            )
    if z_cd_offset + z_cd_size != zip64_pos:
        _raise_misplaced_directory(z_cd_offset, z_cd_size, zip64_pos)
    _check_count(z_entries, z_cd_size, limits)
    return _Directory(count=z_entries, cd_offset=z_cd_offset, cd_end=zip64_pos)


def _diagnose_missing_end(reader: _Reader) -> None:
    """No end record at the very end: say whether it is a comment, trailing data, or truncation."""
    window = min(reader.size, _MAX_EOCD_SEARCH + 1024)
    tail = reader.at(reader.size - window, window, "the end of the file")
    signature = _EOCD_SIG.to_bytes(4, "little")
    candidates = []
    pos = tail.rfind(signature)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            candidates.append(pos)
        pos = tail.rfind(signature, 0, pos)
    for pos in candidates:
        comment_len = _EOCD.unpack_from(tail, pos)[-1]
        if comment_len and comment_len == len(tail) - pos - _EOCD.size:
            raise UnsafeArchiveError(
                f"The end record has a comment of {comment_len} bytes; comments are not allowed."
            )
    if candidates:
        extra = len(tail) - candidates[0] - _EOCD.size
        raise UnsafeArchiveError(f"There are {extra} bytes of trailing data after the end record.")
    raise IncompleteEditionError(_what_it_is_instead(reader))


def _what_it_is_instead(reader: _Reader) -> str:
    """Why a file with no ZIP end record at all is not an edition, in the reader's words."""
    if reader.size == 0:
        return "The file is empty (0 bytes): the download did not finish, or nothing was saved."
    head = reader.at(0, min(reader.size, 512), "the start of the file")
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<")):
        return (
            "The file is a web page, not an edition: a block page, a login page or an error "
            "page was saved instead of the edition."
        )
    if len(head) >= 2 and b"PK\x03\x04".startswith(head[:4]):
        return (
            f"The file ends before the end of its ZIP directory: at {reader.size:,} bytes it was "
            "cut short, most likely while downloading."
        )
    return "The file is not an edition: it is not a ZIP archive at all."


def _raise_misplaced_directory(cd_offset: int, cd_size: int, cd_end: int) -> None:
    actual_start = cd_end - cd_size
    if actual_start > cd_offset:
        raise UnsafeArchiveError(
            f"The central directory starts {actual_start - cd_offset} bytes after where the end "
            "record says: data was prepended or inserted."
        )
    raise UnsafeArchiveError(
        "The central directory does not end at the end record (overlapping or truncated)."
    )


def _check_count(entries: int, cd_size: int, limits: ArchiveLimits) -> None:
    if entries > limits.max_members:
        raise UnsafeArchiveError(
            f"The archive has {entries} members, over the cap of {limits.max_members} "
            "(too many members)."
        )
    if entries * _CENTRAL.size > cd_size:
        raise UnsafeArchiveError(
            f"The central directory is too small for {entries} entries (entry counts inconsistent)."
        )


def _read_central_directory(
    reader: _Reader, directory: _Directory, limits: ArchiveLimits
) -> MemberIndex:
    """Rules 3-8 on each central entry, reading strictly inside the central directory;
    the members' data offsets are left for `_check_tiling`."""
    entries = MemberIndex()
    names = _NameRegistry()
    total = 0
    pos = directory.cd_offset
    window, window_at = b"", pos
    """The central directory is read a window at a time, not a read per field."""

    def take(length: int, what: str) -> bytes:
        nonlocal pos, window, window_at
        if pos + length > directory.cd_end:
            raise UnsafeArchiveError(
                f"{what} runs past the end of the central directory (entry counts inconsistent)."
            )
        start = pos - window_at
        if start + length > len(window):
            size = max(length, min(_DIRECTORY_WINDOW, directory.cd_end - pos))
            window, window_at, start = reader.at(pos, size, what), pos, 0
        pos += length
        return window[start : start + length]

    for index in range(directory.count):
        what = f"Central directory entry {index}"
        (
            sig, made_by, _, flags, method, _, _, crc32, compressed_size, size,
            name_len, extra_len, comment_len, disk, _, external_attr, header_offset,
        ) = _CENTRAL.unpack(take(_CENTRAL.size, what))  # fmt: skip
        if sig != _CENTRAL_SIG:
            raise UnsafeArchiveError(
                f"{what} has a bad signature (entry counts inconsistent or corrupt)."
            )
        name_bytes = take(name_len, what)
        extra = take(extra_len, what)
        take(comment_len, what)
        name = _decode_name(name_bytes, flags)
        label = f"Member {_show(name)}"
        if comment_len:
            raise UnsafeArchiveError(f"{label} has a comment; comments are not allowed.")
        if disk != 0:
            raise UnsafeArchiveError(
                f"{label} starts on disk {disk}; multi-disk archives are not allowed."
            )
        problem = _name_problem(name, limits)
        if problem is not None:
            raise UnsafeArchiveError(f"{label} {problem}.")
        _check_flags_and_method(label, flags, method)
        _check_file_type(label, made_by, external_attr)
        names.admit(name)
        size, compressed_size, header_offset = _central_zip64(
            label, extra, size, compressed_size, header_offset
        )
        if method == METHOD_STORED and compressed_size != size:
            raise UnsafeArchiveError(
                f"{label} is stored but its sizes differ ({compressed_size} != {size})."
            )
        if size > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"{label} is {size} bytes, over the cap of {limits.max_member_bytes} "
                "(member too large)."
            )
        total += size
        if total > limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{label} brings the total size to {total} bytes, over the cap of "
                f"{limits.max_total_bytes} (archive too large)."
            )
        if method == METHOD_DEFLATED and not limits.ratio_accepted(size, compressed_size):
            raise UnsafeArchiveError(
                f"{label} has a compression ratio of {size // max(compressed_size, 1)}, over the "
                f"cap of {limits.max_ratio} (zip bomb)."
            )
        entries.add(
            name,
            method=method,
            flags=flags,
            compressed_size=compressed_size,
            size=size,
            crc32=crc32,
            header_offset=header_offset,
        )
    if pos != directory.cd_end:
        raise UnsafeArchiveError(
            f"The central directory has {directory.cd_end - pos} bytes after its last entry "
            "(entry counts inconsistent)."
        )
    return entries


def _decode_name(name_bytes: bytes, flags: int) -> str:
    try:
        return name_bytes.decode("utf-8" if flags & _FLAG_UTF8 else "ascii")
    except UnicodeDecodeError:
        encoding = "UTF-8" if flags & _FLAG_UTF8 else "ASCII (the UTF-8 flag is clear)"
        raise UnsafeArchiveError(
            f"Member {_show(name_bytes)} has a name that is not valid {encoding}."
        ) from None


def _check_flags_and_method(label: str, flags: int, method: int) -> None:
    """Rule 4."""
    if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS):
        raise UnsafeArchiveError(f"{label} is encrypted; encrypted members are not allowed.")
    if flags & _FLAG_DATA_DESCRIPTOR:
        raise UnsafeArchiveError(f"{label} uses a data descriptor (flag bit 3); it is not allowed.")
    if method not in (METHOD_STORED, METHOD_DEFLATED):
        raise UnsafeArchiveError(
            f"{label} uses compression method {method}; only 0 and 8 are allowed."
        )
    allowed = _FLAG_UTF8 | (_FLAG_DEFLATE_OPTIONS if method == METHOD_DEFLATED else 0)
    if flags & ~allowed:
        raise UnsafeArchiveError(f"{label} has unknown flags 0x{flags & ~allowed:04x} set.")


def _check_file_type(label: str, made_by: int, external_attr: int) -> None:
    """Rule 5: regular files only."""
    if external_attr & _DOS_DIRECTORY:
        raise UnsafeArchiveError(
            f"{label} is a directory (MS-DOS attribute); only regular files are allowed."
        )
    if made_by >> 8 not in (_HOST_UNIX, _HOST_OSX):
        return
    mode = external_attr >> 16
    if mode == 0:
        return
    file_type = stat.S_IFMT(mode)
    if file_type != stat.S_IFREG:
        kind = _FILE_TYPES.get(file_type, f"an unknown file type 0o{file_type:o}")
        raise UnsafeArchiveError(f"{label} is {kind}; only regular files are allowed.")
    if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        raise UnsafeArchiveError(
            f"{label} has set-uid, set-gid or sticky bits; they are not allowed."
        )


def _central_zip64(
    label: str, extra: bytes, size: int, compressed_size: int, header_offset: int
) -> tuple[int, int, int]:
    """Resolve the ZIP64 extra field; it must hold exactly the saturated fields."""
    saturated = [v == _U32_SENTINEL for v in (size, compressed_size, header_offset)]
    wanted = sum(saturated)
    if not extra:
        if wanted:
            raise UnsafeArchiveError(
                f"{label} has saturated size or offset fields but no ZIP64 extra field."
            )
        return size, compressed_size, header_offset
    header_id, data_len = _EXTRA_HEADER.unpack(extra[:4]) if len(extra) >= 4 else (-1, -1)
    if header_id != _ZIP64_EXTRA_ID:
        raise UnsafeArchiveError(
            f"{label} has an extra field that is not ZIP64; extra fields are not allowed."
        )
    if wanted == 0 or data_len != 8 * wanted or len(extra) != 4 + data_len:
        raise UnsafeArchiveError(
            f"{label} has a malformed ZIP64 extra field in the central directory."
        )
    values = list(struct.unpack(f"<{wanted}Q", extra[4:]))
    resolved = [
        values.pop(0) if is_saturated else v
        for v, is_saturated in zip((size, compressed_size, header_offset), saturated, strict=True)
    ]
    return resolved[0], resolved[1], resolved[2]


def _check_tiling(reader: _Reader, directory: _Directory, members: MemberIndex) -> None:
    """Rules 2 and 3: local headers agree and the members tile the file from 0 to the
    directory; each member's data offset is set as its header is read."""
    starts = array("Q")
    expected = 0
    for index, entry in enumerate(members):
        entry_name_bytes = entry.name.encode("utf-8")  # as decoded: UTF-8 or ASCII, strictly
        label = f"Member {_show(entry.name)}"
        header = f"The local header of member {_show(entry.name)}"
        offset = entry.header_offset
        if offset < expected:
            before = bisect_right(starts, offset) - 1
            if before >= 0 and starts[before] == offset:
                raise UnsafeArchiveError(
                    f"Members {_show(members.names[before])} and {_show(entry.name)} share one "
                    "local header (overlapping members)."
                )
            other = _show(members.names[before]) if before >= 0 else "another member"
            raise UnsafeArchiveError(f"{label} starts inside member {other} (overlapping members).")
        if offset > expected:
            if index == 0:
                raise UnsafeArchiveError(
                    f"There are {offset} bytes of data prepended before the first member."
                )
            raise UnsafeArchiveError(
                f"There are {offset - expected} bytes of data between members "
                f"{_show(members.names[index - 1])} and {_show(entry.name)}."
            )
        if offset + _LOCAL.size > directory.cd_offset:
            raise UnsafeArchiveError(
                f"{header} overlaps the central directory (overlapping members)."
            )
        # The header, its name and a ZIP64 extra field (the only one allowed) in one read.
        expected_end = offset + _LOCAL.size + len(entry_name_bytes) + _ZIP64_LOCAL_EXTRA
        block = reader.at(offset, min(expected_end, directory.cd_offset) - offset, header)
        (
            sig, _, flags, method, _, _, crc32, compressed_field, size_field, name_len, extra_len,
        ) = _LOCAL.unpack_from(block)  # fmt: skip
        if sig != _LOCAL_SIG:
            raise UnsafeArchiveError(f"{header} has a bad signature.")
        if name_len != len(entry_name_bytes):
            raise UnsafeArchiveError(f"{header} does not match the central directory entry (name).")
        variable_end = offset + _LOCAL.size + name_len + extra_len
        if variable_end > directory.cd_offset:
            raise UnsafeArchiveError(
                f"{header} overlaps the central directory (overlapping members)."
            )
        name_bytes = block[_LOCAL.size : _LOCAL.size + name_len]
        extra = (
            block[_LOCAL.size + name_len : _LOCAL.size + name_len + extra_len]
            if extra_len <= _ZIP64_LOCAL_EXTRA
            else reader.at(offset + _LOCAL.size + name_len, extra_len, header)
        )
        compressed_size, size = _local_zip64(header, extra, compressed_field, size_field)
        for field, local_value, central_value in (
            ("name", name_bytes, entry_name_bytes),
            ("flags", flags, members.flags(index)),
            ("method", method, entry.method),
            ("CRC-32", crc32, entry.crc32),
            ("compressed size", compressed_size, entry.compressed_size),
            ("size", size, entry.size),
        ):
            if local_value != central_value:
                raise UnsafeArchiveError(
                    f"{header} does not match the central directory entry ({field})."
                )
        data_end = variable_end + entry.compressed_size
        if data_end > directory.cd_offset:
            raise UnsafeArchiveError(
                f"The data of member {_show(entry.name)} runs into the central directory "
                "(overlapping members)."
            )
        members.set_data_offset(index, variable_end)
        starts.append(offset)
        expected = data_end
    if expected != directory.cd_offset:
        where = f"after member {_show(members.names[-1])}" if members else "before the first member"
        raise UnsafeArchiveError(
            f"There are {directory.cd_offset - expected} bytes of data {where}, before the central "
            "directory (data between members)."
        )


def _local_zip64(
    header: str, extra: bytes, compressed_field: int, size_field: int
) -> tuple[int, int]:
    """A local extra field may only be ZIP64, holding both sizes, with both fields saturated."""
    if not extra:
        if _U32_SENTINEL in (compressed_field, size_field):
            raise UnsafeArchiveError(f"{header} has saturated sizes but no ZIP64 extra field.")
        return compressed_field, size_field
    if len(extra) < 4 or _EXTRA_HEADER.unpack(extra[:4])[0] != _ZIP64_EXTRA_ID:
        raise UnsafeArchiveError(
            f"{header} has an extra field that is not ZIP64; extra fields are not allowed."
        )
    if (
        len(extra) != _ZIP64_LOCAL_EXTRA
        or _EXTRA_HEADER.unpack(extra[:4])[1] != 16
        or compressed_field != _U32_SENTINEL
        or size_field != _U32_SENTINEL
    ):
        raise UnsafeArchiveError(f"{header} has a malformed ZIP64 extra field.")
    size, compressed_size = struct.unpack("<QQ", extra[4:])
    return compressed_size, size


class EditionArchive:
    """A read-only edition ZIP whose whole structure was validated by `open`.

    Construct with `EditionArchive.open`; use as a context manager or call
    `close`. Member data is only trusted after `iter_chunks` finishes without
    raising (lengths and CRC-32 are checked at the end); callers still check
    the SHA-256 against signed metadata.
    """

    def __init__(self, file: BinaryIO, size: int, path: Path, members: MemberIndex) -> None:
        self._reader = _Reader(file, size)
        self.path = path
        self.members = members
        """All members, in archive order."""

    @classmethod
    def open(cls, path: Path, limits: ArchiveLimits = ArchiveLimits()) -> EditionArchive:
        """Open `path` and validate its whole structure (rules 1-8 in the module docstring).

        Raises `UnsafeArchiveError` for any hostile or over-cap structure and
        `StorageError` when the path cannot be read or is not a regular file.
        """
        try:
            fd, info = fsutil.open_regular(path)
        except NotARegularFileError as error:
            raise StorageError(f"The archive {path} is not a regular file.") from error
        except OSError as error:
            reason = (error.strerror or error.__class__.__name__).lower()
            raise StorageError(
                f"cannot open the edition file {path} ({reason})",
                hint="Check the file's name and folder."
                if isinstance(error, FileNotFoundError | NotADirectoryError)
                else "Check that you may read the file.",
            ) from error
        try:
            file: BinaryIO = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        try:
            reader = _Reader(file, info.st_size)
            directory = _find_directory(reader, limits)
            if directory.cd_offset > directory.cd_end:
                raise UnsafeArchiveError(
                    "The central directory starts after its end (corrupt end record)."
                )
            members = _read_central_directory(reader, directory, limits)
            _check_tiling(reader, directory, members)
        except OSError as error:
            file.close()
            raise StorageError(f"Cannot read the archive {path}.") from error
        except BaseException:
            file.close()
            raise
        return cls(file, info.st_size, path, members)

    def find(self, name: str) -> ArchiveMember | None:
        """The member called exactly `name`, or None."""
        return self.members.find(name)

    def iter_chunks(
        self, member: ArchiveMember, *, max_bytes: int | None = None
    ) -> Iterator[bytes]:
        """Stream the member's uncompressed bytes in chunks of at most 1 MiB.

        Never produces more than the declared size + 1 bytes. Raises
        `UnsafeArchiveError` if the member is larger than `max_bytes` (checked
        before this returns), and `TamperedError` while streaming if the data
        is longer or shorter than declared, the deflate stream is corrupt or
        has bytes after its end, or the CRC-32 does not match (`_damaged`).
        """
        if self.members.find(member.name) != member:
            raise ValueError(f"{member.name!r} is not a member of {self.path}")
        label = f"Member {_show(member.name)}"
        if max_bytes is not None and member.size > max_bytes:
            raise UnsafeArchiveError(
                f"{label} is {member.size} bytes, over the {max_bytes} bytes allowed here."
            )
        raw = self._raw_chunks(member, label)
        if member.method == METHOD_STORED:
            return self._check_stream(label, member, raw)
        return self._check_stream(label, member, self._inflate(label, member, raw))

    def iter_raw(
        self, member: ArchiveMember, *, payload_crc32: int | None = None
    ) -> Iterator[bytes]:
        """The member's bytes as stored (compressed), checked as they stream past.

        A stored member's bytes must have its CRC-32; a deflated one's must
        have ``payload_crc32`` (the CRC-32 of the compressed bytes, recorded when
        they were written) if given, else they are inflated and must give the
        declared size and CRC-32. As with `iter_chunks`, chunks already yielded
        are untrusted until the generator finishes.
        """
        if self.members.find(member.name) != member:
            raise ValueError(f"{member.name!r} is not a member of {self.path}")
        label = f"Member {_show(member.name)}"
        if member.method == METHOD_STORED or payload_crc32 is not None:
            expected = member.crc32 if member.method == METHOD_STORED else payload_crc32
            crc = 0
            for chunk in self._raw_chunks(member, label):
                crc = zlib.crc32(chunk, crc)
                yield chunk
            if crc != expected:
                raise UnsafeArchiveError(
                    f"{label} fails its CRC-32 check (corrupt or tampered data)."
                )
            return
        pending: list[bytes] = []

        def stored_bytes() -> Iterator[bytes]:
            for chunk in self._raw_chunks(member, label):
                pending.append(chunk)
                yield chunk

        for _ in self._check_stream(label, member, self._inflate(label, member, stored_bytes())):
            yield from pending
            pending.clear()
        yield from pending

    def read(self, member: ArchiveMember, *, max_bytes: int) -> bytes:
        """The member's whole uncompressed bytes, checked like `iter_chunks`."""
        return b"".join(self.iter_chunks(member, max_bytes=max_bytes))

    def close(self) -> None:
        """Close the file."""
        self._reader.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _raw_chunks(self, member: ArchiveMember, label: str) -> Iterator[bytes]:
        """The member's stored bytes; seeks before each read, so generators may interleave."""
        position, end = member.data_offset, member.data_offset + member.compressed_size
        while position < end:
            length = min(CHUNK_BYTES, end - position)
            try:
                chunk = self._reader.at(position, length, f"{label}'s data")
            except OSError as error:
                raise StorageError(f"Cannot read the archive {self.path}.") from error
            position += length
            yield chunk

    @staticmethod
    def _inflate(label: str, member: ArchiveMember, raw: Iterable[bytes]) -> Iterator[bytes]:
        """Raw inflate with an output cap of size + 1 per member and 1 MiB per call."""
        inflater = zlib.decompressobj(-15)
        limit = member.size + 1
        produced = 0
        try:
            for chunk in raw:
                if inflater.eof:
                    raise _damaged(member, f"{label} has data after the end of its deflate stream")
                data = chunk
                while True:
                    cap = min(CHUNK_BYTES, limit - produced)
                    out = inflater.decompress(data, cap)
                    data = inflater.unconsumed_tail
                    produced += len(out)
                    if out:
                        yield out
                    if produced >= limit:
                        return  # _check_stream reports "longer than declared"
                    if inflater.eof:
                        if data or inflater.unused_data:
                            raise _damaged(
                                member, f"{label} has data after the end of its deflate stream"
                            )
                        break
                    if not data and len(out) < cap:
                        break
        except zlib.error as error:
            raise _damaged(member, f"{label} has corrupt deflate data ({error})") from None
        if not inflater.eof:
            raise _damaged(
                member, f"{label}'s deflate stream ends early (truncated or shorter than declared)"
            )

    @staticmethod
    def _check_stream(
        label: str, member: ArchiveMember, chunks: Iterable[bytes]
    ) -> Iterator[bytes]:
        """Enforce the declared size exactly and the CRC-32 at the end."""
        produced = 0
        crc = 0
        for chunk in chunks:
            produced += len(chunk)
            if produced > member.size:
                raise _damaged(
                    member,
                    f"{label} inflates to more than its declared {member.size} bytes (zip bomb)",
                )
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if produced != member.size:
            raise _damaged(
                member, f"{label} has {produced} bytes, fewer than its declared {member.size}"
            )
        if crc != member.crc32:
            raise _damaged(member, f"{label} fails its CRC-32 check (corrupt or tampered data)")


def _damaged(member: ArchiveMember, problem: str) -> TamperedError:
    """The error for a member whose data fails its own checks after `open` proved the structure.

    The one rule for every member (content or embedded metadata) and every
    reader: a changed byte inside a member's data is tampering, exit 10. The
    sentence names the member and the check it failed.
    """
    return TamperedError(f"{member.name} is not the data the publisher signed ({problem})")
