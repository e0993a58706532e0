"""ONNX export (benchmarks.export): round trip for every registered model, weights from a record, bad input."""

import json

import pytest
import torch

import data
import models
from benchmarks import export

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TOLERANCE = 1e-5  # largest |ORT - PyTorch| accepted on a logit (fp32 reassociation is ~1e-7)


@pytest.fixture(scope="module")
def tiny():
    return data.load("synthetic", rows=1_000)


@pytest.mark.parametrize("name", models.available())
def test_onnx_runtime_equals_pytorch_for_every_registered_model(tiny, name):
    torch.manual_seed(0)
    model = models.build(name, tiny.schema)
    with torch.no_grad():  # move every parameter off its initial value: a weight the export dropped would show
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    session = export.session(export.to_onnx(model, tiny.schema), threads=1)
    x = tiny.test.x[:64]
    served = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    with torch.no_grad():
        expected = model.eval()(x)
    assert served.shape == expected.shape == (64,)
    assert torch.allclose(served, expected, atol=TOLERANCE, rtol=0)
    assert export.max_abs_difference(model, session, x, batch_size=25) < TOLERANCE  # in uneven batches


def test_max_abs_difference_sees_a_different_model(tiny):
    torch.manual_seed(0)
    model = models.build("fm", tiny.schema)
    session = export.session(export.to_onnx(model, tiny.schema), threads=1)
    x = tiny.test.x[:10]
    with torch.no_grad():
        before = model(x)
        for p in model.parameters():
            p.add_(0.1)
        worst = float((model(x) - before).abs().max())
    assert worst > 0.01
    assert export.max_abs_difference(model, session, x) == pytest.approx(worst, abs=1e-5)


def _record(tmp_path, tiny, model_name="dcn_v2", hparams=None):
    hparams = hparams or {"embed_dim": 4, "hidden_units": [8], "num_layers": 1}
    key = {"model": model_name, "hparams": hparams, "dataset": "synthetic", "dataset_options": {"rows": 1_000}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"label": "DCN-V2 tiny", "key": key, "dataset": {"name": "synthetic"}}))
    torch.manual_seed(1)
    trained = models.build(model_name, tiny.schema, **hparams)
    return path, trained


def test_record_model_loads_the_weights_saved_beside_it(tmp_path, tiny):
    path, trained = _record(tmp_path, tiny)
    torch.save(trained.state_dict(), export.weights_path(path))
    assert export.weights_path(path) == tmp_path / "run.pt"
    torch.manual_seed(2)  # a different initialisation: only the loaded weights can make them equal
    rebuilt = export.model_from_record(json.loads(path.read_text()), tiny.schema, export.weights_path(path))
    x = tiny.test.x[:16]
    with torch.no_grad():
        assert torch.equal(rebuilt(x), trained.eval()(x))


def test_cli_exports_a_record_and_writes_the_onnx_file_and_json(tmp_path, tiny, capsys):
    path, trained = _record(tmp_path, tiny)
    torch.save(trained.state_dict(), export.weights_path(path))
    out, report = tmp_path / "model.onnx", tmp_path / "serve.json"
    assert export.main([str(path), "--out", str(out), "--json", str(report), "--threads", "1", "--repeats", "1",
                        "--batch-sizes", "1,8"]) == 0
    written = json.loads(report.read_text())
    assert written["label"] == "DCN-V2 tiny"
    assert written["max_abs_difference"] < TOLERANCE
    assert [r["batch_size"] for r in written["latency"]] == [1, 8]
    assert all(r["pytorch_ms"] > 0 and r["onnxruntime_ms"] > 0 for r in written["latency"])
    session = export.session(out.read_bytes(), threads=1)
    assert session.get_inputs()[0].name == "x"
    assert "DCN-V2 tiny: ONNX opset 17" in capsys.readouterr().out


def test_cli_refuses_a_record_without_weights_unless_untrained(tmp_path, tiny, capsys):
    path, _ = _record(tmp_path, tiny)
    with pytest.raises(SystemExit, match=r"no trained weights .*run\.pt.*--untrained"):
        export.main([str(path)])
    assert export.main([str(path), "--untrained", "--repeats", "1", "--batch-sizes", "2"]) == 0
    assert "DCN-V2 tiny (untrained)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    ([], "either a record path or --model"),
    (["x.json", "--model", "fm"], "either a record path or --model"),
    (["--model", "fm", "--hparams", "[1]"], r"--hparams must be a JSON object; got '\[1\]'"),
    (["--model", "fm", "--hparams", "{bad"], "--hparams must be a JSON object"),
    (["--model", "fm", "--batch-sizes", "1,x"], "--batch-sizes must be comma-separated positive integers; got '1,x'"),
    (["--model", "fm", "--batch-sizes", "0"], "--batch-sizes must be"),
    (["--model", "fm", "--threads", "0"], "--threads and --repeats must be >= 1; got 0 and 15"),
])
def test_cli_names_the_bad_argument(argv, message):
    with pytest.raises(SystemExit, match=message):
        export.main(argv)


def test_cli_names_an_unreadable_record(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match=r"record .*bad\.json is not a readable JSON file"):
        export.main([str(bad)])
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(SystemExit, match="lacks 'key' or 'dataset'"):
        export.main([str(tmp_path / "other.json")])
