"""Craft hostile and broken ZIP archives, byte by byte, for tests.

Every ``make_*`` function takes the bytes of a valid edition archive and
returns a hostile variant of it: most re-lay the valid members and add or
bend one thing, so the archive is otherwise sound and only the named rule is
broken. ``HOSTILE_VARIANTS`` maps a short name to each function, for
parametrised tests; ``parse_members``, ``build`` and the record builders are
public so other tests can craft their own.

Nothing here uses `zipfile`: it cannot write most of these.
"""

from __future__ import annotations

import dataclasses
import stat
import struct
import unicodedata
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "HOSTILE_VARIANTS",
    "RawMember",
    "build",
    "central_entry",
    "deflated",
    "end_record",
    "local_block",
    "parse_members",
    "stored",
]

FLAG_UTF8 = 0x0800
MADE_BY_UNIX = (3 << 8) | 20
MADE_BY_DOS = 20
REGULAR = (stat.S_IFREG | 0o644) << 16

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_DOS_TIME = (12 << 11) | (30 << 5)
_DOS_DATE = ((2024 - 1980) << 9) | (5 << 5) | 1


@dataclass(frozen=True)
class RawMember:
    """One member as raw fields; every field is written exactly as given."""

    name: bytes
    payload: bytes
    """The bytes as stored in the archive (already compressed for method 8)."""
    size: int
    crc32: int
    method: int = 0
    flags: int = FLAG_UTF8
    made_by: int = MADE_BY_UNIX
    external_attr: int = REGULAR
    disk: int = 0
    local_name: bytes | None = None
    """Name in the local header, when it should differ from the central one."""
    local_crc32: int | None = None
    local_extra: bytes = b""
    central_extra: bytes = b""
    comment: bytes = b""


def stored(name: str | bytes, data: bytes, **fields: int | bytes) -> RawMember:
    """A STORED member with correct sizes and CRC-32, then `fields` overridden."""
    raw_name = name.encode("utf-8") if isinstance(name, str) else name
    member = RawMember(name=raw_name, payload=data, size=len(data), crc32=zlib.crc32(data))
    return dataclasses.replace(member, **fields)  # type: ignore[arg-type]


