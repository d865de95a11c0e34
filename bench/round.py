"""One round of bare PyTorch, SecCL and Flower's FedAvg, side by side on MNIST, and issue 8's ratios."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import glob
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from seccl.learning.data import ParticipantData
from seccl.learning.evaluation import macro_f1_score
from seccl.learning.model import build_model
from seccl.runs.config import RunConfig
from seccl.runs.launch import learning_settings, participant_data

ROOT = Path(__file__).resolve().parent.parent
PARTS = {
    "bare": "(a) bare PyTorch",
    "seccl": "(b) SecCL",
    "seccl-gate": "(b') SecCL, gram-gate",
    "flower": "(c) Flower FedAvg",
}
SCALING_NS = (10, 20, 50, 100)
SCALING_EPOCHS = 2
"""Local epochs of the --scaling table unless --local-epochs is given."""
SCALING_NOTE = (
    " (not the CLI's 10, to keep the table to about 10 minutes; the 8,000-digit train pool is shared "
    "out, so training costs the same at every N and more epochs add the same seconds to every row)"
)
TARGETS = {
    "one_core": 1.10,  # (b)/(a) with SecCL on one core
    "two_cores": 0.65,  # (b)/(a) with both cores
    "flower": 1.0,  # (b)/(c)
    "chain_share": 0.05,  # at N = 20 and N = 50
    "gas_n": 30,
    "gas": 150_000,  # gas per participant per round at N = 30
    "memory_n": 20,
    "memory_mb": 673.0,  # peak memory at N = 20, strictly below
}
FLOWER_MISSING = (
    "Flower is not installed in this environment; part (c) needs flwr with its simulation runtime "
    "(Ray). Install it with `make bench-round`, or `.venv/bin/pip install -c constraints.txt -e '.[bench]'`, "
    "or leave Flower out with `--parts bare,seccl`."
)
SAMPLE_SECONDS = 0.5
"""How often a part samples the memory of its whole process tree (Ray's workers included)."""


# ─────────────── shared settings and helpers ───────────────


def make_config(n: int, epochs: int | None, rounds: int, seed: int) -> RunConfig:
    """The CLI's defaults, for ``n`` participants and ``rounds`` rounds."""
    fields: dict[str, Any] = {"participants": n, "rounds": rounds, "seed": seed}
    if epochs is not None:
        fields["local_epochs"] = epochs
    return RunConfig(**fields)


def restrict_cores(cores: int | None) -> int:
    """Pin this process (and whatever it starts) to its first ``cores`` CPUs; returns how many it has."""
    allowed = sorted(os.sched_getaffinity(0))
    if cores is not None and cores < len(allowed):
        os.sched_setaffinity(0, set(allowed[:cores]))
    return len(os.sched_getaffinity(0))


def train_seed(seed: int, participant: int, round_: int) -> int:
    return (seed * 1_000_003 + round_ * 10_007 + participant) % 2**31


def tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(data.images.copy()), torch.from_numpy(data.labels.copy())


def bare_train(
    model: torch.nn.Module,
    params: torch.Tensor,
    data: tuple[torch.Tensor, torch.Tensor],
    config: RunConfig,
    seed: int,
) -> torch.Tensor:
    """Plain mini-batch SGD from ``params``, as SecCL's participants train (same batches, lr, epochs)."""
    images, labels = data
    vector_to_parameters(params, model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(config.local_epochs):
        perm = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), config.batch_size):
            idx = perm[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(images[idx]), labels[idx]).backward()
            optimizer.step()
    return parameters_to_vector(model.parameters()).detach().clone()


def bare_score(
    model: torch.nn.Module, params: torch.Tensor, data: tuple[torch.Tensor, torch.Tensor]
) -> float:
    """Macro-F1 of ``params`` on ``data``: one forward pass, as a participant scores an update."""
    images, labels = data
    vector_to_parameters(params, model.parameters())
    model.eval()
    with torch.inference_mode():
        predicted = model(images).argmax(dim=1).numpy()
    return macro_f1_score(labels.numpy(), predicted, 10)


