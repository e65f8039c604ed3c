"""The publisher's output folder: the one owner of every path in it.

::

    <output>/
      editions/<id>.zip, <id>.zip.minisig    built editions and their signatures
      latest/<id>.latest.zip                 the latest bundle while a build writes it
                                             (`mirror.latest_bundle`; then only in publish/)
      publish/                               the publish tree (`mirror.publish_tree`)
      cache/index.sqlite, cache/bodies/      the build cache (`mirror.buildcache`): a speed-up,
                                             safe to delete
      cache/verdict.json                     the last unchanged verdict (`mirror.build_memo`):
                                             a speed-up, safe to delete
      state/mirrors.json                     each mirror's last push, merged by every run
      state/mirrors.json.lock                held while a run merges into it
      state/monitor.json                     the monitor's last verdicts (webhook alerts)
      .mirror.lock                           the tree lock (`mirror.runlocks`)
      locks/mirror-<name>.lock               one per mirror: one push at a time
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mirror.trust import layout


@dataclass(frozen=True)
class OutputFolder:
    """Paths inside one output folder (nothing here touches the disk)."""

    path: Path

    @property
    def editions_dir(self) -> Path:
        """Built edition ZIPs and their .minisig files."""
        return self.path / "editions"

    def latest_bundle_file(self, eid: str) -> Path:
        """Where a build writes edition ``eid``'s latest bundle before publishing it.

        Not beside the editions: a bundle carries no proof of its own (its
        signed hash is in the repository), so it is no file to hand to a reader.
        """
        return self.latest_dir / f"{eid}{layout.LATEST_SUFFIX}"

    @property
    def latest_dir(self) -> Path:
        """Holds a latest bundle only while a build writes it: anything here is a leftover."""
        return self.path / "latest"

    @property
    def build_cache(self) -> Path:
        """What earlier builds learnt about each source (`mirror.buildcache`)."""
        return self.path / "cache"

    @property
    def build_verdict(self) -> Path:
        """The last build's verdict with what it was reached from (`mirror.build_memo`)."""
        return self.build_cache / "verdict.json"

    @property
    def publish_dir(self) -> Path:
        """The publish tree (TUF metadata/ and targets/) copied to mirrors."""
        return self.path / "publish"

    @property
    def state_dir(self) -> Path:
        """What runs remember between them."""
        return self.path / "state"

    @property
    def mirror_states(self) -> Path:
        """Each mirror's last push result."""
        return self.state_dir / "mirrors.json"

    @property
    def mirror_states_lock(self) -> Path:
        """Held while a run merges its results into `mirror_states`."""
        return self.state_dir / "mirrors.json.lock"

    @property
    def monitor_state(self) -> Path:
        """The monitor's last verdict per mirror and vantage point."""
        return self.state_dir / "monitor.json"

    @property
    def tree_lock(self) -> Path:
        """The lock guarding the publish tree: exclusive to build, shared to push."""
        return self.path / ".mirror.lock"

    def mirror_lock(self, mirror_name: str) -> Path:
        """The lock one push of mirror ``mirror_name`` holds."""
        return self.path / "locks" / f"mirror-{mirror_name}.lock"
