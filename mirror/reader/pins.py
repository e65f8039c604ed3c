"""Which publisher's root a reader command checks against: the one given, or the one pinned.

A reader pins a publisher once (`mirror trust add ROOT.json`, the root.json
they got out of band); later commands need no ``--root``: `mirror verify
FILE` takes the pinned root of the publisher the edition names (and then
checks the edition against it, so the name proves nothing by itself),
`mirror fetch` the only pinned publisher, or the one ``--publisher`` names.
Several publishers can be pinned side by side.
"""

from __future__ import annotations

from pathlib import Path

from tuf.api.metadata import Metadata, Root

from mirror import caps, fsutil
from mirror.edition import ArchiveLimits, EditionArchive
from mirror.errors import ForeignEditionError, UsageError
from mirror.reader.store import PublisherStore, ReaderStore
from mirror.reader.verify_file import load_pinned_root, trusted_root
from mirror.trust import layout
from mirror.trust.metadata import parse_metadata
from mirror.trust.publisher import Publisher, publisher_of, told_apart

PIN_HINT = "Pin the publisher once with `mirror trust add ROOT.json`, or pass --root ROOT.json."


def pin(store: ReaderStore, path: Path) -> tuple[PublisherStore, Publisher, bool]:
    """Pin the root at ``path``; (its publisher's store, the publisher, whether it was new)."""
    root = load_pinned_root(path)
    publisher = publisher_of(root.signed)
    folder = store.publisher(publisher.publisher_id)
    current = pinned_root(folder)
    if current is not None and current.signed.version > root.signed.version:
        raise UsageError(
            f"you pinned version {current.signed.version} of {publisher.name}'s root already; "
            f"{path} is the older version {root.signed.version}",
            hint="Keep the newer pin: readers walk forward from it by themselves.",
        )
    data = fsutil.read_bounded(path, max_bytes=caps.ROOT_MAX_BYTES, what="pinned root")
    folder.write_pinned_root(data)
    return folder, publisher, current is None


def pinned_root(folder: PublisherStore) -> Metadata[Root] | None:
    """The root pinned for this publisher, if any (a damaged pin is a `StorageError`)."""
    if not (folder.pinned_file.exists() or folder.pinned_file.is_symlink()):
        return None
    return load_pinned_root(folder.pinned_file, stored=True)


def pinned_publishers(store: ReaderStore) -> list[tuple[Publisher, Metadata[Root]]]:
    """Every pinned publisher and its pinned root, by name."""
    found = []
    for publisher_id in store.publishers():
        root = pinned_root(store.publisher(publisher_id))
        if root is not None:
            found.append((publisher_of(root.signed), root))
    return sorted(found, key=lambda item: item[0].name)


def root_for_command(
    store: ReaderStore, *, root: str | None, publisher: str | None = None
) -> Metadata[Root]:
    """``--root``, else the only pinned publisher's root, else the one ``publisher`` names.

    The reader's own state for that publisher is read and checked first
    (`PublisherStore.check`): a command that goes on to ask mirrors must not
    blame them for a damaged local file.
    """
    chosen = _chosen_root(store, root=root, publisher=publisher)
    trusted_root(chosen, store.publisher(publisher_of(chosen.signed).publisher_id).check())
    return chosen


def _chosen_root(store: ReaderStore, *, root: str | None, publisher: str | None) -> Metadata[Root]:
    if root is not None:
        return load_pinned_root(Path(root))
    pinned = pinned_publishers(store)
    if publisher is not None:
        chosen = [r for p, r in pinned if publisher in (p.name, p.publisher_id)]
        if not chosen:
            names = ", ".join(p.name for p, _ in pinned) or "none"
            raise UsageError(
                f"you have not pinned a publisher called {publisher!r}",
                hint=f"Pinned publishers: {names}. {PIN_HINT}",
            )
        return chosen[0]
    if len(pinned) == 1:
        return pinned[0][1]
    if not pinned:
        raise UsageError("no publisher is pinned yet, and no --root was given", hint=PIN_HINT)
    raise UsageError(
        f"you pinned {len(pinned)} publishers ({', '.join(p.name for p, _ in pinned)})",
        hint="Say which with --publisher NAME, or pass --root ROOT.json.",
    )


def root_for_edition(store: ReaderStore, edition: Path, *, root: str | None) -> Metadata[Root]:
    """``--root``, else the pinned root of the publisher the edition file names."""
    if root is not None:
        return load_pinned_root(Path(root))
    claimed = edition_publisher(edition)
    pinned = pinned_root(store.publisher(claimed.publisher_id))
    if pinned is not None:
        return pinned
    others = pinned_publishers(store)
    if not others:
        raise UsageError(
            f"no publisher is pinned yet, and no --root was given to check {edition} with",
            hint=PIN_HINT,
        )
    theirs, _ = told_apart(claimed, others[0][0]) if len(others) == 1 else (claimed.name, "")
    raise ForeignEditionError(
        f"{edition} says it is from {theirs}, whom you have not pinned "
        f"(you pinned {', '.join(p.name for p, _ in others)})",
        hint=f"If you trust {claimed.name}, pin the root.json they gave you "
        "with `mirror trust add ROOT.json`, then verify again.",
    )


def edition_publisher(path: Path) -> Publisher:
    """Who an edition file says it is from (unverified: the caller then verifies it)."""
    with EditionArchive.open(path, ArchiveLimits()) as archive:
        member = archive.find(layout.archive_root_name(1))
        if member is None:
            raise UsageError(
                f"{path} names no publisher (it has no {layout.archive_root_name(1)})",
                hint="Pass --root ROOT.json with the root of the publisher you expect.",
            )
        data = archive.read(member, max_bytes=caps.ROOT_MAX_BYTES)
    return publisher_of(parse_metadata(data, Root, what=f"{path}'s root version 1").signed)
