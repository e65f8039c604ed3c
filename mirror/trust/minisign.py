"""minisign-compatible detached signatures, so people without `mirror` can check an edition.

Only the prehashed form is produced (signature algorithm ``ED``): Ed25519
over the BLAKE2b-512 digest of the file, which is what stock ``minisign``
makes and verifies by default. The trusted comment is covered by a second
("global") signature over the file signature plus the comment, so it can
carry the edition id, version, created and expires times and stock
``minisign -V`` prints it only when it verifies.

Formats (https://jedisct1.github.io/minisign/)::

    public key:  "Ed" || key_id (8 bytes) || public key (32 bytes)        base64
    signature:   "ED" || key_id (8 bytes) || Ed25519(BLAKE2b-512(file))  base64
    global sig:  Ed25519(signature (64 bytes) || trusted comment)         base64
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mirror.errors import TamperedError

_PUBLIC_ALG = b"Ed"
_PREHASHED_ALG = b"ED"
MAX_COMMENT_BYTES = 1024


@dataclass(frozen=True)
class MinisignPublicKey:
    """A minisign public key: 8-byte key id and raw Ed25519 public key."""

    key_id: bytes
    public: bytes

    def key_id_hex(self) -> str:
        """The key id as stock minisign prints it (little-endian, upper-case hex)."""
        return self.key_id[::-1].hex().upper()

    def to_file(self) -> str:
        """Text of a ``minisign.pub`` file."""
        blob = base64.b64encode(_PUBLIC_ALG + self.key_id + self.public).decode("ascii")
        return f"untrusted comment: minisign public key {self.key_id_hex()}\n{blob}\n"

    @classmethod
    def from_file(cls, text: str) -> MinisignPublicKey:
        """Parse a ``minisign.pub`` file."""
        lines = [line for line in text.splitlines() if line.strip()]
        blob = _b64(lines[-1] if lines else "", "minisign public key")
        if len(blob) != 42 or blob[:2] != _PUBLIC_ALG:
            raise TamperedError("the minisign public key is malformed")
        return cls(key_id=blob[2:10], public=blob[10:])


def key_id_for(public: bytes) -> bytes:
    """A stable 8-byte key id derived from the public key (minisign itself picks random ids)."""
    return hashlib.blake2b(public, digest_size=8, person=b"mirror-minisign").digest()


def public_key_of(private_key: Ed25519PrivateKey) -> MinisignPublicKey:
    """The minisign public key that goes with ``private_key``."""
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return MinisignPublicKey(key_id=key_id_for(public), public=public)


def _check_comment(comment: str, what: str) -> bytes:
    if "\n" in comment or "\r" in comment:
        raise ValueError(f"a minisign {what} comment must be one line")
    data = comment.encode("utf-8")
    if len(data) > MAX_COMMENT_BYTES:
        raise ValueError(f"a minisign {what} comment is limited to {MAX_COMMENT_BYTES} bytes")
    return data


def sign_prehashed(
    private_key: Ed25519PrivateKey,
    blake2b_512: bytes,
    *,
    trusted_comment: str,
    untrusted_comment: str = "signature from mirror",
) -> str:
    """Return the text of a ``.minisig`` file for a file whose BLAKE2b-512 digest is given."""
    if len(blake2b_512) != 64:
        raise ValueError("minisign prehashed signatures take a 64-byte BLAKE2b-512 digest")
    trusted = _check_comment(trusted_comment, "trusted")
    _check_comment(untrusted_comment, "untrusted")
    key = public_key_of(private_key)
    signature = private_key.sign(blake2b_512)
    global_signature = private_key.sign(signature + trusted)
    return (
        f"untrusted comment: {untrusted_comment}\n"
        f"{base64.b64encode(_PREHASHED_ALG + key.key_id + signature).decode('ascii')}\n"
        f"trusted comment: {trusted_comment}\n"
        f"{base64.b64encode(global_signature).decode('ascii')}\n"
    )


def verify_prehashed(signature_file: str, blake2b_512: bytes, key: MinisignPublicKey) -> str:
    """Check a ``.minisig`` against a file digest and a public key; return the trusted comment.

    Raises `TamperedError` on any mismatch: wrong key id, bad signature, or a
    trusted comment that was changed after signing.
    """
    lines = signature_file.splitlines()
    if len(lines) < 4 or not lines[2].startswith("trusted comment: "):
        raise TamperedError("the minisign signature file is malformed")
    blob = _b64(lines[1], "minisign signature")
    if len(blob) != 74 or blob[:2] != _PREHASHED_ALG:
        raise TamperedError("the minisign signature is not a prehashed Ed25519 signature")
    if blob[2:10] != key.key_id:
        raise TamperedError("the minisign signature was made by a different key")
    trusted = lines[2][len("trusted comment: ") :]
    global_signature = _b64(lines[3], "minisign global signature")
    public = Ed25519PublicKey.from_public_bytes(key.public)
    try:
        public.verify(blob[10:], blake2b_512)
        public.verify(global_signature, blob[10:] + trusted.encode("utf-8"))
    except InvalidSignature as error:
        raise TamperedError("the minisign signature does not match this file") from error
    return trusted


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise TamperedError(f"the {what} is not valid base64") from error
