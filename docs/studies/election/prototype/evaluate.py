"""Chain-free evaluation of the krum-gate rule (rule.py) against the paper's Borda and Multi-Krum.

N = 20 participants on the project's MNIST, built exactly as `seccl federated` builds them
(`seccl.experiments.baselines._participants`: same split, adversaries, initial model, training).
Each round every participant trains from the global model of *this* method's run, then:

- ``borda``: every honest voter scores every other update (macro-F1 on its 80 validation digits,
  in ppm); colluders cast *plausible* ballots (below); the paper's Borda count elects M = 4;
  SecCL's shared-mean aggregates.
- ``rule`` (``rule-q1``: the same with SecCL's shared-mean, q = 1; ``rule-centre``: the rejected
  veto-then-centrality count): rule.py's geometric filter over all revealed sparse updates; the
  honest counted voters (everyone not dropped as a duplicate or coalition member) score the kept
  updates *as clipped*; the median count elects M = 4; clipped, q = 2 aggregation.
- ``multikrum``: the baselines' Multi-Krum (Flower's selection, f = 6) on whole updates.

Plausible colluding ballots (every attacked run; omniscient: they read the honest ballots):
a colluder gives each fellow the best honest candidate's median honest score + 0.001, and each
honest candidate the *lowest* score any honest voter gave it. Every entry is inside the range
honest voters produce, and the fellows are ranked first (so for Borda it is as strong as the grid's
1.0/0.0 colluders).

``--lone`` (with ``--adaptive``): one colluder carries the blended backdoor; the other colluders
send ``μ + N(0, σ_h²)`` (σ_h the honest per-coordinate spread), honest-looking, and vote.

``--adaptive`` (backdoor only): the backdoored colluders blend their Δ with the honest mean,
``μ + α(Δ_a − μ)``, with the largest α in a grid whose top-s updates all pass the filter of the
method in use (rule.py's filter for ``rule``; Flower's Multi-Krum selection for ``multikrum``;
Borda has no geometric check, so α = 1 there). Omniscient: it knows every honest Δ of the round.

Run with nice, one process: ``nice -n 15 env PYTHONPATH=src .venv/bin/python
evaluate.py --attack backdoor --e 0.3``; ``--summary`` prints the table of results.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import rule as R  # noqa: E402

RESULTS = HERE / "results.jsonl"
LONE = False
ALPHAS = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05)


def tie_seed_of(seed: int) -> bytes:
    return hashlib.sha256(f"seccl-ties/{seed}".encode()).digest()


def ppm(x: float) -> int:
    from seccl.protocol.messages import score_to_ppm

    return score_to_ppm(x)


def plausible_colluder_ballots(ballots, honest, adversaries, candidates, n):
    """Colluders' ballots from the honest ones (see module docstring)."""
    from seccl.election import ABSTAIN

    column = {
        j: [ballots[v][j] for v in honest if v in ballots and ballots[v][j] != ABSTAIN] for j in candidates
    }
    medians = [statistics.median_low(column[j]) for j in candidates if j in honest and column[j]]
    best = max(medians) if medians else 500_000
    out = {}
    for a in adversaries:
        row = [ABSTAIN] * n
        for j in candidates:
            if j == a:
                continue
            if j in adversaries:
                row[j] = min(best + 1000, 1_000_000)
            elif column[j]:
                row[j] = min(column[j])
            else:
                row[j] = 0
        out[a] = row
    return out


def honest_ballot(p, params, scored, n):
    from seccl.election import ABSTAIN
    from seccl.learning.sparse import apply_update

    row = [ABSTAIN] * n
    for j, u in scored.items():
        if j != p.index:
            row[j] = ppm(p.evaluator.macro_f1(apply_update(params, u)))
    return row


