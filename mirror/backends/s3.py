"""The ``s3`` mirror type: a bucket on any S3-compatible service (AWS, R2, B2, MinIO, Spaces).

Settings::

    s3:
      endpoint_url: https://s3.example.com   # optional; AWS when absent
      bucket: news
      prefix: mirror/                         # optional; keys are PREFIX + mirror path
      region: us-east-1                       # optional
      addressing: path                        # path | virtual
      access_key_id: env:S3_KEY               # secret reference, never the key itself
      secret_access_key: env:S3_SECRET        # secret reference, never the secret itself
      multipart_threshold_mb: 16              # optional; multipart upload at or above this

Requests are signed by aiobotocore (botocore's SigV4, never our own). The
client is created once per backend, lazily inside the running event loop,
and closed by `close`. botocore's own retries are off: the publishing
pipeline owns retries, backoff and deadlines, and a second retry layer
would multiply them. Connect and read timeouts come from `CallLimits`.

Uploads stream: a file below the multipart threshold is read (in a worker
thread) and sent in one PUT; at or above it, it goes as a multipart upload
of ~8 MiB parts read one at a time, so memory is bounded by the threshold,
not by the file. A multipart upload that fails is aborted, so no half
object and no billed orphan parts stay behind. An object appears whole
or not at all: readers never see half an upload.

Downloads stream too, in chunks, after the ``Content-Length`` the service
declares; the cap is the base class's (`Backend.get`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import AioSession  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from mirror.backends.base import (
    Backend,
    CallLimits,
    Capability,
    DeclaredSize,
    ObjectInfo,
    check_path,
)
from mirror.backends.disk import on_disk
from mirror.backends.registry import BackendType, register
from mirror.errors import (
    MirrorAuthError,
    MirrorError,
    MirrorNotFoundError,
    StorageError,
    TransportError,
)
from mirror.secrets import Secret, resolve_secret, secret_reference
from mirror.yamlnodes import Node, required

MIB = 1024 * 1024
PART_BYTES = 8 * MIB
"""Multipart part size; grown only for files that would need more than MAX_PARTS parts."""
MAX_PARTS = 10_000
"""S3's limit on parts in one multipart upload."""
DEFAULT_THRESHOLD_MB = 16
MIN_THRESHOLD_MB = 5
"""S3's smallest allowed part (except the last)."""
MAX_THRESHOLD_MB = 512
"""A file below the threshold is held in memory for its single PUT; this bounds that."""
READ_CHUNK_BYTES = 256 * 1024
ABORT_TIMEOUT_S = 30.0

Addressing = Literal["path", "virtual"]

SETTINGS_KEYS = (
    "endpoint_url",
    "bucket",
    "prefix",
    "region",
    "addressing",
    "access_key_id",
    "secret_access_key",
    "multipart_threshold_mb",
)

AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "Forbidden",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "Unauthorized",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/atom+xml",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".minisig": "text/plain; charset=utf-8",
    ".pub": "text/plain; charset=utf-8",
    ".zip": "application/zip",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
"""Fixed, not from the system's mime.types, so every machine uploads the same headers."""


@dataclass(frozen=True)
class S3Settings:
    """Where an S3 mirror's objects go; secrets are kept as references only."""

    bucket: str
    access_key_id_ref: str
    secret_access_key_ref: str
    endpoint_url: str | None = None
    prefix: str = ""
    region: str = "us-east-1"
    addressing: Addressing = "path"
    multipart_threshold_bytes: int = DEFAULT_THRESHOLD_MB * MIB


def parse_settings(node: Node, base_dir: Path) -> S3Settings:
    """Read an ``s3:`` block; every problem is a `ConfigError` naming file, line and key."""
    fields = node.mapping(SETTINGS_KEYS)
    endpoint_url = None
    if "endpoint_url" in fields:
        endpoint_url = _endpoint_url(fields["endpoint_url"])
    bucket_node = required(fields, "bucket", node)
    bucket = bucket_node.text()
    if "/" in bucket or any(char.isspace() for char in bucket):
        raise bucket_node.fail(
            "must be a bucket name, without slashes or spaces",
            hint="Put folders inside the bucket under prefix:.",
        )
    prefix = _prefix(fields["prefix"]) if "prefix" in fields else ""
    region = fields["region"].text() if "region" in fields else "us-east-1"
    addressing = cast(
        Addressing,
        fields["addressing"].choice(("path", "virtual")) if "addressing" in fields else "path",
    )
    threshold_mb = DEFAULT_THRESHOLD_MB
    if "multipart_threshold_mb" in fields:
        threshold_mb = fields["multipart_threshold_mb"].integer(
            minimum=MIN_THRESHOLD_MB, maximum=MAX_THRESHOLD_MB
        )
    return S3Settings(
        bucket=bucket,
        access_key_id_ref=secret_reference(required(fields, "access_key_id", node)),
        secret_access_key_ref=secret_reference(required(fields, "secret_access_key", node)),
        endpoint_url=endpoint_url,
        prefix=prefix,
        region=region,
        addressing=addressing,
        multipart_threshold_bytes=threshold_mb * MIB,
    )


