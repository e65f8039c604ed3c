"""A bare git repository whose post-receive hook publishes the pushed branch, like a pages host.

The backend pushes over ``file://``; the hook checks the ``gh-pages`` branch out
into a www folder, which a stdlib HTTP server on 127.0.0.1 serves read-only.
There are no credentials, so there is no bad-credentials backend.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.servers import MirrorServer
from tests.servers.sftp import backend_from_yaml, serve_folder

BRANCH = "gh-pages"
SUBFOLDER = "site"


def make_pages_repository(workdir: Path, *, branch: str = BRANCH) -> tuple[Path, Path]:
    """A bare repository plus the www folder its hook publishes ``branch`` into."""
    bare = workdir / "pages.git"
    www = workdir / "www"
    www.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--bare", "-q", str(bare)], check=True, capture_output=True, timeout=30
    )
    hook = bare / "hooks" / "post-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "# Pages: check the pushed branch out into the www folder.\n"
        "while read old new ref; do\n"
        f'  if [ "$ref" = refs/heads/{branch} ] && [ "$new" != {"0" * 40} ]; then\n'
        f"    git --work-tree={shlex.quote(str(www))} checkout -q -f {branch}\n"
        "  fi\n"
        "done\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return bare, www


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """Create the repository and serve its published branch over HTTP."""
    bare, www = make_pages_repository(workdir)
    settings = f"repository: {bare.as_uri()}\nbranch: {BRANCH}\npath: {SUBFOLDER}\n"
    with serve_folder(www) as public_url:
        yield MirrorServer(
            flavour="git-bare",
            type_name="git",
            settings_yaml=settings,
            public_url=f"{public_url}{SUBFOLDER}/",
            make_backend=lambda: backend_from_yaml("git", "git", settings, workdir),
            make_bad_credentials_backend=None,
        )