def deflated(name: str | bytes, data: bytes, **fields: int | bytes) -> RawMember:
    """A DEFLATE member with correct sizes and CRC-32, then `fields` overridden."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(data) + compressor.flush()
    member = stored(name, data, method=8)
    return dataclasses.replace(member, payload=payload, **fields)  # type: ignore[arg-type]


def local_block(member: RawMember) -> bytes:
    """Local header, name, extra field and payload."""
    name = member.name if member.local_name is None else member.local_name
    crc = member.crc32 if member.local_crc32 is None else member.local_crc32
    header = _LOCAL.pack(
        0x04034B50,
        20,
        member.flags,
        member.method,
        _DOS_TIME,
        _DOS_DATE,
        crc,
        len(member.payload),
        member.size,
        len(name),
        len(member.local_extra),
    )
    return header + name + member.local_extra + member.payload


def central_entry(member: RawMember, header_offset: int) -> bytes:
    """Central directory entry pointing at `header_offset`."""
    header = _CENTRAL.pack(
        0x02014B50,
        member.made_by,
        20,
        member.flags,
        member.method,
        _DOS_TIME,
        _DOS_DATE,
        member.crc32,
        len(member.payload),
        member.size,
        len(member.name),
        len(member.central_extra),
        len(member.comment),
        member.disk,
        0,
        member.external_attr,
        header_offset,
    )
    return header + member.name + member.central_extra + member.comment


def end_record(
    count: int, cd_size: int, cd_offset: int, *, comment: bytes = b"", disk: int = 0
) -> bytes:
    """End of central directory record."""
    return (
        _EOCD.pack(0x06054B50, disk, disk, count, count, cd_size, cd_offset, len(comment)) + comment
    )


def build(
    members: Sequence[RawMember],
    *,
    prefix: bytes = b"",
    gaps: Mapping[int, bytes] | None = None,
    trailer: bytes = b"",
    comment: bytes = b"",
    rebase: bool = True,
    count: int | None = None,
) -> bytes:
    """Lay `members` out in order with a central directory and an end record.

    `prefix` goes before the first member (offsets include it when `rebase`,
    as a self-extractor would write them), ``gaps[i]`` after member i's data,
    `trailer` after the end record; `count` overrides the entry count.
    """
    out = bytearray(prefix)
    shift = 0 if rebase else len(prefix)
    offsets = []
    for index, member in enumerate(members):
        offsets.append(len(out) - shift)
        out += local_block(member)
        out += (gaps or {}).get(index, b"")
    directory = b"".join(
        central_entry(member, offset) for member, offset in zip(members, offsets, strict=True)
    )
    cd_offset = len(out) - shift
    out += directory
    total = len(members) if count is None else count
    out += end_record(total, len(directory), cd_offset, comment=comment)
    return bytes(out + trailer)


def parse_members(archive: bytes) -> list[RawMember]:
    """The members of a well-formed, non-ZIP64 archive, as `RawMember` values."""
    (_, _, _, _, count, _, cd_offset, _) = _EOCD.unpack_from(archive, len(archive) - _EOCD.size)
    members = []
    pos = cd_offset
    for _ in range(count):
        fields = _CENTRAL.unpack_from(archive, pos)
        made_by, flags, method, crc, csize, size = (
            fields[1], fields[3], fields[4], fields[7], fields[8], fields[9],
        )  # fmt: skip
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        external_attr, offset = fields[15], fields[16]
        name = archive[pos + _CENTRAL.size : pos + _CENTRAL.size + name_len]
        pos += _CENTRAL.size + name_len + extra_len + comment_len
        local = _LOCAL.unpack_from(archive, offset)
        data_offset = offset + _LOCAL.size + local[9] + local[10]
        members.append(
            RawMember(
                name=name,
                payload=archive[data_offset : data_offset + csize],
                size=size,
                crc32=crc,
                method=method,
                flags=flags,
                made_by=made_by,
                external_attr=external_attr,
            )
        )
    return members


def _with(valid: bytes, *extra: RawMember) -> bytes:
    return build([*parse_members(valid), *extra])


# -- compression ------------------------------------------------------------


def make_zip_bomb_ratio(valid: bytes) -> bytes:
    """1 MiB of zeros deflated to about 1 KiB: ratio near 1000."""
    return _with(valid, deflated("bomb.html", bytes(1024 * 1024)))


def make_inflates_past_declared_size(valid: bytes) -> bytes:
    """Declares 1000 bytes (too small for the ratio check) but inflates to 1 MiB."""
    bomb = deflated("bomb.html", bytes(1024 * 1024))
    return _with(valid, dataclasses.replace(bomb, size=1000, crc32=zlib.crc32(bytes(1000))))


def make_inflates_short_of_declared_size(valid: bytes) -> bytes:
    """Declares 2000 bytes; the deflate stream holds 1000."""
    short = deflated("short.html", b"x" * 1000)
    return _with(valid, dataclasses.replace(short, size=2000))


def make_data_after_deflate_stream(valid: bytes) -> bytes:
    """Hidden bytes after the end of a deflate stream, inside the member's span."""
    member = deflated("tail.html", b"hello " * 100)
    return _with(valid, dataclasses.replace(member, payload=member.payload + b"hidden payload"))


def make_corrupt_deflate(valid: bytes) -> bytes:
    """Deflate data that zlib cannot decode."""
    return _with(valid, stored("broken.html", b"\xff" * 64, method=8, size=100))


def make_crc_mismatch(valid: bytes) -> bytes:
    """Stored data whose CRC-32 in both headers is wrong."""
    data = b"the real content"
    return _with(valid, stored("crc.html", data, crc32=zlib.crc32(data) ^ 1))


def make_stored_size_mismatch(valid: bytes) -> bytes:
    """Stored member whose declared size differs from its stored length."""
    return _with(valid, stored("sizes.html", b"abc", size=30))


# -- names --------------------------------------------------------------------


def make_absolute_name(valid: bytes) -> bytes:
    return _with(valid, stored("/etc/cron.d/evil", b"x"))


def make_dotdot_name(valid: bytes) -> bytes:
    return _with(valid, stored("articles/../../evil.html", b"x"))


def make_dot_segment_name(valid: bytes) -> bytes:
    return _with(valid, stored("articles/./evil.html", b"x"))


def make_empty_segment_name(valid: bytes) -> bytes:
    return _with(valid, stored("articles//evil.html", b"x"))


def make_empty_name(valid: bytes) -> bytes:
    return _with(valid, stored(b"", b"x"))


def make_backslash_name(valid: bytes) -> bytes:
    return _with(valid, stored("..\\..\\evil.html", b"x"))


def make_drive_letter_name(valid: bytes) -> bytes:
    return _with(valid, stored("C:/Windows/evil.dll", b"x"))


def make_colon_name(valid: bytes) -> bytes:
    """NTFS alternate data stream."""
    return _with(valid, stored("index.html:hidden", b"x"))


def make_control_character_name(valid: bytes) -> bytes:
    return _with(valid, stored("evil\x1b[2J.html", b"x"))


def make_nul_name(valid: bytes) -> bytes:
    return _with(valid, stored("evil.html\x00.jpg", b"x"))


