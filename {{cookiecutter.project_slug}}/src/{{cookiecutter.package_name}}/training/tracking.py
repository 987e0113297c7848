"""Experiment tracking with MLflow: every run's options, metrics and output files.

Where runs go: ``MLFLOW_TRACKING_URI`` when set (an MLflow tracking server, or a SageMaker managed
MLflow ARN through the sagemaker-mlflow plugin), else a local SQLite store in ``mlruns/`` at the
project root (``mlruns/mlflow.db``, artefacts under ``mlruns/artifacts``). MLflow 3 refuses its
old plain-folder store unless told otherwise ("maintenance mode"), so the local default is the
database backend MLflow recommends; ``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db``
shows the runs side by side.

Tracking never stops a training run: if the store cannot be reached or MLflow fails, one warning
line says so and the tracker does nothing from then on. The client API (``MlflowClient``) is used
instead of ``mlflow.start_run``, so no global "active run" is left behind.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCAL_STORE_DIR = "mlruns"
# MLflow retries a failing request up to 7 times with backoff (minutes); a training run should
# learn within seconds that its tracking server is unreachable.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_PARAM_LIMIT = 6000  # MLflow's limit for a parameter value (characters)
_BATCH_PARAMS, _BATCH_METRICS = 100, 1000  # log_batch limits


def local_store_uri(project_root: Path) -> str:
    return f"sqlite:///{(Path(project_root) / LOCAL_STORE_DIR / 'mlflow.db').resolve().as_posix()}"


class Tracker:
    """Does nothing: tracking is off (``report_to`` without mlflow) or has failed."""

    run_id: str | None = None
    tracking_uri: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        pass

    def log_artifacts(
        self, folder: str | Path, artifact_path: str | None = None, skip: Sequence[str] = ()
    ) -> None:
        pass

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def finish(self, status: str = "FINISHED") -> None:
        pass


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MlflowTracker(Tracker):
    """One MLflow run, written through an ``MlflowClient``."""

    def __init__(self, client: Any, run_id: str, tracking_uri: str) -> None:
        self.client = client
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self._failed = False
        self._finished = False

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        if self._failed:
            return
        try:
            action()
        except Exception as error:  # tracking must never end a training run
            self._failed = True
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            log.warning(
                "experiment tracking stopped: %s failed at %s (%s); the run goes on without it",
                what,
                self.tracking_uri,
                reason,
            )

    def log_params(self, params: Mapping[str, Any]) -> None:
        def action() -> None:
            from mlflow.entities import Param

            # Parameters cannot change once logged; a resumed run logs the same ones again.
            logged = self.client.get_run(self.run_id).data.params
            new = []
            for key, value in params.items():
                text = str(value)[:_PARAM_LIMIT]
                if key not in logged:
                    new.append(Param(key, text))
                elif logged[key] != text:
                    log.warning("MLflow parameter %s stays %r (this run logged %r)", key, logged[key], text)
            for chunk in _chunks(new, _BATCH_PARAMS):
                self.client.log_batch(self.run_id, params=chunk)

        self._safely("logging parameters", action)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        def action() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            values = [
                Metric(key, number, now, int(step))
                for key, value in metrics.items()
                if (number := _numeric(value)) is not None
            ]
            for chunk in _chunks(values, _BATCH_METRICS):
                self.client.log_batch(self.run_id, metrics=chunk)

        self._safely("logging metrics", action)

    def log_artifacts(
        self, folder: str | Path, artifact_path: str | None = None, skip: Sequence[str] = ()
    ) -> None:
        """Files and folders in ``folder``, except the names in ``skip``."""

        def action() -> None:
            for item in sorted(Path(folder).iterdir()):
                if item.name in skip:
                    continue
                if item.is_dir():
                    inner = f"{artifact_path}/{item.name}" if artifact_path else item.name
                    self.client.log_artifacts(self.run_id, str(item), inner)
                else:
                    self.client.log_artifact(self.run_id, str(item), artifact_path)

        self._safely("uploading files", action)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._safely(
            "uploading a file", lambda: self.client.log_artifact(self.run_id, str(path), artifact_path)
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        def action() -> None:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, str(value))

        self._safely("setting tags", action)

    def finish(self, status: str = "FINISHED") -> None:
        if self._finished:
            return
        self._finished = True
        self._safely("ending the run", lambda: self.client.set_terminated(self.run_id, status))


def _is_remote(uri: str) -> bool:
    return uri.split(":", 1)[0].lower() in {"http", "https", "arn", "databricks"}


def start_tracking(
    *,
    backend: str,
    project_root: Path,
    experiment: str,
    run_name: str,
    tracking_uri: str | None = None,
    resume_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Tracker:
    """An MLflow run (``resume_run_id`` continues one), or a no-op tracker for backend "none"
    or when MLflow cannot be used (with one warning saying why)."""
    if backend == "none":
        return Tracker()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri(project_root)
    try:
        from mlflow import MlflowClient
    except ImportError:
        log.warning("experiment tracking off: mlflow is not installed (pip install mlflow-skinny)")
        return Tracker()
    if _is_remote(uri):
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
    local = uri == local_store_uri(project_root)
    if local:
        (Path(project_root) / LOCAL_STORE_DIR).mkdir(parents=True, exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            # Artefacts next to the database, not in whatever folder the command ran from.
            location = (
                (Path(project_root) / LOCAL_STORE_DIR / "artifacts").resolve().as_uri() if local else None
            )
            experiment_id = client.create_experiment(experiment, artifact_location=location)
        run_id = None
        if resume_run_id:
            try:
                client.update_run(resume_run_id, status="RUNNING")
                run_id = resume_run_id
            except Exception:
                log.info("MLflow run %s is not in %s: this run is logged as a new one", resume_run_id, uri)
        if run_id is None:
            run_id = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {})).info.run_id
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        log.warning(
            "experiment tracking off: %s could not be used (%s); set MLFLOW_TRACKING_URI to a "
            'reachable tracking server, or report_to = "none"',
            uri,
            reason,
        )
        return Tracker()
    log.info("tracking this run in MLflow: %s (run %s)", uri, run_id)
    return MlflowTracker(client, run_id, uri)
