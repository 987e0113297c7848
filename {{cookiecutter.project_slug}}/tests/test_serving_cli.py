"""``predict`` and ``evaluate`` at their edges: bad arguments, empty and header-only files,
empty and over-long texts, int8. Every refusal is one ``error:`` line before any work."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import labelled_records, write_labelled
from test_serving_text_pairs import as_project_file

from nsmc_sentiment_classifier import cli
from nsmc_sentiment_classifier.data import io as io_module
from nsmc_sentiment_classifier.serving import batch


@pytest.fixture
def texts_file(tmp_path, config):
    path = tmp_path / "reviews.csv"
    column = config.data.text_column
    long_text = "끝까지 본 내 자신이 대견하다 " * 80  # over the tiny model's 256 positions
    rows = [["1", "정말 재밌어요"], ["2", ""], ["3", "   "], ["4", long_text], ["5", "별로"]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([["id", column], *rows])
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """Refusals must come before the model is loaded (seconds to minutes for a real one)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the problem was reported")

    monkeypatch.setattr(batch, "load_classifier", refuse)


@pytest.fixture
def no_data_read(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the data was read before the arguments were checked")

    monkeypatch.setattr(batch, "read_table", refuse)
    monkeypatch.setattr(batch, "load_examples", refuse)


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--batch-size", "-1"], "--batch-size must be a positive number of texts, got -1"),
        (["--batch-size", "0"], "--batch-size must be a positive number of texts, got 0"),
        (["--max-length", "1"], "--max-length must be at least 2 tokens"),
        (["--out", "predictions.xlsx"], "must end in .csv, .tsv, .txt, .jsonl, .json"),
    ],
)
@pytest.mark.usefixtures("no_model_load", "no_data_read")
def test_predict_refuses_bad_arguments_before_any_work(tiny_model_dir, texts_file, flags, reason, capsys):
    code = cli.main(["predict", str(texts_file), "--model", str(tiny_model_dir), *flags])
    err = capsys.readouterr().err
    assert code == 2 and reason in err and "Traceback" not in err


@pytest.mark.usefixtures("no_model_load", "no_data_read")
def test_evaluate_refuses_bad_arguments_before_any_work(tiny_model_dir, texts_file, tmp_path, capsys):
    args = ["--batch-size", "-3", "--max-length", "0", "--out", str(texts_file)]
    code = cli.main(["evaluate", str(texts_file), "--model", str(tiny_model_dir), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: evaluate: --batch-size") and "Traceback" not in err
    assert "--max-length must be at least 2" in err and "is a file; give a folder" in err


def test_a_max_length_over_the_model_limit_is_refused(tiny_model_dir, texts_file, capsys):
    code = cli.main(["predict", str(texts_file), "--model", str(tiny_model_dir), "--max-length", "100000"])
    err = capsys.readouterr().err
    assert code == 2 and "--max-length 100000 exceeds the model's limit of 256 tokens" in err
    assert "Traceback" not in err and not texts_file.with_name("reviews.predictions.csv").exists()


def test_all_problems_are_listed_at_once(tmp_path, capsys):
    code = cli.main(["predict", str(tmp_path / "missing.csv"), "--model", str(tmp_path), "--batch-size", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing.csv: no such file or folder" in err and "not a model folder" in err
    assert "--batch-size" in err and len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("no_model_load")
@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("nothing.csv", "", "file is empty"),
        ("nothing.csv", "header", "no rows to predict (only a header line)"),
        ("nothing.jsonl", "", "no rows to predict (the file is empty)"),
        ("nothing.jsonl", "\n\n", "no rows to predict (the file is empty)"),
    ],
    ids=["empty-csv", "header-only-csv", "empty-jsonl", "blank-jsonl"],
)
def test_predict_on_a_file_without_rows_says_so(
    tiny_model_dir, tmp_path, config, name, content, reason, capsys
):
    # An error, not an output with only a header: nothing to predict, and an empty output
    # would pass for a successful run further down a pipeline.
    data = tmp_path / name
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(["id", config.data.text_column])
    data.write_text(header.getvalue() if content == "header" else content, "utf-8")
    code = cli.main(["predict", str(data), "--model", str(tiny_model_dir), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"{name}: " in err and reason in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("nothing.predictions.*"))


def test_predict_reports_empty_and_truncated_texts(tiny_model_dir, texts_file, capsys):
    code = cli.main(["predict", str(texts_file), "--model", str(tiny_model_dir), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "wrote 5 predictions" in out
    assert "2 of 5 texts are empty (lines 3, 4)" in out
    assert "1 of 5 texts were longer than" in out
    table = io_module.read_table(texts_file.with_name("reviews.predictions.csv"))
    assert len(table.rows) == 5, "empty texts are predicted too, not dropped"


def test_evaluate_reports_empty_and_truncated_texts_instead_of_dropping_them(
    project_model_dir, tmp_path, config, capsys
):
    records = labelled_records(config, 20, offset=4000)
    records[3] = ("", records[3][1])
    records[7] = ("  ", records[7][1])
    records[9] = ("끝까지 본 내 자신이 대견하다 " * 80, records[9][1])
    data = as_project_file(write_labelled(tmp_path / "test.tsv", config, records), config)  # header: line 1
    out = tmp_path / "report"
    model = str(project_model_dir)
    code = cli.main(["evaluate", str(data), "--model", model, "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["num_examples"] == 20
    assert sum(map(sum, metrics.get("confusion_matrix", [[20]]))) == 20
    assert metrics["empty_texts"] == 2 and metrics["empty_text_lines"] == [5, 9]
    assert metrics["truncated_texts"] == 1 and metrics["max_length"] == 256
    assert "2 of 20 texts are empty (lines 5, 9)" in printed
    assert "1 of 20 texts were longer than 256 tokens and were truncated" in printed


@pytest.mark.usefixtures("no_model_load")
@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("test.tsv", "header", "no labelled rows to evaluate (only a header line)"),
        ("test.tsv", "", "file is empty"),
        ("test.jsonl", "", "the file is empty"),
    ],
    ids=["header-only-tsv", "empty-tsv", "empty-jsonl"],
)
def test_evaluate_on_a_file_without_rows_says_so(
    tiny_model_dir, tmp_path, config, name, content, reason, capsys
):
    data = tmp_path / name
    header = "\t".join([*config.data.text_columns, config.data.label_column]) + "\n"
    data.write_text(header if content == "header" else content, "utf-8")
    code = cli.main(["evaluate", str(data), "--model", str(tiny_model_dir), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and f"{name}: " in err and reason in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.usefixtures("no_model_load")
def test_evaluate_without_a_prepared_split_says_what_to_do(project_dir, tiny_model_dir, capsys):
    code = cli.main(["evaluate", "--model", str(tiny_model_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "no prepared test split at" in err and "run `data prepare` first" in err
