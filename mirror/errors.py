"""Every error `mirror` raises on purpose, as one tree.

::

    MirrorError                      one sentence (str) + a hint; exit_code picks the CLI exit
    ├── UsageError                   bad command-line arguments                         exit 2
    │   ├── TufClientUsageError      the same under the conformance protocol            exit 1
    │   └── MissingExtraError        a publisher command on a reader-only install       exit 2
    ├── ConfigError                  bad configuration file (names file, line and key)  exit 3
    ├── StorageError                 local file system: cannot read or write            exit 4
    ├── KeyStoreError                keys missing, passphrase missing or wrong          exit 5
    ├── SourceError                  an article source cannot be read at all            exit 6
    │   └── ArticleError             one article is broken (file and reason)            exit 6
    ├── TransportError               network: timeout, refused, reset, 5xx (retried)    exit 7
    │   ├── ServerBusyError          429/503, with the server's Retry-After (retried)   exit 7
    │   ├── UnreadableListingError   a listing that is not what the protocol promises   exit 7
    │   ├── MirrorAuthError          credentials or permissions refused (not retried)   exit 7
    │   └── MirrorNotFoundError      no such file on the mirror (not retried)           exit 7
    ├── QuorumError                  fewer mirrors verified than the configured quorum  exit 8
    ├── HistoryConflictError         a mirror's history is ahead of the local tree,     exit 9
    │                                diverges from it, or is another publisher's
    └── VerificationError            bad data: never retried on the same mirror
        ├── TamperedError            signature, threshold, unknown key, hash, length,   exit 10
        │   │                        mix-and-match, malformed metadata
        │   ├── OversizeError        more bytes than the cap or the signed length       exit 10
        │   └── CompromisedKeyError  signed after the publisher declared the key lost   exit 10
        ├── ExpiredError             signed metadata or edition past its expiry         exit 11
        ├── NotYetValidError         edition created in the future (clock or forgery)   exit 12
        ├── RollbackError            older than what this reader already trusts         exit 13
        │   └── StaleError           verified, but behind what was published or what    exit 13
        │                            other mirrors serve (a lagging cache, a freeze)
        ├── UnsafeArchiveError       archive structure is hostile or over a cap         exit 14
        ├── ForeignEditionError      signed by another publisher than the root pinned   exit 15
        └── IncompleteEditionError   not a whole edition: empty, cut short, a web page  exit 16

Exit code 0 means success (for `verify`: verified); 1 is an unexpected internal
error, which the CLI still reports in one sentence, never with a traceback.

Two families matter to callers: a `VerificationError` is *bad data* (the
mirror or file is flagged, and the same source is never retried), a
`TransportError` is *bad transport* (retried with backoff, then the next
mirror) — except `MirrorAuthError` and `MirrorNotFoundError`, which no
retry can mend. A download over its cap is bad data (`OversizeError`): the
mirror sent what it must not, and asking again only invites more.

Foreign exceptions are translated once, at the boundary that caught them,
with ``raise ... from``. Messages never contain secrets. No class outside
this module derives from `Exception`: a new kind of failure is a new leaf
here, with its verdict, exit code and hint.
"""

from __future__ import annotations

import copy
import errno
import os
from typing import Self