def make_bidi_override_name(valid: bytes) -> bytes:
    """Displays as 'evilhtml.jpg'."""
    return _with(valid, stored("evil\u202egpj.html", b"x"))


def make_invalid_utf8_name(valid: bytes) -> bytes:
    return _with(valid, stored(b"evil\xff\xfe.html", b"x"))


def make_non_ascii_without_utf8_flag(valid: bytes) -> bytes:
    """Bit 11 clear: the name would be read as CP437 by some tools, UTF-8 by others."""
    return _with(valid, stored("caf\u00e9.html", b"x", flags=0))


def make_overlong_name(valid: bytes) -> bytes:
    """Over 512 bytes in total, every segment and the depth within their caps."""
    return _with(valid, stored("/".join(["a" * 200] * 3), b"x"))


def make_overlong_segment(valid: bytes) -> bytes:
    return _with(valid, stored("b" * 300 + ".html", b"x"))


def make_overdeep_path(valid: bytes) -> bytes:
    return _with(valid, stored("a/" * 9 + "deep.html", b"x"))


# -- file types ---------------------------------------------------------------


def _typed(valid: bytes, name: str, mode: int, **fields: int | bytes) -> bytes:
    return _with(valid, stored(name, b"/etc/passwd", external_attr=mode << 16, **fields))


def make_symlink_member(valid: bytes) -> bytes:
    return _typed(valid, "link.html", stat.S_IFLNK | 0o777)


def make_directory_member(valid: bytes) -> bytes:
    """Name ending in '/', as every zip tool writes directories."""
    return _with(valid, stored("folder/", b"", external_attr=((stat.S_IFDIR | 0o755) << 16) | 0x10))


def make_directory_mode_member(valid: bytes) -> bytes:
    """Directory mode on a name without the trailing '/'."""
    return _typed(valid, "folder", stat.S_IFDIR | 0o755)


def make_dos_directory_member(valid: bytes) -> bytes:
    """Made by MS-DOS with the directory attribute bit."""
    return _with(valid, stored("folder", b"", made_by=MADE_BY_DOS, external_attr=0x10))


def make_char_device_member(valid: bytes) -> bytes:
    return _typed(valid, "dev.html", stat.S_IFCHR | 0o666)


def make_block_device_member(valid: bytes) -> bytes:
    return _typed(valid, "disk.html", stat.S_IFBLK | 0o666)


def make_fifo_member(valid: bytes) -> bytes:
    return _typed(valid, "pipe.html", stat.S_IFIFO | 0o644)


def make_socket_member(valid: bytes) -> bytes:
    return _typed(valid, "socket.html", stat.S_IFSOCK | 0o644)


def make_setuid_member(valid: bytes) -> bytes:
    return _typed(valid, "run.html", stat.S_IFREG | stat.S_ISUID | 0o755)


# -- name collisions ----------------------------------------------------------


def make_duplicate_names(valid: bytes) -> bytes:
    return _with(valid, stored("twin.html", b"first"), stored("twin.html", b"second"))


def make_case_collision(valid: bytes) -> bytes:
    return _with(valid, stored("A.html", b"upper"), stored("a.html", b"lower"))


def make_nfc_nfd_collision(valid: bytes) -> bytes:
    composed = unicodedata.normalize("NFC", "caf\u00e9.html")
    decomposed = unicodedata.normalize("NFD", composed)
    return _with(valid, stored(composed, b"composed"), stored(decomposed, b"decomposed"))


def make_file_folder_collision(valid: bytes) -> bytes:
    return _with(valid, stored("page.html", b"file"), stored("page.html/inner.html", b"inner"))


# -- flags and methods --------------------------------------------------------


def make_encrypted_flag(valid: bytes) -> bytes:
    return _with(valid, stored("secret.html", b"x", flags=FLAG_UTF8 | 0x0001))


def make_data_descriptor_flag(valid: bytes) -> bytes:
    return _with(valid, stored("stream.html", b"x", flags=FLAG_UTF8 | 0x0008))


def make_unknown_flag(valid: bytes) -> bytes:
    return _with(valid, stored("flag.html", b"x", flags=FLAG_UTF8 | 0x0080))


def make_unknown_method(valid: bytes) -> bytes:
    """Method 12 (bzip2): a parser we have not audited."""
    return _with(valid, stored("bz.html", b"x", method=12))


# -- extra fields and comments ------------------------------------------------


_UT_EXTRA = struct.pack("<HHBI", 0x5455, 5, 1, 1_700_000_000)


def make_unknown_central_extra(valid: bytes) -> bytes:
    """Info-ZIP's extended timestamp field in the central directory."""
    return _with(valid, stored("time.html", b"x", central_extra=_UT_EXTRA))


