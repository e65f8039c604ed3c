"""Operational logs: stdlib `logging`, as plain text or one JSON object per line.

``mirror --log-format json COMMAND`` (or ``MIRROR_LOG_FORMAT=json``) makes every
log record one JSON object on stderr, for journald, Loki or Kubernetes::

    {"time": "...", "level": "info", "event": "mirror.pushed", "mirror": "s3-eu",
     "edition": "2026-11-03-0007", "duration_s": 2.41, "error_class": null, ...}

Records carry structured fields through `log_event`; only names, counts,
verdicts and error sentences are ever passed, never a secret value (secrets
are `mirror.secrets.Secret` objects and proxy/webhook URLs are never logged,
only vantage point names).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from mirror.text import json_shown, shown

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOGGER_NAME = "mirror"
_FIELDS = "mirror_fields"
_SHOWN = "mirror_shown"


def logger() -> logging.Logger:
    """The package logger."""
    return logging.getLogger(LOGGER_NAME)


def log_event(
    event: str,
    message: str = "",
    *,
    level: int = logging.INFO,
    shown: bool = False,
    **fields: Any,
) -> None:
    """Log ``event`` with structured ``fields`` (names, numbers, verdicts — no secrets).

    ``shown``: the command already prints this to people (a push's summary
    line), so text logs leave it out and nothing is said twice; JSON logs
    keep every event.
    """
    logger().log(
        level, message or event, extra={_FIELDS: {"event": event, **fields}, _SHOWN: shown}
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record and line."""

    def format(self, record: logging.LogRecord) -> str:
        """``time``, ``level``, ``event``, ``message``, then the record's fields."""
        fields: dict[str, Any] = dict(getattr(record, _FIELDS, None) or {})
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "event": fields.pop("event", record.name),
            "message": record.getMessage(),
        }
        document.update(fields)
        return json_shown(json.dumps(document, ensure_ascii=False, default=str, sort_keys=False))


class TextFormatter(logging.Formatter):
    """``mirror: LEVEL event key=value ...`` (the human summary stays on stdout)."""

    def format(self, record: logging.LogRecord) -> str:
        """One line."""
        fields: dict[str, Any] = dict(getattr(record, _FIELDS, None) or {})
        event = fields.pop("event", "")
        pairs = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        text = record.getMessage()
        return shown(
            f"mirror: {record.levelname.lower()} {event}: {text}" + (f" ({pairs})" if pairs else "")
        )


def configure(log_format: LogFormat, *, stream: TextIO | None = None) -> None:
    """Send the package's records to stderr in ``log_format``.

    JSON logs are for machines and include every check and push (INFO);
    text logs show only warnings and errors, since the commands already print
    their human summary.
    """
    log = logger()
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    if log_format == "text":
        handler.addFilter(lambda record: not getattr(record, _SHOWN, False))
    log.addHandler(handler)
    log.setLevel(logging.INFO if log_format == "json" else logging.WARNING)
    log.propagate = False


def current_format() -> LogFormat:
    """The format `configure` set (text when it was never called)."""
    handlers = logger().handlers
    if handlers and isinstance(handlers[0].formatter, JsonFormatter):
        return "json"
    return "text"
