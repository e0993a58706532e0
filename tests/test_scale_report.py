"""The scale report renders its table and says, per target, met or NOT met from the figures."""

import json

import pytest

from benchmarks.scale.__main__ import main
from benchmarks.scale.report import render

GB = 1 << 30


def record(rows, encode_seconds, encode_rss, train_rss, mmap_speed, memory_speed):
    step = {"seconds": 1.0, "peak_rss_bytes": int(0.5 * GB)}
    train = {"seconds": 10.0, "val_auc": 0.75, "oracle_val_auc": 0.85}
    return {
        "rows": rows, "file_bytes": rows * 250, "cache_bytes": rows * 160,
        "load_average_before": [0.1, 0, 0], "load_average_after": [0.2, 0, 0],
        "encode_mmap": {**step, "seconds": encode_seconds, "peak_rss_bytes": int(encode_rss * GB)},
        "load_mmap": step,
        "train_mmap": {**train, "peak_rss_bytes": int(train_rss * GB), "samples_per_second": mmap_speed},
        "train_memory": ({**train, "peak_rss_bytes": 2 * GB, "samples_per_second": memory_speed}
                         if memory_speed else None),
        "environment": {"cpu": "test cpu", "threads": 2, "torch": "2.13.0", "git_commit": "abc"},
    }


def test_targets_met_and_not_met(tmp_path):
    (tmp_path / "5000000.json").write_text(json.dumps(record(5_000_000, 5.0, 1.0, 1.2, 9_500, 10_000)))
    big = record(45_000_000, 150.0, 3.5, 2.0, 9_000, None) | {"generate_seconds": 60.0}
    (tmp_path / "45000000.json").write_text(json.dumps(big))
    render(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "scale.md").read_text()
    assert "peak RSS of `encode_mmap` at 45,000,000 rows: 3.50 GB, target <= 3 GB at 45,000,000 rows: NOT met (the " \
           "rows are streamed" in text
    assert "peak RSS of `train_mmap` at 45,000,000 rows: 2.00 GB, target <= 3 GB at 45,000,000 rows: met\n" in text
    assert "mmap training speed at 5M rows: 95% of in-memory, target >= 90%: met" in text
    assert "encode speed: best 1,000,000 rows/s, target >= 500,000: met" in text
    assert "generator speed (`python -m data.generate criteo`, process start included): best 750,000 rows/s, " \
           "target >= 1,000,000: NOT met (the rows are drawn on both cores" in text
    table = [line for line in text.splitlines() if line.startswith("| 45,000,000")]
    assert "does not fit" in table[0] and "| 300,000 " in table[0] and "| 750,000 " in table[0]
    assert (tmp_path / "out" / "scale.png").read_bytes()[:4] == b"\x89PNG"


def test_memory_targets_are_not_judged_below_45m_rows(tmp_path):
    (tmp_path / "5000000.json").write_text(json.dumps(record(5_000_000, 5.0, 1.0, 1.2, 9_500, 10_000)))
    render(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "scale.md").read_text()
    assert "target <= 3 GB at 45,000,000 rows: not measured at 45,000,000 rows (largest run: 5,000,000)" in text
    assert ": met" not in text.split("mmap training speed")[0]


def test_figures_measured_again_name_their_commit(tmp_path):
    first = record(5_000_000, 5.0, 1.0, 1.2, 9_500, 10_000)
    again = {**first, "encode_mmap": {**first["encode_mmap"], "seconds": 2.5},
             "remeasured": {"environment": {**first["environment"], "git_commit": "def"}, "figures": ["encode_mmap"]}}
    (tmp_path / "5000000.json").write_text(json.dumps(again))
    render(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "scale.md").read_text()
    assert ("commit abc (the generate, encode and cached-load columns of 5,000,000 rows measured again at commit "
            "def: `--redo-encode`)") in text
    assert "encode speed: best 2,000,000 rows/s" in text


def test_unknown_size_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--sizes", "1M,huge"])
    assert "unknown size(s) ['huge']" in capsys.readouterr().err