class MemorySampler:
    """Peak memory of this process and all its descendants, sampled in a background thread: the
    summed RSS, and the summed PSS (each shared page split among the processes that share it, so
    forked workers' pages common with their parent are counted once)."""

    def __init__(self, interval: float = SAMPLE_SECONDS):
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._ticks = os.sysconf("SC_CLK_TCK")
        self.descendants_cpu: dict[int, float] = {}

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                pid = int(stat.split("/")[2])
                parents[pid], rss[pid] = int(fields[1]), int(fields[21]) * self._page
                cpu[pid] = (int(fields[11]) + int(fields[12])) / self._ticks
        tree, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
            tree.update(children)
            frontier = children
        self.peak = max(self.peak, sum(rss.get(pid, 0) for pid in tree))
        self.peak_pss = max(self.peak_pss, sum(_pss(pid) for pid in tree))
        for pid in tree - {os.getpid()}:
            self.descendants_cpu[pid] = max(self.descendants_cpu.get(pid, 0.0), cpu.get(pid, 0.0))

    def tree_cpu(self) -> float:
        """CPU seconds of this process and its descendants: what getrusage saw (children waited
        for), or this process plus what the samples saw of each descendant, whichever is more."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        return max(own_cpu(), own.ru_utime + own.ru_stime + sum(self.descendants_cpu.values()))

    def figures(self) -> dict[str, float]:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return {
            "process_mb": own,
            "tree_mb": max(own, self.peak / 2**20),
            "tree_pss_mb": self.peak_pss / 2**20,
        }


def _pss(pid: int) -> int:
    """The proportional set size of ``pid`` in bytes (0 if it is gone)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


# ─────────────── (a) the compute limit ───────────────


def run_bare(config: RunConfig, warmup: int) -> dict[str, Any]:
    """The same training and N·(N−1) scorings as a SecCL round, as bare loops in one process."""
    torch.set_num_threads(1)
    parts, _test = participant_data(config)
    train = [tensors(p.train) for p in parts]
    validation = [tensors(p.validation) for p in parts]
    model = build_model(config.seed)
    params = parameters_to_vector(model.parameters()).detach().clone()
    rounds = []
    for r in range(1, config.rounds + 1):
        params, times = bare_round(model, params, train, validation, config, r)
        if r > warmup:
            rounds.append(times)
    return {"rounds": rounds}


