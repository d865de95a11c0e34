"""`seccl experiment`: a grid of runs and baselines from one TOML file, written as CSV, plots and a
table; finished runs are skipped and a run cut short is resumed."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from seccl.cli.main import main
from seccl.experiments.grid import claim, run_experiment
from seccl.experiments.plan import Places, experiment_path, load_experiment
from seccl.runs.config import ConfigError

TINY = """
title = "a tiny grid"
[settings]
participants = 4
rounds = 1
local_epochs = 1
per_participant = 100
chain = "{chain}"
[[groups]]
name = "g"
vary = {{ candidate_fraction = [0.25, 0.5] }}
baseline_epochs = 1
"""


def write_tiny(tmp_path: Path, chain: str = "embedded", rounds: int = 1) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(chain=chain).replace("rounds = 1", f"rounds = {rounds}"))
    return path


def test_an_experiment_runs_its_grid_writes_its_results_and_skips_what_is_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"

    assert main(["experiment", str(write_tiny(tmp_path)), "--out", str(out)]) == 0

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted((r["run"], r["kind"], r["round"]) for r in rows) == [
        ("g-baseline", "baseline", "1"),
        ("g-l0.25", "seccl", "1"),
        ("g-l0.5", "seccl", "1"),
    ]
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    report = (out / "results.md").read_text()
    assert "# a tiny grid" in report and "g-l0.25" in report and "3 of 3 runs finished" in report
    assert (out / "g" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    first = (out / "runs" / "g-l0.25" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()

    assert main(["experiment", str(write_tiny(tmp_path)), "--out", str(out)]) == 0

    assert capsys.readouterr().out.count("finished earlier, skipped") == 3
    assert (out / "runs" / "g-l0.25" / "metrics.json").stat().st_mtime_ns == first


@pytest.mark.anvil
def test_an_experiment_killed_mid_run_resumes_that_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    spec = write_tiny(tmp_path, chain="anvil", rounds=2)
    argv = [sys.executable, "-m", "seccl.cli.main", "experiment", str(spec), "--out", str(out)]
    killed = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "SECCL_KILL_AT": "2:tally"}
    )
    assert killed.returncode == -9

    assert main(["experiment", str(spec), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "[1/3] g-l0.25: resuming" in printed and "resuming after round 1 of 2" in printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted({(r["run"], r["round"]) for r in rows if r["kind"] == "seccl"}) == [
        ("g-l0.25", "1"),
        ("g-l0.25", "2"),
        ("g-l0.5", "1"),
        ("g-l0.5", "2"),
    ]


def test_the_built_in_experiments_plan_the_papers_figures_for_three_seeds() -> None:
    fig4 = load_experiment(experiment_path("fig4"))
    fig5 = load_experiment(experiment_path("fig5"))

    assert [r.name for r in fig4.runs if r.group == "mnist-n20"][:4] == [
        "mnist-n20-l0.1-seed0",
        "mnist-n20-l0.1-seed1",
        "mnist-n20-l0.1-seed2",
        "mnist-n20-l0.2-seed0",
    ]
    assert {r.settings["dataset"] for r in fig4.runs} == {"mnist", "fashion-mnist"} and len(fig4.runs) == 48
    # Figure 4 runs group by group, every MNIST run (all three seeds) before the costlier Fashion-MNIST.
    assert [r.group for r in fig4.runs] == [
        g for g in ("mnist-n20", "mnist-n30", "fashion-n20", "fashion-n30") for _ in range(12)
    ]
    assert (
        sorted(r.settings["seed"] for r in fig4.runs if not r.is_baseline) == [0] * 12 + [1] * 12 + [2] * 12
    )
    # ... and each group's centralized baseline under the same three seeds.
    assert [(r.name, r.settings["seed"]) for r in fig4.runs if r.is_baseline][:3] == [
        ("mnist-n20-baseline-seed0", 0),
        ("mnist-n20-baseline-seed1", 1),
        ("mnist-n20-baseline-seed2", 2),
    ]
    assert sum(r.is_baseline for r in fig4.runs) == 12
    runs = [r for r in fig5.runs if not r.is_baseline]
    assert [r.settings.get("attack_fraction") for r in runs[:5]] == [None, 0.1, 0.2, 0.25, 0.3]
    assert [r.name for r in runs[5:7]] == ["mnist-n20-l0.2-e0-seed1", "mnist-n20-l0.2-e0.1-seed1"]
    assert sorted(r.settings["seed"] for r in runs) == [0] * 5 + [1] * 5 + [2] * 5
    assert all(r.settings.get("attack_start_round", 5) == 5 for r in fig5.runs)


def test_cases_run_at_every_point_of_the_grid_and_need_a_label(tmp_path: Path) -> None:
    spec = tmp_path / "cases.toml"
    spec.write_text(
        '[[groups]]\nname = "g"\nvary = { seed = [3, 4] }\n'
        'cases = [{ label = "a" }, { label = "b", attack = "label-flip", attack_fraction = 0.25 }]\n'
    )
    planned = {r.name: r.settings for r in load_experiment(spec).runs}
    assert planned == {
        "g-a-seed3": {"seed": 3},
        "g-a-seed4": {"seed": 4},
        "g-b-seed3": {"attack": "label-flip", "attack_fraction": 0.25, "seed": 3},
        "g-b-seed4": {"attack": "label-flip", "attack_fraction": 0.25, "seed": 4},
    }
    spec.write_text('[[groups]]\nname = "g"\ncases = [{ attack = "label-flip" }]\n')
    with pytest.raises(ConfigError, match="every case needs a label"):
        load_experiment(spec)


def test_a_bad_setting_in_an_experiment_is_refused_before_any_run(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('[settings]\nrounds = 0\n[[groups]]\nname = "g"\nvary = { seed = [0, 1] }\n')

    with pytest.raises(ConfigError, match="rounds"):
        load_experiment(spec)
    assert main(["experiment", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_a_run_another_worker_holds_is_skipped_and_run_by_the_next_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    spec = write_tiny(tmp_path)

    with claim(out, "g-l0.25") as held:  # as another worker's process would hold it
        assert held
        with claim(out, "g-l0.25") as again:
            assert not again  # exclusive, even within one process
        assert main(["experiment", str(spec), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "[1/3] g-l0.25: running in another worker, skipped" in printed
    assert not (out / "runs" / "g-l0.25").exists()
    assert "2 of 3 runs finished" in (out / "results.md").read_text()

    assert main(["experiment", str(spec), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "[1/3] g-l0.25: starting" in printed and printed.count("finished earlier, skipped") == 2
    assert "3 of 3 runs finished" in (out / "results.md").read_text()


CHAIN_FREE = """
title = "four chain-free runs"
report = "methods"
[settings]
participants = 4
rounds = 1
local_epochs = 1
per_participant = 60
workers = 0
[[groups]]
name = "g"
vary = { method = ["fedavg", "median", "trimmed-mean", "dssgd"] }
"""


def four_chain_free_runs(tmp_path: Path) -> tuple[Path, Path]:
    """The file of CHAIN_FREE's experiment, and where its results go (not there yet)."""
    spec = tmp_path / "four.toml"
    spec.write_text(CHAIN_FREE)
    return spec, tmp_path / "out"


