"""Who publishes: a name and a stable id, signed inside root metadata."""

from __future__ import annotations

from dataclasses import dataclass

from tuf.api.metadata import Root

PUBLISHER_FIELD = "x-mirror-publisher"
"""Field added to root metadata: the publisher's name and stable id (signed with root)."""


@dataclass(frozen=True)
class Publisher:
    """Who signs: a display name and a random id that stays the same across key rotations."""

    name: str
    publisher_id: str


def publisher_of(root: Root) -> Publisher:
    """Read the publisher name and id out of signed root metadata."""
    field = root.unrecognized_fields.get(PUBLISHER_FIELD)
    if (
        not isinstance(field, dict)
        or not isinstance(field.get("name"), str)
        or not isinstance(field.get("id"), str)
    ):
        return Publisher(name="unknown publisher", publisher_id="unknown")
    return Publisher(name=field["name"], publisher_id=field["id"])


def told_apart(first: Publisher, second: Publisher) -> tuple[str, str]:
    """Both publishers' names as a reader can tell them apart: with their ids when names match."""
    if first.name != second.name:
        return first.name, second.name
    return (
        f"{first.name} (id {first.publisher_id})",
        f"{second.name} (id {second.publisher_id})",
    )
