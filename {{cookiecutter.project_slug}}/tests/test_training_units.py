"""Fast checks of the training building blocks: option parsing (SageMaker contract), batching,
checkpoint discovery, metric lines and metrics."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from nsmc_sentiment_classifier import label_schemes
from nsmc_sentiment_classifier import metrics as metrics_module
from nsmc_sentiment_classifier.options import (
    parse_bool,
    parse_float,
    parse_int,
)
from nsmc_sentiment_classifier.training import (
    artifacts,
    checkpoints,
    options,
)
from nsmc_sentiment_classifier.training import data as training_data


@pytest.mark.parametrize(
    "text,expected",
    [
        ("True", True),
        ("true", True),
        ("1", True),
        ("yes", True),
        ('"on"', True),
        (" Y ", True),
        ("False", False),
        ("0", False),
        ("no", False),
        ("'off'", False),
        ("none", False),
    ],
)
def test_bool_parsing_accepts_sagemaker_strings(text, expected):
    assert parse_bool(text) is expected


def test_number_parsing_is_robust():
    assert parse_int("3") == 3
    assert parse_int("3.0") == 3
    assert parse_int('"1e3"') == 1000
    assert parse_float("5e-5") == pytest.approx(5e-5)
    assert parse_float("'0.1'") == pytest.approx(0.1)
    for bad, parser in (
        ("2.5", parse_int),
        ("maybe", parse_bool),
        ("abc", parse_float),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            parser(bad)


def test_container_contract_paths_and_hyperparameters(tmp_path, config):
    environ = {
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
        "SM_CHANNEL_TRAIN": str(tmp_path / "train"),
        "SM_CHANNEL_VALIDATION": str(tmp_path / "validation"),
        "SM_CHANNEL_CODE": str(tmp_path / "code"),
        "SM_CHANNEL_SM_DRIVERS": str(tmp_path / "sm_drivers"),
        "SM_NUM_GPUS": "0",
        "SM_HPS": json.dumps({"warmup_ratio": "0.2", "not_ours": 1}),
    }
    parsed = options.parse_options(
        [
            "--epochs",
            "2",
            "--group_by_length",
            "False",
            "--learning_rate",
            "1e-3",
            "--batch-size",
            "16",
            "--sagemaker_program",
            "train.py",
            "--mixed_precision",
            "NO",
        ],
        environ,
    )
    assert parsed.model_dir == environ["SM_MODEL_DIR"]
    assert parsed.output_data_dir == environ["SM_OUTPUT_DATA_DIR"]
    assert parsed.train_dir == environ["SM_CHANNEL_TRAIN"]
    assert parsed.validation_dir == environ["SM_CHANNEL_VALIDATION"]
    assert parsed.test_dir is None  # no test channel: optional
    assert parsed.checkpoint_dir in (config.options.checkpoint_dir, options.SAGEMAKER_CHECKPOINT_DIR)
    assert (parsed.epochs, parsed.group_by_length, parsed.batch_size) == (2.0, False, 16)
    assert parsed.learning_rate == pytest.approx(1e-3)
    assert parsed.warmup_ratio == pytest.approx(0.2)  # from SM_HPS
    assert parsed.mixed_precision == "no"
    # Everything else comes from the config file.
    assert parsed.model_name_or_path == config.options.model_name_or_path
    assert parsed.max_seq_length == config.options.max_seq_length
    assert parsed.label_names == config.data.label_names


def test_local_defaults_come_from_config(config):
    parsed = options.parse_options([], {})
    assert parsed.train_dir.endswith("train") and config.data.prepared_dir in parsed.train_dir
    assert parsed.checkpoint_dir in (config.options.checkpoint_dir, options.SAGEMAKER_CHECKPOINT_DIR)
    assert parsed.batch_size == config.options.batch_size
    assert parsed.epochs == config.options.epochs


def test_unknown_or_invalid_options_fail_clearly(capsys):
    with pytest.raises(SystemExit):
        options.parse_options(["--learning_rat", "1e-3"], {})
    assert "unrecognized arguments: --learning_rat" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        options.parse_options(["--group_by_length", "perhaps"], {})
    assert "expected a boolean" in capsys.readouterr().err
    with pytest.raises(options.OptionError, match="--batch_size must be at least 1"):
        options.parse_options(["--batch_size", "0"], {})


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_batch_plan_covers_every_example_with_little_padding(world_size):
    import random

    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(1001)]
    seen, real, processed, counts = set(), 0, 0, set()
    for rank in range(world_size):
        plan = training_data.BatchPlan(lengths, 16, True, seed=1, rank=rank, world_size=world_size)
        batches = plan.epoch(0)
        counts.add(len(batches))
        assert len(batches) == len(plan)
        for batch in batches:
            seen.update(batch)
            real += sum(lengths[i] for i in batch)
            processed += max(lengths[i] for i in batch) * len(batch)
    assert seen == set(range(len(lengths)))
    assert len(counts) == 1  # same number of steps on every rank, or DDP would hang
    assert real / processed > 0.9
    # The Trainer gets the plan as a flat index stream and re-cuts it into batches: same batches.
    single = training_data.BatchPlan(lengths, 16, True, seed=1)
    flat = list(training_data.PlanSampler(single))
    assert [flat[i : i + 16] for i in range(0, len(flat), 16)] == single.epoch(0)
    assert max(lengths[i] for i in single.epoch(0)[0]) == max(lengths)  # longest batch first
    # Reproducible per epoch (what resume relies on), different between epochs.
    again = training_data.BatchPlan(lengths, 16, True, seed=1, world_size=1)
    assert again.epoch(3) == training_data.BatchPlan(lengths, 16, True, seed=1).epoch(3)
    assert again.epoch(3) != again.epoch(4)


def test_checkpoint_discovery_skips_incomplete_and_foreign(tmp_path):
    marker = "loop_state.json"
    for step, complete in ((10, True), (30, False), (20, True), (40, True)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / (marker if step != 40 else "trainer_state.json")).write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path, marker)] == [
        "checkpoint-10",
        "checkpoint-20",
    ]
    assert checkpoints.list_checkpoints(tmp_path / "missing", marker) == []
    checkpoints.rotate(tmp_path, marker, keep=1, protect=[tmp_path / "checkpoint-10"])
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path, marker)] == [
        "checkpoint-10",
        "checkpoint-20",
    ]
    checkpoints.rotate(tmp_path, marker, keep=1)
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path, marker)] == ["checkpoint-20"]


@pytest.mark.parametrize("marker", ["loop_state.json", "trainer_state.json"])
def test_a_cut_short_marker_means_incomplete_not_a_crash(marker, tmp_path, caplog):
    """A process killed while writing its state leaves a truncated marker behind."""
    for step, text in ((10, '{"global_step": 10}'), (20, '{"global_step": 2'), (30, ""), (40, "[]")):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / marker).write_text(text, encoding="utf-8")
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path, marker)] == ["checkpoint-10"]
    assert "ignoring" in caplog.text and "checkpoint-20" in caplog.text
    assert not checkpoints.is_complete(tmp_path / "checkpoint-20", marker)


def test_metric_lines_match_sagemaker_definitions():
    line = artifacts.metric_line(
        {
            "step": 12,
            "epoch": 0.5,
            "train_loss": 0.69314718,
            "eval_loss": 1.5e-05,
            "eval_accuracy": 0.875,
            "note": "x",
        }
    )
    assert line == (
        "metrics: step=12; epoch=0.5; train_loss=0.693147; eval_loss=1.5e-05; eval_accuracy=0.875;"
    )
    found = {}
    for definition in artifacts.metric_definitions():
        match = re.search(definition["Regex"], line)
        if match:
            found[definition["Name"]] = float(match.group(1))
    assert found == {"epoch": 0.5, "train_loss": 0.693147, "eval_loss": 1.5e-05, "eval_accuracy": 0.875}


def test_compute_metrics_and_confusion_matrix_png(tmp_path):
    names = ["부정", "긍정", "중립"]
    result = label_schemes.get().compute_metrics([0, 1, 1, 0, 2], [0, 1, 0, 0, 1], names)
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert set(result["per_class"]) == set(names)
    assert result["per_class"]["중립"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert 0 < result["macro_f1"] < 1
    path = metrics_module.save_confusion_matrix_png(result["confusion_matrix"], names, tmp_path / "cm.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="outside"):
        label_schemes.get().compute_metrics([0, 3], [0, 0], names)


def test_container_without_train_channel_is_a_clear_error(project_dir):
    """A local data/prepared folder must not stand in for a channel SageMaker did not mount."""
    tmp_path = project_dir
    (tmp_path / "data" / "prepared" / "train").mkdir(parents=True)
    environ = {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_CHANNEL_VALIDATION": str(tmp_path / "validation")}
    with pytest.raises(options.OptionError, match="no train data: the SageMaker job has no 'train'"):
        options.parse_options([], environ)


def test_training_arguments_refuse_a_keyword_transformers_lacks(monkeypatch):
    """A transformers without one of the Trainer settings the project sets fails naming it,
    rather than training differently without a word."""
    import dataclasses
    from types import SimpleNamespace
    from typing import Any, cast

    import torch
    from transformers import TrainingArguments

    from nsmc_sentiment_classifier.training import train_hf

    runtime = SimpleNamespace(precision="no", device=torch.device("cpu"), distributed=False)
    schedule = SimpleNamespace(warmup_steps=0)
    context = cast(
        Any, SimpleNamespace(options=options.parse_options([], {}), runtime=runtime, schedule=schedule)
    )
    assert train_hf.training_arguments(context).use_cpu
    fields = [field.name for field in dataclasses.fields(TrainingArguments) if field.name != "use_cpu"]
    without_use_cpu = dataclasses.make_dataclass(
        "TrainingArguments", [(name, Any, dataclasses.field(default=None)) for name in fields]
    )
    monkeypatch.setattr(train_hf, "TrainingArguments", without_use_cpu)
    with pytest.raises(RuntimeError, match=r"transformers [\d.]+\w*: TrainingArguments has no use_cpu"):
        train_hf.training_arguments(context)


def test_weight_decay_spares_biases_and_normalisation_weights():
    from transformers import BertConfig, BertForSequenceClassification

    from nsmc_sentiment_classifier.training.train_torch import (
        parameter_groups,
    )

    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    model = BertForSequenceClassification(config)
    decay, plain = parameter_groups(model, 0.01)
    assert (decay["weight_decay"], plain["weight_decay"]) == (0.01, 0.0)
    name = {id(parameter): name for name, parameter in model.named_parameters()}
    decayed = [name[id(parameter)] for parameter in decay["params"]]
    spared = [name[id(parameter)] for parameter in plain["params"]]
    assert sorted(decayed + spared) == sorted(name.values())  # each once
    assert {"classifier.weight", "bert.embeddings.word_embeddings.weight"} <= set(decayed)
    assert {"classifier.bias", "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"} <= set(
        spared
    )
    assert not [n for n in decayed if n.endswith("bias") or "LayerNorm" in n]
