"""A deployment's server records as a simulated run's, and the Flower ServerApp that keeps them.

The server of a deployment (:class:`~seccl.deploy.server_run.DeployedServer`) keeps its own
records: run.json, messages.sqlite, models/round-NNNN.pt from θ_0 on, dropouts.json, server.log.
:class:`DeploymentRecords` adds, beside them, the records a simulated run writes, by the same code
(:func:`seccl.runs.records.write_records`) and so in the same formats: config.toml, metrics.json,
metrics.csv, chain.json, evidence.json, the plots and the TensorBoard events. Every tool that
reads a run reads them: ``seccl compare``, ``seccl evaluate`` (config.toml gives a model's data
set and seed), ``seccl audit`` (which checks them against the chain as it checks a run's).

What the server does not know is not recorded as if it did: each participant's findings stay in
its own state directory (evidence.json lists none, and says where they are), the participants'
training losses and data are theirs (none, and only index, address and no adversary flag per
participant), and so is the simulation's split of a round's time into training, evaluation and
chain (none). The records need a test set (their accuracy) and a session ``seccl run`` could
run (3 participants or more); without either, the server says so in its log and keeps its own.

This module is the deployment's counterpart of :mod:`seccl.runs.launch`: Flower's ServerApp
(``app``, named in the Flower app's pyproject.toml by ``seccl deploy``) builds the deployed
server with these records and runs it.
"""

from __future__ import annotations

import time

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from seccl.chain.backends import RpcChain
from seccl.chain.ledger import Ledger, LedgerEntry
from seccl.chain.session import session_contracts
from seccl.chain.transactions import TxReceipt
from seccl.deploy.server_run import DeployedServer, Scores, ServerConfig
from seccl.deploy.session_file import SessionFile
from seccl.roles.server import RoundOutcome
from seccl.runs.config import ConfigError, RunConfig
from seccl.runs.records import write_records
from seccl.runtime.facts import chain_facts, election_facts
from seccl.runtime.results import RoundRecord, RunResult, refresh_costs

EVIDENCE_NOTE = (
    "a deployment's server holds none of the participants' findings: each participant keeps its "
    "own, with its proof, in its state directory (participant-NNNN/state/evidence.json, which "
    "`seccl audit` re-judges), so evidence lists none here and no round counts any; chain.json's "
    "accusations_upheld counts the accusations the chain upheld. rejected_messages: the messages "
    "this server refused"
)


def records_config(config: ServerConfig, agreed: SessionFile) -> RunConfig:
    """The deployed session's settings as a simulated run's config.toml states them: what the
    session file fixes (N, M, the rounds, the learning settings, the seed), the chain, the
    server's attack, and the server's run config's word on the data and l. A
    :class:`ConfigError` when the session is not one ``seccl run`` could run."""
    session, settings = agreed.session, agreed.settings
    fraction = config.candidate_fraction
    if fraction is None:
        fraction = session.candidates / session.n  # the l that gives the chain's M
    return RunConfig(
        participants=session.n,
        rounds=agreed.rounds,
        candidate_fraction=fraction,
        share_fraction=settings.share_fraction,
        local_epochs=settings.local_epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        aggregation=settings.aggregation,
        dataset=config.dataset,
        per_participant=config.per_participant,
        seed=agreed.seed,
        chain=config.chain_url,
        out_dir=str(config.out_dir),
        server_attack=config.server_attack,
        attack_target=config.attack_target if config.server_attack else 0,
    )


