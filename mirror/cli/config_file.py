"""Which configuration file a command reads: ``--config``, ``$MIRROR_CONFIG``, or the default."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mirror.cli.parser import DEFAULT_CONFIG
from mirror.config import Config, load_config


def config_path(args: argparse.Namespace) -> Path:
    """The configuration file this command line names."""
    return Path(args.config or os.environ.get("MIRROR_CONFIG") or DEFAULT_CONFIG)


def load(args: argparse.Namespace) -> Config:
    """The validated configuration this command line names."""
    return load_config(config_path(args))
