"""A participant on its own machine: its node config is checked before anything runs, it says
hello only for its own session and node, and, rebuilt from disk for every message (the hardest
case: as if its long-lived process restarted between any two messages), it computes exactly what
the simulation's participant computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seccl.chain.session import SessionMismatchError
from seccl.deploy.node import (
    EVIDENCE,
    JOURNAL,
    STATE,
    NodeConfig,
    NodeConfigError,
    ParticipantNode,
    hello_signer,
)
from seccl.deploy.server_run import DeployedServer, ServerConfig
from seccl.deploy.session_file import SessionFile, SessionFileError
from seccl.deploy.wire import decode_reply, decode_request, encode_reply, encode_request
from seccl.protocol.archive import RunArchive
from seccl.protocol.instructions import Reply, Request
from tests.deploy.conftest import ROUNDS, N, saved_model, simulated_model

GOOD = {
    "key-file": "/keys/key.json",
    "data": "/data/part.npz",
    "chain-url": "http://127.0.0.1:8545",
    "session": "/shared/session.json",
    "state-dir": "/var/seccl",
}


def test_a_node_config_round_trips_through_its_command_line_form() -> None:
    config = NodeConfig.from_node_config({**GOOD, "passphrase-file": "/keys/passphrase"})
    assert config.key_file == Path("/keys/key.json")
    assert config.passphrase_file == Path("/keys/passphrase")
    assert 'state-dir="/var/seccl"' in config.to_node_config()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({k: v for k, v in GOOD.items() if k != "key-file"}, "lacks key-file"),
        ({**GOOD, "data": "  "}, "lacks data"),
        ({}, "lacks key-file, data, chain-url, session, state-dir"),
        ({**GOOD, "chain-url": "ws://127.0.0.1:8545"}, "an http"),
    ],
)
def test_a_node_config_that_lacks_what_a_participant_needs_is_refused(raw, says: str) -> None:
    with pytest.raises(NodeConfigError, match=says):
        NodeConfig.from_node_config(raw)


def test_without_a_passphrase_the_key_is_not_guessed(monkeypatch) -> None:
    monkeypatch.delenv("SECCL_KEYS_PASSPHRASE", raising=False)
    with pytest.raises(NodeConfigError, match="no passphrase"):
        NodeConfig.from_node_config(GOOD).passphrase()


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"format": "other/1"}, "not a SecCL session file"),
        ([1, 2], "not a SecCL session file"),
        ({"format": "seccl-session/1", "model": "resnet"}, "this SecCL trains 'lenet'"),
        ({"format": "seccl-session/1", "model": "lenet", "seed": 0}, "malformed session file: KeyError"),
    ],
)
def test_a_bad_session_file_is_refused(tmp_path: Path, document, says: str) -> None:
    path = tmp_path / "session.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SessionFileError, match=says):
        SessionFile.read(path)


def test_a_missing_or_garbled_session_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="No such file"):
        SessionFile.read(tmp_path / "absent.json")
    (tmp_path / "garbled.json").write_text("{")
    with pytest.raises(SessionFileError, match="not JSON"):
        SessionFile.read(tmp_path / "garbled.json")


def test_a_participant_refuses_a_session_that_is_not_on_the_chain(consortium) -> None:
    """A session file whose contracts are not the ones deployed: the participant does not start."""
    session_file = consortium.root / "session.json"
    raw = json.loads(session_file.read_text())
    raw["session"]["candidates"] = 2  # the deployed consortium elects M = 1
    forged = consortium.root / "forged.json"
    forged.write_text(json.dumps(raw))
    config = consortium.node_config(0)
    with pytest.raises(SessionMismatchError):
        ParticipantNode(NodeConfig(**{**config.__dict__, "session_file": forged}))


def test_a_key_outside_the_roster_is_refused(consortium) -> None:
    config = consortium.node_config(0)
    stranger = NodeConfig(
        **{
            **config.__dict__,
            "key_file": consortium.server_dir / "key.json",
            "passphrase_file": consortium.server_dir / "passphrase",
        }
    )
    with pytest.raises(NodeConfigError, match="not in the session's roster"):
        ParticipantNode(stranger)


def test_hello_binds_the_participant_to_this_session_and_this_node(consortium) -> None:
    node = ParticipantNode(consortium.node_config(0))
    nonce = node.agreed.session.nonce
    signature = node.hello(42)
    assert hello_signer(nonce, 42, signature) == node.address
    assert hello_signer(nonce, 43, signature) != node.address  # replayed for another node
    assert hello_signer(b"\x00" * 32, 42, signature) != node.address  # or another session
    assert hello_signer(nonce, 42, b"\x01" * 10) is None


class FreshProcessTransport:
    """What Flower does to a participant, minus the network: every message goes through the
    wire format to a participant rebuilt from its files (as if its process restarted each time)."""

    def __init__(self, configs: list[NodeConfig], lose: set[tuple[str, int, int]] | None = None):
        self.configs = configs
        self.lose = set(lose or ())  # (request type, round, participant): its first reply is lost
        self.nodes = dict(enumerate(range(len(configs))))
        self.dropouts: list = []
        self.handled = 0

    def discover(self, wait_for: int = 0, within: float = 0.0) -> None:
        pass

    def send_and_receive(self, requests: dict[int, Request]) -> dict[int, Reply]:
        replies = {}
        for i, request in sorted(requests.items()):
            node = ParticipantNode(self.configs[i])
            reply = node.handle(decode_request(encode_request(request)))
            self.handled += 1
            key = (type(request).__name__, request.round, i)
            if key in self.lose:
                self.lose.discard(key)  # lost once; asked again, the answer arrives
            else:
                replies[i] = decode_reply(encode_reply(reply))
        return replies


def test_participants_rebuilt_from_disk_for_every_message_compute_the_simulations_model(consortium) -> None:
    root = consortium.root
    transport = FreshProcessTransport([consortium.node_config(i) for i in range(N)])
    config = ServerConfig(
        session_file=root / "session.json",
        key_file=consortium.server_dir / "key.json",
        passphrase_file=consortium.server_dir / "passphrase",
        chain_url=consortium.anvil.url,
        out_dir=consortium.server_dir / "records",
    )
    rounds = DeployedServer(config, transport=transport, log=lambda _line: None).run()

    expected, candidates = simulated_model(root)
    deployed = saved_model(consortium.server_dir / "records" / "models" / "final.pt")
    assert np.array_equal(deployed, expected)
    assert [tuple(r["candidates"]) for r in rounds] == candidates
    # train, reveal, evaluate and ballot receipt every round; then the final model
    assert transport.handled == N * (4 * ROUNDS + 1)
    for i in range(N):
        state = root / f"participant-{i:04d}" / "state"
        assert json.loads((state / EVIDENCE).read_text()) == []
        assert (state / STATE).stat().st_mode & 0o077 == 0  # private
        with RunArchive(state / JOURNAL) as journal:
            assert len(journal) == 2 * ROUNDS  # its own update and ballot of every round
    record = json.loads((consortium.server_dir / "records" / "run.json").read_text())
    assert record["complete"] and record["dropouts"] == []
