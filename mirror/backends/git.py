"""Git mirrors (``type: git``): the tree published as commits on a branch, e.g. one served as pages.

Settings::

    git:
      repository: git@github.com:newsroom/mirror.git   # URL, or a path relative to the config
      branch: gh-pages                                 # default
      path: ""                                         # subfolder of the repository (default: root)
      author_name: mirror                              # default
      author_email: mirror@localhost                   # default
      work_dir: .mirror-git/<mirror name>              # local clone cache, config-relative

How it works. The backend keeps a local clone (``work_dir``) that is a cache of
the remote branch, never the truth: on first use it fetches the branch (shallow)
and resets the clone to it, discarding leftovers of an interrupted run, so `stat`
and `list` answer for what readers can actually get. `put` and `delete` change
the local work tree (temp file + ``os.replace``); `get`, `stat` and `list` read
it. `flush` stages everything under ``path``, commits (skipped when nothing
changed; the message is a deterministic summary) and pushes. Readers of the
repository see whole commits: nothing of a phase before its flush, then all of it.

Push strategy: every commit is made on top of the tip that was fetched, so a
push is a plain fast-forward, without ``--force`` or ``--force-with-lease``:
history is never rewritten and nobody else's commit can be destroyed, even
when the branch is misconfigured to point at a branch someone else uses. A
lease would only matter if we rewrote history, which we do not. If the push is
rejected because the branch moved meanwhile (say two mirrors publish into
different folders of one repository), the backend fetches the new tip, puts
its own ``path`` tree on top of it with one new commit (no rebase, no merge:
the mirror owns ``path``, everything outside ``path`` is kept as the other
writer left it) and pushes once more.

Security decisions:

* git runs with an explicit argv (no shell), ``GIT_TERMINAL_PROMPT=0``, no
  stdin and a new session (ssh cannot prompt), a timeout on every call, hooks
  disabled (``core.hooksPath=/dev/null``), signing disabled, and only the
  ``file``, ``git``, ``http``, ``https`` and ``ssh`` transports (``ext::`` would run
  commands). Inherited ``GIT_DIR``-style variables are dropped and
  ``--git-dir``/``--work-tree`` are always explicit, so git never wanders into
  another repository.
* The remote is untrusted. ``core.symlinks=false`` checks out a symlink a hostile
  remote planted as a plain file, so no write of ours is redirected outside the
  clone; writes also refuse any resolved path outside it; paths with a ``.git``
  component are refused (writing ``.git/config`` would let a publish run
  commands).
* Bytes are published exactly: ``.git/info/attributes`` switches off end-of-line
  conversion, filters (LFS), ``ident`` and encodings for every file, whatever
  ``.gitattributes`` the repository carries; ``add --force`` ignores ``.gitignore``.
* Inline credentials in the repository URL are refused; use SSH keys or a git
  credential helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets as token_source
import shutil
import signal
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import urlsplit

from mirror.backends.base import (
    Backend,
    CallLimits,
    Capability,
    DeclaredSize,
    ObjectInfo,
    check_path,
    folder_files,
    stream_local_file,
    walk_in_thread,
)
from mirror.backends.disk import on_disk
from mirror.backends.registry import BackendType, register
from mirror.errors import MirrorAuthError, MirrorNotFoundError, StorageError, TransportError
from mirror.yamlnodes import Node, required

SETTING_KEYS: Final = ("repository", "branch", "path", "author_name", "author_email", "work_dir")
DEFAULT_BRANCH: Final = "gh-pages"
DEFAULT_AUTHOR_NAME: Final = "mirror"
DEFAULT_AUTHOR_EMAIL: Final = "mirror@localhost"
TEMP_MARKER: Final = ".mirror-tmp-"
"""Starts the name of every temporary file in the work tree; `list` hides them."""
ALLOWED_PROTOCOLS: Final = "file:git:http:https:ssh"
ATTRIBUTES: Final = "* -text -eol -filter -ident -working-tree-encoding\n"
"""``.git/info/attributes``: outranks any ``.gitattributes``; stored bytes are published bytes."""
MAX_STDERR_LINE: Final = 300

_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_SCP_LIKE = re.compile(r"(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!//).+")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DROPPED_ENV: Final = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)
_AUTH_FAILURES = re.compile(
    r"authentication failed|permission denied|could not read (username|password)"
    r"|terminal prompts disabled|host key verification failed|access denied"
    r"|returned error: 40[13]|\b40[13]\b.*(forbidden|unauthori[sz]ed)",
    re.IGNORECASE,
)
_PUSH_REJECTED = re.compile(r"^!\t.*\[rejected\] \((fetch first|non-fast-forward)\)", re.MULTILINE)
_BOILERPLATE = (
    "please make sure you have the correct access rights",
    "and the repository exists.",
    "hint:",
)


def _unfinished(name: str) -> bool:
    """A write's temporary file (or folder), not yet the mirror's."""
    return name.startswith(TEMP_MARKER)


def _not_published(folder: str) -> bool:
    """A folder of the work tree that holds nothing readers are served."""
    return folder == ".git" or _unfinished(folder)


# --- settings ---------------------------------------------------------------------
@dataclass(frozen=True)
class GitSettings:
    """A ``git:`` block."""

    repository: str
    """A URL, or an absolute local path (relative paths are resolved from the config folder)."""
    branch: str
    path: str
    """Subfolder of the repository holding the mirror ("" for its root)."""
    author_name: str
    author_email: str
    work_dir: Path | None
    """The local clone; None means ``.mirror-git/<mirror name>`` next to the config."""


def parse_settings(node: Node, base_dir: Path) -> GitSettings:
    """Read a ``git:`` block; every problem is a `ConfigError` naming file, line and key."""
    fields = node.mapping(SETTING_KEYS)
    repository = _repository(required(fields, "repository", node), base_dir)
    branch = DEFAULT_BRANCH
    if "branch" in fields:
        branch = fields["branch"].text().strip()
        if not _valid_branch(branch):
            raise fields["branch"].fail(
                f"{branch!r} is not a usable branch name",
                hint="Use letters, digits and . _ / -, e.g. gh-pages.",
            )
    path = ""
    if "path" in fields:
        path = fields["path"].text(nonempty=False).strip().strip("/")
        if path:
            try:
                check_path(path)
            except ValueError:
                raise fields["path"].fail(
                    "must be a relative folder inside the repository, like mirror or site/news"
                ) from None
            if _names_git_folder(path):
                raise fields["path"].fail("must not be inside git's own .git folder")
    author_name = _person(fields, "author_name", DEFAULT_AUTHOR_NAME)
    author_email = _person(fields, "author_email", DEFAULT_AUTHOR_EMAIL)
    work_dir = (base_dir / fields["work_dir"].text()).expanduser() if "work_dir" in fields else None
    return GitSettings(repository, branch, path, author_name, author_email, work_dir)


def _repository(node: Node, base_dir: Path) -> str:
    text = node.text().strip()
    if "::" in text.split("/", 1)[0]:
        raise node.fail(
            "uses a git remote helper (transport::address), which mirror does not allow",
            hint="Use an https://, ssh:// or file:// URL, user@host:path, or a local path.",
        )
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http", "ssh", "git", "file"):
            raise node.fail(f"uses the unsupported scheme {parts.scheme!r}")
        if parts.password is not None:
            raise node.fail(
                "contains a password; secrets are never written into the config",
                hint="Use an SSH key or a git credential helper for the repository.",
            )
        return text
    if _SCP_LIKE.fullmatch(text):
        return text  # user@host:path, ssh with scp syntax
    return str((base_dir / text).expanduser().resolve())


def _valid_branch(branch: str) -> bool:
    """Conservative subset of git-check-ref-format; rejects option look-alikes too."""
    return bool(
        _BRANCH.fullmatch(branch)
        and ".." not in branch
        and "//" not in branch
        and not branch.endswith(("/", ".", ".lock"))
        and not any(part.startswith(".") for part in branch.split("/"))
    )


def _person(fields: dict[str, Node], name: str, default: str) -> str:
    if name not in fields:
        return default
    text = fields[name].text().strip()
    if any(char in text for char in "<>\n\r\x00"):
        raise fields[name].fail("must not contain <, > or line breaks")
    return text


def _names_git_folder(path: str) -> bool:
    return any(part.lower() == ".git" for part in path.split("/"))


def create(name: str, settings: GitSettings, base_dir: Path, limits: CallLimits) -> GitBackend:
    """Build the backend; nothing is cloned until the first call."""
    work_dir = settings.work_dir
    if work_dir is None:
        folder = name if _SAFE_NAME.fullmatch(name) else hashlib.sha256(name.encode()).hexdigest()
        work_dir = base_dir / ".mirror-git" / folder[:64]
    return GitBackend(
        name,
        repository=settings.repository,
        branch=settings.branch,
        path=settings.path,
        author_name=settings.author_name,
        author_email=settings.author_email,
        work_dir=work_dir,
        limits=limits,
    )


# --- the backend -------------------------------------------------------------------
@dataclass(frozen=True)
class _Changes:
    added: int
    changed: int
    removed: int


class GitBackend(Backend):
    """A folder on a branch of a git repository, written through a local clone."""

    type_name = "git"
    capabilities = frozenset({Capability.LISTING})

    def __init__(
        self,
        name: str,
        *,
        repository: str,
        branch: str,
        path: str,
        author_name: str,
        author_email: str,
        work_dir: Path,
        limits: CallLimits | None = None,
    ) -> None:
        super().__init__(name, limits=limits)
        self.repository = repository
        self.branch = branch
        self.path = path
        self.author_name = author_name
        self.author_email = author_email
        self.work_dir = work_dir.absolute()
        self.root = self.work_dir / path if path else self.work_dir
        """The mirror root inside the work tree."""
        self._synced = False
        self._remote_tip: str | None = None
        """What the remote branch points at, as far as we know (None: it does not exist)."""
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None

    # --- running git -------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _DROPPED_ENV}
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS,
            LC_ALL="C",
            GIT_AUTHOR_NAME=self.author_name,
            GIT_AUTHOR_EMAIL=self.author_email,
            GIT_COMMITTER_NAME=self.author_name,
            GIT_COMMITTER_EMAIL=self.author_email,
        )
        return env

    async def _git(self, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str, str]:
        """Run one git command in the clone; returns (exit code, stdout, stderr)."""
        argv = [
            "git",
            f"--git-dir={self.work_dir / '.git'}",
            f"--work-tree={self.work_dir}",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.symlinks=false",
            "-c",
            "core.autocrlf=false",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "gc.autoDetach=false",
            *args,
        ]
        return await self._run(argv, args[0], ok=ok)

    async def _run(
        self, argv: list[str], command: str, *, ok: tuple[int, ...] = (0,)
    ) -> tuple[int, str, str]:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.work_dir,
                env=self._environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # no controlling terminal: ssh cannot prompt
            )
        except FileNotFoundError as error:
            raise StorageError(
                f"mirror {self.name}: the git command cannot be run ({error.strerror})",
                hint="Install git (it must be on PATH) to publish to git mirrors.",
            ) from error
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                out, err = await process.communicate()
        except TimeoutError as error:
            raise TransportError(
                f"mirror {self.name}: git {command} took longer than {self.limits.timeout_s:g} s"
            ) from error
        finally:
            if process.returncode is None:
                # Timed out or cancelled: kill git and whatever it started (ssh, helpers).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await process.wait()
        code = process.returncode
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        if code not in ok:
            raise self._git_failure(command, stderr)
        return code, stdout, stderr

    def _git_failure(self, command: str, stderr: str) -> TransportError:
        line = _one_line(stderr)
        message = f"mirror {self.name}: git {command} failed: {line}"
        if _AUTH_FAILURES.search(stderr):
            return MirrorAuthError(message)
        return TransportError(message)

    # --- the local clone ---------------------------------------------------------------
    def _lock_for_loop(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    async def _ready(self) -> None:
        """For readers: the clone is synced (reads need no lock once it is)."""
        if not self._synced:
            async with self._lock_for_loop():
                await self._ensure_synced()

    async def _ensure_synced(self) -> None:
        """On first use: claim the work dir, make it a clone, and reset it to the remote."""
        if self._synced:
            return
        self._claim_work_dir()
        git_dir = self.work_dir / ".git"
        if not git_dir.is_dir():
            await self._run(["git", "init", "-q", str(self.work_dir)], "init")
        await self._git("config", "remote.origin.url", self.repository)
        info = git_dir / "info"
        info.mkdir(exist_ok=True)
        (info / "attributes").write_text(ATTRIBUTES, encoding="ascii")

        branch_ref = f"refs/heads/{self.branch}"
        tracking = f"refs/remotes/origin/{self.branch}"
        _, listing, _ = await self._git("ls-remote", "--heads", "origin", branch_ref)
        exists = any(line.split("\t")[-1] == branch_ref for line in listing.splitlines())
        if exists:
            await self._fetch()
            await self._git("checkout", "-q", "-f", "-B", self.branch, tracking)
            await self._git("reset", "-q", "--hard", tracking)
        else:
            # An orphan branch: no history, an empty tree; the first flush creates it.
            await self._git("symbolic-ref", "HEAD", branch_ref)
            await self._git("update-ref", "-d", branch_ref)
            await self._git("update-ref", "-d", tracking)
            await self._git("read-tree", "--empty")
            self._remote_tip = None
        await self._git("clean", "-q", "-ffdx")
        self._synced = True

    async def _fetch(self) -> None:
        tracking = f"refs/remotes/origin/{self.branch}"
        await self._git(
            "fetch",
            "-q",
            "--no-tags",
            "--depth=1",
            "origin",
            f"+refs/heads/{self.branch}:{tracking}",
        )
        _, tip, _ = await self._git("rev-parse", "--verify", tracking)
        self._remote_tip = tip.strip()

    def _claim_work_dir(self) -> None:
        """Hold an exclusive lock on the work dir for this backend's life (one writer per clone)."""
        if self._lock_fd is not None:
            return
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                self.work_dir.parent / f"{self.work_dir.name}.lock", os.O_RDWR | os.O_CREAT
            )
        except OSError as error:
            raise StorageError(
                f"mirror {self.name}: the git work dir {self.work_dir} cannot be created "
                f"({error.strerror})"
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            raise TransportError(
                f"mirror {self.name}: the git work dir {self.work_dir} is in use by another run",
                hint="Wait for the other run to finish, or give each mirror its own work_dir.",
            ) from error
        self._lock_fd = fd

    async def _close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._synced = False

    # --- paths ---------------------------------------------------------------------------
    def _local(self, path: str) -> Path:
        if _names_git_folder(path):
            raise StorageError(
                f"mirror {self.name}: {path} names git's own .git folder, which git mirrors "
                "cannot store"
            )
        return self.root / path

    def _inside_clone(self, folder: Path) -> None:
        """Refuse a folder that resolves outside the work tree (a symlink planted on the way)."""
        if not folder.resolve().is_relative_to(self.work_dir.resolve()):
            raise StorageError(f"mirror {self.name}: {folder} leads outside the git work tree")

    # --- operations -------------------------------------------------------------------
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        target = self._local(path)
        async with self._lock_for_loop():
            await self._ensure_synced()
            await on_disk(self._write, target, source)

    def _write(self, target: Path, source: Path | bytes) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._inside_clone(target.parent)
            temp = target.parent / f"{TEMP_MARKER}{token_source.token_hex(8)}"
            try:
                if isinstance(source, bytes):
                    with temp.open("xb") as handle:
                        handle.write(source)
                else:
                    shutil.copyfile(source, temp)
                os.replace(temp, target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except OSError as error:
            raise StorageError(
                f"mirror {self.name}: {target} cannot be written in the git work tree "
                f"({error.strerror or error})"
            ) from error

    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        target = self._local(path)
        await self._ready()
        try:
            opened = stream_local_file(lambda: self._open_regular(path, target))
            async with contextlib.aclosing(opened) as pieces:
                async for piece in pieces:
                    yield piece
        except OSError as error:  # the clone is ours: a local problem, not the mirror's
            raise StorageError(
                f"mirror {self.name}: {target} cannot be read ({error.strerror})"
            ) from error

    def _open_regular(self, path: str, target: Path) -> BinaryIO:
        """The work tree's file for ``path``, opened without following a symlink out of it."""
        missing = MirrorNotFoundError(f"mirror {self.name}: {path} does not exist")
        try:
            # O_NOFOLLOW: a symlink in the work tree is never followed out of it.
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise missing from error
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise missing from error
            raise StorageError(
                f"mirror {self.name}: {target} cannot be read ({error.strerror})"
            ) from error
        handle = os.fdopen(fd, "rb")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise missing
        except BaseException:
            handle.close()
            raise
        return handle

    async def _stat(self, path: str) -> ObjectInfo | None:
        target = self._local(path)
        await self._ready()
        try:
            info = target.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not _is_regular(info.st_mode):
            return None
        return ObjectInfo(path, info.st_size)

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        await self._ready()
        async for info in walk_in_thread(self._walk(prefix)):
            yield info

    def _walk(self, prefix: str) -> Generator[ObjectInfo, None, None]:
        start = prefix.rpartition("/")[0]
        yield from folder_files(
            os.fspath(self.root / start if start else self.root),
            prefix,
            skip_file=_unfinished,
            skip_folder=_not_published,
        )

    async def _delete(self, path: str) -> None:
        target = self._local(path)
        async with self._lock_for_loop():
            await self._ensure_synced()
            try:
                if _is_regular(target.lstat().st_mode):
                    target.unlink()
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as error:
                raise StorageError(
                    f"mirror {self.name}: {target} cannot be removed ({error.strerror})"
                ) from error

    async def _flush(self) -> None:
        async with self._lock_for_loop():
            await self._ensure_synced()
            await self._commit()
            _, head, _ = await self._git("rev-parse", "-q", "--verify", "HEAD", ok=(0, 1))
            head = head.strip()
            if not head or head == self._remote_tip:
                return  # nothing new to publish
            if await self._push():
                return
            # The branch moved since we fetched: put our tree for `path` on the new tip.
            await self._fetch()
            await self._git("reset", "-q", "--mixed", f"refs/remotes/origin/{self.branch}")
            await self._commit()
            await self._git("reset", "-q", "--hard")
            await self._git("clean", "-q", "-ffdx")
            if not await self._push():
                raise TransportError(
                    f"mirror {self.name}: the branch {self.branch} keeps moving under us; "
                    "another writer is pushing to it",
                    hint="Give this mirror its own branch or path.",
                )

    async def _commit(self) -> None:
        """Stage everything under `path` and commit it, unless nothing changed."""
        self.root.mkdir(parents=True, exist_ok=True)  # git refuses a pathspec matching nothing
        await self._git("add", "--all", "--force", "--", self.path or ".")
        code, _, _ = await self._git("diff", "--cached", "--quiet", "--no-ext-diff", ok=(0, 1))
        if code == 0:
            return
        _, status, _ = await self._git(
            "diff", "--cached", "--name-status", "--no-renames", "--no-ext-diff", "-z"
        )
        changes = _count_changes(status)
        where = f" in {self.path}" if self.path else ""
        message = (
            f"Publish mirror {self.name}{where}: {changes.added} added, "
            f"{changes.changed} changed, {changes.removed} removed"
        )
        await self._git("commit", "-q", "--no-verify", "-m", message)

    async def _push(self) -> bool:
        """Push HEAD to the branch as a fast-forward; False if rejected because it moved."""
        code, stdout, stderr = await self._git(
            "push",
            "--no-verify",
            "--porcelain",
            "origin",
            f"HEAD:refs/heads/{self.branch}",
            ok=(0, 1),
        )
        if code != 0:
            # --porcelain reports each ref's fate on stdout: "!  HEAD:refs/heads/x  [rejected] ..."
            if _PUSH_REJECTED.search(stdout) and not _AUTH_FAILURES.search(stderr):
                return False
            raise self._git_failure("push", stderr)
        _, head, _ = await self._git("rev-parse", "--verify", "HEAD")
        self._remote_tip = head.strip()
        await self._git("update-ref", f"refs/remotes/origin/{self.branch}", self._remote_tip)
        return True


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _count_changes(status: str) -> _Changes:
    """Count ``--name-status -z`` output (status and name alternate, NUL-separated)."""
    fields = status.split("\x00")
    kinds = [fields[i] for i in range(0, len(fields) - 1, 2)]
    return _Changes(
        added=sum(kind.startswith("A") for kind in kinds),
        changed=sum(kind.startswith(("M", "T")) for kind in kinds),
        removed=sum(kind.startswith("D") for kind in kinds),
    )


def _one_line(stderr: str) -> str:
    """git's stderr as one shortened line, without its generic advice."""
    lines = [line.strip() for line in stderr.splitlines()]
    kept = [line for line in lines if line and not line.lower().startswith(_BOILERPLATE)]
    text = "; ".join(kept) or "no message"
    return text if len(text) <= MAX_STDERR_LINE else text[: MAX_STDERR_LINE - 3] + "..."


register(
    BackendType(
        name="git",
        settings_key="git",
        parse_settings=parse_settings,
        create=create,
        public_read_hint=(
            "the pushed branch must be published as pages at public_url (publishing can take "
            "a while after a push)"
        ),
    )
)
