"""The retry policy as a unit: which errors, how many attempts, how long between them.

Sleeps are injected (recorded, never slept), so these tests take no time and
say exactly what the pipeline would wait.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence

import pytest

from mirror.errors import (
    MirrorAuthError,
    MirrorError,
    MirrorNotFoundError,
    OversizeError,
    ServerBusyError,
    StorageError,
    TamperedError,
    TransportError,
)
from mirror.retry import RetryPolicy, retryable, with_retries


def run(
    failures: Sequence[MirrorError], policy: RetryPolicy, *, seed: int | None = 1
) -> tuple[str | MirrorError, int, list[float]]:
    """Call something that fails with ``failures`` in turn, then succeeds.

    The jitter comes from ``random.Random(seed)``, or with no seed from the default.

    Returns (the result or the error raised, calls made, sleeps asked for).
    """
    calls = 0
    sleeps: list[float] = []

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls <= len(failures):
            raise failures[calls - 1]
        return "done"

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    retried: list[float] = []

    def on_retry(error: TransportError, wait_s: float) -> None:
        retried.append(wait_s)

    try:
        result: str | MirrorError = asyncio.run(
            with_retries(call, policy, on_retry=on_retry, sleep=sleep, rng=_generator(seed))
        )
    except MirrorError as error:
        result = error
    assert retried == sleeps  # every wait is reported before it is slept
    return result, calls, sleeps


def _generator(seed: int | None) -> random.Random | None:
    return None if seed is None else random.Random(seed)  # noqa: S311 - jitter


def test_transient_failures_are_retried_with_growing_full_jitter() -> None:
    policy = RetryPolicy(retries=4, base_delay_s=0.5, max_delay_s=30)
    result, calls, sleeps = run([TransportError("reset")] * 4, policy)
    assert result == "done"
    assert calls == 5
    assert len(sleeps) == 4
    for attempt, waited in enumerate(sleeps):
        assert 0 <= waited <= 0.5 * 2**attempt


def test_the_last_error_is_raised_when_the_attempts_run_out() -> None:
    last = TransportError("still down")
    result, calls, sleeps = run([TransportError("down")] * 3 + [last], RetryPolicy(retries=3))
    assert result is last
    assert calls == 4
    assert len(sleeps) == 3


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(retries=12, base_delay_s=1, max_delay_s=5)
    _, _, sleeps = run([TransportError("x")] * 12, policy, seed=7)
    assert max(sleeps) <= 5


def test_retry_after_is_honoured_exactly_and_capped() -> None:
    policy = RetryPolicy(retries=3, max_retry_after_s=60)
    busy = [
        ServerBusyError("busy", retry_after_s=7),
        ServerBusyError("busy", retry_after_s=0),
        ServerBusyError("busy", retry_after_s=3600),
    ]
    result, _, sleeps = run(busy, policy)
    assert result == "done"
    assert sleeps == [7.0, 0.0, 60.0]


def test_busy_without_retry_after_backs_off_like_any_transport_error() -> None:
    _, _, sleeps = run([ServerBusyError("busy", retry_after_s=None)], RetryPolicy(base_delay_s=2))
    assert 0 <= sleeps[0] <= 2


@pytest.mark.parametrize(
    "error",
    [
        MirrorAuthError("wrong password"),
        MirrorNotFoundError("no such file"),
        TamperedError("bad hash"),
        OversizeError("too long"),
        StorageError("disk full"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_no_retry_can_mend_is_tried_once(error: MirrorError) -> None:
    assert not retryable(error)
    result, calls, sleeps = run([error], RetryPolicy(retries=5))
    assert result is error
    assert calls == 1
    assert sleeps == []


def test_zero_retries_means_one_attempt() -> None:
    failure = TransportError("x")
    result, calls, sleeps = run([failure], RetryPolicy(retries=0))
    assert (result, calls, sleeps) == (failure, 1, [])


def test_cancellation_is_never_swallowed() -> None:
    async def cancelled() -> str:
        raise asyncio.CancelledError

    async def no_sleep(_: float) -> None:
        raise AssertionError("a cancelled call must not be retried")

    call: Callable[[], Awaitable[str]] = cancelled
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(with_retries(call, RetryPolicy(retries=3), sleep=no_sleep))


def test_calls_that_succeed_seed_no_generator_and_retries_share_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seeding a generator per call read the OS's entropy once per uploaded file."""
    made: list[random.Random] = []

    class Counted(random.Random):
        def __init__(self, seed: int | None = None) -> None:
            made.append(self)
            super().__init__(seed)

    monkeypatch.setattr(random, "Random", Counted)  # what `mirror.retry` would call

    async def ok() -> str:
        return "done"

    async def many() -> None:
        for _ in range(500):
            assert await with_retries(ok, RetryPolicy()) == "done"

    asyncio.run(many())
    assert made == []
    # A call that fails draws its jitter from the one shared generator, in bounds.
    result, calls, sleeps = run(
        [TransportError("reset")] * 3, RetryPolicy(base_delay_s=1), seed=None
    )
    assert (result, calls, made) == ("done", 4, [])
    assert all(0 <= waited <= 2**attempt for attempt, waited in enumerate(sleeps))
