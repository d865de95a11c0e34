"""Property: no bytes, hello, reply or file another party hands a deployment makes it fail untyped."""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common.constant import HEARTBEAT_INTERVAL_INF, NOOP_ACCOUNT_NAME, NOOP_FLWR_AID, SUPERLINK_NODE_ID
from flwr.server.superlink.linkstate import LinkStateFactory
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME, NOOP_FEDERATION_ID
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.federation import NoOpFederationManager
from flwr.superlink.grid import InMemoryGrid
from hypothesis import given
from hypothesis import strategies as st

from seccl.chain.accounts import KeystoreError, load_keystore, new_account
from seccl.chain.bulletin_board import MessageKind, Phases
from seccl.deploy import wire
from seccl.deploy.client_app import PAYLOAD
from seccl.deploy.flower_transport import FlowerTransport
from seccl.deploy.node import NodeConfig, NodeConfigError, hello_text
from seccl.deploy.session_file import SessionFile, SessionFileError
from seccl.learning.sparse import SparseUpdate
from seccl.protocol.envelope import Commitment, sign_message
from seccl.protocol.errors import MalformedMessageError, ProtocolError
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    Reply,
    RevealRequest,
    TrainRequest,
)
from seccl.protocol.messages import EvaluationMessage, ModelMessage, UpdateMessage
from seccl.protocol.statements import Delivery, Receipt
from seccl.roles.settings import LearningSettings, SessionInfo
from tests.protocol.test_fuzz_decoders import (
    FUZZ,
    deep_documents,
    huge_integers,
    json_values,
    mutated,
    tampered,
)

SERVER, ALICE, BOB, CAROL = (new_account() for _ in range(4))
SESSION = SessionInfo(
    chain_id=31337,
    board="0x" + "ab" * 20,
    consensus="0x" + "ef" * 20,
    server=SERVER.address,
    participants=(ALICE.address, BOB.address, CAROL.address),
    dimension=8,
    candidates=1,
    nonce=b"\x05" * 32,
    phases=Phases(60, 60, 60, 60),
    update_size=2,
    max_abs_value=10.0,
    initial_model=b"\x07" * 32,
)
DOMAIN = SESSION.domain

MODEL = sign_message(ModelMessage(2, SERVER.address, np.arange(8, dtype=np.float32)), SERVER, DOMAIN)
UPDATE = sign_message(UpdateMessage(3, ALICE.address, SparseUpdate(8, [1, 5], [0.25, -1.5])), ALICE, DOMAIN)
BALLOT = sign_message(EvaluationMessage(3, BOB.address, (0, 1_000_000, 5)), BOB, DOMAIN)
DELIVERY = Delivery.sign(
    SERVER, DOMAIN, 3, MessageKind.UPDATE, CAROL.address, [ALICE.address], [UPDATE.digest()]
)
RECEIPT = Receipt.sign(SERVER, DOMAIN, 3, MessageKind.UPDATE, CAROL.address, b"\x01" * 32, "0x" + "ab" * 32)
REQUESTS = [
    TrainRequest(3, MODEL, DELIVERY),
    RevealRequest(3),
    EvaluateRequest(3, RECEIPT),
    EvaluateRequest(3, None),
    BallotReceipt(3, RECEIPT),
    BallotReceipt(3, None),
    FinalModelRequest(3, MODEL, DELIVERY),
]
REPLIES = [Reply(commitment=Commitment.of(UPDATE)), Reply(BALLOT), Reply()]
VALID = [wire.encode_request(r) for r in REQUESTS] + [wire.encode_reply(r) for r in REPLIES]


def decodes_or_refuses(data: bytes) -> None:
    """Both decoders answer ``data`` with a value or a ProtocolError, and what decodes is sound."""
    for decode in (wire.decode_request, wire.decode_reply):
        try:
            decoded = decode(data)
        except ProtocolError:
            continue
        for statement in (getattr(decoded, "delivery", None), getattr(decoded, "receipt", None)):
            if statement is not None:
                signer = statement.signer(DOMAIN)
                assert signer is None or isinstance(signer, str)


# ─────────────── the wire ───────────────


@FUZZ
@given(data=st.binary(max_size=300))
def test_the_wire_answers_random_bytes_with_a_typed_error(data: bytes) -> None:
    decodes_or_refuses(data)