class MirrorError(Exception):
    """Root of every error `mirror` raises on purpose.

    ``str(error)`` is one plain sentence; ``hint`` says what to do next.
    """

    exit_code = 1
    verdict = "error"
    default_hint = ""
    hint_label = "hint"
    """The word before the hint when it is printed (translated with the hint)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def reworded(self, message: str, hint: str, *, hint_label: str = "hint") -> Self:
        """The same error (class, verdict, exit code) in other words, e.g. translated."""
        other = copy.copy(self)
        other.args = (message,)
        other.message = message
        other.hint = hint
        other.hint_label = hint_label
        other.__cause__ = self
        return other


class UsageError(MirrorError):
    """The command line asks for something that cannot be done."""

    exit_code = 2
    verdict = "usage"
    default_hint = "Run the command with --help to see how it is used."


class TufClientUsageError(UsageError):
    """A usage mistake under the TUF conformance protocol, where every failure exits 1."""

    exit_code = 1
    default_hint = ""


class MissingExtraError(UsageError):
    """A publisher command on a reader-only install: the ``publish`` extra is not installed.

    The base install of mirror is the reader (docs/adr/0017-reader-only-install.md);
    ``module`` names the import that failed, ``distribution`` the package of the
    extra that provides it.
    """

    verdict = "missing-extra"
    default_hint = (
        "Install mirror again with its publish extra, from where you got it: e.g. "
        "pip install --no-index --find-links WHEELHOUSE 'mirror[publish]' (docs/install.md; "
        "the PyPI project named mirror is another one)."
    )

    def __init__(
        self, message: str, *, module: str, distribution: str, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.module = module
        self.distribution = distribution


class ConfigError(MirrorError):
    """The configuration file is invalid; the message names file, line and key."""

    exit_code = 3
    verdict = "config"
    default_hint = "Fix the named key; config/README.md documents every setting."


class StorageError(MirrorError):
    """A local file or folder cannot be read or written.

    `from_os` is the one translation of an `OSError` into words: the path and
    what happened ("no space left on device", "read-only file system"), with
    a hint that fits the cause (free space, remount, permissions, a failing
    disk). Every boundary that sees a path uses it, and so does the CLI for
    an `OSError` nobody caught, so a full disk is exit 4 wherever it strikes.
    """

    exit_code = 4
    verdict = "io"
    default_hint = "Check that the path exists and that you may read and write it."

    @classmethod
    def from_os(cls, error: OSError, *, path: object = None, action: str = "use") -> StorageError:
        """``cannot <action> <path>: <what happened>``, with the hint for that cause.

        ``path`` defaults to the error's own file name; ``action`` is a verb
        such as ``write``, ``read`` or ``create``.
        """
        where = path if path is not None else error.filename
        reason = os_reason(error)
        subject = f" {where}" if where is not None else ""
        if error.filename2 is not None and path is None:
            subject += f" (to {error.filename2})"
        hint = _OS_HINTS.get(error.errno or 0, cls.default_hint)
        return cls(f"cannot {action}{subject}: {reason}", hint=hint)


def os_reason(error: OSError) -> str:
    """What an `OSError` says happened, in lower case (``no space left on device``)."""
    if error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    if error.errno:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__


_NOTHING_KEPT = "nothing half-written was kept; run the command again afterwards."
_OS_HINTS = {
    errno.ENOSPC: f"Free some space on that disk (or give it more): {_NOTHING_KEPT}",
    errno.EDQUOT: f"Your disk quota is used up; free some space or raise it: {_NOTHING_KEPT}",
    errno.EFBIG: f"The file is larger than that file system allows: {_NOTHING_KEPT}",
    errno.EROFS: "That file system is mounted read-only: remount it writable, or point the "
    "command at another folder.",
    errno.EACCES: "Check the permissions of the path and its folders for the user running mirror.",
    errno.EPERM: "The system refused the operation; check the path's permissions and attributes.",
    errno.EIO: "The disk reported an input/output error: check it (dmesg, smartctl) before "
    "trusting anything on it.",
    errno.ENOENT: "Check that the path exists.",
    errno.ENOTDIR: "A part of the path is a file, not a folder.",
    errno.EISDIR: "The path is a folder where a file was expected.",
    errno.ENAMETOOLONG: "The path or one of its names is too long for the file system.",
    errno.EMFILE: "Too many files are open; raise the limit (ulimit -n) and run again.",
}


class NotARegularFileError(OSError):
    """`fsutil.open_regular` found a FIFO, a device, a socket or a folder where a file
    should be. An `OSError`, not a verdict: each caller says it in its own sentence."""


class KeyStoreError(MirrorError):
    """Signing keys are missing, unreadable, or the passphrase is missing or wrong."""

    exit_code = 5
    verdict = "keys"
    default_hint = "Run `mirror keys init` or check the passphrase reference in the config."


class SourceError(MirrorError):
    """An article source (folder or feed) cannot be read."""

    exit_code = 6
    verdict = "source"
    default_hint = "Check the source's path or URL in the config."


class ArticleError(SourceError):
    """One article is broken; ``source`` names the file or URL, the message the reason."""

    default_hint = "Fix the article, or set on_article_error: skip to publish without it."

    def __init__(self, source: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{source}: {reason}", hint=hint)
        self.source = source
        self.reason = reason


class TransportError(MirrorError):
    """The network failed us: timeout, refused, reset, 5xx, authentication."""

    exit_code = 7
    verdict = "unreachable"
    default_hint = "Check the network or the mirror; the operation can be retried."


class ServerBusyError(TransportError):
    """The server answered 429 or 503: come back later.

    ``retry_after_s`` is the server's Retry-After in seconds (from a number
    or an HTTP date), or None when it gave none or an unreadable one; the
    retry policy waits at least that long before trying this mirror again.
    """

    default_hint = "The mirror is overloaded or rate-limiting us; it will be retried later."

    def __init__(
        self, message: str, *, retry_after_s: float | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class UnreadableListingError(TransportError):
    """A server's file listing is hostile or broken (too long, too deep, not XML, entities)."""

    default_hint = "Check that the mirror's url: points at a collection of the expected kind."


class MirrorAuthError(TransportError):
    """The mirror refused our credentials or permissions; retrying will not help."""

    verdict = "auth"
    default_hint = "Check the mirror's credentials and permissions in the config."


