"""An ``s3`` mirror on moto's standalone server, with signature checking on.

moto checks signatures only after ``INITIAL_NO_AUTH_ACTION_COUNT`` requests:
the first three create an IAM user, its policy (s3:*) and its access key;
from then on every request must be signed with that key, and a wrong secret
gets 403 SignatureDoesNotMatch.

Readers GET files anonymously through the public URL, allowed by a bucket
policy (Principal "*", s3:GetObject on the mirror prefix), as on a real
public bucket. moto evaluates that policy for unsigned requests, but with
authentication on it then also runs its IAM signature check on them, which
crashes looking for an Authorization header (HTTP 500). `_anonymous_reads`
patches that one check while the server runs: an unsigned request is
allowed only when the bucket policy permits its action on its object —
what S3 does — and refused with 403 AccessDenied otherwise. Signed requests
(everything `mirror` sends) go through moto's unchanged check.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
from botocore.config import Config  # type: ignore[import-untyped]
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import PermissionResult
from moto.s3.exceptions import S3AccessDeniedError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from mirror.backends import Backend, CallLimits
from mirror.backends.s3 import create, parse_settings
from mirror.yamlnodes import load_yaml
from tests.servers import MirrorServer

BUCKET = "news"
PREFIX = "mirror/"
REGION = "us-east-1"
ACCOUNT = "123456789012"
KEY_ENV = "MIRROR_TEST_S3_KEY"
SECRET_ENV = "MIRROR_TEST_S3_SECRET"  # noqa: S105 - the variable's name, not a secret
BAD_SECRET_ENV = "MIRROR_TEST_S3_BAD_SECRET"  # noqa: S105 - the variable's name
LIMITS = CallLimits(timeout_s=30.0)


def settings_yaml(endpoint_url: str, *, secret_env: str = SECRET_ENV, extra: str = "") -> str:
    """The ``s3:`` block for a moto server at ``endpoint_url``."""
    return (
        f"endpoint_url: {endpoint_url}\n"
        f"bucket: {BUCKET}\n"
        f"prefix: {PREFIX}\n"
        f"region: {REGION}\n"
        "addressing: path\n"
        f"access_key_id: env:{KEY_ENV}\n"
        f"secret_access_key: env:{secret_env}\n" + extra
    )


def backend_factory(workdir: Path, name: str, yaml_text: str) -> Callable[[], Backend]:
    """Build backends the way the config does: YAML file -> parse_settings -> create."""
    config = workdir / f"{name}.yaml"
    config.write_text(yaml_text, encoding="utf-8")

    def make_backend() -> Backend:
        settings = parse_settings(load_yaml(config), workdir)
        return create(name, settings, workdir, LIMITS)

    return make_backend


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[MirrorServer]:
    """moto on 127.0.0.1 with auth on, a bucket, a publicly readable prefix and real keys.

    moto keeps its state and its auth switch per process, so run one of these
    at a time in a process (module-scoped fixtures do; xdist workers are
    separate processes).
    """
    with contextlib.ExitStack() as stack:
        endpoint_url = stack.enter_context(_moto_with_auth())
        key_id, secret = _create_access_key(endpoint_url)
        stack.enter_context(_environment({KEY_ENV: key_id, SECRET_ENV: secret}))
        stack.enter_context(_environment({BAD_SECRET_ENV: secret[::-1] + "x"}))
        s3 = _client(endpoint_url, key_id, secret)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(_public_read_policy()))
        stack.enter_context(_anonymous_reads())

        yield MirrorServer(
            flavour="s3-moto",
            type_name="s3",
            settings_yaml=settings_yaml(endpoint_url),
            public_url=f"{endpoint_url}/{BUCKET}/{PREFIX}",
            make_backend=backend_factory(workdir, "s3-test", settings_yaml(endpoint_url)),
            make_bad_credentials_backend=backend_factory(
                workdir, "s3-bad", settings_yaml(endpoint_url, secret_env=BAD_SECRET_ENV)
            ),
        )


@contextlib.contextmanager
def _moto_with_auth() -> Iterator[str]:
    """A ThreadedMotoServer whose signature checks start after three requests.

    moto reads ``INITIAL_NO_AUTH_ACTION_COUNT`` from the environment once, when
    ``moto.settings`` is imported — which has happened by the time a fixture
    runs — so the count is set through moto's own ``/moto-api/reset-auth``
    (which also restarts the request counter), and put back afterwards.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    try:
        answer = httpx.post(f"{endpoint_url}/moto-api/reset-auth", content=b"3", timeout=10)
        answer.raise_for_status()
        previous = str(answer.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])
        try:
            yield endpoint_url
        finally:
            # moto's state is process-wide: leave none behind for other tests.
            httpx.post(f"{endpoint_url}/moto-api/reset", timeout=10)
            httpx.post(f"{endpoint_url}/moto-api/reset-auth", content=previous.encode(), timeout=10)
    finally:
        server.stop()


def _create_access_key(endpoint_url: str) -> tuple[str, str]:
    """Spend the three unauthenticated requests on a user, its policy and its key."""
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",  # noqa: S106 - moto ignores it for these 3 calls
    )
    iam.create_user(UserName="mirror-publisher")
    iam.put_user_policy(
        UserName="mirror-publisher",
        PolicyName="mirror-s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="mirror-publisher")["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _client(endpoint_url: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}),
    )


def endpoint_of(server: MirrorServer) -> str:
    """The moto server's endpoint URL."""
    return server.public_url.split(f"/{BUCKET}/")[0]


def sync_client(server: MirrorServer) -> Any:
    """A boto3 client with the real key, for tests that inspect the bucket directly."""
    return _client(endpoint_of(server), os.environ[KEY_ENV], os.environ[SECRET_ENV])


def _public_read_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadOfTheMirror",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/{PREFIX}*",
            }
        ],
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _anonymous_reads() -> Iterator[None]:
    """Let moto answer unsigned requests by the bucket policy, as S3 does (see module doc)."""
    name = "_authenticate_and_authorize_s3_action"
    original = getattr(S3Response, name)
    had_own = name in S3Response.__dict__

    def check(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        signed = "Authorization" in self.headers or any(
            field in self.querystring for field in ("X-Amz-Signature", "Signature")
        )
        auth_on = (
            ActionAuthenticatorMixin.request_count >= moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        )
        if signed or not auth_on:
            original(self, bucket_name=bucket_name, key_name=key_name)
            return
        if self.method in ("GET", "HEAD") and bucket_name and key_name:
            bucket = s3_backends[ACCOUNT]["aws"].get_bucket(bucket_name)
            resource = f"arn:aws:s3:::{bucket_name}/{key_name}"
            if bucket.get_permission("s3:GetObject", resource) == PermissionResult.PERMITTED:
                return
        raise S3AccessDeniedError()

    setattr(S3Response, name, check)
    try:
        yield
    finally:
        if had_own:
            setattr(S3Response, name, original)
        else:
            delattr(S3Response, name)