@FUZZ
@given(data=deep_documents() | huge_integers())
def test_the_wire_refuses_deep_nesting_and_huge_integers_before_they_reach_the_parser(data: bytes) -> None:
    decodes_or_refuses(data)


@FUZZ
@given(document=json_values | st.sampled_from(VALID).map(json.loads).flatmap(tampered))
def test_the_wire_answers_any_json_document_with_a_value_or_a_typed_error(document: Any) -> None:
    decodes_or_refuses(json.dumps(document).encode())


@FUZZ
@given(data=st.sampled_from(VALID).flatmap(mutated))
def test_the_wire_answers_a_mutated_valid_encoding_with_a_value_or_a_typed_error(data: bytes) -> None:
    decodes_or_refuses(data)


@pytest.mark.parametrize("valid", VALID, ids=range(len(VALID)))
def test_honest_traffic_is_unchanged_on_the_wire(valid: bytes) -> None:
    """The hardened decoders give back the very document (bytes for bytes) they were handed."""
    decoded: Any
    try:
        decoded = wire.decode_request(valid)
        assert wire.encode_request(decoded) == valid
    except MalformedMessageError:
        decoded = wire.decode_reply(valid)
        assert wire.encode_reply(decoded) == valid


# ─────────────── the Flower transport, on Flower's own in-memory SuperLink ───────────────

Answer = Callable[[int, Message], "Message | None"]


class InMemoryLink:
    """Flower's own SuperLink state (``InMemoryLinkState``) and ``InMemoryGrid``, as the ServerApp
    sees them, with registered nodes whose replies the test writes: each reply is a real Flower
    ``Message`` stored through ``LinkState.store_message_res``, as a SuperNode's would be."""

    def __init__(self, nodes: int):
        factory = LinkStateFactory(FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory())
        self.state = factory.state()
        run_id = self.state.create_run(
            None, None, None, {}, NOOP_FEDERATION_ID, None, NOOP_FLWR_AID, "serverapp"
        )
        self.run = self.state.get_run_info(run_ids=[run_id])[0]
        self.node_ids = []
        for _ in range(nodes):
            node = self.state.create_node(
                NOOP_FLWR_AID,
                NOOP_ACCOUNT_NAME,
                secrets.token_bytes(32),
                heartbeat_interval=HEARTBEAT_INTERVAL_INF,
            )
            self.state.acknowledge_node_heartbeat(node_id=node, heartbeat_interval=HEARTBEAT_INTERVAL_INF)
            self.node_ids.append(node)
        self.grid = InMemoryGrid(factory, pull_interval=0.002)
        self.grid.set_run(self.run)
        self.answer: Answer = lambda _node, _msg: None
        self._stop = threading.Event()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for node in self.node_ids:
                for message in self.state.get_message_ins(node_id=node, limit=None):
                    reply = self.answer(node, message)
                    if reply is not None:
                        reply.metadata.__dict__["_message_id"] = str(
                            uuid.uuid4()
                        )  # as Flower's Fleet API does
                        self.state.store_message_res(reply)
            self._stop.wait(0.002)

    @contextmanager
    def running(self) -> Iterator[InMemoryLink]:
        # A ServerApp process knows its run, node and task: Message() reads them from TaskIdentity.
        saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
        TaskIdentity.run_id, TaskIdentity.node_id = self.run.run_id, SUPERLINK_NODE_ID
        TaskIdentity.task_id = self.run.primary_task_id
        server = threading.Thread(target=self._serve, daemon=True)
        server.start()
        try:
            yield self
        finally:
            self._stop.set()
            server.join()
            TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def hello_from(account, node: int) -> bytes:
    return bytes(account.sign_message(encode_defunct(hello_text(SESSION.nonce, node))).signature)


def content(**values: Any) -> RecordDict:
    return RecordDict({PAYLOAD: ConfigRecord(values)})


def honest(participants: dict[int, Any]) -> Answer:
    """Replies of honest participants (``participants``: node → account): a signed hello, and a
    well-formed reply to each request."""

    def answer(node: int, message: Message) -> Message:
        account = participants[node]
        if message.metadata.message_type == "query.hello":
            return Message(content(data=hello_from(account, node), address=account.address), reply_to=message)
        return Message(content(data=wire.encode_reply(Reply(UPDATE))), reply_to=message)

    return answer


