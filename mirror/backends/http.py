"""The ``http`` mirror type: a plain web server that accepts PUT and DELETE uploads.

Settings::

    http:
      url: https://upload.example.org/news/   # where files are PUT; readers GET them elsewhere
      username: alice                          # optional (basic auth)
      password: env:UPLOAD_PASSWORD            # optional; env:NAME or file:PATH, never inline
      headers:                                 # optional extra headers, values are references
        Authorization: env:UPLOAD_BEARER       #   e.g. "Bearer <token>" kept in the variable

The server must create missing folders itself on PUT — with nginx::

    location /news/ {
        dav_methods PUT DELETE MKCOL COPY MOVE;
        create_full_put_path on;
        client_max_body_size 0;          # the default 1 MiB refuses edition archives
        limit_except GET HEAD { auth_basic "upload"; auth_basic_user_file /etc/nginx/htpasswd; }
    }

``put`` is one PUT streaming the file with its exact Content-Length (no
MKCOL, no MOVE); ``get`` is a GET streamed under the base class's cap;
``stat`` is a HEAD (404 → None); ``delete`` a DELETE (404 is fine). There is
no listing: the pipeline stats each path instead.

Whether a reader can catch half an upload is the server's business: nginx's
dav module writes the request body to a temporary file and renames it into
place (keep ``client_body_temp_path`` on the docroot's file system so that is
a plain rename), others may write in place. mirror does not depend on it
(see `mirror.backends.base`).
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
from mirror.backends.base import CallLimits, ObjectInfo
from mirror.backends.registry import BackendType, register
from mirror.yamlnodes import Node

__all__ = [
    "HttpPutBackend",
    "HttpSettings",
    "create",
    "parse_settings",
]


@dataclass(frozen=True)
class HttpSettings:
    """An ``http:`` block: the upload URL and credentials by reference."""

    endpoint: Endpoint
    header_refs: tuple[tuple[str, str], ...] = ()
    """(header name, secret reference) pairs sent with every request."""


def parse_settings(node: Node, base_dir: Path) -> HttpSettings:
    """Read an ``http:`` block; every problem is a `ConfigError` naming the line."""
    del base_dir  # nothing here is a path; file: references resolve in `create`
    fields = node.mapping((*ENDPOINT_KEYS, "headers"))
    header_refs = parse_header_refs(fields["headers"]) if "headers" in fields else ()
    endpoint = parse_endpoint(fields, node, sends_secrets=bool(header_refs))
    return HttpSettings(endpoint=endpoint, header_refs=header_refs)


def create(name: str, settings: HttpSettings, base_dir: Path, limits: CallLimits) -> HttpPutBackend:
    """A backend for the upload URL in ``settings``; reads the secret references now."""
    password, headers = resolve_credentials(settings.endpoint, settings.header_refs, base_dir, name)
    return HttpPutBackend(
        name, settings.endpoint, password=password, headers=headers, limits=limits
    )


class HttpPutBackend(HttpBackendBase):
    """A mirror on a web server that takes PUT/DELETE and creates folders itself."""

    type_name = "http"

    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        await self._upload(path, source, size=size)

    async def _stat(self, path: str) -> ObjectInfo | None:
        return await self._head_stat(path)


register(
    BackendType(
        name="http",
        settings_key="http",
        parse_settings=parse_settings,
        create=create,
        public_read_hint=(
            "the web server must serve the folder it accepts uploads into at public_url, to anyone"
        ),
    )
)
