"""Experiment tracking with MLflow: every run's options, metrics and output files.

Where runs go: the ``tracking_uri`` argument, else ``MLFLOW_TRACKING_URI`` (a tracking server, or a
SageMaker managed MLflow ARN through the sagemaker-mlflow plugin), else a SQLite store at the
project root, ``mlruns/mlflow.db``, artefacts in ``mlruns/artifacts``. Not the old folder store:
MLflow 3.17 refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``. SQLite needs SQLAlchemy and Alembic
beside ``mlflow-skinny``; the web UI needs the full ``mlflow`` and the store named
(:data:`LOCAL_UI_COMMAND`, run in the project root; a bare ``mlflow ui`` opens ``./mlflow.db``).

Tracking never stops or stalls a training run: a store that fails is one warning line (its URI
and what to do), then nothing. ``MlflowClient`` rather than ``mlflow.start_run``: no global active
run, several trackers per process. Both entry points track here; transformers' ``MLflowCallback``
would record the Trainer's runs differently (its own parameter and metric names, a global active
run, no resume of the same MLflow run).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCAL_STORE_DIR = "mlruns"
LOCAL_DB_FILE = "mlflow.db"
#: Shows the local runs (run it in the project root; needs ``pip install mlflow``).
LOCAL_UI_COMMAND = f"mlflow ui --backend-store-uri sqlite:///{LOCAL_STORE_DIR}/{LOCAL_DB_FILE}"

# MLflow retries a failing request 7 times with exponential backoff (factor 2) and waits 120 s
# for an answer: minutes before a training run learns that its server is gone. These give up
# after ~3 s when nothing listens and ~35 s when the server hangs. Set only where the user has
# not set them (raise MLFLOW_HTTP_REQUEST_MAX_RETRIES for a server that throttles).
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
_REMOTE_SCHEMES = frozenset({"http", "https", "arn", "databricks", "databricks-uc", "uc"})
# MLflow's limits (mlflow.utils.validation). MLflow cuts longer values itself, but a resumed run
# compares its params with the stored ones, so they are cut here, the same way each time.
_PARAM_LIMIT, _TAG_LIMIT, _KEY_LIMIT = 6000, 8000, 250
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")  # what MLflow accepts in a key (colons only off Windows)
# The least level each of these loggers shows while this module talks to MLflow: urllib3
# announces every retry and the sagemaker-mlflow plugin warns on every request to a non-ARN
# server (the one warning of this module says it all); the first use of a SQLite store creates
# and migrates its tables, which MLflow and Alembic announce in INFO lines. Levels rather than
# filters: a filter sees only its own logger's records, not those of the modules below it
# (mlflow.store.db.utils, alembic.runtime.migration).
_QUIET_LOGGERS = {
    "urllib3.connectionpool": logging.ERROR,
    "mlflow.tracking.request_header.registry": logging.ERROR,
    "mlflow.store.db": logging.WARNING,
    "alembic": logging.WARNING,
}


class Tracker:
    """The tracker interface, and the tracker that does nothing: tracking is off or has failed.

    Training code calls these unconditionally; none of them raises.
    """

    run_id: str | None = None
    tracking_uri: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record options once per run (MLflow params are write-once strings)."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Record the finite numbers in ``metrics`` at ``step``; anything else is skipped."""

    def log_artifacts(
        self, folder: str | Path, artifact_path: str | None = None, skip: Sequence[str] = ()
    ) -> None:
        """Upload the files and folders in ``folder``, except the names in ``skip``."""

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload one file."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set run tags (unlike params they may change)."""

    def finish(self, status: str = "FINISHED") -> None:
        """End the run as FINISHED, FAILED or KILLED; later calls do nothing."""


def local_store_uri(project_root: str | Path) -> str:
    """The default store: ``sqlite:///<project root>/mlruns/mlflow.db`` (an absolute path, so the
    working directory does not matter)."""
    return f"sqlite:///{(Path(project_root) / LOCAL_STORE_DIR / LOCAL_DB_FILE).resolve().as_posix()}"


def _scheme(uri: str) -> str:
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    return "" if len(scheme) == 1 else scheme  # C:\... is a Windows path, not a scheme


def _display_uri(text: str) -> str:
    """``text`` with the user and password (or token) of every URL in it masked, for log lines."""
    return re.sub(r"(\w+://)[^/\s@]+@", r"\1***@", text)


def _first_line(error: BaseException) -> str:
    """Why ``error`` happened, in a few words and without credentials from URLs in it."""
    text = _display_uri(str(error))
    if "timed out" in text:  # requests/urllib3 chains
        return "no answer in time"
    if "Max retries exceeded" in text:
        cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
        return f"cannot connect: {cause.group(1).strip()}" if cause else "cannot connect"
    line = (text.strip().splitlines() or [type(error).__name__])[0]
    return line.split(". ", 1)[0][:300]  # MLflow's messages go on with advice of their own


