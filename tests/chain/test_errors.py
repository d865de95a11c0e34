"""Every custom error of the contracts decodes to a typed exception with a readable message."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from seccl.chain import errors
from seccl.chain.artifacts import CONTRACT_NAMES, load_artifact
from seccl.chain.backends import EmbeddedChain
from seccl.chain.bulletin_board import MessageKind
from seccl.chain.errors import (
    ABI_ERRORS,
    REVERT_CLASSES,
    ContractRevert,
    UnknownRevert,
    decode_revert,
    revert_data,
)
from tests.chain.helpers import deploy, digest

ADDRESS = "0x52908400098527886e0f7030069857d2e4169ee7"  # lower case, as no client would show it
ADDRESS_CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"
DIGEST = bytes(range(32))
TX_HASH = "0x" + "ab" * 32


def _abi_errors() -> list[tuple[str, str, list[str], list[str]]]:
    """(contract, error name, argument names, argument types), read straight from the artifacts."""
    found = []
    for contract in CONTRACT_NAMES:
        for entry in load_artifact(contract).abi:
            if entry["type"] == "error":
                names = [i["name"] for i in entry["inputs"]]
                types = [i["type"] for i in entry["inputs"]]
                found.append((contract, entry["name"], names, types))
    return found


ERRORS = _abi_errors()
ERROR_IDS = [name for _, name, _, _ in ERRORS]


def _selector(name: str, types: list[str]) -> bytes:
    return keccak(text=f"{name}({','.join(types)})")[:4]


def _fake(kind: str, position: int) -> tuple[Any, Any]:
    """A value of ABI type ``kind`` to encode, and how the decoded exception should show it."""
    if kind == "address":
        return ADDRESS, ADDRESS_CHECKSUMMED
    if kind == "bytes32":
        return DIGEST, "0x" + DIGEST.hex()
    if kind.startswith("uint"):
        value = min(2 ** int(kind[4:]) - 1, 1_000 + 37 * position) if kind != "uint8" else 2
        return value, value
    raise AssertionError(f"no fake value for ABI type {kind}: extend the test")


def test_the_artifacts_declare_custom_errors_for_both_contracts() -> None:
    contracts = {contract for contract, _, _, _ in ERRORS}

    assert contracts == set(CONTRACT_NAMES)
    assert len(ERRORS) >= 20


def test_every_abi_error_has_a_typed_class_and_every_class_an_abi_error() -> None:
    abi_names = {name for _, name, _, _ in ERRORS}

    assert abi_names <= set(REVERT_CLASSES), abi_names - set(REVERT_CLASSES)
    assert set(REVERT_CLASSES) <= abi_names, set(REVERT_CLASSES) - abi_names


@pytest.mark.parametrize(("contract", "name", "names", "types"), ERRORS, ids=ERROR_IDS)
def test_an_error_class_belongs_to_its_contracts_family(
    contract: str, name: str, names: list[str], types: list[str]
) -> None:
    family = {
        "BulletinBoard": errors.BulletinError,
        "Consensus": errors.ConsensusError,
        "GramGateConsensus": errors.ConsensusError,
    }[contract]

    cls = REVERT_CLASSES[name]

    assert issubclass(cls, family) and issubclass(cls, ContractRevert)
    assert cls is getattr(errors, name)
    if name.startswith("GramGate"):
        assert contract == "GramGateConsensus" and issubclass(cls, errors.GramGateError)


def test_the_gram_gate_contract_shares_the_consensus_contracts_errors_for_the_same_checks() -> None:
    """Its ballot and tally checks revert with Consensus's own errors (same selectors), so one
    handler serves both contracts; only its own rules have GramGate errors."""
    by_contract: dict[str, dict[str, list[str]]] = {}
    for contract, name, _, types in ERRORS:
        by_contract.setdefault(contract, {})[name] = types
    gram_gate, consensus = by_contract["GramGateConsensus"], by_contract["Consensus"]
    shared = {name for name in gram_gate if not name.startswith("GramGate")}

    assert shared <= set(consensus)
    assert all(gram_gate[name] == consensus[name] for name in shared)
    borda_only = {"ConsensusSelfScore", "ConsensusInvalidScore", "ConsensusInvalidRanking"}
    assert set(consensus) - shared == borda_only
    assert set(gram_gate) - shared == {
        "GramGateInvalidAssumedAttackers",
        "GramGateIneligibleEntry",
        "GramGateInvalidOwnEntry",
        "GramGateInvalidEntry",
    }


@pytest.mark.parametrize(("contract", "name", "names", "types"), ERRORS, ids=ERROR_IDS)
def test_the_selector_table_holds_every_error_under_its_keccak_selector(
    contract: str, name: str, names: list[str], types: list[str]
) -> None:
    assert ABI_ERRORS[_selector(name, types)] == (name, names, types)


def test_the_selector_table_has_one_entry_per_abi_error_without_collisions() -> None:
    # An error both consensus contracts declare (same name and arguments) is one entry.
    distinct = {(name, tuple(types)) for _, name, _, types in ERRORS}

    assert len(ABI_ERRORS) == len({name for name, _ in distinct}) == len(distinct)


@pytest.mark.parametrize(("contract", "name", "names", "types"), ERRORS, ids=ERROR_IDS)
def test_a_template_names_exactly_the_abi_arguments(
    contract: str, name: str, names: list[str], types: list[str]
) -> None:
    template = REVERT_CLASSES[name].template
    fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}

    assert fields == set(names)


@pytest.mark.parametrize(("contract", "name", "names", "types"), ERRORS, ids=ERROR_IDS)
def test_abi_encoded_revert_data_decodes_to_the_typed_error_with_its_arguments(
    contract: str, name: str, names: list[str], types: list[str]
) -> None:
    fakes = [_fake(kind, i) for i, kind in enumerate(types)]
    data = _selector(name, types) + encode(types, [raw for raw, _ in fakes])
    shown = {arg: readable for arg, (_, readable) in zip(names, fakes, strict=True)}

    exc = decode_revert(data)

    assert type(exc) is REVERT_CLASSES[name]
    assert exc.fields == shown
    assert str(exc) == REVERT_CLASSES[name].template.format(**shown)
    for value in shown.values():
        assert str(value) in str(exc)
    assert "{" not in str(exc) and exc.tx_hash is None


def test_addresses_come_back_checksummed() -> None:
    data = _selector("BulletinInvalidSignature", ["address", "address"]) + encode(
        ["address", "address"], [ADDRESS, "0x" + "00" * 20]
    )

    exc = decode_revert(data)

    assert isinstance(exc, errors.BulletinInvalidSignature)
    assert exc.fields == {"expected": ADDRESS_CHECKSUMMED, "signer": "0x" + "00" * 20}
    assert ADDRESS_CHECKSUMMED in str(exc) and ADDRESS not in str(exc)
    assert to_checksum_address(exc.fields["expected"]) == exc.fields["expected"]


def test_an_enum_argument_comes_back_as_its_number() -> None:
    data = _selector("BulletinAlreadyPosted", ["uint64", "uint8", "address"]) + encode(
        ["uint64", "uint8", "address"], [3, int(MessageKind.MODEL), ADDRESS]
    )

    exc = decode_revert(data)

    assert exc.fields == {"round": 3, "kind": 2, "author": ADDRESS_CHECKSUMMED}
    assert MessageKind(exc.fields["kind"]) is MessageKind.MODEL
    assert str(exc) == f"{ADDRESS_CHECKSUMMED} already posted a message of kind 2 in round 3"


def test_the_transaction_hash_is_kept_and_named_in_the_message() -> None:
    data = _selector("ConsensusNotTallied", ["uint64"]) + encode(["uint64"], [7])

    exc = decode_revert(data, TX_HASH)

    assert exc.tx_hash == TX_HASH
    assert str(exc) == f"the election of round 7 has not been tallied (transaction {TX_HASH})"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",
        bytes.fromhex("deadbeef") + encode(["uint256"], [1]),
        # Solidity's own Error(string) and Panic(uint256) are not SecCL custom errors.
        bytes.fromhex("08c379a0") + encode(["string"], ["boom"]),
        bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]),
    ],
    ids=["empty", "short", "unknown-selector", "error-string", "panic"],
)
def test_unknown_revert_data_gives_an_unknown_revert_showing_the_data(data: bytes) -> None:
    exc = decode_revert(data, TX_HASH)

    assert type(exc) is UnknownRevert
    assert exc.fields == {"data": "0x" + data.hex()}
    assert "0x" + data.hex() in str(exc) and exc.tx_hash == TX_HASH


def _unknown_author_data(author: str = ADDRESS) -> bytes:
    return _selector("BulletinUnknownAuthor", ["address"]) + encode(["address"], [author])


def test_revert_data_reads_the_bytes_literal_of_an_eth_tester_exception() -> None:
    data = _unknown_author_data()
    exc = Exception(f"execution reverted: {data!r}")

    assert revert_data(exc) == data


def test_revert_data_reads_a_hex_string_after_execution_reverted() -> None:
    data = _unknown_author_data()

    assert revert_data(Exception("execution reverted: 0x" + data.hex())) == data


def test_revert_data_reads_a_hex_data_attribute() -> None:
    class RpcError(Exception):
        def __init__(self, data: str):
            super().__init__("execution reverted")
            self.data = data

    data = _unknown_author_data()

    assert revert_data(RpcError("0x" + data.hex())) == data


def test_revert_data_reads_a_hex_data_attribute_of_any_object() -> None:
    class Carrier:
        def __init__(self, data: str):
            self.data = data
            self.args = ()

    data = _unknown_author_data()

    assert revert_data(Carrier("0x" + data.hex())) == data  # type: ignore[arg-type]


def test_revert_data_reads_a_bytes_data_attribute() -> None:
    exc = Exception("reverted")
    exc.data = _unknown_author_data()  # type: ignore[attr-defined]

    assert revert_data(exc) == _unknown_author_data()


@pytest.mark.parametrize(
    "exc",
    [
        Exception(),
        Exception("out of gas"),
        Exception("execution reverted: not a literal ("),
        Exception("execution reverted: 'a str, not bytes'"),
        Exception("execution reverted: 12"),
    ],
    ids=["no-args", "other-message", "malformed", "str-literal", "int-literal"],
)
def test_revert_data_is_none_when_the_exception_carries_no_revert_data(exc: Exception) -> None:
    assert revert_data(exc) is None


def test_a_real_eth_tester_revert_round_trips_to_the_typed_error() -> None:
    session = deploy(EmbeddedChain(), n=2, m=1, tag="errors")
    author = session.accounts[0]
    update = digest("an update for a round not open")
    signature = session.sign(author, 2, MessageKind.UPDATE, update)

    with pytest.raises(Exception) as raised:  # the raw eth-tester exception, untyped
        session.board.contract.functions.postUpdate(2, author.address, update, signature).call()
    data = revert_data(raised.value)

    assert data is not None and data[:4] == _selector("BulletinRoundNotOpen", ["uint64", "uint64"])
    exc = decode_revert(data)
    assert isinstance(exc, errors.BulletinRoundNotOpen)
    assert exc.fields == {"round": 2, "currentRound": 1}


def test_the_typed_error_is_raised_by_the_client_with_the_failed_transactions_hash() -> None:
    session = deploy(EmbeddedChain(), n=2, m=1, tag="errors")

    with pytest.raises(errors.BulletinRoundNotOpen) as caught:
        session.post_update(2, 0)

    assert caught.value.tx_hash is not None and caught.value.tx_hash.startswith("0x")
    failed = session.w3.eth.get_transaction_receipt(caught.value.tx_hash)  # type: ignore[arg-type]
    assert failed["status"] == 0


CONTRACT_TESTS = (
    "test_bulletin_board.py",
    "test_consensus.py",
    "test_gram_gate_consensus.py",
    "test_reveal.py",
)


@pytest.mark.parametrize(("contract", "name", "names", "types"), ERRORS, ids=ERROR_IDS)
def test_every_custom_error_is_triggered_by_a_contract_test(
    contract: str, name: str, names: list[str], types: list[str]
) -> None:
    """Each revert path is exercised, on both backends, in the contract tests, as its typed error."""
    text = "\n".join((Path(__file__).parent / test).read_text() for test in CONTRACT_TESTS)

    assert re.search(rf"pytest\.raises\(errors\.{name}\b", text), f"no contract test expects {name}"
