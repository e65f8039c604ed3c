"""The last build's verdict, remembered with what it was reached from.

`mirror sync` runs on a timer every few minutes, and almost every run finds
that nothing changed. Finding that out the long way reads the publish
tree's metadata, the build cache's entry for every article and the newest
edition's member list: about 2 s at 10,000 articles. The memo answers it
from one walk of the inputs' file metadata instead (docs/adr/0022):

- `Inputs.read`, before a build reads anything, digests what a build reads:
  the configuration, the key store, every file and folder of every source
  folder (name, type, size, mtime, ctime, inode; links as links and as what
  they point to), mirror's own code and the versions of the libraries pages
  depend on;
- `remember`, after a build or an unchanged verdict, stores that digest with
  the verdict (the newest edition, the articles skipped), a digest of the
  outputs as the build left them (the publish tree's metadata, the editions
  and latest folders) and the moment the verdict stops holding
  (``valid_until``: the next timestamp re-signing or edition renewal);
- `recall` gives the verdict back only when both digests are the same now,
  the moment has not come, and no input changed within the build cache's
  racy window of the digest (`buildcache.changed_lately`: a file written
  again within the file system's clock granularity keeps its times; Git
  calls such an entry racily clean).

The same walk names the source files changed since the last verdict
(`Inputs.changed`), so a build with a new article need not predict first.

A feed source is known only by fetching it, so with one there is no memo;
nor with a missing, damaged or foreign one. The memo only skips work whose
result it recorded; it decides nothing a build would not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import mirror
from mirror import fsutil
from mirror.buildcache import changed_lately, library_versions
from mirror.config import Config, DirectorySource

MEMO_MAX_BYTES = 4 * 1024 * 1024
"""Largest memo read back (it holds the skipped articles' reasons)."""
FORMAT = 1


@dataclass(frozen=True)
class Inputs:
    """What a build is about to read, as one digest (see the module docstring)."""

    digest: str
    newest_change_ns: int
    """The latest mtime or ctime seen among the inputs."""
    read_at_ns: int
    changed: frozenset[tuple[int, str]] | None = None
    """(source index, relative path) of each source file changed since the last verdict's
    inputs were read (None without one): where a build looks first for what is new."""
    previous: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The memo as it was read with these inputs (`recall` judges it)."""

    @classmethod
    def read(cls, config: Config) -> Inputs | None:
        """The inputs of ``config`` now; None when they cannot be known without a build."""
        folders = [s.path for s in config.sources if isinstance(s, DirectorySource)]
        if len(folders) != len(config.sources):
            return None
        read_at_ns = time.time_ns()
        previous = _load(config.output.build_verdict)
        since = previous.get("newest_change_ns") if previous is not None else None
        walk = _Walk(changed_after_ns=since if isinstance(since, int) else None)
        walk.text("format", str(FORMAT))
        walk.text("config", repr(config))
        walk.text("python", sys.version)
        walk.text("libraries", json.dumps(library_versions(), sort_keys=True))
        walk.tree("mirror", Path(mirror.__file__).parent, skip=("__pycache__",))
        walk.tree("keys", config.keys.dir)
        changed: set[tuple[int, str]] = set()
        for index, folder in enumerate(folders):
            walk.tree(f"source {index}", folder, changed=changed, tag=index)
        found = None if walk.changed_after_ns is None else frozenset(changed)
        return cls(walk.hexdigest(), walk.newest_ns, read_at_ns, found, previous)


@dataclass(frozen=True)
class Verdict:
    """A remembered unchanged verdict: the newest edition stands."""

    eid: str
    problems: tuple[tuple[str, str], ...]
    """(source, reason) of each article the build left out."""
    renew_at: datetime
    """When the edition must be signed again although nothing changed."""


def outputs_digest(config: Config) -> str:
    """The publish tree's metadata and the editions and latest folders, as they are now."""
    walk = _Walk()
    walk.tree("metadata", config.publish_dir / "metadata")
    walk.tree("editions", config.editions_dir)
    walk.tree("latest", config.output.latest_dir)
    return walk.hexdigest()


def recall(config: Config, inputs: Inputs | None, *, now: datetime) -> Verdict | None:
    """The remembered verdict, if it holds for ``inputs`` and the outputs as they are now."""
    if inputs is None or inputs.previous is None:
        return None
    memo = inputs.previous
    try:
        holds = (
            memo["format"] == FORMAT
            and memo["inputs"] == inputs.digest
            and not changed_lately(memo["newest_change_ns"], memo["read_at_ns"])
            and now < datetime.fromisoformat(memo["valid_until"])
            and memo["outputs"] == outputs_digest(config)
        )
        if not holds:
            return None
        problems = tuple((str(source), str(reason)) for source, reason in memo["problems"])
        renew_at = datetime.fromisoformat(memo["renew_at"])
        return Verdict(str(memo["eid"]), problems, renew_at)
    except (KeyError, TypeError, ValueError):
        return None  # another shape: a build finds out


def remember(
    config: Config, inputs: Inputs | None, verdict: Verdict, *, valid_until: datetime
) -> None:
    """Store ``verdict``, reached from ``inputs``, for the outputs as they are now."""
    path = config.output.build_verdict
    if inputs is None:
        forget(config)
        return
    memo = {
        "format": FORMAT,
        "inputs": inputs.digest,
        "newest_change_ns": inputs.newest_change_ns,
        "read_at_ns": inputs.read_at_ns,
        "outputs": outputs_digest(config),
        "valid_until": valid_until.isoformat(),
        "eid": verdict.eid,
        "renew_at": verdict.renew_at.isoformat(),
        "problems": [list(problem) for problem in verdict.problems],
    }
    try:
        fsutil.ensure_dir(path.parent)
        fsutil.atomic_write_bytes(path, json.dumps(memo, ensure_ascii=False).encode("utf-8"))
    except OSError:
        forget(config)  # only a shortcut: the next build finds out the long way


def forget(config: Config) -> None:
    """Drop the memo (a build that made a new edition, or could not tell)."""
    with contextlib.suppress(OSError):
        (config.output.build_verdict).unlink(missing_ok=True)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MEMO_MAX_BYTES + 1)
        document = json.loads(data) if len(data) <= MEMO_MAX_BYTES else None
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


