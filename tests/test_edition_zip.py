"""Edition archives: the deterministic writer, the strict reader, and hostile ZIPs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import struct
import subprocess
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror import edition
from mirror.edition import (
    ArchiveDigest,
    ArchiveLimits,
    EditionArchive,
    EditionWriter,
    MemberDigest,
)
from mirror.errors import (
    IncompleteEditionError,
    StorageError,
    TamperedError,
    UnsafeArchiveError,
)
from tests.hostile_zip import HOSTILE_VARIANTS, build, parse_members

WHEN = datetime(2024, 5, 1, 12, 30, 10, tzinfo=UTC)
UNZIP = "/usr/bin/unzip"
UTF8_ENV = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

SAMPLE: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>Edition</title>" + b"<p>news</p>" * 200,
    "img/photo.jpg": b"\xff\xd8\xff\xe0 not really a jpeg " * 10,
    "empty.txt": b"",
    "статьи/новости-дня.html": "<p>Привет, мир</p>".encode() * 40,
    "مقالات/الأخبار.html": "<p dir='rtl'>مرحبا بالعالم</p>".encode() * 40,
}


def noise(seed: int, length: int, alphabet: bytes | None = None) -> bytes:
    """Deterministic incompressible bytes (or text over `alphabet`)."""
    data = hashlib.shake_256(seed.to_bytes(8, "big")).digest(length)
    return data if alphabet is None else bytes(alphabet[b % len(alphabet)] for b in data)


def write_archive(path: Path, members: dict[str, bytes], **options: int) -> ArchiveDigest:
    with EditionWriter(path, timestamp=WHEN, **options) as writer:
        for name, data in members.items():
            writer.add_bytes(name, data)
    return writer.close()


def read_all(path: Path, limits: ArchiveLimits | None = None) -> dict[str, bytes]:
    with EditionArchive.open(path, limits or ArchiveLimits()) as archive:
        return {m.name: archive.read(m, max_bytes=1 << 30) for m in archive.members}


@pytest.fixture
def sample_zip(tmp_path: Path) -> Path:
    path = tmp_path / "edition.zip"
    write_archive(path, SAMPLE)
    return path


@pytest.fixture(scope="session")
def valid_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "valid.zip"
    write_archive(path, SAMPLE)
    return path.read_bytes()


# -- writing and reading back ---------------------------------------------------


def test_round_trip_keeps_order_bytes_and_metadata(sample_zip: Path) -> None:
    with EditionArchive.open(sample_zip) as archive:
        assert [m.name for m in archive.members] == list(SAMPLE)
        for member in archive.members:
            data = archive.read(member, max_bytes=1 << 20)
            assert data == SAMPLE[member.name]
            assert member.size == len(data)
            assert member.crc32 == zlib.crc32(data)
        assert archive.members[0].header_offset == 0
        assert archive.find("img/photo.jpg") == archive.members[1]
        assert archive.find("IMG/photo.jpg") is None


def test_methods_follow_extension_and_compressibility(tmp_path: Path) -> None:
    path = tmp_path / "methods.zip"
    incompressible = noise(1, 5000)
    write_archive(
        path,
        {
            "a.html": b"a" * 5000,
            "b.JPG": b"b" * 5000,
            "noise.html": incompressible,
            "empty.css": b"",
        },
    )
    with EditionArchive.open(path) as archive:
        methods = {m.name: (m.method, m.compressed_size) for m in archive.members}
    assert methods["a.html"][0] == edition.METHOD_DEFLATED
    assert methods["b.JPG"] == (edition.METHOD_STORED, 5000)
    assert methods["noise.html"] == (edition.METHOD_STORED, 5000)
    assert methods["empty.css"] == (edition.METHOD_STORED, 0)


def test_a_member_deflating_past_the_readers_cap_is_stored_whichever_way_it_is_added(
    tmp_path: Path,
) -> None:
    """One rule for writer and reader (`ArchiveLimits.ratio_accepted`): a page of one
    repeated byte deflates about 1000:1, past the zip-bomb cap, so it is stored, and the
    edition opens under the reader's limits; a page just within the cap stays deflated."""
    repetitive = b"[" * 1_000_000
    varied = noise(3, 200_000, b"ab")
    for name, data in {"zeros.txt": repetitive, "varied.html": varied}.items():
        (tmp_path / name).write_bytes(data)
    from_files, from_bytes = tmp_path / "files.zip", tmp_path / "bytes.zip"
    with EditionWriter(from_files, timestamp=WHEN) as writer:
        writer.add_file("zeros.txt", tmp_path / "zeros.txt")
        writer.add_file("varied.html", tmp_path / "varied.html")
    write_archive(from_bytes, {"zeros.txt": repetitive, "varied.html": varied})
    assert from_files.read_bytes() == from_bytes.read_bytes()
    limits = ArchiveLimits()
    with EditionArchive.open(from_files, limits) as archive:
        methods = {m.name: m.method for m in archive.members}
        assert b"".join(archive.iter_chunks(archive.members[0])) == repetitive
    assert methods == {"zeros.txt": edition.METHOD_STORED, "varied.html": edition.METHOD_DEFLATED}
    assert not limits.ratio_accepted(1_000_000, 1_000)
    assert limits.ratio_accepted(1_000_000, 10_000)
    assert limits.ratio_accepted(60_000, 1)  # small members are never held to the ratio


