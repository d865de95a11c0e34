"""Bad inputs a new user hit (issue 24, item 6), each mounted through the real command line: exit 2
and one line `seccl: ...` that says what is wrong, never exit 3 ("this is a bug") nor a raw
`[Errno N]`, and nothing left behind that offers a resume; the warnings of `seccl compare`; the
private data files of `seccl data split`. And (item 7) records that agree: the summary's
transactions and gas are the rounds', and each total says what it counts."""

from __future__ import annotations

import json
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seccl.chain.anvil import AnvilNode
from seccl.cli.main import main
from seccl.runs.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["-n", "3", "-r", "1", "--per-participant", "100", "--local-epochs", "1", "--no-progress"]
# A path no one can create a directory under, root included (os.access says yes to root).
UNWRITABLE = Path("/proc/seccl-no-such-directory/out")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], *names: str) -> str:
    """Run ``argv``; assert exit 2 with exactly one line on stderr holding every one of ``names``."""
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit {code} for {argv}: {err}"
    assert "Traceback" not in err + captured.out and "[Errno" not in err, err
    assert "this is a bug" not in err, err
    assert err.startswith("seccl: ") and err.count("\n") == 1, err
    assert all(name in err for name in names), f"{names} not in {err!r}"
    return err


# ─────────────── a chain, keys, a roster, a session ───────────────


@pytest.fixture(scope="module")
def chain() -> Iterator[str]:
    with AnvilNode(None) as node:
        yield node.url


@pytest.fixture(scope="module")
def old_chain() -> Iterator[str]:
    """A node whose EVM predates Cancun, of another chain (chain id 1337): as a ganache is."""
    with AnvilNode(None, hardfork="shanghai", chain_id=1337) as node:
        yield node.url


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A server key and three participants' keys (one passphrase file), and their roster."""
    home = tmp_path_factory.mktemp("parties")
    addresses = []
    for name in ("server", "p0", "p1", "p2"):
        assert main(["keys", "new", str(home / f"{name}.json")]) == 0
        addresses.append("0x" + json.loads((home / f"{name}.json").read_text())["address"])
    (home / "roster").write_text("\n".join(addresses[1:]) + "\n")
    return {"home": home, "server": home / "server.json", "roster": home / "roster"}


def create(chain: str, parties: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "session",
        "create",
        "--chain",
        chain,
        "--server-key",
        str(parties["server"]),
        "--roster",
        str(parties["roster"]),
        "--out",
        str(out),
        "-r",
        "1",
        *extra,
    ]


@pytest.fixture(scope="module")
def session_file(chain: str, parties: dict[str, Path]) -> Path:
    out = parties["home"] / "session.json"
    assert main(create(chain, parties, out, "--fund")) == 0
    return out


# ─────────────── seccl session create ───────────────


@pytest.mark.anvil
def test_session_create_refuses_a_wrong_passphrase_and_a_corrupt_keystore(
    chain: str, parties: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    argv = create(chain, parties, tmp_path / "s.json", "--fund", "--passphrase-file", str(wrong))
    refused(capsys, argv, "session create: keystore", "wrong passphrase")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"crypto": 1}')
    argv = create(chain, parties, tmp_path / "s.json", "--fund")
    argv[argv.index(str(parties["server"]))] = str(corrupt)
    refused(capsys, [*argv, "--passphrase-file", str(parties["home"] / "passphrase")], "keystore", "crypto")
    argv[argv.index(str(corrupt))] = str(tmp_path / "missing.json")
    refused(capsys, argv, "--server-key", "missing.json", "no such file")
    assert not (tmp_path / "s.json").exists()