def run(attack: str | None, e: float, seed: int, method: str, rounds: int, adaptive: bool, split: str = "iid") -> dict:
    import torch

    from seccl.election import borda_tally, candidate_count
    from seccl.experiments.baselines import _participants, multikrum
    from seccl.learning.aggregation import aggregate
    from seccl.learning.backdoor import BackdoorProbe
    from seccl.learning.evaluation import Evaluator
    from seccl.learning.model import build_model, get_flat_params
    from seccl.learning.sparse import delta, select_top_fraction
    from seccl.roles.adversaries.base import dense_update
    from seccl.roles.adversaries.registry import choose_adversaries
    from seccl.runs.config import RunConfig
    from seccl.runs.launch import participant_data

    torch.set_num_threads(1)
    n = 20
    cfg = RunConfig(
        participants=n, rounds=rounds, attack=attack, attack_fraction=e if attack else 0.2,
        seed=seed, chain="embedded", workers=0, split=split,
    )
    parts, test = participant_data(cfg)
    adversaries = choose_adversaries(n, e, seed) if attack else set()
    ps = _participants(cfg, parts, test, adversaries)
    honest = [i for i in range(n) if i not in adversaries]
    m = candidate_count(0.2, n)
    f = R.assumed_attackers(n)
    seed_bytes = tie_seed_of(seed)
    share = cfg.share_fraction
    probe = BackdoorProbe(test, target_label=0) if attack and "backdoor" in attack else None
    scorer = Evaluator(test, batch_size=250)
    params = get_flat_params(build_model(seed))
    records = []
    for r in range(1, rounds + 1):
        rec: dict = {"round": r}
        t0 = time.perf_counter()
        locals_ = [p.local_model(params, r) for p in ps]
        rec["train_s"] = time.perf_counter() - t0
        alpha = 1.0
        if method == "multikrum":
            rows = np.stack([dense_update(p, params, l, r) for p, l in zip(ps, locals_, strict=True)]).astype(np.float64)
            if adaptive and adversaries:
                mu = rows[honest].mean(axis=0)
                base = rows.copy()
                best = None
                for a_ in ALPHAS:
                    trial = base.copy()
                    for a in adversaries:
                        trial[a] = mu + a_ * (base[a] - mu)
                    _, kept = multikrum(trial, f)
                    passed = len(adversaries & set(kept))
                    if best is None or passed > best[1]:
                        best = (a_, passed, trial)
                    if passed == len(adversaries):
                        break
                alpha, rows = best[0], best[2]
            t1 = time.perf_counter()
            step, kept = multikrum(rows, f)
            rec["rule_s"] = time.perf_counter() - t1
            params = (params.astype(np.float64) + step).astype(np.float32)
            rec["kept"] = kept
            rec["adv_selected"] = sorted(adversaries & set(kept))
            rec["slots"] = len(kept)
            rec["honest_excluded"] = len([i for i in honest if i not in kept])
        else:
            sparse = {p.index: p.make_update(params, l, r) for p, l in zip(ps, locals_, strict=True)}
            if method.startswith("rule") and adaptive and adversaries:
                dense_h = np.stack([delta(locals_[i], params) for i in honest]).astype(np.float64)
                mu = dense_h.mean(axis=0)
                own = {a: delta(locals_[a], params).astype(np.float64) for a in adversaries}
                carriers = sorted(adversaries)[:1] if LONE else sorted(adversaries)
                if LONE:  # the others mimic honest updates (mean + honest-sized independent noise) and vote
                    sigma = dense_h.std(axis=0)
                    for a in sorted(adversaries)[1:]:
                        rng = np.random.default_rng([seed, a, r, 0x10E])
                        sparse[a] = select_top_fraction((mu + rng.normal(size=mu.shape) * sigma).astype(np.float32), share)
                best = None
                for a_ in ALPHAS:
                    trial = dict(sparse)
                    for a in carriers:
                        trial[a] = select_top_fraction((mu + a_ * (own[a] - mu)).astype(np.float32), share)
                    fr = R.geometric_filter(trial, n, tie_seed=seed_bytes, round_=r)
                    passed = len(set(carriers) & set(fr.kept))
                    if best is None or passed > best[1]:
                        best = (a_, passed, trial)
                    if passed == len(carriers):
                        break
                alpha, sparse = best[0], best[2]
            if method == "borda":
                t1 = time.perf_counter()
                ballots = {v: honest_ballot(ps[v], params, {j: u for j, u in sparse.items() if j != v}, n) for v in honest}
                rec["score_s"] = time.perf_counter() - t1
                if adversaries:
                    ballots.update(plausible_colluder_ballots(ballots, honest, adversaries, range(n), n))
                t2 = time.perf_counter()
                elected = borda_tally(ballots, n, m, tie_seed=seed_bytes, round_=r).candidates
                params = aggregate(params, [sparse[j] for j in elected], rule="shared-mean")
                rec["rule_s"] = time.perf_counter() - t2
                rec["honest_excluded"] = 0
            else:
                q = 1 if method == "rule-q1" else 2
                t2 = time.perf_counter()
                fr = R.geometric_filter(sparse, n, tie_seed=seed_bytes, round_=r)
                rec["filter_s"] = time.perf_counter() - t2
                kept = list(fr.kept)
                voters = R.counted_voters(fr, n)
                to_score = {j: R.clipped(sparse[j], R.clip_factor(fr, j)) for j in kept}
                t1 = time.perf_counter()
                ballots = {v: honest_ballot(ps[v], params, to_score, n) for v in honest if v in voters}
                rec["score_s"] = time.perf_counter() - t1
                if adversaries:
                    ballots.update({
                        a: b for a, b in plausible_colluder_ballots(ballots, honest, adversaries, kept, n).items()
                        if a in voters
                    })
                t3 = time.perf_counter()
                if method != "rule-centre":
                    elected, _ = R.count_ballots(ballots, kept, m, voters=voters, tie_seed=seed_bytes, round_=r)
                    approved = kept
                else:
                    elected, _, approved = R.elect_veto_centre(
                        ballots, fr, m, voters=voters, tie_seed=seed_bytes, round_=r
                    )
                params = R.robust_aggregate(params, [sparse[j] for j in elected], [R.clip_factor(fr, j) for j in elected], q=q)
                rec["count_agg_s"] = time.perf_counter() - t3
                rec["rule_s"] = rec["filter_s"] + rec["count_agg_s"]
                rec["kept"] = kept
                rec["approved"] = list(approved)
                rec["duplicates"] = list(fr.duplicates)
                rec["coalition"] = list(fr.coalition)
                rec["honest_excluded"] = len([i for i in honest if i not in fr.kept])
                rec["honest_vetoed"] = len([i for i in honest if i in fr.kept and i not in approved])
                rec["adv_kept"] = sorted(adversaries & set(kept))
                rec["adv_approved"] = sorted(adversaries & set(approved))
                cf = R.count_ballots_borda(ballots, kept, m, n, tie_seed=seed_bytes, round_=r)
                rec["cf_borda_filtered_adv"] = len(adversaries & set(cf))
            rec["elected"] = list(elected)
            rec["adv_selected"] = sorted(adversaries & set(elected))
            rec["slots"] = len(elected)
        rec["alpha"] = alpha
        acc, f1 = scorer.evaluate(params)
        rec["accuracy"] = acc
        if probe is not None:
            rec["backdoor"] = probe(params)
        rec["seconds"] = time.perf_counter() - t0
        records.append(rec)
        print(f"  {method} r{r} acc {acc:.4f} bd {rec.get('backdoor', float('nan')):.3f} "
              f"adv {rec['adv_selected']} honest_excl {rec['honest_excluded']} alpha {alpha} "
              f"{rec['seconds']:.1f}s", flush=True)
    return {
        "attack": attack or "none", "e": e if attack else 0.0, "seed": seed, "method": method, "split": split,
        "adaptive": adaptive, "rounds": rounds, "adversaries": sorted(adversaries),
        "final_accuracy": records[-1]["accuracy"], "final_backdoor": records[-1].get("backdoor"),
        "adv_slots": sum(len(x["adv_selected"]) for x in records), "slots": sum(x["slots"] for x in records),
        "honest_excluded_per_round": statistics.mean(x["honest_excluded"] for x in records),
        "records": records,
    }


