"""Run records without training: MLflow tracking (local SQLite stores) and the model card.

Creating an MLflow SQLite store runs its schema migrations (seconds), so the tracking tests
share one store and keep to their own experiments.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PACKAGE

from nsmc_sentiment_classifier import label_schemes
from nsmc_sentiment_classifier.training import model_card, tracking

pytestmark = pytest.mark.engine

# --- tracking ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root whose default store (mlruns/mlflow.db) the tests share."""
    return tmp_path_factory.mktemp("project")


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_local_tracking_records_and_resumes_a_run(project, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # the store belongs to the project root, not the working directory
    tracker = tracking.start_tracking(
        backend="mlflow",
        project_root=project,
        experiment="records",
        run_name="20261128-184700-a1b2c3d4",
        tags={"fingerprint": "abc", "entry_point": "train_torch"},
    )
    assert isinstance(tracker, tracking.MlflowTracker) and tracker.run_id
    assert tracker.tracking_uri == tracking.local_store_uri(project)
    params = {"learning_rate": 5e-5, "label_names": ["부정", "긍정"], "long": "x" * 10_000, "a:b": 1}
    tracker.log_params(params)
    tracker.log_metrics({"train_loss": 0.7, "skipped_bool": True, "skipped_nan": math.nan, "note": "x"}, 10)
    tracker.log_metrics({"train_loss": 0.5, "eval_accuracy": 0.8}, 20)
    outputs = tmp_path / "outputs"
    (outputs / "model").mkdir(parents=True)
    (outputs / "plots").mkdir()
    (outputs / "metrics_test.json").write_text("{}")
    (outputs / "plots" / "learning_curve.png").write_bytes(b"png")
    (outputs / "model" / "model.safetensors").write_text("big")
    (outputs / "model" / "config.json").write_text("{}")
    tracker.log_artifacts(outputs, skip=("model",))
    tracker.log_file(outputs / "model" / "config.json", "model")
    tracker.set_tags({"note": "first attempt"})
    tracker.finish()
    tracker.finish("FAILED")  # idempotent: the first status stays

    client = _client(tracking.local_store_uri(project))
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "20261128-184700-a1b2c3d4"
    assert run.data.params["learning_rate"] == "5e-05"
    assert run.data.params["label_names"] == "['부정', '긍정']"
    assert len(run.data.params["long"]) == 6000  # cut to MLflow's limit, not refused
    assert run.data.params["a_b"] == "1"  # a colon is not allowed in keys on every platform
    assert run.data.tags["fingerprint"] == "abc" and run.data.tags["note"] == "first attempt"
    assert _history(client, tracker.run_id, "train_loss") == [(10, 0.7), (20, 0.5)]
    assert set(run.data.metrics) == {"train_loss", "eval_accuracy"}
    assert sorted(a.path for a in client.list_artifacts(tracker.run_id)) == [
        "metrics_test.json", "model", "plots",
    ]  # fmt: skip
    assert [a.path for a in client.list_artifacts(tracker.run_id, "model")] == ["model/config.json"]
    assert [a.path for a in client.list_artifacts(tracker.run_id, "plots")] == ["plots/learning_curve.png"]
    store = project / "mlruns"
    assert (store / "mlflow.db").is_file() and (store / "artifacts").is_dir()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()

    # A resumed training run continues the same MLflow run: the same params again are fine, a
    # changed one keeps its first value with one warning, the metric history goes on.
    with caplog.at_level(logging.WARNING, logger=tracking.__name__):
        again = tracking.start_tracking(
            backend="mlflow", project_root=project, experiment="records", run_name="ignored",
            resume_run_id=tracker.run_id, tags={"resumed": "yes"},
        )  # fmt: skip
        assert again.run_id == tracker.run_id
        assert client.get_run(tracker.run_id).info.status == "RUNNING"
        again.log_params(params)
        again.log_params({**params, "learning_rate": 1e-4, "long": "y"})
        again.log_metrics({"train_loss": 0.3}, 30)
        again.finish("failed")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "learning_rate, long" in warnings[0]
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FAILED" and run.data.params["learning_rate"] == "5e-05"
    assert run.data.tags["resumed"] == "yes"
    assert _history(client, tracker.run_id, "train_loss") == [(10, 0.7), (20, 0.5), (30, 0.3)]

    # A run id this store does not know (another store, deleted): a new run.
    fresh = tracking.start_tracking(
        backend="mlflow", project_root=project, experiment="records", run_name="r2",
        resume_run_id="0123456789abcdef0123456789abcdef",
    )  # fmt: skip
    assert fresh.run_id and fresh.run_id != tracker.run_id
    fresh.finish("KILLED")
    assert client.get_run(fresh.run_id).info.status == "KILLED"


def test_a_new_store_sets_up_its_tables_quietly(tmp_path, monkeypatch, caplog, capfd):
    """MLflow and Alembic announced the creation of a new store's tables to the user."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    caplog.set_level(logging.INFO)
    tracker = tracking.start_tracking(
        backend="mlflow", project_root=tmp_path, experiment="quiet", run_name="r1"
    )
    assert isinstance(tracker, tracking.MlflowTracker)
    tracker.finish("FINISHED")
    shown = capfd.readouterr()
    printed = shown.out + shown.err + caplog.text
    assert "database tables" not in printed and "alembic" not in printed.lower()
    assert f"MLflow: tracking run {tracker.run_id}" in caplog.text  # this module's own line stays
    assert logging.getLogger("mlflow.store.db").level == logging.NOTSET  # levels restored


def test_tracking_uri_from_environment_and_argument(project, tmp_path, monkeypatch):
    # The shared store stands in for "elsewhere": the run must land there, not under the root.
    elsewhere = tracking.local_store_uri(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    root = tmp_path / "other-project"
    tracker = tracking.start_tracking(backend="mlflow", project_root=root, experiment="env", run_name="r")
    assert tracker.tracking_uri == elsewhere and tracker.run_id
    tracker.log_metrics({"m": 1.0}, 1)
    tracker.finish()
    assert _client(elsewhere).get_run(tracker.run_id).data.metrics == {"m": 1.0}
    assert not (root / "mlruns").exists()

    # An explicit tracking_uri wins over the variable.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    explicit = tracking.start_tracking(
        backend="mlflow", project_root=root, experiment="env", run_name="r2", tracking_uri=elsewhere
    )
    assert explicit.tracking_uri == elsewhere and explicit.run_id
    explicit.finish()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nothing listens there


def test_an_unreachable_server_is_one_warning_and_a_no_op(tmp_path, monkeypatch, caplog, capfd):
    port = _closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:secret@127.0.0.1:{port}")
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.setenv(name, "unset")  # so that teardown removes what start_tracking sets
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # the user's own value stays
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        tracker = tracking.start_tracking(
            backend="mlflow", project_root=tmp_path, experiment="e", run_name="r"
        )
        tracker.log_params({"a": 1})
        tracker.log_metrics({"m": 1.0}, 1)
        tracker.log_artifacts(tmp_path)
        tracker.set_tags({"t": "v"})
        tracker.finish()
    assert time.monotonic() - started < 30
    assert type(tracker) is tracking.Tracker and tracker.run_id is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"127.0.0.1:{port}" in warnings[0] and "secret" not in warnings[0]
    stderr = capfd.readouterr().err
    assert "Retrying" not in stderr and "request headers" not in stderr
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_a_folder_store_uri_is_one_warning_with_a_hint(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        tracker = tracking.start_tracking(
            backend="mlflow", project_root=tmp_path, experiment="e", run_name="r",
            tracking_uri=(tmp_path / "mlruns").as_uri(),
        )  # fmt: skip
    assert tracker.run_id is None
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "sqlite:///" in warning


class _Client:
    """Stands in for MlflowClient: records batches, or fails the way a store does."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.batches: list[dict[str, Any]] = []
        self.calls = 0

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        self.batches.append({"metrics": list(metrics), "params": list(params), "tags": list(tags)})

    def set_terminated(self, run_id: str, status: str) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def test_metrics_keep_finite_numbers_only():
    np = pytest.importorskip("numpy")
    client = _Client()
    tracker = tracking.MlflowTracker(client, "run", "sqlite:///x.db")
    tracker.log_metrics(
        {
            "int": 3, "float": 0.5, "np_float32": np.float32(0.25), "np_int": np.int64(7),
            "np_0d": np.array(1.5), "bool": True, "np_bool": np.bool_(False), "nan": math.nan,
            "inf": -math.inf, "str": "0.5", "none": None, "list": [1.0], "array": np.ones(2),
            "eval/f1 macro": 0.9, "bad:key?": 1.0,
        },
        step=5,
    )  # fmt: skip
    [batch] = client.batches
    logged = {m.key: (m.value, m.step) for m in batch["metrics"]}
    assert logged == {
        "int": (3.0, 5), "float": (0.5, 5), "np_float32": (0.25, 5), "np_int": (7.0, 5),
        "np_0d": (1.5, 5), "eval/f1 macro": (0.9, 5), "bad_key_": (1.0, 5),
    }  # fmt: skip
    tracker.log_metrics({"nothing": math.nan}, step=6)  # nothing to log: no request
    assert len(client.batches) == 1


def test_a_store_failing_mid_run_is_one_warning_then_silence(caplog):
    client = _Client(ConnectionError("connection reset by peer"))
    tracker = tracking.MlflowTracker(client, "run", "https://user:pw@mlflow.example.com")
    with caplog.at_level(logging.WARNING):
        tracker.log_metrics({"m": 1.0}, 1)
        tracker.log_metrics({"m": 2.0}, 2)
        tracker.set_tags({"a": "b"})
        tracker.finish()
    assert client.calls == 1  # given up after the first failure
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "mlflow.example.com" in warning and "pw" not in warning and "connection reset" in warning


def test_a_refused_value_is_skipped_and_tracking_goes_on(caplog):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    client = _Client(MlflowException("bad value", error_code=INVALID_PARAMETER_VALUE))
    tracker = tracking.MlflowTracker(client, "run", "sqlite:///x.db")
    with caplog.at_level(logging.WARNING):
        tracker.log_metrics({"m": 1.0}, 1)
        tracker.log_metrics({"m": 2.0}, 2)
        tracker.log_metrics({"m": 3.0}, "not a step")  # type: ignore[arg-type]
        client.error = None
        tracker.log_metrics({"m": 4.0}, 4)
        tracker.finish()
    assert [m.value for m in client.batches[0]["metrics"]] == [4.0]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_tracking_off_does_not_import_mlflow():
    code = (
        "import sys\n"
        f"from {PACKAGE}.training import tracking\n"
        "t = tracking.start_tracking(backend='none', project_root='.', experiment='e', run_name='r')\n"
        "t.log_params({'a': 1}); t.log_metrics({'a': 1}, 1); t.log_artifacts('.'); t.finish()\n"
        "print(t.run_id, 'mlflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "None False", result.stderr


def test_an_unknown_backend_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="wandb"):
        tracking.start_tracking(backend="wandb", project_root=tmp_path, experiment="e", run_name="r")


# --- model card ----------------------------------------------------------------------------------

LABELS = ["부정", "a|b", "`tick`\nnew line"]
SCORES = {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 5}
METRICS = {
    "num_examples": 8, "accuracy": 0.875, "macro_f1": 0.85, "loss": 0.31,
    "per_class": {name: SCORES for name in LABELS},
    "confusion_matrix": [[5, 0, 0], [1, 2, 0], [0, 0, 0]],
    "labels": LABELS,
}  # fmt: skip


def _write_card(tmp_path: Path, base_model: str) -> Path:
    return model_card.write_model_card(
        tmp_path / "model",
        project_name="리뷰 {{ project.x }} classifier",
        run_id="20261128-120000-abcdef12",
        fingerprint="abcdef1234567890",
        entry_point="train_torch",
        base_model=base_model,
        label_names=LABELS,
        scheme=label_schemes.get("single_label"),
        label_counts={"train": [70, 30, 1], "validation": [5, 3, 0], "test": [5, 3, 0]},
        split_rows={"train": 101, "validation": 8, "test": 8},
        rows_without_label={"train": 0, "validation": 0, "test": 0},
        metrics={"validation": {**METRICS, "loss": math.nan}, "test": METRICS},
        options={
            "learning_rate": 5e-5,
            "label_names": LABELS[:2],
            "model_name_or_path": base_model,
            "train_file": str(tmp_path / "data" / "train.csv"),
            "template": "{{ x }}",
            "fp16": False,
        },
        max_length=128,
        versions={"transformers": "5.24.0", "torch": "2.13.0+cpu", "python": "3.11.9"},
        created="2026-11-28T12:00:00+00:00",
    )


def test_base_model_kinds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "enc").mkdir(parents=True)
    for hub_id in ("bert-base-uncased", "monologg/koelectra-small-v3-discriminator"):
        assert model_card.is_hub_id(hub_id) and not model_card.is_local_path(hub_id)
    for local in ("models/enc", "./enc", "/opt/ml/input/data/model", "~/enc", "C:\\models\\enc"):
        assert model_card.is_local_path(local) and not model_card.is_hub_id(local)
    assert not model_card.is_hub_id("s3://bucket/model") and not model_card.is_local_path("s3://bucket/m")


