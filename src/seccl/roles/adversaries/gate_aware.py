"""Attacks that know the gram-gate election (issue 23): plausible colluding ballots, and backdoors
blended toward the honest mean until the filter keeps them, by the whole coalition or by one
carrier whose fellows look honest, knowing the round's honest updates or only their own."""

from __future__ import annotations

from typing import Any

import numpy as np

from seccl.election.gram_gate import assumed_attackers, filter_updates
from seccl.learning.sparse import SparseUpdate, delta, select_top_fraction
from seccl.roles.adversaries.coalition import Coalition
from seccl.roles.adversaries.poisoning import BackdoorParticipant
from seccl.roles.adversaries.voting import CollusionVoter
from seccl.roles.participant import Participant

__all__ = ["BlindGateBackdoor", "GateBlendBackdoor", "LoneCarrierBackdoor", "PlausibleVoter"]

BLENDS: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05)
"""The blend weights α a gate-aware backdoor tries, largest (most poison) first."""


class PlausibleVoter(CollusionVoter):
    """A colluding voter whose ballot stays inside the honest range: it scores every update on its
    own validation data as an honest voter would, then gives each fellow just above the best score
    it gave an outsider, and each outsider the lowest score it gave any outsider. Its fellows rank
    first (so under Borda it is as strong as ``collude-votes``), yet no entry stands out, so a
    filter on ballots alone cannot tell it from an honest one."""

    def score_updates(self, round_: int, params: np.ndarray, updates: dict[int, SparseUpdate]) -> list[float]:
        honest = Participant.score_updates(self, round_, params, updates)
        if not self.attacking(round_):
            return honest
        outsiders = [honest[j] for j in updates if j not in self.fellows]
        if not outsiders:
            return honest
        best, worst = max(outsiders), min(outsiders)
        return [
            min(1.0, best + 0.001) if j in self.fellows else worst if j in updates else honest[j]
            for j in range(self.session.n)
        ]


