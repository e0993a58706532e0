"""The command line's probes from issue 15: checks before work, one-line errors, the lock, own data."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import benchmarks.harness.cli as cli
from benchmarks.engine import contention
from benchmarks.harness.cli import CORES, MAX_SEEDS, parse_args, parse_data
from benchmarks.harness.lock import LOCK_NAME
from benchmarks.harness.records import DamagedRecord, load_records, read_record
from benchmarks.harness.sweep import SweepSummary
from benchmarks.run import main

ROOT = Path(__file__).parents[1]


def _cli(*args, cwd=None):
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "benchmarks.run", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=300)


@pytest.mark.parametrize("argv, message", [
    (["--all", "--max-epochs", "0"], "--max-epochs 0: accepted an integer >= 1"),
    (["--all", "--max-epochs", "-3"], "--max-epochs -3: accepted an integer >= 1"),
    (["--all", "--seeds", "3,3"], r"--seeds 3,3: accepted up to 100 distinct integers >= 0 (repeated: [3])"),
    (["--all", "--seeds", "1000000"], f"--seeds 1000000: accepted a count from 1 to {MAX_SEEDS}"),
    (["--all", "--seeds", "two"], "--seeds two: accepted a count or a comma-separated list"),
    (["--all", "--threads", str(CORES + 1)], f"--threads {CORES + 1}: accepted 1..{CORES}"),
    (["--all", "--threads", "0"], f"--threads 0: accepted 1..{CORES}"),
    (["--all", "--data", "rows=3"], "--data needs --dataset NAME"),
    (["--all", "--dataset", "table", "--data", "colour=red"], "--data colour=red: table has no option 'colour'"),
    (["--all", "--dataset", "table", "--data", "label"], "--data label: accepted KEY=VALUE"),
    (["--all", "--dataset", "table", "--data", "label=a", "--data", "label=b"], "label is given twice"),
    (["--all", "--dataset", "ml100k", "--data", "numeric_as={age: value}"],
     "--data numeric_as={age: value}: a value starting with '{' must be a JSON object"),
])
def test_flags_are_checked_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and "Traceback" not in err


def test_quick_alone_runs_every_model():
    assert parse_args(["--quick"]).all


def test_config_value_errors_exit_2_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nseeds = 3\n\n[[model]]\nname = "lr"\n')
    assert main(["--all", "--config", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {bad}: [run] seeds = 3; accepted: a non-empty list of integers >= 0\n"
    assert not (tmp_path / "out").exists()


def test_data_pairs_become_loader_options():
    options = parse_data("table", ["path=clicks.csv", "label=click", "categorical=country", "numeric=age,income",
                                   "rows=100", "split=0.6,0.2,0.2"])
    assert options == {"path": "clicks.csv", "label": "click", "categorical": ["country"],
                       "numeric": ["age", "income"], "rows": 100, "split": [0.6, 0.2, 0.2]}
    assert parse_data("ml100k", ['numeric_as={"age": "value"}']) == {"numeric_as": {"age": "value"}}


def test_expected_situations_print_one_line_and_debug_shows_the_traceback(tmp_path):
    plain = _cli("--models", "lr", "--dataset", "criteo", "--quick", "--out", str(tmp_path))
    assert plain.returncode == 1
    assert plain.stderr == ("error: criteo: no file given; pass path=... or set the environment variable "
                            "CTRBENCH_CRITEO\n")
    debug = _cli("--models", "lr", "--dataset", "criteo", "--quick", "--out", str(tmp_path), "--debug")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_movielens_not_fetched_is_one_line_saying_how_to_fetch(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("CTRBENCH_ML100K", raising=False)
    assert main(["--models", "lr", "--dataset", "ml100k", "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "python -m data.fetch ml100k" in err


def test_table_without_columns_names_the_problem(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("label,a\n1,x\n0,y\n")
    argv = ["--models", "lr", "--dataset", "table", "--data", f"path={csv}", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 1
    assert capsys.readouterr().err == "error: table: no feature columns; pass categorical=[...] and/or numeric=[...]\n"


def test_unwritable_output_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_experiment", lambda *a, **k: pytest.fail("trained before checking --out"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--models", "lr", "--out", str(blocker / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {blocker / 'out'}: cannot write there (") and err.count("\n") == 1


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "run_experiment", interrupted)
    assert main(["--models", "lr", "--out", str(tmp_path), "--quiet"]) == 130
    assert capsys.readouterr().err == (f"interrupted; finished runs are kept in {tmp_path}/records: "
                                       "rerun the same command to resume\n")
    assert not (tmp_path / LOCK_NAME).exists()


def test_leaderboard_without_records_fails(tmp_path, capsys):
    assert main(["--leaderboard", "--out", str(tmp_path / "typo"), "--quiet"]) == 1
    assert capsys.readouterr().err == (f"error: no run records under {tmp_path / 'typo' / 'records'}; train first "
                                       "(e.g. --all) or check --out\n")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("content, problem", [("{}", "lacks ['key'"), ('{"key": {"seed"', "not valid JSON")])
def test_damaged_record_is_named_and_moved_aside(tmp_path, content, problem):
    path = tmp_path / "records" / "synthetic" / "lr-seed0-abc.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.warns(DamagedRecord, match=re.escape(f"damaged record {path}: {problem}")):
        assert load_records(tmp_path) == []
    assert not path.exists() and path.with_name(path.name + ".damaged").read_text() == content
    assert read_record(path) is None  # absent now: the sweep reruns it


def test_a_second_sweep_is_refused_and_a_dead_owner_is_taken_over(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "run_experiment",
                        lambda *a, **k: seen.append((tmp_path / LOCK_NAME).read_text()) or SweepSummary())
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(f"{owner.pid}\n")
        assert main(["--models", "lr", "--out", str(tmp_path), "--quiet"]) == 1
        assert f"is in use by another sweep (pid {owner.pid}" in capsys.readouterr().err and not seen
    finally:
        owner.kill()
        owner.wait()
    main(["--models", "lr", "--out", str(tmp_path), "--quiet"])  # no records: the leaderboard step fails
    assert seen == [f"{os.getpid()}\n"]  # the dead owner's lock was taken over
    assert not (tmp_path / LOCK_NAME).exists()


def test_contention_is_flagged_when_the_load_exceeds_the_cores(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (CORES + 1.0, 0.0, 0.0))
    with contention.watch(threads=1) as busy:
        sum(range(10_000))
    assert busy["shared"] and busy["load"] == [CORES + 1.0, CORES + 1.0] and busy["cores"] == CORES


def _machine(monkeypatch, others_per_second: float):
    """A machine whose busy time is this process's CPU time plus ``others_per_second`` of other work."""
    start = time.perf_counter()
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(contention, "machine_busy_seconds",
                        lambda: time.process_time() + others_per_second * (time.perf_counter() - start))


