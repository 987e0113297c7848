"""Run records without training: MLflow tracking (a local store) and the model card."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time

import pytest
from conftest import PACKAGE

from nsmc_sentiment_classifier.training import model_card, tracking


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_local_tracking_records_params_metrics_and_files(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # the store goes to the project root, not the working directory
    project = tmp_path / "project"
    tracker = tracking.start_tracking(
        backend="mlflow",
        project_root=project,
        experiment="my-project",
        run_name="run-1",
        tags={"fingerprint": "abc"},
    )
    assert tracker.run_id and tracker.tracking_uri == tracking.local_store_uri(project)
    tracker.log_params({"learning_rate": 5e-5, "label_names": ["부정", "긍정"], "long": "x" * 10_000})
    tracker.log_metrics(
        {"train_loss": 0.7, "skipped_bool": True, "skipped_nan": float("nan"), "note": "x"}, 10
    )
    tracker.log_metrics({"train_loss": 0.5, "eval_accuracy": 0.8}, 20)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics_test.json").write_text("{}")
    (tmp_path / "out" / "model").mkdir()
    (tmp_path / "out" / "model" / "model.safetensors").write_text("big")
    tracker.log_artifacts(tmp_path / "out", skip=("model",))
    tracker.finish()
    tracker.finish()  # idempotent

    client = _client(tracking.local_store_uri(project))
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run-1"
    assert run.data.params["learning_rate"] == "5e-05" and "부정" in run.data.params["label_names"]
    assert len(run.data.params["long"]) == 6000
    assert run.data.tags["fingerprint"] == "abc"
    history = client.get_metric_history(tracker.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(10, 0.7), (20, 0.5)]
    assert set(run.data.metrics) == {"train_loss", "eval_accuracy"}
    assert [a.path for a in client.list_artifacts(tracker.run_id)] == ["metrics_test.json"]
    assert (project / "mlruns" / "mlflow.db").is_file() and not (tmp_path / "mlruns").exists()

    # A resumed training run continues the same MLflow run; the same params again are fine.
    again = tracking.start_tracking(
        backend="mlflow", project_root=project, experiment="my-project", run_name="run-1",
        resume_run_id=tracker.run_id,
    )  # fmt: skip
    assert again.run_id == tracker.run_id
    again.log_params({"learning_rate": 5e-5})
    again.log_metrics({"train_loss": 0.3}, 30)
    again.finish("FAILED")
    assert [m.step for m in client.get_metric_history(tracker.run_id, "train_loss")] == [10, 20, 30]
    assert client.get_run(tracker.run_id).info.status == "FAILED"


def test_tracking_uri_from_the_environment(tmp_path, monkeypatch):
    uri = f"sqlite:///{(tmp_path / 'elsewhere.db').as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = tracking.start_tracking(
        backend="mlflow", project_root=tmp_path / "p", experiment="e", run_name="r"
    )
    assert tracker.tracking_uri == uri and (tmp_path / "elsewhere.db").is_file()
    tracker.finish()
    assert not (tmp_path / "p" / "mlruns").exists()


def test_an_unreachable_server_is_one_warning_and_no_op(tmp_path, monkeypatch, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        tracker = tracking.start_tracking(
            backend="mlflow", project_root=tmp_path, experiment="e", run_name="r"
        )
        tracker.log_params({"a": 1})
        tracker.log_metrics({"m": 1.0}, 1)
        tracker.finish()
    assert time.monotonic() - started < 60
    assert tracker.run_id is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "tracking" in r.getMessage()]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0].getMessage()


def test_tracking_off_does_not_import_mlflow():
    code = (
        f"import sys; from {PACKAGE}.training import tracking; "
        "t = tracking.start_tracking(backend='none', project_root='.', experiment='e', run_name='r'); "
        "t.log_metrics({'a': 1}, 1); t.finish(); print('mlflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


METRICS = {
    "accuracy": 0.875, "macro_f1": 0.85, "loss": 0.31, "num_examples": 8,
    "per_class": {"부정": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 5},
                  "a|b": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 3}},
}  # fmt: skip


@pytest.mark.parametrize("local", [False, True])
def test_model_card(tmp_path, local):
    from huggingface_hub import ModelCard

    base = str(tmp_path / "models" / "my-encoder") if local else "org/encoder-{{x}}"
    if local:
        (tmp_path / "models" / "my-encoder").mkdir(parents=True)
    path = model_card.write_model_card(
        tmp_path / "model",
        project_name="리뷰 classifier",
        run_id="20261128-120000-abcdef12",
        fingerprint="abcdef1234567890",
        entry_point="train_torch",
        base_model=base,
        label_names=["부정", "a|b"],
        label_counts={"train": [70, 30], "validation": [5, 3], "test": [5, 3]},
        metrics={"validation": METRICS, "test": METRICS},
        options={"learning_rate": 5e-5, "model_name_or_path": base, "label_names": ["부정", "a|b"]},
        max_length=128,
        versions={"transformers": "5.0", "torch": "2.13"},
        created="2026-11-28T12:00:00+00:00",
    )
    assert path == tmp_path / "model" / "README.md"
    card = ModelCard.load(path)
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    text = path.read_text(encoding="utf-8")
    assert "| 1 | a\\|b | 30 | 3 | 3 |" in text  # a pipe in a label name stays in its cell
    assert "| 0 | 부정 | 70 | 5 | 5 |" in text
    assert "| test | 8 | 0.8750 | 0.8500 | 0.3100 |" in text
    assert "20261128-120000-abcdef12" in text and "128 tokens" in text
    assert str(tmp_path) not in text  # no folder of the training machine
    if local:
        assert card.data.base_model is None and "local model folder (`my-encoder`)" in text
    else:
        assert card.data.base_model == base and "{{x}}" in text
    results = card.data.eval_results
    assert {(r.dataset_split, r.metric_type, r.metric_value) for r in results} >= {
        ("test", "accuracy", 0.875)
    }
