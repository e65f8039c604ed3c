#!/usr/bin/python3
"""Run a command under an emulation of a systemd unit's sandbox (for deploy/check.sh).

CI has systemd's tools but no systemd running as PID 1, so the units' hardening
cannot be tried for real there. This script applies the parts of it that could
break `mirror` itself, read from the unit file, with the same kernel mechanisms
systemd 252 (Debian 12) uses:

* ``SystemCallFilter=`` (allow-list, then ``~`` removals, groups expanded by
  ``systemd-analyze syscall-filter``) with ``SystemCallErrorNumber=``,
* ``MemoryDenyWriteExecute=yes``: no mmap W+X, no mprotect/pkey_mprotect to X,
  no shmat with SHM_EXEC (seccomp, as systemd 252 does it),
* ``RestrictAddressFamilies=``: socket() of any other family fails,
* ``RestrictNamespaces=yes``: unshare/setns/clone with namespace flags fail,
  clone3 gets ENOSYS (so libc falls back to clone, as under systemd),
* ``ProtectSystem=strict``: every mount read-only but the given writable folders,
* ``PrivateTmp=yes``: fresh, empty /tmp and /var/tmp,
* ``CapabilityBoundingSet=``, ``NoNewPrivileges=yes``, ``UMask=``,
* a clean environment, as systemd gives a service.

Not emulated: the user switch and PrivateUsers (it runs as uid 0 with no
capabilities), PrivateDevices, ProtectProc, the cgroup limits.

Stage 1 runs as root inside ``unshare --mount --propagation private`` (mounts are
private to it); it then re-executes itself through ``setpriv`` without
capabilities as stage 2, which loads the seccomp filters and executes the command.
Needs Debian's python3-seccomp, so it runs with /usr/bin/python3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000
CLONE_NEW_FLAGS = (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
AF_MAX = 46
AF_NUMBERS = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
ERRNO_NUMBERS = {"EPERM": 1, "EACCES": 13, "ENOSYS": 38}
EAFNOSUPPORT, ENOSYS = 97, 38
API_MOUNTS = ("/proc", "/sys", "/dev")


def read_unit(path: Path) -> dict[str, list[str]]:
    """The [Service] section: every key's assignments in order (an empty one resets)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if value.strip() == "":
            settings[key.strip()] = []
        else:
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def expand(name: str, seen: set[str] | None = None) -> set[str]:
    """System call names of a systemd group (``@name``) or a single call."""
    if not name.startswith("@"):
        return {name}
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", name], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    calls: set[str] = set()
    for line in listing[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            calls |= expand(item, seen)
    return calls


def allowed_syscalls(settings: dict[str, list[str]]) -> list[str]:
    """The allow-list systemd builds from the unit's SystemCallFilter= lines."""
    allow: set[str] | None = None
    for value in settings.get("SystemCallFilter", []):
        remove = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= expand(item)
        if allow is None:
            if remove:
                raise SystemExit("sandbox: deny-list-only filters are not emulated")
            allow = names | expand("@default")
        elif remove:
            allow -= names
        else:
            allow |= names
    if allow is None:
        raise SystemExit("sandbox: the unit has no SystemCallFilter=")
    return sorted(allow)


def mounts() -> list[tuple[str, bool]]:
    """(mount point, read-only) of this mount namespace, parents first."""
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        target = fields[4].encode().decode("unicode_escape")
        result.append((target, "ro" in fields[5].split(",")))
    return result


def protect_system(writable: list[str], private_tmp: bool, visible: list[str]) -> int:
    """ProtectSystem=strict: all read-only but ``writable`` (and API file systems).

    ``visible`` folders stay reachable even when they live under /tmp (a CI
    checkout there holds the program under test): they are held open before
    the fresh /tmp is mounted and bound back at the same path afterwards.
    """
    for folder in writable:
        subprocess.run(["mount", "--bind", folder, folder], check=True)
    keep = {os.path.realpath(w) for w in writable}
    if private_tmp:
        tmp_roots = ("/tmp", "/var/tmp")  # noqa: S108 (new tmpfs mounts, as PrivateTmp)
        held = [
            (os.open(path, os.O_PATH | os.O_DIRECTORY), path)
            for path in (os.path.realpath(v) for v in visible)
            if path.startswith(tuple(f"{t}/" for t in tmp_roots))
        ]
        for folder in tmp_roots:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", folder], check=True)
            keep.add(folder)
        for fd, path in held:
            os.makedirs(path, exist_ok=True)
            subprocess.run(
                # --no-canonicalize: the magic link must not be resolved back to the path
                # (which now names the fresh, empty /tmp), but followed to the held folder.
                ["mount", "--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", path],
                check=True,
                pass_fds=(fd,),
            )
            os.close(fd)
    count = 0
    for target, is_ro in mounts():
        if is_ro or target in keep or target.startswith(API_MOUNTS):
            continue
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
        count += 1
    return count


def stage1(args: argparse.Namespace) -> None:
    settings = read_unit(Path(args.unit))
    if os.geteuid() != 0:
        raise SystemExit("sandbox: stage 1 runs as root inside `unshare --mount`")
    spec = {
        "syscalls": allowed_syscalls(settings),
        "errno": ERRNO_NUMBERS[settings.get("SystemCallErrorNumber", ["EPERM"])[-1]],
        "mdwe": settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes",
        "families": [
            AF_NUMBERS[name]
            for value in settings.get("RestrictAddressFamilies", [])
            for name in value.split()
        ],
        "namespaces": settings.get("RestrictNamespaces", ["no"])[-1] == "yes",
        "umask": int(settings.get("UMask", ["0022"])[-1], 8),
    }
    if settings.get("ProtectSystem", [""])[-1] != "strict":
        raise SystemExit("sandbox: expected ProtectSystem=strict")
    private_tmp = settings.get("PrivateTmp", ["no"])[-1] == "yes"
    ro_mounts = protect_system(args.writable, private_tmp, args.visible)
    if settings.get("NoNewPrivileges", ["no"])[-1] != "yes" or settings.get(
        "CapabilityBoundingSet", None
    ) not in ([], None):
        raise SystemExit("sandbox: expected NoNewPrivileges=yes and an empty bounding set")
    print(
        f"sandbox: {Path(args.unit).name}: {len(spec['syscalls'])} system calls allowed, "
        f"MemoryDenyWriteExecute={'yes' if spec['mdwe'] else 'no'}, address families "
        f"{spec['families']}, RestrictNamespaces={'yes' if spec['namespaces'] else 'no'}, "
        f"{ro_mounts} mounts read-only, PrivateTmp={'yes' if private_tmp else 'no'}, "
        f"no capabilities, umask {spec['umask']:04o}",
        file=sys.stderr,
        flush=True,
    )
    environment = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    for item in args.setenv:
        key, _, value = item.partition("=")
        environment[key] = value
    os.execve(  # noqa: S606 (no shell: the argv is exact)
        "/usr/bin/setpriv",
        [
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
            sys.executable,
            os.path.abspath(__file__),
            "--stage2",
            json.dumps(spec),
            "--",
            *args.command,
        ],
        environment,
    )


def stage2(spec_text: str, command: list[str]) -> None:
    import seccomp  # noqa: PLC0415  (Debian's python3-seccomp, stage 2 only)

    spec = json.loads(spec_text)
    os.umask(spec["umask"])
    allow = seccomp.SyscallFilter(seccomp.ERRNO(spec["errno"]))
    for name in spec["syscalls"]:
        # Names of other architectures or newer than libseccomp are skipped, as systemd does.
        with contextlib.suppress(RuntimeError, ValueError, OSError):
            allow.add_rule(seccomp.ALLOW, name)
    extra = seccomp.SyscallFilter(seccomp.ALLOW)
    if spec["mdwe"]:
        both = PROT_WRITE | PROT_EXEC
        extra.add_rule(seccomp.ERRNO(1), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, both, both))
        for call in ("mprotect", "pkey_mprotect"):
            extra.add_rule(
                seccomp.ERRNO(1), call, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC)
            )
        extra.add_rule(
            seccomp.ERRNO(1), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC)
        )
    if spec["families"]:
        refused = seccomp.ERRNO(EAFNOSUPPORT)
        for family in range(AF_MAX):
            if family not in spec["families"]:
                extra.add_rule(refused, "socket", seccomp.Arg(0, seccomp.EQ, family))
        extra.add_rule(refused, "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
    if spec["namespaces"]:
        extra.add_rule(seccomp.ERRNO(1), "unshare")
        extra.add_rule(seccomp.ERRNO(1), "setns")
        extra.add_rule(seccomp.ERRNO(ENOSYS), "clone3")
        for flag in CLONE_NEW_FLAGS:
            extra.add_rule(seccomp.ERRNO(1), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    extra.load()
    allow.load()
    os.execvp(command[0], command)  # noqa: S606 (no shell: the argv is exact)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--stage2":
        separator = sys.argv.index("--")
        stage2(sys.argv[2], sys.argv[separator + 1 :])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", required=True, help="the .service file whose sandbox to emulate")
    parser.add_argument("--writable", action="append", default=[], metavar="DIR")
    parser.add_argument("--setenv", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--visible",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder that must stay reachable (read-only) even under /tmp",
    )
    parser.add_argument("command", nargs="+")
    stage1(parser.parse_args())


if __name__ == "__main__":
    main()
