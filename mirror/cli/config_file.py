"""Which configuration file a command reads.

In order: ``--config FILE`` (before or after the command), ``$MIRROR_CONFIG``,
``mirror.yaml`` in the current folder, ``$XDG_CONFIG_HOME/mirror/mirror.yaml``
(``~/.config/mirror/mirror.yaml`` when the variable is unset), as rclone and
git look for theirs. When none exists, the error names ``mirror.yaml``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mirror.cli.parser import DEFAULT_CONFIG
from mirror.config import Config, load_config


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/mirror/mirror.yaml``, or under ``~/.config`` when it is unset."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mirror" / DEFAULT_CONFIG


def config_path(args: argparse.Namespace) -> Path:
    """The configuration file this command line names, or the first one found."""
    named = getattr(args, "config", None) or os.environ.get("MIRROR_CONFIG")
    if named:
        return Path(named)
    here = Path(DEFAULT_CONFIG)
    if here.exists():
        return here
    user = user_config_path()
    return user if user.exists() else here


def load(args: argparse.Namespace) -> Config:
    """The validated configuration this command line names."""
    return load_config(config_path(args))