def make_unknown_local_extra(valid: bytes) -> bytes:
    return _with(valid, stored("time.html", b"x", local_extra=_UT_EXTRA))


def make_member_comment(valid: bytes) -> bytes:
    return _with(valid, stored("note.html", b"x", comment=b"hidden note"))


def make_eocd_comment(valid: bytes) -> bytes:
    return build(parse_members(valid), comment=b"PK\x05\x06 is not the end")


# -- layout -------------------------------------------------------------------


def make_trailing_garbage(valid: bytes) -> bytes:
    return valid + b"<script>polyglot</script>"


def make_prepended_data(valid: bytes) -> bytes:
    """A self-extractor stub before the first member, offsets adjusted to match."""
    return build(parse_members(valid), prefix=b"MZ\x90\x00 stub " * 8)


def make_prepended_data_unadjusted(valid: bytes) -> bytes:
    """`cat stub archive.zip`: offsets still count from the old start."""
    return b"MZ\x90\x00 stub " * 8 + valid


def make_gap_between_members(valid: bytes) -> bytes:
    return build(parse_members(valid), gaps={0: b"hidden between members"})


def make_gap_before_directory(valid: bytes) -> bytes:
    members = parse_members(valid)
    return build(members, gaps={len(members) - 1: b"hidden before the directory"})


def make_shared_local_header(valid: bytes) -> bytes:
    """Two central entries point at one local header (the overlapping zip bomb)."""
    first = stored("shared.html", b"shared data " * 10)
    head = build([*parse_members(valid), first])
    members = parse_members(head)
    offsets, out = [], bytearray()
    for member in members:
        offsets.append(len(out))
        out += local_block(member)
    twin = dataclasses.replace(first, name=b"twin.html")
    entries = [*zip(members, offsets, strict=True), (twin, offsets[-1])]
    directory = b"".join(central_entry(member, offset) for member, offset in entries)
    return bytes(out + directory + end_record(len(entries), len(directory), len(out)))


def make_local_header_inside_member(valid: bytes) -> bytes:
    """A whole member hidden inside another stored member's data."""
    inner = stored("inner.html", b"smuggled")
    outer = stored("outer.html", local_block(inner))
    members = [*parse_members(valid), outer]
    offsets, out = [], bytearray()
    for member in members:
        offsets.append(len(out))
        out += local_block(member)
    inner_offset = offsets[-1] + 30 + len(outer.name)
    entries = [*zip(members, offsets, strict=True), (inner, inner_offset)]
    directory = b"".join(central_entry(member, offset) for member, offset in entries)
    return bytes(out + directory + end_record(len(entries), len(directory), len(out)))


def make_local_name_mismatch(valid: bytes) -> bytes:
    """The local header names another file (same length) than the central entry."""
    return _with(valid, stored("good.html", b"x", local_name=b"evil.html"))


def make_local_crc_mismatch(valid: bytes) -> bytes:
    return _with(valid, stored("crc2.html", b"x", local_crc32=0xDEADBEEF))


def make_truncated(valid: bytes) -> bytes:
    return valid[: len(valid) * 2 // 3]


def make_truncated_end_record(valid: bytes) -> bytes:
    return valid[:-5]


def make_eocd_count_mismatch(valid: bytes) -> bytes:
    """The end record counts one entry fewer than the central directory holds."""
    members = parse_members(valid)
    return build(members, count=len(members) - 1)


def make_nonzero_disk(valid: bytes) -> bytes:
    members = [dataclasses.replace(m, disk=1) for m in parse_members(valid)]
    return build(members)


def make_unneeded_zip64_end(valid: bytes) -> bytes:
    """A ZIP64 end record and locator although no field overflows."""
    members = parse_members(valid)
    body = build(members)
    count, cd_size, cd_offset = struct.unpack_from("<HIIH", body, len(body) - 12)[:3]
    zip64_pos = cd_offset + cd_size
    zip64 = _ZIP64_EOCD.pack(
        0x06064B50, 44, MADE_BY_UNIX, 45, 0, 0, count, count, cd_size, cd_offset
    )
    locator = _ZIP64_LOCATOR.pack(0x07064B50, 0, zip64_pos, 1)
    return body[:zip64_pos] + zip64 + locator + end_record(count, cd_size, cd_offset)


def make_too_many_members(valid: bytes) -> bytes:
    """300 tiny members; tests open it with a lower `max_members`."""
    return _with(valid, *(stored(f"many/{index:03d}.html", b"x") for index in range(300)))


HOSTILE_VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    name.removeprefix("make_"): function
    for name, function in sorted(globals().items())
    if name.startswith("make_") and callable(function)
}
"""Every ``make_*`` function above, by its name without the prefix."""