class MirrorNotFoundError(TransportError):
    """The mirror has no file at that path (HTTP 404, ENOENT, NoSuchKey)."""

    verdict = "not-found"
    default_hint = "The mirror may be incomplete; push to it again."


class QuorumError(MirrorError):
    """A push or sync finished, but fewer mirrors verified than the quorum requires."""

    exit_code = 8
    verdict = "quorum"
    default_hint = "See the report for each failed mirror; the next run completes them."


class HistoryConflictError(MirrorError):
    """A mirror holds a history the local tree must not write over (ahead, diverged, foreign).

    Nothing was written to that mirror. Pushing anyway would move its readers'
    publisher back in time or mix two histories under one version number.
    """

    exit_code = 9
    verdict = "history"
    default_hint = (
        "If the mirror's history is this publisher's, take it back into the local tree with "
        "`mirror restore --from MIRROR`, then sync again; if it is another publisher's, fix "
        "that mirror's entry in the config."
    )


class VerificationError(MirrorError):
    """The data is not what the publisher signed; never retried on the same source."""

    exit_code = 10
    verdict = "tampered"


class TamperedError(VerificationError):
    """Signatures, thresholds, keys, hashes or lengths do not match the signed metadata."""

    exit_code = 10
    verdict = "tampered"
    default_hint = (
        "Do not read this copy; get the edition from another mirror or person and verify again."
    )


class OversizeError(TamperedError):
    """More bytes arrived than the cap (or the signed length) allows: never retried there."""


class CompromisedKeyError(TamperedError):
    """Signed by a key the publisher declared compromised, after the time it named."""

    verdict = "compromised-key"
    default_hint = (
        "Someone else may hold that key: do not read this copy. Newer editions are signed with "
        "the publisher's new keys."
    )


class ExpiredError(VerificationError):
    """Signed metadata or the edition itself is past its expiry time."""

    exit_code = 11
    verdict = "expired"
    default_hint = (
        "Check your clock, or get a newer edition; --allow-expired reads it anyway, at your risk."
    )


class NotYetValidError(VerificationError):
    """The edition claims to be created in the future: a wrong clock or a forgery."""

    exit_code = 12
    verdict = "not-yet-valid"
    default_hint = "Check that your computer's clock and time zone are right, then verify again."


class RollbackError(VerificationError):
    """The edition or metadata is older than what this reader already trusts."""

    exit_code = 13
    verdict = "rollback"
    default_hint = (
        "Someone may be serving you an old edition on purpose; get the latest from another mirror."
    )


class StaleError(RollbackError):
    """Verified, but older than what was just published or what other mirrors serve."""

    verdict = "stale"
    default_hint = "The mirror, or a cache in front of it, still serves an older version."


class UnsafeArchiveError(VerificationError):
    """The archive's structure is hostile (traversal, links, duplicates, bombs) or over a cap."""

    exit_code = 14
    verdict = "unsafe-archive"
    default_hint = "Do not unpack this file with other tools; get the edition from another source."


class ForeignEditionError(VerificationError):
    """Another publisher's edition (or mirror): the root the reader pinned is not its root.

    Not a forgery of the pinned publisher's work, and not a reason to call
    the network hostile: the file or mirror belongs to someone else.
    """

    exit_code = 15
    verdict = "other-publisher"
    default_hint = (
        "Check it with the root.json of the publisher who made it (if you trust them), "
        "or get this publisher's editions from its own mirrors."
    )


class IncompleteEditionError(VerificationError):
    """Not a whole edition: empty, cut short in the download, or not an edition at all."""

    exit_code = 16
    verdict = "incomplete"
    default_hint = "Download it again, or get it from another mirror or person, then verify it."


EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "ok"),
    (1, "internal error"),
    (UsageError.exit_code, "usage"),
    (ConfigError.exit_code, "config"),
    (StorageError.exit_code, "file system"),
    (KeyStoreError.exit_code, "keys"),
    (SourceError.exit_code, "sources"),
    (TransportError.exit_code, "network"),
    (QuorumError.exit_code, "quorum"),
    (HistoryConflictError.exit_code, "history conflict"),
    (TamperedError.exit_code, "tampered"),
    (ExpiredError.exit_code, "expired"),
    (NotYetValidError.exit_code, "not yet valid"),
    (RollbackError.exit_code, "rollback"),
    (UnsafeArchiveError.exit_code, "unsafe archive"),
    (ForeignEditionError.exit_code, "another publisher's"),
    (IncompleteEditionError.exit_code, "incomplete or not an edition"),
    (130, "interrupted"),
)
"""Every exit code a command can end with, and its word (docs/exit-codes.md explains each)."""
