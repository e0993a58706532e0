"""The Criteo/Avazu-format generator: seeded, real formats, positive rates and a usable truth."""

import numpy as np
import pytest

import data
from benchmarks.engine.metrics import evaluate
from data import generate as generate_module
from data.generate import generate, main


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "cache"))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate("criteo", 3000, tmp_path / "a.txt", seed=5)
    generate("criteo", 3000, tmp_path / "b.txt", seed=5)
    generate("criteo", 3000, tmp_path / "c.txt", seed=6)
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert (tmp_path / "a.txt").read_bytes() != (tmp_path / "c.txt").read_bytes()
    assert np.array_equal(np.load(tmp_path / "a.txt.prob.npy"), np.load(tmp_path / "b.txt.prob.npy"))


def test_chunks_drawn_in_parallel_are_written_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_module, "CHUNK_ROWS", 700)  # 3000 rows: 5 chunks
    files = {}
    for workers in (1, 4):
        monkeypatch.setattr(generate_module.os, "cpu_count", lambda workers=workers: workers)
        files[workers] = tmp_path / f"w{workers}.txt"
        generate("criteo", 3000, files[workers], seed=5)
    assert files[1].read_bytes() == files[4].read_bytes() and len(files[1].read_text().splitlines()) == 3000
    assert np.array_equal(np.load(f"{files[1]}.prob.npy"), np.load(f"{files[4]}.prob.npy"))


@pytest.mark.parametrize(("name", "rate", "columns", "sep"), [("criteo", 0.26, 40, "\t"), ("avazu", 0.17, 24, ",")])
def test_real_format_positive_rate_and_truth(tmp_path, name, rate, columns, sep):
    path = tmp_path / "train.file"
    assert main([name, "--rows", "40000", "--out", str(path), "--seed", "2"]) == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 40_000 + (name == "avazu")
    assert all(line.count(sep) == columns - 1 for line in lines[:100])
    prob = np.load(str(path) + ".prob.npy")
    assert prob.shape == (40_000,) and abs(prob.mean() - rate) < 0.02
    dataset = data.load(name, path=str(path))
    assert abs(dataset.train.positive_rate - rate) < 0.02
    oracle = evaluate(dataset.test.y, dataset.test.prob)["auc"]
    assert 0.7 < oracle < 0.95


def test_criteo_values_span_small_and_huge_vocabularies_with_missing_integers(tmp_path):
    generate("criteo", 20_000, tmp_path / "t.txt")
    columns = list(zip(*(line.split("\t") for line in (tmp_path / "t.txt").read_text().splitlines()), strict=True))
    distinct = [len(set(c)) for c in columns[14:]]
    assert min(distinct) <= 5 and max(distinct) > 10_000
    assert 0.6 < sum(v == "" for v in columns[12]) / 20_000 < 0.9  # I12: about 76% missing
    assert all(v == "" or v.lstrip("-").isdigit() for v in columns[1])


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["criteo", "--rows", "0", "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="unknown format 'kdd'"):
        generate("kdd", 10, tmp_path / "x")
