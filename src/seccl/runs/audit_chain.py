"""`seccl audit`: the chain a record names, reopened, and every chain fact of the records checked
against the chain's own blocks, receipts, views and events.

The root of trust is the chain itself: from the records the audit takes only the board's address
(whose code must be the committed contract), and it compares every other fact they state with
what the chain says (``chain.json``'s session, transactions, gas and block hashes; a deployment's
``session.json``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from web3 import Web3

from seccl.chain.backends import ChainBackend
from seccl.chain.bulletin_board import BulletinBoardClient
from seccl.chain.consensus import ConsensusClient, ElectionClient
from seccl.chain.ledger import Ledger, LedgerEntry
from seccl.chain.session import (
    SessionMismatchError,
    code_matches,
    consensus_client_at,
    counter_bits,
    session_contracts,
)
from seccl.deploy.session_file import SessionFile
from seccl.election import candidate_count
from seccl.learning.sparse import update_size
from seccl.protocol.session import SessionInfo, session_from_chain
from seccl.roles.participant_state import initial_model_digest
from seccl.runs.audit_report import AuditInputError, Section
from seccl.runs.verify import RunChain, RunFiles, VerifyError, open_run_chain


def model_dimension() -> int:
    """How many parameters the one architecture SecCL trains has."""
    from seccl.learning.model import build_model, get_flat_params

    return len(get_flat_params(build_model(0)))


@contextlib.contextmanager
def run_chain(run_dir: Path, facts: dict[str, Any], url: str | None) -> Iterator[tuple[RunChain, Web3]]:
    """The run's chain (``url``, or its pinned anvil state reopened from a copy) and its session
    as the contracts record it (the update format included)."""
    files = RunFiles(run_dir / "evidence.json", run_dir / "chain.json")
    try:
        with open_run_chain(files, facts, url) as backend:
            w3 = backend.connect()
            board, consensus = contracts(w3, str(facts.get("bulletin_board", "")))
            session = session_from_chain(board, consensus)
            yield RunChain(session, board, consensus, str(facts.get("aggregation", "shared-mean"))), w3
    except VerifyError as exc:
        raise AuditInputError(str(exc)) from None


@contextlib.contextmanager
def deployment_chain(
    agreed: SessionFile, url: str | None, state_file: Path | None
) -> Iterator[tuple[RunChain, Web3, str]]:
    """A deployment's chain: ``url``, or the anvil state `seccl deploy local` saved, reopened
    from a copy; with the session the contracts at the session file's addresses record."""
    from seccl.deploy.verify import NodeVerifyError, open_chain

    where = url or f"the saved anvil state {state_file}"
    try:
        with open_chain(url, state_file) as backend:
            w3 = _connect(backend)
            board, consensus = contracts(w3, agreed.session.board)
            session = session_from_chain(board, consensus)
            yield RunChain(session, board, consensus, agreed.settings.aggregation), w3, where
    except NodeVerifyError as exc:
        raise AuditInputError(str(exc)) from None


def _connect(backend: ChainBackend) -> Web3:
    return backend.connect()


def contracts(w3: Web3, board_address: str) -> tuple[BulletinBoardClient, ElectionClient]:
    """The board at ``board_address`` and the consensus contract it names, once both are shown to
    run the committed code and to belong together."""
    if not Web3.is_address(board_address):
        raise AuditInputError(f"{board_address!r} is not a contract address: no session to audit")
    board = BulletinBoardClient(w3, board_address)
    if not code_matches(w3, board.address, "BulletinBoard"):
        raise AuditInputError(f"the code at {board.address} on this chain is not the committed BulletinBoard")
    try:  # the one the board names, running the committed Consensus or GramGateConsensus
        consensus = consensus_client_at(w3, board.consensus())
    except SessionMismatchError as exc:
        raise AuditInputError(f"the board's consensus contract is not a committed one: {exc}") from None
    if consensus.board() != board.address:
        raise AuditInputError(f"the board's consensus contract {consensus.address} is not the committed one")
    copied = (consensus.nonce(), consensus.participant_count())
    if copied != (board.nonce(), len(board.participants())):
        raise AuditInputError(f"the consensus contract {consensus.address} differs from the board")
    if isinstance(consensus, ConsensusClient) and consensus.counter_bits() != counter_bits(
        consensus.candidate_count(), len(board.participants())
    ):
        raise AuditInputError(f"the consensus contract {consensus.address} counts with the wrong width")
    return board, consensus


def block_hash(w3: Web3, number: int | str) -> str:
    return "0x" + bytes(w3.eth.get_block(number)["hash"]).hex()  # type: ignore[arg-type]


def rounds_done(board: BulletinBoardClient, planned: int | None) -> int:
    """How many rounds have their model on the board (posting θ_r opens round r+1)."""
    done = board.current_round() - 1
    return done if planned is None else min(done, planned)


# ─────────────── the session's facts ───────────────


