"""One short training run in this process, then predictions, in this project's own labels.

The label count sets the shape of the classifier head, the loss and every per-label column, so
this runs for every answer set; runs, resume and tracking are covered once, by the engine tests
(``-m engine``).
"""

from __future__ import annotations

import csv
import json

from conftest import labelled_records, train_briefly, write_labelled


def test_train_then_predict_in_the_projects_labels(tiny_model_dir, project_dir, config):
    from nsmc_sentiment_classifier import cli

    names = list(config.data.label_names)
    run_dir = train_briefly(project_dir, config, tiny_model_dir, "--max_steps", "3", "--report_to", "none")
    model_dir = run_dir / "model"
    saved = json.loads((model_dir / "config.json").read_text("utf-8"))
    assert saved["id2label"] == {str(index): name for index, name in enumerate(names)}
    assert saved["label_scheme"] == config.data.label_scheme.name
    # A text-pair model records its two text columns: how whatever serves it knows to ask for both.
    pair_columns = list(config.data.text_columns) if config.data.pair_column else None
    assert saved.get("text_pair_columns") == pair_columns
    # The model card shows the baseline to beat beside the model's figures, on the same split.
    card = (model_dir / "README.md").read_text("utf-8")
    assert "The baseline to beat" in card and "TF-IDF + logistic regression" in card
    metrics = json.loads((run_dir / "metrics_validation.json").read_text("utf-8"))
    assert set(metrics["per_class"]) == set(names) and metrics["num_examples"] == 16
    multi_label = config.data.task == "multi_label"
    if multi_label:  # thresholds tuned on validation, and bars per label instead of a matrix
        assert len(saved["label_thresholds"]) == len(names)
        assert (run_dir / "per_label_validation.png").stat().st_size > 0
    else:
        assert len(metrics["confusion_matrix"]) == len(names)

    # predict, on a file as this project's data holds it, finds the run's model by itself.
    source = write_labelled(project_dir / "texts.csv", config, labelled_records(config, 10, offset=100))
    out = project_dir / "predictions.csv"
    assert cli.main(["predict", str(source), "--out", str(out), "--no-progress"]) == 0
    with open(out, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    # A label set for a multi-label model, else the best label and its score.
    decided = ["predicted_labels"] if multi_label else ["predicted_label", "score"]
    added = [*decided, *(f"score_{name}" for name in names)]
    assert reader.fieldnames is not None and reader.fieldnames[-len(added) :] == added
    assert len(rows) == 10
    for row in rows:
        scores = [float(row[f"score_{name}"]) for name in names]
        if multi_label:  # every label reaching its threshold, joined by the delimiter
            decided = (
                row["predicted_labels"].split(config.data.label_delimiter) if row["predicted_labels"] else []
            )
            assert decided == [name for name in names if name in decided]  # in label-id order
            for name, score, low in zip(names, scores, saved["label_thresholds"], strict=True):
                # The file's scores have 6 decimals: a score that close to its threshold may round
                # across it (a briefly trained model's scores and thresholds are close together).
                if abs(score - low) > 1e-5:
                    assert (name in decided) == (score >= low), (name, score, low)
        else:
            assert abs(sum(scores) - 1) < 1e-4
            assert row["predicted_label"] == names[scores.index(max(scores))]
