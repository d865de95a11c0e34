"""Every party brings its own key: a fresh random one by default, or an encrypted keystore."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from seccl.chain.accounts import load_keystore, new_account, save_keystore
from seccl.chain.backends import EmbeddedChain
from seccl.roles.settings import LearningSettings
from seccl.runtime.simulation import Simulation
from tests.sessions import N

PASSWORD = "correct horse battery staple"


def test_a_keystore_round_trips_privately_and_refuses_a_wrong_password(tmp_path: Path) -> None:
    account = new_account()
    path = save_keystore(account, tmp_path / "keys" / "p0.json", PASSWORD)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keystore(path, PASSWORD).key == account.key
    with pytest.raises(ValueError):
        load_keystore(path, "wrong")
    with pytest.raises(FileExistsError):  # a key file is never overwritten
        save_keystore(new_account(), path, PASSWORD)


def test_fresh_keys_are_random_not_derived_from_anything_public() -> None:
    keys = {new_account().key for _ in range(8)}
    assert len(keys) == 8


def test_a_session_runs_with_the_parties_own_keystore_keys(tmp_path: Path, data) -> None:
    owned = [new_account() for _ in range(N + 1)]
    paths = [save_keystore(a, tmp_path / f"key-{i}.json", PASSWORD) for i, a in enumerate(owned)]
    loaded = [load_keystore(p, PASSWORD) for p in paths]
    parts, test = data

    sim = Simulation(
        backend=EmbeddedChain(),
        parts=parts,
        test=test,
        rounds=1,
        candidate_fraction=0.5,
        settings=LearningSettings(local_epochs=1),
        seed=0,
        accounts=loaded[:N],
        server_account=loaded[N],
    )
    result = sim.run()

    assert sim.session.participants == tuple(a.address for a in owned[:N])
    assert sim.session.server == owned[N].address
    assert result.evidence == [] and len(result.rounds) == 1
