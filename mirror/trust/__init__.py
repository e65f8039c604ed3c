"""The trust layer: keys, TUF metadata, minisign, and offline verification.

Decisions in this package do no I/O: they take bytes and parsed values and
return verified values or raise a `VerificationError`. Reading files and
networks is the caller's job.
"""
