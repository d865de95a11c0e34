"""The deployed server's wait for a reply: slow is not dead, dead is still dropped, blame is fair."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flwr.app import Message

from seccl.chain.bulletin_board import Phases, RoundInfo
from seccl.deploy.flower_transport import FlowerTransport
from seccl.deploy.patience import FOLLOW, ChainWindow, chain_window, reply_wait
from seccl.protocol.instructions import (
    BallotReceipt,
    EvaluateRequest,
    FinalModelRequest,
    RevealRequest,
    TrainRequest,
)
from tests.deploy.test_fuzz_wire import ALICE, BOB, CAROL, DELIVERY, MODEL, SESSION, InMemoryLink, honest

# ─────────────── the rule ───────────────


def test_without_answers_or_a_chain_phase_it_waits_the_phase_timeout() -> None:
    wait = reply_wait([], 40.0)
    assert (wait.seconds, wait.why, wait.cut_short) == (40.0, "the phase-timeout", False)


def test_it_follows_the_slowest_answer_so_far_but_never_below_the_phase_timeout() -> None:
    assert reply_wait([5.0, 10.0], 40.0).seconds == 40.0  # 3 × 10 is below the floor
    wait = reply_wait([5.0, 20.0, 15.0], 40.0, kind="TrainRequest")
    assert wait.seconds == FOLLOW * 20.0
    assert wait.why == "3× the slowest TrainRequest answered so far (20.0 s)"


def test_a_participant_slow_on_purpose_cannot_raise_the_wait_without_bound() -> None:
    wait = reply_wait([1000.0], 40.0)
    assert wait.seconds == FOLLOW * 40.0
    assert wait.why.endswith("at most 3× the phase-timeout")


def test_while_the_chain_takes_the_message_it_waits_though_the_phase_timeout_has_passed() -> None:
    window = ChainWindow("commitment", 150.0, 75.0)
    wait = reply_wait([10.0], 40.0, window)
    assert (wait.seconds, wait.cut_short) == (75.0, False)
    assert wait.why.startswith("while the chain takes its commitment, less the last 75 s before its deadline")
    reveal = reply_wait([], 40.0, ChainWindow("reveal", 90.0, 0.0))
    assert (reveal.seconds, reveal.why) == (
        90.0,
        "while the chain takes its reveal: until the reveal deadline",
    )


def test_the_measured_timeout_wins_when_it_is_the_later_and_the_deadline_allows_it() -> None:
    # The server came late to the phase: half of it is gone, yet the participant gets its time.
    wait = reply_wait([20.0], 40.0, ChainWindow("ballot", 70.0, 30.0))
    assert (wait.seconds, wait.cut_short) == (60.0, False)
    assert wait.why.startswith("3× the slowest")


def test_it_never_waits_past_the_chain_deadline_and_then_blames_nobody() -> None:
    wait = reply_wait([20.0], 40.0, ChainWindow("commitment", 25.0, 75.0))
    assert (wait.seconds, wait.cut_short) == (25.0, True)
    assert wait.why.startswith("until the commitment deadline, after which the chain takes none")
    assert wait.why.endswith("not counted as down")
    passed = reply_wait([], 40.0, ChainWindow("commitment", -3.0, 75.0))
    assert (passed.seconds, passed.cut_short) == (0.0, True)


# ─────────────── which phase a reply serves ───────────────

PHASES = Phases(update=150, ballot=60, model=120, reveal=90)
NOW = 1_000
INFO = RoundInfo(
    opened_at=NOW - 10,
    update_deadline=NOW + 140,
    reveal_deadline=NOW + 230,
    ballot_deadline=NOW + 290,
    model_deadline=NOW + 410,
    updates=0,
    model_posted=False,
    update_bitmap=0,
)


def test_each_request_waits_on_the_phase_whose_message_its_reply_is() -> None:
    assert chain_window(TrainRequest(3, MODEL, DELIVERY), INFO, NOW, PHASES) == ChainWindow(
        "commitment", 140, 75.0
    )
    assert chain_window(RevealRequest(3), INFO, NOW, PHASES) == ChainWindow("reveal", 230, 0.0)
    assert chain_window(EvaluateRequest(3, None), INFO, NOW, PHASES) == ChainWindow("ballot", 290, 30.0)
    assert chain_window(BallotReceipt(3, None), INFO, NOW, PHASES) is None
    assert chain_window(FinalModelRequest(3, MODEL, DELIVERY), INFO, NOW, PHASES) is None
    unopened = RoundInfo(0, 0, 0, 0, 0, 0, False, 0)
    assert chain_window(TrainRequest(3, MODEL, DELIVERY), unopened, NOW, PHASES) is None


# ─────────────── the transport follows it ───────────────


def chain_at(update_in: int, reveal_in: int = 400, ballot_in: int = 400):
    """A chain whose round closes its commitments ``update_in`` seconds from now, and so on (the
    session's phases are 60 s: the server keeps the last 30 s of commitments and of ballots)."""
    info = RoundInfo(NOW - 1, NOW + update_in, NOW + reveal_in, NOW + ballot_in, NOW + 500, 0, False, 0)
    return lambda _round: (info, NOW)


@pytest.fixture
def link() -> Iterator[InMemoryLink]:
    with InMemoryLink(3).running() as running:
        yield running


def transport_with(link: InMemoryLink, carol, update_in: int, timeout: float, schedule=None):
    """A transport that greeted ``link``'s nodes, ALICE and BOB honest, CAROL's requests answered
    by ``carol`` (her hello is honest), the commitments closing ``update_in`` seconds from now
    (or the chain read by ``schedule``)."""
    accounts = dict(zip(link.node_ids, (ALICE, BOB, CAROL), strict=True))
    good = honest(accounts)

    def answer(node: int, message: Message) -> Message | None:
        if node == link.node_ids[2] and message.metadata.message_type != "query.hello":
            return carol(node, message, good)
        return good(node, message)

    link.answer = answer
    lines: list[str] = []
    transport = FlowerTransport(
        link.grid, SESSION, timeout=timeout, schedule=schedule or chain_at(update_in), log=lines.append
    )
    transport.discover()
    assert sorted(transport.nodes) == [0, 1, 2]
    return transport, lines


def slow(node: int, message: Message, good) -> Message:
    time.sleep(0.5)  # still training when the phase-timeout is over
    return good(node, message)


def dead(node: int, message: Message, good) -> None:
    return None


TRAIN = {i: TrainRequest(3, MODEL, DELIVERY) for i in range(3)}


def test_a_slow_participant_is_waited_for_while_the_chain_takes_its_commitment(link) -> None:
    transport, _ = transport_with(link, slow, update_in=90, timeout=0.1)

    replies = transport.send_and_receive(TRAIN)

    assert sorted(replies) == [0, 1, 2]
    assert transport.dropouts == []
    assert len(transport.durations["TrainRequest"]) == 3  # the next timeout follows them


def test_a_dead_participant_is_still_dropped_and_not_waited_for_again_in_the_round(link) -> None:
    transport, _ = transport_with(link, dead, update_in=31, timeout=0.1)  # 1 s before the server's 30

    assert sorted(transport.send_and_receive(TRAIN)) == [0, 1]
    assert sorted(transport.send_and_receive({i: RevealRequest(3) for i in range(3)})) == [0, 1]

    first, second = transport.dropouts
    assert (first.index, first.phase) == (2, "TrainRequest")
    assert first.reason == (
        "no answer within 1 s: waited while the chain takes its commitment, less the last 30 s "
        "before its deadline, kept for the server's relays and the participant's own post"
    )
    assert (second.index, second.phase) == (2, "RevealRequest")
    assert second.reason == "silent earlier in this round: not waited for again"


def test_one_whose_wait_the_deadline_cut_short_is_not_counted_as_down(link) -> None:
    transport, _ = transport_with(link, dead, update_in=1, timeout=2.0)  # the server came late

    transport.send_and_receive(TRAIN)
    transport.send_and_receive({i: BallotReceipt(3, None) for i in range(3)})

    first, second = transport.dropouts
    assert first.reason == (
        "no answer within 1 s: waited until the commitment deadline, after which the chain takes "
        "none; the phase-timeout would have been 2 s: not counted as down"
    )
    # Asked again in the round's next phase, and waited for: the server's lateness was not its fault.
    assert (second.phase, second.reason) == (
        "BallotReceipt",
        "no answer within 2 s: waited the phase-timeout",
    )


def test_without_the_chains_schedule_it_waits_the_phase_timeout(link) -> None:
    def unreachable(_round: int):
        raise ConnectionError("the chain's node is down")

    transport, lines = transport_with(link, dead, update_in=0, timeout=1.0, schedule=unreachable)

    assert sorted(transport.send_and_receive(TRAIN)) == [0, 1]
    [dropout] = transport.dropouts
    assert dropout.reason == "no answer within 1 s: waited the phase-timeout"
    assert "round 3: the chain's schedule is unreadable: the chain's node is down" in lines
