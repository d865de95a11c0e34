"""A colluding minority against the gram-gate election: its own view never becomes the round's (at
most, while honest voters stay away, nobody is elected), and while it holds fewer than half of the
counted entries for a candidate, its plausible ballots cannot move that candidate's median outside
the range of the honest scores for it; on chain, and over random profiles of the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seccl.chain.backends import ChainBackend
from seccl.election import ABSTAIN
from seccl.election.gram_gate import DROPPED, gram_gate_tally
from tests.chain.helpers import Session, deploy


@pytest.fixture(scope="module")
def backend(own_backend: ChainBackend) -> ChainBackend:
    """This module's contract tests run on a chain of their own (``own_backend``)."""
    return own_backend


A = ABSTAIN


def _gram_gate(backend: ChainBackend, n: int, m: int, tag: str) -> Session:
    session = deploy(backend, n, m, tag=tag, election="gram-gate", assumed_attackers=(n - 1) // 2)
    session.post_updates(1)
    return session


def _vote(session: Session, ballots: dict[int, list[int]]) -> None:
    for voter, entries in ballots.items():
        session.vote(1, voter, entries)


def _honest_range(ballots: dict[int, list[int]], honest: range, j: int) -> tuple[int, int]:
    scores = [ballots[v][j] for v in honest if v != j and v in ballots]
    return min(scores), max(scores)


# ─────────────────────────── a minority view ───────────────────────────

N, M = 7, 2
HONEST, COALITION = range(4), range(4, 7)


def _minority_view_ballots() -> dict[int, list[int]]:
    """The honest voters' filter dropped the coalition; the coalition's ballots keep only itself
    and drop everyone else, scoring its own members best."""
    ballots = {}
    for v in HONEST:
        ballots[v] = [
            A if j == v else (DROPPED if j in COALITION else 600_000 + 10_000 * j) for j in range(N)
        ]
    for v in COALITION:
        ballots[v] = [A if j == v else (1_000_000 if j in COALITION else DROPPED) for j in range(N)]
    return ballots


def test_a_minority_view_never_becomes_the_rounds_and_the_honest_majority_elects(
    backend: ChainBackend,
) -> None:
    session = _gram_gate(backend, N, M, "coalition-view")
    ballots = _minority_view_ballots()
    _vote(session, ballots)

    result = session.tally(1)

    assert result.candidates == (3, 2, 1, 0)  # the honest four, all over the bar; no colluder
    seed = session.board.tie_seed_of(1)
    expected = gram_gate_tally(ballots, N, M, eligible=2**N - 1, tie_seed=seed, round_=1)
    assert result.candidates == expected.candidates
    assert session.consensus.agreed_view_of(1) == (0b0001111, 0b1110000, 4)  # type: ignore[attr-defined]


def test_a_minority_view_facing_absent_honest_voters_elects_nobody(backend: ChainBackend) -> None:
    session = _gram_gate(backend, N, M, "coalition-absent")
    ballots = _minority_view_ballots()
    del ballots[0]  # one honest voter stays away: three ballots against three, of seven
    _vote(session, ballots)
    session.pass_ballot_phase(1)

    result = session.tally(1)

    assert result.candidates == () and result.ballots == 6
    assert session.consensus.agreed_view_of(1) is None  # type: ignore[attr-defined]


# ─────────────────────────── plausible ballots ───────────────────────────


def _plausible_ballots(n: int, coalition: range, lift: int) -> dict[int, list[int]]:
    """Every ballot keeps everyone (the filter did not catch the coalition). Honest voters score
    honest participants 700k-790k and the coalition 400k-460k; the coalition scores its fellows
    ``lift`` and every honest participant 0."""
    ballots = {}
    for v in range(n):
        entries = []
        for j in range(n):
            if j == v:
                entries.append(A)
            elif v in coalition:
                entries.append(lift if j in coalition else 0)
            elif j in coalition:
                entries.append(400_000 + 20_000 * ((v + j) % 4))
            else:
                entries.append(700_000 + 30_000 * ((v * j) % 4))
        ballots[v] = entries
    return ballots


@pytest.mark.parametrize("lift", [1_000_000, 790_001], ids=["blatant", "just-above-the-best-honest"])
def test_a_minority_of_plausible_ballots_cannot_move_a_median_outside_the_honest_range(
    backend: ChainBackend, lift: int
) -> None:
    # Nine voters, three colluders: fewer than half of every candidate's eight entries.
    n, m, coalition = 9, 3, range(6, 9)
    session = _gram_gate(backend, n, m, "coalition-plausible")
    ballots = _plausible_ballots(n, coalition, lift)
    _vote(session, ballots)

    result = session.tally(1)

    seed = session.board.tie_seed_of(1)
    outcome = gram_gate_tally(ballots, n, m, eligible=2**n - 1, tie_seed=seed, round_=1)
    assert result.candidates == outcome.candidates
    assert not set(result.candidates) & set(coalition)
    for j, median in outcome.medians.items():
        low, high = _honest_range(ballots, range(6), j)
        assert low <= median <= high


@st.composite
def coalition_profiles(draw: st.DrawFn) -> tuple[int, range, dict[int, list[int]]]:
    """``n`` voters sharing one view that keeps everyone; the last ``k`` collude, fewer than half of
    every candidate's entries (``2k < n - 1``), and cast any scores; honest scores are random."""
    n = draw(st.integers(4, 14))
    k = draw(st.integers(1, (n - 2) // 2))
    coalition = range(n - k, n)
    score = st.integers(0, 1_000_000)
    ballots = {v: [A if j == v else draw(score) for j in range(n)] for v in range(n)}
    return n, coalition, ballots


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(profile=coalition_profiles())
def test_the_reference_keeps_every_median_in_the_honest_range_against_any_minority(
    profile: tuple[int, range, dict[int, list[int]]],
) -> None:
    n, coalition, ballots = profile

    outcome = gram_gate_tally(ballots, n, 1, eligible=2**n - 1, tie_seed=bytes(32), round_=1)

    for j, median in outcome.medians.items():
        low, high = _honest_range(ballots, range(coalition.start), j)
        assert low <= median <= high


def test_three_colluders_of_seven_cannot_push_the_honest_candidates_down() -> None:
    """k colluders of 2k+1 counted voters hold k of an honest candidate's 2k entries: the lower
    median (the rule's first version) was theirs and elected two colluders here; the upper one is
    an honest score."""
    n, coalition = 7, range(4, 7)
    ballots = _plausible_ballots(n, coalition, 1_000_000)

    outcome = gram_gate_tally(ballots, n, 2, eligible=2**n - 1, tie_seed=bytes(32), round_=1)

    assert not set(outcome.candidates) & set(coalition)
    honest = range(coalition.start)
    for j in honest:
        assert outcome.medians[j] >= min(ballots[v][j] for v in honest if v != j)