@pytest.fixture
def link() -> Iterator[InMemoryLink]:
    with InMemoryLink(3).running() as running:
        yield running


def greeted(link: InMemoryLink, hostile: Answer) -> tuple[FlowerTransport, list[str]]:
    """A transport that greeted ``link``'s nodes: ALICE and BOB honest, CAROL's node ``hostile``."""
    accounts = dict(zip(link.node_ids, (ALICE, BOB, CAROL), strict=True))
    carol = link.node_ids[2]
    good = honest(accounts)
    link.answer = lambda node, msg: hostile(node, msg) if node == carol else good(node, msg)
    lines: list[str] = []
    transport = FlowerTransport(link.grid, SESSION, timeout=5.0, log=lines.append)
    transport.discover()
    return transport, lines


REQUEST = {i: TrainRequest(3, MODEL, DELIVERY) for i in range(3)}


@pytest.mark.parametrize("data", ["not bytes", 1.5, -1, 10**12, True, [b"x"]], ids=repr)
def test_a_hello_whose_data_is_not_a_signature_leaves_its_participant_a_dropout(link, data) -> None:
    """Regression: ``bytes(data)`` made a string or a float a TypeError and -1 a ValueError in
    ``_greet`` (and 10**12 an attempt to allocate a terabyte)."""
    transport, lines = greeted(
        link, lambda node, msg: Message(content(data=data, address=CAROL.address), reply_to=msg)
    )

    assert sorted(transport.nodes) == [0, 1]  # the other two are reached, CAROL is not
    assert any("malformed hello" in line and "data: got" in line for line in lines)
    replies = transport.send_and_receive(REQUEST)
    assert sorted(replies) == [0, 1]
    assert [(d.index, d.phase, d.reason) for d in transport.dropouts] == [
        (2, "TrainRequest", "not connected (no SuperNode has said hello for it)")
    ]


@pytest.mark.parametrize(
    "data",
    [
        -1,
        "a string",
        2.5,
        10**12,
        [1, 2],
        b"[" * 50_000,
        b'{"type": "reply", "message": ' + b"9" * 5_000 + b"}",
    ],
    ids=["minus-one", "string", "float", "terabyte", "list", "50000-brackets", "5000-digits"],
)
def test_a_reply_that_is_not_a_reply_makes_its_participant_a_dropout_and_the_others_count(link, data) -> None:
    """Regression: a reply whose ``data`` is -1 raised ValueError out of ``send_and_receive``."""
    transport, _ = greeted(link, answering(honest({link.node_ids[2]: CAROL}), RecordDict(content(data=data))))
    assert sorted(transport.nodes) == [0, 1, 2]

    replies = transport.send_and_receive(REQUEST)

    assert sorted(replies) == [0, 1]
    [dropout] = transport.dropouts
    assert (dropout.round, dropout.phase, dropout.index, dropout.address) == (
        3,
        "TrainRequest",
        2,
        CAROL.address,
    )
    assert dropout.reason.startswith("its reply is malformed: ")


def test_honest_participants_answer_exactly_as_before(link) -> None:
    transport, _ = greeted(link, honest({link.node_ids[2]: CAROL}))

    replies = transport.send_and_receive(REQUEST)

    assert replies == {0: Reply(UPDATE), 1: Reply(UPDATE), 2: Reply(UPDATE)}
    assert transport.dropouts == []


config_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=80),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.lists(st.binary(max_size=8), max_size=3),
    st.sampled_from([b"", b"\x00" * 65, b"[" * 1_000, b'{"type": "reply", "message": null}']),
    st.sampled_from(VALID).flatmap(mutated),
)
"""Any value a ConfigRecord can carry (all a SuperNode can put in a reply), and near-valid bytes."""


@st.composite
def hostile_contents(draw: st.DrawFn) -> RecordDict | Error:
    shape = draw(
        st.sampled_from(["config", "config", "config", "metric", "array", "empty", "other-key", "error"])
    )
    if shape == "error":
        return Error(code=draw(st.integers(0, 10)), reason=draw(st.text(max_size=50)))
    if shape == "metric":
        return RecordDict({PAYLOAD: MetricRecord({"data": draw(st.integers(-5, 5))})})
    if shape == "array":
        return RecordDict({PAYLOAD: ArrayRecord([np.zeros(2, dtype=np.float32)])})
    if shape == "empty":
        return RecordDict({})
    fields = draw(
        st.dictionaries(st.sampled_from(["data", "address", "error", "other"]), config_values, max_size=3)
    )
    if shape == "other-key":
        return RecordDict({"not-" + PAYLOAD: ConfigRecord(fields)})
    return RecordDict({PAYLOAD: ConfigRecord(fields)})


