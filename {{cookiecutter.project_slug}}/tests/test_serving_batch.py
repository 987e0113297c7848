"""``predict`` and ``evaluate`` on data files, through the container's handler functions."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import labelled_records, write_labelled
from test_serving_text_pairs import as_project_file

from nsmc_sentiment_classifier import cli
from nsmc_sentiment_classifier.data import io as io_module
from nsmc_sentiment_classifier.serving import inference


@pytest.fixture(scope="module")
def small_test_file(config, tmp_path_factory):
    """60 labelled rows in this project's columns (TSV with id, text, label)."""
    path = tmp_path_factory.mktemp("data") / "test.tsv"
    return as_project_file(write_labelled(path, config, labelled_records(config, 60, offset=4000)), config)


def score_columns(config):
    return [f"score_{name}" for name in config.data.label_names]


def test_predict_keeps_rows_and_adds_scores(small_test_file, tiny_model_dir, tmp_path, capsys, config):
    out = tmp_path / "predictions.csv"
    code = cli.main(
        [
            "predict",
            str(small_test_file),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--batch-size",
            "8",
        ]
    )
    assert code == 0 and "wrote 60 predictions" in capsys.readouterr().out
    source = io_module.read_table(small_test_file)
    table = io_module.read_table(out)
    assert table.columns == [*source.columns, "predicted_label", "score", *score_columns(config)]
    assert [r.values["id"] for r in table.rows] == [r.values["id"] for r in source.rows]
    classifier = inference.model_fn(str(tiny_model_dir))
    texts = [r.values[config.data.text_column] for r in source.rows]
    expected = inference.predict_fn(inference.Request(texts), classifier)
    for row, scores in zip(table.rows, expected.scores, strict=True):
        assert [float(row.values[column]) for column in score_columns(config)] == (
            pytest.approx(scores, abs=1e-5)
        )
        assert row.values["predicted_label"] == expected.labels[scores.index(max(scores))]


def test_predict_jsonl_default_output_name(tiny_model_dir, tmp_path, config):
    data = tmp_path / "reviews.jsonl"
    column = config.data.text_column
    io_module.write_jsonl(data, [{column: "재밌다"}, {column: "최악"}])
    assert cli.main(["predict", str(data), "--model", str(tiny_model_dir), "--no-progress"]) == 0
    records = [json.loads(line) for line in (tmp_path / "reviews.predictions.jsonl").open()]
    assert [r[column] for r in records] == ["재밌다", "최악"]
    assert all(r["predicted_label"] in config.data.label_names for r in records)


