"""``predict`` and ``evaluate`` on data files, through the container's handler functions."""

from __future__ import annotations

import csv
import importlib
import json

import pytest
from conftest import PACKAGE

cli = importlib.import_module(f"{PACKAGE}.cli")
io_module = importlib.import_module(f"{PACKAGE}.data.io")
inference = importlib.import_module(f"{PACKAGE}.serving.inference")


@pytest.fixture(scope="module")
def small_test_file(sample_dir, tmp_path_factory):
    """The first 60 rows of the bundled test split (TSV with id, document, label)."""
    lines = (sample_dir / "test.tsv").read_text("utf-8").splitlines(keepends=True)[:61]
    path = tmp_path_factory.mktemp("data") / "test.tsv"
    path.write_text("".join(lines), "utf-8")
    return path


def test_predict_keeps_rows_and_adds_scores(small_test_file, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    code = cli.main(["predict", str(small_test_file), "--model", str(tiny_model_dir),
                     "--out", str(out), "--batch-size", "8"])
    assert code == 0 and "wrote 60 predictions" in capsys.readouterr().out
    source = io_module.read_table(small_test_file)
    table = io_module.read_table(out)
    assert table.columns == [*source.columns, "predicted_label", "score", "score_negative",
                             "score_positive"]
    assert [r.values["id"] for r in table.rows] == [r.values["id"] for r in source.rows]
    classifier = inference.model_fn(str(tiny_model_dir))
    texts = [r.values["document"] for r in source.rows]
    expected = inference.predict_fn(inference.Request(texts), classifier)
    for row, scores in zip(table.rows, expected.scores, strict=True):
        assert [float(row.values["score_negative"]), float(row.values["score_positive"])] == (
            pytest.approx(scores, abs=1e-5)
        )
        assert row.values["predicted_label"] == expected.labels[scores.index(max(scores))]


def test_predict_jsonl_default_output_name(tiny_model_dir, tmp_path):
    data = tmp_path / "reviews.jsonl"
    io_module.write_jsonl(data, [{"document": "재밌다"}, {"document": "최악"}])
    assert cli.main(["predict", str(data), "--model", str(tiny_model_dir), "--no-progress"]) == 0
    records = [json.loads(line) for line in (tmp_path / "reviews.predictions.jsonl").open()]
    assert [r["document"] for r in records] == ["재밌다", "최악"]
    assert all(r["predicted_label"] in ("negative", "positive") for r in records)


def test_predict_reports_a_missing_column(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "x.csv"
    data.write_text("id,text\n1,hello\n", "utf-8")
    assert cli.main(["predict", str(data), "--model", str(tiny_model_dir)]) == 2
    assert "missing column(s) 'document'" in capsys.readouterr().err


def test_evaluate_writes_metrics_matrix_and_errors(small_test_file, tiny_model_dir, tmp_path,
                                                   capsys):
    out = tmp_path / "report"
    assert cli.main(["evaluate", str(small_test_file), "--model", str(tiny_model_dir),
                     "--out", str(out)]) == 0
    assert "60 examples: accuracy" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(metrics)
    assert set(metrics["per_class"]) == {"negative", "positive"}
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "misclassified.csv", encoding="utf-8-sig", newline="") as handle:
        wrong = list(csv.DictReader(handle))
    correct = sum(metrics["confusion_matrix"][i][i] for i in range(2))
    assert len(wrong) == metrics["num_examples"] - correct
    assert all(row["true_label"] != row["predicted_label"] for row in wrong)
    assert [float(r["score"]) for r in wrong] == sorted((float(r["score"]) for r in wrong),
                                                        reverse=True)
    if wrong:
        assert set(wrong[0]) >= {"line", "document", "true_label", "score_negative"}


def test_evaluate_refuses_a_model_with_other_labels(small_test_file, tmp_path, sample_dir, capsys):
    from conftest import build_tiny_model

    texts = ["좋다", "싫다", "그냥"] * 10
    other = build_tiny_model(tmp_path / "other", texts, 2, ["bad", "good"])
    assert cli.main(["evaluate", str(small_test_file), "--model", str(other),
                     "--out", str(tmp_path / "r")]) == 2
    assert "differ from the configured label names" in capsys.readouterr().err
