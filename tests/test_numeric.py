"""Field:index:value data through the engine: fit, predict, 2 gloo ranks, latency, ONNX, the harness, and the
scikit-learn reference row ``lr_sklearn`` (the ``fit_by_solver`` hook)."""

import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from numeric_data import SCHEMA, planted_numeric
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from test_distributed import _join

import data
import models
from benchmarks import export
from benchmarks.engine.distributed import Placement
from benchmarks.engine.fit import fit, predict
from benchmarks.engine.latency import measure_latency, random_batch
from benchmarks.harness.config import parse_config
from benchmarks.harness.records import load_records
from benchmarks.harness.sweep import run_experiment
from models.lr_sklearn import design_matrix

if "planted-numeric" not in data.available():
    data.register("planted-numeric")(planted_numeric)


@pytest.fixture(scope="module")
def numeric():
    return planted_numeric()


@pytest.mark.parametrize("name", ["lr", "ffm", "dcn_v2"])
def test_fit_learns_a_planted_numeric_effect(numeric, name):
    torch.manual_seed(0)
    result = fit(models.build(name, numeric.schema), numeric, max_epochs=3, batch_size=256, lr=0.01, seed=0)
    assert result.test_auc > 0.8  # the oracle reaches 0.845; the numbers alone carry most of it
    assert predict(models.build(name, numeric.schema), numeric.test).shape == (len(numeric.test),)


def test_random_batch_has_numbers_on_numeric_fields_and_latency_takes_features():
    x = random_batch(SCHEMA, 500, seed=3)
    assert isinstance(x, data.Features) and x.shape == (500, SCHEMA.num_fields)
    numeric = [SCHEMA.index("n0"), SCHEMA.index("n1")]
    categorical = [f for f in range(SCHEMA.num_fields) if f not in numeric]
    assert torch.equal(x.value[:, categorical], torch.ones(500, len(categorical)))
    is_number = x.index[:, numeric] == torch.tensor(SCHEMA.offsets)[numeric]
    assert 0.3 < is_number.float().mean() < 0.7 and (x.value[:, numeric][is_number].std() > 0.5)
    assert torch.equal(x.value[:, numeric][~is_number], torch.ones(int((~is_number).sum())))
    assert measure_latency(models.build("fm", SCHEMA), SCHEMA, 64, warmup=1, repeats=2)["median_ms"] > 0


def test_shard_keeps_the_values():
    split = planted_numeric(rows=101).train
    shard = Placement(world_size=2, rank=1).shard(split)
    rows = Placement(world_size=2, rank=1).rows(len(split))
    assert torch.equal(shard.values, split.values[rows.start : rows.stop])
    assert torch.equal(shard.x, split.x[rows.start : rows.stop])


TRAIN = {"batch_size": 256, "max_epochs": 2, "lr": 3e-3, "eval_every": 5, "seed": 0}


def _train(placement):
    dataset = planted_numeric(rows=3_000)
    torch.manual_seed(0)
    model = models.build("fm", dataset.schema)  # no BatchNorm, no dropout: ranks can match one process
    result = fit(model, dataset, placement=placement, **TRAIN)
    return {"state": model.state_dict(), "history": result.history, "test_auc": result.test_auc}


def _rank(rank, world_size, store, out):
    placement = _join(rank, world_size, store)
    result = _train(placement)
    placement.leave()
    if rank == 0:
        torch.save(result | {"left": not dist.is_initialized()}, out)


def test_two_gloo_ranks_with_values_train_as_one_process(tmp_path):
    mp.spawn(_rank, args=(2, tmp_path / "store", tmp_path / "rank0.pt"), nprocs=2)
    two = torch.load(tmp_path / "rank0.pt")
    torch.set_num_threads(1)
    one = _train(Placement())
    torch.set_num_threads(2)
    assert two["left"], "the rank kept its process group: a rank leaving first can abort a peer still inside gloo"
    assert len(two["history"]) == len(one["history"]) > 2
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert two["test_auc"] == pytest.approx(one["test_auc"], abs=1e-6)
    untrained = models.build("fm", SCHEMA).state_dict()
    assert not torch.allclose(one["state"]["first_order.weight.weight"], untrained["first_order.weight.weight"])


def test_onnx_export_of_a_model_on_values_has_index_and_value_inputs(numeric):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = models.build("deepfm", numeric.schema).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    session = export.session(export.to_onnx(model, numeric.schema), threads=1)
    assert [i.name for i in session.get_inputs()] == ["index", "value"]
    x = numeric.test.features()
    assert export.max_abs_difference(model, session, x, batch_size=77) < 1e-5
    scaled = data.Features(x.index, 2 * x.value)  # the values reach the graph: other values, other logits
    served = session.run(None, export.feed(scaled[:32]))[0]
    assert not np.allclose(served, session.run(None, export.feed(x[:32]))[0])
    with torch.no_grad():
        np.testing.assert_allclose(served, model(scaled[:32]).numpy(), atol=1e-5)
    report = export.serve_report(model, numeric, batch_sizes=(3,), repeats=1)
    assert report["test_rows"] == len(numeric.test) and report["max_abs_difference"] < 1e-5


