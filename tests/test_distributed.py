"""Data-parallel training (benchmarks.engine.distributed): 2 gloo ranks spawned by the test against
one process on the same global batches, the gathered predictions, and a failing rank."""

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import data
import models
from benchmarks import gpu_check
from benchmarks.engine.distributed import Placement, from_environment, resolve_device
from benchmarks.engine.metrics import evaluate
from benchmarks.harness.records import key_hash, record_key


def _join(rank: int, world_size: int, store: Path) -> Placement:
    os.environ["WORLD_SIZE"] = str(world_size)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    return from_environment("cpu")


@pytest.fixture(scope="module")
def two_rank_run():
    return gpu_check.run_ranks("cpu", 2)


@pytest.fixture(scope="module")
def one_process_run():
    torch.set_num_threads(1)
    result = gpu_check.train(Placement())
    torch.set_num_threads(2)
    return result


def test_two_ranks_train_the_parameters_of_one_process(two_rank_run, one_process_run):
    assert len(two_rank_run["history"]) == len(one_process_run["history"]) > 2
    for name, value in one_process_run["state"].items():
        torch.testing.assert_close(two_rank_run["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    changed = [n for n, v in one_process_run["state"].items() if not torch.equal(v, two_rank_run["state"][n])]
    assert changed, "two ranks gave bit-identical parameters: the test would not see a wrong reduction"


def test_gathered_predictions_give_the_one_process_auc(two_rank_run, one_process_run):
    test = data.load("synthetic", rows=gpu_check.EQUIVALENCE["rows"]).test
    assert two_rank_run["prob"].shape == (len(test),)
    torch.testing.assert_close(two_rank_run["prob"], one_process_run["prob"], rtol=1e-4, atol=1e-5)
    assert two_rank_run["test_auc"] == pytest.approx(one_process_run["test_auc"], abs=1e-6)
    for got, want in zip(two_rank_run["history"], one_process_run["history"], strict=True):
        assert got["val_auc"] == pytest.approx(want["val_auc"], abs=1e-6)
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
    assert evaluate(test.y, two_rank_run["prob"])["auc"] == pytest.approx(one_process_run["test_auc"], abs=1e-6)


def _sweep_with_failing_rank(rank: int, world_size: int, tmp: Path) -> None:
    from benchmarks.harness import sweep
    from benchmarks.harness.config import load_config

    placement = _join(rank, world_size, tmp / "store")
    build = models.build

    def failing_build(*args, **kwargs):
        model = build(*args, **kwargs)
        if rank == 1:
            model.forward = lambda x: (_ for _ in ()).throw(ValueError("boom in the forward pass"))
        return model

    sweep.models.build = failing_build
    experiment = load_config().retarget("synthetic", {"rows": 3_000}).select(["fm"])
    try:
        sweep.run_experiment(experiment, tmp / "out", threads=1, placement=placement)
    finally:
        placement.leave(finished=False)


def test_a_failing_rank_ends_the_job_naming_it_and_writes_no_record(tmp_path):
    with pytest.raises(mp.ProcessRaisedException, match=r"rank 1 of 2 failed on .*boom in the forward pass"):
        mp.spawn(_sweep_with_failing_rank, args=(2, tmp_path), nprocs=2)
    assert not list((tmp_path / "out").rglob("*.json"))
    assert not list((tmp_path / "out").rglob("*.tmp*"))


def test_one_cpu_process_keeps_the_record_key_and_other_placements_change_it():
    fields = {"dataset": "synthetic", "dataset_options": {}, "model": "fm", "hparams": {}, "train": {},
              "seed": 0, "threads": 2}
    plain = record_key(**fields)
    assert "device" not in plain and "world_size" not in plain
    assert record_key(**fields, device="cpu", world_size=1) == plain
    hashes = {key_hash(record_key(**fields, device=d, world_size=w)) for d, w in
              [("cpu", 1), ("cpu", 2), ("cuda", 1), ("cuda", 2)]}
    assert len(hashes) == 4
    assert json.loads(json.dumps(record_key(**fields, world_size=2)))["world_size"] == 2


def test_device_flag_is_checked():
    with pytest.raises(ValueError, match=r"device must be one of \['cpu', 'cuda', 'auto'\], got 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto") == torch.device("cpu")


def test_placement_rows_cover_the_split_once_in_order():
    for n in (0, 1, 7, 10):
        rows = [list(Placement(world_size=3, rank=r).rows(n)) for r in range(3)]
        assert sum(rows, []) == list(range(n))


def test_gpu_check_skips_without_cuda_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    assert "sees no CUDA device" in capsys.readouterr().err
    assert "Skipped: torch" in (tmp_path / "gpu_check.md").read_text()
    assert "sees no CUDA device" in json.loads((tmp_path / "gpu_check.json").read_text())["skipped"]


def test_gpu_check_latency_probe_runs_on_the_given_device():
    rows = gpu_check.latencies(["cpu"], families=("fm", "lr"), batches=(1, 8))
    assert [(r["model"], r["device"], r["batch"]) for r in rows] == [
        ("fm", "cpu", 1), ("fm", "cpu", 8), ("lr", "cpu", 1), ("lr", "cpu", 8)]
    assert all(0 < r["median_ms"] <= r["p90_ms"] for r in rows)


def test_comm_benchmark_splits_the_table_over_its_fields_and_names_the_takeover_size():
    from benchmarks.scale import comm

    schema = comm.schema_of(1_000)
    assert (schema.num_fields, schema.num_features) == (comm.FIELDS, 1_000)
    rows = [{"rows": 10, "allreduce_ms": 1.0, "sparse_allreduce_ms": 2.0},
            {"rows": 100, "allreduce_ms": 3.0, "sparse_allreduce_ms": 2.0},
            {"rows": 1_000, "allreduce_ms": 30.0, "sparse_allreduce_ms": 2.0}]
    assert comm.takeover(rows).startswith("From 100 rows on")
    assert comm.takeover(rows[:1]).startswith("At every measured size")


def test_torchrun_quick_run_writes_one_world_size_2_record_per_entry_and_reports_it(tmp_path):
    """The command of the README: two gloo ranks under torchrun; rank 0 writes the records and the quick
    leaderboard, which selects the world-size-2 records (and not an empty set-up)."""
    import subprocess
    import sys

    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "benchmarks.run", "--models", "lr", "--quick", "--threads", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "quick" / "records").rglob("*.json")]
    assert [r["key"]["world_size"] for r in records] == [2]
    board = (tmp_path / "quick" / "leaderboard.md").read_text()
    assert "| LR" in board and "cpu x 2 process(es)" in board
