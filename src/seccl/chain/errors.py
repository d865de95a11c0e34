"""Typed Python exceptions for every custom error of SecCL's contracts, and the revert decoder."""

from __future__ import annotations

import ast
from typing import Any, ClassVar

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from seccl.chain.artifacts import CONTRACT_NAMES, load_artifact


class ChainError(Exception):
    """Root of every error the chain layer raises."""


class ChainUnavailableError(ChainError):
    """The chain backend could not be reached or started."""


class ContractRevert(ChainError):
    """A contract call reverted. Subclasses name the custom error; ``args_`` holds its arguments.

    ``tx_hash`` is set when the revert happened in a mined transaction (it is on the chain).
    """

    template: ClassVar[str] = "the contract reverted"

    def __init__(self, fields: dict[str, Any] | None = None, tx_hash: str | None = None):
        self.fields = dict(fields or {})
        self.tx_hash = tx_hash
        message = self.template.format(**self.fields)
        if tx_hash:
            message += f" (transaction {tx_hash})"
        super().__init__(message)


class UnknownRevert(ContractRevert):
    """A revert whose data matches no custom error of SecCL's contracts."""

    template = "the contract reverted with unrecognised data {data}"


# ──────────────────────────── BulletinBoard ────────────────────────────


class BulletinError(ContractRevert):
    """A revert of the bulletin board (TBB)."""


class BulletinInvalidParticipants(BulletinError):
    template = (
        "invalid participant list at position {position}: it must be non-empty, at most 256 long, "
        "without the zero address, the server or duplicates"
    )


class BulletinInvalidSettings(BulletinError):
    template = (
        "invalid session settings: every phase must last at least 1 s, the consensus address be set "
        "and the update format be possible (0 < update size <= dimension, a finite value bound)"
    )


class BulletinRoundNotOpen(BulletinError):
    template = "round {round} is not open yet: the bulletin board is at round {currentRound}"


class BulletinRoundClosed(BulletinError):
    template = "round {round} is over (its model is posted): the bulletin board is at round {currentRound}"


class BulletinUpdatePhaseOver(BulletinError):
    template = "the update phase of round {round} ended at {deadline}"


class BulletinUnknownAuthor(BulletinError):
    template = "{author} is not a registered participant"


class BulletinAlreadyPosted(BulletinError):
    template = "{author} already posted a message of kind {kind} in round {round}"


class BulletinInvalidSignature(BulletinError):
    template = "the signature is not {expected}'s: it recovers to {signer}"


class BulletinRevealPhaseNotOpen(BulletinError):
    template = "the reveals of round {round} open when every update is committed or at {updateDeadline}"


class BulletinRevealPhaseOver(BulletinError):
    template = "the reveal phase of round {round} ended at {deadline}"


class BulletinNotAuthor(BulletinError):
    template = "only {author} may reveal its update, not {caller}"


class BulletinNotCommitted(BulletinError):
    template = "{author} committed no update in round {round}"


class BulletinAlreadyRevealed(BulletinError):
    template = "the update of {author} in round {round} is already revealed"


class BulletinNotRevealed(BulletinError):
    template = "the update of {author} in round {round} has not been revealed"


class BulletinRevealMismatch(BulletinError):
    template = "the bytes hash to {actual}, not to the committed digest {committed}"


class BulletinMalformedUpdate(BulletinError):
    template = (
        "the revealed bytes are not an update of round {round} by its author in the session's format "
        "(first wrong at byte {offset})"
    )


class BulletinProofRefuted(BulletinError):
    template = "entry {position} of the update of {author} in round {round} is valid: the proof is refuted"


class BulletinAlreadyInvalid(BulletinError):
    template = "the update of {author} in round {round} was already proven invalid"


class BulletinNotTallied(BulletinError):
    template = "the model of round {round} cannot be posted before its election is tallied"


class BulletinWrongLength(BulletinError):
    template = "list lengths or index do not fit: {a} and {b}"


class BulletinAccusationRefuted(BulletinError):
    template = "the chain does not support accusation {offence} against the server in round {round}"


# ──────────────────────────── Consensus ────────────────────────────


class ConsensusError(ContractRevert):
    """A revert of the consensus contract (CSC)."""


class ConsensusInvalidCandidateCount(ConsensusError):
    template = "cannot elect {candidates} of {participants} participants: need 1 to participants - 1"


class ConsensusBoardMismatch(ConsensusError):
    template = "the bulletin board {board} names {named} as its consensus contract, not this one"


class ConsensusRoundNotOpen(ConsensusError):
    template = "round {round} has not been opened on the bulletin board"