# ---- lr_sklearn: logistic regression fitted by scikit-learn through the same fit -----------------------------


GRID = (0.001, 0.1, 10.0)


@pytest.mark.parametrize("dataset", ["numeric", "categorical"])
def test_lr_sklearn_copies_the_best_c_of_scikit_learn(numeric, small, dataset):
    d = numeric if dataset == "numeric" else data.Dataset("small", small.schema, *(
        data.Split(s.x[:3_000], s.y[:3_000]) for s in (small.train, small.val, small.test)))
    model = models.build("lr_sklearn", d.schema, c_grid=GRID)
    result = fit(model, d)
    (entry,) = result.history
    design = {s: design_matrix(getattr(d, s), d.schema.num_features) for s in ("train", "val", "test")}
    losses, solvers = {}, {}
    for c in GRID:  # the same fits, made here: the chosen C is the one of lowest validation log loss
        solvers[c] = LogisticRegression(C=c, solver="lbfgs", max_iter=1000, tol=1e-6).fit(design["train"], d.train.y)
        losses[c] = log_loss(d.val.y, solvers[c].predict_proba(design["val"])[:, 1])
    best = min(losses, key=losses.get)
    assert entry["solver"]["C"] == best and len(set(losses.values())) == len(GRID)
    assert entry["solver"]["val_logloss_by_C"] == pytest.approx({str(c): v for c, v in losses.items()})
    expected = solvers[best].predict_proba(design["test"])[:, 1]
    np.testing.assert_allclose(result.predictions["test"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(predict(model, d.test).numpy(), expected, atol=1e-5)
    assert (result.epochs, result.steps, result.best_epoch) == (1, 1, 1.0)
    assert result.samples_per_second == pytest.approx(len(d.train) / entry["train_seconds"])


def test_lr_sklearn_records_fits_stopped_by_max_iter_in_one_warning(numeric):
    model = models.build("lr_sklearn", numeric.schema, c_grid=(1e4,), max_iter=2)
    warning = r"lr_sklearn: lbfgs stopped at max_iter=2 .* C=10000.0; raise max_iter"
    with pytest.warns(UserWarning, match=warning) as seen:
        report = model.fit_by_solver(numeric.train, numeric.val)
    assert report["not_converged_C"] == [1e4] and len(seen) == 1  # scikit-learn's own multi-line warning is not shown
    assert models.build("lr_sklearn", numeric.schema, c_grid=(0.1,)).fit_by_solver(
        numeric.train, numeric.val)["not_converged_C"] == []


def test_design_matrix_is_sparse_with_the_values_in_their_columns(numeric):
    m = design_matrix(numeric.val, SCHEMA.num_features)
    assert m.shape == (len(numeric.val), SCHEMA.num_features) and m.nnz == numeric.val.x.numel()
    row = 7
    dense = np.zeros(SCHEMA.num_features)
    dense[numeric.val.x[row].numpy()] = numeric.val.values[row].numpy()
    np.testing.assert_array_equal(m[row].toarray()[0], dense)


@pytest.mark.parametrize("hparams, message", [
    ({"c_grid": ()}, r"c_grid must be a non-empty sequence of positive numbers .*got \(\)"),
    ({"c_grid": (1.0, -2)}, r"c_grid must be .*got \(1.0, -2\)"),
    ({"c_grid": 1.0}, r"c_grid must be .*got 1.0"),
    ({"tol": 0}, "tol must be a positive finite number, got 0"),
])
def test_lr_sklearn_names_a_bad_hyperparameter(hparams, message):
    with pytest.raises(ValueError, match=f"model 'lr_sklearn': {message}"):
        models.build("lr_sklearn", SCHEMA, **hparams)


def test_the_harness_records_lr_sklearn_beside_lr(tmp_path):
    experiment = parse_config({
        "dataset": {"name": "planted-numeric", "options": {"rows": 2_000}}, "run": {"seeds": [0]},
        "train": {"max_epochs": 1, "batch_size": 256}, "latency": {"batch_sizes": [1, 64]},
        "model": [{"name": "lr", "label": "LR"}, {"name": "lr_sklearn", "label": "LR (scikit-learn)",
                                                  "hparams": {"c_grid": [0.1, 1.0]}}]})
    summary = run_experiment(experiment, tmp_path, threads=1)
    assert (summary.ran, summary.failed) == (2, 0)
    record = next(r for r in load_records(tmp_path) if r["label"] == "LR (scikit-learn)")
    assert record["status"] == "ok" and record["key"]["hparams"]["c_grid"] == [0.1, 1.0]
    assert record["history"][0]["solver"]["C"] in (0.1, 1.0) and record["metrics"]["test_auc"] > 0.75
    assert record["latency"]["64"]["median_ms"] > 0 and record["train_samples_per_second"] > 0
    assert json.dumps(record)  # a plain JSON record, like the others
