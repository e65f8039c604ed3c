"""Reading a mirror as a reader would: transport, the reader view, verdicts.

- `mirror.client.transport` — `DeadlineFetcher`: python-tuf's fetcher with a
  wall-clock deadline under every socket call, ``file://``, proxies.
- `mirror.client.view` — `MirrorView` and `new_updater`: the one python-tuf
  `Updater` factory and the one answer to "what does this mirror serve?".
- `mirror.client.classify` — python-tuf's errors in our tree, and a mirror's
  failure as a verdict (ok, stale, rollback, expired, tampered, unreachable).
"""
