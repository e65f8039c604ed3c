"""Key rotation does not outlaw the past; a key marked compromised does.

Through the real CLI: `mirror keys rotate targets` (routine) leaves every
edition signed before it genuine — "superseded" — for readers on any root;
`mirror keys rotate targets --compromised --since T` makes whatever the old
key signed after T refused, saying so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, Key, Signature, SSlibKey
from tuf.api.metadata import Metadata, Root, Targets

from mirror.cli import main
from mirror.config import load_config
from mirror.keystore import load_keyring, load_root_signers
from mirror.trust.metadata import serializer
from mirror.trust.retired import RETIRED_FIELD, retirement_entry
from tests.conftest import BUILD_TIME, Publisher
from tests.test_attacks import members, write_zip


def verify(
    capsys: pytest.CaptureFixture[str], zip_path: Path, root: Path, state: Path
) -> tuple[int, dict[str, Any] | None, str]:
    capsys.readouterr()
    code = main(["verify", str(zip_path), "--root", str(root), "--state", str(state), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def rotate(publisher: Publisher, *extra: str) -> None:
    assert main(["--config", str(publisher.config.file), "keys", "rotate", "targets", *extra]) == 0


@pytest.fixture
def before_and_after(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> tuple[Publisher, Path, Path]:
    """A publisher with root 1 pinned by old readers and an edition signed under it."""
    publisher = new_publisher()
    root_1 = tmp_path / "root-1.json"
    shutil.copy(publisher.root_json, root_1)
    old = publisher.build()
    return publisher, root_1, old.zip_path


def test_a_routine_rotation_leaves_old_editions_genuine_and_superseded(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, root_1, old_zip = before_and_after
    rotate(publisher)
    new = publisher.build(when=BUILD_TIME + timedelta(minutes=5))
    root_2 = publisher.root_json  # what a new reader pins now

    # A new reader who pinned root 2 is handed the old edition on a USB stick.
    code, document, err = verify(capsys, old_zip, root_2, tmp_path / "new-reader")
    assert code == 0, err
    assert document is not None
    assert document["verdict"] == "superseded"
    assert document["superseded"]["signed_under_root_version"] == 1
    assert document["superseded"]["newest_root_version"] == 2

    capsys.readouterr()
    code = main(["verify", str(old_zip), "--root", str(root_2), "--state", str(tmp_path / "t")])
    assert code == 0
    assert "genuine, but superseded: signed under root version 1" in capsys.readouterr().out

    # An old reader (root 1) who never saw root 2 verifies it as it always did.
    code, document, _ = verify(capsys, old_zip, root_1, tmp_path / "old-reader")
    assert (code, document and document["verdict"]) == (0, "verified")

    # The new edition is simply verified.
    code, document, _ = verify(capsys, new.zip_path, root_2, tmp_path / "third")
    assert (code, document and document["verdict"]) == (0, "verified")


def test_a_compromised_key_makes_what_it_signed_after_the_stated_time_refused(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _, before_leak = before_and_after
    # A thief with a copy of the key store signs an edition after the key leaked.
    after_leak = thief_of(publisher, tmp_path).build(when=BUILD_TIME + timedelta(minutes=40))
    leaked_at = (BUILD_TIME + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rotate(publisher, "--compromised", "--since", leaked_at)
    root_2 = publisher.root_json

    code, document, err = verify(capsys, after_leak.zip_path, root_2, tmp_path / "r1")
    assert code == 10, err
    assert "compromised since" in err
    assert "Someone else may hold that key" in err
    code, document, err = verify(capsys, before_leak, root_2, tmp_path / "r2")
    assert code == 0, err  # signed while the key was still the publisher's own
    assert document is not None
    assert document["verdict"] == "superseded"


def test_rotate_options_are_checked(
    new_publisher: Callable[..., Publisher], capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    base = ["--config", str(publisher.config.file), "keys", "rotate"]
    for argv, words in (
        ([*base, "targets", "--since", "2026-01-01T00:00Z"], "--since goes with --compromised"),
        ([*base, "targets", "--compromised", "--since", "soon"], "is not a time"),
        ([*base, "targets", "--compromised", "--since", "2999-01-01T00:00Z"], "in the future"),
        ([*base, "minisign", "--compromised"], "cannot be marked compromised"),
    ):
        capsys.readouterr()
        assert main(argv) in (2, 5), argv
        assert words in capsys.readouterr().err, argv


def thief_of(publisher: Publisher, tmp_path: Path) -> Publisher:
    """Someone holding a copy of the publisher's key store and tree, as they are now."""
    thief = tmp_path / "thief"
    shutil.copytree(publisher.home, thief)
    config = thief / "mirror.yaml"
    config.write_text(config.read_text().replace(str(publisher.home), str(thief)))
    return Publisher(thief, load_config(config))


