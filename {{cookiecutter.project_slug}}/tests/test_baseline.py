"""The TF-IDF + logistic-regression baseline: its fit, its figures, and ``evaluate``'s report of
the model next to it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import labelled_records, write_labelled

from nsmc_sentiment_classifier import baseline, cli, label_schemes
from nsmc_sentiment_classifier.data.examples import Example
from nsmc_sentiment_classifier.serving import batch

SINGLE = label_schemes.get("single_label")
MULTI = label_schemes.get("multi_label")


def split(records):
    return [text for text, _ in records], [label for _, label in records]


def test_the_same_data_and_seed_give_the_same_scores(config):
    texts, labels = split(labelled_records(config, 300))
    names = config.data.label_names
    first = baseline.fit(texts, labels, SINGLE, len(names), seed=7)
    second = baseline.fit(texts, labels, SINGLE, len(names), seed=7)
    probe = texts[:50]
    assert first.probabilities(probe) == second.probabilities(probe)
    assert first.predict(probe) == second.predict(probe)


def test_single_label_beats_chance_clearly_on_the_bundled_sample(config):
    names = config.data.label_names
    train_texts, train_labels = split(labelled_records(config, 3000))
    test_texts, test_labels = split(labelled_records(config, 1000, offset=3000))
    fitted = baseline.fit(train_texts, train_labels, SINGLE, len(names))
    scores = fitted.probabilities(test_texts)
    assert all(len(row) == len(names) and sum(row) == pytest.approx(1.0) for row in scores)
    metrics = SINGLE.compute_metrics(test_labels, fitted.predict(test_texts), names)
    majority = max(test_labels.count(i) for i in range(len(names))) / len(test_labels)
    # NSMC's two labels: 0.795 from 3,000 reviews (0.873 from the full 150k).
    assert metrics["accuracy"] > majority + 0.15, metrics["accuracy"]


def test_a_label_missing_from_the_train_split_scores_zero():
    texts = ["좋아요 최고", "최고 좋아요 재밌다", "별로 지루하다", "지루하다 별로 싫다"] * 3
    labels = [0, 0, 2, 2] * 3
    fitted = baseline.fit(texts, labels, SINGLE, 3)
    scores = fitted.probabilities(["최고 재밌다", "지루하다"])
    assert [row[1] for row in scores] == [0.0, 0.0]
    assert fitted.predict(["최고 재밌다", "지루하다"]) == [0, 2]


def synthetic_label_sets(count: int, seed: int) -> tuple[list[str], list[tuple[int, ...]]]:
    """Texts that carry a marker word per label they hold, among filler words; some hold none."""
    markers = ["사랑", "분노", "공포", "기쁨"]
    filler = ["오늘", "영화", "정말", "그냥", "보고", "나서", "생각", "했다", "많이", "조금"]
    rng = random.Random(seed)
    texts, targets = [], []
    for _ in range(count):
        target = tuple(i for i in range(len(markers)) if rng.random() < 0.35)
        words = rng.choices(filler, k=6) + [markers[i] for i in target]
        rng.shuffle(words)
        texts.append(" ".join(words))
        targets.append(target)
    return texts, targets


def test_multi_label_learns_separable_label_sets_with_tuned_thresholds():
    names = ["love", "anger", "fear", "joy"]
    train = synthetic_label_sets(400, seed=1)
    validation = synthetic_label_sets(100, seed=2)
    test_texts, test_targets = synthetic_label_sets(200, seed=3)
    fitted = baseline.fit(*train, MULTI, len(names), validation=validation)
    assert fitted.scheme != MULTI, "thresholds tuned on the validation split"
    assert fitted.scheme.model_config()["label_thresholds"] != [0.5] * len(names)
    predicted = fitted.predict(test_texts)
    assert all(isinstance(target, tuple) for target in predicted)
    metrics = fitted.scheme.compute_metrics(test_targets, predicted, names)
    assert metrics["micro_f1"] > 0.95 and metrics["exact_match"] > 0.85, metrics
    assert metrics["empty_true"] > 0, "rows without a label are part of the data"


def test_evaluate_tunes_multi_label_thresholds_on_the_validation_split(tmp_path):
    names = ["love", "anger", "fear", "joy"]

    def examples(count: int, seed: int) -> list[Example]:
        texts, targets = synthetic_label_sets(count, seed)
        labels: list[Any] = list(targets)  # label sets: Example holds any scheme's target
        return [Example(text, labels[i], line=i + 2) for i, text in enumerate(texts)]

    splits = baseline.Splits(tmp_path / "train", examples(300, 1), tmp_path / "validation", examples(80, 2))
    rows = examples(120, 3)
    metrics = baseline.evaluate(rows, splits, MULTI, names, seed=5)
    assert metrics["num_examples"] == 120 and metrics["micro_f1"] > 0.95
    assert metrics["tuned_on"] == str(tmp_path / "validation") and set(metrics["thresholds"]) == set(names)
    assert metrics["train"] == str(tmp_path / "train") and metrics["train_rows"] == 300
    assert baseline.describe(metrics) == (
        f"baseline: {baseline.DESCRIPTION} fitted on {tmp_path / 'train'} (300 rows), "
        f"decision thresholds tuned on {tmp_path / 'validation'}"
    )


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (["좋다", "싫다"], [0], "2 texts but 1 targets"),
        ([], [], "the train split holds none"),
        (["좋다", "최고"], [1, 1], "needs at least two labels in the train split; it holds only label id 1"),
        (["...", "!!"], [0, 1], "cannot learn from these training texts"),
    ],
    ids=["length-mismatch", "no-texts", "one-label", "no-features"],
)
def test_unusable_training_data_is_refused_with_the_reason(texts, labels, message):
    with pytest.raises(ValueError, match=message):
        baseline.fit(texts, labels, SINGLE, 2)


def test_compare_and_the_tables_show_model_baseline_and_difference():
    model = {"micro_f1": 0.9, "hamming_loss": 0.05, "num_examples": 10}
    base = {"micro_f1": 0.8, "hamming_loss": 0.1, "num_examples": 10}
    names = ("micro_f1", "hamming_loss", "exact_match")
    assert baseline.compare(model, base, names) == pytest.approx({"micro_f1": 0.1, "hamming_loss": -0.05})
    table = baseline.markdown_table(model, base, names, lower_is_better={"hamming_loss"})
    assert table.splitlines() == [
        "| metric | model | baseline | difference |",
        "|---|---:|---:|---:|",
        "| micro_f1 | 0.9000 | 0.8000 | +0.1000 |",
        "| hamming_loss (lower is better) | 0.0500 | 0.1000 | -0.0500 |",
    ]
    text = baseline.text_table(model, base, names).splitlines()
    assert text[0].split() == ["metric", "model", "baseline", "difference"]
    assert text[1].split() == ["micro_f1", "0.9000", "0.8000", "+0.1000"]


# evaluate through the command line, in this project's labels.


@pytest.fixture
def prepared(project_dir, config) -> Path:
    """Prepared train, validation and test splits (label ids) in the scratch project."""
    folder = project_dir / "data" / "prepared"
    records = labelled_records(config, 700)
    write_labelled(folder / "train" / "train.jsonl", config, records[:500], ids=True)
    write_labelled(folder / "validation" / "validation.jsonl", config, records[500:600], ids=True)
    write_labelled(folder / "test" / "test.jsonl", config, records[600:], ids=True)
    return folder


def evaluate(model_dir: Path, out: Path, *flags: str) -> int:
    return cli.main(["evaluate", "--model", str(model_dir), "--out", str(out), "--no-progress", *flags])


def test_evaluate_reports_the_model_next_to_the_baseline(
    prepared, project_model_dir, tmp_path, config, capsys
):
    out = tmp_path / "report"
    assert evaluate(project_model_dir, out) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    scheme = config.data.label_scheme
    names = scheme.metric_names
    base = metrics["baseline"]
    assert base["num_examples"] == metrics["num_examples"] == 100, "the same evaluation rows"
    assert base["train_rows"] == 500 and base["train"] == str(prepared / "train")
    # Single-label decides by argmax (nothing to tune); multi-label tunes thresholds, as the model.
    tuned_on = str(prepared / "validation") if scheme.name == "multi_label" else None
    assert base["method"] == baseline.DESCRIPTION and base["tuned_on"] == tuned_on
    assert metrics["difference"] == pytest.approx({name: metrics[name] - base[name] for name in names})
    assert f"baseline: {baseline.DESCRIPTION} fitted on {prepared / 'train'} (500 rows)" in printed
    rows = {line.split()[0]: line.split()[-3:] for line in printed.splitlines() if line.split()}
    assert rows["metric"] == ["model", "baseline", "difference"]
    for name in names:
        assert rows[name] == [
            f"{metrics[name]:.4f}",
            f"{base[name]:.4f}",
            f"{metrics['difference'][name]:+.4f}",
        ]


def test_evaluate_fits_the_baseline_on_a_given_file(prepared, project_model_dir, tmp_path, config, capsys):
    # A file outside the prepared folder holds labels as the project's data files do.
    train = write_labelled(
        tmp_path / "other" / "train.csv", config, labelled_records(config, 200, offset=800)
    )
    out = tmp_path / "report"
    assert evaluate(project_model_dir, out, "--baseline-train", str(train)) == 0
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["baseline"]["train"] == str(train) and metrics["baseline"]["train_rows"] == 200


def test_evaluate_without_a_prepared_train_split_says_how_to_get_the_baseline(
    project_dir, project_model_dir, tmp_path, config, capsys
):
    data = write_labelled(tmp_path / "test.tsv", config, labelled_records(config, 20, offset=4000))
    out = tmp_path / "report"
    assert cli.main(["evaluate", str(data), "--model", str(project_model_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    notes = [line for line in printed.splitlines() if "baseline" in line]
    assert notes == [
        f"note: no baseline: no prepared train split at {project_dir / 'data' / 'prepared' / 'train'}; "
        "run `data prepare` or pass --baseline-train FILE (--no-baseline skips the baseline)"
    ]
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert "baseline" not in metrics and notes[0].removeprefix("note: ") in metrics["notes"]


def test_no_baseline_skips_it(prepared, project_model_dir, tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("the baseline was fitted despite --no-baseline")

    monkeypatch.setattr(baseline, "fit", refuse)
    out = tmp_path / "report"
    assert evaluate(project_model_dir, out, "--no-baseline") == 0
    printed = capsys.readouterr().out.splitlines()
    assert not [line for line in printed if line.startswith(("baseline", "metric", "note: no baseline"))]
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert "baseline" not in metrics and "difference" not in metrics


def test_a_missing_baseline_train_file_is_refused_before_the_model_loads(
    prepared, project_model_dir, tmp_path, monkeypatch, capsys
):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the problem was reported")

    monkeypatch.setattr(batch, "load_classifier", refuse)
    missing = tmp_path / "nope.csv"
    assert evaluate(project_model_dir, tmp_path / "report", "--baseline-train", str(missing)) == 2
    err = capsys.readouterr().err
    assert f"evaluate: --baseline-train {missing}: no such file or folder" in err and "Traceback" not in err
