"""The configuration file: YAML in, typed and validated settings out.

Every path is relative to the config file's folder. Unknown keys are
rejected with a "did you mean"; every error names file, line and key.
Secrets are references only (``env:NAME``, ``file:PATH``), resolved when
they are needed and never printed. config/README.md documents each key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mirror import caps, secrets
from mirror.backends.registry import backend_type
from mirror.errors import ConfigError, KeyStoreError
from mirror.mirror_types import BACKEND_MODULES
from mirror.output_folder import OutputFolder
from mirror.yamlnodes import Node, decimal, load_yaml, required, whole

OnError = Literal["skip", "fail"]


@dataclass(frozen=True)
class Publisher:
    """Who publishes, and how the edition's index is titled."""

    name: str
    title: str
    language: str


@dataclass(frozen=True)
class DirectorySource:
    """A folder of Markdown/HTML articles with front matter."""

    path: Path


@dataclass(frozen=True)
class FeedSource:
    """An RSS or Atom feed, from a file or an http(s) URL."""

    location: str
    """The feed's URL, or its file's path with the config's folder joined to it already
    (as the other paths of the config are)."""
    allow_private_addresses: bool = False
    timeout_s: float = 30.0
    """Wall-clock limit on the whole exchange with the feed's server (redirects included)."""
    """Let the feed's redirects lead to loopback, link-local and private addresses (an
    intranet feed); off, such a redirect is refused, so a hostile feed server cannot make
    the newsroom's host send requests to its own services."""


Source = DirectorySource | FeedSource


@dataclass(frozen=True)
class EditionSettings:
    """How editions are made."""

    expires_days: int = 30
    compression_level: int = 6
    retention_days: int = 90
    """Editions older than this leave the repository (and mirrors), with their unused content."""
    keep_newest: int = 3
    """Editions always kept, whatever their age."""
    archive_every_days: int = 7
    """A large edition ZIP goes to the mirrors at most this often; editions in between are
    published article by article (readers update incrementally; the ZIP stays local)."""
    archive_small_mb: int = 64
    """An edition ZIP up to this size always goes to the mirrors."""
    latest_days: int = 7
    """The latest bundle holds the articles of this many days before the build (0: no bundle)."""
    latest_max_articles: int = 100
    """At most this many articles in the latest bundle (the newest ones)."""
    latest_images: bool = False
    """Put the latest articles' images in the bundle too (bigger; off for throttled links)."""


@dataclass(frozen=True)
class TrustSettings:
    """Metadata shape and lifetimes."""

    hash_bin_bits: int = 8
    snapshot_expires_days: int = 30
    timestamp_expires_days: int = 7
    long_lived_expires_days: int = 365


@dataclass(frozen=True)
class KeySettings:
    """Where the key store lives and how its passphrase is found."""

    dir: Path
    passphrase_ref: str


@dataclass(frozen=True)
class MirrorLimits:
    """Bounds on pushing to one mirror."""

    concurrency: int = 8
    """Uploads in flight at once to this mirror."""
    timeout_s: float = 60.0
    """Longest single call (upload, download, listing)."""
    retries: int = 4
    """Extra attempts after a failed call (transport errors only)."""
    deadline_s: float = 1800.0
    """Longest time spent on this mirror in one run, retries included, before the time
    its bytes need (`deadline_for`)."""

    def deadline_for(self, moved_bytes: int) -> float:
        """The time one push or read-back that moves ``moved_bytes`` may take on this mirror.

        `deadline_s`, plus what the slowest honest link needs for those bytes
        (`caps.MIN_TRANSFER_RATE_BYTES_PER_S`): a first push of a large
        archive must not fail on a deadline sized for ten new articles.
        """
        return self.deadline_s + moved_bytes / caps.MIN_TRANSFER_RATE_BYTES_PER_S


@dataclass(frozen=True)
class PushSettings:
    """Run-wide push settings."""

    mirrors_at_once: int = 16
    quorum: int = 1
    """Minimum number of mirrors that must verify for `mirror sync` to succeed."""
    max_delete: int = 1000
    """Most files retention may delete from one mirror in one run."""


@dataclass(frozen=True)
class MirrorSettings:
    """One mirror: where to push, where readers fetch, and the backend's own settings."""

    name: str
    type: str
    public_url: str
    announce: bool
    enabled: bool
    tags: tuple[str, ...]
    settings: Any
    """The backend type's frozen settings value (see `mirror.backends`)."""
    limits: MirrorLimits


@dataclass(frozen=True)
class VantagePoint:
    """Where monitor checks come from: directly, or through a proxy (Tor, a VPS abroad)."""

    name: str
    proxy: str | None = None
    """``http://``, ``https://``, ``socks5://`` URL, or a secret reference (``env:NAME``) to one
    that carries credentials; never printed (only ``name`` is)."""


