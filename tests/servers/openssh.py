"""A real OpenSSH sshd on 127.0.0.1 with internal-sftp, logging in as the current user.

Its own host key, authorized_keys and config live in the work folder; the data
folder is published read-only over HTTP. Skipped where sshd is not installed or
its privilege-separation folder cannot be made.
"""

from __future__ import annotations

import contextlib
import getpass
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.servers import MirrorServer, free_port, wait_for_port
from tests.servers.sftp import public_line, serve_folder, sftp_mirror, write_client_key

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")


def _config(workdir: Path, port: int, data: Path, user: str) -> str:
    return "\n".join(
        [
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {workdir / 'ssh_host_ed25519_key'}",
            f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            f"AllowUsers {user}",
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            # CI runs as root; keys only, and only the sftp subsystem is used.
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
            f"Subsystem sftp internal-sftp -d {data}",
            "LogLevel VERBOSE",
            "",
        ]
    )


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """Start sshd in the foreground on a free loopback port; stop it afterwards."""
    if not SSHD.exists():
        pytest.skip("OpenSSH sshd is not installed")
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as error:
        pytest.skip(f"cannot create {PRIVSEP_DIR} for sshd ({error.strerror})")

    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    host_key_file = workdir / "ssh_host_ed25519_key"
    host_key = write_client_key(host_key_file)  # same format and permissions as a client key
    client_key_file = workdir / "client_ed25519"
    write_client_key(client_key_file)
    bad_key_file = workdir / "stranger_ed25519"
    write_client_key(bad_key_file)
    (workdir / "authorized_keys").write_text(
        public_line(asyncssh.read_private_key(client_key_file)) + "\n", encoding="ascii"
    )
    user = getpass.getuser()
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(_config(workdir, port, data, user), encoding="utf-8")
    check = subprocess.run(
        [str(SSHD), "-t", "-f", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check.returncode != 0:
        raise RuntimeError(f"sshd rejects the test config: {check.stderr.strip()}")

    log = (workdir / "sshd.log").open("wb")
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {public_line(host_key)}\n", encoding="ascii")
        with serve_folder(data) as public_url:
            yield sftp_mirror(
                "sftp-openssh",
                port=port,
                username=user,
                path=str(data),
                keys=(known_hosts, client_key_file, bad_key_file),
                public_url=public_url,
                workdir=workdir,
            )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