def bare_round(
    model: torch.nn.Module,
    params: torch.Tensor,
    train: list[Any],
    validation: list[Any],
    config: RunConfig,
    round_: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    n = len(train)
    started = time.perf_counter()
    local = [
        bare_train(model, params, train[i], config, train_seed(config.seed, i, round_)) for i in range(n)
    ]
    trained = time.perf_counter()
    for i in range(n):
        for j in range(n):
            if j != i:
                bare_score(model, local[j], validation[i])
    scored = time.perf_counter()
    times = {"training": trained - started, "evaluation": scored - trained, "seconds": scored - started}
    return torch.stack(local).mean(dim=0), times


# ─────────────── (b) a SecCL round ───────────────


class RequestCounter:
    """Counts the JSON-RPC requests of every connection made through :class:`CountingBackend`."""

    def __init__(self) -> None:
        self.by_method: Counter[str] = Counter()

    def wrap(self, request_blocking: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(request_blocking)
        def counted(method: Any, *args: Any, **kwargs: Any) -> Any:
            self.by_method[str(getattr(method, "value", method))] += 1
            return request_blocking(method, *args, **kwargs)

        return counted


class CountingBackend:
    """A chain backend whose connections count their requests (answers pass through unchanged)."""

    def __init__(self, backend: Any, counter: RequestCounter):
        self._backend = backend
        self._counter = counter

    def connect(self) -> Any:
        w3 = self._backend.connect()
        w3.manager.request_blocking = self._counter.wrap(w3.manager.request_blocking)
        return w3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


FINE_PARTS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    # (module, function or class, method): wrapped where they exist, missing ones are skipped.
    "signing": (("seccl.chain.signing", "sign_hash", None),),
    "signature checks": (("seccl.chain.signing", "recover_signer", None),),
    "hashing": (
        ("seccl.chain.signing", "SigningDomain", "signed_hash"),
        ("seccl.chain.signing", "delivery_digest", None),
        ("seccl.chain.signing", "receipt_digest", None),
        ("seccl.protocol.envelope", "SignedMessage", "digest"),
        ("seccl.protocol.messages", "_digest", None),
    ),
    "encoding": (
        ("seccl.protocol.messages", "UpdateMessage", "to_bytes"),
        ("seccl.protocol.messages", "EvaluationMessage", "to_bytes"),
        ("seccl.protocol.messages", "ModelMessage", "to_bytes"),
        ("seccl.protocol.messages", "decode_message", None),
    ),
    "sparse updates, aggregation": (
        ("seccl.learning.sparse", "delta", None),
        ("seccl.learning.sparse", "select_top_fraction", None),
        ("seccl.learning.sparse", "apply_update", None),
        ("seccl.learning.aggregation", "aggregate", None),
    ),
}


class FineTimer:
    """Splits the time a round spends outside SecCL's own parts (training, evaluation, chain) by
    wrapping the functions of :data:`FINE_PARTS`: exclusive wall time, the innermost wins, and any
    of SecCL's parts that runs inside a wrapped call is left out."""

    def __init__(self, watch: Any):
        self.watch = watch
        self.totals: dict[str, float] = defaultdict(float)
        self.wrapped: list[str] = []
        self.active = False
        self._stack: list[str] = []
        self._mark = self._watch_mark = 0.0

    def _watch_busy(self) -> bool:
        return bool(getattr(self.watch, "_stack", ()))

    def _watch_total(self) -> float:
        return float(sum(self.watch.totals.values()))

    def _settle(self) -> None:
        now, watched = time.perf_counter(), self._watch_total()
        if self._stack:
            self.totals[self._stack[-1]] += (now - self._mark) - (watched - self._watch_mark)
        self._mark, self._watch_mark = now, watched

    def wrap(self, part: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.active or self._watch_busy():
                return func(*args, **kwargs)
            self._settle()
            self._stack.append(part)
            try:
                return func(*args, **kwargs)
            finally:
                self._settle()
                self._stack.pop()

        return timed

    def install(self) -> None:
        for part, targets in FINE_PARTS.items():
            for module_name, name, method in targets:
                if self._install_one(part, module_name, name, method):
                    self.wrapped.append(f"{name}.{method}" if method else name)

    def _install_one(self, part: str, module_name: str, name: str, method: str | None) -> bool:
        module = sys.modules.get(module_name)
        target = getattr(module, name, None)
        if target is None:
            return False
        if method is not None:
            original = target.__dict__.get(method)
            if not callable(original):
                return False
            setattr(target, method, self.wrap(part, original))
            return True
        timed = self.wrap(part, target)
        # Replace the function wherever it was imported by name.
        for loaded_name, loaded in list(sys.modules.items()):
            if loaded_name.startswith("seccl") and getattr(loaded, name, None) is target:
                setattr(loaded, name, timed)
        return True


def run_seccl(config: RunConfig, warmup: int) -> dict[str, Any]:
    """SecCL's Simulation as `seccl run` builds it, on the default chain, every round timed."""
    from seccl.chain.anvil import open_backend
    from seccl.runtime.simulation import Simulation

    parts, test = participant_data(config)
    counter = RequestCounter()
    rounds: dict[int, dict[str, Any]] = {}
    warmup_seconds: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="seccl-bench-") as state,
        open_backend(config.chain, Path(state)) as backend,
    ):
        auditor = backend.connect()  # uncounted: reads the blocks of each round after it ends
        simulation = Simulation(
            backend=CountingBackend(backend, counter),
            parts=parts,
            test=test,
            rounds=config.rounds,
            candidate_fraction=config.candidate_fraction,
            settings=learning_settings(config),
            seed=config.seed,
            # As `seccl run`: the participants' training and scoring in worker processes, one
            # per core this part may use (none on one core: all of it in this process).
            workers=0 if (cores := len(os.sched_getaffinity(0))) == 1 else min(config.workers, cores),
        )
        fine = FineTimer(simulation.watch)
        fine.install()
        instrument_rounds(simulation, counter, fine, auditor, rounds)
        result = simulation.run()
    measured = []
    for record in result.rounds:
        if record.round <= warmup:
            warmup_seconds.append(record.seconds)
        else:
            figures = rounds[record.round]
            figures.update(
                seconds=record.seconds,
                times=dict(record.times),
                gas=record.gas,
                transactions=record.transactions,
                accuracy=record.accuracy,
            )
            measured.append(figures)
    return {"rounds": measured, "warmup_seconds": warmup_seconds, "fine_wrapped": fine.wrapped}


def instrument_rounds(
    simulation: Any, counter: RequestCounter, fine: FineTimer, auditor: Any, rounds: dict[int, dict[str, Any]]
) -> None:
    """Count requests, split the rest of the time and sum the chain's gas within each round."""
    run_round = simulation.run_round

    def counted_round(r: int, send: Any) -> Any:
        counter.by_method.clear()
        fine.totals.clear()
        first_block = int(auditor.eth.block_number) + 1
        fine.active = True
        try:
            return run_round(r, send)
        finally:
            fine.active = False
            last_block = int(auditor.eth.block_number)
            rounds[r] = {
                "requests": sum(counter.by_method.values()),
                "requests_by_method": dict(counter.by_method.most_common()),
                "fine": dict(fine.totals),
                "gas_blocks": sum(
                    int(auditor.eth.get_block(b)["gasUsed"]) for b in range(first_block, last_block + 1)
                ),
                "blocks": last_block - first_block + 1,
            }

    simulation.run_round = counted_round


# ─────────────── (c) Flower's FedAvg ───────────────


FLOWER_KEYS = ("bench-n", "bench-seed", "bench-epochs", "bench-rounds")


def flower_settings(config: RunConfig) -> dict[str, Any]:
    """What every ClientApp needs to rebuild the run's data and training settings."""
    return {
        "bench-n": config.participants,
        "bench-seed": config.seed,
        "bench-epochs": config.local_epochs,
        "bench-rounds": config.rounds,
    }