def test_jobs_runs_a_grid_in_two_workers_each_run_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = four_chain_free_runs(tmp_path)

    assert main(["experiment", str(spec), "--out", str(out), "--jobs", "2"]) == 0

    helper = (out / "worker-1.log").read_text()
    assert "experiment four: four chain-free runs; 4 runs into" in helper
    started = [
        line.split("] ")[1].split(":")[0]
        for line in capsys.readouterr().out.splitlines() + helper.splitlines()
        if line.endswith(": starting")
    ]
    runs = ["g-fedavg", "g-median", "g-trimmed-mean", "g-dssgd"]
    assert sorted(started) == sorted(runs)  # every run, and none twice
    assert all((out / "runs" / run / "metrics.json").is_file() for run in runs)
    assert "4 of 4 runs finished" in (out / "results.md").read_text()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_results_are_committed_as_runs_finish_and_a_fresh_clone_resumes_from_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "seccl test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.org")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "notes.txt").write_text("someone's work in progress\n")
    git(repo, "add", "notes.txt")  # staged, and not the experiment's to commit
    spec = tmp_path / "four.toml"
    spec.write_text(CHAIN_FREE)
    argv = ["experiment", str(spec), "--out", str(repo / "results"), "--work", str(tmp_path / "work")]

    assert main([*argv, "--commit", "--jobs", "2"]) == 0

    runs = ["g-fedavg", "g-median", "g-trimmed-mean", "g-dssgd"]
    log = git(repo, "log", "--format=%s").splitlines()
    assert log and all(line.startswith("results: four, ") for line in log)
    assert log[0] == "results: four, 4 of 4 runs" or log[0].startswith("results: four, 4 of 4 runs (")
    committed = set(git(repo, "log", "--name-only", "--format=").split())
    assert {f"results/records/{run}/metrics.json" for run in runs} <= committed
    assert all(name.startswith("results/") for name in committed)  # nothing else was committed
    assert "A  notes.txt" in git(repo, "status", "--short")  # and the staged file is still staged
    assert not (repo / "results" / "runs").exists() and (tmp_path / "work" / "runs" / runs[0]).is_dir()
    capsys.readouterr()

    # A fresh clone, on a machine without the runs: every run is finished, nothing runs again.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
    again = ["experiment", str(spec), "--out", str(clone / "results"), "--work", str(tmp_path / "fresh")]

    assert main(again) == 0

    printed = capsys.readouterr().out
    assert printed.count("finished earlier, skipped") == 4 and "starting" not in printed
    assert not (tmp_path / "fresh" / "runs").exists()
    assert (clone / "results" / "results.csv").read_text() == (repo / "results" / "results.csv").read_text()