class ConsensusBallotPhaseNotOpen(ConsensusError):
    template = (
        "the ballots of round {round} open when every committed update is revealed or after {revealDeadline}"
    )


class ConsensusBallotPhaseOver(ConsensusError):
    template = "the ballot phase of round {round} ended at {deadline}"


class ConsensusElectionClosed(ConsensusError):
    template = "the election of round {round} is already tallied"


class ConsensusUnknownVoter(ConsensusError):
    template = "{voter} is not a registered participant"


class ConsensusAlreadyVoted(ConsensusError):
    template = "{voter} has already voted in round {round}"


class ConsensusWrongLength(ConsensusError):
    template = "expected {expected} entries, got {actual}"


class ConsensusSelfScore(ConsensusError):
    template = "{voter} scored or ranked itself in round {round} (its own entry must be ABSTAIN)"


class ConsensusInvalidScore(ConsensusError):
    template = "the score {score} at position {position} is neither in [0, 1000000] nor ABSTAIN"


class ConsensusInvalidSignature(ConsensusError):
    template = "the scores are not signed by {voter}: the signature recovers to {signer}"


class ConsensusInvalidRanking(ConsensusError):
    template = "the ranking is not the voter's top-M by the rule (first wrong at position {position})"


class ConsensusElectionStillOpen(ConsensusError):
    template = (
        "the election of round {round} has {ballots} of {expected} ballots and takes more until {deadline}"
    )


class ConsensusNotTallied(ConsensusError):
    template = "the election of round {round} has not been tallied"


# ──────────────────────────── GramGateConsensus ────────────────────────────
# The checks it shares with Consensus revert with Consensus's own errors (same selectors), which
# decode to the classes above; these are its own.


class GramGateError(ConsensusError):
    """A revert particular to the gram-gate consensus contract."""


class GramGateInvalidAssumedAttackers(GramGateError):
    template = (
        "the filter cannot assume {assumedAttackers} attackers among {participants} participants: need fewer"
    )


class GramGateIneligibleEntry(GramGateError):
    template = (
        "the entry {entry} at position {position} is for a participant that is not eligible: "
        "it must be ABSTAIN"
    )


class GramGateInvalidOwnEntry(GramGateError):
    template = "the voter's own entry {entry} at position {position} must be ABSTAIN, DROPPED or REJECTED"


class GramGateInvalidEntry(GramGateError):
    template = (
        "the entry {entry} at position {position} is neither a score in [0, 1000000] nor DROPPED nor REJECTED"
    )


def _abi_errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Selector -> (error name, argument names, argument types), from the compiled ABIs."""
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for contract in CONTRACT_NAMES:
        for entry in load_artifact(contract).abi:
            if entry["type"] != "error":
                continue
            types = [i["type"] for i in entry["inputs"]]
            names = [i["name"] for i in entry["inputs"]]
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            table[selector] = (entry["name"], names, types)
    return table


def _all_reverts() -> dict[str, type[ContractRevert]]:
    found: dict[str, type[ContractRevert]] = {}
    stack: list[type[ContractRevert]] = [ContractRevert]
    while stack:
        cls = stack.pop()
        if cls.__dict__.get("template") and cls not in (ContractRevert, UnknownRevert):
            found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


ABI_ERRORS = _abi_errors()
REVERT_CLASSES = _all_reverts()


def decode_revert(data: bytes, tx_hash: str | None = None) -> ContractRevert:
    """The typed exception for revert ``data`` (selector + ABI-encoded arguments)."""
    entry = ABI_ERRORS.get(bytes(data[:4]))
    if entry is None or entry[0] not in REVERT_CLASSES:
        return UnknownRevert({"data": "0x" + bytes(data).hex()}, tx_hash)
    name, names, types = entry
    values = decode(types, bytes(data[4:]))
    fields = {arg: _readable(kind, value) for arg, kind, value in zip(names, types, values, strict=True)}
    return REVERT_CLASSES[name](fields, tx_hash)


def _readable(kind: str, value: Any) -> Any:
    if kind == "bytes32":
        return "0x" + bytes(value).hex()
    if kind == "address":
        return to_checksum_address(value)
    return value


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data inside a web3.py or eth-tester exception, if it carries any."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    # eth-tester raises TransactionFailed("execution reverted: b'...'"): the data is a bytes literal.
    text = str(exc.args[0]) if exc.args else ""
    prefix = "execution reverted: "
    if text.startswith(prefix):
        literal = text[len(prefix) :]
        if literal.startswith("0x"):
            return bytes.fromhex(literal[2:])
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return None
        if isinstance(value, bytes):
            return value
    return None
