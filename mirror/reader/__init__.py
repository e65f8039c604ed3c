"""The reader: the person the whole project exists for, and everything they run.

- `mirror.reader.fetch` — `mirror fetch`: the newest edition from whichever
  mirrors still work, verified, incrementally.
- `mirror.reader.verify_file` — `mirror verify` / `mirror extract`: an
  edition file checked with only a pinned root.
- `mirror.reader.store` — the reader's state folder: trust, cache, library.
- `mirror.reader.read` — `mirror read`: open or serve an edition offline.
- `mirror.reader.verdicts` — what the reader is told, in English and Russian.
- `mirror.reader.tufclient` — the TUF conformance suite's client protocol.

Reading a mirror itself is `mirror.client`, shared with the publisher's
read-back and monitor.
"""
