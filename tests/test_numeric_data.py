"""Numbers kept as values: scalings against numpy, train-only fitting, clipping, missing numbers,
the values on disk (memory and memory-mapped), the cache, and the loader options."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from test_real_data import criteo_rows, write_grouplens, write_lines

import data
from data.encoding import Encoder, FieldSpec
from data.schema import NUMBER, NUMBER_MISSING, Features

BOUNDS = {"standardize": (-5, 5), "log1p": (-5, 5), "minmax": (0, 1)}


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def heavy(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.exp(rng.normal(2, 2, n)) * rng.choice([-1, 1], n, p=[0.1, 0.9])


def unclipped(scaling, train, x):
    """The documented scaling before clipping, on whole arrays."""
    if scaling == "minmax":
        return (x - train.min()) / (train.max() - train.min())
    if scaling == "log1p":
        train, x = np.sign(train) * np.log1p(np.abs(train)), np.sign(x) * np.log1p(np.abs(x))
    return (x - train.mean()) / train.std()


def fitted(scaling, train):
    encoder = Encoder([FieldSpec("x", "value", scaling=scaling)])
    for part in np.array_split(train, 7):
        encoder.partial_fit(pd.DataFrame({"x": part}))
    return encoder.finish_fit()


@pytest.mark.parametrize("scaling", ["standardize", "minmax", "log1p"])
def test_each_scaling_matches_numpy_fitted_over_chunks_and_counts_clipping(scaling):
    train, new = heavy(3000), np.append(heavy(500, seed=1), [1e30, -1e30])
    local, values, clipped = fitted(scaling, train).encode(pd.DataFrame({"x": new}))
    expected = unclipped(scaling, train, new)
    low, high = BOUNDS[scaling]
    np.testing.assert_allclose(values[:, 0], np.clip(expected, low, high), rtol=1e-5, atol=1e-6)
    assert np.array_equal(clipped[:, 0], (expected < low) | (expected > high)) and clipped.any()
    assert (local[:, 0] == NUMBER).all() and values.dtype == np.float32


def test_missing_number_gets_its_own_index_with_value_one():
    encoder = fitted("standardize", np.arange(10.0))
    local, values, clipped = encoder.encode(pd.DataFrame({"x": [np.nan, 4.5, None]}))
    assert local[:, 0].tolist() == [NUMBER_MISSING, NUMBER, NUMBER_MISSING]
    assert values[:, 0].tolist() == [1.0, 0.0, 1.0] and not clipped.any()
    assert encoder.fields()[0] == data.Field("x", 2, oov=False, kind="numeric")


def test_a_constant_column_has_scale_one():
    local, values, _ = fitted("standardize", np.full(20, 3.0)).encode(pd.DataFrame({"x": [3.0, 4.0]}))
    assert values[:, 0].tolist() == [0.0, 1.0]


def test_bad_field_spec_options_are_one_line_errors():
    with pytest.raises(ValueError, match=r"field 'x': scaling must be one of \('standardize', 'minmax', 'log1p'\), "
                                         r"got 'zscore'"):
        FieldSpec("x", "value", scaling="zscore")
    with pytest.raises(ValueError, match="field 'x': num_bins must be None or an integer >= 2, got 1"):
        FieldSpec("x", "quantile", num_bins=1)


def test_encoder_save_and_load_keeps_the_scalers(tmp_path):
    specs = [FieldSpec("a", "value", scaling="log1p"), FieldSpec("b", "quantile", num_bins=3), FieldSpec("c")]
    frame = pd.DataFrame({"a": heavy(100), "b": np.arange(100.0), "c": np.arange(100) % 4})
    encoder = Encoder(specs).fit(frame)
    encoder.save(tmp_path)
    again = Encoder.load(tmp_path)
    for mine, theirs in zip(encoder.encode(frame), again.encode(frame), strict=True):
        assert np.array_equal(mine, theirs)
    assert again.vocab_sizes["b"] == 2 + 3 and [f.kind for f in again.fields()] == ["numeric", "bucketed",
                                                                                      "categorical"]


# ---------------------------------------------------------------- the table loader

def numeric_table(path, n=600, seed=0):
    rng = np.random.default_rng(seed)
    price = rng.normal(50, 10, n)
    price[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({"label": (rng.random(n) < 0.3).astype(int), "city": rng.choice(["a", "b", "c"], n),
                          "price": price, "visits": heavy(n, seed + 1).round(), "age": rng.integers(18, 80, n)})
    frame.to_csv(path, index=False)
    return frame


def rows(index, value) -> Counter:
    """The (indices, values) rows as a multiset."""
    return Counter(tuple(i) + tuple(v) for i, v in zip(index.tolist(), value.tolist(), strict=True))


def load_table(path, **options):
    base = dict(path=str(path), categorical=["city"], numeric=["price", "visits", "age"], min_count=1)
    return data.load("table", **(base | options))


def test_table_values_are_fitted_on_train_only_with_the_audit(tmp_path):
    frame = numeric_table(tmp_path / "t.csv")
    d = load_table(tmp_path / "t.csv", numeric_as={"price": "value", "visits": "value", "age": 5},
                   scaling={"visits": "log1p"})
    assert [f.kind for f in d.schema.fields] == ["categorical", "numeric", "numeric", "bucketed"]
    assert d.info["vocab_size"]["age"] == 2 + 5 and d.schema.has_values
    # the training rows' prices, recovered from the split the pipeline assigned
    split = data.splits.assign_splits(np.arange(1, len(frame) + 1), (0.8, 0.1, 0.1), 0)
    train_price = frame.price.to_numpy()[split == 0]
    stats = d.info["numeric"]["price"]
    assert stats["mean"] == pytest.approx(np.nanmean(train_price))
    assert stats["std"] == pytest.approx(np.nanstd(train_price))
    for s, name in enumerate(("train", "val", "test")):
        rows = frame.price.to_numpy()[split == s]
        assert stats["missing_rate"][name] == pytest.approx(np.isnan(rows).mean(), abs=1e-5)
        values = getattr(d, name).values[:, 1].numpy()
        expected = np.where(np.isnan(rows), 1.0, (rows - np.nanmean(train_price)) / np.nanstd(train_price))
        np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-5)
    assert (d.train.values[:, [0, 3]] == 1).all()
    assert "log1p" in d.info["numeric"]["visits"]["scaling"] and d.info["numeric"]["visits"]["clip"] == [-5, 5]
    assert set(d.info["oov_rate"]["train"]) == {"city", "age"}


def test_a_val_or_test_number_changes_nothing_in_the_fit(tmp_path):
    frame = numeric_table(tmp_path / "t.csv")
    split = data.splits.assign_splits(np.arange(1, len(frame) + 1), (0.8, 0.1, 0.1), 0)
    frame.loc[split == 2, "price"] = 1e6
    frame.to_csv(tmp_path / "u.csv", index=False)
    before = load_table(tmp_path / "t.csv", numeric_as="value").info["numeric"]["price"]
    after = load_table(tmp_path / "u.csv", numeric_as="value")
    assert after.info["numeric"]["price"]["mean"] == before["mean"]
    assert after.info["numeric"]["price"]["clipped_share"]["test"] > 0.8
    assert after.info["numeric"]["price"]["clipped_share"]["train"] == before["clipped_share"]["train"]


def test_values_read_back_the_same_in_memory_memory_mapped_and_from_the_cache(tmp_path):
    numeric_table(tmp_path / "t.csv")
    memory = load_table(tmp_path / "t.csv", numeric_as="value", storage="memory")
    mapped = load_table(tmp_path / "t.csv", numeric_as="value", storage="mmap")
    assert memory.info["cache"] == "miss" and mapped.info["cache"] == "hit"
    assert torch.equal(memory.test.values, torch.as_tensor(mapped.test.values))
    for split in ("train", "test"):
        batches = [list(data.batches(getattr(d, split), 64)) for d in (memory, mapped)]
        for (a, ya), (b, yb) in zip(*batches, strict=True):
            assert isinstance(a, Features) and isinstance(b, Features)
            assert torch.equal(a.index, b.index) and torch.equal(a.value, b.value) and torch.equal(ya, yb)
    shuffled = list(data.batches(mapped.train, 50, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert rows(torch.cat([x.index for x, _ in shuffled]), torch.cat([x.value for x, _ in shuffled])) == rows(
        memory.train.x, memory.train.values)


def test_bins_and_values_are_cached_apart_and_bins_carry_no_values(tmp_path):
    numeric_table(tmp_path / "t.csv")
    binned = load_table(tmp_path / "t.csv")
    valued = load_table(tmp_path / "t.csv", numeric_as="value")
    assert binned.train.values is None and not binned.schema.has_values and valued.info["cache"] == "miss"
    assert not list(Path(binned.info["cache_dir"]).glob("*_values.npy"))
    assert len(list(Path(valued.info["cache_dir"]).glob("*_values.npy"))) == 3
    assert torch.equal(binned.train.y, valued.train.y)
    assert load_table(tmp_path / "t.csv", numeric_as="value", scaling="minmax").info["cache"] == "miss"


@pytest.mark.parametrize(("options", "message"), [
    ({"numeric_as": "vals"}, "table: numeric_as must be 'bins', 'value', an integer bin count >= 2, or a dict "
                             "{column: one of those}; got 'vals'"),
    ({"numeric_as": {"price": 1}}, "got 1"),
    ({"numeric_as": {"prize": "value", "cost": "bins"}},
     r"table: numeric_as names unknown column\(s\) \['cost', 'prize'\]; the numeric columns are "
     r"\['price', 'visits', 'age'\]"),
    ({"scaling": "zscore"}, r"table: scaling must be one of \('standardize', 'minmax', 'log1p'\), got 'zscore'"),
    ({"numeric_as": {"price": "value"}, "scaling": {"visits": "log1p"}},
     r"table: scaling names column\(s\) \['visits'\] that are not kept as values"),
])
def test_bad_numeric_options_are_one_line_errors(tmp_path, options, message):
    numeric_table(tmp_path / "t.csv")
    with pytest.raises(ValueError, match=message):
        load_table(tmp_path / "t.csv", **options)


# ---------------------------------------------------------------- criteo and MovieLens presets

def test_criteo_integers_as_log1p_values_or_bars_log_buckets(tmp_path):
    path = str(write_lines(tmp_path / "train.txt", criteo_rows()))
    bars = data.load("criteo", path=path, min_count=1)
    valued = data.load("criteo", path=path, min_count=1, numeric_as="value")
    assert {f.kind for f in bars.schema.fields[:13]} == {"bucketed"} and bars.train.values is None
    assert {f.kind for f in valued.schema.fields[:13]} == {"numeric"}
    assert valued.info["numeric"]["I1"]["scaling"] == "log1p" and torch.equal(bars.test.y, valued.test.y)
    assert 0 < valued.info["numeric"]["I1"]["missing_rate"]["train"] < 0.2


def test_ml100k_age_as_a_value_and_the_default_unchanged(tmp_path):
    folder = str(write_grouplens(tmp_path / "gl"))
    default = data.load("ml100k", path=folder, min_count=1)
    age = data.load("ml100k", path=folder, min_count=1, numeric_as={"age": "value"})
    assert default.schema.fields[1].kind == "bucketed" and default.info["vocab_size"]["age"] == 2 + 8
    assert age.schema.fields[1] == data.Field("age", 2, kind="numeric")
    assert age.schema.fields[6].kind == "bucketed" and list(age.info["numeric"]) == ["age"]
    assert torch.equal(default.train.x[:, 0], age.train.x[:, 0]) and age.train.values[:, 0].eq(1).all()
    implicit = data.load("ml100k-implicit", path=folder, min_count=1, numeric_as={"age": "value"})
    assert implicit.schema.has_values
    with pytest.raises(ValueError, match=r"ml100k: numeric_as names unknown column\(s\) \['height'\]"):
        data.load("ml100k", path=folder, numeric_as={"height": "value"})


# ---------------------------------------------------------------- synthetic-numeric

def one_hot(split, num_features):
    n, f = split.x.shape
    return scipy.sparse.csr_matrix((np.ones(n * f), split.x.numpy().ravel(), np.arange(0, n * f + 1, f)),
                                   shape=(n, num_features))


def test_synthetic_numeric_values_and_bins_are_paired_and_binning_loses_to_the_oracle(tmp_cache):
    values = data.load("synthetic-numeric")
    bins = data.load("synthetic-numeric", numeric_as="bins")
    assert [f.kind for f in values.schema.fields].count("numeric") == 7 and not bins.schema.has_values
    assert {f.vocab_size for f in bins.schema.fields[3:]} == {2 + 10} and 79_000 <= len(values.train) <= 81_000
    for split in ("train", "val", "test"):
        a, b = getattr(values, split), getattr(bins, split)
        assert torch.equal(a.y, b.y) and torch.equal(a.prob, b.prob) and torch.equal(a.x[:, :3], b.x[:, :3])
    assert 0.15 < values.train.positive_rate < 0.25
    assert values.info["numeric"]["spend"]["missing_rate"]["train"] == pytest.approx(0.1, abs=0.01)
    oracle = roc_auc_score(values.test.y, values.test.prob)
    linear = LogisticRegression(max_iter=2000).fit(one_hot(bins.train, bins.schema.num_features), bins.train.y)
    binned = roc_auc_score(bins.test.y, linear.predict_proba(one_hot(bins.test, bins.schema.num_features))[:, 1])
    assert oracle > binned + 0.05


def test_synthetic_numeric_is_a_function_of_its_seed(tmp_path, monkeypatch):
    first = data.load("synthetic-numeric", rows=2000)
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "other"))
    again = data.load("synthetic-numeric", rows=2000)
    other = data.load("synthetic-numeric", rows=2000, seed=1)
    assert torch.equal(first.train.values, again.train.values) and torch.equal(first.test.prob, again.test.prob)
    assert not torch.equal(first.train.y[:500], other.train.y[:500])
    with pytest.raises(ValueError, match="synthetic-numeric: the rows are drawn, not read; path must be None"):
        data.load("synthetic-numeric", path="x.csv")


# ---------------------------------------------------------------- libFFM / libSVM text

def ffm_lines(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [f"{int(i % 3 == 0)} 0:{rng.integers(0, 4)}:1 2:{rng.integers(0, 3)}:{rng.uniform(0.1, 2):.3f}"
            + ("" if i % 5 == 0 else f" 1:{rng.integers(0, 6)}:0.5") for i in range(n)]


def test_libffm_fields_indices_and_values(tmp_path):
    lines = ffm_lines()
    (tmp_path / "a.ffm").write_text("\n".join(lines) + "\n")
    d = data.load("libffm", path=str(tmp_path / "a.ffm"), min_count=1)
    assert d.schema.names == ("field0", "field1", "field2") and d.schema.has_values
    assert all(f.valued and f.kind == "categorical" and f.oov for f in d.schema.fields)
    split = data.splits.assign_splits(np.arange(1, len(lines) + 1), (0.8, 0.1, 0.1), 0)
    test_lines = [line.split() for line, s in zip(lines, split, strict=True) if s == 2]
    expected_f2 = [float(t[2].split(":")[2]) for t in test_lines]
    expected_f1 = [0.5 if len(t) == 4 else 1.0 for t in test_lines]  # field 1 absent: missing, value 1
    np.testing.assert_allclose(d.test.values[:, 2].numpy(), expected_f2, rtol=1e-6)
    assert d.test.values[:, 1].tolist() == expected_f1 and (d.test.values[:, 0] == 1).all()
    missing_f1 = d.test.x[:, 1] - d.schema.offsets[1] == 1
    assert missing_f1.tolist() == [len(t) == 3 for t in test_lines]
    assert d.test.y.tolist() == [float(t[0]) for t in test_lines]


def test_libsvm_and_all_ones_values_carry_nothing(tmp_path):
    (tmp_path / "a.svm").write_text("".join(f"{'+1' if i % 2 else '-1'} 3:1 {7 if i % 3 else 5}:1\n"
                                            for i in range(200)))
    d = data.load("libffm", path=str(tmp_path / "a.svm"), format="svm", min_count=1)
    assert d.schema.names == ("i3", "i5", "i7") and not d.schema.has_values and d.train.values is None
    assert d.info["positive_rate"]["train"] == pytest.approx(0.5, abs=0.1)


def test_libffm_bad_lines_name_the_file_and_line(tmp_path):
    lines = ffm_lines()
    lines[9] = "1 0:1:1 0:2:1"
    lines[20] = "0 0:1:x"
    path = tmp_path / "a.ffm"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(data.DataError, match=r"a\.ffm, line 10: two features of one field: field 0 appears twice"):
        data.load("libffm", path=str(path))
    skipped = data.load("libffm", path=str(path), on_bad_rows="skip")
    assert sum(skipped.info["rows"].values()) == len(lines) - 2
    assert skipped.info["dropped"]["reasons"]["malformed feature"]["first"] == [21]
    with pytest.raises(ValueError, match=r"libffm: format must be one of \['ffm', 'svm'\], got 'csv'"):
        data.load("libffm", path=str(path), format="csv")
