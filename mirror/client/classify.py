"""python-tuf's errors translated once into ours, and a mirror's failure into its verdict.

The mapping is the reader's threat model in one table: a mirror that sends
more than the signed length is *oversize* (bad data, like any tampering);
metadata that fails verification is *tampering*; older metadata than the
reader trusts is a *rollback*; expired metadata is a *freeze* (or a wrong
clock); everything about getting bytes at all — refused, reset, timed out,
trickling — is *transport*.

`classify` then names what one mirror did, in the words every reader view
uses (fetch, read-back, status, config check):

===========  ==========================================================
ok           verified (and current, where the caller knows what current is)
stale        verified, but behind what was published or what others serve
rollback     older than what this reader already trusts
expired      serves expired metadata (or the reader's clock is wrong)
tampered     bytes, signatures or lengths that are not the publisher's
other-       it serves another publisher's repository (`mirror fetch` asks
publisher    the mirror's first root when its metadata failed to verify)
unreachable  no verified answer at all
===========  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from tuf.api import exceptions as tuf_errors

from mirror.errors import (
    ExpiredError,
    MirrorError,
    OversizeError,
    RollbackError,
    StaleError,
    TamperedError,
    TransportError,
    VerificationError,
)

MIRROR_VERDICTS: Final = (
    "ok",
    "stale",
    "rollback",
    "expired",
    "tampered",
    "other-publisher",
    "unreachable",
)
"""Every verdict a reader view gives about one mirror, best news first."""


def translate(error: BaseException) -> MirrorError:
    """The `MirrorError` that says what ``error`` means for a reader."""
    if isinstance(error, MirrorError):
        return error
    if isinstance(error, tuf_errors.DownloadLengthMismatchError):
        return OversizeError("sent more data than the signed length allows")
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


@contextmanager
def translated() -> Iterator[None]:
    """Raise python-tuf's download and repository errors as ours (``from`` the original)."""
    try:
        yield
    except (tuf_errors.DownloadError, tuf_errors.RepositoryError) as error:
        raise translate(error) from error


def classify(error: BaseException) -> tuple[str, str]:
    """(verdict, detail) for an error met while reading one mirror; see `MIRROR_VERDICTS`."""
    translated_error = translate(error)
    detail = translated_error.message
    if isinstance(translated_error, StaleError):
        return "stale", detail
    if isinstance(translated_error, RollbackError):
        return "rollback", detail
    if isinstance(translated_error, ExpiredError):
        return "expired", detail
    if isinstance(translated_error, TamperedError):
        return "tampered", detail
    if isinstance(translated_error, VerificationError):
        # not yet valid, an unsafe archive: data that is not the publisher's as it stands
        return "tampered", f"{translated_error.verdict}: {detail}"
    return "unreachable", detail