def check_session_facts(section: Section, stated: dict[str, Any], chain: RunChain, w3: Web3) -> None:
    """The session facts a record states (``chain.json``'s or ``session.json``'s), each against
    the contracts' own views: roster in order, M, nonce, phases, θ_0, addresses."""
    s, board = chain.session, chain.board
    views: dict[str, Any] = {
        "chain_id": int(w3.eth.chain_id),
        "bulletin_board": board.address,
        "consensus": chain.consensus.address,
        "server": s.server,
        "participants": list(s.participants),
        "candidates_per_round": chain.consensus.candidate_count(),
        "nonce": s.nonce,
        "phases": asdict(s.phases),
        "initial_model": s.initial_model,
    }
    names = {
        "participants": "the roster (in order)",
        "candidates_per_round": "M (candidates per round)",
        "nonce": "the session nonce",
        "phases": "the phases",
        "initial_model": "θ_0's digest",
    }
    for key, actual in views.items():
        if key not in stated:
            section.problems.append(f"{key} is missing (the chain says {actual!r})")
            continue
        section.same(f"{names.get(key, key)} ({key})", stated[key], actual, "session facts")


def check_bounds(
    section: Section, stated: dict[str, Any], *, share_fraction: float | None, aggregation: str | None
) -> None:
    """The decoding bounds agreed off-chain: the model's size is the architecture's, ⌈s·d⌉ follows
    from the settings' share fraction, and the aggregation rule is the settings'."""
    dimension = model_dimension()
    section.same(
        "the model's dimension (dimension)",
        stated.get("dimension"),
        dimension,
        "agreed bounds",
        per="the architecture",
    )
    if share_fraction is not None:
        section.same(
            "⌈s·d⌉ (update_size)",
            stated.get("update_size"),
            update_size(share_fraction, dimension),
            "agreed bounds",
            per="the settings' share fraction",
        )
    if aggregation is not None:
        section.same(
            "the aggregation rule (aggregation)",
            stated.get("aggregation"),
            aggregation,
            "agreed bounds",
            per="config.toml",
        )