@dataclass(frozen=True)
class WebhookSettings:
    """Where monitor state changes are POSTed, signed with HMAC-SHA256."""

    url: str
    secret_ref: str
    timeout_s: float = 5.0
    retries: int = 3


@dataclass(frozen=True)
class MetricsSettings:
    """Where `mirror status --watch` serves Prometheus metrics."""

    port: int = 9464
    listen: str = "127.0.0.1"


@dataclass(frozen=True)
class MonitorSettings:
    """The optional ``monitor:`` block (see config/README.md)."""

    vantage_points: tuple[VantagePoint, ...] = (VantagePoint("direct"),)
    webhook: WebhookSettings | None = None
    metrics: MetricsSettings = MetricsSettings()
    timeout_s: float = 30.0
    """Longest one check of one mirror from one vantage point may take."""


@dataclass(frozen=True)
class Config:
    """Everything `mirror` reads from the configuration file."""

    file: Path
    publisher: Publisher
    sources: tuple[Source, ...]
    on_article_error: OnError
    edition: EditionSettings
    trust: TrustSettings
    keys: KeySettings
    output_dir: Path
    mirrors: tuple[MirrorSettings, ...]
    push: PushSettings
    monitor: MonitorSettings = MonitorSettings()

    @property
    def base_dir(self) -> Path:
        """The folder relative paths are resolved against."""
        return self.file.parent

    def passphrase(self) -> secrets.Secret:
        """Resolve the key store passphrase reference (`KeyStoreError`, exit 5, if it cannot)."""
        try:
            return secrets.resolve_secret(
                self.keys.passphrase_ref, base_dir=self.base_dir, what="key passphrase"
            )
        except ConfigError as error:
            raise KeyStoreError(error.message, hint=error.hint) from error

    @property
    def output(self) -> OutputFolder:
        """The output folder and every path in it."""
        return OutputFolder(self.output_dir)

    @property
    def editions_dir(self) -> Path:
        """Where built edition ZIPs and their .minisig files go."""
        return self.output.editions_dir

    @property
    def publish_dir(self) -> Path:
        """The publish tree (TUF metadata/ and targets/) copied to mirrors."""
        return self.output.publish_dir


TOP_KEYS = (
    "publisher",
    "sources",
    "on_article_error",
    "edition",
    "trust",
    "keys",
    "output",
    "limits",
    "push",
    "mirrors",
    "monitor",
)
LIMIT_KEYS = ("concurrency", "timeout_s", "retries", "deadline_s")


def load_config(path: Path) -> Config:
    """Read and validate the configuration at ``path``."""
    root = load_yaml(path)
    top = root.mapping(TOP_KEYS)
    base = path.parent
    return Config(
        file=path,
        publisher=_publisher(required(top, "publisher", root)),
        sources=tuple(_source(node, base) for node in required(top, "sources", root).items()),
        on_article_error=_on_error(top.get("on_article_error")),
        edition=_edition(top.get("edition")),
        trust=_trust(top.get("trust")),
        keys=_keys(required(top, "keys", root), base),
        output_dir=_path(required(top, "output", root), base),
        mirrors=_mirrors(top.get("mirrors"), base, _limits(top.get("limits"), MirrorLimits())),
        push=_push(top.get("push")),
        monitor=parse_monitor(top.get("monitor")),
    )


def _path(node: Node, base: Path) -> Path:
    return Path(os.path.normpath(base / Path(node.text()).expanduser()))


def _publisher(node: Node) -> Publisher:
    fields = node.mapping(("name", "title", "language"))
    name = required(fields, "name", node).text()
    language = fields["language"].text() if "language" in fields else "en"
    return Publisher(
        name=name,
        title=fields["title"].text() if "title" in fields else name,
        language=language,
    )


def _source(node: Node, base: Path) -> Source:
    fields = node.mapping(("type", "path", "url", "allow_private_addresses", "timeout_s"))
    kind = required(fields, "type", node).choice(("directory", "feed"))
    if kind == "directory":
        for name in ("url", "allow_private_addresses", "timeout_s"):
            if name in fields:
                raise fields[name].fail(f"a directory source takes path, not {name}")
        return DirectorySource(_path(required(fields, "path", node), base))
    if ("path" in fields) == ("url" in fields):
        raise node.fail("a feed source needs exactly one of path or url")
    opt_in = fields.get("allow_private_addresses")
    private = opt_in.boolean() if opt_in is not None else False
    timeout_s = decimal(fields, "timeout_s", FeedSource("").timeout_s, minimum=0.1, maximum=3600)
    if "url" in fields:
        url = fields["url"].text()
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise fields["url"].fail("must be an http:// or https:// URL")
        return FeedSource(url, allow_private_addresses=private, timeout_s=timeout_s)
    location = str(_path(fields["path"], base))
    return FeedSource(location, allow_private_addresses=private, timeout_s=timeout_s)


