"""When unchanged content must still become a new edition (`renewal_due`), and the one
half-life rule it shares with the timestamp (`past_half_life`)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import pytest

from mirror.trust import layout
from mirror.trust.repository import (
    ExpiryPolicy,
    RepositoryState,
    SignedRole,
    past_half_life,
    renewal_due,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = ExpiryPolicy(edition_days=30, snapshot_days=20)


def role(name: str, expires: datetime) -> SignedRole:
    return SignedRole(name, zlib.compress(b"{}"), 1, expires, frozenset({"k"}))


def state(*editions: tuple[str, datetime], snapshot: datetime | None) -> RepositoryState:
    roles = {layout.edition_role(eid): role(layout.edition_role(eid), e) for eid, e in editions}
    roles["targets"] = role("targets", NOW + timedelta(days=365))
    return RepositoryState(roles=roles, snapshot_version=3, snapshot_expires=snapshot)


def test_nothing_to_renew_before_the_first_edition() -> None:
    assert renewal_due(RepositoryState(), now=NOW, policy=POLICY) is None


def test_fresh_edition_and_snapshot_need_nothing() -> None:
    fresh = state(("2026-11-30-v4", NOW + timedelta(days=29)), snapshot=NOW + timedelta(days=19))
    assert renewal_due(fresh, now=NOW, policy=POLICY) is None


@pytest.mark.parametrize(
    ("edition_left", "snapshot_left", "named"),
    [
        (timedelta(days=15), timedelta(days=19), "edition 2026-11-30-v4"),  # exactly half
        (timedelta(days=1), timedelta(days=19), "edition 2026-11-30-v4"),
        (-timedelta(days=3), timedelta(days=19), "edition 2026-11-30-v4"),  # expired already
        (timedelta(days=29), timedelta(days=10), "the snapshot"),
        (timedelta(days=29), -timedelta(seconds=1), "the snapshot"),
    ],
)
def test_past_half_its_lifetime_the_same_content_is_signed_again(
    edition_left: timedelta, snapshot_left: timedelta, named: str
) -> None:
    due = state(("2026-11-30-v4", NOW + edition_left), snapshot=NOW + snapshot_left)
    reason = renewal_due(due, now=NOW, policy=POLICY)
    assert reason is not None
    assert reason.startswith(named)


def test_only_the_newest_edition_counts() -> None:
    """An older edition kept by retention expires on its own; readers of today get the newest."""
    kept = state(
        ("2026-10-01-v2", NOW - timedelta(days=30)),
        ("2026-11-30-v10", NOW + timedelta(days=29)),  # v10 sorts after v2 by version
        snapshot=NOW + timedelta(days=19),
    )
    assert renewal_due(kept, now=NOW, policy=POLICY) is None


def test_the_half_life_rule() -> None:
    week = timedelta(days=7)
    assert not past_half_life(NOW + timedelta(days=4), now=NOW, lifetime=week)
    assert past_half_life(NOW + timedelta(days=3.5), now=NOW, lifetime=week)
    assert past_half_life(NOW - timedelta(days=1), now=NOW, lifetime=week)
