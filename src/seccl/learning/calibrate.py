"""Calibration of the learning layer alone: SecCL rounds with a mean-score election stand-in."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seccl.learning.aggregation import AGGREGATION_RULES, aggregate
from seccl.learning.data import (
    DATASET_NAMES,
    SPLIT_SCHEMES,
    ParticipantData,
    concat_datasets,
    load_dataset,
    split_participants,
)
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.sparse import apply_update, delta, select_top_fraction
from seccl.learning.training import train_centralized, train_local

DESCRIPTION = """\
Each round every participant trains E local epochs from the global parameters and keeps
the top s of its delta; every other participant scores that update by macro-F1 on its
validation set; the M updates with the best mean score are aggregated and the test
accuracy is printed. The centralized baseline trains on the union of the participants'
train parts with the same settings. No chain, no messages, no Borda: this measures what
the learning layer alone reaches and costs."""


@dataclass(frozen=True)
class RoundResult:
    """What one round produced and cost."""

    round: int
    test_accuracy: float
    candidates: tuple[int, ...]
    train_seconds: float
    eval_seconds: float

    @property
    def seconds(self) -> float:
        return self.train_seconds + self.eval_seconds


def local_seed(seed: int, rnd: int, participant: int) -> int:
    """A distinct, reproducible shuffling seed per (run, round, participant)."""
    return int(np.random.SeedSequence([seed, rnd, participant]).generate_state(1)[0])


def elect_by_mean_score(scores: np.ndarray, m: int) -> tuple[int, ...]:
    """The ``m`` columns with the best mean over the off-diagonal entries (ties: lower index).

    ``scores[j, i]`` is voter ``j``'s score of participant ``i``; the diagonal is ignored.
    """
    n = scores.shape[0]
    off = ~np.eye(n, dtype=bool)
    means = np.array([scores[off[:, i], i].mean() for i in range(n)])
    order = np.argsort(-means, kind="stable")
    return tuple(sorted(int(i) for i in order[:m]))


def run_rounds(
    parts: Sequence[ParticipantData],
    test_scorer: Evaluator,
    *,
    rounds: int,
    epochs: int,
    fraction: float,
    candidates: int,
    rule: str,
    seed: int,
) -> list[RoundResult]:
    """Run the collaborative rounds, printing one line per round."""
    model = build_model(seed)
    theta = get_flat_params(model)
    scorers = [Evaluator(p.validation) for p in parts]
    n = len(parts)
    results = []
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        updates = []
        for i, p in enumerate(parts):
            s = local_seed(seed, r, i)
            local = train_local(theta, p.train, epochs=epochs, seed=s, model=model)
            updates.append(select_top_fraction(delta(local, theta), fraction))
        t1 = time.perf_counter()
        scores = np.zeros((n, n))
        for i, u in enumerate(updates):
            candidate = apply_update(theta, u)
            for j in range(n):
                if j != i:
                    scores[j, i] = scorers[j].macro_f1(candidate)
        elected = elect_by_mean_score(scores, candidates)
        t2 = time.perf_counter()
        theta = aggregate(theta, [updates[i] for i in elected], rule=rule)
        acc = test_scorer.accuracy(theta)
        res = RoundResult(r, acc, elected, t1 - t0, t2 - t1)
        results.append(res)
        print(
            f"round {r:2d}  test acc {acc:.4f}  candidates {list(elected)}  "
            f"train {res.train_seconds:5.1f}s  eval {res.eval_seconds:4.1f}s  "
            f"round {res.seconds:5.1f}s",
            flush=True,
        )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m seccl.learning.calibrate", description=DESCRIPTION)
    ap.add_argument("--dataset", default="mnist", choices=DATASET_NAMES[:2])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--per-participant", type=int, default=400, help="train + validation")
    ap.add_argument("--validation-fraction", type=float, default=0.2)
    ap.add_argument("--scheme", default="iid", choices=SPLIT_SCHEMES)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=10, help="local epochs E per round")
    ap.add_argument("--fraction", type=float, default=0.1, help="s, the shared fraction of Δ")
    ap.add_argument("--candidates", type=int, default=4, help="M")
    ap.add_argument("--rule", default="shared-mean", choices=AGGREGATION_RULES)
    ap.add_argument("--centralized-epochs", type=int, default=10, help="0 to skip")
    # One intra-op thread: this model's ops are too small to gain from two, and on a shared
    # 2-core machine two threads spin at barriers whenever the other core is busy (measured:
    # a 7 s round took over 3 minutes while another process ran).
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train, test = load_dataset(args.dataset, seed=args.seed)
    parts = split_participants(
        train,
        args.participants,
        scheme=args.scheme,
        alpha=args.alpha,
        validation_fraction=args.validation_fraction,
        per_participant=args.per_participant,
        seed=args.seed,
    )
    print(
        f"{args.dataset}: {len(train)} train / {len(test)} test; {args.participants} participants "
        f"({args.scheme}) x {len(parts[0].train)} train + {len(parts[0].validation)} validation; "
        f"E={args.epochs} s={args.fraction} M={args.candidates} rule={args.rule} "
        f"threads={torch.get_num_threads()}",
        flush=True,
    )
    test_scorer = Evaluator(test)
    start = time.perf_counter()
    results = run_rounds(
        parts,
        test_scorer,
        rounds=args.rounds,
        epochs=args.epochs,
        fraction=args.fraction,
        candidates=args.candidates,
        rule=args.rule,
        seed=args.seed,
    )
    total = time.perf_counter() - start
    per_round = total / max(1, len(results))
    print(f"collaborative: final test acc {results[-1].test_accuracy:.4f}, {per_round:.1f} s/round")

    if args.centralized_epochs:
        union = concat_datasets([p.train for p in parts])
        t0 = time.perf_counter()
        accs = train_centralized(union, test, epochs=args.centralized_epochs, seed=args.seed)
        secs = time.perf_counter() - t0
        print(f"centralized on {len(union)} digits: " + " ".join(f"{a:.4f}" for a in accs))
        print(f"centralized: final test acc {accs[-1]:.4f}, {secs:.1f} s")


if __name__ == "__main__":
    main()
