"""Timings of `mirror` against hostile publisher-side input (issue 10), through the real CLI.

Usage::

    python bench/hostile.py [--results FILE]

The tests (tests/test_hostile_input.py) only bound these times with generous
ceilings; the figures themselves are measured here and appended to
``bench/RESULTS.md``: a build whose feed has one entry with 100,000
categories (2.5 MB; before: past 250 s), front matter with 100,000 tags,
80,000 nested ``<div>`` (before: 24 s), a 1 KB YAML alias bomb in the config
(before: 1.2 GB and counting), and a feed server that trickles headers
against a 1 s deadline (before: as long as the server liked).
"""

from __future__ import annotations

import argparse
import html
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.hostile import article, cli, hostile_server, newsroom  # noqa: E402


def _atom(inside: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>T</title><id>urn:t</id><updated>2024-03-05T10:00:00Z</updated>"
        "<entry><title>Bad</title><id>urn:b</id><updated>2024-03-05T10:00:00Z</updated>"
        f'{inside}<content type="html">&lt;p&gt;x&lt;/p&gt;</content></entry></feed>'
    )


def measure(work: Path) -> list[tuple[str, str, float, int]]:
    """(case, input size, seconds, exit code) for each case."""
    rows: list[tuple[str, str, float, int]] = []

    home = work / "categories"
    feed = _atom("".join(f'<category term="t{i}"/>' for i in range(100_000)))
    home.mkdir()
    (home / "feed.xml").write_text(feed, encoding="utf-8")
    config = newsroom(home, sources="  - type: feed\n    path: feed.xml\n")
    ran = cli("--config", str(config), "build")
    rows.append(
        ("feed entry with 100,000 categories", f"{len(feed) / 1e6:.1f} MB", ran.seconds, ran.code)
    )

    home = work / "tags"
    config = newsroom(home)
    tags = "tags: [" + ", ".join(f"t{i}" for i in range(100_000)) + "]\n"
    (home / "articles" / "a.md").write_text(article(extra=tags), encoding="utf-8")
    ran = cli("--config", str(config), "build")
    rows.append(
        ("front matter with 100,000 tags", f"{len(tags) / 1e6:.1f} MB", ran.seconds, ran.code)
    )

    home = work / "divs"
    config = newsroom(home)
    body = "<div>" * 80_000
    (home / "articles" / "a.html").write_text(article(body=body), encoding="utf-8")
    ran = cli("--config", str(config), "build")
    rows.append(("80,000 nested <div>", f"{len(body) / 1e3:.0f} KB", ran.seconds, ran.code))

    home = work / "escaped"
    feed = _atom("").replace("&lt;p&gt;x&lt;/p&gt;", html.escape("<div>" * 80_000), 1)
    home.mkdir()
    (home / "feed.xml").write_text(feed, encoding="utf-8")
    config = newsroom(home, sources="  - type: feed\n    path: feed.xml\n")
    ran = cli("--config", str(config), "build")
    rows.append(
        ("feed entry of 80,000 nested <div>", f"{len(feed) / 1e3:.0f} KB", ran.seconds, ran.code)
    )

    bomb = work / "bomb.yaml"
    bomb.write_text(
        'x: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(
            f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}" if i else "*a"] * 9) + "]\n" for i in range(9)
        ),
        encoding="utf-8",
    )
    ran = cli("--config", str(bomb), "config", "check")
    rows.append(("config alias bomb", f"{bomb.stat().st_size} bytes", ran.seconds, ran.code))

    with hostile_server() as server:
        home = work / "trickle"
        config = newsroom(
            home,
            sources=f"  - type: feed\n    url: {server.url}/trickle-headers\n    timeout_s: 1\n",
        )
        ran = cli("--config", str(config), "build")
        rows.append(("feed server trickling headers, timeout_s 1", "-", ran.seconds, ran.code))
        home = work / "flood"
        config = newsroom(
            home,
            sources=f"  - type: feed\n    url: {server.url}/continue-flood\n    timeout_s: 1\n",
        )
        ran = cli("--config", str(config), "build")
        rows.append(("feed server flooding 100 Continue, timeout_s 1", "-", ran.seconds, ran.code))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rows = measure(Path(scratch))
    lines = [
        f"\n## hostile publisher input, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}. Whole `mirror` "
        "runs (start-up included), one each.",
        "",
        "| case | input | seconds | exit |",
        "| --- | --- | ---: | ---: |",
        *(f"| {case} | {size} | {seconds:.2f} | {code} |" for case, size, seconds, code in rows),
    ]
    report = "\n".join(lines)
    print(report)
    with args.results.open("a", encoding="utf-8") as results:
        results.write(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
