"""`mirror init`: a new newsroom's folder, ready to sync.

Writes a commented ``mirror.yaml`` (one local mirror inside the folder, every
other type shown commented out), an ``articles/`` folder with one example
article, and a key store made with the passphrase the reference names. It
never overwrites: a folder that already holds a config, articles or keys is
refused, naming what is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mirror import fsutil, keystore, secrets
from mirror.errors import ConfigError, KeyStoreError, UsageError
from mirror.ingest.model import normalize_language

CONFIG_NAME = "mirror.yaml"

STARTER_CONFIG = """\
# {publisher}: mirror's configuration. Every path is relative to this file's folder.
# config/README.md in mirror's source documents every key; `mirror help` lists commands.

publisher:
  name: {publisher_yaml}
  title: {publisher_yaml}
  language: {language}

sources:
  - type: directory           # Markdown or HTML files with front matter
    path: articles
  # - type: feed              # or an RSS/Atom feed
  #   url: https://news.example.org/feed.xml

on_article_error: skip        # a broken article is reported and left out; "fail" stops the run

keys:
  dir: keys
  passphrase: {passphrase}    # a reference (env:NAME or file:PATH), never the passphrase

output: out

push:
  quorum: 1                   # raise it as you add mirrors: how many must verify

# Every mirror gets each edition; readers fetch from whichever still works.
# `mirror mirrors add` appends one (and keeps these comments); `mirror config check`
# probes them all, as a sync would.
mirrors:
  - name: local               # a folder: serve it with any web server
    type: local
    public_url: file:mirrors/local/
    local:
      path: mirrors/local
  # - name: bucket            # any S3-compatible store (AWS, R2, B2, MinIO)
  #   type: s3
  #   public_url: https://pub-1234.r2.dev/news/
  #   s3:
  #     endpoint_url: https://ACCOUNT.r2.cloudflarestorage.com
  #     bucket: news
  #     prefix: news/
  #     access_key_id: env:S3_KEY
  #     secret_access_key: env:S3_SECRET
  # - name: vps               # SFTP: webdav, http (PUT) and git pages work alike
  #   type: sftp
  #   public_url: https://vps.example.org/news/
  #   sftp:
  #     host: vps.example.org
  #     username: news
  #     path: /srv/www/news
  #     private_key: file:keys/mirror_ed25519
  #     known_hosts: keys/known_hosts
"""

EXAMPLE_ARTICLE = """\
---
title: Welcome to {publisher}
date: {date}
author: The editors
language: {language}
slug: welcome
tags: [about]
---

This is the first article of **{publisher}**. Put your own Markdown or HTML files
in this folder, each with a front matter like this one, then run `mirror sync`.
"""


@dataclass(frozen=True)
class Started:
    """What `mirror init` made."""

    folder: Path
    config: Path
    root_json: Path
    minisign_pub: Path


def start_newsroom(
    folder: Path, *, publisher: str, language: str, passphrase_ref: str, now: datetime
) -> Started:
    """Write the starter config, an example article and a new key store into ``folder``."""
    if not secrets.is_reference(passphrase_ref):
        raise UsageError(
            "--passphrase must be a reference like env:NAME or file:PATH",
            hint="The passphrase itself never goes on the command line or into the config.",
        )
    tag = normalize_language(language)
    if tag is None:
        raise UsageError(
            f"--language {language!r} is not a language tag", hint="For example: en, ru, fa."
        )
    config, articles, keys = folder / CONFIG_NAME, folder / "articles", folder / "keys"
    there = [p for p in (config, articles, keys) if p.exists()]
    if there:
        raise UsageError(
            f"{folder} already holds {', '.join(p.name for p in there)}; init never overwrites",
            hint="Pick a new folder, or use the config that is there.",
        )
    try:
        passphrase = secrets.resolve_secret(passphrase_ref, base_dir=folder, what="key passphrase")
    except ConfigError as error:  # no passphrase: a key-store problem (exit 5)
        raise KeyStoreError(
            error.message,
            hint="Choose the newsroom's passphrase first, e.g. "
            "`export MIRROR_PASSPHRASE='…'` (keep it in a password manager).",
        ) from error
    quoted = publisher.replace("\\", "\\\\").replace('"', '\\"')
    fsutil.ensure_dir(articles)
    keystore.init_keys(keys, passphrase, publisher_name=publisher, now=now)
    fsutil.atomic_write_bytes(
        config,
        STARTER_CONFIG.format(
            publisher=publisher,
            publisher_yaml=f'"{quoted}"',
            language=tag,
            passphrase=passphrase_ref,
        ).encode("utf-8"),
    )
    fsutil.atomic_write_bytes(
        articles / "welcome.md",
        EXAMPLE_ARTICLE.format(
            publisher=publisher, date=now.strftime("%Y-%m-%dT%H:%M:%SZ"), language=tag
        ).encode("utf-8"),
    )
    return Started(folder, config, keys / "root.json", keys / "minisign.pub")