@pytest.mark.parametrize("work", [None, "out", "out/work"])
def test_commit_refuses_a_work_directory_whose_runs_it_would_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], work: str | None
) -> None:
    argv = ["experiment", str(write_tiny(tmp_path)), "--out", str(tmp_path / "out"), "--commit"]
    argv += ["--work", str(tmp_path / work)] if work else []

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert "--commit: give --work a directory outside --out" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_a_worker_starts_no_run_once_the_code_under_it_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stand-in for the package's tree: an upgrade that lands while a grid runs changes it.
    code = tmp_path / "code"
    (code / "artifacts").mkdir(parents=True)
    (code / "artifacts" / "Consensus.json").write_text('{"bytecode": "0x01"}')
    spec = tmp_path / "chain-free.toml"  # chain-free runs: quick, and run in-process all the same
    spec.write_text(
        TINY.format(chain="embedded").replace("baseline_epochs = 1", "")
        + 'settings = { method = "median" }\n'
    )
    plan = load_experiment(spec)
    places = Places(results=tmp_path / "out", work=tmp_path / "work")
    ran: list[list[str]] = []

    def upgraded_during_the_first_run(argv: list[str]) -> int:
        ran.append(argv)
        (code / "artifacts" / "Consensus.json").write_text('{"bytecode": "0x02"}')
        return main(argv)

    statuses = run_experiment(plan, places, upgraded_during_the_first_run, code_root=code)

    assert len(ran) == 1  # the run under way finishes; none starts after it
    assert list(statuses.values()) == ["new", "stopped"]
    assert "not started: seccl's code or contracts changed since this worker began" in capsys.readouterr().out
    assert (places.record_dir(plan.runs[0].name) / "metrics.json").is_file()

    # A worker started under the new code runs the rest.
    again = run_experiment(plan, places, lambda argv: ran.append(argv) or main(argv), code_root=code)

    assert list(again.values()) == ["done", "new"] and len(ran) == 2


