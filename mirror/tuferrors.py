"""python-tuf's errors, translated once into ours.

The mapping is the reader's threat model in one table: a mirror that sends
more than the signed length, or metadata that fails verification, is
*tampering*; older metadata than the reader trusts is a *rollback*; expired
metadata is a *freeze* (or a wrong clock); everything about getting bytes at
all — refused, reset, timed out, trickling — is *transport*.
"""

from __future__ import annotations

from tuf.api import exceptions as tuf_errors

from mirror.errors import (
    ExpiredError,
    MirrorError,
    RollbackError,
    TamperedError,
    TransportError,
)


def translate(error: BaseException) -> MirrorError:
    """The `MirrorError` that says what ``error`` means for a reader."""
    if isinstance(error, MirrorError):
        return error
    if isinstance(error, tuf_errors.DownloadLengthMismatchError):
        return TamperedError("sent more data than the signed length allows")
    if isinstance(error, tuf_errors.SlowRetrievalError):
        return TransportError("too slow (trickling data)")
    if isinstance(error, tuf_errors.DownloadHTTPError):
        return TransportError(f"answered HTTP {error.status_code}")
    if isinstance(error, tuf_errors.DownloadError):
        cause = error.__cause__ or error
        return TransportError(f"{cause.__class__.__name__}: {cause}"[:200])
    if isinstance(error, tuf_errors.ExpiredMetadataError):
        return ExpiredError(f"serves expired metadata ({error})"[:200])
    if isinstance(error, tuf_errors.BadVersionNumberError):
        return RollbackError(f"serves older data than you already trust ({error})"[:200])
    if isinstance(error, tuf_errors.RepositoryError):
        return TamperedError(f"{error.__class__.__name__}: {error}"[:200])
    return TransportError(f"{error.__class__.__name__}: {error}"[:200])