def test_member_and_archive_digests_are_right(tmp_path: Path) -> None:
    path = tmp_path / "digest.zip"
    with EditionWriter(path, timestamp=WHEN) as writer:
        member = writer.add_bytes("index.html", b"hello")
    digest = writer.close()
    assert member == MemberDigest("index.html", 5, hashlib.sha256(b"hello").hexdigest())
    content = path.read_bytes()
    assert digest == ArchiveDigest(
        length=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        blake2b_512=hashlib.blake2b(content, digest_size=64).digest(),
    )
    assert writer.close() == digest


def test_add_file_streams_and_matches_add_bytes(tmp_path: Path) -> None:
    contents = {
        "big.html": noise(7, 3 * 1024 * 1024 + 17, b"abcdefghij <>"),
        "noise.html": noise(8, 2 * 1024 * 1024 + 3),  # deflate loses: rewritten stored
        "photo.jpg": noise(9, 4096),
        "empty.txt": b"",
    }
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    from_files, from_bytes = tmp_path / "files.zip", tmp_path / "bytes.zip"
    with EditionWriter(from_files, timestamp=WHEN) as writer:
        digests = [writer.add_file(name, tmp_path / name) for name in contents]
    write_archive(from_bytes, contents)
    assert from_files.read_bytes() == from_bytes.read_bytes()
    assert [d.sha256 for d in digests] == [hashlib.sha256(v).hexdigest() for v in contents.values()]
    with EditionArchive.open(from_files) as archive:
        big = archive.members[0]
        chunks = list(archive.iter_chunks(big))
        assert all(len(chunk) <= edition.CHUNK_BYTES for chunk in chunks)
        assert len(chunks) >= 4
        assert b"".join(chunks) == contents["big.html"]
        assert archive.members[1].method == edition.METHOD_STORED


def test_timestamp_is_utc_and_clamped_to_1980(tmp_path: Path) -> None:
    plus_three = datetime(2024, 5, 1, 15, 30, 10, tzinfo=timezone(timedelta(hours=3)))
    for when, expected in (
        (plus_three, (2024, 5, 1, 12, 30, 10)),
        (datetime(1970, 1, 1, tzinfo=UTC), (1980, 1, 1, 0, 0, 0)),
    ):
        path = tmp_path / "time.zip"
        with EditionWriter(path, timestamp=when) as writer:
            writer.add_bytes("a.txt", b"a")
        with zipfile.ZipFile(path) as stock:
            assert stock.infolist()[0].date_time == expected


# -- determinism ----------------------------------------------------------------


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    assert write_archive(first, SAMPLE) == write_archive(second, SAMPLE)
    assert first.read_bytes() == second.read_bytes()