def test_jobs_needs_at_least_one_worker(tmp_path: Path) -> None:
    assert main(["experiment", str(write_tiny(tmp_path)), "--out", str(tmp_path / "out"), "--jobs", "0"]) == 2
    assert not (tmp_path / "out").exists()


def test_a_setting_run_under_several_seeds_is_reported_with_its_spread(tmp_path: Path) -> None:
    spec = tmp_path / "seeds.toml"
    spec.write_text(
        TINY.format(chain="embedded").replace("rounds = 1", "rounds = 2").split("[[groups]]")[0]
        + '[[groups]]\nname = "g"\nvary = { seed = [0, 1] }\nbaseline_epochs = 2\nbaseline_seeds = [0, 1]\n'
    )
    out = tmp_path / "out"

    assert main(["experiment", str(spec), "--out", str(out)]) == 0

    records = [json.loads((out / "runs" / f"g-seed{k}" / "metrics.json").read_text()) for k in (0, 1)]
    curves = [[r["accuracy"] for r in record["rounds"]] for record in records]

    def cell(values: list[float]) -> str:
        return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f} (2)"

    after = [cell([curve[r] for curve in curves]) for r in (0, 1)]
    best = cell([max(curve) for curve in curves])
    report = (out / "results.md").read_text()
    assert "Over seeds (mean ± sample std" in report
    assert f"| g | 0, 1 | {after[1]} | {best} |" in report
    assert "![g over seeds](g/seeds.png)" in report
    assert (out / "g" / "seeds.png").read_bytes()[:4] == b"\x89PNG"
    # ... and round by round, the numbers behind seeds.png.
    assert "Accuracy after each round, over seeds" in report
    assert f"| runs | 1 | 2 |\n| --- | ---: | ---: |\n| g | {after[0]} | {after[1]} |" in report
    # The centralized baseline, one per seed (each trained on its seed's split), has its spread too.
    baselines = [
        json.loads((out / "runs" / f"g-baseline-seed{k}" / "baseline.json").read_text()) for k in (0, 1)
    ]
    assert [b["config"]["seed"] for b in baselines] == [0, 1]
    final = cell([b["accuracy_per_epoch"][-1] for b in baselines])
    best_baseline = cell([max(b["accuracy_per_epoch"]) for b in baselines])
    assert f"| g-baseline (centralized, 2 epochs) | 0, 1 | {final} | {best_baseline} | — |" in report
    kinds = {(r["run"], r["kind"]) for r in csv.DictReader((out / "results.csv").open())}
    assert {("g-baseline-seed0", "baseline"), ("g-baseline-seed1", "baseline")} <= kinds


