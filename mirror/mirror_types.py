"""The mirror types a config may name (``type:``), and the module that implements each.

Names only, importing nothing: the command line offers them as choices and the
config loader checks them without loading any backend (`mirror --version` and
the reader's commands start without asyncio or aiobotocore). A type's module is
imported on first use by `mirror.backends.registry.backend_type`.
"""

from __future__ import annotations

BACKEND_MODULES = {
    "local": "mirror.backends.local",
    "s3": "mirror.backends.s3",
    "webdav": "mirror.backends.webdav",
    "sftp": "mirror.backends.sftp",
    "http": "mirror.backends.http",
    "git": "mirror.backends.git",
}
"""Each type's module; imported on first use, so `mirror verify` never loads aiobotocore."""
