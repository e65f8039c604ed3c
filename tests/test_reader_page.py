"""`reader.html` in real Chromium: the same verdict as `mirror verify` for every file, then reading.

The judge of parity is the CLI itself: every file of the attack corpus
(tests/test_attacks.py's member, metadata and root-rotation attacks, every
hostile structure of tests/hostile_zip.py, files that are no whole edition
(empty, cut short at many offsets, web pages, a PDF), one-bit flips inside
members, expired, not yet valid, rollback, mix-and-match, another
publisher's edition, changed copies of trusted roots, and key rotations:
superseded, retired and compromised keys) is given to `mirror verify` and,
through the page's own file input, to `reader.html` loaded from ``file://``
in headless Chromium, one browser session for the whole corpus. Each file
must get the same verdict in both: the same exit code, the same hint (each
refusal class has its own), "superseded" in both or neither, and a reading
button exactly when the CLI exits 0.
A recording proxy on loopback sees every request Chromium makes; the page
makes none. No browser is downloaded: Debian's chromium is driven over the
DevTools pipe (tests/chromium.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import Signature, SSlibKey
from tuf.api.metadata import Metadata, Root, Targets

from mirror import errors
from mirror.build import BuildResult
from mirror.cli import main
from mirror.edition import EditionArchive
from mirror.keystore import init_keys, load_keyring, load_root_signers, rotate_role
from mirror.reader import export_page, page_verdicts
from mirror.reader.export_page import SCRIPTS, build_reader_page, export_reader_page
from mirror.secrets import Secret
from mirror.trust.metadata import serializer
from mirror.trust.retired import LISTING_FIELDS, RETIRED_FIELD
from tests import hostile_zip
from tests.chromium import CHROMIUM, Chromium, Page
from tests.conftest import BUILD_TIME, Publisher, make_config, make_keys, write_articles
from tests.test_attacks import (
    INCOMPLETE,
    INCOMPLETE_VARIANTS,
    MEMBER_ATTACKS,
    OTHER_PUBLISHER,
    ROOT_ATTACKS,
    ROOT_COPY_EDITS,
    STREAM_DAMAGE,
    UNSIGNED_STREAM_VARIANTS,
    _next_root,
    _sign,
    _with_root,
    damaged_members,
    edit_root_document,
    members,
    with_damaged_member,
    write_zip,
)
from tests.test_member_shards import SIGNED_LIES, listed_twice, listed_whole, resigned_shards
from tests.test_read import RUSSIAN_BODY, TITLES, RecordingProxy
from tests.test_rotation import (
    MALFORMED_RECORDS,
    created_at,
    forged_root_1_edition,
    make_threshold_two,
    resigned_root,
    retired_together,
    targets_signer,
    thief_of,
    with_edition_info,
)

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="chromium is installed by .ci/run"
)


# --- the corpus ---------------------------------------------------------------------------------

TAMPERED, EXPIRED, NOT_YET_VALID, ROLLBACK, UNSAFE = 10, 11, 12, 13, 14


@dataclass(frozen=True)
class Step:
    """One file handed to both readers; they share state within a case."""

    path: Path
    allow_expired: bool = False


@dataclass
class Case:
    """Files handed one after another to a reader who pinned ``root``, starting with no memory."""

    label: str
    root: Path
    steps: list[Step]
    expected: list[int] | None = None
    """Exit codes the CLI must give (a check that the corpus is what it claims to be)."""
    verdicts: list[str] | None = None
    """Verdicts the page must show (where the exit code alone does not tell them apart)."""


@dataclass
class Corpus:
    cases: list[Case] = field(default_factory=list)

    def add(
        self,
        label: str,
        root: Path,
        *paths: Path,
        expected: list[int] | None = None,
        verdicts: list[str] | None = None,
    ) -> None:
        self.cases.append(Case(label, root, [Step(p) for p in paths], expected, verdicts))


def _publisher(factory: pytest.TempPathFactory, articles: int = 3) -> Publisher:
    home = factory.mktemp("page-publisher")
    write_articles(home / "articles", articles)
    config = make_config(home)
    make_keys(config)
    return Publisher(home, config)


def _raw_bit_flip(zip_path: Path, out: Path, name: str = "index.html") -> Path:
    """One bit of member ``name``'s stored (usually compressed) data flipped, headers intact."""
    data = bytearray(zip_path.read_bytes())
    with EditionArchive.open(zip_path) as archive:
        member = archive.find(name)
        assert member is not None
        data[member.data_offset + member.compressed_size // 2] ^= 0x10
    out.write_bytes(bytes(data))
    return out


NOT_AN_EDITION: dict[str, bytes] = {
    "a web page (a block page)": b"<!DOCTYPE html><html><head><title>Access denied</title></head>"
    b"<body><h1>This site is blocked</h1><p>By order of the regulator.</p></body></html>\n" * 20,
    "a web page after white space": b"  \r\n\t\x0b\x0c<html><head><title>Login</title>",
    "an XML error page": b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>',
    "a lone '<'": b"<",
    "a web page behind a byte order mark": b"\xef\xbb\xbf<!doctype html><p>blocked</p>" * 3,
    "a PDF": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 30,
    "a short PDF": b"%PDF",
    "only white space": b" \n" * 40,
    "a local header and zeros": b"PK\x03\x04" + bytes(100),
    "a central directory signature": b"PK\x01\x02" + bytes(60),
    "'PK' alone": b"PK",
    "'P' alone": b"P",
}
"""Files with no ZIP end record at all, as a censor's block page or a broken save leaves them."""


def _cuts(valid: bytes) -> dict[str, bytes]:
    """The edition cut short at several offsets, as an interrupted download leaves it."""
    size = len(valid)
    offsets = {
        "after 3 bytes": 3,
        "inside the first local header": 20,
        "after 1,000 bytes": 1000,
        "at half": size // 2,
        "inside the central directory": size - 200,
        "just before the end record": size - 22,
        "inside the end record": size - 9,
        "one byte short": size - 1,
    }
    return {label: valid[:offset] for label, offset in offsets.items()}


def _retired(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """An edit of every retirement record of a root's signed part."""

    def apply(signed: dict[str, Any]) -> None:
        for entry in signed[RETIRED_FIELD].values():
            edit(entry)

    return apply


def _without_listing(entry: dict[str, Any]) -> None:
    """A retirement record as written before it carried the key itself (ADR 0018)."""
    for name in LISTING_FIELDS:
        del entry[name]


def _loosely(moment: datetime) -> str:
    """A time as strptime reads it but nobody writes it: ``2026-1-5T0:0:0Z``."""
    return (
        f"{moment.year}-{moment.month}-{moment.day}T{moment.hour}:{moment.minute}:{moment.second}Z"
    )


def _threshold_alias(publisher: Publisher, m: dict[str, bytes]) -> dict[str, bytes]:
    """One targets key under two key ids, threshold 2 (see test_attacks): counts once."""
    keyring = load_keyring(publisher.config.keys.dir, publisher.config.passphrase())
    old_signers = load_root_signers(publisher.config.keys.dir, publisher.config.passphrase())
    root = Root.from_dict(keyring.root.signed.to_dict())
    root.version = 2
    real = keyring.signer("targets").public_key
    alias = SSlibKey("ab" * 32, real.keytype, real.scheme, dict(real.keyval))
    root.add_key(alias, "targets")
    root.roles["targets"].threshold = 2
    content = _with_root(m, 2, _sign(Metadata(root), old_signers[:2]))
    targets_md = Metadata[Targets].from_bytes(content[".mirror/targets.json"])
    real_signature = targets_md.signatures[real.keyid].signature
    targets_md.signatures[alias.keyid] = Signature(alias.keyid, real_signature)
    content[".mirror/targets.json"] = targets_md.to_bytes(serializer())
    return content


def _edit_json(
    m: dict[str, bytes], name: str, edit: Callable[[dict[str, object]], None]
) -> dict[str, bytes]:
    document = json.loads(m[name])
    edit(document)
    return {**m, name: json.dumps(document).encode()}


def _loose_signature_hex(doc: dict[str, object]) -> None:
    """Upper case with spaces: bytes.fromhex still reads it, so the signature still verifies."""
    for signature in doc["signatures"]:  # type: ignore[attr-defined]
        text = signature["sig"].upper()
        signature["sig"] = " ".join(text[i : i + 2] for i in range(0, len(text), 2))


def _null_optional_field(doc: dict[str, object]) -> None:
    """``path_hash_prefixes: null`` beside ``paths``: python-tuf drops it, the signature holds."""
    for role in doc["signed"]["delegations"]["roles"]:  # type: ignore[index]
        role["path_hash_prefixes"] = None


def _loose_expiry(doc: dict[str, object]) -> None:
    """``2027-01-05T00:00:00Z`` written as ``2027-1-5T0:0:0Z``: strptime reads both the same."""
    signed = doc["signed"]
    moment = datetime.strptime(signed["expires"], "%Y-%m-%dT%H:%M:%SZ")  # type: ignore[index]
    signed["expires"] = (  # type: ignore[index]
        f"{moment.year}-{moment.month}-{moment.day}T{moment.hour}:{moment.minute}:{moment.second}Z"
    )


def _casefold_collision(valid: bytes) -> bytes:
    """'STRASSE.html' and 'straße.html' are one file once case is folded (ß folds to 'ss')."""
    return hostile_zip.build(
        [
            *hostile_zip.parse_members(valid),
            hostile_zip.stored("STRASSE.html", b"upper"),
            hostile_zip.stored("stra\u00dfe.html", b"folded"),
        ]
    )


@pytest.fixture(scope="module")
def corpus(
    built: tuple[Publisher, BuildResult], tmp_path_factory: pytest.TempPathFactory
) -> Corpus:
    """Every hostile, stale and genuine file, with the root its reader pins."""
    out = tmp_path_factory.mktemp("page-corpus")
    corpus = Corpus()
    publisher, result = built
    root = publisher.root_json
    valid = members(result.zip_path)
    corpus.add("valid edition", root, result.zip_path, expected=[0])
    empty = out / "empty.zip"
    empty.write_bytes(b"")
    corpus.add("not an edition: an empty file", root, empty, expected=[INCOMPLETE])
    text = out / "letter.zip"
    text.write_text("Привет! This is a letter, not an archive.\n" * 40, encoding="utf-8")
    corpus.add("not an edition: a text file", root, text, expected=[INCOMPLETE])
    for label, content in NOT_AN_EDITION.items():
        path = out / f"not-an-edition-{len(corpus.cases)}.zip"
        path.write_bytes(content)
        corpus.add(f"not an edition: {label}", root, path, expected=[INCOMPLETE])
    for label, content in _cuts(result.zip_path.read_bytes()).items():
        path = out / f"cut-{len(corpus.cases)}.zip"
        path.write_bytes(content)
        corpus.add(f"cut short: {label}", root, path, expected=[INCOMPLETE])
    plain = write_zip(out / "plain.zip", {"index.html": b"<p>hello</p>", "a.txt": b"a"})
    corpus.add("not an edition: a ZIP without signed metadata", root, plain, expected=[TAMPERED])
    nothing = out / "nothing.zip"
    nothing.write_bytes(hostile_zip.build([]))
    corpus.add("not an edition: a ZIP with no members", root, nothing, expected=[TAMPERED])
    for name, attack in sorted(MEMBER_ATTACKS.items()):
        path = write_zip(out / f"member-{len(corpus.cases)}.zip", attack(valid))
        corpus.add(f"member attack: {name}", root, path, expected=[TAMPERED])
    for name in ("index.html", "articles/article-001.html", "edition.json"):
        flipped = _raw_bit_flip(result.zip_path, out / f"flipped-{len(corpus.cases)}.zip", name)
        corpus.add(f"one bit flipped in the data of {name}", root, flipped, expected=[TAMPERED])
    # A changed byte inside any member's data is tampering, embedded metadata included.
    flipped = _raw_bit_flip(result.zip_path, out / "flipped-meta.zip", ".mirror/targets.json")
    corpus.add(
        "one bit flipped in the data of the embedded targets metadata",
        root,
        flipped,
        expected=[TAMPERED],
    )
    zip_bytes = result.zip_path.read_bytes()
    for name in damaged_members(zip_bytes):
        for damage in sorted(STREAM_DAMAGE):
            path = out / f"damaged-{len(corpus.cases)}.zip"
            path.write_bytes(with_damaged_member(zip_bytes, name, damage))
            corpus.add(f"{name}: {damage}", root, path, expected=[TAMPERED])
    for name, make in sorted(hostile_zip.HOSTILE_VARIANTS.items()):
        path = out / f"hostile-{name}.zip"
        path.write_bytes(make(result.zip_path.read_bytes()))
        code = (
            TAMPERED
            if name in UNSIGNED_STREAM_VARIANTS
            else INCOMPLETE
            if name in INCOMPLETE_VARIANTS
            else UNSAFE
        )
        corpus.add(f"hostile structure: {name}", root, path, expected=[code])
    path = out / "casefold.zip"
    path.write_bytes(_casefold_collision(result.zip_path.read_bytes()))
    corpus.add("hostile structure: names equal after full case folding", root, path)
    for name, signers in sorted(ROOT_ATTACKS.items()):
        next_root, old, new = _next_root(publisher)
        _sign(next_root, signers(old, new))  # type: ignore[no-untyped-call]
        path = write_zip(out / f"root-{len(corpus.cases)}.zip", _with_root(valid, 2, next_root))
        corpus.add(f"root attack: {name}", root, path, expected=[TAMPERED])
    next_root, old, new = _next_root(publisher, version=3)
    _sign(next_root, old[:2] + new[:2])
    path = write_zip(out / "root-skip.zip", _with_root(valid, 3, next_root))
    corpus.add("root attack: version skip", root, path, expected=[TAMPERED])
    path = write_zip(out / "alias.zip", _threshold_alias(publisher, valid))
    corpus.add("threshold padded with a duplicate key", root, path, expected=[TAMPERED])
    for label, edit, code in (
        ("signature hex in upper case with spaces", _loose_signature_hex, 0),
        ("optional field set to null in signed metadata", _null_optional_field, 0),
        ("expiry written loosely in signed metadata", _loose_expiry, 0),
    ):
        path = write_zip(
            out / f"json-{len(corpus.cases)}.zip", _edit_json(valid, ".mirror/targets.json", edit)
        )
        corpus.add(f"lenient parsing: {label}", root, path, expected=[code])
    for label, (change, outcome) in ROOT_COPY_EDITS.items():
        path = write_zip(
            out / f"root-copy-{len(corpus.cases)}.zip", edit_root_document(valid, 1, change)
        )
        expected = [outcome]
        corpus.add(f"the pinned root's embedded copy: {label}", root, path, expected=expected)
    role = next(k for k in valid if k.startswith(".mirror/edition-"))
    undelegated = {k: v for k, v in valid.items() if k != role}
    undelegated[".mirror/edition-1999-01-01-v9.json"] = valid[role]
    path = write_zip(out / "undelegated.zip", undelegated)
    corpus.add("an edition role the manifests do not delegate", root, path, expected=[TAMPERED])
    no_root = {k: v for k, v in valid.items() if k != ".mirror/root/1.root.json"}
    path = write_zip(out / "no-root-1.zip", no_root)
    corpus.add("the archive lacks its root version 1", root, path, expected=[TAMPERED])
    for label, (lie, _) in sorted(SIGNED_LIES.items()):
        lying = resigned_shards(publisher, valid, lie)
        path = write_zip(out / f"shard-{len(corpus.cases)}.zip", lying)
        corpus.add(f"a member shard that lies, signed: {label}", root, path, expected=[TAMPERED])
    path = write_zip(out / "listed-twice.zip", listed_twice(publisher, valid))
    corpus.add("a member in the role and in its shard", root, path, expected=[TAMPERED])
    path = write_zip(out / "listed-whole.zip", listed_whole(publisher, valid))
    corpus.add(
        "an edition from before shards: the role lists every member", root, path, expected=[0]
    )

    # Freshness, rollback, mix-and-match: a second publisher with its own page.
    second = _publisher(tmp_path_factory)
    other_root = second.root_json
    expired = second.build(when=datetime.now(UTC) - timedelta(days=40))
    first = second.build(when=BUILD_TIME)
    article = second.articles / "article-000.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nUpdated.\n", encoding="utf-8")
    newer = second.build(when=BUILD_TIME + timedelta(minutes=5))
    mixed = {k: v for k, v in members(first.zip_path).items() if not k.startswith(".mirror/")}
    mixed.update({k: v for k, v in members(newer.zip_path).items() if k.startswith(".mirror/")})
    mixed_path = write_zip(out / "mixed.zip", mixed)
    future = second.build(when=datetime.now(UTC) + timedelta(days=2))
    corpus.add("expired edition", other_root, expired.zip_path, expected=[EXPIRED])
    corpus.cases.append(
        Case("expired edition, allowed loudly", other_root, [Step(expired.zip_path, True)], [0])
    )
    corpus.add("not yet valid edition", other_root, future.zip_path, expected=[NOT_YET_VALID])
    corpus.add(
        "rollback to an older valid edition",
        other_root,
        newer.zip_path,
        first.zip_path,
        expected=[0, ROLLBACK],
    )
    corpus.add(
        "an older edition, to a reader with no memory", other_root, first.zip_path, expected=[0]
    )
    corpus.add(
        "mix-and-match metadata of two editions", other_root, mixed_path, expected=[TAMPERED]
    )
    corpus.add(
        "another publisher's edition",
        root,
        first.zip_path,
        expected=[OTHER_PUBLISHER],
        verdicts=["other-publisher"],
    )
    corpus.add(
        "the first publisher's edition, to the second publisher's page",
        other_root,
        result.zip_path,
        expected=[OTHER_PUBLISHER],
    )
    # Checked before any signature: our edition with another publisher's root 1 in it.
    foreign = {**valid, ".mirror/root/1.root.json": other_root.read_bytes()}
    path = write_zip(out / "foreign-root.zip", foreign)
    corpus.add(
        "an edition carrying another publisher's root 1", root, path, expected=[OTHER_PUBLISHER]
    )

    _rotations(corpus, tmp_path_factory, out)
    return corpus


def _rotations(corpus: Corpus, factory: pytest.TempPathFactory, out: Path) -> None:
    """Key rotation keeps the past: superseded, retired and compromised keys (test_rotation)."""
    # A routine rotation of the targets key. Pages: root 1 (old readers), root 2 (new readers).
    third = _publisher(factory)
    before = third.build()
    old_root = out / "root-v1.json"
    old_root.write_bytes(third.root_json.read_bytes())
    thief = thief_of(third, factory.mktemp("thief"))  # keeps the old key after the rotation
    retired_at = BUILD_TIME + timedelta(minutes=10)
    rotate_role(third.config.keys.dir, third.config.passphrase(), "targets", now=retired_at)
    new_root = out / "root-v2.json"
    new_root.write_bytes(third.root_json.read_bytes())
    after = third.build(when=BUILD_TIME + timedelta(minutes=15))
    late = thief.build(when=BUILD_TIME + timedelta(minutes=30))
    corpus.add("after a targets key rotation", old_root, after.zip_path, expected=[0])
    corpus.add(
        "an edition signed by the retired targets key, after the walk to root 2",
        old_root,
        after.zip_path,
        before.zip_path,
        expected=[0, ROLLBACK],
    )
    corpus.add(
        "an edition signed before a rotation, to a reader who never saw it",
        old_root,
        before.zip_path,
        expected=[0],
        verdicts=["verified"],
    )
    corpus.add(
        "an edition signed before a routine rotation, to a page embedding root 2",
        new_root,
        before.zip_path,
        expected=[0],
        verdicts=["superseded"],
    )
    corpus.add(
        "superseded, then the newer edition",
        new_root,
        before.zip_path,
        after.zip_path,
        expected=[0, 0],
        verdicts=["superseded", "verified"],
    )
    corpus.add(
        "the newer edition, then the superseded one",
        new_root,
        after.zip_path,
        before.zip_path,
        expected=[0, ROLLBACK],
    )
    corpus.add(
        "an edition created after its key's routine retirement",
        new_root,
        late.zip_path,
        expected=[TAMPERED],
        verdicts=["tampered"],
    )
    corpus.add(
        "an edition created after its key's retirement, to a reader who never saw it",
        old_root,
        late.zip_path,
        expected=[0],
    )
    corpus.add(
        "an edition created after its key's retirement, after the walk to root 2",
        old_root,
        after.zip_path,
        late.zip_path,
        expected=[0, TAMPERED],
    )
    # The reader's stored root 2 is the one an edition's copy must equal.
    copy = edit_root_document(members(after.zip_path), 2, lambda d: d.__setitem__("x", 1))
    changed = write_zip(out / "root-2-copy.zip", copy)
    corpus.add("root 2 with an unsigned field, first seen", old_root, changed, expected=[0])
    corpus.add(
        "root 2 with an unsigned field, after the real root 2",
        old_root,
        after.zip_path,
        changed,
        expected=[0, TAMPERED],
    )

    # What the newest root says about the retired key is parsed strictly, and its expiry counts.
    signed_root_2: dict[str, tuple[Callable[[dict[str, Any]], None], int]] = {
        "not an object": (lambda s: s.__setitem__(RETIRED_FIELD, []), TAMPERED),
        "a record without a role": (_retired(lambda e: e.pop("role")), TAMPERED),
        "a retirement without a time": (_retired(lambda e: e.pop("retired")), TAMPERED),
        "a retirement time that is no time": (
            _retired(lambda e: e.__setitem__("retired", "2026")),
            TAMPERED,
        ),
        "a retirement time written loosely": (
            _retired(lambda e: e.__setitem__("retired", _loosely(retired_at))),
            0,
        ),
        "compromised since null": (
            _retired(lambda e: e.__setitem__("compromised_since", None)),
            0,
        ),
        "compromised since a number": (
            _retired(lambda e: e.__setitem__("compromised_since", 5)),
            TAMPERED,
        ),
        "the newest root expired": (
            lambda s: s.__setitem__(
                "expires", (BUILD_TIME - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
            EXPIRED,
        ),
        "a record older than the key fields (the root chain vouches)": (
            _retired(_without_listing),
            0,
        ),
    }
    for flaw, (edit, _) in MALFORMED_RECORDS.items():
        signed_root_2[f"malformed: {flaw}"] = (edit, TAMPERED)
    for label, (edit, code) in signed_root_2.items():
        page_root = resigned_root(third, new_root, out / f"root-v2-{len(corpus.cases)}.json", edit)
        corpus.add(f"superseded, root 2: {label}", page_root, before.zip_path, expected=[code])
        if label == "the newest root expired":
            corpus.cases.append(
                Case(f"superseded, {label}, allowed", page_root, [Step(before.zip_path, True)], [0])
            )

    # Two rotations: a page at root 3 has never seen root 2, which root 1's edition lacks.
    rotate_role(
        third.config.keys.dir,
        third.config.passphrase(),
        "snapshot",
        now=BUILD_TIME + timedelta(minutes=20),
    )
    corpus.add(
        "an edition two rotations old, to a page embedding root 3",
        third.root_json,
        after.zip_path,
        before.zip_path,
        expected=[0, ROLLBACK],
    )
    root_3 = out / "root-v3.json"
    root_3.write_bytes(third.root_json.read_bytes())
    corpus.add(
        "an edition two rotations old, to a page embedding root 3 (root 2 never seen)",
        root_3,
        before.zip_path,
        expected=[0],
        verdicts=["superseded"],
    )
    # The targets key rotated a second time (root 4): editions of roots 1 and 2 stay genuine.
    rotate_role(
        third.config.keys.dir,
        third.config.passphrase(),
        "targets",
        now=BUILD_TIME + timedelta(minutes=25),
    )
    for label, path in (("root 1", before.zip_path), ("root 2", after.zip_path)):
        corpus.add(
            f"targets rotated twice: an edition of {label}, to a page embedding root 4",
            third.root_json,
            path,
            expected=[0],
            verdicts=["superseded"],
        )
    forged = forged_root_1_edition(before.zip_path, out / "forged-root-1.zip")
    for label, page_root in (("root 4", third.root_json), ("root 2", new_root)):
        corpus.add(
            f"an attacker's root 1 mapping a retired key id to its own key, page at {label}",
            page_root,
            forged,
            expected=[TAMPERED],
            verdicts=["tampered"],
        )
    # Times written in another UTC offset are shown in UTC, as the CLI shows them.
    late_offset = with_edition_info(
        late.zip_path, out / "late-offset.zip", targets_signer(thief), created_at(late.created, 2)
    )
    corpus.add(
        "created after its key's retirement, written at +02:00",
        new_root,
        late_offset,
        expected=[TAMPERED],
    )
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    ahead = third.build(when=future)
    ahead_offset = with_edition_info(
        ahead.zip_path, out / "ahead-offset.zip", targets_signer(third), created_at(future, -5)
    )
    corpus.add(
        "not yet valid, written at -05:00", third.root_json, ahead_offset, expected=[NOT_YET_VALID]
    )
    fifth = _publisher(factory)
    made = fifth.build()
    offset = -12 if made.created.hour < 12 else 14  # the date differs from the UTC date
    other_day = with_edition_info(
        made.zip_path,
        out / "other-day.zip",
        targets_signer(fifth),
        created_at(made.created, offset),
    )
    corpus.add(
        "genuine, written in an offset where it is another day",
        fifth.root_json,
        other_day,
        expected=[0],
    )

    # Threshold 2: retired keys vouch only as the set they were retired in, never mixed.
    two = make_threshold_two(_publisher(factory), factory.mktemp("threshold-two"))
    a, b = two.signers
    vouching = two.pin(out / "t2-root-4.json", retired_together)
    for label, signers, code in (("A and B", [a, b], 0), ("A alone", [a], TAMPERED)):
        corpus.add(
            f"threshold 2 of retired keys: targets signed by {label}",
            vouching,
            two.zip(out / f"t2-{len(corpus.cases)}.zip", signers=signers),
            expected=[code],
        )
    corpus.add(
        "threshold 2 of retired keys: the edition claims a root newer than the keys' last",
        two.pin(out / "t2-root-4-old.json", lambda root: retired_together(root, version=1)),
        two.zip(out / "t2-both.zip", signers=[a, b]),
        expected=[TAMPERED],
    )

    # A compromised key: what it signed from the stated time on is refused, not what came before.
    fourth = _publisher(factory)
    before_leak = fourth.build()
    leak_root = out / "leak-root-v1.json"
    leak_root.write_bytes(fourth.root_json.read_bytes())
    leaked = thief_of(fourth, factory.mktemp("leak"))
    leaked_at = BUILD_TIME + timedelta(minutes=20)
    at_leak = leaked.build(when=leaked_at)
    after_leak = leaked.build(when=BUILD_TIME + timedelta(minutes=40))
    after_rotation = leaked.build(when=BUILD_TIME + timedelta(minutes=55))
    rotate_role(
        fourth.config.keys.dir,
        fourth.config.passphrase(),
        "targets",
        now=BUILD_TIME + timedelta(minutes=50),
        compromised_since=leaked_at,
    )
    for label, path in (
        ("created after the leak", after_leak.zip_path),
        ("created at the very time of the leak", at_leak.zip_path),
        ("created after the rotation too", after_rotation.zip_path),
    ):
        corpus.add(
            f"compromised key: an edition {label}",
            fourth.root_json,
            path,
            expected=[TAMPERED],
            verdicts=["compromised-key"],
        )
    corpus.add(
        "compromised key: an edition created before the leak",
        fourth.root_json,
        before_leak.zip_path,
        expected=[0],
        verdicts=["superseded"],
    )
    corpus.add(
        "compromised key: the thief's edition, to a reader who never saw the rotation",
        leak_root,
        after_leak.zip_path,
        expected=[0],
    )
    after_leak_offset = with_edition_info(
        after_leak.zip_path,
        out / "after-leak-offset.zip",
        targets_signer(leaked),
        created_at(after_leak.created, 2),
    )
    corpus.add(
        "compromised key: an edition created after the leak, written at +02:00",
        fourth.root_json,
        after_leak_offset,
        expected=[TAMPERED],
        verdicts=["compromised-key"],
    )
    # A second rotation, routine: the compromised key's record still judges, from root 3.
    rotate_role(
        fourth.config.keys.dir,
        fourth.config.passphrase(),
        "targets",
        now=BUILD_TIME + timedelta(minutes=58),
    )
    for label, path, code, verdict in (
        ("after the leak", after_leak.zip_path, TAMPERED, "compromised-key"),
        ("before the leak", before_leak.zip_path, 0, "superseded"),
    ):
        corpus.add(
            f"compromised key, two rotations back: an edition created {label}",
            fourth.root_json,
            path,
            expected=[code],
            verdicts=[verdict],
        )


# --- the two readers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CliVerdict:
    """What `mirror verify` printed: exit code, sentence, and the lines that name the verdict."""

    code: int
    sentence: str
    hint: str
    """The hint line of a refusal (each verdict class has its own), else empty."""
    superseded: str
    """The "genuine, but superseded" line of a verified edition, else empty."""


def _line(text: str, prefix: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(prefix)), "")


def cli_verify(step: Step, root: Path, state: Path) -> CliVerdict:
    """`mirror verify` as a reader runs it: exit code and the sentence it printed."""
    argv = ["verify", str(step.path), "--root", str(root), "--state", str(state)]
    if step.allow_expired:
        argv.append("--allow-expired")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = out.getvalue() if code == 0 else err.getvalue()
    line = next(
        (line for line in text.splitlines() if line.startswith(("mirror: ", "verified: "))), ""
    )
    return CliVerdict(
        code=code,
        sentence=line.removeprefix("mirror: "),
        hint="" if code == 0 else _line(err.getvalue(), "hint: ").removeprefix("hint: "),
        superseded=_line(out.getvalue(), "  genuine, but superseded").strip(),
    )


class ReaderPage:
    """reader.html in a Chromium tab, driven as a person would: its file input and buttons."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def forget(self) -> None:
        """A browser that never saw this publisher (and English, whatever the last case chose)."""
        self.page.evaluate("localStorage.clear(), true")

    def hand(self, step: Step, *, drop: bool = False) -> dict[str, Any]:
        """Pick the file in the page's file input (or drag and drop it on the page)."""
        runs = self.page.evaluate("document.body.dataset.runs")
        self.page.evaluate(
            f"document.getElementById('allow-expired').checked = {json.dumps(step.allow_expired)}"
        )
        if drop:
            data = {"items": [], "files": [str(step.path)], "dragOperationsMask": 1}
            for kind in ("dragEnter", "dragOver", "drop"):
                self.page.send("Input.dispatchDragEvent", type=kind, x=150, y=250, data=data)
        else:
            self.page.set_files("#file", [step.path])
        self.page.wait_for(f"document.body.dataset.runs !== {json.dumps(runs)}")
        verdict: dict[str, Any] = self.page.evaluate(
            "(() => { const v = document.getElementById('verdict');"
            " return {verdict: v.dataset.verdict, code: v.dataset.exitCode, ms: v.dataset.ms,"
            " title: document.getElementById('verdict-title').textContent,"
            " sentence: document.getElementById('verdict-sentence').textContent,"
            " hint: document.getElementById('verdict-hint').textContent,"
            " note: document.getElementById('verdict-note').hidden ? ''"
            " : document.getElementById('verdict-note').textContent,"
            " readable: !document.getElementById('open').hidden,"
            " memory: document.getElementById('verdict-memory').textContent}; })()"
        )
        return verdict


@pytest.fixture(scope="module")
def proxy() -> Iterator[RecordingProxy]:
    recorder = RecordingProxy()
    try:
        yield recorder
    finally:
        recorder.close()


@pytest.fixture(scope="module")
def browser(proxy: RecordingProxy) -> Iterator[Chromium]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is installed by .ci/run")
    with Chromium(proxy_port=proxy.port) as chromium:
        yield chromium


def page_for(root: Path, folder: Path) -> Path:
    """The reader.html a publisher with ``root`` exports, via the real command."""
    out = folder / f"reader-{hashlib.sha256(root.read_bytes()).hexdigest()[:12]}.html"
    if not out.exists():
        code = main(["keys", "export-reader", "--root", str(root), "--out", str(out)])
        assert code == 0
    return out


# --- parity -------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_chromium
def test_the_page_gives_the_cli_verdict_for_every_file_of_the_attack_corpus(
    corpus: Corpus,
    browser: Chromium,
    proxy: RecordingProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    tab: Page | None = None
    loaded: Path | None = None
    mismatches: list[str] = []
    same_sentence = 0
    steps = 0
    for index, case in enumerate(corpus.cases):
        page_path = page_for(case.root, tmp_path)
        if tab is None:
            tab = browser.open(page_path.as_uri())
        elif page_path != loaded:
            tab.navigate(page_path.as_uri())
        loaded = page_path
        reader = ReaderPage(tab)
        reader.forget()
        state = tmp_path / f"state-{index}"
        for number, step in enumerate(case.steps):
            cli = cli_verify(step, case.root, state)
            if case.expected is not None:
                assert cli.code == case.expected[number], (case.label, cli.sentence)
            shown = reader.hand(step)
            steps += 1
            where = f"{case.label} (file {number + 1})"
            if shown["code"] != str(cli.code):
                mismatches.append(f"{where}: CLI {cli.code} {cli.sentence!r}, page {shown}")
            # The verdict within an exit code: every refusal's hint is its class's own, and a
            # superseded edition says so in both.
            if cli.code != 0 and shown["hint"] != cli.hint:
                mismatches.append(f"{where}: CLI hint {cli.hint!r}, page {shown}")
            if bool(cli.superseded) != bool(shown["note"]):
                mismatches.append(f"{where}: CLI {cli.superseded!r}, page {shown}")
            if shown["readable"] != (cli.code == 0):  # superseded editions can be read too
                mismatches.append(f"{where}: CLI {cli.code}, page {shown}")
            if case.verdicts is not None and shown["verdict"] != case.verdicts[number]:
                mismatches.append(f"{where}: expected {case.verdicts[number]}, page {shown}")
            same = shown["sentence"] == cli.sentence and shown["note"] == cli.superseded
            same_sentence += same
            if not same and os.environ.get("MIRROR_SHOW_SENTENCES"):
                print(
                    f"DIFF {where}\n  CLI:  {cli.sentence} {cli.superseded}\n"
                    f"  page: {shown['sentence']} {shown['note']}",
                    file=sys.__stderr__,
                )
    capsys.readouterr()
    assert mismatches == []
    assert steps >= 160
    assert proxy.page_hosts() == set(), proxy.seen
    # The detail sentence too is the CLI's own, word for word, for every file.
    assert same_sentence == steps, (
        f"{steps - same_sentence} of {steps} page sentences differ from `mirror verify`'s "
        "(MIRROR_SHOW_SENTENCES=1 pytest -s lists them)"
    )
    seconds = time.monotonic() - started
    print(f"parity: {steps} files, {same_sentence} identical sentences, {seconds:.1f} s")


# --- reading -------------------------------------------------------------------------------------


def frame_ready(page: Page, member: str) -> None:
    page.wait_for(f"document.getElementById('frame').dataset.loaded === {json.dumps(member)}")


def frame(page: Page, expression: str) -> Any:
    """``expression`` evaluated with ``d`` bound to the reading frame's document."""
    document = "document.getElementById('frame').contentDocument"
    return page.evaluate(f"(() => {{ const d = {document}; return {expression}; }})()")


def click_link(page: Page, text: str) -> None:
    """Click the link reading ``text`` in the reading frame, as a person would."""
    page.evaluate(
        "(() => { const d = document.getElementById('frame').contentDocument;"
        f" [...d.querySelectorAll('a')].find(a => a.textContent === {json.dumps(text)})"
        ".click(); })()"
    )


@pytest.mark.slow
@needs_chromium
def test_a_verified_edition_opens_in_the_page_and_its_articles_render_offline(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    publisher, result = built
    page_path = page_for(publisher.root_json, tmp_path)
    proxy = RecordingProxy()
    with contextlib.closing(proxy), Chromium(proxy_port=proxy.port) as chromium:
        tab = chromium.open(page_path.as_uri())
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=3,
            mobile=True,
        )
        reader = ReaderPage(tab)
        assert tab.evaluate("document.getElementById('open').hidden")  # nothing to read yet
        shown = reader.hand(Step(result.zip_path), drop=True)
        assert shown["code"] == "0", shown
        assert (
            shown["sentence"]
            == cli_verify(Step(result.zip_path), publisher.root_json, tmp_path / "s").sentence
        )
        assert "had not checked an edition of this publisher before" in shown["memory"]
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390

        tab.evaluate("document.getElementById('open').click(), true")
        frame_ready(tab, "index.html")
        index_text = frame(tab, "d.body.innerText")
        for title in TITLES:
            assert title in index_text
        assert frame(tab, "d.querySelectorAll('script').length") == 0
        assert frame(tab, "d.documentElement.scrollWidth") <= 390
        assert frame(tab, "getComputedStyle(d.body).maxWidth") != "none"  # the edition's own CSS

        # An article, by clicking its link in the index (Cyrillic, with its language).
        click_link(tab, "Статья номер 1")
        frame_ready(tab, "articles/article-001.html")
        assert frame(tab, "d.querySelector('h1').textContent") == "Статья номер 1"
        assert RUSSIAN_BODY in frame(tab, "d.body.innerText")

        # Back in the page's history, then the article with the image, from the index.
        tab.evaluate("document.getElementById('back').click(), true")
        frame_ready(tab, "index.html")
        click_link(tab, "Article number 0")
        frame_ready(tab, "articles/article-000.html")
        tab.wait_for(
            "document.getElementById('frame').contentDocument.querySelector('img').complete"
        )
        image = frame(tab, "(i => [i.src.slice(0, 22), i.naturalWidth])(d.querySelector('img'))")
        assert image == ["data:image/png;base64,", 4]
        # The article's link back to the index works too.
        frame(tab, "d.querySelector('footer a').click()")
        frame_ready(tab, "index.html")
        # The frame: sandboxed without scripts, under a policy that allows no network.
        frame_policy = frame(
            tab, "d.querySelector('meta[http-equiv=Content-Security-Policy]').content"
        )
        assert frame_policy == (
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
            "form-action 'none'"
        )
        assert (
            tab.evaluate("document.getElementById('frame').getAttribute('sandbox')")
            == "allow-same-origin"
        )

        # Back to the verdict, in Russian.
        tab.evaluate("document.getElementById('to-verdict').click(), true")
        assert tab.evaluate("document.getElementById('reader').hidden")
        tab.evaluate("document.querySelector('[data-lang=ru]').click(), true")
        title = tab.evaluate("document.getElementById('verdict-title').textContent")
        assert title == page_verdicts.PAGE_TEXTS["verified"]["title"]["ru"]
        sentence = tab.evaluate("document.getElementById('verdict-sentence').textContent")
        assert sentence.startswith(f"проверено: Test Newsroom, выпуск {result.eid}")

        # Nothing in the page may reach the network: its own policy refuses, before any request.
        refused = tab.evaluate(
            "(async () => { const img = new Image(); img.src = 'http://leak.invalid/pixel.png';"
            " try { await fetch('http://leak.invalid/data'); return 'fetched'; }"
            " catch (e) { return 'refused'; } })()"
        )
        assert refused == "refused"
        time.sleep(0.3)
        assert proxy.page_hosts() == set(), proxy.seen
        # Control: the same browser and proxy do see a page without that policy reach out.
        leaky = tmp_path / "leaky.html"
        leaky.write_text(
            '<!doctype html><img src="http://leak.invalid/pixel.png">', encoding="utf-8"
        )
        chromium.open(leaky.as_uri())
        deadline = time.monotonic() + 10
        while "leak.invalid" not in proxy.page_hosts() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.page_hosts() == {"leak.invalid"}, proxy.seen


@pytest.mark.slow
@needs_chromium
def test_the_page_hashes_and_checksums_like_python(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    publisher, _ = built
    samples = [b"", b"abc", b"\x00" * 55, b"\x01" * 56, b"\xfe" * 64, bytes(range(256)) * 1000]
    with Chromium() as chromium:
        tab = chromium.open(page_for(publisher.root_json, tmp_path).as_uri())
        for data in samples:
            literal = json.dumps(list(data))
            got = tab.evaluate(
                f"(async () => {{ const b = new Uint8Array({literal}); const R = MirrorReader;"
                " const h = new R.Sha256(); h.update(b.subarray(0, 7)); h.update(b.subarray(7));"
                " return [h.hex(), await R.sha256Hex(b), R.crc32(b)]; })()"
            )
            expected = hashlib.sha256(data).hexdigest()
            assert got == [expected, expected, zlib.crc32(data)]


# --- assembly -----------------------------------------------------------------------------------


def test_the_page_is_deterministic_and_embeds_its_root(
    built: tuple[Publisher, BuildResult], new_publisher: Callable[..., Publisher], tmp_path: Path
) -> None:
    publisher, _ = built
    root = publisher.root_json.read_bytes()
    first, second = build_reader_page(root), build_reader_page(root)
    assert first.html == second.html
    assert first.sha256 == hashlib.sha256(first.html).hexdigest()
    assert build_reader_page(new_publisher().root_json.read_bytes()).html != first.html
    out = export_reader_page(publisher.root_json, tmp_path / "reader.html")
    assert (tmp_path / "reader.html").read_bytes() == first.html == out.html
    text = first.html.decode("utf-8")
    assert "Test Newsroom" in text
    for forbidden in ("<script src", "<link", "http://", "https://", "@import", "url("):
        assert forbidden not in text.replace("https://edition.invalid/", "")


def test_a_publisher_name_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    """The name is signed inside root.json, but the page must stay one script, one data block."""
    name = "</script><script>alert(1)</script><!-- & \u2028"
    init_keys(
        tmp_path / "keys", Secret("test", b"x"), publisher_name=name, now=BUILD_TIME, kdf_rounds=1
    )
    page = build_reader_page((tmp_path / "keys" / "root.json").read_bytes()).html.decode("utf-8")
    assert page.count("</script>") == 2
    assert page.count("<script") == 2
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page  # the title and heading, escaped


def test_export_reader_prints_the_fingerprint(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher, _ = built
    out = tmp_path / "reader.html"
    config = str(publisher.home / "mirror.yaml")
    assert main(["--config", config, "keys", "export-reader", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"SHA-256: {hashlib.sha256(out.read_bytes()).hexdigest()}" in printed
    assert "Test Newsroom (root version 1)" in printed
    not_a_root = tmp_path / "x.json"
    not_a_root.write_text("{}", encoding="utf-8")
    assert main(["keys", "export-reader", "--root", str(not_a_root), "--out", str(out)]) == 2
    assert "not a usable root.json" in capsys.readouterr().err


def test_every_verdict_of_a_file_check_has_page_texts_in_both_languages() -> None:
    table = {row["verdict"]: row for row in page_verdicts.verdict_table()}
    for cls in page_verdicts.page_error_classes():
        row = table[cls.verdict]
        assert row["exit_code"] == cls.exit_code
        for part in ("title", "hint"):
            assert row[part]["en"], (cls.verdict, part)
            assert row[part]["ru"], (cls.verdict, part)
    assert table["tampered"]["hint"]["en"] == errors.TamperedError.default_hint
    assert table["unsafe-archive"]["exit_code"] == errors.UnsafeArchiveError.exit_code == 14
    assert {table[v]["exit_code"] for v in ("verified", "expired-allowed")} == {0}
    assert set(table) == set(page_verdicts.PAGE_TEXTS)


def test_the_page_raises_only_verdicts_of_the_table() -> None:
    """Every verdict a script can throw is a row of the table (a new one cannot go unseen)."""

    known = {row["verdict"] for row in page_verdicts.verdict_table()}
    source = "".join(
        (Path(page_verdicts.__file__).parent.parent / "reader_page" / name).read_text("utf-8")
        for name in SCRIPTS
    )
    thrown = set(re.findall(r'new R\.Verdict\(\s*"([a-z-]+)"', source))
    thrown |= {"tampered", "unsafe-archive"}  # R.tampered, R.unsafe
    assert thrown <= known, thrown - known
    assert "</script" not in source.lower()


def test_the_casefold_table_is_every_code_point_that_folds() -> None:
    """The page folds names as Python does; the table is built by blocks, so check it whole."""
    every = {
        str(code): chr(code).casefold()
        for code in range(sys.maxunicode + 1)
        if chr(code).casefold() != chr(code)
    }
    assert export_page._casefold_table() == every