def answering(hello: Answer | RecordDict | Error, reply: RecordDict | Error) -> Answer:
    """A node that answers a hello with ``hello`` and any request with ``reply``."""

    def answer(node: int, message: Message) -> Message | None:
        if message.metadata.message_type != "query.hello":
            return Message(reply, reply_to=message)
        return hello(node, message) if callable(hello) else Message(hello, reply_to=message)

    return answer


@pytest.fixture(scope="module")
def shared_link() -> Iterator[InMemoryLink]:
    """One SuperLink for all of a property's examples: each greets it with a fresh transport."""
    with InMemoryLink(3).running() as running:
        yield running


@FUZZ
@given(hello=hostile_contents(), reply=hostile_contents())
def test_no_hello_or_reply_content_escapes_the_transport_untyped(shared_link, hello, reply) -> None:
    """Whatever CAROL's node answers to the hello and to the request, the transport neither
    raises nor maps her without a valid signature, and she is either answered or a dropout."""
    transport, _ = greeted(shared_link, answering(hello, reply))
    assert sorted(transport.nodes) == [0, 1]  # nothing without her signature maps her

    transport.nodes[2] = shared_link.node_ids[2]  # asked anyway, as if she had said hello before
    replies = transport.send_and_receive(REQUEST)

    assert {0, 1} <= set(replies)
    dropped = {d.index for d in transport.dropouts}
    assert dropped | set(replies) == {0, 1, 2} and not dropped & set(replies)


# ─────────────── the files a deployment reads ───────────────

SETTINGS = LearningSettings(local_epochs=1)
SESSION_FILE = SessionFile(SESSION, 0, 2, SETTINGS, "http://127.0.0.1:8545", 1)


