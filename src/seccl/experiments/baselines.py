"""`seccl federated`: the comparison's baselines, federated learning without SecCL's election or
chain, on the same participants, data, local training and attacks as a SecCL session.

One run: every round each participant trains from the global model (``Participant.local_model``,
attackers included, built by the same ``attack_factory`` as a SecCL session from the same seed,
so the same participants are adversaries, with the same data split), sends its update, and a
rule below aggregates them into the next global model; nobody scores anybody. The rules:

``fedavg``
    The mean of everyone's whole Δ (McMahan et al. 2017; the participants hold equal shares, so
    the sample-weighted and the plain mean agree).
``dssgd``
    Selective sharing (Shokri & Shmatikov, CCS 2015): every participant's top-``s`` sparse
    update, no election, combined by SecCL's own rule (each coordinate the mean over those who
    shared it, ``seccl.learning.aggregation``): SecCL with the election taken out.
``multikrum``
    Multi-Krum (Blanchard et al., NeurIPS 2017): Flower's ``select_multikrum`` (``flwr.serverapp.
    strategy.multikrum``, which scores each update by its squared distances to its n − f − 2
    nearest, from ``compute_distances``) keeps the n − f best, and their mean is the step.
``median``
    Coordinate-wise median (Yin et al., ICML 2018), by ``numpy.median`` as Flower's FedMedian.
``trimmed-mean``
    Coordinate-wise β-trimmed mean (Yin et al. 2018): Flower's ``trim_mean``
    (``flwr.serverapp.strategy.fedtrimmedavg``).
``fltrust``
    FLTrust (Cao, Fang, Liu, Gong, NDSS 2021), by hand (:func:`fltrust`): the server trains its
    own update on a small clean root data set, scores each update by ``ReLU(cos)`` against it
    and rescales each to the server update's norm before the trust-weighted mean.

The rules other than DSSGD take whole (dense) updates, as they are defined: they see ten times
the coordinates SecCL's updates carry. The defender of Multi-Krum and the trimmed mean is set
for the worst case of the comparison, f = round(0.3·N) attackers (``ASSUMED_ATTACK_FRACTION``),
not told the actual number.

The attacks are the registry's (``seccl.roles.adversaries.registry``): any name ``seccl run
--attack`` takes, built by the same ``attack_factory``, so nothing here is particular to one.
The omniscient colluders (``alie``, ``alie-z1.5``, ``ipm``, ``ipm-large``, ``sign-flip-mean``,
``min-max``, ``min-sum``, ``min-max-std``, ``min-sum-std``; formulas in ``seccl.learning.attacks``)
forge one vector from the honest participants' whole Δs of the round: a rule below that takes
whole updates gets that vector (``dense_update``), DSSGD its top-``s`` coordinates, as SecCL does.
The robust rules and the attacks are checked against byzfl's in
``tests/learning/test_attacks_reference.py``.

The participants are built the way a SecCL session builds them, by a ``Simulation`` on an
in-process EVM that is used for nothing else (a participant checks the session's contracts
when it is made); the rounds themselves never touch it. One finished run is one file,
``metrics.json``, written atomically at the end: a run cut short leaves nothing and starts again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seccl.files import atomic_write_bytes
from seccl.learning.aggregation import aggregate
from seccl.learning.data import Dataset, concat_datasets
from seccl.learning.evaluation import Evaluator
from seccl.learning.model import build_model, get_flat_params
from seccl.learning.training import train_local
from seccl.runs.config import RunConfig
from seccl.runs.records import machine

__all__ = [
    "ASSUMED_ATTACK_FRACTION",
    "METHODS",
    "RESULT_NAME",
    "ROOT_SAMPLES",
    "FederatedRound",
    "fedavg",
    "fltrust",
    "fltrust_trust",
    "median",
    "multikrum",
    "root_data",
    "run_federated",
    "trimmed_mean",
]

METHODS = ("fedavg", "dssgd", "multikrum", "median", "trimmed-mean", "fltrust")
"""The aggregation rules of `seccl federated --method`."""

ASSUMED_ATTACK_FRACTION = 0.3
"""The attacker fraction Multi-Krum's f and the trimmed mean's β are set for: the largest e of
the comparison, so the defender is never told less than the truth, nor the truth itself."""

ROOT_SAMPLES = 100
"""FLTrust's root data set: Cao et al.'s 100 clean samples held by the server."""

RESULT_NAME = "metrics.json"


# ─────────────── the rules, on stacked whole updates (rows) ───────────────


def fedavg(updates: np.ndarray) -> np.ndarray:
    """The mean of the rows."""
    result: np.ndarray = np.asarray(updates, dtype=np.float64).mean(axis=0)
    return result


def multikrum(updates: np.ndarray, f: int, keep: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Multi-Krum with Flower's selection: the mean of the ``keep`` (default n − f) rows whose
    summed squared distances to their n − f − 2 nearest rows are smallest; and their indices."""
    from flwr.app import ArrayRecord, RecordDict
    from flwr.serverapp.strategy.multikrum import select_multikrum

    rows = np.asarray(updates, dtype=np.float64)
    n = rows.shape[0]
    keep = n - f if keep is None else keep
    if not 1 <= keep <= n:
        raise ValueError(f"Multi-Krum must keep between 1 and {n} updates, got {keep}")
    contents = [RecordDict({"update": ArrayRecord([row])}) for row in rows]
    chosen = select_multikrum(contents, num_malicious_nodes=f, num_nodes_to_select=keep)
    kept = sorted(next(i for i, c in enumerate(contents) if c is s) for s in chosen)
    return rows[kept].mean(axis=0), kept