def test_a_routinely_retired_key_cannot_vouch_for_an_edition_made_after_it_was_retired(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _, _ = before_and_after
    thief = thief_of(publisher, tmp_path)  # holds the old key, and keeps it after the rotation
    rotate(publisher)
    late = thief.build(when=datetime.now(UTC) + timedelta(minutes=1))
    code, _, err = verify(capsys, late.zip_path, publisher.root_json, tmp_path / "reader")
    assert code == 10, err
    assert "after the key that signed it was retired" in err


# --- helpers: crafted roots and editions, signed with the test publisher's real keys ---------


def sign_as(md: Metadata[Any], signer: CryptoSigner, keyids: list[str]) -> None:
    """Replace ``md``'s signatures with ``signer``'s, filed under each of ``keyids``."""
    md.signatures.clear()
    for keyid in keyids:
        md.signatures[keyid] = Signature(keyid, signer.sign(md.signed_bytes).signature)


def signed_root(root: Root, signers: list[CryptoSigner], out: Path) -> Path:
    """``root`` signed by ``signers``, written to ``out``."""
    md = Metadata(root)
    for signer in signers:
        md.sign(signer, append=True)
    out.write_bytes(md.to_bytes(serializer()))
    return out


def resigned_root(
    publisher: Publisher, base: Path, out: Path, edit: Callable[[dict[str, Any]], None]
) -> Path:
    """Root ``base`` with its signed part edited, signed again by the publisher's root keys."""
    signed = json.loads(base.read_bytes())["signed"]
    edit(signed)
    signers = load_root_signers(publisher.config.keys.dir, publisher.config.passphrase())
    return signed_root(Root.from_dict(signed), signers, out)


def with_edition_info(
    zip_path: Path, out: Path, signer: CryptoSigner, edit: Callable[[dict[str, Any]], None]
) -> Path:
    """The edition with ``edition.json`` edited and its member list signed again by ``signer``."""
    content = members(zip_path)
    info = json.loads(content["edition.json"])
    edit(info)
    data = json.dumps(info, indent=2).encode()
    content["edition.json"] = data
    role = next(n for n in content if n.startswith(".mirror/edition-"))
    eid = role.removeprefix(".mirror/edition-").removesuffix(".json")
    md = Metadata[Targets].from_bytes(content[role])
    target = md.signed.targets[f"manifests/{eid}/edition.json"]
    target.length = len(data)
    target.hashes = {"sha256": hashlib.sha256(data).hexdigest()}
    md.signatures.clear()
    md.sign(signer)
    content[role] = md.to_bytes(serializer())
    return write_zip(out, content)


def created_at(moment: datetime, offset_hours: int) -> Callable[[dict[str, Any]], None]:
    """An edit of edition.json: created at ``moment``, written in another UTC offset."""
    zone = timezone(timedelta(hours=offset_hours))
    return lambda info: info.__setitem__("created", moment.astimezone(zone).isoformat())


def targets_signer(publisher: Publisher) -> CryptoSigner:
    """The targets key the publisher's key store signs with now."""
    return load_keyring(publisher.config.keys.dir, publisher.config.passphrase()).signer("targets")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- key rotation many versions back: the newest root's record vouches by itself ------------


@pytest.fixture
def three_roots(
    new_publisher: Callable[..., Publisher], tmp_path: Path
) -> tuple[Publisher, Path, Path, Path]:
    """Targets rotated twice (roots 1, 2, 3): an edition signed under root 1 and one under 2."""
    publisher = new_publisher()
    first = publisher.build()
    rotate(publisher)
    second = publisher.build(when=BUILD_TIME + timedelta(minutes=5))
    rotate(publisher)
    root_3 = tmp_path / "root-3.json"
    shutil.copy(publisher.root_json, root_3)
    return publisher, first.zip_path, second.zip_path, root_3


def test_an_edition_two_rotations_old_is_superseded_for_a_reader_who_pinned_the_newest_root(
    three_roots: tuple[Publisher, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Root 3 alone vouches for root 1's targets key: the reader never saw root 2."""
    publisher, under_1, under_2, root_3 = three_roots
    record = json.loads(root_3.read_bytes())["signed"][RETIRED_FIELD]
    retired = sorted(record.values(), key=lambda entry: entry["last_root_version"])
    assert [entry["last_root_version"] for entry in retired] == [1, 2]
    for zip_path, version, entry in ((under_1, 1, retired[0]), (under_2, 2, retired[1])):
        code, document, err = verify(capsys, zip_path, root_3, tmp_path / f"r{version}")
        assert code == 0, err
        assert document is not None
        assert document["verdict"] == "superseded"
        assert document["superseded"] == {
            "signed_under_root_version": version,
            "key_retired": entry["retired"].replace("Z", "+00:00"),
            "newest_root_version": 3,
        }
        assert document["root_version"] == 3
        assert not (
            tmp_path / f"r{version}" / "publishers" / publisher.publisher_id / "roots"
        ).exists()
    capsys.readouterr()
    assert (
        main(["verify", str(under_1), "--root", str(root_3), "--state", str(tmp_path / "t")]) == 0
    )
    out = capsys.readouterr().out
    assert "genuine, but superseded: signed under root version 1" in out
    assert "(your root is version 3)" in out


def test_a_key_compromised_two_rotations_ago_is_still_refused_after_its_leak(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = new_publisher()
    before_leak = publisher.build()
    thief = thief_of(publisher, tmp_path)
    after_leak = thief.build(when=BUILD_TIME + timedelta(minutes=40))
    at_leak = thief.build(when=BUILD_TIME + timedelta(minutes=20))
    rotate(
        publisher,
        "--compromised",
        "--since",
        (BUILD_TIME + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    rotate(publisher)  # a routine rotation of the new key: root 3
    root_3 = publisher.root_json
    for zip_path in (after_leak.zip_path, at_leak.zip_path):
        code, _, err = verify(capsys, zip_path, root_3, tmp_path / zip_path.stem)
        assert code == 10, err
        assert "compromised since" in err
        assert "Someone else may hold that key" in err
    code, document, err = verify(capsys, before_leak.zip_path, root_3, tmp_path / "before")
    assert code == 0, err
    assert document is not None
    assert document["verdict"] == "superseded"
    assert document["superseded"]["signed_under_root_version"] == 1


def forged_root_1_edition(zip_path: Path, out: Path) -> Path:
    """An attacker's edition carrying its own root 1: the real root's targets key id, mapped
    to the attacker's key (python-tuf never checks that a key id is the hash of its key), and
    every signed role signed by the attacker under the real key ids; an article changed."""
    content = members(zip_path)
    attacker = CryptoSigner(Ed25519PrivateKey.generate())
    own_root_keys = [CryptoSigner(Ed25519PrivateKey.generate()) for _ in range(2)]

    def as_attacker(key: Key) -> SSlibKey:
        public = attacker.public_key
        return SSlibKey(key.keyid, public.keytype, public.scheme, dict(public.keyval))

    root = Metadata[Root].from_bytes(content[".mirror/root/1.root.json"]).signed
    for keyid in root.roles["targets"].keyids:
        root.keys[keyid] = as_attacker(root.keys[keyid])
    for keyid in list(root.roles["root"].keyids):
        root.revoke_key(keyid, "root")
    for signer in own_root_keys:
        root.add_key(signer.public_key, "root")
    root_md = Metadata(root)
    for signer in own_root_keys:
        root_md.sign(signer, append=True)
    content[".mirror/root/1.root.json"] = root_md.to_bytes(serializer())

    content["index.html"] = b"<p>The attacker's news.</p>"
    role = next(n for n in content if n.startswith(".mirror/edition-"))
    eid = role.removeprefix(".mirror/edition-").removesuffix(".json")
    signed_by = {".mirror/targets.json": list(root.roles["targets"].keyids)}
    for name in (".mirror/targets.json", ".mirror/manifests.json"):
        delegations = Metadata[Targets].from_bytes(content[name]).signed.delegations
        assert delegations is not None
        assert delegations.roles is not None
        for delegated in delegations.roles.values():
            target = {"manifests": ".mirror/manifests.json"}.get(delegated.name, role)
            signed_by[target] = list(delegated.keyids)
    for name in (role, ".mirror/manifests.json", ".mirror/targets.json"):
        md = Metadata[Targets].from_bytes(content[name])
        if name == role:
            entry = md.signed.targets[f"manifests/{eid}/index.html"]
            entry.length = len(content["index.html"])
            entry.hashes = {"sha256": hashlib.sha256(content["index.html"]).hexdigest()}
        delegations = md.signed.delegations
        if delegations is not None:
            for keyid, key in list(delegations.keys.items()):
                delegations.keys[keyid] = as_attacker(key)
        sign_as(md, attacker, signed_by[name])
        content[name] = md.to_bytes(serializer())
    return write_zip(out, content)


def test_an_attacker_made_root_1_cannot_make_a_retired_key_id_vouch_for_its_own_key(
    three_roots: tuple[Publisher, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, under_1, _, root_3 = three_roots
    forged = forged_root_1_edition(under_1, tmp_path / "forged.zip")
    # A reader on root 3 (root 1's targets key id is in its record) and one on root 2.
    root_2 = tmp_path / "root-2.json"
    shutil.copy(publisher.config.keys.dir / "roots" / "2.root.json", root_2)
    for root in (root_3, root_2):
        code, _, err = verify(capsys, forged, root, tmp_path / root.stem)
        assert code == 10, err
        assert "verdict" not in err
        assert "signed by 0 of the 1 required publisher keys" in err
    # The control: the genuine edition the forgery started from is superseded for both.
    for root in (root_3, root_2):
        code, document, err = verify(capsys, under_1, root, tmp_path / f"genuine-{root.stem}")
        assert (code, document and document["verdict"]) == (0, "superseded"), err


def test_a_record_older_than_the_key_fields_still_works_through_the_root_chain(
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Roots written before the record carried keys: root 1 in the archive, root 2 pinned."""
    publisher, _, old_zip = before_and_after
    rotate(publisher)

    def without_keys(signed: dict[str, Any]) -> None:
        for entry in signed[RETIRED_FIELD].values():
            for name in ("key", "threshold", "last_root_version"):
                del entry[name]

    root_2 = resigned_root(
        publisher, publisher.root_json, tmp_path / "old-root-2.json", without_keys
    )
    code, document, err = verify(capsys, old_zip, root_2, tmp_path / "reader")
    assert code == 0, err
    assert document is not None
    assert document["verdict"] == "superseded"


# --- threshold 2: one set of retired keys, never two sets added up -------------------------


@dataclass
class ThresholdTwo:
    """Root 1, a crafted root 2 listing targets keys A and B with threshold 2, and a pin."""

    publisher: Publisher
    signers: list[CryptoSigner]
    root_2: Metadata[Root]
    edition: dict[str, bytes]
    """An edition signed under root 2: targets by A and B, root 2 embedded."""

    def pin(self, out: Path, record: Callable[[Root], dict[str, Any]]) -> Path:
        """Root 4, two versions past root 2: root 3 retired A and B, recorded as ``record``
        says, and root 4 renewed it. The reader pins root 4 and never sees root 3, so no
        root chain can prove the edition's root 2: only the record can vouch."""
        root = Root.from_dict(copy.deepcopy(self.root_2.signed.to_dict()))  # no shared lists
        root.unrecognized_fields[RETIRED_FIELD] = record(self.root_2.signed)
        for keyid in list(root.roles["targets"].keyids):
            root.revoke_key(keyid, "targets")
        root.add_key(CryptoSigner(Ed25519PrivateKey.generate()).public_key, "targets")
        root.roles["targets"].threshold = 1
        root.version = 4
        return signed_root(root, self.root_keys(), out)

    def root_keys(self) -> list[CryptoSigner]:
        config = self.publisher.config
        return load_root_signers(config.keys.dir, config.passphrase())

    def zip(self, out: Path, *, signers: list[CryptoSigner]) -> Path:
        content = dict(self.edition)
        md = Metadata[Targets].from_bytes(content[".mirror/targets.json"])
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        content[".mirror/targets.json"] = md.to_bytes(serializer())
        return write_zip(out, content)


def retired_together(root: Root, *, version: int | None = None) -> dict[str, Any]:
    """The record a rotation writes for every targets key of ``root``."""
    role = root.roles["targets"]
    return {
        keyid: retirement_entry(
            "targets",
            retired=BUILD_TIME + timedelta(minutes=30),
            compromised_since=None,
            key=root.keys[keyid],
            threshold=role.threshold,
            last_root_version=root.version if version is None else version,
        )
        for keyid in role.keyids
    }


@pytest.fixture
def threshold_two(new_publisher: Callable[..., Publisher], tmp_path: Path) -> ThresholdTwo:
    return make_threshold_two(new_publisher(), tmp_path)


def make_threshold_two(publisher: Publisher, tmp_path: Path) -> ThresholdTwo:
    """`ThresholdTwo` for a fresh ``publisher`` (root 1 only)."""
    built = publisher.build()
    a = targets_signer(publisher)
    b = CryptoSigner(Ed25519PrivateKey.generate())
    root = Metadata[Root].from_bytes(publisher.root_json.read_bytes()).signed
    root.version = 2
    root.add_key(b.public_key, "targets")
    root.roles["targets"].threshold = 2
    config = publisher.config
    root_keys = load_root_signers(config.keys.dir, config.passphrase())
    root_2 = Metadata.from_bytes(
        signed_root(root, root_keys, tmp_path / "root-2.json").read_bytes()
    )
    content = {**members(built.zip_path), ".mirror/root/2.root.json": root_2.to_bytes(serializer())}
    return ThresholdTwo(publisher, [a, b], root_2, content)


def test_threshold_two_retired_keys_vouch_only_together(
    threshold_two: ThresholdTwo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = threshold_two
    a, b = case.signers
    pinned = case.pin(tmp_path / "root-3.json", retired_together)
    both = case.zip(tmp_path / "both.zip", signers=[a, b])
    code, document, err = verify(capsys, both, pinned, tmp_path / "r1")
    assert code == 0, err
    assert document is not None
    assert document["verdict"] == "superseded"
    assert document["superseded"]["signed_under_root_version"] == 2
    for label, signers in (("A alone", [a]), ("B alone", [b]), ("A twice", [a, a])):
        hostile = case.zip(tmp_path / f"{label}.zip", signers=signers)
        code, _, err = verify(capsys, hostile, pinned, tmp_path / label)
        assert code == 10, (label, err)


def test_keys_of_two_rotations_never_add_up_to_one_threshold(
    threshold_two: ThresholdTwo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = threshold_two
    a, b = case.signers
    both = case.zip(tmp_path / "both.zip", signers=[a, b])

    def split(root: Root) -> dict[str, Any]:
        record = retired_together(root)
        first = next(keyid for keyid in record if keyid != b.public_key.keyid)  # A's
        record[first] = {**record[first], "last_root_version": 1}  # as if retired earlier
        return record

    def too_old(root: Root) -> dict[str, Any]:
        return retired_together(root, version=1)  # the edition carries root 2, which listed none

    for label, record in (("split", split), ("listed only up to root 1", too_old)):
        pinned = case.pin(tmp_path / f"{label}.json", record)
        code, _, err = verify(capsys, both, pinned, tmp_path / label)
        assert code == 10, (label, err)


# --- every malformed field of the record has its own sentence --------------------------------


def malformed_records() -> dict[str, tuple[Callable[[dict[str, Any]], None], str]]:
    """Edits of every retirement record in a root's signed part, and the sentence each gives."""

    def each(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def apply(signed: dict[str, Any]) -> None:
            for entry in signed[RETIRED_FIELD].values():
                change(entry)

        return apply

    def setting(name: str, value: object) -> Callable[[dict[str, Any]], None]:
        return each(lambda entry: entry.__setitem__(name, value))

    def dropping(name: str) -> Callable[[dict[str, Any]], None]:
        return each(lambda entry: entry.pop(name))

    return {
        "the record not an object": (
            lambda signed: signed.__setitem__(RETIRED_FIELD, []),
            "has a malformed x-mirror-retired-keys",
        ),
        "an entry not an object": (
            lambda signed: signed.__setitem__(
                RETIRED_FIELD, dict.fromkeys(signed[RETIRED_FIELD], "x")
            ),
            "as text, not an object",
        ),
        "no role": (dropping("role"), "without its role"),
        "a role that is a number": (setting("role", 5), "with role as a number, not text"),
        "no retirement time": (dropping("retired"), "without its retired"),
        "a retirement time that is a list": (
            setting("retired", []),
            "with retired as a list, not a time",
        ),
        "a retirement time that is no time": (
            setting("retired", "2026"),
            "with retired '2026', which is not a time",
        ),
        "compromised since a number": (
            setting("compromised_since", 5),
            "with compromised_since as a number, not a time",
        ),
        "compromised since true": (
            setting("compromised_since", True),
            "with compromised_since as true or false, not a time",
        ),
        "compromised since no time": (
            setting("compromised_since", "yesterday"),
            "with compromised_since 'yesterday', which is not a time",
        ),
        "no key, but a threshold": (dropping("key"), "without its key"),
        "a key that is text": (setting("key", "ed25519"), "with key as text, not an object"),
        "a key of an unknown type": (
            each(lambda entry: entry["key"].__setitem__("keytype", "rot13")),
            "with a key that is not a usable public key",
        ),
        "a key without its public half": (
            each(lambda entry: entry["key"].__setitem__("keyval", {})),
            "with a key that is not a usable public key",
        ),
        "no threshold": (dropping("threshold"), "without its threshold"),
        "a threshold of true": (
            setting("threshold", True),
            "with threshold as true or false, not a whole number",
        ),
        "a threshold of 0": (setting("threshold", 0), "with threshold 0, below 1"),
        "no last root version": (dropping("last_root_version"), "without its last_root_version"),
        "a last root version that is null": (
            setting("last_root_version", None),
            "with last_root_version as null, not a whole number",
        ),
    }


MALFORMED_RECORDS = malformed_records()


@pytest.mark.parametrize("flaw", sorted(MALFORMED_RECORDS))
def test_each_malformed_field_of_the_retired_record_is_named(
    flaw: str,
    before_and_after: tuple[Publisher, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _, old_zip = before_and_after
    rotate(publisher)
    edit, words = MALFORMED_RECORDS[flaw]
    (keyid,) = json.loads(publisher.root_json.read_bytes())["signed"][RETIRED_FIELD]
    root_2 = resigned_root(publisher, publisher.root_json, tmp_path / "root-2.json", edit)
    code, _, err = verify(capsys, old_zip, root_2, tmp_path / "reader")
    assert code == 10, err
    lines = err.strip().splitlines()
    assert len(lines) == 2
    if flaw == "the record not an object":
        assert lines[0] == f"mirror: root version 2 {words}"
    else:
        assert lines[0] == f"mirror: root version 2 records retired key {keyid} {words}"


# --- times are shown in UTC, whatever offset an edition was written in -----------------------


def test_times_labelled_utc_are_utc_for_an_edition_written_in_another_offset(
    before_and_after: tuple[Publisher, Path, Path],
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher, _, before = before_and_after
    thief = thief_of(publisher, tmp_path)
    old_key = targets_signer(thief)
    leaked_at = BUILD_TIME + timedelta(minutes=20)
    made = BUILD_TIME + timedelta(minutes=40)
    after_leak = with_edition_info(
        thief.build(when=made).zip_path, tmp_path / "plus2.zip", old_key, created_at(made, 2)
    )
    # Written 00:30+02:00 before a leak at 23:00Z the day before... as instants: before the leak.
    early = with_edition_info(before, tmp_path / "early.zip", old_key, created_at(BUILD_TIME, 5))
    rotate(publisher, "--compromised", "--since", leaked_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    root_2 = publisher.root_json
    code, _, err = verify(capsys, after_leak, root_2, tmp_path / "r1")
    assert code == 10, err
    assert (
        f"created on {utc(made)}, and the key that signed it is compromised since {utc(leaked_at)}"
        in err
    )
    wall = made.astimezone(timezone(timedelta(hours=2))).strftime("%H:%M")
    assert f"{wall} UTC" not in err
    code, document, err = verify(capsys, early, root_2, tmp_path / "r2")
    assert (code, document and document["verdict"]) == (0, "superseded"), err

    # Retired routinely, then signed with the old key: "after ... retired", in UTC.
    other = thief_of(publisher, tmp_path / "second")
    rotate(publisher)
    late_made = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    late = with_edition_info(
        other.build(when=late_made).zip_path,
        tmp_path / "late.zip",
        targets_signer(other),
        created_at(late_made, -5),
    )
    code, _, err = verify(capsys, late, publisher.root_json, tmp_path / "r3")
    assert code == 10, err
    assert f"created on {utc(late_made)}, after the key that signed it was retired on " in err

    # Not yet valid: the edition's time, and the reader's, both in UTC.
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    ahead = with_edition_info(
        publisher.build(when=future).zip_path,
        tmp_path / "ahead.zip",
        targets_signer(publisher),
        created_at(future, 2),
    )
    code, _, err = verify(capsys, ahead, publisher.root_json, tmp_path / "r4")
    assert code == 12, err
    assert f"the edition says it was created at {utc(future)}, after your clock's time" in err

    # Genuine, written where it is another day: the date printed is the UTC date.
    fresh = new_publisher()
    genuine = fresh.build()
    offset = -12 if genuine.created.hour < 12 else 14
    elsewhere = with_edition_info(
        genuine.zip_path,
        tmp_path / "elsewhere.zip",
        targets_signer(fresh),
        created_at(genuine.created, offset),
    )
    capsys.readouterr()
    argv = [
        "verify",
        str(elsewhere),
        "--root",
        str(fresh.root_json),
        "--state",
        str(tmp_path / "r5"),
    ]
    assert main(argv) == 0
    assert f"of {genuine.created.astimezone(UTC):%Y-%m-%d}" in capsys.readouterr().out