def summary() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    cells: dict = {}
    for x in rows:
        name = x["attack"] + ("-adaptive" if x["adaptive"] else "") + ("-lone" if x.get("lone") else "")
        name += "" if x.get("split", "iid") == "iid" else f" ({x['split']})"
        name += f" [{x['rounds']} rounds]" if x["rounds"] != 5 else ""
        cells.setdefault((name, x["e"]), {}).setdefault(x["method"], []).append(x)
    methods = ["borda", "rule", "rule-centre", "rule-q1", "multikrum"]
    print("| attack | e | " + " | ".join(f"{m_} acc / bd / adv slots / honest excl" for m_ in methods) + " |")
    print("| --- | ---: |" + " --- |" * len(methods))
    for (name, e), by in sorted(cells.items(), key=lambda t: (t[0][1], t[0][0])):
        out = []
        for m_ in methods:
            xs = by.get(m_)
            if not xs:
                out.append("—")
                continue
            acc = statistics.mean(x["final_accuracy"] for x in xs)
            bd = [x["final_backdoor"] for x in xs if x["final_backdoor"] is not None]
            adv = sum(x["adv_slots"] for x in xs)
            slots = sum(x["slots"] for x in xs)
            he = statistics.mean(x["honest_excluded_per_round"] for x in xs)
            bds = f"{statistics.mean(bd):.3f}" if bd else "—"
            out.append(f"{acc:.3f} / {bds} / {adv}/{slots} ({100 * adv / slots:.0f}%) / {he:.1f} ({len(xs)})")
        print(f"| {name} | {e} | " + " | ".join(out) + " |")