class GateBlendBackdoor(BackdoorParticipant):
    """A backdoor that knows the gram-gate filter: each colluder sends ``μ + α(Δ_b − μ) + ξ``,
    its backdoored Δ blended with the honest mean ``μ`` of the round, plus noise ``ξ`` of its own
    with the honest updates' spread per coordinate (so that the carriers are not near-duplicates
    of one another, and look as varied as honest updates), with the largest α in :data:`BLENDS`
    at which the filter (run on the honest updates and every carrier's blend at the same α) keeps
    it; when none does, the plain backdoor (α = 1). A rule that takes whole updates gets the whole
    blend (:meth:`dense_update`), its α found by the same filter, which then stands in for the
    rule's own check (Krum's distances, the median's…). Omniscient, as ALIE: the :class:`Coalition`
    gives it the round's honest updates, which SecCL's commit-then-reveal withholds from a real
    colluder until it has committed; the strongest case for the attacker."""

    def __init__(self, *args: Any, coalition: Coalition | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if coalition is None:
            raise ValueError(f"{type(self).__name__} needs the coalition's knowledge (coalition=…)")
        self.coalition = coalition
        self.last_blend: float | None = None

    def carriers(self) -> list[int]:
        """The colluders that send a backdoor (all of them here)."""
        return sorted(self.coalition.adversaries)

    def carries(self) -> bool:
        return self.index in self.carriers()

    def local_model(self, params: np.ndarray, round_: int) -> np.ndarray:
        if self.attacking(round_) and not self.carries():
            return Participant.local_model(self, params, round_)  # trains on its clean data
        return super().local_model(params, round_)

    def reference(self, params: np.ndarray, round_: int) -> tuple[np.ndarray, dict[int, SparseUpdate]]:
        """What the coalition takes for the honest updates of the round: their whole Δs (rows, for
        the mean and spread it blends with) and their sparse updates by index (for the filter it
        simulates). Here the real ones, read off the :class:`Coalition`."""
        honest = self.coalition.honest_deltas(params, round_)
        updates = dict(zip(self.coalition.honest, self.coalition.honest_updates(params, round_), strict=True))
        return honest, updates

    def blend(self, params: np.ndarray, round_: int, *, history: bool) -> tuple[float, np.ndarray | None]:
        """The blend weight α and this carrier's whole blended Δ (None: no α passes, send the
        plain backdoor). ``history``: run the filter with the earlier rounds' updates of the
        session's board (a chain-free rule has no board: its run simulates this round alone)."""
        honest, honest_updates = self.reference(params, round_)
        mean, spread = honest.mean(axis=0), honest.std(axis=0)
        backdoors = {
            a: delta(self.coalition.local_model(a, params, round_), params).astype(np.float64)
            for a in self.carriers()
        }
        noise = {
            a: np.random.default_rng([self.seed, round_, a, 0x9A7E]).standard_normal(mean.size) * spread
            for a in self.carriers()
        }
        # The f every party of a gram-gate session filters with; against another rule, the
        # default fraction's (a chain-free rule's own check is Krum's, the median's…: this filter
        # stands in for them).
        gated = self.session.election == "gram-gate"
        f = self.session.assumed_attackers if gated else assumed_attackers(self.session.n)
        earlier = self.filter_history(round_) if history and gated else []
        for alpha in BLENDS:
            dense = {a: mean + alpha * (b - mean) + noise[a] for a, b in backdoors.items()}
            blends = {
                a: select_top_fraction(v.astype(np.float32), self.settings.share_fraction)
                for a, v in dense.items()
            }
            everyone = {**honest_updates, **blends}
            view = filter_updates(
                {j: (u.indices, u.values) for j, u in everyone.items()},
                self.session.n,
                f,
                tie_seed=bytes(32),  # the real seed is unknown before the reveals: any fixed one
                round_=round_,
                history=earlier,
            )
            if self.index in view.kept:
                return alpha, dense[self.index]
        return 1.0, None

    def make_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> SparseUpdate:
        own = super().make_update(params, local, round_)
        if not self.attacking(round_) or not self.carries():
            return own
        self.last_blend, blended = self.blend(params, round_, history=True)
        if blended is None:
            return own
        return select_top_fraction(blended.astype(np.float32), self.settings.share_fraction)

    def dense_update(self, params: np.ndarray, local: np.ndarray, round_: int) -> np.ndarray:
        full = super().dense_update(params, local, round_)
        if not self.attacking(round_) or not self.carries():
            return full
        self.last_blend, blended = self.blend(params, round_, history=False)
        return full if blended is None else blended.astype(np.float32)


class BlindGateBackdoor(GateBlendBackdoor):
    """:class:`GateBlendBackdoor` with only what a real coalition knows when it commits (SecCL's
    commit-then-reveal hides the round's honest updates until every commitment is in): its own
    members' clean updates of the round (each colluder also trains on its clean data), as ALIE's
    "partial knowledge" attacker (Baruch et al., §3; Fang et al., USENIX Security 2020), the
    earlier rounds' revealed updates (the filter's history), and the rule. It blends toward its
    members' clean mean with their spread, and keeps the largest α at which the filter keeps it,
    run on a stand-in for the honest participants: its members' clean updates, and as many more
    drawn from the normal law of their mean and spread as make up the honest count (so the
    filter's counts, N − f kept, bind as they will)."""

    def reference(self, params: np.ndarray, round_: int) -> tuple[np.ndarray, dict[int, SparseUpdate]]:
        members = sorted(self.coalition.adversaries)
        clean = [self.coalition.clean_model(a, params, round_) for a in members]
        rows = np.stack([delta(m, params) for m in clean]).astype(np.float64)
        mean, spread = rows.mean(axis=0), rows.std(axis=0, ddof=1)
        labels = [i for i in range(self.session.n) if i not in self.coalition.adversaries]
        rng = np.random.default_rng([self.seed, round_, 0xB11D])
        stand_ins = [*rows, *(mean + rng.standard_normal(mean.size) * spread for _ in labels[len(rows) :])]
        updates = {
            label: select_top_fraction(np.asarray(row, dtype=np.float32), self.settings.share_fraction)
            for label, row in zip(labels, stand_ins, strict=False)
        }
        return rows, updates


class LoneCarrierBackdoor(GateBlendBackdoor):
    """One colluder (the lowest index) carries the gate-aware blended backdoor; its fellows train
    honestly on their clean data, so their updates pass every geometric check and their ballots
    count. Combine with ``collude-plausible`` so they also lift the carrier on their ballots."""

    def carriers(self) -> list[int]:
        return [min(self.coalition.adversaries)]