def _on_error(node: Node | None) -> OnError:
    if node is None:
        return "skip"
    return "skip" if node.choice(("skip", "fail")) == "skip" else "fail"


def _edition(node: Node | None) -> EditionSettings:
    if node is None:
        return EditionSettings()
    fields = node.mapping(
        (
            "expires_days",
            "compression_level",
            "retention_days",
            "keep_newest",
            "archive_every_days",
            "archive_small_mb",
            "latest_days",
            "latest_max_articles",
            "latest_images",
        )
    )
    defaults = EditionSettings()
    return EditionSettings(
        expires_days=whole(fields, "expires_days", defaults.expires_days, minimum=1, maximum=3650),
        compression_level=whole(
            fields, "compression_level", defaults.compression_level, minimum=0, maximum=9
        ),
        retention_days=whole(
            fields, "retention_days", defaults.retention_days, minimum=1, maximum=36500
        ),
        keep_newest=whole(fields, "keep_newest", defaults.keep_newest, minimum=1, maximum=10000),
        archive_every_days=whole(
            fields, "archive_every_days", defaults.archive_every_days, minimum=0, maximum=3650
        ),
        archive_small_mb=whole(
            fields, "archive_small_mb", defaults.archive_small_mb, minimum=0, maximum=1_000_000
        ),
        latest_days=whole(fields, "latest_days", defaults.latest_days, minimum=0, maximum=3650),
        latest_max_articles=whole(
            fields, "latest_max_articles", defaults.latest_max_articles, minimum=1, maximum=10_000
        ),
        latest_images=fields["latest_images"].boolean()
        if "latest_images" in fields
        else defaults.latest_images,
    )


def _trust(node: Node | None) -> TrustSettings:
    defaults = TrustSettings()
    if node is None:
        return defaults
    fields = node.mapping(
        (
            "hash_bin_bits",
            "snapshot_expires_days",
            "timestamp_expires_days",
            "long_lived_expires_days",
        )
    )

    def days(name: str, default: int) -> int:
        return whole(fields, name, default, minimum=1, maximum=3650)

    return TrustSettings(
        hash_bin_bits=whole(fields, "hash_bin_bits", defaults.hash_bin_bits, minimum=1, maximum=14),
        snapshot_expires_days=days("snapshot_expires_days", defaults.snapshot_expires_days),
        timestamp_expires_days=days("timestamp_expires_days", defaults.timestamp_expires_days),
        long_lived_expires_days=days("long_lived_expires_days", defaults.long_lived_expires_days),
    )


def _keys(node: Node, base: Path) -> KeySettings:
    fields = node.mapping(("dir", "passphrase"))
    return KeySettings(
        dir=_path(required(fields, "dir", node), base),
        passphrase_ref=secrets.secret_reference(required(fields, "passphrase", node)),
    )


def _limits(node: Node | None, defaults: MirrorLimits) -> MirrorLimits:
    if node is None:
        return defaults
    fields = node.mapping(LIMIT_KEYS)
    return MirrorLimits(
        concurrency=whole(fields, "concurrency", defaults.concurrency, minimum=1, maximum=256),
        timeout_s=decimal(fields, "timeout_s", defaults.timeout_s, minimum=0.1, maximum=3600),
        retries=whole(fields, "retries", defaults.retries, minimum=0, maximum=100),
        deadline_s=decimal(fields, "deadline_s", defaults.deadline_s, minimum=1, maximum=86400),
    )


def _push(node: Node | None) -> PushSettings:
    defaults = PushSettings()
    if node is None:
        return defaults
    fields = node.mapping(("mirrors_at_once", "quorum", "max_delete"))
    return PushSettings(
        mirrors_at_once=whole(
            fields, "mirrors_at_once", defaults.mirrors_at_once, minimum=1, maximum=1024
        ),
        quorum=whole(fields, "quorum", defaults.quorum, minimum=0, maximum=10000),
        max_delete=whole(fields, "max_delete", defaults.max_delete, minimum=0, maximum=10_000_000),
    )


MIRROR_KEYS = ("name", "type", "public_url", "announce", "enabled", "tags", "limits")


def _mirrors(node: Node | None, base: Path, limits: MirrorLimits) -> tuple[MirrorSettings, ...]:
    if node is None or node.value is None:
        return ()
    result: list[MirrorSettings] = []
    names: set[str] = set()
    for item in node.items():
        result.append(parse_mirror(item, base, limits))
        if result[-1].name in names:
            raise item.fail(f"the mirror name {result[-1].name!r} is used twice")
        names.add(result[-1].name)
    return tuple(result)


