"""Serving through ONNX Runtime: export a model to ONNX, check it against PyTorch, time both.

``python -m benchmarks.export RECORD.json`` rebuilds the record's model from its key (registry
name and hyperparameters) and loads the trained weights saved beside the record as
``RECORD.pt`` (a ``state_dict``); nothing is retrained. Without that file it stops, unless
``--untrained`` says freshly initialised weights are wanted (latency does not depend on the
weights' values). ``--model NAME [--hparams JSON]`` exports a freshly built registry model
instead of a record's. The model is exported with the TorchScript-based exporter
(``dynamo=False``, opset :data:`OPSET`, the batch axis dynamic), the ONNX Runtime output is
compared with PyTorch's on the whole test split (largest absolute difference of the logits),
and the forward pass is timed at each batch size in eager PyTorch and in ONNX Runtime with
the same number of threads (``intra_op_num_threads`` = ``torch.get_num_threads()``).

A data set with numeric fields (field:index:value rows, ``data.Features``) gives a graph with two
inputs, ``index`` int64 ``[batch, F]`` and ``value`` float32 ``[batch, F]``; otherwise the one input is
``x``, the indices.

Needs the optional extra ``serve`` (``onnx``, ``onnxruntime``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

import data
import models
from data.atomic import write_atomically, write_text_atomically

from .engine.latency import inference_call, random_batch
from .engine.runtime import retain_freed_memory
from .engine.timing import timings_ms
from .harness.records import weights_path

OPSET = 17
BATCH_SIZES = (1, 4096)


def model_from_record(record: dict, schema: data.Schema, weights: Path | None) -> torch.nn.Module:
    """The record's model (registry name and hyperparameters of its key), with ``weights`` loaded when given."""
    key = record["key"]
    model = models.build(key["model"], schema, **key["hparams"])
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


