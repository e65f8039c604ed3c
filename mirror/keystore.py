"""The publisher's key store: creation, encrypted storage, loading and rotation.

A key store is one folder::

    keys/
      keys.json                 publisher name and id, root threshold (public facts only)
      <role>-<keyid16>.key      private keys, OpenSSH format, encrypted with the passphrase
      minisign-<keyid16>.key    the minisign signing key, encrypted the same way
      roots/<N>.root.json       every root version ever signed: the chain readers walk
      root.json                 copy of the newest root, for readers to pin
      minisign.pub              the minisign public key, for stock `minisign -V`
      retired/                  keys replaced by a rotation (kept, never used to sign)

Private keys never leave this folder unencrypted; the passphrase comes from a
secret reference (``env:NAME`` or ``file:PATH``), never the command line.
Root versions are created only here: version 1 by `init_keys`, every later
one by `rotate_role`, signed by a threshold of the old *and* the new root
keys so a reader who pinned any earlier root can walk the chain forward.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Metadata, Root

from mirror import fsutil
from mirror.errors import KeyStoreError, StorageError, TamperedError
from mirror.secrets import Secret
from mirror.trust import layout, minisign, strictjson
from mirror.trust.metadata import parse_metadata, serializer
from mirror.trust.publisher import PUBLISHER_FIELD, Publisher, publisher_of
from mirror.trust.retired import RETIRED_FIELD, retirement_entry
from mirror.trust.verify import walk_root_chain

KEYS_INDEX = "keys.json"
MAX_KEY_FILE_BYTES = 64 * 1024
MAX_ROOT_BYTES = 1024 * 1024
KDF_ROUNDS = 16
"""bcrypt-pbkdf rounds protecting each private key file (ssh-keygen's default; ~0.2 s a key)."""

ROTATABLE_ROLES = ("root", "targets", "snapshot", "timestamp", "minisign")


@dataclass(frozen=True)
class Keyring:
    """Decrypted online signing keys, ready to sign an edition."""

    root: Metadata[Root]
    root_chain: tuple[bytes, ...]
    signers: dict[str, CryptoSigner]
    minisign_key: Ed25519PrivateKey
    minisign_public: minisign.MinisignPublicKey
    """The key readers were given (``minisign.pub``), not one derived from the private key."""
    publisher: Publisher

    def signer(self, role: str) -> CryptoSigner:
        """The signer of a top-level online role (targets, snapshot, timestamp)."""
        return self.signers[role]


def init_keys(
    keys_dir: Path,
    passphrase: Secret,
    *,
    publisher_name: str,
    now: datetime,
    root_threshold: int = 2,
    root_keys: int = 3,
    root_expires_days: int = 365,
    kdf_rounds: int = KDF_ROUNDS,
) -> Root:
    """Create a new key store with root version 1; refuse to touch an existing one.

    ``kdf_rounds`` is for test suites only (a fast, weak key store): the
    command line always uses `KDF_ROUNDS`.
    """
    if not 1 <= root_threshold <= root_keys <= 16:
        raise KeyStoreError(
            f"a root threshold of {root_threshold} of {root_keys} keys is not possible",
            hint="Use a threshold between 1 and the number of root keys (default 2 of 3).",
        )
    _refuse_existing_key_material(keys_dir)
    check_passphrase(passphrase)
    # Built in a folder of its own next to keys_dir and moved in whole, so a crash or a
    # full disk half-way leaves no half key store behind (one that init would refuse).
    fsutil.ensure_dir(keys_dir.parent)
    staging = keys_dir.parent / f".{keys_dir.name}.init-{secrets.token_hex(4)}"
    try:
        staging.mkdir(mode=0o700)
    except OSError as error:
        raise StorageError.from_os(error, path=staging, action="create") from error
    try:
        root = _create_key_store(
            staging,
            passphrase,
            publisher_name=publisher_name,
            now=now,
            root_threshold=root_threshold,
            root_keys=root_keys,
            root_expires_days=root_expires_days,
            kdf_rounds=kdf_rounds,
        )
        _move_into_place(staging, keys_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


KEY_MATERIAL = (KEYS_INDEX, "*.key", "roots", "root.json", "minisign.pub", "retired", "proposals")
"""What `init_keys` refuses to find in the folder: any of it means a key store lives there."""


def key_material(keys_dir: Path) -> list[str]:
    """Names of the key files and folders present in ``keys_dir`` (sorted; empty: none)."""
    if not keys_dir.exists():
        return []
    if not keys_dir.is_dir():
        raise StorageError(
            f"the key store path {keys_dir} is a file, not a folder",
            hint="Point keys.dir at a folder (init creates it when it does not exist).",
        )
    found: set[str] = set()
    try:
        for pattern in KEY_MATERIAL:
            found.update(
                path.name + ("/" if path.is_dir() else "") for path in keys_dir.glob(pattern)
            )
    except OSError as error:
        raise StorageError.from_os(error, path=keys_dir, action="read the key folder") from error
    return sorted(found)


def _refuse_existing_key_material(keys_dir: Path) -> None:
    """Stop before anything is written when the folder already holds any key material.

    Overwriting ``roots/1.root.json`` or ``root.json`` would replace the root
    every reader pinned: from then on no reader could verify an edition. A
    store whose ``keys.json`` was lost is still a store.
    """
    found = key_material(keys_dir)
    if not found:
        return
    shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
    raise KeyStoreError(
        f"{keys_dir} already holds a key store (found {shown}); keys init never overwrites keys",
        hint="Use `mirror keys rotate ROLE` to replace keys. To start a new publisher, point "
        "keys.dir at an empty folder: readers who pinned the old root.json will not trust it.",
    )


def _move_into_place(staging: Path, keys_dir: Path) -> None:
    """Move a finished key store from ``staging`` to ``keys_dir`` (which holds no key material)."""
    try:
        if not keys_dir.exists():
            os.rename(staging, keys_dir)
            return
        _refuse_existing_key_material(keys_dir)  # it may have appeared meanwhile
        entries = sorted(staging.iterdir(), key=lambda path: path.name == KEYS_INDEX)
        for entry in entries:  # keys.json last: it marks a complete store
            os.rename(entry, keys_dir / entry.name)
        fsutil.fsync_dir(keys_dir)
    except OSError as error:
        raise StorageError.from_os(
            error, path=keys_dir, action="create the key store in"
        ) from error


def _create_key_store(
    keys_dir: Path,
    passphrase: Secret,
    *,
    publisher_name: str,
    now: datetime,
    root_threshold: int,
    root_keys: int,
    root_expires_days: int,
    kdf_rounds: int,
) -> Root:
    publisher = Publisher(name=publisher_name, publisher_id=secrets.token_hex(16))
    root = Root(expires=now + timedelta(days=root_expires_days), consistent_snapshot=True)
    root.unrecognized_fields[PUBLISHER_FIELD] = {
        "name": publisher.name,
        "id": publisher.publisher_id,
    }
    root.roles["root"].threshold = root_threshold
    new_root_signers = [
        _new_key(keys_dir, "root", passphrase, kdf_rounds) for _ in range(root_keys)
    ]
    for signer in new_root_signers:
        root.add_key(signer.public_key, "root")
    for role in layout.ONLINE_ROLES:
        root.add_key(_new_key(keys_dir, role, passphrase, kdf_rounds).public_key, role)
    _new_minisign_key(keys_dir, passphrase, kdf_rounds)
    metadata = Metadata(root)
    for signer in new_root_signers:
        metadata.sign(signer, append=True)
    _save_root(keys_dir, metadata)
    fsutil.atomic_write_bytes(
        keys_dir / KEYS_INDEX,
        strictjson.dumps({"format": 1, "publisher": publisher.name, "id": publisher.publisher_id}),
    )
    return root


MAX_PASSPHRASE_BYTES = 1023
"""The longest passphrase OpenSSH's key format (bcrypt-pbkdf) accepts."""


def check_passphrase(passphrase: Secret) -> None:
    """A passphrase the key files can use, or a `KeyStoreError` saying why not."""
    if len(passphrase.value) > MAX_PASSPHRASE_BYTES:
        raise KeyStoreError(
            f"the key passphrase from {passphrase.reference} is {len(passphrase.value):,} bytes; "
            f"key files allow at most {MAX_PASSPHRASE_BYTES:,}",
            hint="Use a shorter passphrase: 64 random characters are already beyond guessing.",
        )


def load_keyring(keys_dir: Path, passphrase: Secret) -> Keyring:
    """Decrypt the online keys (targets, snapshot, timestamp, minisign) of the current root."""
    return PendingKeyring(keys_dir, passphrase).result()


class PendingKeyring:
    """The keyring for a caller with other work to do until it signs: the passphrase is
    checked on the first key at once, the other keys are decrypted in threads meanwhile
    (bcrypt-pbkdf, most of the cost, lets go of the GIL); `result` waits for them."""

    def __init__(self, keys_dir: Path, passphrase: Secret) -> None:
        self._chain = load_root_chain(keys_dir)
        self._root = Metadata[Root].from_bytes(self._chain[-1])
        self._minisign_public = minisign_public_key(keys_dir)
        first, *others = layout.ONLINE_ROLES
        # One key at once: a wrong passphrase is told before the caller writes anything.
        self._first = _load_signer(keys_dir, first, self._keyid(first), passphrase)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="keys")
        try:
            self._others = {
                role: pool.submit(_load_signer, keys_dir, role, self._keyid(role), passphrase)
                for role in others
            }
            self._minisign_key = pool.submit(_load_minisign_key, keys_dir, passphrase)
        finally:
            pool.shutdown(wait=False)

    def _keyid(self, role: str) -> str:
        return self._root.signed.roles[role].keyids[0]

    def result(self) -> Keyring:
        """The keyring, once every key is decrypted; raises what decrypting one raised."""
        signers = {layout.ONLINE_ROLES[0]: self._first}
        signers.update((role, future.result()) for role, future in self._others.items())
        return Keyring(
            root=self._root,
            root_chain=self._chain,
            signers=signers,
            minisign_key=self._minisign_key.result(),
            minisign_public=self._minisign_public,
            publisher=publisher_of(self._root.signed),
        )


def load_root_chain(keys_dir: Path) -> tuple[bytes, ...]:
    """Every root version's bytes, oldest first; the last one is current."""
    roots_dir = keys_dir / "roots"
    if not (keys_dir / KEYS_INDEX).is_file() or not roots_dir.is_dir():
        raise KeyStoreError(f"no key store in {keys_dir}")
    chain: list[bytes] = []
    version = 1
    while (path := roots_dir / f"{version}.root.json").is_file():
        chain.append(fsutil.read_bounded(path, max_bytes=MAX_ROOT_BYTES, what="root metadata"))
        version += 1
    if not chain:
        raise KeyStoreError(f"the key store in {keys_dir} has no root metadata")
    return tuple(chain)


def minisign_public_key(keys_dir: Path) -> minisign.MinisignPublicKey:
    """The current minisign public key, as exported in ``minisign.pub``."""
    path = keys_dir / "minisign.pub"
    if not path.is_file():
        raise KeyStoreError(
            f"the key store {keys_dir} has no minisign.pub",
            hint="Restore it from the key store's backup: readers hold a copy of it.",
        )
    text = fsutil.read_bounded(path, max_bytes=4096, what="minisign key")
    try:
        return minisign.MinisignPublicKey.from_file(text.decode("utf-8", "replace"))
    except TamperedError as error:
        raise KeyStoreError(
            f"{path} is not a minisign public key ({error.message})",
            hint="Restore it from the key store's backup: readers hold a copy of it.",
        ) from error


def _next_root(
    keys_dir: Path,
    passphrase: Secret,
    role: str,
    *,
    now: datetime,
    root_expires_days: int,
    compromised_since: datetime | None = None,
) -> tuple[Metadata[Root], list[CryptoSigner], list[str]]:
    """Root N+1 (unsigned) with new keys for ``role``; (metadata, new signers, retired key ids).

    ``role`` may be empty: then only the version and expiry change (a renewal).
    Every replaced key is recorded in the new root (`mirror.trust.retired`):
    retired now, and compromised since ``compromised_since`` when given, so
    readers can tell editions it signed honestly from ones signed after.
    """
    old_md = Metadata[Root].from_bytes(load_root_chain(keys_dir)[-1])
    new_root = Root.from_dict(old_md.signed.to_dict())
    new_root.version = old_md.signed.version + 1
    new_root.expires = now + timedelta(days=root_expires_days)
    if not role:
        return Metadata(new_root), [], []
    retired_ids = list(new_root.roles[role].keyids)
    records = dict(new_root.unrecognized_fields.get(RETIRED_FIELD, {}))
    for keyid in retired_ids:
        # The key itself and the role's threshold, as root N lists them: the newest root can
        # then vouch for what this key signed without root N (ADR 0018).
        records[keyid] = retirement_entry(
            role,
            retired=now,
            compromised_since=compromised_since,
            key=old_md.signed.keys[keyid],
            threshold=old_md.signed.roles[role].threshold,
            last_root_version=old_md.signed.version,
        )
        new_root.revoke_key(keyid, role)
    new_root.unrecognized_fields[RETIRED_FIELD] = records
    new_signers = [_new_key(keys_dir, role, passphrase) for _ in retired_ids]
    for signer in new_signers:
        new_root.add_key(signer.public_key, role)
    return Metadata(new_root), new_signers, retired_ids


def _check_role(role: str) -> None:
    if role not in ROTATABLE_ROLES:
        raise KeyStoreError(
            f"there is no role called {role!r}",
            hint=f"Rotatable roles: {', '.join(ROTATABLE_ROLES)}.",
        )


def rotate_role(
    keys_dir: Path,
    passphrase: Secret,
    role: str,
    *,
    now: datetime,
    root_expires_days: int = 365,
    compromised_since: datetime | None = None,
) -> Root | None:
    """Replace the keys of ``role`` and publish the change as the next root version.

    For ``minisign`` only the minisign key changes (it is not part of TUF) and
    None is returned. For TUF roles a new root version N+1 is signed by a
    threshold of root N's keys and a threshold of its own, so every reader's
    chain walk accepts it. This needs the root keys in ``keys_dir``; where they
    are kept offline, use `propose_root`, `sign_root` and `import_root`.
    Replaced private keys move to ``retired/``. ``compromised_since`` marks the
    replaced keys as compromised from that time (see `mirror.trust.retired`).
    """
    _check_role(role)
    if role == "minisign" and compromised_since is not None:
        raise KeyStoreError(
            "the minisign key is not part of the signed root: it cannot be marked compromised",
            hint="Rotate it, and tell readers of stock minisign to replace minisign.pub.",
        )
    if role == "minisign":
        for path in sorted(keys_dir.glob("minisign-*.key")):
            _retire(keys_dir, path)
        _new_minisign_key(keys_dir, passphrase)
        return None
    old_root_signers = load_root_signers(keys_dir, passphrase)
    metadata, new_signers, retired_ids = _next_root(
        keys_dir,
        passphrase,
        role,
        now=now,
        root_expires_days=root_expires_days,
        compromised_since=compromised_since,
    )
    for signer in old_root_signers:
        metadata.sign(signer, append=True)
    if role == "root":
        for signer in new_signers:
            metadata.sign(signer, append=True)
    _save_root(keys_dir, metadata)
    _retire_unlisted(keys_dir, role, retired_ids)
    return metadata.signed


PROPOSALS_DIR = "proposals"


def propose_root(
    keys_dir: Path,
    passphrase: Secret,
    role: str,
    *,
    now: datetime,
    root_expires_days: int = 365,
    compromised_since: datetime | None = None,
) -> Path:
    """On the online host: new keys for an online role (or none, to renew), as an
    *unsigned* root N+1 written to ``proposals/`` for the offline root keys to sign.

    The new private keys are created here (they are online keys); the old ones
    keep signing until the signed root is imported.
    """
    if role not in ("", *layout.ONLINE_ROLES):
        raise KeyStoreError(
            f"only the online roles ({', '.join(layout.ONLINE_ROLES)}) can be proposed online",
            hint="Root keys are rotated on the offline machine with `mirror keys rotate root`.",
        )
    metadata, _, _ = _next_root(
        keys_dir,
        passphrase,
        role,
        now=now,
        root_expires_days=root_expires_days,
        compromised_since=compromised_since,
    )
    path = keys_dir / PROPOSALS_DIR / f"{metadata.signed.version}.root.json"
    fsutil.atomic_write_bytes(path, metadata.to_bytes(serializer()))
    return path


def sign_root(proposal: Path, offline_keys_dir: Path, passphrase: Secret) -> Path:
    """On the offline machine: sign a proposed root with every root key present there.

    The proposal must be the next version of the root chain held offline.
    Writes ``<N>.root.signed.json`` next to the proposal and returns its path.
    """
    data = fsutil.read_bounded(proposal, max_bytes=MAX_ROOT_BYTES, what="root proposal")
    metadata = parse_metadata(data, Root, what=f"the root proposal {proposal}")
    current = Metadata[Root].from_bytes(load_root_chain(offline_keys_dir)[-1])
    if metadata.signed.version != current.signed.version + 1:
        raise KeyStoreError(
            f"{proposal.name} is root version {metadata.signed.version}, but the offline "
            f"chain is at version {current.signed.version}",
            hint="Copy the newest roots/ from the online host to the offline key store first.",
        )
    if publisher_of(metadata.signed) != publisher_of(current.signed):
        raise KeyStoreError(f"{proposal.name} names a different publisher")
    signers = [
        _load_signer(offline_keys_dir, "root", keyid, passphrase)
        for keyid in current.signed.roles["root"].keyids
        if (offline_keys_dir / f"root-{keyid[:16]}.key").is_file()
    ]
    if not signers:
        raise KeyStoreError(f"there are no root keys in {offline_keys_dir}")
    metadata.signatures.clear()
    for signer in signers:
        metadata.sign(signer, append=True)
    signed = proposal.with_name(f"{metadata.signed.version}.root.signed.json")
    fsutil.atomic_write_bytes(signed, metadata.to_bytes(serializer()))
    return signed


def import_root(keys_dir: Path, signed: Path) -> Root:
    """On the online host: accept a root signed offline, after the checks readers make.

    Root N+1 must carry a threshold of root N's keys and of its own, exactly
    as every reader's chain walk will demand; then it becomes current and the
    keys it no longer lists move to ``retired/``.
    """
    data = fsutil.read_bounded(signed, max_bytes=MAX_ROOT_BYTES, what="signed root")
    current = Metadata[Root].from_bytes(load_root_chain(keys_dir)[-1])
    candidate = parse_metadata(data, Root, what=f"the signed root {signed}")
    chain = walk_root_chain(current, {candidate.signed.version: data})
    new_root = chain.root
    _save_root(keys_dir, new_root)
    for role in layout.ONLINE_ROLES:
        _retire_unlisted(keys_dir, role, current.signed.roles[role].keyids)
    proposal = keys_dir / PROPOSALS_DIR / f"{new_root.signed.version}.root.json"
    proposal.unlink(missing_ok=True)
    return new_root.signed


def _retire_unlisted(keys_dir: Path, role: str, keyids: list[str]) -> None:
    """Move the private keys of ``keyids`` to retired/ unless the current root lists them."""
    current = Metadata[Root].from_bytes(load_root_chain(keys_dir)[-1]).signed
    listed = set(current.roles[role].keyids)
    for keyid in keyids:
        if keyid in listed:
            continue
        for path in keys_dir.glob(f"{role}-{keyid[:16]}.key"):
            _retire(keys_dir, path)


def load_root_signers(keys_dir: Path, passphrase: Secret) -> list[CryptoSigner]:
    """Decrypt the current root keys (needed only to sign a new root version)."""
    root = Metadata[Root].from_bytes(load_root_chain(keys_dir)[-1]).signed
    return [
        _load_signer(keys_dir, "root", keyid, passphrase) for keyid in root.roles["root"].keyids
    ]


def _save_root(keys_dir: Path, metadata: Metadata[Root]) -> None:
    data = metadata.to_bytes(serializer())
    fsutil.atomic_write_bytes(keys_dir / "roots" / f"{metadata.signed.version}.root.json", data)
    fsutil.atomic_write_bytes(keys_dir / "root.json", data)


def _retire(keys_dir: Path, path: Path) -> None:
    try:
        (keys_dir / "retired").mkdir(exist_ok=True)
        shutil.move(path, keys_dir / "retired" / path.name)
    except OSError as error:
        raise StorageError(f"cannot move retired key {path} ({error.strerror})") from error


def _encrypt(private_key: Ed25519PrivateKey, passphrase: Secret, kdf_rounds: int) -> bytes:
    """OpenSSH private key format, encrypted with bcrypt-pbkdf (``KDF_ROUNDS``) and AES-256.

    A standard format (``ssh-keygen -y -f FILE`` reads it) with a memory-hard
    KDF; cryptography's PKCS#8 ``BestAvailableEncryption`` uses only 2,048
    PBKDF2 rounds, too few against offline guessing of a stolen key file.
    """
    check_passphrase(passphrase)
    encryption = (
        serialization.PrivateFormat.OpenSSH.encryption_builder()
        .kdf_rounds(kdf_rounds)
        .build(passphrase.value)
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def _decrypt(path: Path, passphrase: Secret) -> Ed25519PrivateKey:
    check_passphrase(passphrase)
    data = fsutil.read_bounded(path, max_bytes=MAX_KEY_FILE_BYTES, what="private key")
    try:
        key = serialization.load_ssh_private_key(data, password=passphrase.value)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyStoreError(
            f"cannot decrypt {path.name}: the passphrase is wrong or the file is damaged",
            hint=f"Check the passphrase reference ({passphrase.reference}).",
        ) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyStoreError(f"{path.name} is not an Ed25519 key")
    return key


def _new_key(
    keys_dir: Path, role: str, passphrase: Secret, kdf_rounds: int = KDF_ROUNDS
) -> CryptoSigner:
    private_key = Ed25519PrivateKey.generate()
    public = SSlibKey.from_crypto(private_key.public_key())
    fsutil.atomic_write_bytes(
        keys_dir / f"{role}-{public.keyid[:16]}.key",
        _encrypt(private_key, passphrase, kdf_rounds),
        mode=0o600,
    )
    return CryptoSigner(private_key, public)


def _load_signer(keys_dir: Path, role: str, keyid: str, passphrase: Secret) -> CryptoSigner:
    path = keys_dir / f"{role}-{keyid[:16]}.key"
    if not path.is_file():
        raise KeyStoreError(
            f"the {role} key {keyid[:16]} is not in {keys_dir}",
            hint="Root keys kept offline? Use `mirror keys propose-root`, `sign-root` on the "
            "offline machine, then `import-root` (docs/key-custody.md).",
        )
    private_key = _decrypt(path, passphrase)
    public = SSlibKey.from_crypto(private_key.public_key())
    if public.keyid != keyid:
        raise KeyStoreError(f"{path.name} does not hold the {role} key that root lists")
    return CryptoSigner(private_key, public)


def _new_minisign_key(keys_dir: Path, passphrase: Secret, kdf_rounds: int = KDF_ROUNDS) -> None:
    private_key = Ed25519PrivateKey.generate()
    public = minisign.public_key_of(private_key)
    fsutil.atomic_write_bytes(
        keys_dir / f"minisign-{public.key_id.hex()}.key",
        _encrypt(private_key, passphrase, kdf_rounds),
        mode=0o600,
    )
    fsutil.atomic_write_bytes(keys_dir / "minisign.pub", public.to_file().encode("ascii"))


def _load_minisign_key(keys_dir: Path, passphrase: Secret) -> Ed25519PrivateKey:
    public = minisign_public_key(keys_dir)
    path = keys_dir / f"minisign-{public.key_id.hex()}.key"
    if not path.is_file():
        raise KeyStoreError(f"the minisign signing key is not in {keys_dir}")
    return _decrypt(path, passphrase)
