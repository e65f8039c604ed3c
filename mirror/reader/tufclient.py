"""`mirror tuf-client`: our reader's TUF client, behind the public conformance suite's CLI.

The TUF conformance suite (github.com/theupdateframework/tuf-conformance,
CLIENT-CLI.md) judges a client through three commands::

    mirror tuf-client --metadata-dir DIR init TRUSTED_ROOT
    mirror tuf-client --metadata-dir DIR --metadata-url URL refresh
    mirror tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH \\
        --target-base-url URL --target-dir DIR download

It runs the same python-tuf `Updater` (from `mirror.client.view.new_updater`:
the same caps) and the same `DeadlineFetcher` (timeouts, per-download time
budget, ``file://``) as `mirror fetch`, so the suite's verdict is a verdict
on the reader. Metadata lives in DIR under
non-versioned names (python-tuf's layout); artifacts are stored in the
target folder as the URL-quoted target path, written atomically
(`mirror.fsutil`) after their signed length and hashes were checked, and a
file already there with the right hashes is not downloaded again.

Delegated roles and caches. A delegated role may be delegated to by more
than one role (a "diamond"), each delegation naming its own keys. Trusting
a role because it once verified against *one* delegator would let it vouch
for paths that only the *other* delegator may give it (python-tuf #2977).
Two things stop that here, independent of the python-tuf version in use:

- every lookup gets a fresh `Updater`, so nothing verified during one
  lookup is trusted by the next: each walk verifies every role on its path
  against the delegator on that path;
- python-tuf re-verifies a cached role file (``DIR/<role>.json``) against
  the current delegator's keys before using it, and downloads it again if
  that fails: a cached file never carries trust across runs by itself.

Every failure is a `MirrorError`; the CLI prints one line and exits 1.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tuf.api.metadata import Root, TargetFile, Timestamp
from tuf.ngclient import Updater

from mirror import caps, fsutil
from mirror.client.classify import translated
from mirror.client.transport import DeadlineFetcher
from mirror.client.view import metadata_file, new_updater, read_trusted
from mirror.errors import MirrorError, StorageError, TufClientUsageError


@dataclass(frozen=True)
class Downloaded:
    """One artifact in the target folder."""

    target: str
    path: Path
    cached: bool
    """True when the file was already there with the signed hashes (nothing downloaded)."""


def init(metadata_dir: Path, trusted_root: Path) -> Path:
    """Store ``trusted_root`` as ``metadata_dir/root.json``: the client's trust anchor.

    No request is made and, as the protocol asks, the root is not checked
    here: `refresh` verifies it (it must be signed by its own threshold).
    """
    data = fsutil.read_bounded(trusted_root, max_bytes=caps.ROOT_MAX_BYTES, what="trusted root")
    fsutil.ensure_dir(metadata_dir)
    destination = metadata_file(metadata_dir, "root")
    fsutil.atomic_write_bytes(destination, data)
    return destination


def refresh(
    metadata_dir: Path, metadata_url: str, *, fetcher: DeadlineFetcher | None = None
) -> int:
    """Update the top-level metadata by the TUF client workflow; return the timestamp version."""
    with _fetching(fetcher) as active, translated_errors():
        updater = _updater(metadata_dir, metadata_url, active)
        updater.refresh()
        return read_trusted(metadata_file(metadata_dir, "timestamp"), Timestamp).signed.version


def download(
    metadata_dir: Path,
    metadata_url: str,
    *,
    target_names: Sequence[str],
    target_base_url: str,
    target_dir: Path,
    fetcher: DeadlineFetcher | None = None,
) -> list[Downloaded]:
    """Refresh, then fetch each target into ``target_dir`` unless an intact copy is there.

    Each target is looked up by its own `Updater` (see the module docstring:
    no delegation verified for one lookup is trusted by another).
    """
    results: list[Downloaded] = []
    fsutil.ensure_dir(target_dir)
    with _fetching(fetcher) as active, translated_errors():
        for name in target_names:
            updater = _updater(
                metadata_dir, metadata_url, active, target_dir=target_dir, base=target_base_url
            )
            info = updater.get_targetinfo(name)
            if info is None:
                raise TufClientUsageError(
                    f"the repository's signed metadata does not list {name!r}"
                )
            path = target_dir / quote(info.path, safe="")
            if updater.find_cached_target(info, str(path)) is not None:
                results.append(Downloaded(name, path, cached=True))
                continue
            root = read_trusted(metadata_file(metadata_dir, "root"), Root)
            consistent = bool(root.signed.consistent_snapshot)
            url = target_url(target_base_url, info, consistent_snapshot=consistent)
            _download_verified(active, url, info, path)
            results.append(Downloaded(name, path, cached=False))
    return results


def target_url(base_url: str, info: TargetFile, *, consistent_snapshot: bool) -> str:
    """Where a target is fetched: under a consistent snapshot, its first hash prefixes its name.

    This is python-tuf's own rule (`Updater.download_target`), kept in step
    so any repository python-tuf reads, this client reads.
    """
    path = info.path
    if consistent_snapshot:
        directory, separator, name = path.rpartition("/")
        path = f"{directory}{separator}{next(iter(info.hashes.values()))}.{name}"
    return f"{base_url.rstrip('/')}/{path}"


def _download_verified(fetcher: DeadlineFetcher, url: str, info: TargetFile, path: Path) -> None:
    """Fetch at most the signed length, check length and hashes, then write atomically."""
    with fetcher.budget_for(info.length), fetcher.download_file(url, info.length) as temporary:
        info.verify_length_and_hashes(temporary)
        temporary.seek(0)
        with fsutil.atomic_writer(path) as out:
            shutil.copyfileobj(temporary, out)


def _updater(
    metadata_dir: Path,
    metadata_url: str,
    fetcher: DeadlineFetcher,
    *,
    target_dir: Path | None = None,
    base: str | None = None,
) -> Updater:
    if not (metadata_file(metadata_dir, "root")).is_file():
        raise TufClientUsageError(f"{metadata_dir} holds no trusted root.json")
    # The protocol's trust anchor is the root `init` stored (and its verified successors).
    return new_updater(
        metadata_dir, metadata_url, fetcher, target_dir=target_dir, target_base_url=base
    )


@contextmanager
def _fetching(fetcher: DeadlineFetcher | None) -> Iterator[DeadlineFetcher]:
    """The given fetcher, or a new one closed afterwards."""
    if fetcher is not None:
        yield fetcher
        return
    owned = DeadlineFetcher()
    try:
        yield owned
    finally:
        owned.close()


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn python-tuf, network and OS errors into our error tree, once, at this boundary."""
    try:
        with translated():  # the same verdicts `mirror fetch` gives
            yield
    except MirrorError:
        raise
    except OSError as error:
        raise StorageError(f"local file error: {error}") from error
    except ValueError as error:  # e.g. a malformed URL or local root.json
        raise TufClientUsageError(f"cannot use that input: {error}") from error
