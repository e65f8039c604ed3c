"""`mirror build` on a timer: a new edition only when something changed.

A newsroom runs `mirror sync` every few minutes, and most runs find nothing
new. `build_or_refresh` is that step: a new edition when the content
changed (or when the newest one passes half its lifetime,
`mirror.trust.repository.renewal_due`), otherwise the newest edition
stands (`Unchanged`) and the timestamp is re-signed when due. When the
inputs are those of the last verdict, the verdict is recalled without a
build (`mirror.build_memo`); this module then loads nothing of the build
machinery, so an unchanged run costs a walk of the inputs' file metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mirror import build_memo, runlocks
from mirror.config import Config

if TYPE_CHECKING:
    from mirror.build import BuildResult
    from mirror.ingest.model import IngestProblem


@dataclass(frozen=True)
class BuildOptions:
    """How to build."""

    version: int | None = None
    force: bool = False


@dataclass(frozen=True)
class Unchanged:
    """No new edition: the content is what the newest edition already holds."""

    eid: str
    timestamp_refreshed: bool
    problems: tuple[IngestProblem, ...]
    renew_at: datetime | None = None
    """When the newest edition must be signed again although nothing changed."""


def build(config: Config, options: BuildOptions, *, now: datetime) -> BuildResult | Unchanged:
    """`mirror build`: a new edition (or a timestamp refresh) under the exclusive tree lock."""
    with runlocks.building(config.output):
        return build_or_refresh(config, now=now, version=options.version, force=options.force)


def build_or_refresh(
    config: Config, *, now: datetime, version: int | None = None, force: bool = False
) -> BuildResult | Unchanged:
    """A new edition if the content changed (or ``force``); otherwise keep the newest
    edition and re-sign the timestamp when half its lifetime is gone, so mirrors
    never serve an expired one between editions. The caller holds the tree lock."""
    inputs = build_memo.Inputs.read(config)  # before the build reads any of them
    known = None if force else build_memo.recall(config, inputs, now=now)
    if known is not None:
        return Unchanged(known.eid, False, _problems(known.problems), renew_at=known.renew_at)
    from mirror.build import build_edition  # noqa: PLC0415 - only when there is a build

    build_memo.forget(config)  # the outputs change from here on
    changed = () if inputs is None or inputs.changed is None else inputs.changed
    built = build_edition(config, now=now, version=version, force=force, changed=changed)
    if isinstance(built, Unchanged):
        built = replace(built, timestamp_refreshed=refresh_timestamp(config, now=now))
    _remember(config, inputs, built)
    return built


def refresh_timestamp(config: Config, *, now: datetime) -> bool:
    """Re-sign ``timestamp.json`` (same snapshot, new version and expiry) if half its
    lifetime has passed; return whether it did."""
    from mirror import publish_tree  # noqa: PLC0415 - the build machinery, loaded on use
    from mirror.keystore import load_keyring  # noqa: PLC0415
    from mirror.trust.repository import past_half_life, resign_timestamp  # noqa: PLC0415

    current = publish_tree.current_timestamp(config.publish_dir)
    if current is None:
        return False
    lifetime = timedelta(days=config.trust.timestamp_expires_days)
    if not past_half_life(current.signed.expires, now=now, lifetime=lifetime):
        return False
    keyring = load_keyring(config.keys.dir, config.passphrase())
    data = resign_timestamp(current, signer=keyring.signer("timestamp"), now=now, lifetime=lifetime)
    publish_tree.write_timestamp(config.publish_dir, data)
    return True


def _remember(
    config: Config, inputs: build_memo.Inputs | None, built: BuildResult | Unchanged
) -> None:
    """The verdict the next run with the same inputs reaches: the newest edition stands,
    until its timestamp or the edition itself is due to be signed again."""
    from mirror import publish_tree  # noqa: PLC0415
    from mirror.trust.repository import half_life  # noqa: PLC0415

    current = publish_tree.current_timestamp(config.publish_dir)
    if current is None or built.renew_at is None:
        build_memo.forget(config)
        return
    lifetime = timedelta(days=config.trust.timestamp_expires_days)
    refresh_at = half_life(current.signed.expires, lifetime=lifetime)
    problems = tuple((p.source, p.reason) for p in built.problems)
    build_memo.remember(
        config,
        inputs,
        build_memo.Verdict(built.eid, problems, built.renew_at),
        valid_until=min(refresh_at, built.renew_at),
    )


def _problems(remembered: tuple[tuple[str, str], ...]) -> tuple[IngestProblem, ...]:
    if not remembered:
        return ()
    from mirror.ingest.model import IngestProblem  # noqa: PLC0415 - rarely needed

    return tuple(IngestProblem(source, reason) for source, reason in remembered)
