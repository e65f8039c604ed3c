"""`mirror mirrors list|add|remove|enable|disable`: the configured mirrors, edited in place."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from mirror.cli import config_file
from mirror.cli.output import print_json, print_table
from mirror.config_edit import add_mirror, parse_settings_arguments, remove_mirror, set_enabled
from mirror.mirror_states import load_mirror_states


def list_mirrors(args: argparse.Namespace) -> int:
    """Every configured mirror with its last known state."""
    config = config_file.load(args)
    states = load_mirror_states(config.output.mirror_states)
    rows = []
    for m in config.mirrors:
        state = states.get(m.name, {})
        rows.append(
            {
                "mirror": m.name,
                "type": m.type,
                "public_url": m.public_url,
                "announce": m.announce,
                "enabled": m.enabled,
                "tags": list(m.tags),
                "last_run": state.get("when"),
                "last_status": _last_status(state),
                "last_error": state.get("error"),
            }
        )
    if args.json:
        print_json({"mirrors": rows})
        return 0
    table = Table(title=f"mirrors in {config.file}")
    for column in ("mirror", "type", "public URL", "listed", "enabled", "last run", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["mirror"],
            row["type"],
            row["public_url"],
            "yes" if row["announce"] else "secret",
            "yes" if row["enabled"] else "no",
            row["last_run"] or "never",
            row["last_status"] + (f" — {row['last_error']}" if row["last_error"] else ""),
        )
    print_table(table, min_width=120)
    return 0


def _last_status(state: dict[str, Any]) -> str:
    if not state:
        return "never pushed"
    if state.get("error"):
        return f"failed ({state.get('error_kind')})"
    return "verified" if state.get("verified") else "pushed"


def add(args: argparse.Namespace) -> int:
    """Append a validated mirror entry to the config file, keeping its comments."""
    entry: dict[str, Any] = {
        "name": args.name,
        "type": args.type,
        "public_url": args.public_url,
    }
    if args.secret:
        entry["announce"] = False
    if args.tag:
        entry["tags"] = list(args.tag)
    entry[args.type] = parse_settings_arguments(args.set or [])
    path = config_file.config_path(args)
    added = add_mirror(path, entry)
    listed = "listed in the signed mirror list" if added.announce else "kept secret"
    print(f"Added mirror {added.name} ({added.type}, {listed}) to {path}")
    print("Run `mirror config check` to probe it.")
    return 0


def remove(args: argparse.Namespace) -> int:
    """Delete a mirror's entry from the config file, keeping its comments."""
    path = config_file.config_path(args)
    remove_mirror(path, args.name)
    print(f"Removed mirror {args.name} from {path}")
    print(
        "Nothing on the mirror itself was deleted; the next edition's signed mirror list "
        "no longer names it."
    )
    return 0


def enable(args: argparse.Namespace) -> int:
    """Push to a disabled mirror again (and list it, if it is announced)."""
    return _set_enabled(args, enabled=True)


def disable(args: argparse.Namespace) -> int:
    """Stop pushing to a mirror, and leave it out of the signed mirror list."""
    return _set_enabled(args, enabled=False)


def _set_enabled(args: argparse.Namespace, *, enabled: bool) -> int:
    path = config_file.config_path(args)
    changed = set_enabled(path, args.name, enabled=enabled)
    state = "enabled" if changed.enabled else "disabled"
    print(f"Mirror {changed.name} is {state} in {path}")
    return 0
