"""nginx on 127.0.0.1 as a PUT/DELETE upload target (the ``http`` type), with its own config.

Everything nginx touches lives in ``workdir``: config, htpasswd, pid, logs,
temp folders and the docroot, so nothing of the machine's nginx is used. The
temp folder for request bodies is on the same file system as the docroot, so
nginx's PUT is a rename (atomic), which the conformance suite checks: a
reader never sees half a replaced file.

``/news/`` takes PUT/DELETE/MKCOL/COPY/MOVE behind basic auth (write methods
only, via ``limit_except GET HEAD``); GET and HEAD are open to anyone, so
the same URL is the public one. When the dav-ext module is installed it is
loaded too, for PROPFIND (lets tests drive the ``webdav`` backend against
nginx, a server that refuses ``Depth: infinity``).

The password file uses the ``{SHA}`` scheme (base64 of SHA-1) that nginx
accepts; Python's ``crypt`` is deprecated, and this is a throwaway password.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import MirrorServer, free_port, wait_for_port
from tests.servers.webdav import make_backend

USER = "publisher"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DAV_EXT_MODULE = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")


def nginx_config(workdir: Path, port: int) -> str:
    """A self-contained nginx.conf for ``workdir``."""
    temp = workdir / "temp"
    lines = []
    if DAV_EXT_MODULE.exists():
        lines.append(f"load_module {DAV_EXT_MODULE};")
    if os.geteuid() == 0:
        # As root the workers would switch to nobody, who cannot write our temp folders.
        lines.append("user root root;")
    dav_ext = "dav_ext_methods PROPFIND OPTIONS;" if DAV_EXT_MODULE.exists() else ""
    lines += [
        "worker_processes 1;",
        f"pid {workdir / 'nginx.pid'};",
        f"error_log {workdir / 'error.log'} warn;",
        "events { worker_connections 256; }",
        "http {",
        "  access_log off;",
        "  default_type application/octet-stream;",
        f"  client_body_temp_path {temp / 'body'};",
        f"  proxy_temp_path {temp / 'proxy'};",
        f"  fastcgi_temp_path {temp / 'fastcgi'};",
        f"  uwsgi_temp_path {temp / 'uwsgi'};",
        f"  scgi_temp_path {temp / 'scgi'};",
        "  server {",
        f"    listen 127.0.0.1:{port};",
        f"    root {workdir / 'data'};",
        "    client_max_body_size 0;",
        "    location /news/ {",
        "      dav_methods PUT DELETE MKCOL COPY MOVE;",
        f"      {dav_ext}",
        "      create_full_put_path on;",
        "      dav_access user:rw group:r all:r;",
        "      limit_except GET HEAD {",
        '        auth_basic "mirror upload";',
        f"        auth_basic_user_file {workdir / 'htpasswd'};",
        "      }",
        "    }",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd line in nginx's ``{SHA}`` scheme."""
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).digest()
    return f"{user}:{{SHA}}{base64.b64encode(digest).decode()}\n"


@contextlib.contextmanager
def run_nginx(workdir: Path, password: str) -> Iterator[str]:
    """Start nginx for ``workdir``; yields the base URL of the mirror (``.../news/``)."""
    (workdir / "data" / "news").mkdir(parents=True, exist_ok=True)
    (workdir / "temp").mkdir(exist_ok=True)
    (workdir / "htpasswd").write_text(htpasswd_line(USER, password), encoding="utf-8")
    for attempt in range(3):
        port = free_port()
        process = _start(workdir, port)
        try:
            _wait_until_listening(process, workdir / "error.log", port)
        except _PortTaken:
            if attempt == 2:
                raise
            continue  # someone took the free port between our check and nginx's bind
        except BaseException:
            _stop(process)
            raise
        break
    try:
        yield f"http://127.0.0.1:{port}/news/"
    finally:
        _stop(process)


class _PortTaken(RuntimeError):
    pass


def _start(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(workdir, port), encoding="utf-8")
    log = workdir / "error.log"
    log.unlink(missing_ok=True)
    command = [NGINX, "-p", str(workdir), "-c", str(conf), "-e", str(log), "-g", "daemon off;"]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


def _wait_until_listening(process: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            errors = log.read_text(errors="replace") if log.exists() else ""
            if "Address already in use" in errors:
                raise _PortTaken(errors)
            raise RuntimeError(f"nginx exited with {process.returncode}: {errors[-2000:]}")
        try:
            wait_for_port(port, timeout_s=0.5)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (nginx's fast shutdown), then wait; kill only if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """nginx taking authenticated PUT/DELETE at ``/news/`` and serving GET to anyone."""
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed")
    token = secrets.token_hex(4)
    good_env, bad_env = f"MIRROR_TEST_NGINX_PASSWORD_{token}", f"MIRROR_TEST_NGINX_WRONG_{token}"
    os.environ[good_env] = secrets.token_urlsafe(16)
    os.environ[bad_env] = "not-" + os.environ[good_env]
    try:
        with run_nginx(workdir, os.environ[good_env]) as url:

            def settings(env: str) -> str:
                return f"url: {url}\nusername: {USER}\npassword: env:{env}\n"

            yield MirrorServer(
                flavour="http-nginx",
                type_name="http",
                settings_yaml=settings(good_env),
                public_url=url,
                make_backend=lambda: make_backend(workdir, "nginx", "http", settings(good_env)),
                make_bad_credentials_backend=lambda: make_backend(
                    workdir, "nginx-bad", "http", settings(bad_env)
                ),
            )
    finally:
        os.environ.pop(good_env, None)
        os.environ.pop(bad_env, None)
