"""The trust layer: TUF metadata, signing, minisign, and offline verification.

Everything in this package decides from bytes and values only: it takes
bytes and parsed values and returns signed bytes, verified values, or raises
a `VerificationError`. No module here opens a file, lists a folder or
touches the network (tests/test_architecture.py holds it to that); reading
and writing is the caller's job — the key store is `mirror.keystore`, the
publish tree `mirror.publish_tree`.
"""