def median(updates: np.ndarray) -> np.ndarray:
    """The coordinate-wise median (``numpy.median``, as Flower's FedMedian)."""
    result: np.ndarray = np.median(np.asarray(updates, dtype=np.float64), axis=0)
    return result


def trimmed_mean(updates: np.ndarray, beta: float) -> np.ndarray:
    """The coordinate-wise mean after cutting the ``⌊β·n⌋`` largest and smallest values
    (Flower's ``trim_mean``)."""
    from flwr.serverapp.strategy.fedtrimmedavg import trim_mean

    result: np.ndarray = trim_mean(np.asarray(updates, dtype=np.float64), beta)
    return result


def fltrust_trust(updates: np.ndarray, server_update: np.ndarray) -> np.ndarray:
    """FLTrust's trust scores: ``ReLU(cos(g_i, g_0))`` of each row against the server's update
    (an update of zero norm, or any update when the server's is zero, gets 0)."""
    rows = np.asarray(updates, dtype=np.float64)
    g0 = np.asarray(server_update, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1)
    n0 = float(np.linalg.norm(g0))
    denominator = norms * n0
    cosine = np.divide(rows @ g0, denominator, out=np.zeros(len(rows)), where=denominator > 0)
    result: np.ndarray = np.maximum(cosine, 0.0)
    return result


def fltrust(updates: np.ndarray, server_update: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FLTrust (Cao et al., NDSS 2021, their Algorithm 1): each update rescaled to the norm of
    the server's, then the mean weighted by the trust scores; zero when nobody is trusted.
    Returns the step and the trust scores."""
    rows = np.asarray(updates, dtype=np.float64)
    trust = fltrust_trust(rows, server_update)
    norms = np.linalg.norm(rows, axis=1)
    n0 = float(np.linalg.norm(np.asarray(server_update, dtype=np.float64)))
    scale = np.divide(n0, norms, out=np.zeros(len(rows)), where=norms > 0)
    if trust.sum() <= 0:
        return np.zeros(rows.shape[1]), trust
    step: np.ndarray = (trust * scale) @ rows / trust.sum()
    return step, trust


def root_data(train_parts: list[Dataset], seed: int, size: int = ROOT_SAMPLES) -> Dataset:
    """FLTrust's root data set: a seeded ``size`` clean samples of the union of the participants'
    train parts. The server collects them from the same population; they may be copies of a
    participant's (the root set adds no sample the participants do not hold between them)."""
    union = concat_datasets(train_parts)
    rng = np.random.default_rng([seed, 0xF1])
    return union.subset(np.sort(rng.choice(len(union), size=min(size, len(union)), replace=False)))


# ─────────────── one run ───────────────


@dataclass
class FederatedRound:
    """One round of a run: the global model's test scores after it, and what the rule kept."""

    round: int
    accuracy: float
    macro_f1: float
    seconds: float
    kept: list[int]  # the participants whose update the rule used (weighted above 0, for FLTrust)
    adversaries_kept: list[int]
    extra: dict[str, float] = field(default_factory=dict)  # attack_success_rate, under a backdoor


def _participants(config: RunConfig, parts: Any, test: Dataset, adversaries: set[int]) -> list[Any]:
    """The participants a SecCL session of ``config`` would have, built by a throwaway session."""
    from seccl.chain.backends import EmbeddedChain
    from seccl.roles.adversaries.registry import attack_factory
    from seccl.runs.launch import learning_settings
    from seccl.runtime.simulation import Simulation

    factory = None
    if config.attack:
        factory = attack_factory(config.attack, adversaries, start_round=config.attack_start_round)
    simulation = Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=config.rounds,
        candidate_fraction=config.candidate_fraction,
        settings=learning_settings(config),
        seed=config.seed,
        participant_factory=factory,
        adversaries=adversaries,
    )
    return list(simulation.participants)


