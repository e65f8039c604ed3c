"""Random damage to a valid edition only ever yields a clean verdict, never a crash."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.build import BuildResult
from mirror.errors import VerificationError
from mirror.reader.store import Trust
from mirror.reader.verify_file import load_pinned_root, verify_edition
from tests.conftest import Publisher
from tests.test_attacks import members

MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=0, max_value=7)),
    st.tuples(st.just("overwrite"), st.integers(min_value=0), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just(b"")),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.binary(min_size=1, max_size=64)),
    st.tuples(
        st.just("duplicate"), st.integers(min_value=0), st.integers(min_value=1, max_value=200)
    ),
)


def mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, argument in mutations:
        if not buffer:
            break  # truncated to nothing: later mutations have nothing to act on
        at = position % len(buffer)
        if kind == "flip" and isinstance(argument, int):
            buffer[at] ^= 1 << argument
        elif kind == "overwrite" and isinstance(argument, bytes):
            buffer[at : at + len(argument)] = argument
        elif kind == "truncate":
            del buffer[at:]
        elif kind == "insert" and isinstance(argument, bytes):
            buffer[at:at] = argument
        elif kind == "duplicate" and isinstance(argument, int):
            buffer[at:at] = buffer[at : at + argument]
    return bytes(buffer)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_edition_gets_a_clean_verdict(
    mutations: list[tuple[str, int, object]], built: tuple[Publisher, BuildResult]
) -> None:
    publisher, result = built
    with tempfile.TemporaryDirectory() as folder:
        check_one(publisher, result, mutations, Path(folder))


def check_one(
    publisher: Publisher,
    result: BuildResult,
    mutations: list[tuple[str, int, object]],
    tmp_path: Path,
) -> None:
    """Verify one damaged copy; it is rejected cleanly or yields exactly the signed content."""
    original = result.zip_path.read_bytes()
    damaged = mutate(original, mutations)
    path = tmp_path / "damaged.zip"
    path.write_bytes(damaged)
    pinned = load_pinned_root(publisher.root_json)
    out = tmp_path / "out"
    try:
        verdict = verify_edition(
            path, pinned=pinned, trust=Trust.nothing(), now=datetime.now(UTC), extract_to=out
        )
    except VerificationError:
        assert not out.exists()
        return
    # Accepted (the damage hit only unsigned bytes such as timestamps): what was
    # verified and written must be exactly the publisher's content.
    assert verdict.eid == result.eid
    expected = {k: v for k, v in members(result.zip_path).items() if not k.startswith(".mirror/")}
    written = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written == expected