@pytest.mark.anvil
def test_session_create_refuses_a_roster_naming_a_participant_twice(
    chain: str, parties: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = parties["roster"].read_text().splitlines()
    twice = tmp_path / "roster"
    twice.write_text("\n".join([*lines, lines[0].lower()]) + "\n")  # the same address, spelt otherwise
    argv = create(chain, parties, tmp_path / "s.json", "--fund")
    argv[argv.index(str(parties["roster"]))] = str(twice)
    refused(capsys, argv, "--roster", "twice", "each participant once")
    argv[argv.index(str(twice))] = str(tmp_path / "none")
    refused(capsys, argv, "--roster", "cannot read it", "No such file or directory")


@pytest.mark.anvil
def test_session_create_refuses_an_unfunded_key_before_any_transaction(
    chain: str, parties: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "new", str(tmp_path / "poor.json")]) == 0
    argv = create(chain, parties, tmp_path / "s.json")  # no --fund: the key has no ether
    argv[argv.index(str(parties["server"]))] = str(tmp_path / "poor.json")
    refused(capsys, argv, "--server-key", "holds no ether", "--fund")
    assert not (tmp_path / "s.json").exists()


@pytest.mark.anvil
def test_session_create_refuses_an_evm_older_than_cancun_before_deploying(
    old_chain: str, parties: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = create(old_chain, parties, tmp_path / "s.json", "--fund")
    refused(capsys, argv, "session create:", old_chain, "Cancun", "MCOPY")
    assert not (tmp_path / "s.json").exists()


@pytest.mark.anvil
def test_a_run_on_an_evm_older_than_cancun_is_refused_before_any_work(
    old_chain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["run", *SMALL, "--chain", old_chain, "--chain-id", "1337", "--out", str(out)]
    refused(capsys, argv, "chain (--chain)", "Cancun or later")
    assert not out.exists()


@pytest.mark.anvil
def test_session_create_refuses_an_unwritable_out_before_deploying(
    chain: str, parties: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    refused(capsys, create(chain, parties, UNWRITABLE / "s.json", "--fund"), "--out", str(UNWRITABLE))


# ─────────────── passphrases ───────────────


def test_an_empty_passphrase_file_is_refused_and_no_key_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    key = tmp_path / "keys" / "key.json"
    refused(capsys, ["keys", "new", str(key), "--passphrase-file", str(empty)], "keys new", "empty")
    assert not key.exists()


@pytest.mark.anvil
def test_session_create_refuses_an_empty_passphrase_file(
    chain: str, parties: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    argv = create(chain, parties, tmp_path / "s.json", "--fund", "--passphrase-file", str(empty))
    refused(capsys, argv, "--passphrase-file", "empty")


@pytest.mark.anvil
def test_node_watch_refuses_an_empty_passphrase_file(
    session_file: Path, chain: str, parties: dict[str, Path], tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"  \n")
    argv = watch_argv(chain, session_file, parties["home"] / "p0.json", tmp_path)
    refused(capsys, [*argv, "--passphrase-file", str(empty)], "node watch", "passphrase-file", "empty")


# ─────────────── seccl node watch, seccl node verify ───────────────


def watch_argv(chain_url: str, session: Path, key: Path, tmp_path: Path) -> list[str]:
    return [
        "node",
        "watch",
        "--key-file",
        str(key),
        "--data",
        str(tmp_path / "data.npz"),
        "--chain-url",
        chain_url,
        "--session",
        str(session),
        "--state-dir",
        str(tmp_path / "state"),
        "--interval",
        "0.2",
    ]


def test_node_watch_gives_up_on_a_chain_url_that_never_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = watch_argv("http://127.0.0.1:1", tmp_path / "session.json", tmp_path / "key.json", tmp_path)
    started = time.monotonic()
    refused(
        capsys, [*argv, "--chain-wait", "1"], "chain-url http://127.0.0.1:1", "within 1 s", "--chain-wait"
    )
    assert time.monotonic() - started < 15
    refused(capsys, [*argv, "--chain-wait", "-1"], "--chain-wait", "0 or more")


@pytest.mark.anvil
def test_node_watch_on_another_chain_says_the_chain_id_differs(
    session_file: Path, old_chain: str, parties: dict[str, Path], tmp_path: Path, capsys
) -> None:
    argv = watch_argv(old_chain, session_file, parties["home"] / "p0.json", tmp_path)
    err = refused(capsys, argv, "node watch", "chain id 1337, expected 31337", old_chain)
    assert "code" not in err  # not blamed on the contracts


@pytest.mark.anvil
def test_node_verify_of_a_fabricated_finding_names_the_missing_field(
    session_file: Path, chain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fabricated = tmp_path / "evidence.json"
    fabricated.write_text(json.dumps([{"round": 1, "kind": "model-not-posted", "subject": "0x" + "11" * 20}]))
    argv = ["node", "verify", str(fabricated), "--session", str(session_file), "--chain", chain]
    refused(capsys, argv, "node verify", "finding 0 lacks the field 'finder'")


def test_verify_evidence_of_a_garbage_file_says_it_is_not_an_evidence_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "evidence.json"
    garbage.write_bytes(b"\x89PNG not evidence at all")
    err = refused(capsys, ["verify-evidence", str(garbage)], str(garbage), "not a SecCL evidence file")
    assert "chain.json" not in err
    garbage.write_text('{"runs": []}')
    refused(capsys, ["verify-evidence", str(garbage)], "not a SecCL evidence file", '"evidence"')
    missing_finder = {"evidence": [{"round": 1, "kind": "model-not-posted", "subject": "0x" + "11" * 20}]}
    garbage.write_text(json.dumps(missing_finder))
    refused(capsys, ["verify-evidence", str(garbage)], "finding 0 lacks the field 'finder'")


# ─────────────── output paths, data ───────────────


@linux_only
def test_an_unwritable_out_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(
        capsys, ["run", *SMALL, "--chain", "embedded", "--out", str(UNWRITABLE)], "--out", str(UNWRITABLE)
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(_metrics(3)))
    refused(capsys, ["compare", str(run), "--out", str(UNWRITABLE)], "--out", str(UNWRITABLE))
    refused(capsys, ["data", "split", "-n", "3", "--out", str(UNWRITABLE)], "--out", str(UNWRITABLE))
    assert not UNWRITABLE.parent.exists()


@linux_only
def test_file_errors_name_the_file_not_errno(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(capsys, ["keys", "new", str(UNWRITABLE / "key.json")], "keys new", str(UNWRITABLE))
    refused(capsys, ["deploy", "app", str(UNWRITABLE)], "deploy app", str(UNWRITABLE.parent))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory\n")
    refused(capsys, ["keys", "new", str(blocker / "key.json")], str(blocker), "is a file")


def test_data_split_refuses_a_negative_or_too_large_size_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    split = ["data", "split", "-n", "3", "--out", str(out)]
    refused(capsys, [*split, "--per-participant", "-5"], "--per-participant", "got -5", "2 or more")
    refused(capsys, [*split, "--per-participant", "100000"], "--per-participant", "at most 2666")
    refused(capsys, [*split, "--split", "dirichlet", "--alpha", "-1"], "--alpha", "more than 0")
    assert not out.exists()


def test_data_split_writes_the_private_data_files_readable_by_their_owner_alone(tmp_path: Path) -> None:
    out = tmp_path / "data"

    assert main(["data", "split", "-n", "3", "--per-participant", "20", "--out", str(out)]) == 0

    written = sorted(p.name for p in out.iterdir())
    assert written == ["participant-0000.npz", "participant-0001.npz", "participant-0002.npz", "test.npz"]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--dataset", "idx", "--data-root", "EMPTY"], ["--data-root", "IDX files missing"]),
        (["--per-participant", "100000"], ["--per-participant", "at most 2666"]),
    ],
    ids=["a data root without data", "more samples than the pool"],
)
def test_a_run_whose_data_is_wrong_leaves_no_run_directory(
    flags: list[str], names: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    flags = [str(tmp_path / "empty") if f == "EMPTY" else f for f in flags]
    out = tmp_path / "run"
    argv = ["run", "-n", "3", "-r", "1", "--local-epochs", "1", "--chain", "embedded", "--no-progress"]
    refused(capsys, [*argv, *flags, "--out", str(out)], *names)
    # Nothing offers a --resume that would fail the same way.
    assert not out.exists()


# ─────────────── seccl compare's warnings ───────────────


def _metrics(n: int, accuracy: float = 0.5) -> dict:
    return {
        "config": {"participants": n, "dataset": "mnist", "candidate_fraction": 0.2},
        "initial_accuracy": 0.1,
        "initial_macro_f1": 0.05,
        "evidence": 0,
        "rounds": [{"round": 1, "accuracy": accuracy, "macro_f1": accuracy - 0.1, "elected": [0]}],
    }


def test_compare_warns_of_one_run_given_twice_and_of_runs_of_different_n(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = {}
    for name, n, accuracy in (("a", 3, 0.5), ("b", 3, 0.6), ("c", 5, 0.7)):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "metrics.json").write_text(json.dumps(_metrics(n, accuracy)))

    assert main(["compare", str(runs["a"]), str(runs["b"]), "--out", str(tmp_path / "ok")]) == 0
    assert "warning" not in capsys.readouterr().err

    assert main(["compare", str(runs["a"]), str(runs["a"]), "--out", str(tmp_path / "twice")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("seccl: warning: ") and "compared with itself" in err and err.count("\n") == 1

    assert main(["compare", str(runs["a"]), str(runs["c"]), "--out", str(tmp_path / "n")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("seccl: warning: ") and "different numbers of participants" in err
    assert "N = 3" in err and "N = 5" in err


# ─────────────── records that agree ───────────────


def test_the_summary_counts_the_transactions_and_gas_the_rounds_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An equivocating server: the participants it cheats post their accusations themselves, so
    # the rounds hold transactions the server did not send.
    out = tmp_path / "eq"
    argv = ["run", "-n", "4", "-r", "1", "--per-participant", "100", "--local-epochs", "1", "--no-progress"]
    attack = ["--server-attack", "equivocate", "--allow-evidence", "--chain", "embedded"]

    assert main([*argv, *attack, "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    chain = json.loads((out / "chain.json").read_text())
    cost = metrics["chain_cost"]
    rounds = metrics["rounds"]
    assert cost["rounds"] == {
        "transactions": sum(r["transactions"] for r in rounds),
        "gas": sum(r["gas"] for r in rounds),
    }
    # Round 0 is the set-up: an accusation of θ_0 (handed over in round 1) is the session's cost.
    in_rounds = [t for t in chain["transactions"] if t["round"]]
    assert cost["rounds"]["transactions"] == len(in_rounds)
    assert cost["rounds"]["gas"] == sum(t["gas"] for t in in_rounds)
    assert cost["session"] == {
        "transactions": len(chain["transactions"]),
        "gas": sum(t["gas"] for t in chain["transactions"]),
    }
    # The participants' own transactions: their reveals, and the accusations of the cheated ones.
    by_participants = [t for t in in_rounds if t["role"].startswith("participant")]
    assert any(t["action"] == "accuseDelivery" for t in by_participants), "nobody accused the server"
    assert cost["server_sent"]["transactions"] == len(in_rounds) - len(by_participants)
    assert "rounds" in cost["note"] and "server_sent" in cost["note"]
    line = f"transactions in the rounds: {cost['rounds']['transactions']}, gas {cost['rounds']['gas']:,}"
    assert line in printed, printed


def test_every_file_a_run_writes_is_described_in_run_json_and_the_readme() -> None:
    from seccl.runs.records import RUN_FILES

    readme = (ROOT / "README.md").read_text()
    for name in ("anvil-state.log", "anvil-state.json", "chain.json"):
        assert name in RUN_FILES and f"`{name}`" in readme, name


def test_the_figure_5_config_runs_what_figure_5_recorded() -> None:
    recorded = ROOT / "docs/results/fig5/records/mnist-n20-l0.2-e0.2-seed0/metrics.json"
    ran = json.loads(recorded.read_text())["config"]
    config = load_config(ROOT / "configs/fig5-label-flip.toml").to_dict()
    differ = {k: (config[k], ran[k]) for k in ran if k != "out_dir" and config[k] != ran[k]}
    assert not differ, differ
    assert ".venv/bin/seccl run --config configs/fig5-label-flip.toml" in (ROOT / "README.md").read_text()