def run_federated(
    config: RunConfig, method: str, *, log: Callable[[str], None] = lambda _line: None
) -> dict[str, Any]:
    """Run ``config`` with aggregation rule ``method`` (one of :data:`METHODS`); returns the
    run's record (what :func:`write_result` saves)."""
    import torch

    from seccl.learning.backdoor import BackdoorProbe
    from seccl.roles.adversaries.base import dense_update
    from seccl.roles.adversaries.poisoning import BackdoorParticipant
    from seccl.roles.adversaries.registry import adversary_count, attack_class, choose_adversaries
    from seccl.runs.launch import participant_data

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    torch.set_num_threads(1)  # bit-exact for a seed, and fair to the other core's user
    started = time.perf_counter()
    parts, test = participant_data(config)
    n = config.participants
    adversaries = choose_adversaries(n, config.attack_fraction, config.seed) if config.attack else set()
    participants = _participants(config, parts, test, adversaries)
    probe = None
    if config.attack and issubclass(attack_class(config.attack), BackdoorParticipant):
        probe = BackdoorProbe(test, target_label=0)
    f = adversary_count(n, ASSUMED_ATTACK_FRACTION)
    root = root_data([p.train for p in parts], config.seed) if method == "fltrust" else None
    scorer = Evaluator(test, batch_size=250)
    params = get_flat_params(build_model(config.seed))
    initial_accuracy, _ = scorer.evaluate(params)
    rounds: list[FederatedRound] = []
    diverged = None
    for r in range(1, config.rounds + 1):
        t0 = time.perf_counter()
        locals_ = [p.local_model(params, r) for p in participants]  # honest ones first recorded
        kept = list(range(n))
        if method == "dssgd":
            sparse = [p.make_update(params, local, r) for p, local in zip(participants, locals_, strict=True)]
            new = aggregate(params, sparse, rule="shared-mean")
        else:
            rows = np.stack(
                [dense_update(p, params, local, r) for p, local in zip(participants, locals_, strict=True)]
            ).astype(np.float64)
            if method == "fedavg":
                step = fedavg(rows)
            elif method == "multikrum":
                step, kept = multikrum(rows, f)
            elif method == "median":
                step = median(rows)
            elif method == "trimmed-mean":
                step = trimmed_mean(rows, ASSUMED_ATTACK_FRACTION)
            else:
                assert root is not None
                server = train_local(
                    params,
                    root,
                    epochs=config.local_epochs,
                    lr=config.learning_rate,
                    batch_size=config.batch_size,
                    seed=config.seed * 1_000_003 + r,
                )
                step, trust = fltrust(rows, server.astype(np.float64) - params.astype(np.float64))
                kept = [i for i in range(n) if trust[i] > 0]
            with np.errstate(over="ignore", invalid="ignore"):
                new = (params.astype(np.float64) + step).astype(np.float32)
        if not np.isfinite(new).all():
            # A rule that let a forged update blow the model up: the run ends here, recorded so.
            diverged = r
            log(f"round {r}: the aggregate is not finite; the model diverged and the run stops")
            break
        params = new
        accuracy, f1 = scorer.evaluate(params)
        extra = {"attack_success_rate": probe(params)} if probe is not None else {}
        record = FederatedRound(
            r, accuracy, f1, time.perf_counter() - t0, kept, sorted(adversaries & set(kept)), extra
        )
        rounds.append(record)
        asr = f"  backdoor success {extra['attack_success_rate']:.3f}" if extra else ""
        log(
            f"round {r}/{config.rounds}  accuracy {accuracy:.4f}  macro-F1 {f1:.4f}  "
            f"adversaries kept {len(record.adversaries_kept)}/{len(adversaries)}{asr}  {record.seconds:.1f} s"
        )
    final = rounds[-1] if rounds else None
    return {
        "method": method,
        "config": config.to_dict(),
        "adversaries": sorted(adversaries),
        "initial_accuracy": initial_accuracy,
        # A diverged model classifies nothing: its accuracy is taken as the chance level.
        "final_accuracy": final.accuracy if final and diverged is None else (1 / test.num_classes),
        "final_macro_f1": final.macro_f1 if final and diverged is None else 0.0,
        "diverged_round": diverged,
        "assumed_attackers": f,
        "root_samples": len(root) if root is not None else None,
        "seconds": time.perf_counter() - started,
        "machine": machine(),
        "complete": True,
        "rounds": [asdict(r) for r in rounds],
    }


def write_result(record: dict[str, Any], directory: Path) -> Path:
    """Save a finished run's record, atomically: the file exists only once the run finished."""
    path = Path(directory) / RESULT_NAME
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path
