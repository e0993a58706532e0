"""Memory-mapped storage: the same rows as in memory, block-shuffled batches, bad input, and a
generated file end to end (generate -> encode -> mmap -> fit)."""

from __future__ import annotations

import errno
import importlib

import numpy as np
import pytest
import torch

import data
import models
from benchmarks.engine.fit import fit
from benchmarks.engine.metrics import evaluate
from data import storage
from data.generate import generate
from data.raw import DataError
from data.storage import OnDisk
from models import preset

batches_module = importlib.import_module("data.batches")  # the module, which data.batches (the function) hides


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(batches_module, "BLOCK_ROWS", 1000)
    monkeypatch.setattr(batches_module, "SHUFFLE_BLOCKS", 3)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def criteo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "train.txt"
    generate("criteo", 20_000, path, seed=3)
    return path


def rows_of(split_batches) -> np.ndarray:
    """Every (x..., y) row of an epoch, sorted: the epoch's multiset of rows."""
    rows = np.concatenate([torch.cat([x, y[:, None].long()], 1).numpy() for x, y in split_batches])
    return rows[np.lexsort(rows.T[::-1])]


def test_mmap_and_memory_hold_the_same_rows_and_give_the_same_epochs(criteo_file):
    memory = data.load("criteo", path=str(criteo_file), min_count=2, storage="memory")
    mapped = data.load("criteo", path=str(criteo_file), min_count=2, storage="mmap")
    assert (memory.info["storage"], mapped.info["storage"]) == ("memory", "mmap")
    assert memory.train.disk is None and mapped.train.disk is not None
    assert mapped.train.x.dtype == torch.int32 and memory.train.x.dtype == torch.int64
    for name in ("train", "val", "test"):
        a, b = getattr(memory, name), getattr(mapped, name)
        assert torch.equal(a.x, b.x.long()) and torch.equal(a.y, b.y) and torch.equal(a.prob, b.prob)
    g = torch.Generator().manual_seed(0)
    shuffled = list(data.batches(mapped.train, 512, shuffle=True, generator=g))
    assert [len(y) for _, y in shuffled[:-1]] == [512] * (len(shuffled) - 1)
    assert len(shuffled) == data.num_batches(mapped.train, 512)
    assert all(x.dtype == torch.int64 for x, _ in shuffled)
    assert np.array_equal(rows_of(shuffled), rows_of(data.batches(memory.train, 512, shuffle=True)))
    in_order = torch.cat([x for x, _ in data.batches(mapped.val, 300)])
    assert torch.equal(in_order, memory.val.x)


def test_block_shuffle_is_seeded_and_covers_every_row_once(tmp_path):
    n = 11_000  # eleven full blocks of 1000 rows
    x = np.stack([np.arange(n), np.arange(n) % 7, np.arange(n) % 5], 1).astype(np.int32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (np.arange(n) % 2).astype(np.float32))
    split = data.Split(torch.from_numpy(np.load(tmp_path / "x.npy", mmap_mode="c")),
                       torch.from_numpy(np.load(tmp_path / "y.npy", mmap_mode="c")),
                       disk=OnDisk(tmp_path / "x.npy", tmp_path / "y.npy"))

    def epoch(seed):
        return torch.cat([x[:, 0] for x, _ in data.batches(split, 256, shuffle=True,
                                                            generator=torch.Generator().manual_seed(seed))])

    first = epoch(0)
    assert sorted(first.tolist()) == list(range(n))
    assert torch.equal(first, epoch(0)) and not torch.equal(first, epoch(1))
    assert not torch.equal(first, torch.arange(n))
    first_buffer = 3000 // 256 * 256  # its full batches; the rest joins the next buffer
    assert len(set((first[:first_buffer] // 1000).tolist())) == 3
    assert len(set((first[first_buffer : first_buffer + 2048] // 1000).tolist())) > 3
    for x, y in data.batches(split, 256, shuffle=True):
        assert torch.equal(y, (x[:, 0] % 2).float()) and torch.equal(x[:, 1], x[:, 0] % 7)


def test_auto_storage_maps_only_large_splits(criteo_file, monkeypatch):
    assert data.load("criteo", path=str(criteo_file), min_count=2).info["storage"] == "memory"
    monkeypatch.setattr(storage, "AUTO_MMAP_BYTES", 1000)
    assert data.load("criteo", path=str(criteo_file), min_count=2).info["storage"] == "mmap"
    with pytest.raises(ValueError, match="storage must be one of"):
        data.load("criteo", path=str(criteo_file), storage="disk")


def test_truncated_last_line_names_the_line(tmp_path, criteo_file):
    text = criteo_file.read_bytes()
    cut = tmp_path / "cut.txt"
    cut.write_bytes(text[: len(text) - 40])
    with pytest.raises(DataError, match=r"cut.txt, line 20000: wrong number of columns"):
        data.load("criteo", path=str(cut), min_count=2)
    skipped = data.load("criteo", path=str(cut), min_count=2, on_bad_rows="skip")
    assert skipped.info["dropped"]["rows"] == 1 and sum(skipped.info["rows"].values()) == 19_999


def test_a_full_disk_or_unwritable_cache_leaves_no_partial_cache(criteo_file, tmp_cache, monkeypatch, tmp_path):
    real = storage._NpyAppender.append
    calls = []

    def fills_up(self, rows):
        calls.append(rows)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, rows)

    monkeypatch.setattr(storage._NpyAppender, "append", fills_up)
    with pytest.raises(DataError, match=f"cannot write the cache folder {tmp_cache / 'processed'}: No space left"):
        data.load("criteo", path=str(criteo_file), min_count=2)
    assert list((tmp_cache / "processed").iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(DataError, match=r"cannot write the cache folder .*a-file/cache/processed: Not a directory"):
        data.load("criteo", path=str(criteo_file), min_count=2)


def test_generated_file_end_to_end_through_the_memory_map(tmp_path):
    path = tmp_path / "big.txt"
    generate("criteo", 200_000, path, seed=1)
    dataset = data.load("criteo", path=str(path), storage="mmap")
    assert dataset.train.disk is not None and dataset.val.prob is not None
    oracle = evaluate(dataset.val.y, dataset.val.prob)["auc"]
    small = {**preset("DCN-V2 parallel, 3 layers").hparams, "embed_dim": 4, "num_layers": 1,
             "hidden_units": (32,)}
    result = fit(models.build("dcn_v2", dataset.schema, **small), dataset, batch_size=4096, max_epochs=1, lr=3e-3)
    assert 0.6 < result.best_val_auc < oracle
