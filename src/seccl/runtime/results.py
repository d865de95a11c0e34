"""What a run produces: one record per round, the whole run's result, its model files, and a
round's log line."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seccl.chain.ledger import LedgerEntry
from seccl.learning.model import build_model, save_state_dict, set_flat_params
from seccl.protocol.envelope import SignedMessage
from seccl.protocol.evidence import Evidence
from seccl.protocol.messages import ModelMessage, decode_message
from seccl.protocol.verification import Verdict
from seccl.roles.server import Rejection, TxEntry
from seccl.runtime.timing import TIME_PARTS


@dataclass(frozen=True)
class RoundRecord:
    """One round's figures, as written to metrics.csv and metrics.json.

    ``scores`` is the score matrix the consensus contract counted: row ``i`` is voter ``i``'s
    ballot in parts per million of macro-F1 (None for an abstention), or None when no ballot of
    ``i`` was counted. ``borda_points`` and ``abstentions`` are the contract's totals by
    participant. ``times`` splits ``seconds`` into :data:`TIME_PARTS` and ``other``.
    ``training_losses`` is each participant's mean training loss over its last local epoch
    (None when it did not train), ``training_loss`` their mean.
    """

    round: int
    accuracy: float
    macro_f1: float
    candidates: tuple[int, ...]
    seconds: float
    gas: int
    transactions: int
    ballots: int
    evidence: int
    rejections: int
    extra: dict[str, float] = field(default_factory=dict)
    scores: tuple[tuple[int | None, ...] | None, ...] = ()
    borda_points: tuple[int, ...] = ()
    abstentions: tuple[int, ...] = ()
    adversaries: tuple[int, ...] = ()
    times: dict[str, float] = field(default_factory=dict)
    training_loss: float | None = None
    training_losses: tuple[float | None, ...] = ()


@dataclass
class RunResult:
    """Everything a run produced."""

    rounds: list[RoundRecord]
    evidence: list[Evidence]
    verdicts: list[Verdict]
    rejections: list[Rejection]
    transactions: list[TxEntry]
    chain: dict[str, Any]
    initial_accuracy: float
    participants: list[dict[str, Any]] = field(default_factory=list)
    """Per participant: index, address, adversary or not, train and validation sizes and class
    counts."""
    ledger: list[LedgerEntry] = field(default_factory=list)
    """Every transaction of the session on the chain (funding, deployment, reverted ones too)."""
    initial_macro_f1: float | None = None
    """The test-set macro-F1 of θ_0, beside ``initial_accuracy`` (None when not measured here)."""

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else self.initial_accuracy


def refresh_costs(records: list[RoundRecord], ledger: list[LedgerEntry]) -> bool:
    """Bring each record's gas and transactions (in place) to what ``ledger``, the chain's own
    account, attributes to its round: every party's transactions of that round, including those
    mined after the round's record was made (an accusation of round r's model lands later, but
    the chain counts it in round r). Returns whether any changed."""
    changed = False
    for k, record in enumerate(records):
        spent = [e for e in ledger if e.round == record.round]
        cost = (sum(e.gas for e in spent), len(spent))
        if cost != (record.gas, record.transactions):
            records[k] = replace(record, gas=cost[0], transactions=cost[1])
            changed = True
    return changed


def round_record_from_dict(raw: dict[str, Any]) -> RoundRecord:
    """A :class:`RoundRecord` back from ``dataclasses.asdict`` (lists become tuples again)."""
    fields = dict(raw)
    for key in ("candidates", "borda_points", "abstentions", "adversaries", "training_losses"):
        fields[key] = tuple(fields[key])
    fields["scores"] = tuple(None if row is None else tuple(row) for row in fields["scores"])
    return RoundRecord(**fields)


def write_model_files(model_dir: Path, r: int, model: SignedMessage, dimension: int) -> None:
    """Round ``r``'s model ``model`` (the signed model the board records) as users load it: a
    ``state_dict`` in ``round-NNNN.pt`` (round 0: θ_0), and in ``final.pt`` from round 1 on. A
    simulated run and a deployment's server write their model files with this one function."""
    decoded = decode_message(model.data, dimension=dimension)
    assert isinstance(decoded, ModelMessage)
    net = build_model(0)
    set_flat_params(net, decoded.params)
    save_state_dict(net, model_dir / f"round-{r:04d}.pt")
    if r:
        save_state_dict(net, model_dir / "final.pt")


def duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def format_round(record: RoundRecord, rounds: int) -> str:
    extra = "".join(
        f"  {k} {int(v)}" if k == "adversaries_elected" else f"  {k} {v:.3f}" for k, v in record.extra.items()
    )
    split = ""
    if record.times:
        split = " (" + ", ".join(f"{part} {record.times[part]:.1f}" for part in TIME_PARTS) + ")"
    loss = f"  loss {record.training_loss:.3f}" if record.training_loss is not None else ""
    return (
        f"round {record.round:>2}/{rounds}  accuracy {record.accuracy:.4f}  macro-F1 "
        f"{record.macro_f1:.4f}  elected {list(record.candidates)}  {record.seconds:5.1f} s{split}{loss}  "
        f"gas {record.gas:,}  evidence {record.evidence}{extra}"
    )