def _endpoint_url(node: Node) -> str:
    url = node.text()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise node.fail("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # Stops a secret from riding along in the URL, which is printed in errors.
        raise node.fail(
            "must not contain a user name or password",
            hint="Give credentials with access_key_id and secret_access_key references.",
        )
    if parts.query or parts.fragment:
        raise node.fail("must not contain a query or fragment")
    return url


def _prefix(node: Node) -> str:
    text = node.text(nonempty=False).strip()
    if not text:
        return ""
    folder = text.removesuffix("/")
    try:
        check_path(folder)
    except ValueError:
        raise node.fail(
            "must be a relative folder like mirror/ (no leading /, no . or .. parts)"
        ) from None
    return folder + "/"


def create(name: str, settings: S3Settings, base_dir: Path, limits: CallLimits) -> S3Backend:
    """A backend for ``settings``; its secrets are resolved now (a missing one is a ConfigError)."""
    access_key_id = resolve_secret(
        settings.access_key_id_ref, base_dir=base_dir, what=f"S3 access key id of mirror {name}"
    )
    secret_access_key = resolve_secret(
        settings.secret_access_key_ref,
        base_dir=base_dir,
        what=f"S3 secret access key of mirror {name}",
    )
    return S3Backend(
        name,
        settings,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        limits=limits,
    )


class S3Backend(Backend):
    """A mirror that is a bucket (or a prefix in one) on an S3-compatible service."""

    type_name = "s3"
    capabilities = frozenset({Capability.LISTING})

    def __init__(
        self,
        name: str,
        settings: S3Settings,
        *,
        access_key_id: Secret,
        secret_access_key: Secret,
        limits: CallLimits | None = None,
    ) -> None:
        super().__init__(name, limits=limits)
        self.settings = settings
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._exits = contextlib.AsyncExitStack()
        self._client_ready: Any = None
        self._client_lock = asyncio.Lock()

    # --- the client ----------------------------------------------------------------
    async def _client(self) -> Any:
        """The aiobotocore S3 client, created on first use inside the running loop."""
        if self._client_ready is not None:
            return self._client_ready
        async with self._client_lock:
            if self._client_ready is None:
                config = AioConfig(
                    signature_version="s3v4",
                    s3={"addressing_style": self.settings.addressing},
                    # Retries belong to the pipeline (backoff, jitter, deadline).
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=self.limits.timeout_s,
                    read_timeout=self.limits.timeout_s,
                    # Newer botocore adds CRC32 checksums (headers, or aws-chunked
                    # trailers for streams) by default, which several S3-compatible
                    # services reject; integrity is checked end to end by the
                    # read-back verification instead.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                self._client_ready = await self._exits.enter_async_context(
                    AioSession().create_client(
                        "s3",
                        endpoint_url=self.settings.endpoint_url,
                        region_name=self.settings.region,
                        aws_access_key_id=self._access_key_id.text(),
                        aws_secret_access_key=self._secret_access_key.text(),
                        config=config,
                    )
                )
        return self._client_ready

    def _key(self, path: str) -> str:
        return self.settings.prefix + path

    # --- the interface -------------------------------------------------------------
    async def _put(self, path: str, source: Path | bytes, *, size: int) -> None:
        client = await self._client()
        if isinstance(source, bytes):
            size = len(source)
        extra: dict[str, str] = {"ContentType": _content_type(path)}
        if size < self.settings.multipart_threshold_bytes:
            body = source if isinstance(source, bytes) else await _read_whole(source, size)
            await client.put_object(
                Bucket=self.settings.bucket, Key=self._key(path), Body=body, **extra
            )
        else:
            await self._multipart(client, path, source, size=size, extra=extra)

    async def _multipart(
        self,
        client: Any,
        path: str,
        source: Path | bytes,
        *,
        size: int,
        extra: dict[str, str],
    ) -> None:
        key = self._key(path)
        started = await client.create_multipart_upload(
            Bucket=self.settings.bucket, Key=key, **extra
        )
        upload_id: str = started["UploadId"]
        try:
            done: list[dict[str, Any]] = []
            async with contextlib.aclosing(_part_bodies(source, size)) as parts:
                async for number, body in parts:
                    answer = await client.upload_part(
                        Bucket=self.settings.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                    )
                    done.append({"ETag": answer["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                Bucket=self.settings.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            # Also on cancellation: a forgotten upload keeps its parts (and costs) forever.
            await self._abort(client, key, upload_id)
            raise

    async def _abort(self, client: Any, key: str, upload_id: str) -> None:
        """Best effort: the original error matters more than a failed abort."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(min(ABORT_TIMEOUT_S, self.limits.timeout_s)):
                await client.abort_multipart_upload(
                    Bucket=self.settings.bucket, Key=key, UploadId=upload_id
                )

    async def _read(self, path: str) -> AsyncGenerator[bytes | DeclaredSize, None]:
        client = await self._client()
        answer = await client.get_object(Bucket=self.settings.bucket, Key=self._key(path))
        async with answer["Body"] as stream:
            length = answer.get("ContentLength")
            if isinstance(length, int):
                yield DeclaredSize(length)
            while chunk := await stream.read(READ_CHUNK_BYTES):
                yield chunk

    async def _stat(self, path: str) -> ObjectInfo | None:
        client = await self._client()
        try:
            answer = await client.head_object(Bucket=self.settings.bucket, Key=self._key(path))
        except ClientError as error:
            if _error_code(error) in NOT_FOUND_CODES:
                return None
            raise
        return ObjectInfo(path=path, size=int(answer["ContentLength"]))

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        client = await self._client()
        paginator = client.get_paginator("list_objects_v2")
        strip = len(self.settings.prefix)
        async for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", ()):
                path = str(item["Key"])[strip:]
                try:
                    check_path(path)  # folder markers ("a/") and odd keys are not mirror files
                except ValueError:
                    continue
                yield ObjectInfo(path=path, size=int(item["Size"]))

    async def _delete(self, path: str) -> None:
        client = await self._client()
        try:
            await client.delete_object(Bucket=self.settings.bucket, Key=self._key(path))
        except ClientError as error:
            if _error_code(error) not in NOT_FOUND_CODES:  # some services 404 a missing key
                raise

    async def _close(self) -> None:
        self._client_ready = None
        await self._exits.aclose()

    def _translate(self, error: Exception) -> MirrorError:
        """botocore's errors, by code, into ours; server messages and secrets stay out."""
        if isinstance(error, ClientError):
            code = _error_code(error)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in AUTH_CODES or status in (401, 403):
                return MirrorAuthError(
                    f"mirror {self.name}: the S3 service refused our credentials ({code})"
                )
            if code in NOT_FOUND_CODES:
                return MirrorNotFoundError(f"mirror {self.name}: no such object ({code})")
            if code == "NoSuchBucket":
                return TransportError(
                    f"mirror {self.name}: the bucket {self.settings.bucket} does not exist",
                    hint="Create the bucket, or fix bucket: and endpoint_url: in the config.",
                )
            return TransportError(
                f"mirror {self.name}: the S3 service answered {status or 'an error'} ({code})"
            )
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return MirrorAuthError(f"mirror {self.name}: the S3 credentials are incomplete")
        if isinstance(error, BotoCoreError):
            return TransportError(f"mirror {self.name}: {error}")
        return super()._translate(error)


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _content_type(path: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")


async def _read_whole(source: Path, size: int) -> bytes:
    """The whole of a (small) local file, which must be ``size`` bytes long."""

    def read() -> bytes:
        try:
            with source.open("rb") as handle:
                data = handle.read(size + 1)
        except OSError as error:
            raise StorageError(f"the file {source} cannot be read ({error.strerror})") from error
        if len(data) != size:
            raise StorageError(f"the file {source} changed size while it was being uploaded")
        return data

    return await on_disk(read)


async def _part_bodies(source: Path | bytes, size: int) -> AsyncGenerator[tuple[int, bytes], None]:
    """Numbered multipart bodies, read one at a time in a disk thread (memory: one part).

    A file must be exactly ``size`` bytes; one that changes size while it is
    uploaded is a `StorageError`, so an upload is never completed with bytes
    other than the ones the caller described.
    """
    part_bytes = max(PART_BYTES, -(-size // MAX_PARTS))
    if isinstance(source, bytes):
        for number, offset in enumerate(range(0, len(source), part_bytes), start=1):
            yield number, source[offset : offset + part_bytes]
        return
    changed = StorageError(f"the file {source} changed size while it was being uploaded")
    try:
        handle = await on_disk(source.open, "rb")
    except OSError as error:
        raise StorageError(f"the file {source} cannot be read ({error.strerror})") from error
    try:
        for number, offset in enumerate(range(0, size, part_bytes), start=1):
            length = min(part_bytes, size - offset)
            try:
                data = await on_disk(handle.read, length)
            except OSError as error:
                raise StorageError(
                    f"the file {source} cannot be read ({error.strerror})"
                ) from error
            if len(data) != length:
                raise changed
            yield number, data
        if await on_disk(handle.read, 1):
            raise changed
    finally:
        handle.close()


register(
    BackendType(
        name="s3",
        settings_key="s3",
        parse_settings=parse_settings,
        create=create,
        public_read_hint=(
            "the bucket (or its CDN) must let anyone read objects: a bucket policy allowing "
            's3:GetObject to everyone (config/README.md, "A publicly readable S3 bucket")'
        ),
    )
)
