"""Shared parts of the contracts' property tests: their hypothesis settings, rosters and round 1."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck
from hypothesis import strategies as st

from seccl.chain.consensus import ElectionRecord
from tests.chain.helpers import Session

PROPERTY_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
"""The settings every property test adds to its own number of examples."""


def update_posters(everyone: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    """Who posts an update in round 1 (the eligible participants), in roster order: everyone, or
    any part of the roster, none included."""
    return st.one_of(
        st.just(everyone),
        st.lists(st.sampled_from(everyone), unique=True, max_size=len(everyone)).map(
            lambda p: tuple(sorted(p))
        ),
    )


def voters(everyone: tuple[int, ...]) -> st.SearchStrategy[list[int]]:
    """Who votes in round 1: everyone, or any part of the roster, none included."""
    return st.one_of(
        st.just(list(everyone)),
        st.lists(st.sampled_from(everyone), unique=True, max_size=len(everyone)),
    )


def run_first_round(
    session: Session,
    tie_seed: bytes,
    posted: tuple[int, ...],
    ballots: dict[int, list[int]],
    rankings: dict[int, list[int]] | None = None,
) -> ElectionRecord:
    """Round 1 through the real clients: ``posted`` post their updates, each voter of ``ballots``
    votes (with its ranking from ``rankings`` when given), a phase not everyone took part in is
    passed, and the round is tallied."""
    if posted:
        session.fix_tie_seed(tie_seed, posted)  # the revealed salts XOR to the profile's seed
    session.post_updates(1, posted)
    if len(posted) < session.n:
        session.pass_update_phase(1)
    assert session.board.tie_seed_of(1) == (tie_seed if posted else bytes(32))
    for voter, entries in ballots.items():
        session.vote(1, voter, entries, ranking=None if rankings is None else rankings[voter])
    if len(ballots) < session.n:
        session.pass_ballot_phase(1)
    return session.tally(1)