class _IndexAndValue(torch.nn.Module):
    """``model`` called as ``(index, value)``: the two graph inputs of a model on field:index:value rows."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, index: torch.Tensor, value: torch.Tensor) -> torch.Tensor:  # [B, F], [B, F] -> [B]
        return self.model(data.Features(index, value))


def feed(x: torch.Tensor | data.Features) -> dict[str, np.ndarray]:
    """The ONNX Runtime inputs of a batch: ``{"x": indices}``, or ``{"index", "value"}`` for ``Features``."""
    if isinstance(x, torch.Tensor):
        return {"x": x.numpy()}
    return {"index": x.index.numpy(), "value": x.value.numpy()}


def to_onnx(model: torch.nn.Module, schema: data.Schema) -> bytes:
    """``model`` as an ONNX graph: input ``x`` int64 ``[batch, F]`` (or ``index`` and ``value`` when ``schema`` has
    numeric fields), output ``logit`` ``[batch]``."""
    example = random_batch(schema, 2)
    names = list(feed(example))
    traced, args = (model, (example,)) if len(names) == 1 else (_IndexAndValue(model), (example.index, example.value))
    buffer = io.BytesIO()
    model.eval()
    with warnings.catch_warnings():  # the legacy exporter warns that it is deprecated
        warnings.simplefilter("ignore")
        torch.onnx.export(
            traced, args, buffer, dynamo=False, opset_version=OPSET, input_names=names, output_names=["logit"],
            dynamic_axes={**{n: {0: "batch"} for n in names}, "logit": {0: "batch"}},
        )
    return buffer.getvalue()


def session(onnx_model: bytes, threads: int | None = None):
    """An ONNX Runtime CPU session of ``onnx_model`` with ``threads`` intra-op threads (default: torch's)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])


def max_abs_difference(model: torch.nn.Module, ort_session, x: torch.Tensor | data.Features,
                       batch_size: int = 4096) -> float:
    """Largest ``|ONNX Runtime - PyTorch|`` over the logits of every row of ``x`` (indices or ``Features``), in
    batches."""
    worst = 0.0
    model.eval()
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        with torch.inference_mode():
            ours = model(chunk).numpy()
        served = ort_session.run(None, feed(chunk))[0]
        if served.shape != ours.shape:
            raise ValueError(f"ONNX Runtime output shape {served.shape} differs from PyTorch's {ours.shape}")
        worst = max(worst, float(np.abs(served - ours).max()))
    return worst


def latency(model: torch.nn.Module, ort_session, schema: data.Schema, batch_size: int, *, warmup: int = 3,
            repeats: int = 15) -> dict:
    """Median forward time (ms) at ``batch_size`` of eager PyTorch and of ONNX Runtime, on the same batch.

    PyTorch keeps freed memory as the harness probe does (``retain_freed_memory``).
    """
    retain_freed_memory()
    eager = inference_call(model, schema, batch_size)
    inputs = feed(random_batch(schema, batch_size))
    times = {
        "pytorch_ms": timings_ms(eager, warmup, repeats),
        "onnxruntime_ms": timings_ms(lambda: ort_session.run(None, inputs), warmup, repeats),
    }
    row = {name: float(np.median(t)) for name, t in times.items()}
    return {"batch_size": batch_size, **row, "speedup": row["pytorch_ms"] / row["onnxruntime_ms"],
            "threads": torch.get_num_threads(), "repeats": repeats}


def serve_report(model: torch.nn.Module, dataset: data.Dataset, *, batch_sizes=BATCH_SIZES, repeats: int = 15,
                 out: Path | None = None) -> dict:
    """Export ``model``, check it on ``dataset``'s test split and time it; ``out``: also write the .onnx file."""
    onnx_model = to_onnx(model, dataset.schema)
    if out is not None:
        write_atomically(Path(out), lambda staged: staged.write_bytes(onnx_model))
    ort_session = session(onnx_model)
    return {
        "opset": OPSET,
        "test_rows": len(dataset.test),
        "max_abs_difference": max_abs_difference(model, ort_session, dataset.test.features()),
        "latency": [latency(model, ort_session, dataset.schema, b, repeats=repeats) for b in batch_sizes],
    }


def render(name: str, report: dict) -> str:
    """The report as markdown: the check on the test split, then one latency row per batch size."""
    rows = [[r["batch_size"], f"{r['pytorch_ms']:.3f}", f"{r['onnxruntime_ms']:.3f}", f"{r['speedup']:.2f}x"]
            for r in report["latency"]]
    table = tabulate(rows, ["batch", "PyTorch eager (ms)", "ONNX Runtime (ms)", "ORT speedup"], tablefmt="github")
    threads = report["latency"][0]["threads"] if report["latency"] else torch.get_num_threads()
    return (f"{name}: ONNX opset {report['opset']}, max |ORT - PyTorch| logit on {report['test_rows']} test rows = "
            f"{report['max_abs_difference']:.3g}; {threads} threads, median of {report['latency'][0]['repeats']}"
            f" calls\n\n{table}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__.split("\n\n")[0])
    p.add_argument("record", nargs="?", type=Path, help="a run record (JSON); its weights are RECORD.pt")
    p.add_argument("--model", help="export a freshly built registry model instead of a record's")
    p.add_argument("--hparams", default="{}", help="hyperparameters of --model, as a JSON object")
    p.add_argument("--dataset", default="synthetic", help="data set of --model (default synthetic)")
    p.add_argument("--dataset-options", default="{}", help="options of --dataset, as a JSON object")
    p.add_argument("--untrained", action="store_true", help="export a record's model without its weights file")
    p.add_argument("--out", type=Path, help="also write the ONNX model here")
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    p.add_argument("--threads", type=int, default=2, help="threads of PyTorch and ONNX Runtime (default 2)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per batch size (default 15)")
    p.add_argument("--batch-sizes", default="1,4096", help="comma-separated batch sizes (default 1,4096)")
    return p


def _json_object(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"{flag} must be a JSON object; got {text!r} ({err})") from None
    if not isinstance(value, dict):
        raise SystemExit(f"{flag} must be a JSON object; got {text!r}")
    return value


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise SystemExit(f"--batch-sizes must be comma-separated positive integers; got {text!r}")
    return sizes


def _resolve(args) -> tuple[str, torch.nn.Module, data.Dataset]:
    """The label, the model (weights loaded) and the data set that the arguments name."""
    if (args.record is None) == (args.model is None):
        raise SystemExit("give either a record path or --model NAME (not both, not neither)")
    if args.model is not None:
        dataset = data.load(args.dataset, **_json_object(args.dataset_options, "--dataset-options"))
        model = models.build(args.model, dataset.schema, **_json_object(args.hparams, "--hparams")).eval()
        return f"{args.model} (untrained)", model, dataset
    try:
        record = json.loads(args.record.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"record {args.record} is not a readable JSON file ({err})") from None
    if "key" not in record or "dataset" not in record:
        raise SystemExit(f"record {args.record} lacks 'key' or 'dataset'; is it a run record?")
    weights = weights_path(args.record)
    if not weights.exists() and not args.untrained:
        raise SystemExit(f"no trained weights {weights} beside record {args.record}; "
                         "pass --untrained to export freshly initialised weights")
    dataset = data.load(record["key"]["dataset"], **record["key"]["dataset_options"])
    model = model_from_record(record, dataset.schema, weights if weights.exists() else None)
    return record.get("label", record["key"]["model"]) + ("" if weights.exists() else " (untrained)"), model, dataset


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    batch_sizes = _batch_sizes(args.batch_sizes)
    if args.threads < 1 or args.repeats < 1:
        raise SystemExit(f"--threads and --repeats must be >= 1; got {args.threads} and {args.repeats}")
    torch.set_num_threads(args.threads)
    label, model, dataset = _resolve(args)
    report = serve_report(model, dataset, batch_sizes=batch_sizes, repeats=args.repeats, out=args.out)
    if args.json is not None:
        write_text_atomically(args.json, json.dumps({"label": label, **report}, indent=1) + "\n")
    print(render(label, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
