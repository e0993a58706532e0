import pytest
import torch

import data
from data import Dataset, Field, Schema, Split


def test_offsets_and_global_index():
    schema = Schema([Field("a", 2), Field("b", 7), Field("c", 3, oov=True)])
    assert schema.offsets == (0, 2, 9)
    assert schema.num_fields == 3 and schema.num_features == 12
    assert schema.global_index("b", 6) == 8
    assert schema.oov_index("c") == 9
    assert schema.field_of_feature().tolist() == [0, 0] + [1] * 7 + [2] * 3
    with pytest.raises(ValueError, match="field 'a' has no out-of-vocabulary slot"):
        schema.oov_index("a")
    with pytest.raises(KeyError, match=r"no field 'z'; fields are \['a', 'b', 'c'\]"):
        schema.index("z")
    with pytest.raises(IndexError, match="field 'b': local index 7 outside 0..6"):
        schema.global_index("b", 7)
    assert Schema.from_dict(schema.to_dict()) == schema


def test_schema_errors():
    with pytest.raises(ValueError, match="duplicated: \\['a'\\]"):
        Schema([Field("a", 2), Field("a", 3)])
    with pytest.raises(ValueError, match="Field 'a': vocab_size must be a positive integer, got 0"):
        Field("a", 0)
    with pytest.raises(ValueError, match="OOV slot needs vocab_size >= 2"):
        Field("a", 1, oov=True)


def test_default_synthetic_matches_study_shape():
    d = data.load("synthetic", rows=1000)
    assert (d.schema.num_fields, d.schema.num_features) == (10, 72)
    assert d.sizes() == {"train": 800, "val": 100, "test": 100}
    all_x = torch.cat([d.train.x, d.val.x, d.test.x])
    assert all_x.min() >= 0 and all_x.max() <= 71
    assert d.train.x.dtype == torch.int64 and d.train.y.dtype == torch.float32


def test_synthetic_is_deterministic_and_options_matter():
    a, b = data.load("synthetic", rows=2000, seed=3), data.load("synthetic", rows=2000, seed=3)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        assert torch.equal(getattr(a, split).y, getattr(b, split).y)
    c = data.load("synthetic", rows=2000, seed=4)
    assert not torch.equal(a.train.x, c.train.x)
    d = data.load("synthetic", rows=3000, vocab_sizes=(3, 4, 5), num_pairs=2, num_triples=1,
                  positive_rate=0.2, split=(0.5, 0.25, 0.25))
    assert d.schema.num_features == 12 and d.sizes() == {"train": 1500, "val": 750, "test": 750}
    assert abs(d.train.positive_rate - 0.2) < 0.05
    assert d.info["options"]["positive_rate"] == 0.2 and len(d.info["planted_triples"]) == 1


def test_oracle_auc_is_a_meaningful_ceiling(small):
    from benchmarks.engine.metrics import evaluate

    oracle = evaluate(small.val.y, small.val.prob)["auc"]
    assert 0.70 < oracle < 0.85


@pytest.mark.parametrize("bad, message", [
    ({"rows": 10}, "rows must be >= 30"),
    ({"num_pairs": 46}, "num_pairs must be in 0..45"),
    ({"positive_rate": 1.0}, "positive_rate must be in"),
    ({"split": (0.8, 0.2)}, "split must be three positive fractions"),
])
def test_synthetic_option_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        data.load("synthetic", **bad)


def test_load_errors_list_what_is_accepted():
    with pytest.raises(KeyError, match="unknown data set 'nope'; available: .*synthetic"):
        data.load("nope")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['row'\]; accepted: \['rows'"):
        data.load("synthetic", row=5)


def test_iterator_yields_every_row_once():
    split = Split(torch.arange(1000).view(-1, 1) % 7, torch.zeros(1000))
    split.x = torch.arange(1000).view(-1, 1)
    for shuffle in (False, True):
        seen = torch.cat([x[:, 0] for x, _ in data.batches(split, 64, shuffle=shuffle,
                                                            generator=torch.Generator().manual_seed(1))])
        assert sorted(seen.tolist()) == list(range(1000))
        assert (seen.tolist() == list(range(1000))) is not shuffle
    sizes = [len(y) for _, y in data.batches(split, 300)]
    assert sizes == [300, 300, 300, 100] and data.num_batches(split, 300) == 4


def test_shuffle_is_seeded():
    split = Split(torch.arange(100).view(-1, 1), torch.zeros(100))
    def order(seed):
        return [x[:, 0].tolist() for x, _ in data.batches(split, 10, shuffle=True,
                                                           generator=torch.Generator().manual_seed(seed))]
    assert order(0) == order(0) != order(1)


def _dataset(**split_overrides):
    schema = Schema([Field("age", 3), Field("brand", 4)])
    good = Split(torch.tensor([[0, 3], [2, 6]]), torch.tensor([0.0, 1.0]))
    splits = {"train": good, "val": good, "test": good} | split_overrides
    return Dataset("toy", schema, **splits)


@pytest.mark.parametrize("split, message", [
    (Split(torch.tensor([[0, 3], [2, 6]]), torch.tensor([0.0, 2.0])),
     "toy: split 'val': labels must be 0 or 1, row 1 has label 2.0"),
    (Split(torch.tensor([[0, 3], [3, 6]]), torch.tensor([0.0, 1.0])),
     r"toy: split 'val': field 'age' \(column 0\) row 1 has global index 3, expected 0..2"),
    (Split(torch.tensor([[0, 3], [2, 7]]), torch.tensor([0.0, 1.0])),
     r"field 'brand' \(column 1\) row 1 has global index 7, expected 3..6"),
    (Split(torch.zeros(0, 2, dtype=torch.long), torch.zeros(0)), "split 'val': the split is empty"),
    (Split(torch.tensor([[0], [2]]), torch.tensor([0.0, 1.0])),
     r"x has 1 columns but the schema has 2 fields \['age', 'brand'\]"),
    (Split(torch.tensor([[0.0, 3.0]]), torch.tensor([0.0])), "x must hold integer indices"),
    (Split(torch.tensor([[0, 3], [2, 6]]), torch.tensor([0.0])), "y must be a 1-D tensor with 2 labels"),
])
def test_bad_splits_are_named(split, message):
    with pytest.raises(ValueError, match=message):
        _dataset(val=split)
