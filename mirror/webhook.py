"""Webhook alerts on mirror state changes, signed, sent once.

After each round of checks, each mirror/vantage point is compared with its
last known state, kept in ``<output>/state/monitor.json`` (written
atomically). An event is POSTed when:

* a mirror is seen for the first time and is not healthy (``unhealthy``),
* it goes from healthy to unhealthy (``unhealthy``) or back (``recovered``),
* it stays unhealthy but its verdict changes (``verdict-changed``).

The body is JSON ``{event, mirror, vantage_point, verdict, previous, detail,
time}``; header ``X-Mirror-Signature: sha256=<hex>`` is the HMAC-SHA256 of
the exact body bytes under the configured secret (a reference; the value is
never printed), so the receiver can reject forged alerts. Each POST has a
timeout and bounded retries with backoff. The stored state moves forward only
for events that were delivered (or need none), so a receiver that was down
gets the event on the next round, and a restart never resends one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mirror import fsutil, secrets
from mirror.config import WebhookSettings
from mirror.errors import MirrorError
from mirror.logs import log_event
from mirror.monitor import MirrorCheck

SIGNATURE_HEADER = "X-Mirror-Signature"
MAX_STATE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class StateChange:
    """One event to announce."""

    key: str
    body: dict[str, Any]


def _key(check: MirrorCheck) -> str:
    return f"{check.mirror}@{check.vantage_point}"


def load_state(path: Path) -> dict[str, dict[str, Any]]:
    """The last known state per ``mirror@vantage_point`` (empty if none or unreadable)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(fsutil.read_bounded(path, max_bytes=MAX_STATE_BYTES, what="state"))
    except (ValueError, MirrorError):
        return {}
    return data if isinstance(data, dict) else {}


def save_state(path: Path, state: dict[str, dict[str, Any]]) -> None:
    """Write the state atomically."""
    data = json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    fsutil.atomic_write_bytes(path, data.encode("utf-8"))


def changes(
    checks: Sequence[MirrorCheck], state: dict[str, dict[str, Any]]
) -> tuple[list[StateChange], dict[str, dict[str, Any]]]:
    """Events to send, and the new state of every mirror that needs no event."""
    events: list[StateChange] = []
    quiet: dict[str, dict[str, Any]] = {}
    for check in checks:
        key = _key(check)
        before = state.get(key)
        previous = before.get("verdict") if before else None
        record = {"verdict": check.verdict, "since": check.checked_at.isoformat()}
        if previous == check.verdict:
            continue
        if previous is None and check.healthy:
            quiet[key] = record  # first sight of a healthy mirror: nothing to announce
            continue
        if check.healthy:
            event = "recovered"
        elif previous is None or previous == "healthy":
            event = "unhealthy"
        else:
            event = "verdict-changed"
        events.append(
            StateChange(
                key,
                {
                    "event": event,
                    "mirror": check.mirror,
                    "vantage_point": check.vantage_point,
                    "verdict": check.verdict,
                    "previous": previous,
                    "detail": check.detail,
                    "time": check.checked_at.isoformat(),
                },
            )
        )
    return events, quiet


def signature(body: bytes, secret: secrets.Secret) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of ``body``, in hex."""
    return "sha256=" + hmac.new(secret.value, body, hashlib.sha256).hexdigest()


def post_event(
    settings: WebhookSettings,
    secret: secrets.Secret,
    document: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST one event with retries; True once a 2xx answer came back."""
    body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mirror-monitor",
        SIGNATURE_HEADER: signature(body, secret),
    }
    for attempt in range(settings.retries + 1):
        if attempt:
            sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        try:
            with httpx.Client(timeout=settings.timeout_s, follow_redirects=False) as client:
                response = client.post(settings.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            problem = error.__class__.__name__
        else:
            if 200 <= response.status_code < 300:
                return True
            problem = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                break  # the receiver refuses this event; retrying will not help
        log_event(
            "webhook.retry",
            f"webhook for {document['mirror']} failed: {problem}",
            mirror=document["mirror"],
            vantage_point=document["vantage_point"],
            attempt=attempt + 1,
            error_class=problem,
        )
    return False


def announce(
    checks: Sequence[MirrorCheck],
    *,
    state_file: Path,
    settings: WebhookSettings | None,
    secret: secrets.Secret | None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send one event per state change; update the stored state; return events delivered.

    Without a webhook configured, state changes are only logged (and recorded).
    """
    state = load_state(state_file)
    events, quiet = changes(checks, state)
    state.update(quiet)
    delivered = 0
    for change in events:
        body = change.body
        log_event(
            "mirror.state_changed",
            f"{body['mirror']} via {body['vantage_point']}: {body['previous']} -> "
            f"{body['verdict']}",
            mirror=body["mirror"],
            vantage_point=body["vantage_point"],
            verdict=body["verdict"],
            previous=body["previous"],
        )
        if settings is not None and secret is not None:
            if not post_event(settings, secret, body, sleep=sleep):
                log_event(
                    "webhook.failed",
                    f"webhook for {body['mirror']} not delivered; will retry next round",
                    mirror=body["mirror"],
                    vantage_point=body["vantage_point"],
                    error_class="webhook",
                )
                continue  # keep the old state: the event goes out next round
            delivered += 1
        state[change.key] = {"verdict": body["verdict"], "since": body["time"]}
    if events or quiet:
        save_state(state_file, state)
    return delivered
