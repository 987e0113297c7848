"""``predict`` and ``evaluate`` at their edges: bad arguments, empty and header-only files,
empty and over-long texts, int8. Every refusal is one ``error:`` line before any work."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import labelled_records, write_labelled

from nsmc_sentiment_classifier import cli
from nsmc_sentiment_classifier.data import io as io_module


@pytest.fixture
def texts_file(tmp_path, config):
    path = tmp_path / "reviews.csv"
    column = config.data.text_column
    long_text = "끝까지 본 내 자신이 대견하다 " * 80  # over the tiny model's 256 positions
    rows = [["1", "정말 재밌어요"], ["2", ""], ["3", "   "], ["4", long_text], ["5", "별로"]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([["id", column], *rows])
    return path


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--batch-size", "-1"], "--batch-size must be a positive number of texts, got -1"),
        (["--batch-size", "0"], "--batch-size must be a positive number of texts, got 0"),
        (["--max-length", "1"], "--max-length must be at least 2 tokens"),
        (["--out", "predictions.xlsx"], "must end in .csv, .tsv, .txt, .jsonl, .json"),
    ],
)
def test_predict_refuses_bad_arguments_before_any_work(tiny_model_dir, texts_file, flags, reason, capsys):
    code = cli.main(["predict", str(texts_file), "--model", str(tiny_model_dir), *flags])
    err = capsys.readouterr().err
    assert code == 2 and reason in err and "Traceback" not in err


def test_all_problems_are_listed_at_once(tmp_path, capsys):
    code = cli.main(["predict", str(tmp_path / "missing.csv"), "--model", str(tmp_path), "--batch-size", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing.csv: no such file or folder" in err and "not a model folder" in err
    assert "--batch-size" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ["", "header"], ids=["empty", "header-only"])
def test_predict_on_a_file_without_rows_says_so(tiny_model_dir, tmp_path, config, content, capsys):
    data = tmp_path / "nothing.csv"
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(["id", config.data.text_column])
    data.write_text(content and header.getvalue(), "utf-8")
    code = cli.main(["predict", str(data), "--model", str(tiny_model_dir), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing.csv" in err and "Traceback" not in err
    assert "empty" in err or "only a header" in err
    assert not (tmp_path / "nothing.predictions.csv").exists()


def test_predict_reports_empty_and_truncated_texts(tiny_model_dir, texts_file, capsys):
    code = cli.main(["predict", str(texts_file), "--model", str(tiny_model_dir), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "wrote 5 predictions" in out
    assert "2 of 5 texts are empty (lines 3, 4)" in out
    assert "1 of 5 texts were longer than" in out
    table = io_module.read_table(texts_file.with_name("reviews.predictions.csv"))
    assert len(table.rows) == 5, "empty texts are predicted too, not dropped"


def test_evaluate_reports_empty_texts_instead_of_dropping_them(tiny_model_dir, tmp_path, config, capsys):
    records = labelled_records(config, 20, offset=4000)
    records[3] = ("", records[3][1])
    records[7] = ("  ", records[7][1])
    data = write_labelled(tmp_path / "test.tsv", config, records)
    out = tmp_path / "report"
    code = cli.main(
        ["evaluate", str(data), "--model", str(tiny_model_dir), "--out", str(out), "--no-progress"]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["num_examples"] == 20 and metrics["empty_texts"] == 2
    assert "2 of 20 texts are empty" in printed


def test_evaluate_on_a_header_only_file_says_so(tiny_model_dir, tmp_path, config, capsys):
    data = tmp_path / "test.tsv"
    data.write_text(f"{config.data.text_column}\t{config.data.label_column}\n", "utf-8")
    code = cli.main(["evaluate", str(data), "--model", str(tiny_model_dir), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "no labelled rows to evaluate" in err and "Traceback" not in err


def test_predict_with_int8_quantization(tiny_model_dir, texts_file, capsys):
    out = texts_file.with_name("int8.jsonl")
    code = cli.main(
        ["predict", str(texts_file), "--model", str(tiny_model_dir), "--quantize", "int8", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(records) == 5 and all(r["predicted_label"] for r in records)