def _key(name: Any) -> str:
    """A key MLflow accepts: allowed characters only, no empty/``.``/``..`` path parts, <= 250."""
    text = _BAD_KEY_CHARS.sub("_", str(name))
    parts = [part for part in text.split("/") if part not in {"", ".", ".."}]
    return ("/".join(parts) or "_")[:_KEY_LIMIT]


def finite_number(value: Any) -> float | None:
    """A finite float, or None for bools, strings, NaN/inf and anything not a real number.
    NumPy and 0-d torch values count (through ``.item()``)."""
    if not isinstance(value, numbers.Number) and callable(getattr(value, "item", None)):
        try:
            value = value.item()
        except Exception:
            return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


@contextmanager
def _quiet_requests() -> Iterator[None]:
    loggers = {logging.getLogger(name): least for name, least in _QUIET_LOGGERS.items()}
    levels = {logger: logger.level for logger in loggers}
    for logger, least in loggers.items():
        logger.setLevel(max(logger.getEffectiveLevel(), least))
    try:
        yield
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)


class _Refused(Exception):
    """One call's input was refused (bad step, missing folder); the connection is fine."""


def _refused(error: BaseException) -> bool:
    return isinstance(error, _Refused) or getattr(error, "error_code", None) == "INVALID_PARAMETER_VALUE"


class MlflowTracker(Tracker):
    """One MLflow run, written through an ``MlflowClient``."""

    def __init__(self, client: Any, run_id: str, tracking_uri: str) -> None:
        self.client = client
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self._failed = False
        self._finished = False
        self._warned_refused = False

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        if self._failed:
            return
        try:
            with _quiet_requests():
                action()
        except Exception as error:  # tracking must never end a training run
            if _refused(error):
                # MLflow refused this input, the store works: skip it, keep tracking.
                if not self._warned_refused:
                    self._warned_refused = True
                    log.warning("MLflow refused %s, skipped (%s)", what, _first_line(error))
                return
            self._failed = True
            log.warning(
                "experiment tracking stopped: %s failed at %s (%s); training goes on without it "
                "(check that the tracking server is up, or train with report_to none)",
                what,
                _display_uri(self.tracking_uri or ""),
                _first_line(error),
            )

    def log_params(self, params: Mapping[str, Any]) -> None:
        def action() -> None:
            from mlflow.entities import Param

            # Params cannot change once logged, and a resumed run logs the same ones again:
            # log only new keys; a changed value keeps the first one (with a warning).
            logged = self.client.get_run(self.run_id).data.params
            new: dict[str, str] = {}
            changed: list[str] = []
            for name, value in params.items():
                key, text = _key(name), str(value)[:_PARAM_LIMIT]
                if key in new:
                    continue
                if key not in logged:
                    new[key] = text
                elif logged[key] != text:
                    changed.append(key)
            if changed:
                log.warning(
                    "MLflow params keep their first values in run %s; changed now: %s",
                    self.run_id,
                    ", ".join(changed),
                )
            # MlflowClient.log_batch splits a long list into requests MLflow accepts.
            self.client.log_batch(self.run_id, params=[Param(key, text) for key, text in new.items()])

        self._safely("logging params", action)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        def action() -> None:
            from mlflow.entities import Metric

            try:
                at = int(step)
            except (TypeError, ValueError, OverflowError) as error:
                raise _Refused(f"step {step!r} is not a whole number") from error
            now = int(time.time() * 1000)
            values: dict[str, float] = {}
            for name, value in metrics.items():
                number = finite_number(value)
                if number is not None:
                    values.setdefault(_key(name), number)
            if values:
                batch = [Metric(key, number, now, at) for key, number in values.items()]
                self.client.log_batch(self.run_id, metrics=batch)

        self._safely("logging metrics", action)

    def log_artifacts(
        self, folder: str | Path, artifact_path: str | None = None, skip: Sequence[str] = ()
    ) -> None:
        def action() -> None:
            source = Path(folder)
            if not source.is_dir():
                raise _Refused(f"{source.name or source} is not a folder")
            for item in sorted(source.iterdir()):
                if item.name in skip:
                    continue
                if item.is_dir():
                    inner = f"{artifact_path}/{item.name}" if artifact_path else item.name
                    self.client.log_artifacts(self.run_id, str(item), inner)
                else:
                    self.client.log_artifact(self.run_id, str(item), artifact_path)

        self._safely("uploading files", action)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        def action() -> None:
            if not Path(path).is_file():
                raise _Refused(f"{Path(path).name} is not a file")
            self.client.log_artifact(self.run_id, str(path), artifact_path)

        self._safely("uploading a file", action)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        def action() -> None:
            from mlflow.entities import RunTag

            batch = [RunTag(_key(key), str(value)[:_TAG_LIMIT]) for key, value in tags.items()]
            self.client.log_batch(self.run_id, tags=batch)

        self._safely("setting tags", action)

    def finish(self, status: str = "FINISHED") -> None:
        if self._finished:
            return
        self._finished = True
        self._safely("ending the run", lambda: self.client.set_terminated(self.run_id, status.upper()))


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    name = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if name in {"", ":memory:"} else Path(name)


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location))
        except Exception:
            found = client.get_experiment_by_name(name)  # another process created it just now
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        # Deleted in the UI: its name stays taken (until garbage-collected), so bring it back.
        client.restore_experiment(found.experiment_id)
        log.info("MLflow experiment %r was deleted; restored it for this run", name)
    return str(found.experiment_id)


