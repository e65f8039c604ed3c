"""The table of backend types by the ``type:`` name used in the config."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror.backends.base import Backend, CallLimits
from mirror.mirror_types import BACKEND_MODULES

if TYPE_CHECKING:  # backends load without the YAML parser
    from mirror.yamlnodes import Node


@dataclass(frozen=True)
class BackendType:
    """How to read one backend type's settings and build it."""

    name: str
    settings_key: str
    """The mapping under a mirror entry holding this type's settings (usually the type name)."""
    parse_settings: Callable[[Node, Path], Any]
    """(the settings node, the config folder) -> a frozen settings value; raises ConfigError."""
    create: Callable[[str, Any, Path, CallLimits], Backend]
    """(mirror name, settings, config folder, limits) -> backend; resolves secrets here."""
    public_read_hint: str = ""
    """What must hold for readers to read what this type writes, through ``public_url``."""


_REGISTRY: dict[str, BackendType] = {}


def register(backend_type: BackendType) -> BackendType:
    """Add a backend type (each backend module calls this once at import)."""
    _REGISTRY[backend_type.name] = backend_type
    return backend_type


def backend_type(name: str) -> BackendType:
    """The registered type ``name`` (importing its module on first use)."""
    if name not in _REGISTRY and name in BACKEND_MODULES:
        importlib.import_module(BACKEND_MODULES[name])
    return _REGISTRY[name]