@pytest.mark.parametrize("local", [False, True], ids=["hub-id", "local-folder"])
def test_model_card(tmp_path, local):
    from huggingface_hub import ModelCard

    if local:
        base = tmp_path / "models" / "my-encoder"
        base.mkdir(parents=True)
    path = _write_card(tmp_path, str(base) if local else "monologg/koelectra-small-v3-discriminator")
    assert path == tmp_path / "model" / "README.md"
    card = ModelCard.load(path)
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert card.data.language is None  # not guessed
    text = path.read_text(encoding="utf-8")
    assert str(tmp_path) not in text and "/tmp" not in text  # no folder of the training machine
    if local:
        assert card.data.base_model is None
        assert "a local folder (`my-encoder`)" in text
        assert "| `model_name_or_path` | `local folder my-encoder` |" in text
    else:
        assert card.data.base_model == "monologg/koelectra-small-v3-discriminator"
        assert "(https://huggingface.co/monologg/koelectra-small-v3-discriminator)" in text
    results = {(r.dataset_split, r.metric_type, r.metric_value) for r in card.data.eval_results}
    assert {("test", "accuracy", 0.875), ("test", "f1", 0.85), ("test", "loss", 0.31)} <= results
    assert ("validation", "loss", math.nan) not in results and len(results) == 5
    # Cells: escaped where markdown would read them, literal otherwise.
    assert "# 리뷰 {{ project.x }} classifier" in text
    assert "| 0 | 부정 | 70 | 5 | 5 |" in text
    assert "| 1 | a\\|b | 30 | 3 | 3 |" in text
    assert "| 2 | \\`tick\\` new line | 1 | 0 | 0 |" in text
    assert "| train | 101 |" in text
    assert "| split | examples | accuracy | macro F1 | loss |" in text
    assert "| test | 8 | 0.8750 | 0.8500 | 0.3100 |" in text
    assert "| validation | 8 | 0.8750 | 0.8500 |  |" in text
    assert "Per class, test split:" in text and "| a\\|b | 0.9000 | 0.8000 | 0.8500 | 5 |" in text
    assert "| `learning_rate` | `5e-05` |" in text
    assert '| `label_names` | `["부정", "a\\|b"]` |' in text
    assert "| `template` | `{{ x }}` |" in text and "| `fp16` | `false` |" in text
    assert "| `train_file` | `local path train.csv` |" in text
    assert 'pipeline("text-classification", model="path/to/this/folder")' in text
    assert "AutoModelForSequenceClassification" in text and "128 tokens" in text
    for value in ("20261128-120000-abcdef12", "abcdef1234567890", "2026-11-28T12:00:00+00:00", "2.13.0+cpu"):
        assert value in text


def test_model_card_tables_render(tmp_path):
    """A markdown renderer reads every label back exactly, in its own cell."""
    markdown_it = pytest.importorskip("markdown_it")
    path = _write_card(tmp_path, "org/model")
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))
    rows: list[list[str]] = []
    in_cell = False
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type in {"th_open", "td_open"}:
            in_cell = True
        elif token.type == "inline" and in_cell:
            rows[-1].append("".join(child.content for child in token.children or []))
            in_cell = False
    label_rows = [row for row in rows if row[:1] in (["0"], ["1"], ["2"])]
    assert [row[1] for row in label_rows[:3]] == ["부정", "a|b", "`tick` new line"]
    assert ["template", "{{ x }}"] in rows
    assert ["label_names", '["부정", "a|b"]'] in rows
