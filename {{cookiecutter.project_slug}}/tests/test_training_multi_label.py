"""Multi-label training with both entry points, in a project switched to ``task = "multi_label"``
(whatever answers this one was generated with): label sets in, tuned thresholds, multi-label
metrics, per-label plot and model card out; the best model picked on micro-F1."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import build_tiny_model, labelled_records, read_jsonl

from nsmc_sentiment_classifier import cli, label_schemes
from nsmc_sentiment_classifier.data import io
from nsmc_sentiment_classifier.training import (
    model_card,
    options,
    pipeline,
)

NAMES = ["hate", "gender", "spam"]
MULTI = label_schemes.get("multi_label")


def marker(label_id: int) -> str:
    """A distinct syllable per label, put into the texts that hold it (something to learn)."""
    return chr(0xB098 + 29 * label_id)


def label_sets(count: int) -> list[tuple[int, ...]]:
    """Every subset of the three labels in turn, the empty one included."""
    return [tuple(i for i in range(len(NAMES)) if index % 8 >> i & 1) for index in range(count)]


@pytest.fixture(scope="module")
def texts(config) -> list[str]:
    return [text for text, _ in labelled_records(config, 48)]


@pytest.fixture(scope="module")
def multi_model_dir(tmp_path_factory, texts) -> Path:
    marked = [" ".join(marker(i) for i in range(len(NAMES))) + " " + text for text in texts]
    return build_tiny_model(tmp_path_factory.mktemp("tiny-multi"), marked, len(NAMES), NAMES)


def switch_to_multi_label(project_dir: Path, metric: str = "micro_f1") -> None:
    """config.toml's [data] and [train] keys for a three-label multi-label project."""
    path = project_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    replacements = {
        "label_names": json.dumps(NAMES),
        "task": '"multi_label"',
        "label_layout": '"column"',
        "metric_for_best_model": f'"{metric}"',
    }
    for key, value in replacements.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, key
    path.write_text(text, encoding="utf-8")


def write_channels(project_dir: Path, config, texts: list[str]) -> dict[str, list[tuple[int, ...]]]:
    """Prepared channels as `data prepare` writes them: the label column holds a JSON list of
    label ids (``[]`` for none)."""
    targets = label_sets(len(texts))
    splits = {"train": range(32), "validation": range(32, 48)}
    for split, indices in splits.items():
        rows = [
            {
                config.data.text_column: " ".join(marker(i) for i in targets[index]) + " " + texts[index],
                config.data.label_column: list(targets[index]),
            }
            for index in indices
        ]
        folder = project_dir / "channels" / split
        folder.mkdir(parents=True, exist_ok=True)
        io.write_jsonl(folder / f"{split}.jsonl", rows)
    return {split: [targets[index] for index in indices] for split, indices in splits.items()}


def train(project_dir: Path, model_dir: Path, *flags: str) -> int:
    channels = project_dir / "channels"
    return cli.main(
        [
            "train",
            "--model_name_or_path", str(model_dir),
            "--train_dir", str(channels / "train"),
            "--validation_dir", str(channels / "validation"),
            "--batch_size", "8", "--eval_batch_size", "16", "--max_seq_length", "32",
            "--report_to", "none",
            *flags,
        ]
    )  # fmt: skip


@pytest.mark.parametrize("entry", ["hf", "torch"])
def test_a_multi_label_run_tunes_thresholds_and_scores_with_them(
    entry, multi_model_dir, texts, project_dir, config
):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    switch_to_multi_label(project_dir)
    targets = write_channels(project_dir, config, texts)
    flags = ["--max_steps", "6", "--eval_strategy", "steps", "--eval_steps", "2", "--learning_rate", "1e-3"]
    code = train(project_dir, multi_model_dir, "--entry", entry, *flags, "--class_weights", "balanced")
    assert code == 0
    latest = json.loads((project_dir / "outputs" / "latest.json").read_text("utf-8"))
    run_dir = project_dir / latest["run_dir"]

    saved = json.loads((run_dir / "model" / "config.json").read_text("utf-8"))
    assert saved["label_scheme"] == "multi_label"
    assert saved["problem_type"] == "multi_label_classification"
    thresholds = saved["label_thresholds"]
    assert len(thresholds) == len(NAMES) and all(0.0 <= value <= 1.0 for value in thresholds)

    metrics = json.loads((run_dir / "metrics_validation.json").read_text("utf-8"))
    assert set(MULTI.metric_names) <= set(metrics) and "confusion_matrix" not in metrics
    assert metrics["thresholds"] == dict(zip(NAMES, thresholds, strict=True))
    assert metrics["empty_true"] == sum(1 for target in targets["validation"] if not target) == 2
    assert (run_dir / "per_label_validation.png").stat().st_size > 0
    assert not (run_dir / "confusion_matrix_validation.png").exists()

    # The reported figures are the saved model's: scored again here with its recorded thresholds.
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    scheme = label_schemes.for_model(model.config)
    rows = read_jsonl(project_dir / "channels" / "validation" / "validation.jsonl")
    batch = tokenizer([row[config.data.text_column] for row in rows], padding=True, return_tensors="pt")
    with torch.inference_mode():
        probabilities = scheme.probabilities(model(**batch).logits)
    again = scheme.compute_metrics(targets["validation"], scheme.predict(probabilities), NAMES)
    # A score within float noise of its threshold (a freshly trained tiny model's scores lie close
    # together) may be decided either way by another forward pass (other batch shapes, other
    # thread counts); each such decision moves micro-F1 by at most 3 / (labels the rows hold).
    on_edge = sum(abs(p - t) < 1e-5 for row in probabilities for p, t in zip(row, thresholds, strict=True))
    held = sum(len(target) for target in targets["validation"])
    assert abs(again["micro_f1"] - metrics["micro_f1"]) <= 3 * on_edge / held + 1e-6, (
        on_edge,
        again,
        metrics,
    )

    # The best model is picked on micro-F1 (higher is better).
    results = json.loads((run_dir / "train_results.json").read_text("utf-8"))
    scores = [entry["eval_micro_f1"] for entry in results["history"] if "eval_micro_f1" in entry]
    assert len(scores) == 3 and results["best_metric"] == pytest.approx(max(scores))
    assert {"validation_micro_f1", "validation_hamming_loss"} <= set(results["final_metrics"])

    # balanced: a positive weight per label, its negatives / positives among the training rows.
    hyperparameters = json.loads((run_dir / "hyperparameters.json").read_text("utf-8"))
    assert hyperparameters["class_weight_values"] == pytest.approx(
        MULTI.class_weights("balanced", targets["train"], NAMES)
    )
    card = (run_dir / "model" / "README.md").read_text("utf-8")
    assert "| | (no label) | 4 | 2 |" in card and "threshold" in card and "micro F1" in card