def check_seed(section: Section, seed: Any, session: SessionInfo, what: str) -> None:
    """The public seed a record states fixes the θ_0 that the chain registers."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        section.problems.append(f"{what}: the seed {seed!r} is not a seed")
        return
    if initial_model_digest(seed, session.server) != session.initial_model:
        section.problems.append(f"{what}: seed {seed} does not give the θ_0 the board registers")
    else:
        section.count("seed (θ_0)")


def check_shape(
    section: Section, what: str, *, participants: Any, fraction: Any, session: SessionInfo
) -> None:
    """N and l as a record states them against the roster and M on the chain."""
    section.same(f"{what}: N (participants)", participants, session.n, "settings")
    try:
        m = candidate_count(float(fraction), session.n)
    except (TypeError, ValueError):
        section.problems.append(f"{what}: the candidate fraction {fraction!r} is not one")
        return
    if m != session.candidates:
        section.problems.append(
            f"{what}: l = {fraction} gives M = ⌈l·N⌉ = {m}, "
            f"but the consensus contract elects {session.candidates}"
        )
    else:
        section.count("settings")


# ─────────────── chain.json ───────────────


def check_chain_record(
    section: Section,
    facts: dict[str, Any],
    chain: RunChain,
    w3: Web3,
    *,
    first_block: int | None,
    every_party_funded: bool = True,
) -> list[LedgerEntry]:
    """Every fact ``chain.json`` states, against the chain; returns the chain's own ledger of the
    session (every transaction from its first block to the last block chain.json pins).

    ``every_party_funded``: the session funded every party (a simulated run does); otherwise (a
    deployment, whose parties may bring their own ether) the funding listed must be the session's
    transfers to its parties as the chain records them."""
    check_session_facts(section, facts, chain, w3)
    board = chain.board
    check_genesis(section, facts.get("genesis_hash"), w3)
    head = int(w3.eth.block_number)
    last = facts.get("last_block")
    number = last.get("number") if isinstance(last, dict) else None
    if not isinstance(last, dict) or not isinstance(number, int) or not 0 <= number <= head:
        section.problems.append(
            f"the last block (last_block) {last!r} is not the number and hash of a block of this chain "
            f"(head {head})"
        )
        number = head
    else:
        section.same(
            f"block {number}'s hash (last_block.hash)",
            last.get("hash"),
            block_hash(w3, number),
            "block hashes",
        )
    # Upheld by the last block the record accounts for (a deployment's chain moves on after its
    # server's last record: an accusation mined later is not the record's to count).
    upheld = [
        tx
        for *_, tx in board.accusations()
        if int((_receipt(w3, tx) or {}).get("blockNumber", head + 1)) <= number
    ]
    section.same(
        "accusations upheld (accusations_upheld)", facts.get("accusations_upheld"), len(upheld), "chain facts"
    )
    deployed = _receipts(w3, facts.get("deployment"), section, "deployment")
    made = [str(r.get("contractAddress") or "") for r in deployed]
    section.same(
        "the deployment transactions (deployment)",
        made,
        [board.address, chain.consensus.address],
        "chain facts",
    )
    section.same(
        "the deployment blocks (deployment_blocks)",
        facts.get("deployment_blocks"),
        [int(r["blockNumber"]) for r in deployed],
        "chain facts",
    )
    funded = _receipts(w3, facts.get("funding"), section, "funding")
    recipients = [str(w3.eth.get_transaction(r["transactionHash"]).get("to") or "") for r in funded]
    parties = [chain.session.server, *chain.session.participants]
    if every_party_funded:
        section.same("the funded parties (funding)", recipients, parties, "chain facts")
    if first_block is None:
        first_block = min((int(r["blockNumber"]) for r in (*funded, *deployed)), default=1)
    ledger = session_ledger(w3, chain.session, first_block, number)
    if not every_party_funded:
        known = {a.lower() for a in parties}
        section.same(
            "the funding transactions (funding)",
            [_normal_field(tx) for tx in facts.get("funding") or []],
            [e.tx_id.lower() for e in ledger if e.action == "fund" and (e.subject or "").lower() in known],
            "chain facts",
        )
    _compare_ledger(section, facts.get("transactions"), ledger, first_block, number)
    return ledger


def check_genesis(section: Section, recorded: Any, w3: Web3) -> None:
    """The genesis hash a record pins must be block 0's. An anvil that reloads a saved chain (a
    resumed run's) creates a genesis block of its own beside the loaded one and answers block 0
    with either; block 1 builds on the chain's own. So the recorded hash must be a block 0 that
    this chain holds: the one it answers, the one block 1 builds on, or the other, found by hash."""
    answered = block_hash(w3, 0)
    linked = (
        "0x" + bytes(w3.eth.get_block(1)["parentHash"]).hex() if int(w3.eth.block_number) >= 1 else answered
    )
    held = isinstance(recorded, str) and recorded.lower() in (answered, linked)
    if not held and isinstance(recorded, str):
        try:
            held = int(w3.eth.get_block(recorded)["number"]) == 0  # type: ignore[arg-type]
        except Exception:  # not a hash, or no block of this chain: a problem, named below
            held = False
        if held:
            section.notes.append(
                f"the chain holds two genesis blocks (anvil makes one of its own when it reloads a saved "
                f"chain): chain.json pins {recorded}, block 1 builds on {linked}"
            )
    if held:
        section.count("block hashes")
    else:
        section.same("the genesis block's hash (genesis_hash)", recorded, linked, "block hashes")


def _receipts(w3: Web3, tx_ids: Any, section: Section, key: str) -> list[Any]:
    if not isinstance(tx_ids, list):
        section.problems.append(f"{key}: {tx_ids!r} is not a list of Tx-IDs")
        return []
    out = []
    for tx in tx_ids:
        receipt = _receipt(w3, tx)
        if receipt is None:
            section.problems.append(f"{key}: transaction {tx} is not on this chain")
        else:
            out.append(receipt)
    return out


def _receipt(w3: Web3, tx: Any) -> Any:
    try:
        return w3.eth.get_transaction_receipt(tx)
    except Exception:  # not a hash, or not on this chain: the caller names it
        return None


def session_ledger(w3: Web3, session: SessionInfo, first: int, last: int) -> list[LedgerEntry]:
    """Every transaction in blocks ``first``…``last`` as the chain records it (the ledger's own
    reading: block, sender, role, action, round, subject, status, gas from the receipt)."""
    ledger = Ledger(
        w3,
        first_block=first,
        server=session.server,
        participants=session.participants,
        contracts=session_contracts(session.board, session.consensus, session.election),
    )
    return [e for e in ledger.update() if e.block <= last]


LEDGER_FIELDS = ("block", "sender", "role", "action", "round", "subject", "status", "gas")


def _compare_ledger(section: Section, recorded: Any, chain: list[LedgerEntry], first: int, last: int) -> None:
    if not isinstance(recorded, list) or not all(isinstance(t, dict) for t in recorded):
        section.problems.append("transactions: not a list of transactions")
        return
    on_chain = {e.tx_id.lower(): e for e in chain}
    listed = {str(t.get("tx_id", "")).lower() for t in recorded}
    for k, t in enumerate(recorded):
        tx = str(t.get("tx_id", ""))
        entry = on_chain.get(tx.lower())
        if entry is None:
            section.problems.append(
                f"transaction {k} ({tx}) is not a transaction of this chain in blocks {first}–{last}"
            )
            continue
        wrong = [
            f"{name} {t.get(name)!r} (the chain: {getattr(entry, name)!r})"
            for name in LEDGER_FIELDS
            if _normal_field(t.get(name)) != _normal_field(getattr(entry, name))
        ]
        if wrong:
            section.problems.append(f"transaction {k} ({tx[:18]}…): " + "; ".join(wrong))
        else:
            section.count("transactions")
    for e in chain:
        if e.tx_id.lower() not in listed:
            section.problems.append(
                f"transaction {e.tx_id} (block {e.block}, {e.action} by {e.role}, {e.status}) is on the "
                "chain but missing from the record (dropped)"
            )
    order = [str(t.get("tx_id", "")).lower() for t in recorded if str(t.get("tx_id", "")).lower() in on_chain]
    if order != [e.tx_id.lower() for e in chain if e.tx_id.lower() in listed]:
        section.problems.append("transactions: not in the chain's order")


def _normal_field(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
