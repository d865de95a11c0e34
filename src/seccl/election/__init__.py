"""The election rules' plain-Python references, which the consensus contracts must equal: the
paper's multi-winner Borda count (:mod:`seccl.election.borda`) and the hardened ``gram-gate``
rule (:mod:`seccl.election.gram_gate`)."""

from seccl.election.borda import (
    ABSTAIN,
    MAX_SCORE,
    ElectionOutcome,
    borda_tally,
    candidate_count,
    tie_key,
    voter_ranking,
)

ELECTION_RULES: tuple[str, ...] = ("borda", "gram-gate")
"""The election rules a session may use: the paper's Borda count, and the hardened rule."""

__all__ = [
    "ABSTAIN",
    "ELECTION_RULES",
    "MAX_SCORE",
    "ElectionOutcome",
    "borda_tally",
    "candidate_count",
    "tie_key",
    "voter_ranking",
]
