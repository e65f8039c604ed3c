"""What an admin does with mirrors: probe them, list them, add one to the config file.

`probe_mirror` checks a mirror the way a push would use it — reach the
server, authenticate, write a small probe file, read it back, delete it —
and then reads the mirror through its public URL with the reader view
(`mirror.client.view.MirrorView`), from the publish tree's first root, the
way a reader would. `add_mirror` appends a new entry to the YAML file with
ruamel.yaml's round-trip mode, so the admin's comments and layout stay, and
only after the new entry passed the same validation as the whole file.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from mirror import fsutil, publish_tree
from mirror.client.classify import classify
from mirror.client.transport import DeadlineFetcher
from mirror.client.view import MirrorView
from mirror.config import Config, MirrorSettings, load_config
from mirror.errors import ConfigError, MirrorError
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
    public, public_detail = await asyncio.to_thread(
        _public_view, mirror.public_url, _bootstrap_root(config)
    )
    details.append(public_detail)
    return ProbeResult(
        mirror=mirror.name,
        type=mirror.type,
        writable=writable,
        public=public,
        seconds=time.monotonic() - started,
        detail="; ".join(details),
    )


def _public_view(public_url: str, bootstrap_root: bytes | None) -> tuple[bool, str]:
    """Read the mirror through its public URL as a reader would; (readable, what it serves)."""
    fetcher = DeadlineFetcher(connect_timeout_s=10, read_timeout_s=10, download_budget_s=20)
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-check-") as folder:
            view = MirrorView(public_url, Path(folder), fetcher, bootstrap=bootstrap_root)
            if not view.publishes_anything():
                return True, "public URL reachable, nothing published yet"
            if bootstrap_root is None:
                return True, "public URL serves a timestamp.json (nothing built here to check)"
            survey = view.survey()
    except Exception as error:  # any failure is this mirror's answer here, not a crash
        verdict, detail = classify(error)
        return False, f"public URL {verdict}: {detail}"
    finally:
        fetcher.close()
    return True, (
        f"public URL serves edition {survey.edition.eid} "
        f"(timestamp version {survey.served.timestamp_version}), verified"
    )


def _bootstrap_root(config: Config) -> bytes | None:
    """The publish tree's first root, if anything was built yet."""
    if not publish_tree.root_path(config.publish_dir, 1).is_file():
        return None
    return publish_tree.first_root(config.publish_dir)


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