def read_session(data: bytes) -> None:
    """``data`` as a session file is refused with a SessionFileError, or is a sound session: what
    every party then derives from it (its signing domain, its decoding bounds) cannot fail."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "session.json"
        path.write_bytes(data)
        try:
            agreed = SessionFile.read(path)
        except SessionFileError:
            return
        assert agreed.session.domain.nonce == agreed.session.nonce
        assert agreed.session.max_message_bytes > 0 and agreed.session.bounds()
        assert SessionFile.read(agreed.write(path)) == agreed


def test_a_valid_session_file_reads_back_unchanged(tmp_path: Path) -> None:
    assert SessionFile.read(SESSION_FILE.write(tmp_path / "session.json")) == SESSION_FILE


@FUZZ
@given(
    data=st.binary(max_size=300)
    | deep_documents()
    | huge_integers()
    | st.just(json.dumps(SESSION_FILE.to_dict()).encode()).flatmap(mutated)
)
def test_a_session_file_of_any_bytes_is_read_or_refused_with_a_typed_error(data: bytes) -> None:
    read_session(data)


@FUZZ
@given(document=json_values | tampered(json.loads(json.dumps(SESSION_FILE.to_dict()))))
def test_a_session_file_of_any_document_is_read_or_refused_with_a_typed_error(document: Any) -> None:
    read_session(json.dumps(document).encode())


node_config_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["http://127.0.0.1:8545", "/a\x00b", "x" * 5_000, "  "]),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
NODE_KEYS = ["key-file", "data", "chain-url", "session", "state-dir", "passphrase-file", "other"]


@FUZZ
@given(raw=st.dictionaries(st.sampled_from(NODE_KEYS), node_config_values) | json_values)
def test_a_node_config_of_any_values_is_parsed_or_refused_with_a_typed_error(raw: Any) -> None:
    try:
        config = NodeConfig.from_node_config(raw)
    except NodeConfigError:
        return
    assert config.chain_url.startswith(("http://", "https://"))


# Cheap key derivation (one PBKDF2 iteration) so each example decrypts in microseconds.
KEYSTORE = Account.encrypt(ALICE.key, "pw", kdf="pbkdf2", iterations=1)


def test_the_cheap_keystore_opens(tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text(json.dumps(KEYSTORE))
    assert load_keystore(tmp_path / "key.json", "pw").address == ALICE.address
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        load_keystore(tmp_path / "key.json", "not the passphrase")


def open_keystore(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "key.json"
        path.write_bytes(data)
        with suppress(KeystoreError):
            load_keystore(path, "pw")


# Mutated numbers stay small or absurd: a keystore that asks for 5 million PBKDF2 rounds is
# valid (and slow), not malformed.
keystore_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 64),
    st.sampled_from([2**40, 2**64, 10**80, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["pbkdf2", "scrypt", "hmac-sha256", "hmac-md5", "aes-128-ctr", "0x", "zz"]),
    st.binary(max_size=40).map(bytes.hex),
    st.lists(st.integers(0, 3), max_size=2),
)


@st.composite
def tampered_keystores(draw: st.DrawFn) -> dict:
    document = json.loads(json.dumps(KEYSTORE))
    for _ in range(draw(st.integers(1, 3))):
        objects = [document, *(v for v in document.values() if isinstance(v, dict))]
        objects += [v for o in objects[1:] for v in o.values() if isinstance(v, dict)]
        where = draw(st.sampled_from(objects))
        key = draw(st.sampled_from([*where, "version", "kdf", "n", "r", "p", "Crypto"]))
        if draw(st.integers(0, 4)) == 0:
            where.pop(key, None)
        else:
            where[key] = draw(keystore_values)
    return document


@FUZZ
@given(
    data=st.binary(max_size=300)
    | deep_documents()
    | huge_integers()
    | st.just(json.dumps(KEYSTORE).encode()).flatmap(mutated)
    | tampered_keystores().map(lambda d: json.dumps(d).encode())
)
def test_a_keystore_of_any_bytes_opens_or_is_refused_with_a_typed_error(data: bytes) -> None:
    open_keystore(data)


# ─────────────── files: the refusals, by name ───────────────


def session_document(**changes: Any) -> dict:
    document = json.loads(json.dumps(SESSION_FILE.to_dict()))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        where = document
        for parent in parents:
            where = where[parent]
        where[last] = value
    return document


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"seed": "1e999"}, "seed: got inf"),  # a JSON number that is inf to Python: int() overflowed
        ({"seed": "0"}, "seed: got '0'"),
        ({"rounds": 0}, "rounds: got 0"),
        ({"first_block": -1}, "first_block: got -1"),
        ({"chain_url": 8545}, "chain_url: got 8545"),
        ({"session__nonce": "0x0102"}, "session.nonce: got 2 bytes"),
        ({"session__board": "0x12"}, "session.board: got '0x12'"),
        ({"session__participants": []}, "session.participants: got none"),
        ({"session__participants": "0xabc"}, "session.participants\\[0\\]: got '0'"),
        ({"session__dimension": 2**32}, "session.dimension"),
        ({"session__update_size": 9}, "session.update_size: got 9"),
        ({"session__max_abs_value": "1e999"}, "session.max_abs_value: got inf"),
        ({"session__phases__ballot": -5}, "session.phases.ballot: got -5"),
        ({"session__chain_id": True}, "session.chain_id: got True"),
        ({"settings__aggregation": "median"}, "settings.aggregation: got 'median'"),
        ({"settings__share_fraction": 1.5}, "settings.share_fraction: got 1.5"),
        ({"settings__batch_size": 0}, "settings.batch_size: got 0"),
        ({"settings__learning_rate": "fast"}, "settings.learning_rate: got 'fast'"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_a_session_file_field_out_of_its_range_is_refused_by_name(tmp_path: Path, changes, says: str) -> None:
    """These read before: each failed later, untyped, in whatever first used the field."""
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session_document(**changes)).replace('"1e999"', "1e999"))
    with pytest.raises(SessionFileError, match=says):
        SessionFile.read(path)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"[" * 200_000, "nested deeper than 8 levels"),
        (b'{"format": "seccl-session/1", "seed": ' + b"7" * 5_000 + b"}", "an integer of 5000 digits"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b" " * (16 * 1024 * 1024 + 1), "larger than 16777216 bytes"),
    ],
    ids=["deep", "huge-integer", "not-utf8", "oversized"],
)
def test_a_session_file_that_would_crash_the_parser_is_refused(
    tmp_path: Path, data: bytes, says: str
) -> None:
    (tmp_path / "session.json").write_bytes(data)
    with pytest.raises(SessionFileError, match=says):
        SessionFile.read(tmp_path / "session.json")


GOOD_NODE = {
    "key-file": "/keys/key.json",
    "data": "/data/part.npz",
    "chain-url": "http://127.0.0.1:8545",
    "session": "/shared/session.json",
    "state-dir": "/var/seccl",
}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (["key-file"], "not a mapping but list"),
        ({**GOOD_NODE, "key-file": "/keys/\x00.json"}, "key-file: .*without NUL"),
        ({**GOOD_NODE, "data": "x" * 5_000}, "data: .*at most 4096 characters"),
        ({**GOOD_NODE, "session": ["/a"]}, "session: got \\['/a'\\]"),
        ({**GOOD_NODE, "state-dir": 10**5000}, "state-dir: got an integer of 16610 bits"),
    ],
    ids=["not-a-mapping", "nul", "too-long", "a-list", "huge-int"],
)
def test_a_node_config_value_that_is_no_path_is_refused_by_name(raw, says: str) -> None:
    with pytest.raises(NodeConfigError, match=says):
        NodeConfig.from_node_config(raw)


def test_a_passphrase_file_that_is_not_a_passphrase_is_refused(tmp_path: Path) -> None:
    config = NodeConfig.from_node_config({**GOOD_NODE, "passphrase-file": str(tmp_path / "pass")})
    (tmp_path / "pass").write_bytes(b"\xff\xfe")
    with pytest.raises(NodeConfigError, match="not UTF-8"):
        config.passphrase()
    (tmp_path / "pass").write_bytes(b"x" * 5_000)
    with pytest.raises(NodeConfigError, match="longer than 4096 bytes"):
        config.passphrase()


def keystore_with(**kdfparams: Any) -> dict:
    document = json.loads(json.dumps(KEYSTORE))
    document["crypto"]["kdfparams"].update(kdfparams)
    return document


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (keystore_with(c=10**9), "kdfparams.c must be an integer from 1 to 10000000"),
        (keystore_with(dklen=10**9), "kdfparams.dklen"),
        (
            {
                **KEYSTORE,
                "crypto": {
                    **KEYSTORE["crypto"],
                    "kdf": "scrypt",
                    "kdfparams": {"dklen": 32, "n": 2**20, "r": 64, "p": 1},
                },
            },
            "scrypt n=1048576, r=64, p=1 costs more",
        ),
        ({**KEYSTORE, "crypto": {**KEYSTORE["crypto"], "kdf": "argon2"}}, "key derivation 'argon2'"),
        (
            {**KEYSTORE, "Crypto": {**KEYSTORE["crypto"], "kdfparams": {"c": 10**9, "dklen": 32}}},
            "kdfparams.c",
        ),
        ({"version": 3}, "no crypto section"),
        (keystore_with(prf="md5"), "malformed: AssertionError"),
        ({**KEYSTORE, "version": 5}, "malformed: EthKeyfileNotImplementedError"),
        ([KEYSTORE], "not a JSON object but list"),
    ],
    ids=[
        "pbkdf2-1e9",
        "dklen-1e9",
        "scrypt-128GiB",
        "argon2",
        "Crypto-after-crypto",
        "no-crypto",
        "prf",
        "v5",
        "list",
    ],
)
def test_a_keystore_too_costly_or_malformed_is_refused_before_any_key_derivation(
    tmp_path: Path, document: Any, says: str
) -> None:
    """A key derivation of 10^9 PBKDF2 rounds or 128 GiB of scrypt would tie up the reader for
    hours (or exhaust its memory); the second ``Crypto`` is the one eth-keyfile would read."""
    path = tmp_path / "key.json"
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match=says):
        load_keystore(path, "pw")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"[" * 60_000, "more than 32 objects"),
        (b'{"crypto": ' + b"1" * 5_000 + b"}", "an integer of 5000 digits"),
        (b" " * (64 * 1024 + 1), "larger than 65536 bytes"),
        (b"\xff", "not JSON"),
    ],
    ids=["deep", "huge-integer", "oversized", "not-utf8"],
)
def test_a_keystore_that_would_crash_the_parser_is_refused(tmp_path: Path, data: bytes, says: str) -> None:
    (tmp_path / "key.json").write_bytes(data)
    with pytest.raises(KeystoreError, match=says):
        load_keystore(tmp_path / "key.json", "pw")