def client_data(settings: Any, partition: int) -> tuple[RunConfig, Any, Any]:
    """The partition's (train, validation) tensors, loaded once per Ray worker process."""
    # A module of its own in sys.modules: the ClientApp is pickled by value with every message,
    # so a cache held in this script's globals would be sent (empty) each time.
    cache = sys.modules.setdefault("_seccl_bench_cache", types.ModuleType("_seccl_bench_cache"))
    key = tuple(settings[k] for k in FLOWER_KEYS)
    if getattr(cache, "key", None) != key:
        torch.set_num_threads(1)
        config = make_config(
            int(settings["bench-n"]),
            int(settings["bench-epochs"]),
            int(settings["bench-rounds"]),
            int(settings["bench-seed"]),
        )
        parts: list[ParticipantData] = participant_data(config)[0]
        cache.key, cache.config = key, config  # type: ignore[attr-defined]
        cache.train = [tensors(p.train) for p in parts]  # type: ignore[attr-defined]
        cache.validation = [tensors(p.validation) for p in parts]  # type: ignore[attr-defined]
        cache.model = build_model(config.seed)  # type: ignore[attr-defined]
    return cache.config, cache.train[partition], cache.validation[partition]


def flower_train(msg: Any, context: Any) -> Any:
    """ClientApp train: the bare local training of (a) from the global model."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    cache_config = msg.content["config"]
    partition = int(context.node_config["partition-id"])
    config, train, _validation = client_data(cache_config, partition)
    model = sys.modules["_seccl_bench_cache"].model
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    params = parameters_to_vector(model.parameters()).detach().clone()
    seed = train_seed(config.seed, partition, int(cache_config["server-round"]))
    started = time.perf_counter()
    vector_to_parameters(bare_train(model, params, train, config, seed), model.parameters())
    metrics = MetricRecord({"num-examples": len(train[1]), "train-seconds": time.perf_counter() - started})
    reply = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
    return Message(content=reply, reply_to=msg)


def flower_evaluate(msg: Any, context: Any) -> Any:
    """ClientApp evaluate: macro-F1 of the global model on the partition's validation set."""
    from flwr.app import Message, MetricRecord, RecordDict

    partition = int(context.node_config["partition-id"])
    _config, _train, validation = client_data(msg.content["config"], partition)
    model = sys.modules["_seccl_bench_cache"].model
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    score = bare_score(model, parameters_to_vector(model.parameters()).detach(), validation)
    metrics = MetricRecord({"macro-f1": score, "num-examples": len(validation[1])})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)


def timed_fedavg(n: int, marks: list[dict[str, float]]) -> Any:
    """flwr.serverapp.strategy.FedAvg over all ``n`` nodes, stamping each round's phases."""
    from flwr.serverapp.strategy import FedAvg

    class TimedFedAvg(FedAvg):
        def configure_train(self, server_round: int, *args: Any, **kwargs: Any) -> Any:
            marks.append({"round": server_round, "start": time.perf_counter()})
            return super().configure_train(server_round, *args, **kwargs)

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            replies = list(replies)
            out = super().aggregate_train(server_round, replies)
            marks[-1]["trained"] = time.perf_counter()
            marks[-1]["client_training"] = sum(
                float(m.content["metrics"]["train-seconds"]) for m in replies if m.has_content()
            )
            return out

        def aggregate_evaluate(self, *args: Any, **kwargs: Any) -> Any:
            out = super().aggregate_evaluate(*args, **kwargs)
            marks[-1]["end"] = time.perf_counter()
            return out

    return TimedFedAvg(min_train_nodes=n, min_evaluate_nodes=n, min_available_nodes=n)


def run_flower(config: RunConfig, warmup: int, cores: int) -> dict[str, Any]:
    """FedAvg in Flower's simulation runtime (Ray): N virtual SuperNodes, one CPU per ClientApp."""
    import logging

    from flwr.app import ArrayRecord, ConfigRecord
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)
    marks: list[dict[str, float]] = []
    strategy = timed_fedavg(config.participants, marks)
    server = ServerApp()

    @server.main()
    def main(grid: Any, context: Any) -> None:
        settings = ConfigRecord(flower_settings(config))
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(build_model(config.seed).state_dict()),
            num_rounds=config.rounds,
            train_config=settings,
            evaluate_config=settings,
        )

    client = ClientApp()
    client.train()(flower_train)
    client.evaluate()(flower_evaluate)
    started = time.perf_counter()
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=config.participants,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cores, "log_to_driver": False},
        },
    )
    wall = time.perf_counter() - started
    if len(marks) != config.rounds or any("end" not in m for m in marks):
        raise RuntimeError(f"Flower ran {len(marks)} of {config.rounds} rounds (see the log above)")
    rounds = [
        {
            "seconds": m["end"] - m["start"],
            "training": m["trained"] - m["start"],
            "evaluation": m["end"] - m["trained"],
            "client_training": m["client_training"],
        }
        for m in marks
    ]
    return {"rounds": rounds[warmup:], "warmup_rounds": rounds[:warmup], "wall": wall}


