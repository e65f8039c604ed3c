"""The ``http`` mirror type: a plain web server that accepts PUT and DELETE uploads.

Settings::

    http:
      url: https://upload.example.org/news/   # where files are PUT; readers GET them elsewhere
      username: alice                          # optional (basic auth)
      password: env:UPLOAD_PASSWORD            # optional; env:NAME or file:PATH, never inline
      headers:                                 # optional extra headers, values are references
        Authorization: env:UPLOAD_BEARER       #   e.g. "Bearer <token>" kept in the variable
      atomic_put: true                         # optional, default false; see below

The server must create missing folders itself on PUT — with nginx::

    location /news/ {
        dav_methods PUT DELETE MKCOL COPY MOVE;
        create_full_put_path on;
        client_max_body_size 0;          # the default 1 MiB refuses edition archives
        limit_except GET HEAD { auth_basic "upload"; auth_basic_user_file /etc/nginx/htpasswd; }
    }

``put`` is one PUT streaming the file with its exact Content-Length (no
MKCOL, no MOVE); ``get`` is a GET stopped at the byte cap; ``stat`` is a
HEAD (404 → None); ``delete`` a DELETE (404 is fine). There is no listing:
the pipeline stats each path instead.

``atomic_put: true`` is the admin's assertion that the server writes each
upload to a temporary file and renames it into place, so a reader never
sees half a file — nginx's dav module does (the request body goes to a
temporary file that is renamed into place; keep ``client_body_temp_path``
on the docroot's file system so that is a plain rename). We cannot check it
from mirror.errors import ServerBusyError
from here, so it is off unless the config says so; with it, the pipeline
may overwrite files readers depend on directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mirror.backends._http_common import (
    ENDPOINT_KEYS,
    Endpoint,
    HttpBackendBase,
    parse_endpoint,
    parse_header_refs,
    resolve_credentials,
)
from mirror.backends.base import CallLimits, Capability, ObjectInfo
from mirror.backends.registry import BackendType, register
from mirror.yamlnodes import Node

__all__ = [
    "AtomicHttpPutBackend",
    "HttpPutBackend",
    "HttpSettings",
    "create",
    "parse_settings",
]


@dataclass(frozen=True)
class HttpSettings:
    """An ``http:`` block: the upload URL, credentials by reference, and the atomicity claim."""

    endpoint: Endpoint
    header_refs: tuple[tuple[str, str], ...] = ()
    """(header name, secret reference) pairs sent with every request."""
    atomic_put: bool = False


def parse_settings(node: Node, base_dir: Path) -> HttpSettings:
    """Read an ``http:`` block; every problem is a `ConfigError` naming the line."""
    del base_dir  # nothing here is a path; file: references resolve in `create`
    fields = node.mapping((*ENDPOINT_KEYS, "headers", "atomic_put"))
    header_refs = parse_header_refs(fields["headers"]) if "headers" in fields else ()
    endpoint = parse_endpoint(fields, node, sends_secrets=bool(header_refs))
    atomic_put = fields["atomic_put"].boolean() if "atomic_put" in fields else False
    return HttpSettings(endpoint=endpoint, header_refs=header_refs, atomic_put=atomic_put)


def create(name: str, settings: HttpSettings, base_dir: Path, limits: CallLimits) -> HttpPutBackend:
    """A backend for the upload URL in ``settings``; reads the secret references now."""
    password, headers = resolve_credentials(settings.endpoint, settings.header_refs, base_dir, name)
    kind = AtomicHttpPutBackend if settings.atomic_put else HttpPutBackend
    return kind(name, settings.endpoint, password=password, headers=headers, limits=limits)


class HttpPutBackend(HttpBackendBase):
    """A mirror on a web server that takes PUT/DELETE and creates folders itself."""

    type_name = "http"

    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        await self._upload(path, source, size=size)

    async def _stat(self, path: str) -> ObjectInfo | None:
        return await self._head_stat(path)


class AtomicHttpPutBackend(HttpPutBackend):
    """The same, on a server the admin says replaces files atomically (``atomic_put: true``).

    A subclass rather than a flag, because capabilities are declared per class.
    """

    capabilities = frozenset({Capability.ATOMIC_PUT})


register(
    BackendType(
        name="http",
        settings_key="http",
        parse_settings=parse_settings,
        create=create,
    )
)