def _resumable(client: Any, run_id: str) -> bool:
    """Whether ``run_id`` is a live run in this store."""
    try:
        run = client.get_run(run_id)
    except Exception as error:
        if getattr(error, "error_code", None) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return False
        raise
    return run.info.lifecycle_stage == "active"


def _hint(uri: str) -> str:
    scheme = _scheme(uri)
    if scheme in {"", "file"}:
        return (
            "MLflow 3 no longer opens folder stores: use a sqlite:///path/mlflow.db URI "
            "(or MLFLOW_ALLOW_FILE_STORE=true)"
        )
    if scheme == "arn":
        return (
            "a SageMaker MLflow ARN needs the sagemaker-mlflow package, AWS credentials allowed "
            "to use the server, and the server running"
        )
    if scheme == "sqlite":
        return "check that the folder is writable, or unset MLFLOW_TRACKING_URI for the default store"
    return "check that the tracking server is up and MLFLOW_TRACKING_URI is right"


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
    """Open an MLflow run (``resume_run_id`` continues one) in experiment ``experiment``, or
    return a tracker that does nothing: for backend "none", or (with one warning line) when
    the store cannot be used."""
    chosen = backend.strip().lower()
    if chosen == "none":
        return Tracker()
    if chosen != "mlflow":
        raise ValueError(f"tracking backend {backend!r}: use 'mlflow' or 'none'")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri(project_root)
    shown = _display_uri(uri)
    import mlflow
    from mlflow import MlflowClient

    scheme = _scheme(uri)
    if scheme in _REMOTE_SCHEMES:
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
    if scheme == "arn":
        # The sagemaker-mlflow plugin signs and routes requests by the *global* tracking URI,
        # whatever URI the client was given.
        mlflow.set_tracking_uri(uri)
    local = uri == local_store_uri(project_root)
    try:
        with _quiet_requests():
            database = _sqlite_file(uri)
            artifacts = None  # a new experiment's artefacts: MLflow's default for a server
            if database is not None:
                database.parent.mkdir(parents=True, exist_ok=True)  # SQLite makes the file only
                # Next to the database: MLflow's own default, ./mlartifacts, depends on the cwd.
                artifacts = (database.parent / "artifacts").resolve().as_uri()
            client = MlflowClient(tracking_uri=uri)
            experiment_id = _experiment_id(client, experiment, artifacts)
            run_id = None
            if resume_run_id:
                if _resumable(client, resume_run_id):
                    client.update_run(resume_run_id, status="RUNNING")
                    run_id = resume_run_id
                else:
                    log.info(
                        "MLflow run %s is not in %s: logging this run as a new one", resume_run_id, shown
                    )
            if run_id is None:
                clean_tags = {_key(k): str(v)[:_TAG_LIMIT] for k, v in (tags or {}).items()}
                run_id = client.create_run(experiment_id, run_name=run_name, tags=clean_tags).info.run_id
    except Exception as error:
        log.warning(
            "experiment tracking off: %s could not be used (%s); %s; training goes on without it "
            "(or train with report_to none)",
            shown,
            _first_line(error),
            _hint(uri),
        )
        return Tracker()
    tracker = MlflowTracker(client, run_id, uri)
    if run_id == resume_run_id and tags:
        tracker.set_tags(tags)  # a new run got them at creation
    where = f"{LOCAL_STORE_DIR}/{LOCAL_DB_FILE} (see: {LOCAL_UI_COMMAND})" if local else shown
    log.info(
        "MLflow: %s run %s in %s", "continuing" if run_id == resume_run_id else "tracking", run_id, where
    )
    return tracker
