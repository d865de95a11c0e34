"""`seccl audit` of a deployment's records: the server's (``server/records``: run.json,
messages.sqlite, models/, and the records a simulated run writes: config.toml, metrics.json,
metrics.csv, chain.json, evidence.json) and a participant's (``participant-NNNN/state``:
evidence.json, journal.sqlite), each against the chain and the session file the consortium agreed
to. The server's simulated-run records are checked by the checks of a run's (:mod:`seccl.runs.audit`).

``seccl deploy local`` writes DEPLOYMENT/session.json and saves its chain in
DEPLOYMENT/chain/anvil-state.json: both are found from either records directory; ``--session``
and ``--chain URL`` name them otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3 import Web3

from seccl.chain.bulletin_board import MessageKind
from seccl.chain.session import session_contracts
from seccl.deploy.data_files import DataFileError, read_dataset_file
from seccl.deploy.session_file import SessionFile, SessionFileError
from seccl.learning.data import Dataset
from seccl.learning.evaluation import TEST_BATCH
from seccl.learning.model import build_model, get_flat_params
from seccl.protocol.evidence import Evidence
from seccl.protocol.messages import header_author
from seccl.protocol.session import session_to_dict
from seccl.protocol.verification import verify_evidence
from seccl.runs.audit_chain import (
    check_bounds,
    check_chain_record,
    check_seed,
    check_session_facts,
    deployment_chain,
    rounds_done,
    session_ledger,
)
from seccl.runs.audit_evidence import check_accusations_recorded, upheld_accusations
from seccl.runs.audit_records import (
    Scores,
    check_config,
    evaluate_models,
    metrics_csv_section,
    metrics_section,
)
from seccl.runs.audit_report import (
    MALFORMED,
    AuditInputError,
    AuditReport,
    FindingCheck,
    Section,
    guarded,
    open_archive,
    read_config,
    read_json,
)
from seccl.runs.audit_rounds import ReadOnlyArchive, audit_elections, audit_model_files, audit_session
from seccl.runs.verify import RunChain

JOURNAL = "journal.sqlite"  # seccl.deploy.node's names for a participant's state
EVIDENCE = "evidence.json"
STATE = "state.pickle"


def is_participant_state(directory: Path) -> bool:
    """Whether ``directory`` is a participant's state directory (``seccl node``'s)."""
    return (directory / JOURNAL).is_file() or (directory / STATE).is_file()


def is_server_records(directory: Path) -> bool:
    """Whether ``directory`` holds a deployment server's records: its run.json and messages, and
    no simulated run's (whose run.json names no session file)."""
    if not ((directory / "run.json").is_file() and (directory / "messages.sqlite").is_file()):
        return False
    if not (directory / "chain.json").is_file():
        return True
    try:
        described = read_json(directory / "run.json")
    except AuditInputError:
        return False
    return isinstance(described, dict) and "session" in described and "dropouts" in described


def _session_file(directory: Path, named: Any, given: Path | None) -> tuple[SessionFile, Path]:
    """The session the records belong to: ``--session``, else the one the server's run.json
    names, else DEPLOYMENT/session.json (two levels above either records directory)."""
    candidates = [given] if given is not None else []
    if given is None and isinstance(named, str) and named:
        candidates.append(Path(named))
    if given is None:
        candidates.append(directory.parent.parent / "session.json")
    for path in candidates:
        if path is not None and path.is_file():
            try:
                return SessionFile.read(path), path
            except SessionFileError as exc:
                raise AuditInputError(str(exc)) from None
    shown = ", ".join(str(p) for p in candidates if p is not None)
    raise AuditInputError(f"no session file for {directory} (looked for {shown}): give --session FILE")


def _state_file(session_path: Path, url: str | None) -> Path | None:
    return None if url else session_path.parent / "chain" / "anvil-state.json"


def _session_section(agreed: SessionFile, chain: RunChain, w3: Web3) -> Section:
    """session.json against the chain: every fact the participants agreed to."""
    section = Section("session.json")
    stated = session_to_dict(agreed.session)
    facts = {
        "chain_id": stated["chain_id"],
        "bulletin_board": stated["board"],
        "consensus": stated["consensus"],
        "server": stated["server"],
        "participants": stated["participants"],
        "candidates_per_round": stated["candidates"],
        "nonce": stated["nonce"],
        "phases": stated["phases"],
        "initial_model": stated["initial_model"],
    }
    check_session_facts(section, facts, chain, w3)
    check_seed(section, agreed.seed, chain.session, "seed")
    check_bounds(section, stated, share_fraction=agreed.settings.share_fraction, aggregation=None)
    return section


