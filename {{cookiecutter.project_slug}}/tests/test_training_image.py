"""The training entry points under the transformers of the default SageMaker training image.

A hosted job runs ``train_hf`` or ``train_torch`` in the Hugging Face training image that
config.toml names (its sagemaker table's transformers_version), not under the transformers this
project is developed with: code that needs a newer transformers would fail there, on a paid
instance. Here both entry points run in process mode (the container's environment, /opt/ml
layout and staged code) with the python of a virtualenv that has that transformers; point
TRAINING_PYTHON at it. One way to build it (CPU torch stands in for the image's CUDA build):

    python -m venv ~/training-venv     # outside the project
    ~/training-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    ~/training-venv/bin/pip install "transformers==<transformers_version>" .
    TRAINING_PYTHON=~/training-venv/bin/python pytest tests/test_training_image.py

The template builds it with its ``.ci/training-env.sh``. A test fails when that virtualenv and
config.toml's training image drift apart.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess

import pytest
from conftest import PACKAGE, labelled_records, pair_text, write_labelled

if importlib.util.find_spec(f"{PACKAGE}.aws") is None:
    pytest.skip("generated without the sagemaker part: no training image to match", allow_module_level=True)
pytest.importorskip("sagemaker", reason="the 'sagemaker' extra is not installed (process mode needs it)")

TRAINING_PYTHON = os.environ.get("TRAINING_PYTHON", "")
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        not TRAINING_PYTHON,
        reason="set TRAINING_PYTHON to the python of a venv with the transformers of the training image "
        "(config.toml: sagemaker.transformers_version; see this file's docstring)",
    ),
]


def clean_environment(home):
    """Nothing of this project's environment (its site, its transformers) reaches the venv."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OMP_NUM_THREADS": "1"}


def test_the_training_environment_runs_the_default_training_image(config, tmp_path):
    found = subprocess.run(
        [TRAINING_PYTHON, "-c", "import transformers; print(transformers.__version__)"],
        env=clean_environment(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    image = config.sagemaker.transformers_version
    assert found == image, (
        f"TRAINING_PYTHON runs transformers {found}, but the training image of config.toml "
        f"(sagemaker.transformers_version) has transformers {image}: rebuild the virtualenv "
        "for that image, or change the image"
    )


@pytest.fixture
def prepared(project_dir, config):
    """data/prepared/{train,validation,test}/<split>.jsonl in a scratch project folder."""
    records = labelled_records(config, 80)
    random.Random(0).shuffle(records)
    start = 0
    for split, size in {"train": 48, "validation": 16, "test": 16}.items():
        path = project_dir / "data" / "prepared" / split / f"{split}.jsonl"
        write_labelled(path, config, records[start : start + size], ids=True, with_id_column=False)
        start += size
    return project_dir / "data" / "prepared"


@pytest.mark.slow
@pytest.mark.parametrize("entry_point", ["train_hf", "train_torch"])
def test_entry_point_trains_under_the_training_image(
    entry_point, prepared, config, tiny_model_dir, tmp_path, capsys, monkeypatch
):
    from nsmc_sentiment_classifier import cli
    from nsmc_sentiment_classifier.serving import batch

    hyperparameters = {
        "model_name_or_path": tiny_model_dir,
        "max_steps": 4,
        "batch_size": 8,
        "eval_batch_size": 16,
        "max_seq_length": 32,
        "logging_steps": 1,
        "mixed_precision": "no",
        # Several evaluations, so that the best model is restored from a checkpoint that the
        # image's transformers wrote (not necessarily the last one).
        "eval_strategy": "steps",
        "eval_steps": 1,
        "early_stopping_patience": 0,
        "learning_rate": 0.01,
    }
    # The entry point logs to MLflow as a job does (here a local store, not a tracking server).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "tracking" / "mlflow.db"
    code = cli.main(
        [
            "sagemaker",
            "train",
            "--mode",
            "process",
            "--entry-point",
            entry_point,
            "--python",
            TRAINING_PYTHON,
            "--mlflow",
            f"sqlite:///{store.as_posix()}",
            "--work-dir",
            str(tmp_path / "work"),
            *(arg for key, value in hyperparameters.items() for arg in ("--hp", f"{key}={value}")),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.out[-6000:] + captured.err[-3000:]
    [job_dir] = (tmp_path / "work").iterdir()
    ml = job_dir / "opt" / "ml"
    model_dir = ml / "model"
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "model.safetensors").is_file()
    assert (ml / "output" / "data" / "metrics_validation.json").is_file()
    assert f"eval_{config.data.label_scheme.best_metric}=" in captured.out
    assert store.is_file()

    if entry_point == "train_hf":
        # The saved model is the best checkpoint, every weight of it (transformers 5.3 writes
        # LayerNorm weights as gamma/beta, which its Trainer's own reload skipped).
        import json

        import torch
        from transformers import AutoModelForSequenceClassification

        states = sorted(ml.glob("checkpoints/*/checkpoint-*/trainer_state.json"))
        best = json.loads(states[-1].read_text(encoding="utf-8"))["best_model_checkpoint"]
        saved = AutoModelForSequenceClassification.from_pretrained(model_dir).state_dict()
        expected = AutoModelForSequenceClassification.from_pretrained(best).state_dict()
        assert saved.keys() == expected.keys()
        differing = [name for name in saved if not torch.equal(saved[name], expected[name])]
        assert differing == [], (best, differing[:5])

    # The model the image's transformers saved loads and predicts here.
    classifier = batch.load_classifier(model_dir)
    text, _ = labelled_records(config, 1, offset=100)[0]
    pairs = [pair_text(text)] if config.data.pair_column else None  # a text-pair project's model
    prediction = batch.classify(classifier, [text], progress=False, pairs=pairs)
    assert list(prediction.labels) == list(config.data.label_names)
    assert prediction.scheme.name == config.data.label_scheme.name  # recorded in config.json
    [scores] = prediction.scores
    assert len(scores) == len(config.data.label_names)
    if config.data.label_scheme.name == "multi_label":  # a sigmoid per label
        assert all(0.0 <= score <= 1.0 for score in scores)
    else:  # a softmax over the labels
        assert abs(sum(scores) - 1) <= 1e-4
