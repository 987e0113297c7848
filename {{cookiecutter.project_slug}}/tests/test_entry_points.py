"""Training entry points: the ``training/train_*.py`` modules, found in one place and named one way
in every command and every record of a run."""

from __future__ import annotations

import importlib.util
import json
import logging

import pytest
from conftest import PACKAGE, train_briefly

from nsmc_sentiment_classifier import cli
from nsmc_sentiment_classifier.errors import UsageError
from nsmc_sentiment_classifier.training import entry_points

HAS_SAGEMAKER = importlib.util.find_spec(f"{PACKAGE}.aws") is not None


def test_the_entry_points_are_the_train_modules():
    assert entry_points.entry_points() == ("train_hf", "train_torch")
    assert entry_points.check_entry_point("torch") == entry_points.check_entry_point("train_torch")
    assert entry_points.module_path("hf") == f"{PACKAGE}.training.train_hf"
    for name in entry_points.entry_points():
        backend = entry_points.backend_for(name)
        assert backend.checkpoint_marker, name
    with pytest.raises(UsageError, match=r"unknown training entry point 'tf'.*train_hf, train_torch"):
        entry_points.check_entry_point("tf")


def test_train_offers_every_entry_point(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "--entry {hf,torch}" in capsys.readouterr().out


@pytest.mark.skipif(not HAS_SAGEMAKER, reason="generated without the sagemaker part")
def test_sagemaker_offers_the_same_entry_points(config, capsys):
    from nsmc_sentiment_classifier.aws import training

    with pytest.raises(SystemExit):
        cli.main(["sagemaker", "train", "--help"])
    assert "--entry-point {train_hf,train_torch}" in capsys.readouterr().out
    assert config.sagemaker.entry_point in entry_points.entry_points()
    with pytest.raises(UsageError, match="unknown entry point 'train_tf'"):
        training.plan_training(config, mode="process", entry_point="train_tf")


@pytest.mark.engine
@pytest.mark.slow
def test_a_run_names_its_entry_point_one_way_everywhere(
    tiny_model_dir, project_dir, config, capsys, monkeypatch
):
    """hyperparameters.json used to say "torch" where run.json, MLflow and the card said
    "train_torch"."""
    # The run configures the root logger for its process (onto this test's captured stdout):
    # later tests must not log there.
    monkeypatch.setattr(logging.root, "handlers", logging.root.handlers[:])
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    store = f"sqlite:///{(project_dir / 'mlflow.db').as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    run_dir = train_briefly(
        project_dir, config, tiny_model_dir, "--entry", "torch", "--max_steps", "2", "--report_to", "mlflow"
    )
    hyperparameters = json.loads((run_dir / "hyperparameters.json").read_text("utf-8"))
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert hyperparameters["entry_point"] == record["identity"]["entry_point"] == "train_torch"
    assert "`train_torch`" in (run_dir / "model" / "README.md").read_text("utf-8")

    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=store).get_run(record["mlflow_run_id"])
    assert run.data.params["entry_point"] == run.data.tags["entry_point"] == "train_torch"