def test_a_metric_of_another_scheme_fails_naming_the_schemes_choices(
    multi_model_dir, texts, project_dir, config, capsys
):
    switch_to_multi_label(project_dir, metric="accuracy")
    write_channels(project_dir, config, texts)
    assert train(project_dir, multi_model_dir, "--max_steps", "1") == 2
    assert (
        "--metric_for_best_model accuracy: not a metric of multi_label (the project's [data].task); "
        "choose one of micro_f1, macro_f1, micro_precision, micro_recall, hamming_loss, exact_match, loss"
    ) in capsys.readouterr().err


def test_the_single_label_scheme_refuses_multi_label_metrics(project_dir):
    parsed = options.parse_options(["--model_name_or_path", "m", "--report_to", "none"], {})
    single = dataclasses.replace(parsed, task="single_label", metric_for_best_model="micro_f1")
    assert options.check_metric(single) == [
        "--metric_for_best_model micro_f1: not a metric of single_label (the project's [data].task); "
        "choose one of accuracy, macro_f1, loss"
    ]
    assert options.check_metric(dataclasses.replace(single, metric_for_best_model="loss")) == []


def test_which_way_is_better():
    single = label_schemes.get("single_label")
    assert pipeline.best_is_higher("micro_f1", MULTI) and pipeline.best_is_higher("accuracy", single)
    assert not pipeline.best_is_higher("hamming_loss", MULTI)
    assert not pipeline.best_is_higher("loss", MULTI) and not pipeline.best_is_higher("loss", single)


def test_the_multi_label_model_card_shows_thresholds_rows_without_label_and_its_scores(tmp_path):
    tuned = MULTI.tune([[0.9, 0.2, 0.6], [0.1, 0.8, 0.4]], [(0,), (1, 2)])
    metrics = {
        **tuned.compute_metrics([(0,), (1, 2)], [(0,), (1,)], NAMES),
        "loss": 0.4,
    }
    path = model_card.write_model_card(
        tmp_path / "model",
        project_name="toxic",
        run_id="run",
        fingerprint="f",
        entry_point="train_hf",
        base_model="org/model",
        label_names=NAMES,
        scheme=tuned,
        label_counts={"train": [3, 2, 1], "validation": [1, 1, 1]},
        split_rows={"train": 5, "validation": 2},
        rows_without_label={"train": 1, "validation": 0},
        metrics={"validation": metrics},
        options={},
        max_length=32,
        versions={},
        created="2026-12-06",
    )
    text = path.read_text("utf-8")
    assert "any number of its 3 labels" in text
    thresholds = tuned.model_config()["label_thresholds"]
    assert f"| 0 | hate | 3 | 1 | {thresholds[0]:.4f} |" in text
    assert "| | (no label) | 1 | 0 | |" in text
    assert "| train | 5 |" in text and "| validation | 2 |" in text
    assert (
        "| split | examples | micro F1 | macro F1 | micro precision | micro recall | hamming loss |" in text
    )
    assert f"| validation | 2 | {metrics['micro_f1']:.4f} |" in text
    assert "Per label, validation split:" in text and "label_thresholds" in text
    from huggingface_hub import ModelCard

    kinds = {(r.metric_type, r.metric_name) for r in ModelCard.load(path).data.eval_results}
    assert {("f1", "Micro F1"), ("hamming_loss", "Hamming loss"), ("loss", "Loss")} <= kinds


def test_mlflow_gets_the_label_counts_and_thresholds():
    from nsmc_sentiment_classifier.training.data import (
        RunData,
        TokenizedSplit,
    )

    def split(name: str, targets: list) -> TokenizedSplit:
        return TokenizedSplit(name, [{"input_ids": [1]} for _ in targets], targets)

    data = RunData(split("train", [(0,), (0, 2), ()]), split("validation", [(1,)]), None, tuple(NAMES), 8)
    tuned = MULTI.tune([[0.9, 0.2, 0.6], [0.1, 0.8, 0.4]], [(0,), (1, 2)])
    params, metrics = pipeline.tracked_labels(tuned, data)
    assert params == {
        "label_scheme": "multi_label",
        "train_rows.hate": 2,
        "train_rows.gender": 0,
        "train_rows.spam": 1,
        "train_rows_without_label": 1,
    }
    assert metrics == {
        f"threshold.{n}": t for n, t in zip(NAMES, tuned.model_config()["label_thresholds"], strict=True)
    }
    single = RunData(split("train", [0, 1, 1]), split("validation", [1]), None, ("a", "b"), 8)
    assert pipeline.tracked_labels(label_schemes.get("single_label"), single) == (
        {"label_scheme": "single_label", "train_rows.a": 1, "train_rows.b": 2, "train_rows_without_label": 0},
        {},
    )
