"""Property: on random score profiles, the contract elects exactly what the Python reference does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccl.chain.backends import ChainBackend, EmbeddedChain
from seccl.election import borda_tally
from tests.chain.helpers import FAR_FUTURE, Session, deploy_session

# Deploying is the slow part, so profiles of the same (n, m) share a session, one round each.
_SESSIONS: dict[tuple[int, int, int], tuple[Session, list[int]]] = {}


def _session(backend: ChainBackend, n: int, m: int) -> tuple[Session, int]:
    key = (id(backend), n, m)
    if key not in _SESSIONS:
        _SESSIONS[key] = (deploy_session(backend, n, m, tag=f"prop{n}"), [0])
    session, counter = _SESSIONS[key]
    counter[0] += 1
    session.consensus.open_election(counter[0], FAR_FUTURE)
    return session, counter[0]


@st.composite
def profiles(draw: st.DrawFn) -> tuple[int, int, list[list[int]], list[int]]:
    """(n, m, scores by voter, voters who vote). Mostly small n, to keep the EVM work bounded;
    narrow score ranges make ties in rankings and in totals common."""
    n = draw(st.one_of(*[st.integers(3, 8)] * 8, st.integers(9, 100)))
    m = draw(st.integers(1, n - 1))
    high = draw(st.sampled_from([1, 3, 1_000_000]))
    scores = [[0 if j == i else draw(st.integers(0, high)) for j in range(n)] for i in range(n)]
    voters = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return n, m, scores, sorted(voters)


def _check(backend: ChainBackend, n: int, m: int, scores: list[list[int]], voters: list[int]):
    session, round_ = _session(backend, n, m)
    for v in voters:
        session.vote(round_, session.accounts[v], scores[v])
    expected = borda_tally({v: scores[v] for v in voters}, n, m)
    if len(voters) == n:  # partial profiles are checked on the totals (the deadline is far off)
        result = session.consensus.tally(round_, n=n)
        assert result.candidates == expected.candidates
    assert session.consensus.totals_of(round_) == expected.totals


# 200 profiles on anvil; the embedded EVM, about 10x slower per transaction, repeats 40 of them.
_EXAMPLES = {"embedded": 40, "anvil": 200}


@pytest.fixture(scope="module")
def embedded() -> ChainBackend:
    return EmbeddedChain()


@settings(
    max_examples=_EXAMPLES["embedded"],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(profile=profiles())
def test_the_contract_elects_what_the_reference_elects_on_the_embedded_evm(
    embedded: ChainBackend, profile: tuple[int, int, list[list[int]], list[int]]
) -> None:
    n, m, scores, _ = profile
    _check(embedded, n, m, scores, list(range(n)))


@pytest.mark.anvil
@settings(
    max_examples=_EXAMPLES["anvil"],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(profile=profiles())
def test_the_contract_elects_what_the_reference_elects_on_anvil(
    anvil_backend: ChainBackend, profile: tuple[int, int, list[list[int]], list[int]]
) -> None:
    n, m, scores, _ = profile
    _check(anvil_backend, n, m, scores, list(range(n)))


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(profile=profiles())
def test_partial_ballots_count_exactly_as_the_reference(
    backend: ChainBackend, profile: tuple[int, int, list[list[int]], list[int]]
) -> None:
    n, m, scores, voters = profile
    _check(backend, n, m, scores, voters)


@pytest.mark.parametrize("m", [1, 20, 99])
def test_one_hundred_participants_with_ties(backend: ChainBackend, m: int) -> None:
    n = 100
    scores = [[0 if j == i else (i * 7 + j * 13) % 3 for j in range(n)] for i in range(n)]
    _check(backend, n, m, scores, list(range(n)))
