"""A wsgidav WebDAV server (on cheroot, in a thread) on 127.0.0.1 with basic auth.

One folder is served twice by the same server:

* ``/dav/`` — read-write, basic auth only (digest off, as TESTING.md says);
  this is where the ``webdav`` backend writes;
* ``/pub/`` — read-only and anonymous: the public URL readers use. wsgidav
  has no per-method access rules, but its shares can be read-only and
  anonymous one by one, so a second share over the same folder gives
  readers plain unauthenticated GETs from the same server.

The password is random per server and reaches the backend the way it would
in production: through an ``env:`` reference in the settings YAML.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mirror.backends import Backend, CallLimits, backend_type
from mirror.yamlnodes import load_yaml
from tests.servers import MirrorServer

USER = "publisher"


def make_backend(workdir: Path, name: str, type_name: str, settings_yaml: str) -> Backend:
    """Build a backend from a settings block the way the config loader would."""
    kind = backend_type(type_name)
    settings_file = workdir / f"{name}-settings.yaml"
    settings_file.write_text(settings_yaml, encoding="utf-8")
    settings = kind.parse_settings(load_yaml(settings_file), workdir)
    return kind.create(name, settings, workdir, CallLimits(timeout_s=30.0))


@contextlib.contextmanager
def dav_server(
    root: Path, *, password: str, extra_config: dict[str, Any] | None = None
) -> Iterator[str]:
    """Run wsgidav over ``root``; yields the server's base URL (``http://127.0.0.1:PORT``)."""
    # Imported here so that other providers can use `make_backend` without wsgidav.
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp  # type: ignore[import-untyped]

    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {
            "/dav": {"root": str(root)},
            "/pub": {"root": str(root), "readonly": True},
        },
        "http_authenticator": {
            "domain_controller": None,  # simple_dc below
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "simple_dc": {"user_mapping": {"/dav": {USER: {"password": password}}, "/pub": True}},
        "dir_browser": {"enable": False},
        "verbose": 1,
        "logging": {"enable": False},
        **(extra_config or {}),
    }
    app = WsgiDAVApp(config)
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8)
    server.prepare()  # binds, and learns the port the system picked
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name=f"wsgidav-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """wsgidav over ``workdir/data``: ``/dav/`` to write (basic auth), ``/pub/`` to read."""
    root = workdir / "data"
    root.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    good_env, bad_env = f"MIRROR_TEST_DAV_PASSWORD_{token}", f"MIRROR_TEST_DAV_WRONG_{token}"
    os.environ[good_env] = secrets.token_urlsafe(16)
    os.environ[bad_env] = "not-" + os.environ[good_env]
    try:
        with dav_server(root, password=os.environ[good_env]) as base:

            def settings(env: str) -> str:
                return f"url: {base}/dav/\nusername: {USER}\npassword: env:{env}\n"

            yield MirrorServer(
                flavour="webdav-wsgidav",
                type_name="webdav",
                settings_yaml=settings(good_env),
                public_url=f"{base}/pub/",
                make_backend=lambda: make_backend(workdir, "dav", "webdav", settings(good_env)),
                make_bad_credentials_backend=lambda: make_backend(
                    workdir, "dav-bad", "webdav", settings(bad_env)
                ),
            )
    finally:
        os.environ.pop(good_env, None)
        os.environ.pop(bad_env, None)