def parse_mirror(item: Node, base: Path, limits: MirrorLimits) -> MirrorSettings:
    """Validate one mirror entry, including its backend's settings block."""
    if not isinstance(item.value, dict):
        raise item.fail("must be a mapping of keys")
    type_name = required(item.value, "type", item).choice(tuple(BACKEND_MODULES))
    kind = backend_type(type_name)
    fields = item.mapping((*MIRROR_KEYS, kind.settings_key))
    name = required(fields, "name", item).text()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise fields["name"].fail("must be letters, digits, '.', '_' or '-' (at most 64)")
    url = required(fields, "public_url", item).text()
    if urlsplit(url).scheme not in ("http", "https", "file"):
        raise fields["public_url"].fail("must be an http://, https:// or file:// URL")
    if url.lower().startswith("file:") and not url.lower().startswith("file:/"):
        # "file:../mirrors/a/": a folder relative to this config file, as paths here are.
        url = (base / url[len("file:") :]).resolve().as_uri()
    if not url.endswith("/"):
        url += "/"
    tags = tuple(t.text() for t in fields["tags"].items()) if "tags" in fields else ()
    settings_node = required(fields, kind.settings_key, item)
    return MirrorSettings(
        name=name,
        type=type_name,
        public_url=url,
        announce=fields["announce"].boolean() if "announce" in fields else True,
        enabled=fields["enabled"].boolean() if "enabled" in fields else True,
        tags=tags,
        settings=kind.parse_settings(settings_node, base),
        limits=_limits(fields.get("limits"), limits),
    )


MONITOR_KEYS = ("vantage_points", "webhook", "metrics", "timeout_s")


def parse_monitor(node: Node | None) -> MonitorSettings:
    """Validate the optional ``monitor:`` block; every error names file, line and key."""
    defaults = MonitorSettings()
    if node is None or node.value is None:
        return defaults
    fields = node.mapping(MONITOR_KEYS)
    vantage_points = defaults.vantage_points
    if "vantage_points" in fields:
        vantage_points = tuple(_vantage_point(item) for item in fields["vantage_points"].items())
        if not vantage_points:
            raise fields["vantage_points"].fail("needs at least one vantage point")
        names = [v.name for v in vantage_points]
        for item, name in zip(fields["vantage_points"].items(), names, strict=True):
            if names.count(name) > 1:
                raise item.fail(f"the vantage point name {name!r} is used twice")
    return MonitorSettings(
        vantage_points=vantage_points,
        webhook=_webhook(fields["webhook"]) if "webhook" in fields else None,
        metrics=_metrics(fields["metrics"]) if "metrics" in fields else defaults.metrics,
        timeout_s=decimal(fields, "timeout_s", defaults.timeout_s, minimum=0.5, maximum=3600),
    )


def _vantage_point(node: Node) -> VantagePoint:
    fields = node.mapping(("name", "proxy"))
    name = required(fields, "name", node).text()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise fields["name"].fail("must be letters, digits, '.', '_' or '-' (at most 64)")
    if "proxy" not in fields:
        return VantagePoint(name)
    proxy = fields["proxy"].text()
    if secrets.is_reference(proxy):
        return VantagePoint(name, proxy)
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise fields["proxy"].fail(
            "must be an http://, https:// or socks5:// URL (or env:NAME / file:PATH)"
        )
    if parts.password is not None:
        raise fields["proxy"].fail(
            "carries a password inline",
            hint="Put the whole proxy URL in an environment variable and write proxy: env:NAME.",
        )
    return VantagePoint(name, proxy)


def _webhook(node: Node) -> WebhookSettings:
    fields = node.mapping(("url", "secret", "timeout_s", "retries"))
    url = required(fields, "url", node).text()
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise fields["url"].fail("must be an http:// or https:// URL")
    secret_ref = secrets.secret_reference(required(fields, "secret", node))
    defaults = WebhookSettings(url, secret_ref)
    return WebhookSettings(
        url=url,
        secret_ref=secret_ref,
        timeout_s=decimal(fields, "timeout_s", defaults.timeout_s, minimum=0.1, maximum=300),
        retries=whole(fields, "retries", defaults.retries, minimum=0, maximum=10),
    )


def _metrics(node: Node) -> MetricsSettings:
    fields = node.mapping(("port", "listen"))
    defaults = MetricsSettings()
    return MetricsSettings(
        port=whole(fields, "port", defaults.port, minimum=0, maximum=65535),
        listen=fields["listen"].text() if "listen" in fields else defaults.listen,
    )
