"""Property: on random gram-gate profiles (participants without an update, views shared by most
voters and a few that deviate, alone or together, dropped and rejected participants, absent voters,
coarse scores that tie, random tie seeds) the GramGateConsensus contract elects exactly what
``seccl.election.gram_gate.gram_gate_tally`` elects and reports the same agreed view."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seccl.chain.backends import ChainBackend
from seccl.chain.gram_gate_consensus import GramGateConsensusClient
from seccl.election import ABSTAIN
from seccl.election.gram_gate import DROPPED, REJECTED, ballot_error, gram_gate_tally, view_digest
from tests.chain.helpers import Session, deploy
from tests.chain.property_helpers import PROPERTY_SETTINGS, run_first_round, update_posters, voters

KEPT, DROP, REJECT = "kept", "dropped", "rejected"


@dataclass(frozen=True)
class Profile:
    n: int
    m: int
    f: int
    tie_seed: bytes
    posted: tuple[int, ...]  # who posts an update: the eligible participants
    ballots: dict[int, list[int]]  # voter -> entries by index

    @property
    def eligible(self) -> int:
        return sum(1 << i for i in self.posted)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    """Mostly small n, to keep the EVM work bounded. Each voter takes the common view (most of
    them), or one of two other views (so that deviants sometimes agree with each other and no view
    has a majority); a view keeps most eligible participants, drops or rejects a few. Narrow score
    ranges make equal medians common."""
    n = draw(st.one_of(*[st.integers(3, 8)] * 6, st.integers(9, 16)))
    m = draw(st.integers(1, n - 1))
    f = draw(st.integers(0, n - 1))  # recorded on chain for the parties' filter; the count ignores it
    tie_seed = draw(st.binary(min_size=32, max_size=32))
    everyone = tuple(range(n))
    posted = draw(update_posters(everyone))
    status = st.sampled_from([KEPT] * 5 + [DROP, REJECT])
    views = [{j: draw(status) for j in posted} for _ in range(3)]
    voting = draw(voters(everyone))
    which = st.sampled_from([0] * 6 + [1, 2])  # most voters take view 0
    high = draw(st.sampled_from([0, 1, 3, 1_000_000]))
    ballots = {}
    for v in sorted(voting):
        view = views[draw(which)]
        entries = []
        for j in range(n):
            if j not in view:
                entries.append(ABSTAIN)  # not eligible (the voter itself included)
            elif view[j] == DROP:
                entries.append(DROPPED)
            elif view[j] == REJECT:
                entries.append(REJECTED)
            elif j == v:
                entries.append(ABSTAIN)  # kept: the voter does not score itself
            else:
                entries.append(draw(st.integers(0, high)))
        ballots[v] = entries
    return Profile(n, m, f, tie_seed, posted, ballots)


def check(backend: ChainBackend, p: Profile) -> None:
    """Run one round of ``p`` through the real clients and compare everything with the reference."""
    assert all(ballot_error(entries, v, p.eligible) is None for v, entries in p.ballots.items())
    session: Session = deploy(
        backend, p.n, p.m, tag=f"gram-prop{p.n}", election="gram-gate", assumed_attackers=p.f
    )
    consensus = session.consensus
    assert isinstance(consensus, GramGateConsensusClient)
    result = run_first_round(session, p.tie_seed, p.posted, p.ballots)

    expected = gram_gate_tally(p.ballots, p.n, p.m, eligible=p.eligible, tie_seed=p.tie_seed, round_=1)
    assert result.candidates == expected.candidates
    assert result.ballots == len(p.ballots)
    assert set(result.candidates) <= set(p.posted)
    agreed = consensus.agreed_view_of(1)
    if expected.agreed is None:
        assert agreed is None
        assert consensus.view_agreed_in_transaction(result.tx_hash) is None
    else:
        assert agreed == (*expected.agreed, expected.votes)
        key = view_digest(*expected.agreed)
        assert consensus.view_agreed_in_transaction(result.tx_hash) == (key, *expected.agreed, expected.votes)
        assert consensus.view_votes(1, key) == expected.votes


# 30 profiles on the embedded EVM and 60 more on anvil (each deploys a session and runs a round).
@pytest.mark.long
@settings(max_examples=30, **PROPERTY_SETTINGS)
@given(profile=profiles())
def test_the_contract_elects_what_the_reference_elects_on_the_embedded_evm(
    embedded: ChainBackend, profile: Profile
) -> None:
    check(embedded, profile)


@pytest.mark.long
@pytest.mark.anvil
@settings(max_examples=60, **PROPERTY_SETTINGS)
@given(profile=profiles())
def test_the_contract_elects_what_the_reference_elects_on_anvil(
    anvil_backend: ChainBackend, profile: Profile
) -> None:
    check(anvil_backend, profile)


def test_forty_participants_with_ties_in_four_words_of_lanes(backend: ChainBackend) -> None:
    # 40 participants: each ballot's scores fill four words of 12 lanes; coarse scores tie often;
    # three eligible participants are dropped (their voters still vote), two rejected, two absent.
    n, m = 40, 12
    posted = tuple(i for i in range(n) if i not in (5, 33))
    dropped, rejected = {7, 19, 38}, {12, 24}
    ballots = {}
    for v in range(n):
        if v in (0, 1, 2):
            continue  # absent
        entries = []
        for j in range(n):
            if j not in posted:
                entries.append(ABSTAIN)
            elif j in dropped:
                entries.append(DROPPED)
            elif j in rejected:
                entries.append(REJECTED)
            elif j == v:
                entries.append(ABSTAIN)
            else:
                entries.append((v * 7 + j * 13) % 5 * 250_000)
        ballots[v] = entries
    check(backend, Profile(n, m, 11, bytes(range(32)), posted, ballots))