def costs() -> None:
    """Seconds per round: Borda's scoring and count+aggregate; the rule's filter, scoring and
    count+aggregate, each run's rounds pooled (the same machine, one process at a time)."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    pools: dict = {}
    for x in rows:
        for rec in x["records"]:
            for key in ("train_s", "score_s", "filter_s", "count_agg_s", "rule_s"):
                if key in rec:
                    pools.setdefault((x["method"], key), []).append(rec[key])
    for (method, key), vals in sorted(pools.items()):
        print(f"{method:10s} {key:12s} mean {statistics.mean(vals):.4f} s  median {statistics.median(vals):.4f} s  (n={len(vals)})")
    b = pools.get(("borda", "score_s"))
    f = pools.get(("rule", "filter_s"))
    c = pools.get(("rule", "count_agg_s"))
    bc = pools.get(("borda", "rule_s"))
    if b and f and c and bc:
        extra = statistics.mean(f) + statistics.mean(c) - statistics.mean(bc)
        print(f"rule's extra per round: {extra:.4f} s = {extra / statistics.mean(b):.3f} of Borda's scoring time")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attack", default=None)
    ap.add_argument("--e", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--methods", default="borda,rule,multikrum")
    ap.add_argument("--adaptive", action="store_true")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--split", default="iid")
    ap.add_argument("--costs", action="store_true")
    ap.add_argument("--lone", action="store_true", help="adaptive: one backdoor carrier, the others mimic honest updates")
    args = ap.parse_args()
    if args.summary:
        summary()
        return
    if args.costs:
        costs()
        return
    global LONE
    LONE = args.lone
    attack = None if args.attack in (None, "none") else args.attack
    for method in args.methods.split(","):
        t = time.perf_counter()
        print(f"{args.attack} e={args.e} seed={args.seed} {method} adaptive={args.adaptive}", flush=True)
        result = run(attack, args.e, args.seed, method, args.rounds, args.adaptive, args.split)
        result["run_seconds"] = time.perf_counter() - t
        result["lone"] = args.lone
        with RESULTS.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