class DeploymentRecords:
    """The :class:`~seccl.deploy.server_run.ServerRecorder` that writes a simulated run's
    records into the server's directory at the start (round 0: θ_0's scores), after every round,
    and at the end (the costs once more: an accusation of the last model counts in its round)."""

    def __init__(self) -> None:
        self.config: RunConfig | None = None
        self.ledger: Ledger | None = None
        self.records: list[RoundRecord] = []
        self.started = time.perf_counter()

    def start(self, server: DeployedServer) -> None:
        if server.initial_scores is None:
            server.log("no records in a simulated run's formats: the run config names no test-data")
            return
        try:
            self.config = records_config(server.config, server.agreed)
        except ConfigError as exc:
            server.log(
                f"no records in a simulated run's formats: not a session `seccl run` could run ({exc})"
            )
            return
        session = server.session
        self.ledger = Ledger(
            server.server.board.w3,
            first_block=server.agreed.first_block,
            server=session.server,
            participants=session.participants,
            contracts=session_contracts(session.board, session.consensus, session.election),
        )
        self.write(server)

    def round_done(
        self, server: DeployedServer, outcome: RoundOutcome, seconds: float, scores: Scores | None
    ) -> None:
        """Round ``outcome.round`` as a simulated run records it (see RoundRecord): its test-set
        scores, the counted score matrix and the contract's totals read from the chain, and every
        party's transactions of the round as the chain records them (refresh_costs sets them).
        A round whose model never reached the board is not one (as in a simulated run)."""
        if self.config is None or scores is None or not outcome.model_posted:
            return
        r = outcome.round
        matrix, points, abstentions = election_facts(server.session, server.server.consensus, r)
        self.records.append(
            RoundRecord(
                round=r,
                accuracy=scores[0],
                macro_f1=scores[1],
                candidates=outcome.candidates,
                seconds=seconds,
                gas=0,
                transactions=0,
                ballots=outcome.ballots,
                evidence=0,
                rejections=len(outcome.rejections),
                scores=matrix,
                borda_points=points,
                abstentions=abstentions,
            )
        )
        self.write(server)

    def finish(self, server: DeployedServer) -> None:
        if self.config is not None:
            self.write(server)

    def write(self, server: DeployedServer) -> None:
        """Every record of a simulated run but run.json (the server's own), from the rounds so far."""
        assert self.config is not None and self.ledger is not None
        assert server.test_set is not None and server.initial_scores is not None
        ledger = self.ledger.update()
        refresh_costs(self.records, ledger)
        session = server.session
        parties = {a.lower() for a in (session.server, *session.participants)}
        result = RunResult(
            rounds=list(self.records),
            evidence=[],
            verdicts=[],
            rejections=list(server.server.rejections),
            transactions=list(server.server.transactions),
            chain=chain_facts(
                backend=RpcChain(server.config.chain_url),
                session=session,
                board=server.server.board,
                aggregation=server.agreed.settings.aggregation,
                deployment=[_receipt(e) for e in ledger if e.action.startswith("deploy ")],
                funding=[_receipt(e) for e in ledger if _funds(e, parties)],
                test_set=server.test_set,
                last_block=self.ledger.last_block,  # the chain moves on: pin what the ledger read
            ),
            initial_accuracy=server.initial_scores[0],
            initial_macro_f1=server.initial_scores[1],
            participants=[
                {"index": i, "address": address, "adversary": False}
                for i, address in enumerate(session.participants)
            ],
            ledger=ledger,
        )
        write_records(
            self.config,
            result,
            server.out,
            evidence_note=EVIDENCE_NOTE,
            seconds=round(time.perf_counter() - self.started, 3),
            deployment={
                "session": str(server.config.session_file),
                "dropouts": [d.to_dict() for d in server.transport.dropouts],
            },
        )


def _receipt(entry: LedgerEntry) -> TxReceipt:
    return TxReceipt(entry.tx_id, entry.gas, entry.block)


def _funds(entry: LedgerEntry, parties: set[str]) -> bool:
    """Whether ``entry`` pays one of the session's parties (lowercase addresses)."""
    return entry.action == "fund" and (entry.subject or "").lower() in parties


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """The server's part of a deployment: its run config, its rounds over ``grid``, its records."""
    config = ServerConfig.from_run_config(context.run_config)
    DeployedServer(config, grid, recorder=DeploymentRecords()).run()


__all__ = ["DeploymentRecords", "app", "records_config"]