def _check_first_block(section: Section, agreed: SessionFile, ledger: list[Any]) -> None:
    """The session file's first block is where an auditor starts reading: the board's and the
    consensus contract's deployments must be among the transactions from there on."""
    deployed = {e.action for e in ledger}
    names = session_contracts(agreed.session.board, agreed.session.consensus, agreed.session.election)
    if {f"deploy {name}" for name in names} <= deployed:
        section.count("session facts")
    else:
        section.problems.append(
            f"first_block {agreed.first_block}: the chain from there holds no deployment "
            "of the session's contracts"
        )


# ─────────────── the server's records ───────────────


def audit_server_records(records: Path, *, url: str | None, session_file: Path | None) -> AuditReport:
    """A deployment's server records against the chain: every stored message, election and model
    (θ_0 from the session's seed), the model files, and each round of its run.json."""
    described = read_json(records / "run.json")
    if not isinstance(described, dict) or "rounds" not in described:
        raise AuditInputError(f"{records / 'run.json'} is not a deployment server's run record")
    agreed, session_path = _session_file(records, described.get("session"), session_file)
    test_file = session_path.parent / "data" / "test.npz"
    archive = open_archive(records / "messages.sqlite", "the server stored no messages")
    with archive, deployment_chain(agreed, url, _state_file(session_path, url)) as (chain, w3, where):
        session = chain.session
        header = [f"deployment server records {records}: session {session_path}, the chain at {where}"]
        sections = [_session_section(agreed, chain, w3)]
        done = rounds_done(chain.board, agreed.rounds)
        initial = get_flat_params(build_model(agreed.seed))
        rounds = audit_session(
            session,
            chain.board,
            chain.consensus,
            archive,
            aggregation=agreed.settings.aggregation,
            initial_params=initial,
            require_tx_ids=False,
        )
        held = audit_model_files(records / "models", session, chain.board, rounds)
        accuracy = None
        test = None
        if test_file.is_file():
            try:
                test = read_dataset_file(test_file)
            except DataFileError as exc:
                header.append(f"accuracy not rechecked (test set not at hand: {exc})")
            else:
                accuracy = evaluate_models(held, test, batch_size=TEST_BATCH)
        else:
            header.append(f"accuracy not rechecked (test set not at hand: no {test_file})")
        ledger = session_ledger(w3, session, agreed.first_block, int(w3.eth.block_number))
        _check_first_block(sections[0], agreed, ledger)
        record = Section("run.json")
        record.same("the server (server)", described.get("server"), session.server, "facts")
        guarded(_check_server_rounds, record, described.get("rounds"), chain, ledger, done, accuracy)
        if described.get("complete") is not True:
            header.append("run.json says the session did not end")
        sections.append(record)
        scope = "and so do run.json and session.json"
        if (records / "chain.json").is_file() or (records / "metrics.json").is_file():
            sections += _run_records(records, agreed, chain, w3, done, accuracy, test)
            scope = "and so do run.json, session.json and the records a simulated run writes"
        else:
            header.append(
                "no records in a simulated run's formats (the server had no test set, or the session "
                "has fewer than 3 participants)"
            )
        accusations = [
            f"round {r}: {offence} by {_participant(session.participants, who)} (tx {tx})"
            for r, who, offence, tx in upheld_accusations(chain.board)
        ]
    return AuditReport(
        rounds,
        [],
        sections,
        rounds_done=done,
        rounds_planned=agreed.rounds,
        header=header,
        accusations=accusations,
        scope=f"every stored message, ballot, election and model matches the chain, {scope}",
    )


def _participant(roster: tuple[str, ...], address: str) -> str:
    return f"participant {roster.index(address)}" if address in roster else address


