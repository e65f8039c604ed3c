"""How commands print: JSON documents for machines, wide rich tables for people.

Names from outside (article files, feed links, member names, paths) are
printed through `mirror.text.shown` (re-exported here as `shown`), and JSON
through `mirror.text.json_shown`, so no control character reaches the terminal.

rich is imported only when a table is printed: tables are the publisher's
(``mirrors list``, ``status``, ``config check``), and the reader-only install
has no rich (docs/adr/0017-reader-only-install.md).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from mirror.text import json_shown, shown

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["print_json", "print_table", "shown"]


def print_json(document: dict[str, Any]) -> None:
    """One indented JSON document on stdout (UTF-8 text kept as is)."""
    print(json_shown(json.dumps(document, indent=2, ensure_ascii=False, default=str)))


def print_table(table: Table, *, min_width: int) -> None:
    """A rich table on stdout, at least ``min_width`` columns wide (no wrapping in logs)."""
    from rich.console import Console  # noqa: PLC0415 - publisher commands only (see above)

    Console(width=max(min_width, Console().width)).print(table)
    sys.stdout.flush()
