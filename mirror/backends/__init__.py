"""Mirror backends: one small async interface, one module per ``type:``.

See `mirror.backends.base` for the interface and its guarantees, and
`mirror.backends.registry` for how a type's config block becomes a backend.
"""

from mirror.backends.base import (
    Backend,
    CallLimits,
    Capability,
    ObjectInfo,
    check_path,
)
from mirror.backends.registry import BackendType, backend_type, register

__all__ = [
    "Backend",
    "BackendType",
    "CallLimits",
    "Capability",
    "ObjectInfo",
    "backend_type",
    "check_path",
    "register",
]