def _run_records(
    records: Path,
    agreed: SessionFile,
    chain: RunChain,
    w3: Web3,
    done: int,
    accuracy: dict[int, Scores] | None,
    test: Dataset | None,
) -> list[Section]:
    """The records a simulated run writes, as a deployment's server writes them too, each checked
    by the check of a run's (:func:`seccl.runs.audit.audit_run`), less what a deployment's server
    cannot hold: the participants' findings (each keeps its own: its state directory is audited on
    its own), their data (nobody reloads it here), and a funding of every party (a deployment's
    parties may bring their own ether)."""
    facts = read_json(records / "chain.json")
    if not isinstance(facts, dict):
        raise AuditInputError(f"{records / 'chain.json'} is not a run's chain record")
    settings = agreed.settings
    record = Section("chain.json")
    check_bounds(record, facts, share_fraction=settings.share_fraction, aggregation=settings.aggregation)
    try:
        ledger = check_chain_record(
            record, facts, chain, w3, first_block=agreed.first_block, every_party_funded=False
        )
    except MALFORMED as exc:
        record.problems.append(f"malformed ({type(exc).__name__}: {exc})")
        ledger = session_ledger(w3, chain.session, agreed.first_block, int(w3.eth.block_number))
    if test is not None:
        record.same(
            "the test set's SHA-256 (test_set_sha256)",
            facts.get("test_set_sha256"),
            test.sha256(),
            "data facts",
            per="the test set",
        )
    config = read_config(records / "config.toml")
    chosen = Section("config.toml")
    guarded(check_config, chosen, config, chain, done)
    chosen.same("the seed (seed)", config.seed, agreed.seed, "settings", per="session.json")
    chosen.same("the rounds (rounds)", config.rounds, agreed.rounds, "settings", per="session.json")
    metrics = read_json(records / "metrics.json")
    evidence = read_json(records / "evidence.json")
    figures, metrics = metrics_section(
        metrics,
        config=config,
        chain=chain,
        ledger=ledger,
        evidence=evidence,
        rounds_done=done,
        accuracy=accuracy,
        parts=None,
    )
    figures.notes.append("the rounds' seconds and the deployment's dropouts are the server's own word")
    if (records / "metrics.csv").is_file():
        table = metrics_csv_section(records / "metrics.csv", metrics)
    else:
        table = Section("metrics.csv")
        table.problems.append("missing beside metrics.json")
    found = Section("evidence.json")
    held = evidence.get("evidence") if isinstance(evidence, dict) else None
    if held == []:
        found.count("findings (none: the participants keep their own)")
    else:
        found.problems.append(
            "a deployment's server holds no findings (each participant keeps its own), but evidence "
            f"lists {held!r}"
        )
    rejected = evidence.get("rejected_messages") if isinstance(evidence, dict) else None
    if not isinstance(rejected, list):
        found.problems.append("rejected_messages: not a list")
    return [record, chosen, figures, table, found]


def _check_server_rounds(
    section: Section,
    rounds: Any,
    chain: RunChain,
    ledger: list[Any],
    done: int,
    accuracy: dict[int, tuple[float, float]] | None,
) -> None:
    """Each round of the server's run.json: its candidates in order and ballots from the consensus
    contract, its gas and transactions from the server's own transactions on the chain, its
    accuracy and macro-F1 from the model file."""
    from seccl.runs.audit_records import ACCURACY_TOLERANCE

    if not isinstance(rounds, list):
        section.problems.append("rounds: not a list of rounds")
        return
    by_round = {r.get("round"): r for r in rounds if isinstance(r, dict)}
    if sorted(k for k in by_round if isinstance(k, int)) != list(range(1, done + 1)):
        section.problems.append(
            f"rounds: the record holds rounds {sorted(by_round, key=str)}, the chain finished 1–{done}"
        )
    server = chain.session.server.lower()
    for r in range(1, done + 1):
        record = by_round.get(r)
        if record is None:
            continue
        where = f"round {r}"
        section.same(
            f"{where}: the elected candidates, in order (candidates)",
            record.get("candidates"),
            list(chain.consensus.elected_of(r)),
            "elections",
        )
        section.same(
            f"{where}: the ballots counted (ballots)",
            record.get("ballots"),
            chain.consensus.election_of(r).ballots,
            "elections",
        )
        own = [e for e in ledger if e.round == r and e.sender.lower() == server]
        section.same(f"{where}: the server's gas (gas)", record.get("gas"), sum(e.gas for e in own), "gas")
        section.same(
            f"{where}: the server's transactions (transactions)", record.get("transactions"), len(own), "gas"
        )
        if accuracy is not None and r in accuracy:
            for k, key in enumerate(("accuracy", "macro_f1")):
                got = record.get(key)
                if isinstance(got, (int, float)) and abs(got - accuracy[r][k]) <= ACCURACY_TOLERANCE:
                    section.count("accuracy")
                else:
                    section.problems.append(
                        f"{where}: {key} (round-{r:04d}.pt on the test set): the record says {got!r}; "
                        f"recomputed, it is {accuracy[r][k]!r}"
                    )
    section.notes.append("the rounds' seconds and dropouts are the server's own word: not on the chain")


# ─────────────── a participant's records ───────────────


