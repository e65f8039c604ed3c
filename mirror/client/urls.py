"""A mirror's address: read once, written one way, shown without its password.

A reader types mirror addresses by hand, copies them out of messages, or
gets them from the signed mirror list; `mirror_url` is where any of them
becomes the one form the rest of the code compares and fetches
(``scheme://host/path/``, scheme and host in lower case). An address may
carry a user and password for a private mirror (``https://user:pw@host/``);
`shown` is that address as it may be printed, logged or stored in the
reader's state, and `scrubbed` removes it from any text (an error detail)
that might quote it.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from mirror.errors import UsageError

SCHEMES = ("http", "https", "file")
"""The schemes a mirror can be read over."""

_MIN_SCRUBBED = 4
"""A password shorter than this is not searched for on its own (it would blank out words)."""


def mirror_url(text: str) -> str:
    """``text`` as a mirror's root URL ending in "/", or `UsageError` naming what is wrong."""
    value = text.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        raise UsageError(
            f"{shown(value)!r} is not a mirror address ({error})",
            hint="Give it as https://host/path/ (or file:///folder/ for a local copy).",
        ) from error
    if parts.scheme.lower() not in SCHEMES:
        what = f"its scheme is {parts.scheme!r}" if parts.scheme else "it has no scheme"
        raise UsageError(
            f"{shown(value)!r} is not a mirror address: {what}",
            hint="Give it as https://host/path/ (or file:///folder/ for a local copy).",
        )
    if parts.scheme.lower() != "file" and not parts.hostname:
        raise UsageError(
            f"{shown(value)!r} is not a mirror address: it names no host",
            hint="Give it as https://host/path/.",
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme.lower(), _lowercase_host(parts), path, parts.query, ""))


def is_mirror_url(text: str) -> bool:
    """Whether ``text`` reads as a mirror address at all."""
    try:
        mirror_url(text)
    except UsageError:
        return False
    return True


def shown(url: str) -> str:
    """``url`` with any password (and user) replaced by ``***``: safe to print or store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def scrubbed(text: str, url: str) -> str:
    """``text`` with the credentials of ``url`` (as written, or percent-decoded) removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    if "@" not in parts.netloc:
        return text
    userinfo = parts.netloc.rsplit("@", 1)[0]
    secrets = {userinfo, unquote(userinfo)}
    if parts.password is not None and len(parts.password) >= _MIN_SCRUBBED:
        secrets |= {parts.password, unquote(parts.password)}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _lowercase_host(parts: SplitResult) -> str:
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        return f"{userinfo}@{host.lower()}"
    return parts.netloc.lower()