def test_baseline_seeds_must_be_a_list_of_seeds(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(TINY.format(chain="embedded") + "baseline_seeds = 3\n")

    with pytest.raises(ConfigError, match="group g: baseline_seeds must be a list of seeds"):
        load_experiment(spec)


def test_results_outside_a_git_repository_are_kept_and_the_commit_refused_with_a_reason(
    tmp_path: Path,
) -> None:
    from seccl.experiments.reports import commit_results

    (tmp_path / "results" / "records").mkdir(parents=True)
    (tmp_path / "results" / "records" / "r.json").write_text("{}")
    said: list[str] = []

    assert not commit_results(tmp_path / "results", "results: x", said.append)

    assert said and said[0].startswith("results not committed: git add:") and "git repository" in said[0]
    assert (tmp_path / "results" / "records" / "r.json").read_text() == "{}"


def test_a_record_made_with_other_settings_than_its_run_plans_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "one.toml"
    spec.write_text(CHAIN_FREE.replace('"median", "trimmed-mean", "dssgd"', ""))
    out = tmp_path / "out"
    assert main(["experiment", str(spec), "--out", str(out)]) == 0
    before = (out / "results.csv").read_text()
    spec.write_text(
        CHAIN_FREE.replace('"median", "trimmed-mean", "dssgd"', "").replace("rounds = 1", "rounds = 2")
    )
    capsys.readouterr()

    code = main(["experiment", str(spec), "--out", str(out)])

    printed = capsys.readouterr()
    assert (
        code != 0
        and "the record of g-fedavg was made with other settings (rounds: recorded 1, planned 2)"
        in (printed.out + printed.err)
    )
    assert (out / "results.csv").read_text() == before  # and nothing was lost or rewritten


def test_methods_runs_only_the_runs_of_those_methods_and_a_later_call_runs_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = four_chain_free_runs(tmp_path)

    assert main(["experiment", str(spec), "--out", str(out), "--methods", "median,dssgd", "--jobs", "2"]) == 0

    runs = ["g-fedavg", "g-median", "g-trimmed-mean", "g-dssgd"]
    # Neither worker ran the others (the helper got the flag too).
    assert {run for run in runs if (out / "runs" / run / "metrics.json").is_file()} == {"g-median", "g-dssgd"}
    assert "2 of 4 runs finished" in (out / "results.md").read_text()
    printed = capsys.readouterr().out + (out / "worker-1.log").read_text()
    assert "g-fedavg: not selected (--methods, --runs), left for later" in printed and ": starting" in printed

    assert main(["experiment", str(spec), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert printed.count("finished earlier, skipped") == 2 and printed.count(": starting") == 2
    assert "4 of 4 runs finished" in (out / "results.md").read_text()


def test_methods_names_only_methods_the_experiment_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = four_chain_free_runs(tmp_path)

    assert main(["experiment", str(spec), "--out", str(out), "--methods", "median,krum"]) == 2

    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--methods" in error[0] and "krum" in error[0]
    assert not (out / "runs").exists()


def test_runs_selects_by_name_pattern_together_with_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = four_chain_free_runs(tmp_path)

    argv = ["experiment", str(spec), "--out", str(out), "--runs", "g-*me*,g-d*", "--jobs", "2"]
    assert main([*argv, "--methods", "trimmed-mean,dssgd,fedavg"]) == 0

    # Only the runs both flags select: the patterns take median, trimmed-mean and dssgd;
    # --methods drops median.
    finished = {r.name for r in (out / "runs").iterdir() if (r / "metrics.json").is_file()}
    assert finished == {"g-trimmed-mean", "g-dssgd"}
    printed = capsys.readouterr().out + (out / "worker-1.log").read_text()
    assert "g-median: not selected (--methods, --runs), left for later" in printed

    assert main(["experiment", str(spec), "--out", str(out), "--runs", "g-fedavg"]) == 0
    assert "3 of 4 runs finished" in (out / "results.md").read_text()


def test_runs_patterns_must_each_name_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = four_chain_free_runs(tmp_path)

    assert main(["experiment", str(spec), "--out", str(out), "--runs", "g-*,e0.3-*"]) == 2

    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--runs" in error[0] and "e0.3-*" in error[0]
    assert not (out / "runs").exists()


def test_a_failed_run_does_not_stop_the_others_and_the_call_ends_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = four_chain_free_runs(tmp_path)
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "g-median").write_text("in the way")  # its output directory is a file: it fails

    assert main(["experiment", str(spec), "--out", str(out)]) == 1

    printed = capsys.readouterr()
    assert "g-median: failed with exit code 2" in printed.out
    assert "1 run(s) failed: g-median" in printed.out
    finished = {r.name for r in (out / "runs").iterdir() if (r / "metrics.json").is_file()}
    assert finished == {"g-fedavg", "g-trimmed-mean", "g-dssgd"}  # the runs after it ran too
    assert "3 of 4 runs finished" in (out / "results.md").read_text()
    assert (out / "runs" / "g-median").read_text() == "in the way"
