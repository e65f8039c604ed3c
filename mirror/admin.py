"""What an admin does with mirrors: probe them, list them, add one to the config file.

`probe_mirror` checks a mirror the way a push would use it — reach the
server, authenticate, write a small probe file, read it back, delete it —
and then fetches ``metadata/timestamp.json`` through the public URL the way
a reader would. `add_mirror` appends a new entry to the YAML file with
ruamel.yaml's round-trip mode, so the admin's comments and layout stay, and
only after the new entry passed the same validation as the whole file.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from mirror import fsutil
from mirror.config import Config, MirrorSettings, load_config
from mirror.errors import ConfigError, MirrorError
from mirror.fetcher import MirrorFetcher
from mirror.publish import create_backend

PROBE_PREFIX = ".mirror-probe-"


@dataclass(frozen=True)
class ProbeResult:
    """One mirror's probe."""

    mirror: str
    type: str
    writable: bool
    public: bool
    seconds: float
    detail: str

    def as_json(self) -> dict[str, Any]:
        """For --json."""
        return {
            "mirror": self.mirror,
            "type": self.type,
            "writable": self.writable,
            "public": self.public,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


async def probe_mirror(config: Config, mirror: MirrorSettings) -> ProbeResult:
    """Write, read back and delete a probe file; then read the public timestamp."""
    started = time.monotonic()
    writable, details = False, []
    path = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
    payload = f"mirror probe {path}\n".encode()
    try:
        backend = create_backend(config, mirror)
        try:
            await backend.put(path, payload, size=len(payload))
            await backend.flush()
            if await backend.get(path, max_bytes=1024) != payload:
                raise MirrorError("the probe file read back differs from what was written")
            await backend.delete(path)
            await backend.flush()
            writable = True
            details.append("write, read and delete work")
        finally:
            await backend.close()
    except MirrorError as error:
        details.append(f"{error.verdict}: {error.message}")
    public, public_detail = await asyncio.to_thread(_public_timestamp, mirror.public_url)
    details.append(public_detail)
    return ProbeResult(
        mirror=mirror.name,
        type=mirror.type,
        writable=writable,
        public=public,
        seconds=time.monotonic() - started,
        detail="; ".join(details),
    )


def _public_timestamp(public_url: str) -> tuple[bool, str]:
    """Fetch the public timestamp like a reader (bounded); say what it is."""
    fetcher = MirrorFetcher(connect_timeout_s=10, read_timeout_s=10, download_budget_s=20)
    try:
        data = fetcher.download_bytes(f"{public_url}metadata/timestamp.json", 64 * 1024)
    except Exception as error:  # any fetch failure is an answer here, not a crash
        status = getattr(error, "status_code", None)
        if status == 404:
            return True, "public URL reachable, nothing published yet"
        return False, f"public URL not readable ({error.__class__.__name__})"
    finally:
        fetcher.close()
    try:
        version = json.loads(data)["signed"]["version"]
    except (ValueError, KeyError, TypeError):
        return True, "public URL serves an unreadable timestamp.json"
    return True, f"public URL serves timestamp version {version}"


async def probe_all(config: Config) -> list[ProbeResult]:
    """Probe every configured mirror at once."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(probe_mirror(config, m)) for m in config.mirrors]
    return [task.result() for task in tasks]


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def add_mirror(config_path: Path, entry: dict[str, Any]) -> MirrorSettings:
    """Append ``entry`` to the ``mirrors:`` list of ``config_path``, keeping comments.

    The whole file with the new entry is validated with the normal loader
    before anything is written; the write is atomic.
    """
    yaml = _round_trip()
    original = fsutil.read_bounded(config_path, max_bytes=1024 * 1024, what="config file")
    document = yaml.load(original.decode("utf-8"))
    if not isinstance(document, CommentedMap):
        raise ConfigError(f"{config_path}: the top level must be a mapping")
    mirrors = document.get("mirrors")
    if mirrors is None:
        mirrors = CommentedSeq()
        document["mirrors"] = mirrors
    if not isinstance(mirrors, CommentedSeq):
        raise ConfigError(f"{config_path}: mirrors must be a list")
    if any(isinstance(m, dict) and m.get("name") == entry["name"] for m in mirrors):
        raise ConfigError(
            f"{config_path}: a mirror called {entry['name']!r} exists already",
            hint="Pick another name, or edit the existing entry.",
        )
    mirrors.append(CommentedMap(entry))
    text = io.StringIO()
    yaml.dump(document, text)
    candidate = config_path.with_name(f".{config_path.name}.candidate")
    try:
        fsutil.atomic_write_bytes(candidate, text.getvalue().encode("utf-8"))
        try:  # validate the new entry, and the file as a whole, with the normal loader
            new_config = load_config(candidate)
        except ConfigError as error:
            raise ConfigError(
                error.message.replace(str(candidate), str(config_path)), hint=error.hint
            ) from error
        added = next(m for m in new_config.mirrors if m.name == entry["name"])
        fsutil.atomic_write_bytes(config_path, text.getvalue().encode("utf-8"))
    finally:
        candidate.unlink(missing_ok=True)
    return added


def parse_settings_arguments(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` command-line pairs as a settings mapping (numbers and booleans typed)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"{pair!r} is not KEY=VALUE", hint="For example: --set url=https://dav.example/"
            )
        parsed: Any = value
        if value.isdigit():
            parsed = int(value)
        elif value in ("true", "false"):
            parsed = value == "true"
        result[key] = parsed
    return result