def test_predict_reports_a_missing_column(tiny_model_dir, tmp_path, capsys, config):
    data = tmp_path / "x.csv"
    other = config.data.text_column + "_other"
    data.write_text(f"id,{other}\n1,hello\n", "utf-8")
    assert cli.main(["predict", str(data), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err
    assert f"missing column(s) {config.data.text_column!r}" in err
    # predict's user names the column with an option, not with the configuration's keys.
    assert "--text-column" in err and "text_column/label_column" not in err


def _mixed_lengths_file(tmp_path, config, rows: int = 96, long_rows: int = 8):
    """A TSV of short texts whose last ``long_rows`` rows are far longer than the rest."""
    column = config.data.text_column
    path = tmp_path / "mixed.tsv"
    lines = [f"id\t{column}"]
    for i in range(rows):
        text = "정말 재밌는 영화 " * 40 if i >= rows - long_rows else f"영화 {i}"
        lines.append(f"{i}\t{text}")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_predict_starts_with_the_first_rows_not_the_longest(tiny_model_dir, tmp_path, monkeypatch, config):
    """Scoring the longest texts of the whole file first made the first rate/ETA readings
    (and the first hours of a large run) describe the slowest texts only."""
    data = _mixed_lengths_file(tmp_path, config)
    lengths: list[int] = []
    score_batch = inference.score_batch

    def spy(model, batch):
        lengths.append(max(len(ids) for ids in batch))
        return score_batch(model, batch)

    monkeypatch.setattr(inference, "score_batch", spy)
    out = tmp_path / "out.csv"
    assert (
        cli.main(
            ["predict", str(data), "--model", str(tiny_model_dir), "--out", str(out), "--batch-size", "4"]
        )
        == 0
    )
    assert lengths[0] < max(lengths) / 4  # the first batch holds early, short rows
    assert [r.values["id"] for r in io_module.read_table(out).rows] == [str(i) for i in range(96)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_interrupted_predict_keeps_the_rows_it_finished(
    tiny_model_dir, tmp_path, monkeypatch, caplog, config, suffix
):
    data = _mixed_lengths_file(tmp_path, config)
    calls = 0
    score_batch = inference.score_batch

    def interrupt_later(model, batch):
        nonlocal calls
        calls += 1
        if calls > 12:  # the first chunk (8 batches of 4) is done and written by then
            raise KeyboardInterrupt
        return score_batch(model, batch)

    monkeypatch.setattr(inference, "score_batch", interrupt_later)
    out = tmp_path / f"out{suffix}"
    args = ["predict", str(data), "--model", str(tiny_model_dir), "--out", str(out), "--batch-size", "4"]
    assert cli.main([*args, "--no-progress"]) == 130
    rows = io_module.read_table(out).rows
    assert [r.values["id"] for r in rows] == [str(i) for i in range(32)]  # input order
    assert all(r.values["predicted_label"] in config.data.label_names for r in rows)
    assert "first 32 of 96 rows" in caplog.text


def test_evaluate_writes_metrics_matrix_and_errors(
    small_test_file, project_model_dir, tmp_path, capsys, config
):
    out = tmp_path / "report"
    model = str(project_model_dir)
    assert cli.main(["evaluate", str(small_test_file), "--model", model, "--out", str(out)]) == 0
    scheme = config.data.label_scheme
    assert (
        f"60 examples: {'micro-F1' if scheme.name == 'multi_label' else 'accuracy'}"
        in capsys.readouterr().out
    )
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert {*scheme.metric_names, "per_class"} <= set(metrics)
    assert set(metrics["per_class"]) == set(config.data.label_names)
    picture = "confusion_matrix.png" if "confusion_matrix" in metrics else "per_label.png"
    assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "misclassified.csv", encoding="utf-8-sig", newline="") as handle:
        wrong = list(csv.DictReader(handle))
    if scheme.name == "multi_label":  # every row whose label set is not exactly right
        assert len(wrong) == round(metrics["num_examples"] * (1 - metrics["exact_match"]))
        assert all(row["true_labels"] != row["predicted_labels"] for row in wrong)
        return
    correct = sum(metrics["confusion_matrix"][i][i] for i in range(len(config.data.label_names)))
    assert len(wrong) == metrics["num_examples"] - correct
    assert all(row["true_label"] != row["predicted_label"] for row in wrong)
    assert [float(r["score"]) for r in wrong] == sorted((float(r["score"]) for r in wrong), reverse=True)
    if wrong:
        assert set(wrong[0]) >= {"line", config.data.text_column, "true_label", *score_columns(config)}


def test_evaluate_refuses_a_model_with_other_labels(small_test_file, tmp_path, capsys, config):
    from conftest import build_tiny_model

    texts = ["좋다", "싫다", "그냥"] * 10
    names = [f"other-{i}" for i in range(len(config.data.label_names))]
    other = build_tiny_model(tmp_path / "other", texts, len(names), names)
    assert (
        cli.main(["evaluate", str(small_test_file), "--model", str(other), "--out", str(tmp_path / "r")]) == 2
    )
    assert "differ from the configured label names" in capsys.readouterr().err


# A multi-label model (conftest.build_multi_label_model) and a project configured for it.


def multi_label_section(config, **changes):
    """This project's [data] settings for the multi-label model's labels (cells joined by '|',
    as these tests write them, whatever this project's own delimiter)."""
    import dataclasses

    from conftest import MULTI_LABEL_NAMES

    settings = {"task": "multi_label", "label_layout": "column", "label_delimiter": "|", **changes}
    return dataclasses.replace(config.data, label_names=MULTI_LABEL_NAMES, **settings)


def decided_by_thresholds(scores):
    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS

    reached = zip(MULTI_LABEL_NAMES, scores, MULTI_LABEL_THRESHOLDS, strict=True)
    return [name for name, score, threshold in reached if score >= threshold]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_predict_with_a_multi_label_model_writes_the_decided_labels_and_every_score(
    multi_label_model_dir, tmp_path, config, suffix
):
    from conftest import MULTI_LABEL_NAMES

    column = config.data.text_column
    texts = ["정말 재밌어요", "별로", "그냥 그랬음"]
    data = tmp_path / "texts.csv"
    data.write_text("id," + column + "\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)), "utf-8")
    out = tmp_path / f"out{suffix}"
    args = ["predict", str(data), "--model", str(multi_label_model_dir), "--out", str(out), "--no-progress"]
    assert cli.main(args) == 0
    scores_columns = [f"score_{name}" for name in MULTI_LABEL_NAMES]
    classifier = inference.model_fn(str(multi_label_model_dir))
    expected = inference.predict_fn(inference.Request(texts), classifier).scores
    if suffix == ".jsonl":
        records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
        assert [list(record) for record in records] == [
            ["id", column, "predicted_labels", *scores_columns]
        ] * 3
        decided = [record["predicted_labels"] for record in records]  # JSON: a list of names
    else:
        table = io_module.read_table(out)
        assert table.columns == ["id", column, "predicted_labels", *scores_columns]
        records = [row.values for row in table.rows]
        decided = [record["predicted_labels"].split("|") for record in records]
    for record, chosen, scores in zip(records, decided, expected, strict=True):
        assert [float(record[name]) for name in scores_columns] == pytest.approx(scores, abs=1e-5)
        assert chosen == decided_by_thresholds(scores) and len(chosen) >= 2


def write_multi_label_file(path, config, rows):
    """A CSV of (text, labels joined by "|") in this project's columns."""
    text, label = config.data.text_column, config.data.label_column
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", text, label])
        writer.writerows([number, row_text, labels] for number, (row_text, labels) in enumerate(rows, 1))
    return path


MULTI_LABEL_ROWS = [
    ("정말 재밌어요", "hate|gender|clean"),
    ("별로", "hate|gender"),
    ("그냥 그랬음", ""),
    ("ㅋㅋ", "age"),
    ("다시 보고 싶은 영화", "clean|gender|hate"),
]


def test_evaluate_a_multi_label_model_scores_label_sets(multi_label_model_dir, tmp_path, config):
    from conftest import MULTI_LABEL_NAMES

    from nsmc_sentiment_classifier.serving import batch

    section = multi_label_section(config)
    source = write_multi_label_file(tmp_path / "test.csv", config, MULTI_LABEL_ROWS)
    labelled = batch.read_labelled(source, section, "names")
    assert [e.label for e in labelled.examples] == [(0, 1, 3), (0, 1), (), (2,), (0, 1, 3)]
    classifier = batch.load_classifier(multi_label_model_dir)
    out = tmp_path / "report"
    metrics = batch.evaluate_examples(classifier, labelled, out, section, progress=False)
    scores = batch.classify(classifier, [text for text, _ in MULTI_LABEL_ROWS], progress=False).scores
    predicted = [decided_by_thresholds(row) for row in scores]
    truth = [
        [name for name in MULTI_LABEL_NAMES if name in labels.split("|")] for _, labels in MULTI_LABEL_ROWS
    ]
    assert metrics["exact_match"] == pytest.approx(
        sum(p == t for p, t in zip(predicted, truth, strict=True)) / 5
    )
    written = json.loads((out / "metrics.json").read_text("utf-8"))
    assert {"micro_f1", "macro_f1", "hamming_loss", "exact_match", "label_confusion"} <= set(written)
    assert written["empty_true"] == 1 and written["thresholds"]["age"] == 0.99
    assert not (out / "confusion_matrix.png").exists()  # single-label only
    with open(out / "misclassified.csv", encoding="utf-8-sig", newline="") as handle:
        wrong = list(csv.DictReader(handle))
    shown = {(row["true_labels"], row["predicted_labels"]) for row in wrong}
    expected = {("|".join(t), "|".join(p)) for p, t in zip(predicted, truth, strict=True) if p != t}
    assert shown == expected and len(wrong) == round(5 * (1 - metrics["exact_match"]))
    assert list(wrong[0]) == ["line", config.data.text_column, "true_labels", "predicted_labels",
                              *(f"score_{name}" for name in MULTI_LABEL_NAMES)]  # fmt: skip
    assert batch.evaluation_summary(metrics).startswith("5 examples: micro-F1 ")


def test_evaluate_lists_the_surest_multi_label_mistakes_first():
    from nsmc_sentiment_classifier.label_schemes.multi_label import (
        MultiLabel,
    )

    scheme = MultiLabel(thresholds=(0.5, 0.5, 0.5))
    # A wrong label's score, or one minus a missed label's score; the surest wrong decision counts.
    assert scheme.mistake_score([0.9, 0.2, 0.6], (2,)) == pytest.approx(0.9)
    assert scheme.mistake_score([0.1, 0.3, 0.6], (0, 1, 2)) == pytest.approx(0.9)


def test_evaluate_refuses_a_multi_label_model_for_a_single_label_project(
    multi_label_model_dir, tmp_path, config
):
    import dataclasses

    from conftest import MULTI_LABEL_NAMES

    from nsmc_sentiment_classifier.serving import batch

    section = dataclasses.replace(config.data, task="single_label", label_names=MULTI_LABEL_NAMES)
    source = tmp_path / "test.csv"
    source.write_text(f"{config.data.text_column},{config.data.label_column}\n별로,hate\n", "utf-8")
    labelled = batch.read_labelled(source, section, "names")
    classifier = batch.load_classifier(multi_label_model_dir)
    with pytest.raises(batch.ModelLabelsError, match="trained as multi_label but config.toml's"):
        batch.evaluate_examples(classifier, labelled, tmp_path / "report", section, progress=False)


def test_the_evaluate_command_on_a_multi_label_project(multi_label_model_dir, project_dir, capsys, config):
    import re

    from conftest import MULTI_LABEL_NAMES

    path = project_dir / "config.toml"
    text = path.read_text("utf-8")
    text = re.sub(r"(?m)^task = .*$", 'task = "multi_label"', text, count=1)
    text = re.sub(r"(?m)^label_delimiter = .*$", 'label_delimiter = "|"', text, count=1)  # as written below
    text = re.sub(r"(?m)^label_layout = .*$", 'label_layout = "column"', text, count=1)
    text = re.sub(
        r"(?m)^label_names = .*$", "label_names = " + json.dumps(list(MULTI_LABEL_NAMES)), text, count=1
    )
    path.write_text(text, "utf-8")
    source = write_multi_label_file(project_dir / "test.csv", config, MULTI_LABEL_ROWS)
    out = project_dir / "report"
    assert cli.main(["evaluate", str(source), "--model", str(multi_label_model_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(
        r"5 examples: micro-F1 [\d.]+, macro-F1 [\d.]+, exact match [\d.]+, Hamming loss", printed
    )
    assert (out / "metrics.json").is_file() and (out / "misclassified.csv").is_file()