def test_other_processes_cpu_time_flags_a_figure_and_a_lone_single_thread_does_not(monkeypatch):
    _machine(monkeypatch, others_per_second=0.0)
    with contention.watch(threads=2) as alone:  # one thread busy of two: an idle machine all the same
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
    assert alone["share"] < 0.75 and alone["others"] < 0.05 and not alone["shared"]
    _machine(monkeypatch, others_per_second=CORES * 0.6)
    with contention.watch(threads=2) as crowded:
        time.sleep(0.3)
    assert crowded["others"] > contention.MAX_OTHERS and crowded["shared"]


def test_blocks_too_short_for_the_kernel_ticks_are_judged_by_the_load_alone(monkeypatch):
    _machine(monkeypatch, others_per_second=CORES * 0.9)
    with contention.watch(threads=1) as short:
        pass
    assert short["others"] is None and not short["shared"]


def test_own_small_table_warns_marks_and_reports_under_its_run(tmp_path):
    csv = tmp_path / "clicks.csv"
    lines = ["click,country,device,age"] + [f"{i % 2},c{i % 5},d{i % 3},{i % 50}" for i in range(400)]
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    run = _cli("--models", "lr", "--seeds", "1", "--max-epochs", "1", "--threads", "1", "--dataset", "table",
               "--data", f"path={csv}", "--data", "label=click", "--data", "categorical=country,device",
               "--data", "numeric=age", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "LR, seed 0: 1 steps planned: fewer than 300 optimiser steps" in run.stderr
    report = next((out / "runs").glob("*/leaderboard.md"))
    assert f"wrote {report}" in run.stdout
    assert "| LR (only 1 steps" in report.read_text()
    assert not (out / "leaderboard.md").exists()  # the published leaderboard is not touched by an ad-hoc run
    record = json.loads(next((out / "records").rglob("lr-*.json")).read_text())
    assert record["key"]["dataset_options"]["categorical"] == ["country", "device"]
    assert set(record["contention"]) == {"train", "latency"}
    assert oct((next((out / "records").rglob("lr-*.json"))).stat().st_mode & 0o777) == "0o644"


def test_ad_hoc_runs_leave_the_published_leaderboard_alone(tmp_path, monkeypatch, capsys):
    config = tmp_path / "default.toml"
    config.write_text('[dataset]\nname = "synthetic"\noptions = { rows = 2000 }\n[run]\nseeds = [0, 1]\n'
                      '[train]\nmax_epochs = 1\nbatch_size = 256\n[latency]\nbatch_sizes = [1]\n'
                      '[[model]]\nname = "lr"\n[[model]]\nname = "fm"\nhparams = { embed_dim = 2 }\n')
    monkeypatch.setattr(cli, "DEFAULT_CONFIG", config)
    out = tmp_path / "out"
    assert main(["--all", "--out", str(out), "--quiet"]) == 0
    published = (out / "leaderboard.md").read_text()
    assert "| lr (only 7 steps" in published and "| fm (only 7 steps" in published and "seeds)" not in published
    assert main(["--models", "lr", "--seeds", "1", "--max-epochs", "2", "--out", str(out)]) == 0
    report = out / "runs" / "models-lr_seeds-1_epochs-2" / "leaderboard.md"
    assert f"wrote {report}" in capsys.readouterr().out
    assert (out / "leaderboard.md").read_text() == published
    assert "| fm " not in report.read_text() and "| lr (1 of 1" not in report.read_text()
    assert "**Seeds**: 0;" in report.read_text() and "| lr (only 14 steps" in report.read_text()
