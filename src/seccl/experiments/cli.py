"""The `seccl` command: `seccl run` (a SecCL session), `seccl baseline` (centralized training) and
`seccl verify-evidence` (a run's findings re-checked against the chain)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from seccl.chain.errors import ChainError
from seccl.experiments.config import ConfigError, RunConfig, load_config
from seccl.learning.data import DatasetNotFoundError
from seccl.roles.malicious_server import SERVER_ATTACKS


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="a TOML file with any of the options below")
    p.add_argument("-n", "--participants", type=int)
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist", "idx"])
    p.add_argument("--data-root", help="the directory of an IDX data set (for --dataset idx)")
    p.add_argument("--split", choices=["iid", "dirichlet"])
    p.add_argument("--alpha", type=float, help="Dirichlet concentration for --split dirichlet")
    p.add_argument("--per-participant", type=int, help="samples per participant (train + validation)")
    p.add_argument("--validation-fraction", type=float)
    p.add_argument("--local-epochs", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", dest="out_dir", help="the run directory (default: runs/<name>)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seccl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a SecCL session on a real EVM")
    _data_flags(run)
    run.add_argument("-r", "--rounds", type=int)
    run.add_argument("-l", "--candidate-fraction", type=float, help="l: M = ceil(l·N) candidates")
    run.add_argument("-s", "--share-fraction", type=float, help="s: fraction of Δ shared")
    run.add_argument("--aggregation", choices=["shared-mean", "mean", "sum"])
    run.add_argument("--chain", help="embedded (default), anvil, or a JSON-RPC URL")
    run.add_argument(
        "--attack",
        help="participant attack: low-quality, label-flip, backdoor, noise, "
        "sign-flip, scale, free-rider, collude-votes (a+b combines two)",
    )
    run.add_argument("-e", "--attack-fraction", type=float, help="e: fraction of malicious participants")
    run.add_argument("--attack-start-round", type=int, help="the round the adversaries start")
    run.add_argument("--server-attack", help="a server deviation: " + ", ".join(SERVER_ATTACKS))
    run.add_argument("--attack-target", type=int, help="the participant a server attack targets")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    base = sub.add_parser("baseline", help="train the same model centrally (the paper's baseline)")
    _data_flags(base)
    base.add_argument("--epochs", type=int, default=10)
    verify = sub.add_parser(
        "verify-evidence",
        help="confirm or refute each finding of a run from the chain, trusting neither side",
    )
    verify.add_argument("path", type=Path, help="a run directory, or its evidence.json")
    verify.add_argument(
        "--chain",
        dest="chain_url",
        help="a JSON-RPC URL of a node holding the run's chain (default: the run's persisted anvil state)",
    )
    return parser


def _config(args: argparse.Namespace) -> RunConfig:
    config = load_config(args.config) if args.config else RunConfig()
    keys = set(RunConfig.__dataclass_fields__)
    return config.with_overrides({k: v for k, v in vars(args).items() if k in keys})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "verify-evidence":
        return _verify_evidence(args.path, args.chain_url)
    try:
        config = _config(args)
        if args.command == "run":
            return _run(config, progress=not args.no_progress)
        return _baseline(config, args.epochs)
    except (ConfigError, DatasetNotFoundError) as exc:
        print(f"seccl: {exc}", file=sys.stderr)
        return 2


def _run(config: RunConfig, *, progress: bool) -> int:
    from seccl.experiments.records import write_run
    from seccl.experiments.session import run_config

    run_dir = config.run_dir
    print(
        f"SecCL: {config.participants} participants, {config.rounds} rounds, "
        f"l={config.candidate_fraction:g}, s={config.share_fraction:g}, {config.dataset} "
        f"({config.split}), {config.local_epochs} local epochs, chain {config.chain}, "
        f"seed {config.seed}"
    )
    started = time.perf_counter()
    result = run_config(config, progress=progress and sys.stderr.isatty(), log=print)
    elapsed = time.perf_counter() - started
    files = write_run(config, result, run_dir, seconds=elapsed)
    print(f"final test accuracy {result.final_accuracy:.4f} after {config.rounds} rounds in {elapsed:.1f} s")
    print(f"transactions: {len(result.transactions)}, gas {sum(t.gas for t in result.transactions):,}")
    if result.evidence:
        print(f"EVIDENCE: {len(result.evidence)} findings against the server (see {files['evidence']})")
        findings = Counter(f"round {e.round} {e.kind} found by {e.finder[:10]}" for e in result.evidence)
        for finding, count in findings.items():
            print(f"  {finding}: {count}")
    else:
        print("evidence: none — every message, ballot and model matched the chain")
    print(f"run directory: {run_dir}  (metrics.csv, metrics.json, chain.json, evidence.json, accuracy.png)")
    return 0


def _verify_evidence(path: Path, url: str | None) -> int:
    """Print each finding's verdict; exit 1 if any finding is refuted (fabricated or false)."""
    from seccl.experiments.verify import VerifyError, verify_run

    try:
        checked = verify_run(path, url=url)
    except (VerifyError, ChainError) as exc:
        print(f"seccl: {exc}", file=sys.stderr)
        return 2
    counts = Counter(str(verdict.status) for _, verdict in checked)
    for evidence, verdict in checked:
        print(f"{verdict.status.upper():<10} {evidence.summary()}\n           {verdict.reason}")
    print(
        f"{len(checked)} findings: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if checked
        else "no findings to verify"
    )
    return 1 if counts.get("refuted") else 0


def _baseline(config: RunConfig, epochs: int) -> int:
    import torch

    from seccl.experiments.session import participant_data
    from seccl.learning.data import concat_datasets
    from seccl.learning.training import train_centralized

    torch.set_num_threads(1)
    parts, test = participant_data(config)
    union = concat_datasets([p.train for p in parts])
    print(
        f"baseline: centralized training on the union of {config.participants} participants' "
        f"train parts ({len(union)} samples), {epochs} epochs, lr {config.learning_rate}, "
        f"batch {config.batch_size}"
    )
    started = time.perf_counter()
    accuracy = train_centralized(
        union, test, epochs=epochs, lr=config.learning_rate, batch_size=config.batch_size, seed=config.seed
    )
    for epoch, acc in enumerate(accuracy, 1):
        print(f"epoch {epoch:>2}/{epochs}  test accuracy {acc:.4f}")
    run_dir = config.run_dir
    if not config.out_dir:
        run_dir = run_dir.with_name(run_dir.name + "-baseline")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "baseline.json").write_text(
        json.dumps(
            {
                "config": config.to_dict(),
                "epochs": epochs,
                "train_samples": len(union),
                "accuracy_per_epoch": accuracy,
                "final_accuracy": accuracy[-1],
                "seconds": time.perf_counter() - started,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"final test accuracy {accuracy[-1]:.4f}; written to {run_dir / 'baseline.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
