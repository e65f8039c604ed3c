"""The fuzz harness (bench/fuzz.py) runs: each target on its seeds and random mutations.

The real coverage-guided runs (a million executions and more, with atheris)
are in bench/, not here; this only keeps the harness working, in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import fuzz  # noqa: E402 - bench/ is not a package


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_the_fuzz_harness_runs_each_target(target: str) -> None:
    assert fuzz.smoke(target, mutations=500) > 500


def test_a_finding_is_an_exception_other_than_ours() -> None:
    fuzz.check_strictjson(b'{"a": 1, "a": 2}')  # our verdict: no finding
    fuzz.check_edition(b"PK\x05\x06" + b"\0" * 18)
    fuzz.check_frontmatter(b"---\ntitle: [unclosed\n---\n")
