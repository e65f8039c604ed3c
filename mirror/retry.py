"""Retries as an explicit policy: which errors, how many attempts, jitter, Retry-After.

Only `TransportError`s are retried, and of those not `MirrorAuthError`
(wrong credentials stay wrong) nor `MirrorNotFoundError`. Bad data is never
retried on the same mirror. The mirror's overall deadline is enforced by the
caller with `asyncio.timeout`; this module only spaces attempts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mirror.errors import MirrorAuthError, MirrorNotFoundError, TransportError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

JITTER = random.Random()  # noqa: S311 - jitter, not cryptography
"""The jitter of every retry that brings no generator of its own, seeded once per process.

Seeding one per call read the OS's entropy for every file a push uploaded (a fifth
of a local push's time), for a number only a failed call ever uses.
"""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, honouring a server's Retry-After."""

    retries: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, error: TransportError, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 0)."""
        retry_after = getattr(error, "retry_after_s", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return rng.uniform(0, ceiling)


def retryable(error: BaseException) -> bool:
    """True for transient transport failures only."""
    return isinstance(error, TransportError) and not isinstance(
        error, MirrorAuthError | MirrorNotFoundError
    )


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[TransportError, float], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``call``; retry transient failures per ``policy``; re-raise the last error.

    ``rng`` draws the jitter (tests pass a seeded one); by default the shared `JITTER`.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except TransportError as error:
            if not retryable(error) or attempt >= policy.retries:
                raise
            wait_s = policy.delay(attempt, error, rng or JITTER)
            if on_retry is not None:
                on_retry(error, wait_s)
            await sleep(wait_s)
            attempt += 1