# ─────────────── one part in its own process ───────────────


def run_part(args: argparse.Namespace) -> None:
    """Child side: run one part, write its figures as JSON to ``--result-file``."""
    cores = restrict_cores(args.cores)
    config = make_config(args.n, args.local_epochs, args.warmup + args.rounds, args.seed)
    started, busy_at_start, own_at_start = time.perf_counter(), cpu_busy(), own_cpu()
    with MemorySampler() as memory:
        if args.part == "bare":
            figures = run_bare(config, args.warmup)
        elif args.part == "seccl":
            figures = run_seccl(config, args.warmup)
        elif args.part == "seccl-gate":  # issue 23's election, the same session otherwise
            figures = run_seccl(dataclasses.replace(config, election="gram-gate"), args.warmup)
        else:
            figures = run_flower(config, args.warmup, cores)
    figures.update(memory=memory.figures(), total=time.perf_counter() - started, cores=cores)
    figures["others_cpu"] = max(0.0, (cpu_busy() - busy_at_start) - (memory.tree_cpu() - own_at_start))
    figures["local_epochs"] = config.local_epochs
    Path(args.result_file).write_text(json.dumps(figures))


def cpu_busy() -> float:
    """CPU seconds the machine's cores that this process may use have been busy, by anyone."""
    mine = {f"cpu{c}" for c in os.sched_getaffinity(0)}
    busy = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name in mine:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(t) for t in ticks[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process and of the children it (or they) waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child_env(tmp: Path, tag: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        FLWR_HOME=str(tmp / "flwr"),
        RAY_TMPDIR=str(tmp / "ray"),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_worker_niceness="0",  # Ray's default 15 lets anything else on the machine starve its workers
        PYTHONUNBUFFERED="1",
        SECCL_BENCH_TAG=tag,
    )
    (tmp / "ray").mkdir(exist_ok=True)
    (tmp / "flwr").mkdir(exist_ok=True)
    return env


def tagged_processes(tag: str) -> list[int]:
    """Live processes with this part's tag in their environment (Ray's, if it left any)."""
    marker = f"SECCL_BENCH_TAG={tag}".encode()
    found = []
    for proc in glob.glob("/proc/[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if Path(proc, "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # already dead, waiting for its parent to reap it
            if marker in Path(proc, "environ").read_bytes().split(b"\0"):
                found.append(int(proc.split("/")[2]))
    return [pid for pid in found if pid != os.getpid()]


def wait_gone(tag: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def stop_strays(tag: str) -> int:
    """Stop, by pid, what a part left running after a grace period; returns how many there were."""
    strays = wait_gone(tag, 10.0)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in tagged_processes(tag):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if not wait_gone(tag, 5.0):
            break
    return len(strays)


def launch(part: str, n: int, args: argparse.Namespace, epochs: int | None) -> dict[str, Any]:
    """Run ``part`` at ``n`` in a child process; its figures, or ``{"error": ...}``."""
    tmp = Path(tempfile.mkdtemp(prefix="seccl-bench-"))
    tag = uuid.uuid4().hex
    result_file, log_file = tmp / "result.json", tmp / "log.txt"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--part",
        part,
        "--n",
        str(n),
        "--seed",
        str(args.seed),
        "--warmup",
        str(args.warmup),
        "--rounds",
        str(args.rounds),
        "--result-file",
        str(result_file),
    ]
    command += ["--local-epochs", str(epochs)] if epochs is not None else []
    command += ["--cores", str(args.cores)] if args.cores is not None else []
    print(f"  running {PARTS[part]} at N = {n} ...", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        with log_file.open("wb") as log:
            code = subprocess.run(
                command, env=child_env(tmp, tag), stdout=log, stderr=log, cwd=ROOT
            ).returncode
        strays = stop_strays(tag)
        print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        if code != 0 or not result_file.exists():
            tail = log_file.read_text(errors="replace").strip().splitlines()[-15:]
            return {"error": f"exit code {code}:\n      " + "\n      ".join(tail), "strays": strays}
        figures: dict[str, Any] = json.loads(result_file.read_text())
        figures["strays"] = strays
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ─────────────── the report ───────────────


def mean(rounds: list[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in rounds) / len(rounds)


def summary(figures: dict[str, dict[str, Any]], n: int) -> dict[str, Any]:
    """Per-round means of each part that ran, and SecCL's split, counts and gas."""
    out: dict[str, Any] = {"n": n}
    for part, fig in figures.items():
        if "error" in fig:
            continue
        rounds = fig["rounds"]
        out[part] = {k: mean(rounds, k) for k in ("seconds", "training", "evaluation") if k in rounds[0]}
        out[part]["memory"] = fig["memory"]
    if "seccl" in out:
        rounds = figures["seccl"]["rounds"]
        seccl = out["seccl"]
        for part in ("training", "evaluation", "chain", "other"):
            seccl[part] = sum(r["times"].get(part, 0.0) for r in rounds) / len(rounds)
        seccl["requests"] = mean(rounds, "requests") / n
        seccl["gas"] = mean(rounds, "gas") / n
        seccl["gas_blocks"] = mean(rounds, "gas_blocks") / n
        seccl["transactions"] = mean(rounds, "transactions")
        fine: dict[str, float] = defaultdict(float)
        methods: Counter[str] = Counter()
        for r in rounds:
            for k, v in r["fine"].items():
                fine[k] += v / len(rounds)
            methods.update(r["requests_by_method"])
        seccl["fine"], seccl["methods"] = dict(fine), methods
    return out


def ratio(s: dict[str, Any], top: str, bottom: str) -> float | None:
    if top in s and bottom in s and s[bottom]["seconds"] > 0:
        return float(s[top]["seconds"] / s[bottom]["seconds"])
    return None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def print_report(s: dict[str, Any], figures: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    n = s["n"]
    cores = next((f["cores"] for f in figures.values() if "cores" in f), args.cores)
    epochs = next((f["local_epochs"] for f in figures.values() if "local_epochs" in f), args.local_epochs)
    print(
        f"\nOne round at N = {n} on MNIST, {epochs} local epochs, {cores} core(s) for every part; "
        f"{args.warmup} warm-up round(s), then the mean of {args.rounds} measured round(s)."
    )
    print(
        f"Python {platform.python_version()}, torch {torch.__version__}, flwr {flwr_version()}, "
        f"{platform.processor() or platform.machine()}.\n"
    )
    print(
        f"{'part':<22} {'round s':>8} {'training':>9} {'evaluation':>11} {'peak MB (process)':>18} "
        f"{'peak MB (tree)':>15} {'peak MB (tree, PSS)':>20}"
    )
    for part, label in PARTS.items():
        fig = figures.get(part)
        if fig is None:
            continue
        if "error" in fig:
            print(f"{label:<22} failed: {fig['error']}")
            continue
        p = s[part]
        print(
            f"{label:<22} {p['seconds']:8.2f} {p.get('training', 0):9.2f} {p.get('evaluation', 0):11.2f} "
            f"{p['memory']['process_mb']:18.0f} {p['memory']['tree_mb']:15.0f} "
            f"{p['memory'].get('tree_pss_mb', 0):20.0f}"
        )
    print(
        "\n(a): N trainings and N·(N−1) scorings, one process, one torch thread. (c): N trainings,"
        " then N evaluations of the global model (FedAvg's), in Ray workers of one CPU each."
    )
    if "flower" in figures and "error" not in figures["flower"]:
        f = figures["flower"]
        warm = ", ".join(f"{r['seconds']:.1f} s" for r in f["warmup_rounds"]) or "none"
        busy = mean(f["rounds"], "client_training")
        print(
            f"Flower's run took {f['wall']:.1f} s in all (simulation start to end); warm-up round(s), "
            f"with Ray's start-up: {warm}. Its ClientApps trained for {busy:.2f} s a round in all, "
            f"{busy / f['cores']:.2f} s per core."
        )
    if "seccl" in s:
        print_seccl(s["seccl"], figures["seccl"], n)
    print_targets(s, cores)
    print_load(figures)
    strays = sum(f.get("strays", 0) for f in figures.values())
    print(f"\nStray processes stopped after the parts: {strays}. Temporary directories removed.")


def print_load(figures: dict[str, dict[str, Any]]) -> None:
    """CPU time other processes took on the parts' cores while each part ran: the machine's busy time
    there less the part's own. Much of it means the part's times are inflated."""
    others = {p: f for p, f in figures.items() if "others_cpu" in f}
    if not others:
        return
    shares = [
        f"{PARTS[p]} {f['others_cpu']:.1f} s ({f['others_cpu'] / (f['total'] * f['cores']):.0%})"
        for p, f in others.items()
    ]
    print(f"\nCPU taken by other processes on these cores while each part ran: {'; '.join(shares)}.")
    if any(f["others_cpu"] > 0.05 * f["total"] * f["cores"] for f in others.values()):
        print(
            "  Above 5%, other work shared the cores and that part's times are inflated (a descendant's "
            f"last {SAMPLE_SECONDS:g} s before it ends unwaited for counts as other work too)."
        )


def print_seccl(seccl: dict[str, Any], fig: dict[str, Any], n: int) -> None:
    seconds = seccl["seconds"]
    warm = ", ".join(f"{t:.1f} s" for t in fig["warmup_seconds"]) or "none"
    print(f"\n(b) SecCL round split (RoundRecord.times), {seconds:.2f} s (warm-up round(s): {warm}):")
    for part in ("training", "evaluation", "chain", "other"):
        print(f"  {part:<12} {seccl[part]:7.2f} s  {seccl[part] / seconds:6.1%}")
    covered = sum(seccl["fine"].values())
    print("  'other' by wrapped functions (exclusive wall time, outside training/evaluation/chain):")
    for part, t in sorted(seccl["fine"].items(), key=lambda kv: -kv[1]):
        print(f"    {part:<28} {t:7.3f} s")
    print(
        f"    {'not in a wrapped function':<28} {max(0.0, seccl['other'] - covered):7.3f} s "
        f"(checks, messages, bookkeeping)"
    )
    print("  (the chain's own transaction signing, in the signing middleware, counts as chain time)")
    print(
        f"\n  chain requests per participant per round: {seccl['requests']:.1f} "
        f"({seccl['requests'] * n:.0f} a round; {seccl['transactions']:.0f} transactions of the server)"
    )
    top = ", ".join(f"{m} {c / len(fig['rounds']):.0f}" for m, c in seccl["methods"].most_common(8))
    print(f"    most frequent: {top}")
    print(
        f"  gas per participant per round: {seccl['gas']:,.0f} (RoundRecord.gas / N); "
        f"{seccl['gas_blocks']:,.0f} summed over every block of the round / N"
    )


def print_targets(s: dict[str, Any], cores: int) -> None:
    n = s["n"]
    print(f"\nTargets (issue 8), measured here at N = {n}:")
    ba, bc = ratio(s, "seccl", "bare"), ratio(s, "seccl", "flower")
    one, two = TARGETS["one_core"], TARGETS["two_cores"]
    applies = "one_core" if cores == 1 else "two_cores"
    for key, label, target in (("one_core", "one core", one), ("two_cores", "two cores", two)):
        if key == applies and ba is not None:
            print(f"  (b)/(a) on {label:<10} {ba:6.2f}   target ≤ {target:.2f}   {verdict(ba <= target)}")
        else:
            flag = "--cores 1" if key == "one_core" else "the default (both cores)"
            print(f"  (b)/(a) on {label:<10} {'—':>6}   target ≤ {target:.2f}   (run with {flag})")
    print(
        f"  (b)/(c)              {fmt(bc, '6.2f')}   target ≤ {TARGETS['flower']:.2f}   "
        f"{verdict(None if bc is None else bc <= TARGETS['flower'])}"
    )
    gate = ratio(s, "seccl-gate", "seccl")
    if gate is not None:
        print(
            f"  (b')/(b)             {gate:6.2f}   target ≤ 1.10 (issue 23: a gram-gate round at most 10% "
            f"slower)   {verdict(gate <= 1.10)}"
        )
    if "seccl" in s:
        seccl = s["seccl"]
        share = seccl["chain"] / seccl["seconds"]
        print(
            f"  chain share          {share:6.1%}   target ≤ {TARGETS['chain_share']:.0%}      "
            f"{verdict(share <= TARGETS['chain_share'])} (the target holds at N = 20 and N = 50)"
        )
        gas_note = "" if n == TARGETS["gas_n"] else f" (the target is at N = {TARGETS['gas_n']}: --n 30)"
        print(
            f"  gas/participant/round {seccl['gas']:,.0f}   target ≤ {TARGETS['gas']:,} "
            f"{verdict(seccl['gas'] <= TARGETS['gas']) if n == TARGETS['gas_n'] else 'n/a'}{gas_note}"
        )
        # The tree's PSS: what the run and its workers really hold (RSS counts shared pages twice).
        peak = seccl["memory"].get("tree_pss_mb") or seccl["memory"]["tree_mb"]
        mem_note = "" if n == TARGETS["memory_n"] else f" (the target is at N = {TARGETS['memory_n']})"
        print(
            f"  peak memory of (b), PSS{peak:6.0f} MB target < {TARGETS['memory_mb']:.0f} MB  "
            f"{verdict(peak < TARGETS['memory_mb']) if n == TARGETS['memory_n'] else 'n/a'}{mem_note}"
        )


def fmt(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "   n/a"


def flwr_version() -> str:
    try:
        from importlib.metadata import version

        return version("flwr")
    except Exception:
        return "not installed"


def print_scaling_load(dump: dict[str, dict[str, Any]]) -> None:
    """Per N, the share of the parts' cores that other processes took while each part ran."""
    cells = []
    for n, figures in dump.items():
        shares = [
            f"{PARTS[p][1]} {f['others_cpu'] / (f['total'] * f['cores']):.0%}"
            for p, f in figures.items()
            if "others_cpu" in f
        ]
        cells.append(f"N = {n}: {', '.join(shares)}")
    print(f"CPU taken by other processes on these cores (a, b, c): {'; '.join(cells)}.")


def print_scaling(rows: list[dict[str, Any]], args: argparse.Namespace, epochs: int) -> None:
    cores = args.cores or len(os.sched_getaffinity(0))
    note = "" if args.local_epochs else SCALING_NOTE
    print(
        f"\nScaling: one round at each N on MNIST, {epochs} local epochs{note}, {cores} core(s), "
        f"{args.warmup} warm-up round(s) before the measured one. Seconds per round."
    )
    header = (
        f"{'N':>4} | {'(a) train':>9} {'eval':>6} {'total':>6} | {'(b) round':>9} {'train':>6} {'eval':>6} "
        f"{'chain':>6} {'other':>6} | {'(c) round':>9} | {'b/a':>5} {'b/c':>5} {'chain%':>6} "
        f"{'req/p':>6} {'gas/p':>8} {'MB (b)':>6}"
    )
    print(header)
    print("-" * len(header))
    for s in rows:
        a, b, c = s.get("bare"), s.get("seccl"), s.get("flower")
        missing = {p: "failed" if p in args.parts else "not run" for p in PARTS}
        cells = [f"{s['n']:>4} |"]
        cells.append(
            f"{a['training']:9.2f} {a['evaluation']:6.2f} {a['seconds']:6.2f} |"
            if a
            else f"{missing['bare']:>23} |"
        )
        if b:
            cells.append(
                f"{b['seconds']:9.2f} {b['training']:6.2f} {b['evaluation']:6.2f} {b['chain']:6.2f} "
                f"{b['other']:6.2f} |"
            )
        else:
            cells.append(f"{missing['seccl']:>37} |")
        cells.append(f"{c['seconds']:9.2f} |" if c else f"{missing['flower']:>9} |")
        ba, bc = ratio(s, "seccl", "bare"), ratio(s, "seccl", "flower")
        cells.append(f"{fmt(ba, '5.2f')} {fmt(bc, '5.2f')}")
        if b:
            cells.append(
                f"{b['chain'] / b['seconds']:6.1%} {b['requests']:6.1f} {b['gas']:8,.0f} "
                f"{b['memory'].get('tree_pss_mb') or b['memory']['tree_mb']:6.0f}"
            )
        print(" ".join(cells))
    print(
        "b/a, b/c: SecCL's round over (a)'s and (c)'s; req/p, gas/p: chain requests and gas per participant "
        "per round; MB (b): SecCL's peak memory (PSS of its process tree)."
    )


# ─────────────── main ───────────────


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="participants N (default 20)")
    parser.add_argument(
        "--local-epochs",
        type=int,
        default=None,
        help=f"local epochs (default: the CLI's; --scaling: {SCALING_EPOCHS})",
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=None,
        help=f"CPUs each part may use (1 for the ≤ 1.10 target; default: all {len(os.sched_getaffinity(0))})",
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="warm-up rounds before the measured ones (default 1)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds, averaged (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default=",".join(PARTS), help="which of bare,seccl,flower to run")
    parser.add_argument("--scaling", action="store_true", help="a table for N = 10, 20, 50, 100")
    parser.add_argument("--scaling-ns", default=",".join(map(str, SCALING_NS)), help="the N of --scaling")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--part", choices=tuple(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown or not args.parts:
        parser.error(f"--parts takes some of {','.join(PARTS)}, got {','.join(sorted(unknown)) or 'none'}")
    if args.cores is not None and args.cores < 1:
        parser.error("--cores must be at least 1")
    if args.warmup < 0 or args.rounds < 1:
        parser.error("--warmup must be ≥ 0 and --rounds ≥ 1")
    return args


def check_flower(parts: list[str]) -> None:
    if "flower" in parts and (
        importlib.util.find_spec("flwr") is None or importlib.util.find_spec("ray") is None
    ):
        sys.exit(f"bench/round.py: {FLOWER_MISSING}")


def run_all(n: int, args: argparse.Namespace, epochs: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    figures = {part: launch(part, n, args, epochs) for part in PARTS if part in args.parts}
    return summary(figures, n), figures


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.part:
        run_part(args)
        return
    check_flower(args.parts)
    dump: dict[str, Any] = {}
    if args.scaling:
        epochs = args.local_epochs or SCALING_EPOCHS
        rows = []
        for n in (int(x) for x in args.scaling_ns.split(",")):
            s, figures = run_all(n, args, epochs)
            rows.append(s)
            dump[str(n)] = figures
        print_scaling(rows, args, epochs)
        print_scaling_load(dump)
    else:
        s, figures = run_all(args.n, args, args.local_epochs)
        dump[str(args.n)] = figures
        print_report(s, figures, args)
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=2))


if __name__ == "__main__":
    main()