class _Walk:
    """A running digest of named texts and of file trees' metadata."""

    def __init__(self, *, changed_after_ns: int | None = None) -> None:
        self._digest = hashlib.sha256()
        self.newest_ns = 0
        self.changed_after_ns = changed_after_ns

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def text(self, name: str, value: str) -> None:
        self._line(name, value)

    def tree(
        self,
        name: str,
        root: Path,
        *,
        skip: Iterable[str] = (),
        changed: set[tuple[int, str]] | None = None,
        tag: int = 0,
    ) -> None:
        """Every entry under ``root`` (links not followed into), in a stable order; files
        changed after ``changed_after_ns`` go into ``changed`` as (``tag``, relative path)."""
        self._line("tree", name)
        skipped = set(skip)
        pending = [(root, "")]
        while pending:
            folder, shown = pending.pop()
            self._entry(shown or ".", folder)
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except FileNotFoundError:
                continue
            except OSError as error:
                self._line("unreadable", f"{shown} {error.errno}")
                continue
            for entry in entries:
                relative = f"{shown}/{entry.name}" if shown else entry.name
                if entry.name in skipped:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), relative))
                else:
                    changed_at = self._entry(relative, Path(entry.path))
                    after = self.changed_after_ns
                    if changed is not None and after is not None and changed_at > after:
                        changed.add((tag, relative))

    def _entry(self, relative: str, path: Path) -> int:
        """Digest one entry; return when it last changed (0 if it cannot be read)."""
        try:
            info = path.lstat()
        except OSError as error:
            self._line("gone", f"{relative} {error.errno}")
            return 0
        self._stat(relative, info)
        changed_at = max(info.st_mtime_ns, info.st_ctime_ns)
        if stat.S_ISLNK(info.st_mode):
            try:
                target = path.stat()
            except OSError as error:
                self._line("dangling", f"{relative} {error.errno}")
            else:
                self._stat(f"{relative} ->", target)
                changed_at = max(changed_at, target.st_mtime_ns, target.st_ctime_ns)
        return changed_at

    def _stat(self, relative: str, info: os.stat_result) -> None:
        self.newest_ns = max(self.newest_ns, info.st_mtime_ns, info.st_ctime_ns)
        self._line(
            relative,
            f"{info.st_mode:o} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} "
            f"{info.st_ino} {info.st_dev}",
        )

    def _line(self, name: str, value: str) -> None:
        self._digest.update(f"{len(name)}:{name}={value}\n".encode("utf-8", "surrogateescape"))