_SEGMENT = st.text(alphabet="abcxyz019_-АБВабвгджёЖЁ", min_size=1, max_size=12)
_NAME = st.builds(
    lambda folders, stem, suffix: "/".join([*folders, stem + suffix]),
    st.lists(_SEGMENT, max_size=3),
    _SEGMENT,
    st.sampled_from([".html", ".txt", ".jpg", ".json"]),
)
_MEMBER_SETS = st.lists(
    st.tuples(_NAME, st.binary(max_size=3000) | st.text(max_size=500).map(str.encode)),
    max_size=8,
    unique_by=lambda member: unicodedata.normalize("NFC", member[0]).casefold(),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(members=_MEMBER_SETS, level=st.integers(0, 9))
def test_any_member_set_rewrites_identically_and_round_trips(
    tmp_path: Path, members: list[tuple[str, bytes]], level: int
) -> None:
    content = dict(members)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    write_archive(first, content, compresslevel=level)
    write_archive(second, content, compresslevel=level)
    assert first.read_bytes() == second.read_bytes()
    assert list(read_all(first).items()) == members


# -- stock tools as judges ------------------------------------------------------


def test_unzip_tests_the_archive_clean(sample_zip: Path) -> None:
    result = subprocess.run(
        [UNZIP, "-t", str(sample_zip)], capture_output=True, text=True, env=UTF8_ENV, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout


def test_zipinfo_shows_no_extra_fields(sample_zip: Path) -> None:
    result = subprocess.run(
        [UNZIP, "-Z", "-v", str(sample_zip)], capture_output=True, text=True, check=True
    )
    lengths = [line for line in result.stdout.splitlines() if "length of extra field" in line]
    assert len(lengths) == len(SAMPLE)
    assert all(line.split(":")[1].strip() == "0 bytes" for line in lengths)
    assert "extra field contains" not in result.stdout
    assert "There is no zipfile comment." in result.stdout
    assert "Unix file attributes (100644 octal)" in result.stdout


def test_python_zipfile_accepts_the_archive(sample_zip: Path) -> None:
    with zipfile.ZipFile(sample_zip) as stock:
        assert stock.testzip() is None
        infos = stock.infolist()
        assert [info.filename for info in infos] == list(SAMPLE)
        for info in infos:
            assert stock.read(info) == SAMPLE[info.filename]
            assert info.flag_bits == 0x0800
            assert info.extra == b""
            assert info.external_attr == 0o100644 << 16
            assert info.create_system == 3
            assert info.date_time == (2024, 5, 1, 12, 30, 10)


def test_unzip_extracts_the_same_bytes(sample_zip: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    subprocess.run([UNZIP, "-q", str(sample_zip), "-d", str(target)], check=True, env=UTF8_ENV)
    extracted = {
        path.relative_to(target).as_posix(): path.read_bytes()
        for path in target.rglob("*")
        if path.is_file()
    }
    assert extracted == SAMPLE


def test_reader_judges_info_zip_output(tmp_path: Path) -> None:
    """Plain `zip -X -D` output is sound; default `zip -r` adds folders and extra fields."""
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"hello")
    (source / "sub" / "b.bin").write_bytes(noise(4, 5000))
    plain, default = tmp_path / "plain.zip", tmp_path / "default.zip"
    subprocess.run(
        ["/usr/bin/zip", "-q", "-X", "-D", plain, "a.txt", "sub/b.bin"], cwd=source, check=True
    )
    subprocess.run(["/usr/bin/zip", "-q", "-r", default, "."], cwd=source, check=True)
    assert read_all(plain) == {"a.txt": b"hello", "sub/b.bin": noise(4, 5000)}
    with pytest.raises(UnsafeArchiveError, match=r"directory|extra field"):
        EditionArchive.open(default)


# -- ZIP64 ------------------------------------------------------------------------


def test_more_than_65535_members_use_zip64(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    count = 65_540
    with EditionWriter(path, timestamp=WHEN) as writer:
        for index in range(count):
            writer.add_bytes(f"m/{index // 1000:02d}/{index:05d}.txt", b"%d" % index)
    content = path.read_bytes()
    assert content[-22:-18] == b"PK\x05\x06"
    assert struct.unpack_from("<H", content, len(content) - 12)[0] == 0xFFFF
    assert content[-42:-38] == b"PK\x06\x07"
    with EditionArchive.open(path) as archive:
        assert len(archive.members) == count
        last = archive.members[-1]
        assert archive.read(last, max_bytes=10) == b"%d" % (count - 1)
    with zipfile.ZipFile(path) as stock:
        assert len(stock.infolist()) == count
    result = subprocess.run([UNZIP, "-tq", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    with pytest.raises(UnsafeArchiveError, match="too many members"):
        EditionArchive.open(path, ArchiveLimits(max_members=65_535))


def test_zip64_sizes_and_offsets_with_lowered_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large-file structures, exercised by lowering the ZIP64 thresholds to a few bytes."""
    monkeypatch.setattr(edition, "_ZIP64_LIMIT", 100)
    monkeypatch.setattr(edition, "_ZIP64_COUNT_LIMIT", 3)
    content = {
        "small.txt": b"tiny",
        "large.html": b"<p>large</p>" * 50,
        "noise.bin": noise(3, 300),
        "late.txt": b"after offset 100",
    }
    (tmp_path / "noise.bin").write_bytes(content["noise.bin"])
    path = tmp_path / "zip64.zip"
    with EditionWriter(path, timestamp=WHEN) as writer:
        for name, data in content.items():
            if name == "noise.bin":
                writer.add_file(name, tmp_path / name)
            else:
                writer.add_bytes(name, data)
    raw = path.read_bytes()
    eocd = struct.unpack("<IHHHHIIH", raw[-22:])
    assert eocd[3:7] == (0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    assert raw[-42:-38] == b"PK\x06\x07"
    assert raw[-98:-94] == b"PK\x06\x06"
    assert raw.count(b"\x01\x00\x10\x00") >= 2  # ZIP64 extra holding both sizes, local headers
    assert read_all(path) == content
    with zipfile.ZipFile(path) as stock:
        assert stock.testzip() is None
        assert {i.filename: stock.read(i) for i in stock.infolist()} == content
    result = subprocess.run([UNZIP, "-t", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- writer refusals and atomicity ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../x.html", "'..'"),
        ("a/./b.html", "'.'"),
        ("a//b.html", "empty path segment"),
        ("a\\b.html", "backslash"),
        ("C:/x.html", "drive letter"),
        ("x.html:stream", "':'"),
        ("dir/", "directory"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("evil\u202egpj.html", "bidirectional"),
        ("x" * 600, "name too long"),
        ("y" * 256, "segment too long"),
        ("a/" * 8 + "b", "path too deep"),
    ],
)
def test_writer_refuses_unsafe_names(tmp_path: Path, name: str, rule: str) -> None:
    with EditionWriter(tmp_path / "e.zip", timestamp=WHEN) as writer:
        with pytest.raises(UnsafeArchiveError, match=re.escape(rule)):
            writer.add_bytes(name, b"x")
        writer.add_bytes("ok.html", b"still usable")
    assert read_all(tmp_path / "e.zip") == {"ok.html": b"still usable"}


def test_every_ascii_character_is_judged_as_the_unicode_rule_judges_it(tmp_path: Path) -> None:
    """Printable ASCII skips the per-character look-up: each of the 128 code points in a
    name is refused for a control character exactly when its category is a control one."""
    for code in range(128):
        name = f"a{chr(code)}b.html"
        control = unicodedata.category(chr(code)) == "Cc"
        problem = edition._name_problem(name, ArchiveLimits())
        said = problem is not None and "control character" in problem
        assert said == control, (code, problem)
    with (
        EditionWriter(tmp_path / "e.zip", timestamp=WHEN) as writer,
        pytest.raises(UnsafeArchiveError, match="control character U\\+007F"),
    ):
        writer.add_bytes("a\x7fb.html", b"x")


@pytest.mark.parametrize(
    ("first", "second", "rule"),
    [
        ("a.html", "a.html", "duplicate"),
        ("A.html", "a.html", "collide"),
        ("caf\u00e9.html", "cafe\u0301.html", "collide"),
        ("page", "page/inner.html", "file/folder"),
        ("page/inner.html", "PAGE", "file/folder"),
    ],
)
def test_writer_refuses_colliding_names(tmp_path: Path, first: str, second: str, rule: str) -> None:
    with EditionWriter(tmp_path / "e.zip", timestamp=WHEN) as writer:
        writer.add_bytes(first, b"1")
        with pytest.raises(UnsafeArchiveError, match=rule):
            writer.add_bytes(second, b"2")


def test_unwritable_destination_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        EditionWriter(tmp_path / "missing" / "e.zip", timestamp=WHEN)


def test_unreadable_source_is_a_storage_error(tmp_path: Path) -> None:
    with EditionWriter(tmp_path / "e.zip", timestamp=WHEN) as writer:
        with pytest.raises(StorageError):
            writer.add_file("a.html", tmp_path / "nope.html")
        writer.add_bytes("b.html", b"b")
    assert read_all(tmp_path / "e.zip") == {"b.html": b"b"}


def test_exception_in_block_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "e.zip"

    def build() -> None:
        with EditionWriter(path, timestamp=WHEN) as writer:
            writer.add_bytes("a.html", b"a" * 10_000)
            raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        build()
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_archive(tmp_path: Path) -> None:
    path = tmp_path / "e.zip"
    write_archive(path, {"old.html": b"old"})
    before = path.read_bytes()

    def rebuild() -> None:
        with EditionWriter(path, timestamp=WHEN) as writer:
            writer.add_bytes("new.html", b"new")
            writer.add_bytes("../escape.html", b"x")

    with pytest.raises(UnsafeArchiveError):
        rebuild()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["e.zip"]


# -- hostile archives -------------------------------------------------------------

# variant -> (words the message must contain, where it is caught, limits)
_OPEN, _READ = "open", "read"
EXPECTED: dict[str, tuple[str, str, ArchiveLimits]] = {
    "zip_bomb_ratio": ("compression ratio", _OPEN, ArchiveLimits()),
    "inflates_past_declared_size": ("more than its declared", _READ, ArchiveLimits()),
    "inflates_short_of_declared_size": ("fewer than its declared", _READ, ArchiveLimits()),
    "data_after_deflate_stream": ("after the end of its deflate stream", _READ, ArchiveLimits()),
    "corrupt_deflate": ("corrupt deflate", _READ, ArchiveLimits()),
    "crc_mismatch": ("CRC-32", _READ, ArchiveLimits()),
    "stored_size_mismatch": ("stored but its sizes differ", _OPEN, ArchiveLimits()),
    "absolute_name": ("absolute", _OPEN, ArchiveLimits()),
    "dotdot_name": ("'..' path segment", _OPEN, ArchiveLimits()),
    "dot_segment_name": ("'.' path segment", _OPEN, ArchiveLimits()),
    "empty_segment_name": ("empty path segment", _OPEN, ArchiveLimits()),
    "empty_name": ("empty name", _OPEN, ArchiveLimits()),
    "backslash_name": ("backslash", _OPEN, ArchiveLimits()),
    "drive_letter_name": ("drive letter", _OPEN, ArchiveLimits()),
    "colon_name": ("alternate data stream", _OPEN, ArchiveLimits()),
    "control_character_name": ("control character", _OPEN, ArchiveLimits()),
    "nul_name": ("control character U+0000", _OPEN, ArchiveLimits()),
    "bidi_override_name": ("bidirectional", _OPEN, ArchiveLimits()),
    "invalid_utf8_name": ("not valid UTF-8", _OPEN, ArchiveLimits()),
    "non_ascii_without_utf8_flag": ("not valid ASCII", _OPEN, ArchiveLimits()),
    "overlong_name": ("name too long", _OPEN, ArchiveLimits()),
    "overlong_segment": ("segment too long", _OPEN, ArchiveLimits()),
    "overdeep_path": ("path too deep", _OPEN, ArchiveLimits()),
    "symlink_member": ("symlink", _OPEN, ArchiveLimits()),
    "directory_member": ("directory", _OPEN, ArchiveLimits()),
    "directory_mode_member": ("directory", _OPEN, ArchiveLimits()),
    "dos_directory_member": ("directory", _OPEN, ArchiveLimits()),
    "char_device_member": ("character device", _OPEN, ArchiveLimits()),
    "block_device_member": ("block device", _OPEN, ArchiveLimits()),
    "fifo_member": ("FIFO", _OPEN, ArchiveLimits()),
    "socket_member": ("socket", _OPEN, ArchiveLimits()),
    "setuid_member": ("set-uid", _OPEN, ArchiveLimits()),
    "duplicate_names": ("duplicate names", _OPEN, ArchiveLimits()),
    "case_collision": ("'A.html' and 'a.html' collide", _OPEN, ArchiveLimits()),
    "nfc_nfd_collision": ("collide", _OPEN, ArchiveLimits()),
    "file_folder_collision": ("file/folder collision", _OPEN, ArchiveLimits()),
    "encrypted_flag": ("encrypted", _OPEN, ArchiveLimits()),
    "data_descriptor_flag": ("data descriptor", _OPEN, ArchiveLimits()),
    "unknown_flag": ("unknown flags", _OPEN, ArchiveLimits()),
    "unknown_method": ("compression method 12", _OPEN, ArchiveLimits()),
    "unknown_central_extra": ("extra field that is not ZIP64", _OPEN, ArchiveLimits()),
    "unknown_local_extra": ("extra field that is not ZIP64", _OPEN, ArchiveLimits()),
    "member_comment": ("comment", _OPEN, ArchiveLimits()),
    "eocd_comment": ("comment", _OPEN, ArchiveLimits()),
    "trailing_garbage": ("trailing data", _OPEN, ArchiveLimits()),
    "prepended_data": ("prepended", _OPEN, ArchiveLimits()),
    "prepended_data_unadjusted": ("prepended", _OPEN, ArchiveLimits()),
    "gap_between_members": ("between members", _OPEN, ArchiveLimits()),
    "gap_before_directory": ("data between members", _OPEN, ArchiveLimits()),
    "shared_local_header": ("share one local header (overlapping members)", _OPEN, ArchiveLimits()),
    "local_header_inside_member": ("overlapping members", _OPEN, ArchiveLimits()),
    "local_name_mismatch": (
        "does not match the central directory entry (name)",
        _OPEN,
        ArchiveLimits(),
    ),
    "local_crc_mismatch": (
        "does not match the central directory entry (CRC-32)",
        _OPEN,
        ArchiveLimits(),
    ),
    "truncated": ("cut short", _OPEN, ArchiveLimits()),
    "truncated_end_record": ("cut short", _OPEN, ArchiveLimits()),
    "eocd_count_mismatch": ("entry counts inconsistent", _OPEN, ArchiveLimits()),
    "nonzero_disk": ("disk", _OPEN, ArchiveLimits()),
    "unneeded_zip64_end": ("ZIP64 end record it does not need", _OPEN, ArchiveLimits()),
    "too_many_members": ("too many members", _OPEN, ArchiveLimits(max_members=100)),
}


def test_every_hostile_variant_has_an_expectation() -> None:
    assert set(EXPECTED) == set(HOSTILE_VARIANTS)


INCOMPLETE_VARIANTS = {"truncated", "truncated_end_record"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty (0 bytes)"),
        (b"PK\x03\x04" + bytes(100), "cut short"),
        (b"<!DOCTYPE html><html><body>This site is blocked</body></html>", "a web page"),
        (b"  \n<html><head><title>Login</title>", "a web page"),
        (b"%PDF-1.7 something else entirely", "not a ZIP archive at all"),
        (b"PK", "cut short"),
    ],
)
def test_a_file_that_is_not_a_whole_zip_is_incomplete_not_hostile(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "edition.zip"
    path.write_bytes(content)
    with pytest.raises(IncompleteEditionError, match=re.escape(words)):
        EditionArchive.open(path)


@pytest.mark.parametrize("variant", sorted(HOSTILE_VARIANTS))
def test_hostile_archive_is_rejected(tmp_path: Path, valid_bytes: bytes, variant: str) -> None:
    words, where, limits = EXPECTED[variant]
    path = tmp_path / f"{variant}.zip"
    path.write_bytes(HOSTILE_VARIANTS[variant](valid_bytes))
    # A file cut short is not hostile, only incomplete: it gets its own verdict.
    error = IncompleteEditionError if variant in INCOMPLETE_VARIANTS else UnsafeArchiveError
    if where == _OPEN:
        with pytest.raises(error) as caught:
            EditionArchive.open(path, limits)
        assert str(caught.value).endswith(".")
    else:
        # The structure is sane; the member's data is not what was written: tampering, with
        # the member named first (whichever member it is: content or signed metadata).
        with EditionArchive.open(path, limits) as archive:
            member = archive.members[-1]
            with pytest.raises(TamperedError) as caught:
                archive.read(member, max_bytes=1 << 30)
        assert not isinstance(caught.value, UnsafeArchiveError)
        assert str(caught.value).startswith(f"{member.name} is not the data the publisher signed (")
    message = str(caught.value)
    assert words in message
    assert "\n" not in message


def test_hostile_variants_start_from_a_sound_archive(tmp_path: Path, valid_bytes: bytes) -> None:
    """The helpers re-lay a valid archive faithfully, so each variant breaks one rule only."""
    path = tmp_path / "rebuilt.zip"
    path.write_bytes(build(parse_members(valid_bytes)))
    assert read_all(path) == SAMPLE


def test_limits_cap_member_and_total_sizes(sample_zip: Path) -> None:
    with pytest.raises(UnsafeArchiveError, match="member too large"):
        EditionArchive.open(sample_zip, ArchiveLimits(max_member_bytes=1000))
    with pytest.raises(UnsafeArchiveError, match="archive too large"):
        EditionArchive.open(sample_zip, ArchiveLimits(max_total_bytes=3000))


_MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "truncate", "insert", "duplicate"]),
    st.integers(0, 1 << 20),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=48),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, value, blob in mutations:
        position = where % (len(out) + 1)
        if kind == "flip" and position < len(out):
            out[position] ^= 1 << (value % 8)
        elif kind == "set" and position < len(out):
            out[position] = value
        elif kind == "truncate":
            del out[position:]
        elif kind == "insert":
            out[position:position] = blob
        elif kind == "duplicate":
            out[position:position] = out[position : position + value + 1]
    return bytes(out)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_archives_raise_only_archive_verdicts(
    tmp_path: Path, valid_bytes: bytes, mutations: list[tuple[str, int, int, bytes]]
) -> None:
    path = tmp_path / "fuzz.zip"
    path.write_bytes(_mutate(valid_bytes, mutations))
    with (
        contextlib.suppress(UnsafeArchiveError, IncompleteEditionError, TamperedError),
        EditionArchive.open(path) as archive,
    ):
        for member in archive.members:
            data = archive.read(member, max_bytes=1 << 24)
            assert len(data) == member.size
            assert zlib.crc32(data) == member.crc32


# -- reading: storage errors and bounds -------------------------------------------


def test_missing_or_irregular_path_is_a_storage_error(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.zip"
    os.mkfifo(fifo)
    for path in (tmp_path / "missing.zip", tmp_path, fifo):
        with pytest.raises(StorageError):
            EditionArchive.open(path)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_max_bytes_is_enforced_before_reading(sample_zip: Path) -> None:
    with EditionArchive.open(sample_zip) as archive:
        member = archive.members[0]
        with pytest.raises(UnsafeArchiveError, match="allowed here"):
            archive.iter_chunks(member, max_bytes=member.size - 1)  # raised before streaming
        with pytest.raises(UnsafeArchiveError, match="allowed here"):
            archive.read(member, max_bytes=member.size - 1)
        assert archive.read(member, max_bytes=member.size) == SAMPLE[member.name]


def test_interleaved_streams_do_not_disturb_each_other(sample_zip: Path) -> None:
    with EditionArchive.open(sample_zip) as archive:
        first, second = archive.members[0], archive.members[3]
        streams: list[Iterator[bytes]] = [
            archive.iter_chunks(first),
            archive.iter_chunks(second),
        ]
        results = [next(stream) for stream in streams]
        results = [r + b"".join(s) for r, s in zip(results, streams, strict=True)]
    assert results == [SAMPLE[first.name], SAMPLE[second.name]]


def test_foreign_member_is_refused(sample_zip: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.zip"
    write_archive(other, {"index.html": b"different"})
    with (
        EditionArchive.open(other) as theirs,
        EditionArchive.open(sample_zip) as ours,
        pytest.raises(ValueError, match="not a member"),
    ):
        ours.read(theirs.members[0], max_bytes=100)


def test_file_truncated_after_open_is_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "e.zip"
    write_archive(path, {"a.html": b"a", "photo.jpg": noise(5, 200_000)})
    with EditionArchive.open(path) as archive:
        photo = archive.members[-1]
        os.truncate(path, photo.data_offset + 100_000)
        with pytest.raises(UnsafeArchiveError, match="truncated"):
            archive.read(photo, max_bytes=1 << 20)


def test_empty_archive_opens_with_no_members(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    write_archive(path, {})
    assert path.stat().st_size == 22
    with EditionArchive.open(path) as archive:
        assert list(archive.members) == []


def test_add_file_source_failure_rolls_back_the_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "a.html"
    source.write_bytes(b"<p>a</p>" * 1000)
    real_stat = Path.stat

    def lying_stat(self: Path, **kwargs: bool) -> os.stat_result:
        result = real_stat(self, **kwargs)
        if self == source:  # the size changes between stat and read
            return os.stat_result((*result[:6], result.st_size + 1, *result[7:]))
        return result

    path = tmp_path / "e.zip"
    with EditionWriter(path, timestamp=WHEN) as writer:
        writer.add_bytes("first.html", b"first")
        monkeypatch.setattr(Path, "stat", lying_stat)
        with pytest.raises(StorageError, match="changed size"):
            writer.add_file("a.html", source)
        monkeypatch.undo()
        writer.add_file("a.html", source)
    assert read_all(path) == {"first.html": b"first", "a.html": source.read_bytes()}
