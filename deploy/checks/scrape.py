#!/usr/bin/env python3
"""Wait until a Prometheus metrics page shows every wanted sample (for the deploy checks).

    python3 scrape.py URL SAMPLE... [--timeout-s 60]

A SAMPLE is a whole exposition line, such as
``mirror_mirror_healthy{mirror="disk-a",vantage_point="direct"} 1.0``. Prints
the samples and exits 0 once all of them are on the page; exits 1 naming the
missing ones when the timeout passes first. Standard library only, so it also
runs with Debian's python3 inside a container that has no mirror installed.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request

MAX_PAGE_BYTES = 4 * 1024 * 1024


def page(url: str) -> set[str]:
    """The lines of the metrics page, or none while the server is not up yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a loopback URL)
            text: str = response.read(MAX_PAGE_BYTES).decode("utf-8", "replace")
    except OSError:
        return set()
    return set(text.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("samples", nargs="+", metavar="SAMPLE")
    parser.add_argument("--timeout-s", type=float, default=60.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout_s
    missing: list[str] = list(args.samples)
    while True:
        lines = page(args.url)
        missing = [sample for sample in args.samples if sample not in lines]
        if not missing:
            print("\n".join(f"   {sample}" for sample in args.samples))
            return 0
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    print(
        f"scrape: after {args.timeout_s:.0f} s, {args.url} still lacks: {'; '.join(missing)}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
