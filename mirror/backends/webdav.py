"""The ``webdav`` mirror type: a WebDAV collection (Nextcloud, Apache mod_dav, wsgidav, rclone).

Settings::

    webdav:
      url: https://dav.example.org/news/      # the collection that is the mirror root
      username: alice                          # optional
      password: env:DAV_PASSWORD               # optional; env:NAME or file:PATH, never inline

How each call maps to WebDAV:

* ``put``: MKCOL each missing parent collection, top down (the ones known
  to exist are remembered per backend, and "405 already exists" is fine),
  then one PUT streaming the file with its exact Content-Length. Nothing is
  written under a temporary name and MOVEd: many servers (wsgidav among
  them) implement MOVE-with-overwrite as delete-then-move, which opens a
  window with *no* file, worse than the short window of a partial one. The
  pipeline's publishing order is what keeps readers safe: content-addressed
  files are new names, and the two pointer files (``timestamp.json``,
  ``root.json``) are overwritten in place last, where a reader that catches
  a partial write fails verification and tries another mirror.
* ``get``: GET streamed and stopped at the byte cap; ``delete``: DELETE (404 is fine).
* ``stat``: PROPFIND Depth 0 (404 → None; a collection → None).
* ``list``: one PROPFIND ``Depth: infinity`` from the prefix's folder; a
  server that refuses infinite depth (RFC 4918 lets it: 403, or 400/501 on
  servers such as nginx) is walked with Depth 1 instead, and the choice is
  remembered.

Listings are server-controlled XML, parsed with the standard library under
defences of our own (no extra dependency): the answer is decoded as UTF-8
and any ``<!DOCTYPE``/``<!ENTITY`` is refused before it reaches the parser,
and the parser target refuses a DOCTYPE again as the structural backstop —
no DTD means no entity expansion, so no "billion laughs" or external
entities. Parsing is incremental and keeps only href, size and
collection flag per entry, with caps on total bytes, text length and
nesting, so memory stays flat whatever the server sends. Hrefs pointing
outside the mirror root make the listing fail; names that are not safe
mirror paths (``..``, backslashes) are skipped — we never wrote them.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.etree.ElementTree import ParseError, XMLParser

import httpx

from mirror.backends._http_common import (
    ENDPOINT_KEYS,
    Endpoint,
    HttpBackendBase,
    drain_response,
    parse_endpoint,
    resolve_credentials,
)
from mirror.backends.base import CallLimits, Capability, ObjectInfo, check_path
from mirror.backends.registry import BackendType, register
from mirror.errors import TransportError, UnreadableListingError
from mirror.secrets import Secret
from mirror.yamlnodes import Node

__all__ = [
    "MAX_LISTING_BYTES",
    "DavEntry",
    "MultistatusReader",
    "PropfindAnswer",
    "WebDavBackend",
    "WebDavSettings",
    "create",
    "parse_settings",
]

MAX_LISTING_BYTES = 256 * 1024 * 1024
"""One PROPFIND answer may be this long (about half a million entries); parsing is streamed."""
MAX_XML_TEXT_CHARS = 16 * 1024
"""An href, status or length longer than this is not a real answer."""
MAX_XML_DEPTH = 64
"""A multistatus is six elements deep; anything far deeper is an attack on the parser."""
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/>'
    b"</D:prop></D:propfind>"
)
_DEPTH_REFUSED_STATUSES = (400, 403, 501)
"""How servers refuse ``Depth: infinity`` (RFC 4918 403 propfind-finite-depth; nginx 400)."""

_DAV = "{DAV:}"
_RESPONSE, _HREF, _STATUS = _DAV + "response", _DAV + "href", _DAV + "status"
_PROPSTAT, _PROP, _RESOURCETYPE = _DAV + "propstat", _DAV + "prop", _DAV + "resourcetype"
_COLLECTION, _LENGTH = _DAV + "collection", _DAV + "getcontentlength"


# --- settings ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WebDavSettings:
    """A ``webdav:`` block: where the collection is and who we are there."""

    endpoint: Endpoint


def parse_settings(node: Node, base_dir: Path) -> WebDavSettings:
    """Read a ``webdav:`` block (``url``, optional ``username``, ``password`` reference)."""
    del base_dir  # nothing here is a path; file: references resolve in `create`
    fields = node.mapping(ENDPOINT_KEYS)
    return WebDavSettings(endpoint=parse_endpoint(fields, node))


def create(
    name: str, settings: WebDavSettings, base_dir: Path, limits: CallLimits
) -> WebDavBackend:
    """A backend for the collection in ``settings``; reads the password reference now."""
    password, _ = resolve_credentials(settings.endpoint, (), base_dir, name)
    return WebDavBackend(name, settings.endpoint, password=password, limits=limits)


# --- PROPFIND answers ---------------------------------------------------------------------
@dataclass(frozen=True)
class DavEntry:
    """One ``<response>`` of a multistatus: its href, and the props that came back 200."""

    href: str
    is_collection: bool
    size: int | None


class _MultistatusTarget:
    """An ElementTree parser target that keeps only what a listing needs (no tree is built)."""

    def __init__(self) -> None:
        self.entries: list[DavEntry] = []
        self._stack: list[str] = []
        self._text: list[str] | None = None
        self._text_chars = 0
        self._href: str | None = None
        self._response_ok = True
        self._collection = False
        self._size: int | None = None
        self._prop_status: str | None = None
        self._prop_collection = False
        self._prop_size: int | None = None

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        # Called at the *start* of a DOCTYPE, before any entity in it is declared.
        raise UnreadableListingError("it declares a DOCTYPE (refused: entity expansion attacks)")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        parent = self._stack[-1] if self._stack else ""
        self._stack.append(tag)
        if len(self._stack) > MAX_XML_DEPTH:
            raise UnreadableListingError(f"it nests elements more than {MAX_XML_DEPTH} deep")
        if tag == _RESPONSE:
            self._href, self._response_ok, self._collection, self._size = None, True, False, None
        elif tag == _PROPSTAT:
            self._prop_status, self._prop_collection, self._prop_size = None, False, None
        elif tag == _COLLECTION and parent == _RESOURCETYPE:
            self._prop_collection = True
        if (
            (tag == _HREF and parent == _RESPONSE)
            or (tag == _STATUS and parent in (_RESPONSE, _PROPSTAT))
            or (tag == _LENGTH and parent == _PROP)
        ):
            self._text, self._text_chars = [], 0

    def data(self, text: str) -> None:
        if self._text is not None:
            self._text_chars += len(text)
            if self._text_chars > MAX_XML_TEXT_CHARS:
                raise UnreadableListingError(
                    f"a value is longer than {MAX_XML_TEXT_CHARS} characters"
                )
            self._text.append(text)

    def end(self, tag: str) -> None:
        self._stack.pop()
        parent = self._stack[-1] if self._stack else ""
        if self._text is not None and tag in (_HREF, _STATUS, _LENGTH):
            value = "".join(self._text).strip()
            self._text = None
            if tag == _HREF:
                if self._href is None:
                    self._href = value
            elif tag == _STATUS and parent == _PROPSTAT:
                self._prop_status = value
            elif tag == _STATUS:
                self._response_ok = _status_ok(value)
            elif value.isascii() and value.isdigit() and len(value) <= 20:
                self._prop_size = int(value)
        elif tag == _PROPSTAT and _status_ok(self._prop_status or ""):
            self._collection = self._collection or self._prop_collection
            if self._prop_size is not None:
                self._size = self._prop_size
        elif tag == _RESPONSE and self._href and self._response_ok:
            self.entries.append(DavEntry(self._href, self._collection, self._size))

    def close(self) -> None:
        return None


def _status_ok(status_line: str) -> bool:
    """True for ``HTTP/1.1 200 OK`` (any 2xx)."""
    parts = status_line.split()
    return len(parts) >= 2 and len(parts[1]) == 3 and parts[1].startswith("2")


class MultistatusReader:
    """Parse a 207 Multi-Status answer incrementally: feed bytes, get `DavEntry` values.

    Raises `UnreadableListingError` for anything hostile or broken (see the module docstring).
    """

    def __init__(self, *, max_bytes: int = MAX_LISTING_BYTES) -> None:
        self._max_bytes = max_bytes
        self._seen_bytes = 0
        # utf-8-sig: drops a byte order mark. Feeding *text* to expat makes it ignore the
        # encoding the document declares, so no exotic encoding can hide a DOCTYPE.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._target = _MultistatusTarget()
        # The guards above and in the target are what defusedxml would add (S314).
        self._parser = XMLParser(target=self._target)  # noqa: S314
        self._tail = ""

    def feed(self, chunk: bytes) -> list[DavEntry]:
        """Parse the next piece of the answer; return the entries it completed."""
        self._seen_bytes += len(chunk)
        if self._seen_bytes > self._max_bytes:
            raise UnreadableListingError(f"it is longer than {self._max_bytes} bytes")
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as error:
            raise UnreadableListingError(f"it is not UTF-8 text (byte {error.start})") from error
        return self._parse(text)

    def close(self) -> list[DavEntry]:
        """Finish parsing; return the last entries."""
        try:
            text = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise UnreadableListingError("it ends in the middle of a UTF-8 character") from error
        entries = self._parse(text)
        try:
            self._parser.close()
        except ParseError as error:
            raise UnreadableListingError(f"it is not complete XML ({error})") from error
        return entries + self._take()

    def _parse(self, text: str) -> list[DavEntry]:
        # The declarations are looked for across chunk boundaries, case-insensitively.
        window = (self._tail + text).lower()
        if "<!doctype" in window or "<!entity" in window:
            raise UnreadableListingError(
                "it declares a DOCTYPE or ENTITY (refused: entity expansion)"
            )
        self._tail = window[-8:]
        if text:
            try:
                self._parser.feed(text)
            except ParseError as error:
                raise UnreadableListingError(f"it is not valid XML ({error})") from error
        return self._take()

    def _take(self) -> list[DavEntry]:
        entries, self._target.entries = self._target.entries, []
        return entries


@dataclass(frozen=True)
class PropfindAnswer:
    """One PROPFIND's answer: the entries it lists, or that the server refuses the depth.

    ``entries`` is read while the `WebDavBackend._propfind` block runs; it is
    empty for 404 and when ``depth_refused`` (a server may refuse
    ``Depth: infinity``; the caller then walks with Depth 1).
    """

    entries: AsyncIterator[DavEntry]
    depth_refused: bool = False


async def _no_entries() -> AsyncGenerator[DavEntry, None]:
    return
    yield  # pragma: no cover  (makes this an async generator)


# --- the backend -----------------------------------------------------------------------------
class WebDavBackend(HttpBackendBase):
    """A mirror in a WebDAV collection."""

    type_name = "webdav"
    capabilities = frozenset({Capability.LISTING})

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        *,
        password: Secret | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        super().__init__(name, endpoint, password=password, limits=limits)
        self._root_path = unquote(urlsplit(endpoint.url).path)
        self._collections: set[str] = set()
        """Collections ("a/b/") known to exist, so each is made at most once per backend."""
        self._mkcol_lock: asyncio.Lock | None = None
        self._depth_infinity: bool | None = None
        """Whether the server answers ``Depth: infinity`` (None: not tried yet)."""

    async def _close(self) -> None:
        await super()._close()
        self._mkcol_lock = None  # bound to the loop that is ending

    # --- put ----------------------------------------------------------------------------------
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        await self._make_parents(path)
        status = await self._upload(path, source, size=size, allow=(409,))
        if status == 409:
            # 409 Conflict on PUT means a parent collection is missing: someone removed
            # it after we made it. Forget what we knew, make them again, try once more.
            self._collections.difference_update(["", *_parents(path)])
            await self._make_parents(path)
            await self._upload(path, source, size=size)

    async def _make_parents(self, path: str) -> None:
        # The mirror's own collection first ("" is the configured URL): an admin
        # may point a new mirror at a folder that does not exist yet.
        parents = ["", *_parents(path)]
        if all(collection in self._collections for collection in parents):
            return
        if self._mkcol_lock is None:
            self._mkcol_lock = asyncio.Lock()
        # One at a time: concurrent MKCOLs of the same collection make some servers
        # answer 500 instead of 405; MKCOLs are few (cached), so this costs nothing.
        async with self._mkcol_lock:
            for collection in parents:
                if collection not in self._collections:
                    await self._request(
                        "MKCOL",
                        self._url(collection),
                        f"creating the folder {collection}",
                        allow=(405,),  # 405 Method Not Allowed: it exists already
                    )
                    self._collections.add(collection)

    # --- stat and list -------------------------------------------------------------------
    async def _stat(self, path: str) -> ObjectInfo | None:
        async with self._propfind(self._url(path), "0", f"checking {path}") as answer:
            async for entry in answer.entries:
                # Depth 0 answers for exactly the resource asked about, whatever its href.
                if entry.is_collection or entry.size is None:
                    return None
                return ObjectInfo(path=path, size=entry.size)
        return None

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        folder = prefix[: prefix.rfind("/") + 1]
        if folder:
            check_path(folder[:-1])
        if self._depth_infinity is not False:
            # One Depth: infinity PROPFIND of the folder, unless the server refuses it.
            async with self._propfind(self._url(folder), "infinity", f"listing {prefix}") as answer:
                async for entry in answer.entries:
                    found = self._classify(entry)
                    if (
                        found is not None
                        and not found[1]
                        and found[0].startswith(prefix)
                        and entry.size is not None
                    ):
                        yield ObjectInfo(path=found[0], size=entry.size)
            self._depth_infinity = not answer.depth_refused
            if self._depth_infinity:
                return
        async for info in self._list_by_walking(folder, prefix):
            yield info

    async def _list_by_walking(self, folder: str, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Depth 1 PROPFINDs, breadth first, into the collections that can hold matches."""
        queue = deque([folder])
        seen = {folder}
        while queue:
            current = queue.popleft()
            async with self._propfind(self._url(current), "1", f"listing {current}") as answer:
                async for entry in answer.entries:
                    found = self._classify(entry)
                    if found is None:
                        continue
                    relative, is_collection = found
                    if is_collection:
                        child = relative + "/"
                        # Only strictly below the folder listed: no going in circles.
                        if (
                            child not in seen
                            and child.startswith(current)
                            and (child.startswith(prefix) or prefix.startswith(child))
                        ):
                            seen.add(child)
                            queue.append(child)
                    elif relative.startswith(prefix) and entry.size is not None:
                        yield ObjectInfo(path=relative, size=entry.size)

    def _classify(self, entry: DavEntry) -> tuple[str, bool] | None:
        """(mirror path, is a collection) for an entry; None for the root and unsafe names."""
        path = unquote(urlsplit(entry.href).path)
        if path + "/" == self._root_path:
            return None
        if not path.startswith(self._root_path):
            raise TransportError(
                f"mirror {self.name}: the server lists {entry.href[:200]!r}, "
                f"which is outside {self.endpoint.url}",
                hint="Check that url: names the collection exactly as the server spells it.",
            )
        relative = path[len(self._root_path) :]
        is_collection = entry.is_collection or relative.endswith("/")
        relative = relative.removesuffix("/")
        if not relative:
            return None
        try:
            check_path(relative)
        except ValueError:
            return None  # not a name we could have written
        return relative, is_collection

    @contextlib.asynccontextmanager
    async def _propfind(self, url: str, depth: str, what: str) -> AsyncIterator[PropfindAnswer]:
        """Send one PROPFIND; its entries stream while the block runs (none for 404).

        A refused ``Depth: infinity`` (`_DEPTH_REFUSED_STATUSES`) is an answer, not
        an error: ``depth_refused``. At Depth 0 or 1 those statuses are errors.
        """
        headers = {
            "Depth": depth,
            "Content-Type": 'application/xml; charset="utf-8"',
            "Accept-Encoding": "identity",
        }
        client = self._http()
        async with client.stream("PROPFIND", url, content=PROPFIND_BODY, headers=headers) as answer:
            refused = depth == "infinity" and answer.status_code in _DEPTH_REFUSED_STATUSES
            if answer.status_code == 404 or refused:
                await drain_response(answer)
                yield PropfindAnswer(_no_entries(), depth_refused=refused)
                return
            self._check(answer, what)
            if answer.status_code != 207:
                raise TransportError(
                    f"mirror {self.name}: {what} failed: the server answered HTTP "
                    f"{answer.status_code} instead of a WebDAV listing (207)",
                    hint="Check that url: points at a WebDAV collection.",
                )
            async with contextlib.aclosing(self._entries(answer, what)) as entries:
                yield PropfindAnswer(entries)

    async def _entries(self, answer: httpx.Response, what: str) -> AsyncGenerator[DavEntry, None]:
        """The entries of a 207 answer, parsed as its body arrives."""
        reader = MultistatusReader()
        try:
            async for chunk in answer.aiter_bytes():
                for entry in reader.feed(chunk):
                    yield entry
            for entry in reader.close():
                yield entry
        except UnreadableListingError as error:
            raise UnreadableListingError(
                f"mirror {self.name}: {what} failed: the server's listing is refused: {error}"
            ) from error


def _parents(path: str) -> list[str]:
    """The collections above ``path``, top down: "a/b/c.txt" → ["a/", "a/b/"]."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


register(
    BackendType(
        name="webdav",
        settings_key="webdav",
        parse_settings=parse_settings,
        create=create,
        public_read_hint=(
            "the server must serve the WebDAV folder at public_url to anyone, without credentials"
        ),
    )
)