def audit_participant_state(state: Path, *, url: str | None, session_file: Path | None) -> AuditReport:
    """A participant's own records against the chain: its journal (every message it signed is
    the one the chain records for it), its findings (each re-judged; each accusation of its that
    the chain upheld is among them) and every election of the session."""
    raw = read_json(state / EVIDENCE)
    if not isinstance(raw, list):
        raise AuditInputError(f"{state / EVIDENCE} is not a participant's evidence file (a list of findings)")
    try:
        findings = [Evidence.from_dict(item) for item in raw]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AuditInputError(
            f"{state / EVIDENCE}: a finding is malformed ({type(exc).__name__}: {exc})"
        ) from None
    agreed, session_path = _session_file(state, None, session_file)
    journal = open_archive(state / JOURNAL, "the participant's journal")
    with journal, deployment_chain(agreed, url, _state_file(session_path, url)) as (chain, w3, where):
        session = chain.session
        rows = journal.rows()
        me = _whose(rows, findings, session.participants)
        index = session.participants.index(me) if me in session.participants else None
        who = f"participant {index}" if index is not None else "an unknown participant"
        header = [f"{who}'s records {state}: session {session_path}, the chain at {where}"]
        sections = [_session_section(agreed, chain, w3)]
        rounds = audit_elections(session, chain.board, chain.consensus)
        header.append("models not rechecked: a participant's records hold only its own messages")
        done = rounds_done(chain.board, agreed.rounds)
        own = Section(JOURNAL)
        _check_journal(own, rows, me, chain, done)
        sections.append(own)
        found = Section(EVIDENCE)
        checks = []
        for e in findings:
            if me is not None and e.finder.lower() != me.lower():
                found.problems.append(
                    f"a finding of round {e.round} ({e.kind}) was found by {e.finder}, not by {who}"
                )
            checks.append(
                FindingCheck(
                    e,
                    verify_evidence(
                        e, session, chain.board, chain.consensus, aggregation=agreed.settings.aggregation
                    ),
                )
            )
        if me is not None:
            check_accusations_recorded(found, findings, chain.board, session, accuser=me)
        sections.append(found)
    return AuditReport(
        rounds,
        checks,
        sections,
        rounds_done=done,
        rounds_planned=agreed.rounds,
        header=header,
        scope=f"{who}'s journal, its findings, session.json and every election match the chain",
    )


def _whose(rows: list[Any], findings: list[Evidence], roster: tuple[str, ...]) -> str | None:
    """The participant whose records these are: the author of its journal (its findings'
    finder when it journaled nothing)."""
    authors = {header_author(stored.signed.data) or stored.author for _, stored in rows}
    authors |= {e.finder for e in findings}
    known = [a for a in roster if a.lower() in {x.lower() for x in authors}]
    return known[0] if len(known) == 1 else None


def _check_journal(section: Section, rows: list[Any], me: str | None, chain: RunChain, done: int) -> None:
    """Every message in the journal is the participant's own, signed by it, and the one the chain
    records for it; every update and counted ballot the chain records for it is in the journal."""
    session, board, consensus = chain.session, chain.board, chain.consensus
    if me is None:
        section.problems.append("the journal's messages are not one participant's of the roster")
        return
    journaled: set[tuple[int, MessageKind]] = set()
    for digest, stored in rows:
        r, kind = stored.round, stored.kind
        what = f"its {kind.name.lower()} of round {r}"
        if stored.signed.digest() != digest:
            section.problems.append(
                f"{what}: the stored bytes hash to 0x{stored.signed.digest().hex()[:16]}…, "
                "not to the digest it is stored under"
            )
            continue
        if (header_author(stored.signed.data) or "").lower() != me.lower():
            section.problems.append(f"{what} is not its own message")
            continue
        if session.domain.signer(r, int(kind), digest, stored.signed.signature) != me:
            section.problems.append(f"{what} is not signed by it")
            continue
        journaled.add((r, kind))
        if kind is MessageKind.UPDATE:
            recorded = board.digest_of(r, MessageKind.UPDATE, me)
        elif kind is MessageKind.EVALUATION:
            ballot = consensus.ballot_of(r, me)
            recorded = None if ballot is None else ballot.digest
        else:
            section.problems.append(f"{what}: a participant signs no models")
            continue
        if recorded == digest:
            section.count("own messages on the chain")
        elif recorded is None:
            section.notes.append(f"{what} never reached the chain")
        else:
            section.problems.append(
                f"{what} is 0x{digest.hex()[:16]}…, but the chain records 0x{recorded.hex()[:16]}… for it"
            )
    for r in range(1, done + 1):
        if (
            board.digest_of(r, MessageKind.UPDATE, me) is not None
            and (r, MessageKind.UPDATE) not in journaled
        ):
            section.problems.append(
                f"the chain records its update of round {r}, which its journal does not hold"
            )
        if consensus.ballot_of(r, me) is not None and (r, MessageKind.EVALUATION) not in journaled:
            section.problems.append(
                f"the chain counted its ballot of round {r}, which its journal does not hold"
            )


__all__ = [
    "ReadOnlyArchive",
    "audit_participant_state",
    "audit_server_records",
    "is_participant_state",
    "is_server_records",
]
