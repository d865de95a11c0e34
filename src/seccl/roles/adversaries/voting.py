"""Colluding voters: adversaries that score their fellow colluders first on their ballots."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from seccl.learning.sparse import SparseUpdate
from seccl.roles.adversaries.base import Adversary

__all__ = ["CollusionVoter"]


class CollusionVoter(Adversary):
    """Trains honestly, but from ``start_round`` on scores every fellow colluder (the indices
    in ``colluders`` other than its own) 1.0 and everyone else 0.0, so its top-``M`` ballot
    ranks the fellows first (among equals the lower tie key first, the contract's rule).

    Its own entry travels as ABSTAIN like everyone's, and so does any update it could not
    verify (see ``Participant``). Scoring the others 0.0 rather than abstaining is the harsher
    choice: an abstention is neutral in the election, a 0.0 counts as an assessment worth no
    points and so lowers the others' mean."""

    def __init__(self, *args: Any, colluders: Collection[int] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.colluders = frozenset(int(c) for c in colluders)
        bad = [c for c in self.colluders if not 0 <= c < self.session.n]
        if bad:
            raise ValueError(f"colluders {sorted(bad)} are not participant indices")

    @property
    def fellows(self) -> frozenset[int]:
        return self.colluders - {self.index}

    def score_updates(self, round_: int, params: np.ndarray, updates: dict[int, SparseUpdate]) -> list[float]:
        if not self.attacking(round_):
            return super().score_updates(round_, params, updates)
        return [1.0 if j in self.fellows else 0.0 for j in range(self.session.n)]
