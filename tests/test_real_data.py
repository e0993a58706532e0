"""Real-data layer: encoding rules, caching, audits and bad input, on tiny files in every raw format.

Every test writes its files under ``tmp_path`` and uses a temporary cache; the end-to-end test
on the real MovieLens-100K reads the raw files from the user's cache, and runs only when they have
been fetched.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import data
from data.encoding import MISSING, OOV, Encoder, FieldSpec
from data.raw import DataError
from data.sources import criteo, movielens, text
from data.splits import assign_splits

REAL_CACHE = Path(os.environ.get("CTRBENCH_CACHE") or Path.home() / ".cache" / "ctrbench")


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CTRBENCH_CACHE", str(cache))
    for var in ("CTRBENCH_ML100K", "CTRBENCH_CRITEO", "CTRBENCH_AVAZU", "CTRBENCH_TABLE"):
        monkeypatch.delenv(var, raising=False)
    return cache


def same(a: data.Dataset, b: data.Dataset) -> bool:
    return a.schema == b.schema and all(
        torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(getattr(a, s).y, getattr(b, s).y)
        for s in ("train", "val", "test")
    )


# ---------------------------------------------------------------- raw files

def movielens_tables(num_users=30, num_movies=40, per_user=20, seed=0):
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({
        "user_id": np.arange(1, num_users + 1), "age": rng.integers(15, 70, num_users),
        "gender": rng.choice(["M", "F"], num_users),
        "occupation": rng.choice(["writer", "other", "none"], num_users),
        "zip_code": rng.choice(["85711", "94043", "T8H1N", "32067"], num_users),
    })
    genres = rng.random((num_movies, len(movielens.GENRES))) < 0.15
    items = pd.DataFrame({
        "movie_id": np.arange(1, num_movies + 1),
        "movie_title": [f"Café {i} (1995)" for i in range(num_movies)],
        "release_date": [f"01-Jan-{1950 + i}" for i in range(num_movies)],
        "video_release_date": np.nan, "IMDb_URL": "http://example.org",
        **{g: genres[:, j].astype(np.int64) for j, g in enumerate(movielens.GENRES)},
    })
    items.loc[3, "release_date"] = None
    movies = [rng.choice(num_movies, per_user, replace=False) + 1 for _ in range(num_users)]
    ratings = pd.DataFrame({"user_id": np.repeat(np.arange(1, num_users + 1), per_user),
                            "movie_id": np.concatenate(movies)})
    ratings["rating"] = rng.integers(1, 6, len(ratings))
    ratings["timestamp"] = 881250949 + rng.integers(0, 10**6, len(ratings))
    return ratings.iloc[rng.permutation(len(ratings))].reset_index(drop=True), users, items


def write_grouplens(folder: Path, tables=None) -> Path:
    ratings, users, items = tables or movielens_tables()
    folder.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(folder / "u.data", sep="\t", header=False, index=False)
    users.to_csv(folder / "u.user", sep="|", header=False, index=False)
    items.to_csv(folder / "u.item", sep="|", header=False, index=False, encoding="latin-1")
    return folder


def write_widedeep(folder: Path, tables=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in zip(("ratings", "users", "items"), tables or movielens_tables(), strict=True):
        frame.to_parquet(folder / movielens.WIDEDEEP_FILES[table], compression="brotli", index=False)
    return folder


def criteo_rows(n=300, seed=0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ints = [str(v) if v > -3 else "" for v in rng.integers(-3, 40, 13)]
        cats = [f"{v:08x}" if v else "" for v in rng.integers(0, 6, 26)]
        rows.append([str(int(i % 3 == 0)), *ints, *cats])
    return rows


def write_lines(path: Path, rows, sep="\t") -> Path:
    path.write_text("".join(sep.join(r) + "\n" for r in rows))
    return path


def write_avazu(path: Path, n=200, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(n), "click": np.arange(n) % 4 == 0,
        "hour": rng.choice(["14102100", "14102113", "14102523"], n),
        "C1": rng.choice(["1005", "1002"], n), "site_id": rng.choice(["1fbe01fe", "85f751fd", ""], n),
        "device_type": rng.choice([0, 1], n),
    })
    frame["click"] = frame.click.astype(int)
    frame.to_csv(path, index=False)
    return path


def table_frame(n=200, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "clicked": np.where(np.arange(n) % 3 == 0, "yes", "no"),
        "city": rng.choice(["paris", "rome", "oslo", "lima"], n),
        "price": rng.normal(10, 3, n).round(2),
    })


# ---------------------------------------------------------------- encoding rules

def test_vocabulary_from_train_with_min_count_oov_and_missing():
    train = pd.DataFrame({"c": ["a"] * 3 + ["b"] * 2 + ["rare", None, ""]})
    encoder = Encoder([FieldSpec("c")], min_count=2).fit(train)
    assert encoder.vocab_sizes == {"c": 4}  # OOV, missing, a, b
    local = encoder.transform(pd.DataFrame({"c": ["a", "b", "rare", "unseen", None, ""]}))[:, 0]
    assert local.tolist() == [2, 3, OOV, OOV, MISSING, MISSING]


def test_numbers_and_strings_are_the_same_category():
    encoder = Encoder([FieldSpec("c")]).fit(pd.DataFrame({"c": [7, 7, 8]}))
    assert encoder.transform(pd.DataFrame({"c": ["7", "8"]}))[:, 0].tolist() == [2, 3]


def test_hashing_of_large_fields():
    train = pd.DataFrame({"big": [f"v{i}" for i in range(100)], "small": ["x", "y"] * 50})
    encoder = Encoder([FieldSpec("big"), FieldSpec("small")], hash_buckets=8).fit(train)
    assert encoder.hashed == {"big": 8} and encoder.vocab_sizes == {"big": 10, "small": 4}
    local = encoder.transform(pd.DataFrame({"big": ["v1", "never seen", None], "small": ["x", "z", "y"]}))
    assert 2 <= local[0, 0] < 10 and 2 <= local[1, 0] < 10 and local[2, 0] == MISSING
    assert local[:, 1].tolist() == [2, OOV, 3]


def test_criteo_log_buckets():
    values = pd.Series([-1, 0, 1, 2, 3, 4, 5, 7, 8, 100, 1000, None], dtype="float64")
    encoder = Encoder([FieldSpec("i", "log_bucket")]).fit(pd.DataFrame({"i": values}))
    local = encoder.transform(pd.DataFrame({"i": values}))[:, 0]
    # buckets floor(ln(x)^2): 3 -> 1, 4 -> 1, 5 -> 2, 7 -> 3, 8 -> 4, 100 -> 21, 1000 -> 47
    assert local[4] == local[5] and len(set(local[[4, 6, 7, 8, 9, 10]])) == 6
    assert len(set(local[:4])) == 4 and not set(local[:4]) & set(local[4:11])  # raw 1 is not bucket 1
    assert local[-1] == MISSING and encoder.vocab_sizes["i"] == 2 + 10


def test_quantile_bins_fitted_on_train():
    encoder = Encoder([FieldSpec("x", "quantile")], num_bins=4).fit(pd.DataFrame({"x": np.arange(100.0)}))
    assert encoder.vocab_sizes == {"x": 2 + 4}
    local = encoder.transform(pd.DataFrame({"x": [-50.0, 10.0, 60.0, 1e9, np.nan]}))[:, 0]
    assert local.tolist() == [2, 2, 4, 5, MISSING]


def test_encoder_save_and_load(tmp_path):
    train = pd.DataFrame({"c": list("aabbc"), "x": [1.0, 2, 3, 4, np.nan]})
    encoder = Encoder([FieldSpec("c"), FieldSpec("x", "quantile")], min_count=2, num_bins=3).fit(train)
    encoder.save(tmp_path)
    again = Encoder.load(tmp_path)
    new = pd.DataFrame({"c": ["a", "c", "z", None], "x": [0.5, 2.5, 9.0, np.nan]})
    assert np.array_equal(encoder.transform(new), again.transform(new))
    assert again.vocab_sizes == encoder.vocab_sizes


def test_split_assignment_is_seeded_and_per_record():
    ids = np.arange(1, 20001)
    split = assign_splits(ids, (0.8, 0.1, 0.1), seed=0)
    assert np.array_equal(split[5000:], assign_splits(ids[5000:], (0.8, 0.1, 0.1), seed=0))
    assert not np.array_equal(split, assign_splits(ids, (0.8, 0.1, 0.1), seed=1))
    assert np.allclose(np.bincount(split) / len(ids), [0.8, 0.1, 0.1], atol=0.01)


# ---------------------------------------------------------------- MovieLens

def test_ml100k_both_raw_forms_give_the_same_data_set(tmp_path):
    tables = movielens_tables()
    grouplens = data.load("ml100k", path=str(write_grouplens(tmp_path / "gl", tables)), min_count=1)
    widedeep = data.load("ml100k", path=str(write_widedeep(tmp_path / "wd", tables)), min_count=1)
    assert same(grouplens, widedeep)
    ratings = tables[0]
    info = grouplens.info
    assert sum(info["rows"].values()) == len(ratings)
    positives = sum(len(s) * s.positive_rate for s in grouplens.splits().values())
    assert positives == pytest.approx((ratings.rating >= 4).sum())
    assert grouplens.schema.names == tuple(f.name for f in movielens.fields(movielens.NumericOptions(), "ml100k"))
    assert info["vocab_size"]["user_id"] == 2 + 30 and info["missing"]["release_year"] > 0
    assert set(info["oov_rate"]["test"]) == set(grouplens.schema.names) and "rating >= 4" in info["label"]
    assert grouplens.train.x.dtype == torch.int64 and grouplens.train.y.dtype == torch.float32


def test_ml100k_implicit_negatives(tmp_path):
    folder = write_grouplens(tmp_path / "gl")
    ratings = movielens_tables()[0]
    d = data.load("ml100k-implicit", path=str(folder), neg_ratio=2, min_count=1)
    total = sum(d.info["rows"].values())
    positives = sum(len(s) * s.positive_rate for s in d.splits().values())
    assert total == 3 * len(ratings) and positives == pytest.approx(len(ratings))
    rows = movielens._with_negatives(ratings.set_index(ratings.index + 1), pd.Index(range(1, 41)), 1, seed=3)
    negatives = rows[rows.label == 0]
    rated = set(zip(ratings.user_id, ratings.movie_id, strict=True))
    assert not set(zip(negatives.user_id, negatives.movie_id, strict=True)) & rated
    assert not negatives.duplicated(["user_id", "movie_id"]).any()  # 20 rated, 20 unrated: exactly enough
    assert (negatives.user_id.value_counts() == 20).all()
    again = movielens._with_negatives(ratings.set_index(ratings.index + 1), pd.Index(range(1, 41)), 1, seed=3)
    assert rows.equals(again)


def test_ml100k_bad_rating_rows(tmp_path):
    folder = write_grouplens(tmp_path / "gl")
    lines = (folder / "u.data").read_text().splitlines()
    lines[4] = "999\t1\t5\t881250949"  # unknown user
    lines[9] = "1\t2\tfive\t881250949"
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"u\.data, line 5: user_id not in u\.user: user_id 999"):
        data.load("ml100k", path=str(folder))
    d = data.load("ml100k", path=str(folder), on_bad_rows="skip")
    reasons = d.info["dropped"]["reasons"]
    assert d.info["dropped"]["rows"] == 2 and sum(d.info["rows"].values()) == len(lines) - 2
    assert reasons["user_id not in u.user"]["first"] == [5]
    assert reasons["unparsable number in column 'rating'"]["first"] == [10]


def test_ml100k_not_found_says_how_to_fetch_and_env_var_is_used(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="python -m data.fetch ml100k"):
        data.load("ml100k")
    monkeypatch.setenv("CTRBENCH_ML100K", str(write_widedeep(tmp_path / "wd")))
    assert sum(data.load("ml100k").info["rows"].values()) == 600


# ---------------------------------------------------------------- Criteo, Avazu, tables

def test_criteo_reads_in_blocks(tmp_path, monkeypatch):
    path = write_lines(tmp_path / "train.txt", criteo_rows())
    whole = data.load("criteo", path=str(path), min_count=2)
    assert whole.schema.num_fields == 39 and sum(whole.info["rows"].values()) == 300
    assert whole.info["missing"]["I1"] > 0 and whole.info["missing"]["C1"] > 0
    assert "pass1" not in {p.name for p in Path(whole.info["cache_dir"]).iterdir()}  # the kept chunks are gone
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.setattr(text, "BLOCK_BYTES", 4000)
    assert same(whole, data.load("criteo", path=str(path), min_count=2))
    sample = data.load("criteo", path=str(path), min_count=2, rows=120)
    assert sum(sample.info["rows"].values()) == 120


def test_fast_and_careful_text_paths_read_the_same_records_and_line_numbers(tmp_path, monkeypatch):
    lines = ["\t".join(r) for r in criteo_rows()]
    lines.insert(150, "")  # line 151 is blank: the block holding it takes the careful path
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines))  # and the last line has no line end
    monkeypatch.setattr(text, "BLOCK_BYTES", 4000)
    fast_blocks = []
    real_fast = text._fast

    def counted(*args, **kwargs):
        result = real_fast(*args, **kwargs)
        fast_blocks.append(result is not None)
        return result

    def read():
        chunks = text.read_blocks(path, columns=criteo.COLUMNS, sep="\t", header=False,
                                  numbers=tuple(criteo.INTEGER_COLUMNS))
        return pd.concat([c.frame for c in chunks])

    monkeypatch.setattr(text, "_fast", counted)
    fast = read()
    assert any(fast_blocks) and not all(fast_blocks)
    monkeypatch.setattr(text, "_fast", lambda *args, **kwargs: None)
    careful = read()
    pd.testing.assert_frame_equal(fast, careful)
    assert fast.index.tolist() == [*range(1, 151), *range(152, 302)]


def test_every_raw_file_loader_takes_the_one_options_type_and_rows_keeps_the_first_records(tmp_path):
    common = [f.name for f in dataclasses.fields(data.LoadOptions)]
    for name in ("criteo", "avazu", "table", "ml100k", "ml100k-implicit"):
        assert data.options(name)[: len(common)] == common
    tables = movielens_tables()
    folder = str(write_grouplens(tmp_path / "gl", tables))
    for name in ("ml100k", "ml100k-implicit"):
        whole = data.load(name, path=folder, min_count=1)
        first = data.load(name, path=folder, min_count=1, rows=250)
        assert sum(first.info["rows"].values()) == sum(whole.info["rows"].values()) * 250 // len(tables[0])
        assert first.info["options"]["rows"] == 250 and "path" not in first.info["options"]
    with pytest.raises(ValueError, match="criteo: rows must be None or an integer >= 1, got 0"):
        data.load("criteo", path=str(write_lines(tmp_path / "train.txt", criteo_rows())), rows=0)


def test_avazu_hour_expanded_and_id_dropped(tmp_path):
    d = data.load("avazu", path=str(write_avazu(tmp_path / "train.csv")), min_count=1)
    assert d.schema.names == ("C1", "site_id", "device_type", "hour_of_day", "weekday")
    assert d.info["vocab_size"]["hour_of_day"] == 2 + 3  # 0, 13 and 23 o'clock
    assert d.info["vocab_size"]["weekday"] == 2 + 2  # 2014-10-21 Tuesday, 2014-10-25 Saturday
    assert d.info["missing"]["site_id"] > 0


def test_table_csv_and_parquet_agree_with_label_spellings(tmp_path):
    frame = table_frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.assign(clicked=frame.clicked == "yes").to_parquet(tmp_path / "t.parquet")
    options = {"label": "clicked", "categorical": ["city"], "numeric": ["price"], "min_count": 1,
               "num_bins": 4}
    from_csv = data.load("table", path=str(tmp_path / "t.csv"), **options)
    from_parquet = data.load("table", path=str(tmp_path / "t.parquet"), **options)
    assert same(from_csv, from_parquet)
    assert from_csv.info["vocab_size"] == {"city": 6, "price": 6}
    assert sum(from_csv.info["rows"].values()) == 200


def test_quoted_csv_fields(tmp_path):
    rows = ['label,name,kind'] + [f'{i % 2},"Smith, {i % 3}","a\nb"' for i in range(60)]
    (tmp_path / "q.csv").write_text("\n".join(rows) + "\n")
    d = data.load("table", path=str(tmp_path / "q.csv"), categorical=["name", "kind"], min_count=1)
    assert d.info["vocab_size"] == {"name": 5, "kind": 3} and sum(d.info["rows"].values()) == 60


# ---------------------------------------------------------------- cache

def test_second_load_hits_the_cache_and_changes_miss_it(tmp_path, tmp_cache):
    path = write_lines(tmp_path / "train.txt", criteo_rows())
    first = data.load("criteo", path=str(path))
    second = data.load("criteo", path=str(path))
    assert (first.info["cache"], second.info["cache"]) == ("miss", "hit") and same(first, second)
    assert Path(second.info["cache_dir"]).parent == tmp_cache / "processed"
    assert data.load("criteo", path=str(path), min_count=3).info["cache"] == "miss"
    assert "changed_files" not in first.info
    write_lines(path, criteo_rows(seed=1))
    with pytest.warns(UserWarning, match=f"criteo: {path} changed since it was cached"):
        changed = data.load("criteo", path=str(path))
    assert changed.info["cache"] == "miss" and not same(first, changed)
    assert changed.info["changed_files"] == [str(path)]
    saved = Encoder.load(Path(changed.info["cache_dir"]))
    assert saved.vocab_sizes == changed.info["vocab_size"]


def test_same_options_give_the_same_data_and_the_seed_matters(tmp_path, monkeypatch):
    path = write_avazu(tmp_path / "train.csv")
    a = data.load("avazu", path=str(path))
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "fresh"))
    b = data.load("avazu", path=str(path))
    assert b.info["cache"] == "miss" and same(a, b)
    assert a.info["checksum"] == b.info["checksum"]
    assert not same(a, data.load("avazu", path=str(path), seed=1))


# ---------------------------------------------------------------- bad input

def test_missing_file_and_missing_path(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        data.load("criteo", path=str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="CTRBENCH_AVAZU"):
        data.load("avazu")


def test_missing_columns_are_named(tmp_path):
    table_frame().to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"t\.csv: no column\(s\) \['label'\]"):
        data.load("table", path=str(tmp_path / "t.csv"), categorical=["city"])
    with pytest.raises(DataError, match=r"no column\(s\) \['town'\]"):
        data.load("table", path=str(tmp_path / "t.csv"), label="clicked", categorical=["town"])
    table_frame().to_csv(tmp_path / "avazu.csv", index=False)
    with pytest.raises(DataError, match=r"no column\(s\) \['click', 'hour'\]"):
        data.load("avazu", path=str(tmp_path / "avazu.csv"))


def test_empty_files(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="no data rows"):
        data.load("criteo", path=str(tmp_path / "empty.txt"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        data.load("table", path=str(tmp_path / "empty.csv"), categorical=["city"])
    (tmp_path / "header.csv").write_text("label,city\n")
    with pytest.raises(DataError, match="no data rows"):
        data.load("table", path=str(tmp_path / "header.csv"), categorical=["city"])


def test_labels_that_are_not_binary(tmp_path):
    frame = table_frame()
    frame.loc[3, "clicked"] = "maybe"
    frame.to_csv(tmp_path / "t.csv", index=False)
    options = {"label": "clicked", "categorical": ["city"]}
    with pytest.raises(DataError, match=r"t\.csv, line 5: label not 0/1 in column 'clicked': value 'maybe'"):
        data.load("table", path=str(tmp_path / "t.csv"), **options)
    d = data.load("table", path=str(tmp_path / "t.csv"), on_bad_rows="skip", **options)
    assert d.info["dropped"]["reasons"]["label not 0/1 in column 'clicked'"]["first"] == [5]


def test_malformed_rows_error_or_skip(tmp_path):
    rows = criteo_rows()
    rows[6] = rows[6][:-1]  # too few columns, line 7
    rows[20] = rows[20] + ["extra"]  # too many, line 21
    rows[30][3] = "abc"  # unparsable integer feature I3, line 31
    rows[40][0] = ""  # missing label, line 41
    path = write_lines(tmp_path / "train.txt", rows)
    expected = r"train\.txt, line 7: wrong number of columns: expected 40 tab-separated columns, found 39"
    with pytest.raises(DataError, match=expected):
        data.load("criteo", path=str(path))
    d = data.load("criteo", path=str(path), on_bad_rows="skip")
    dropped = d.info["dropped"]
    assert dropped["rows"] == 4 and sum(d.info["rows"].values()) == 296
    assert dropped["reasons"]["wrong number of columns"]["first"] == [7, 21]
    assert dropped["reasons"]["unparsable number in column 'I3'"]["first"] == [31]
    assert dropped["reasons"]["missing label in column 'label'"]["first"] == [41]
    rows[6] = rows[20] = rows[40] = criteo_rows(1)[0]
    expected = r"line 31: unparsable number in column 'I3': value 'abc' is not a number"
    with pytest.raises(DataError, match=expected):
        data.load("criteo", path=str(write_lines(path, rows)))


def test_unparsable_avazu_hour(tmp_path):
    path = write_avazu(tmp_path / "train.csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",141021", ",1410xx", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 3: unparsable hour: value '1410xx\d\d'; expected YYMMDDHH"):
        data.load("avazu", path=str(path))


def test_single_class_or_empty_split_names_the_split(tmp_path):
    frame = table_frame().assign(clicked="no")
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="split 'train' has only negatives"):
        data.load("table", path=str(tmp_path / "t.csv"), label="clicked", categorical=["city"])
    table_frame(n=4).to_csv(tmp_path / "small.csv", index=False)
    with pytest.raises(DataError, match=r"split 'val' has only negatives \(1 rows\)"):
        data.load("table", path=str(tmp_path / "small.csv"), label="clicked", categorical=["city"])
    table_frame(n=20).to_csv(tmp_path / "small.csv", index=False)
    with pytest.raises(DataError, match="split 'val' is empty"):
        data.load("table", path=str(tmp_path / "small.csv"), label="clicked", categorical=["city"],
                  split=(0.98, 0.01, 0.01))


def test_unreadable_parquet_and_bad_options(tmp_path):
    (tmp_path / "t.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        data.load("table", path=str(tmp_path / "t.parquet"), categorical=["city"])
    path = write_lines(tmp_path / "train.txt", criteo_rows())
    with pytest.raises(ValueError, match="split must be three positive fractions"):
        data.load("criteo", path=str(path), split=(0.5, 0.5, 0.0))
    with pytest.raises(ValueError, match="on_bad_rows"):
        data.load("criteo", path=str(path), on_bad_rows="ignore")


# ---------------------------------------------------------------- the real MovieLens-100K

def test_real_movielens_100k(tmp_cache, monkeypatch):
    raw = REAL_CACHE / "raw" / "ml-100k"  # read from the user's cache; everything written goes to tmp_cache
    try:
        movielens.find_ml100k(raw)
    except DataError:
        pytest.skip(f"MovieLens-100K is not in {raw}; run `python -m data.fetch ml100k`")
    monkeypatch.setenv("CTRBENCH_ML100K", str(raw))
    explicit = data.load("ml100k")
    assert sum(explicit.info["rows"].values()) == 100_000
    assert explicit.info["vocab_size"]["user_id"] == 2 + 943
    assert explicit.info["oov_rate"]["test"]["user_id"] == 0
    assert 0.5 < explicit.info["positive_rate"]["train"] < 0.6
    assert explicit.info["dropped"]["rows"] == 0 and explicit.schema.num_fields == 10
    implicit = data.load("ml100k-implicit")
    assert sum(implicit.info["rows"].values()) == 200_000
    assert implicit.info["vocab_size"]["movie_id"] == 2 + 1682
    assert all(abs(rate - 0.5) < 0.01 for rate in implicit.info["positive_rate"].values())
    assert Path(explicit.info["cache_dir"]).is_relative_to(tmp_cache)
