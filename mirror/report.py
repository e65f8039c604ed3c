"""The push report: a table or plain lines for people, a JSON file for machines.

On a terminal, progress is shown with rich progress bars; under cron or
systemd (no terminal) each event is one plain line. Nothing here ever
prints a secret: results carry only names, counts and error sentences.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from mirror import fsutil
from mirror.publish import PushResult


def _status(result: PushResult) -> str:
    if result.error is not None:
        return f"FAILED ({result.error_kind})"
    if result.verified:
        return "verified"
    if result.pushed:
        return "pushed"
    return "planned"


class PlainProgress:
    """One line per event, for logs."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def mirror_planned(self, mirror: str, files: int, size: int) -> None:
        """Inventory done."""
        print(f"{mirror}: {files} files to upload ({size:,} bytes)", file=self.stream, flush=True)

    def file_uploaded(self, mirror: str, size: int) -> None:
        """Too chatty for logs: nothing per file."""

    def mirror_done(self, result: PushResult) -> None:
        """Nothing here: the summary is printed once, at the end (`print_plain`)."""


def summary_line(result: PushResult) -> str:
    """One line saying what happened on one mirror."""
    line = (
        f"{result.mirror}: {_status(result)}; uploaded {result.uploaded_files} files "
        f"({result.uploaded_bytes:,} bytes), skipped {result.skipped_files}, "
        f"{result.retries} retries, {result.seconds:.1f} s"
    )
    if result.error:
        line += f" — {result.error}"
    return line


class BarProgress:
    """rich progress bars, one per mirror."""

    def __init__(self, console: Console) -> None:
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BarProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def mirror_planned(self, mirror: str, files: int, size: int) -> None:
        """A bar sized to the bytes to upload."""
        self.tasks[mirror] = self.bars.add_task(f"{mirror} ({files} files)", total=size or 1)

    def file_uploaded(self, mirror: str, size: int) -> None:
        """Advance the mirror's bar."""
        if mirror in self.tasks:
            self.bars.advance(self.tasks[mirror], size)

    def mirror_done(self, result: PushResult) -> None:
        """Complete the bar."""
        task = self.tasks.get(result.mirror)
        if task is not None:
            self.bars.update(task, completed=self.bars.tasks[task].total or 1)


def print_table(results: list[PushResult], console: Console) -> None:
    """The human summary."""
    table = Table(title="mirror push")
    for column in ("mirror", "type", "status", "uploaded", "skipped", "retries", "time", "reason"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(
            r.mirror,
            r.type,
            _status(r),
            f"{r.uploaded_files} files, {r.uploaded_bytes:,} B",
            f"{r.skipped_files} files",
            str(r.retries),
            f"{r.seconds:.1f} s",
            r.error or "",
        )
    console.print(table)


def plan_lines(result: PushResult, *, verbose: bool) -> list[str]:
    """What a dry run says about one mirror: the plan's counts (and with ``verbose``, files)."""
    plan = result.plan
    if plan is None:
        return [f"{result.mirror}: FAILED ({result.error_kind}) — {result.error}"]
    if plan.refused:
        return [f"{result.mirror}: REFUSED ({plan.judgement.standing.value}) — {result.error}"]
    lines = [
        f"{result.mirror}: would upload {len(plan.uploads)} files ({plan.upload_bytes:,} bytes)"
        f" and delete {len(plan.deletes)}; {plan.judgement.standing.value}: "
        f"{plan.judgement.reason}"
    ]
    if plan.retention_note:
        lines.append(f"  kept: {plan.retention_note}")
    if verbose:
        lines += [f"  {f.path}" for f in plan.uploads]
        lines += [f"  delete {path}" for path in plan.deletes]
    return lines


def print_plain(results: list[PushResult], stream: TextIO | None = None) -> None:
    """The summary as plain lines (no terminal); stdout unless ``stream`` is given."""
    for r in results:
        print(summary_line(r), file=stream or sys.stdout, flush=True)


def report_document(results: list[PushResult], **extra: Any) -> dict[str, Any]:
    """The JSON report."""
    return {**extra, "mirrors": [r.as_json() for r in results]}


def write_json_report(path: Path, document: dict[str, Any]) -> None:
    """Write the JSON report atomically, as it is encoded: the report of a first push of
    100,000 articles lists 120,000 files per mirror (a whole text of it took 60 MB)."""
    with fsutil.atomic_writer(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="\n")
        json.dump(document, text, indent=2, ensure_ascii=False, sort_keys=True)
        text.write("\n")
        text.flush()
        text.detach()  # the writer closes (and syncs) the file itself
