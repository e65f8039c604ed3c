"""The two clocks of mirror: the publisher's (reproducible) and the reader's (always real)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from mirror.errors import UsageError


def publisher_now() -> datetime:
    """The time a build signs: ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        if not epoch.isdigit():
            raise UsageError(
                "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970",
                hint="Unset it or set it to e.g. $(git log -1 --format=%ct).",
            )
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return reader_now()


def reader_now() -> datetime:
    """The reader's clock: always the real time (SOURCE_DATE_EPOCH is for builds only)."""
    return datetime.now(UTC).replace(microsecond=0)
