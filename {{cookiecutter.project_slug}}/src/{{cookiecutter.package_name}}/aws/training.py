"""Launch the project's training entry points as SageMaker training jobs.

Four modes share one plan (validated offline before any AWS call) and one staged source folder:

* ``hosted``   a SageMaker training job on ``ml.*`` instances (``ModelTrainer``);
* ``local`` / ``local_gpu``  SageMaker local mode: the same container on this machine via Docker;
* ``process``  no Docker, no AWS: the entry point runs in a subprocess with the container's
  environment (``SM_*`` variables, an ``/opt/ml`` tree under a work folder, hyperparameters as
  ``--key value`` strings), for fast iteration and tests of the container contract.

The staged source folder holds a copy of this package (with the effective config.toml), a
``requirements.txt`` with what the Hugging Face DLC lacks, and a two-line launcher script, because
SageMaker's drivers run a *script* (``python script.py`` or ``torchrun script.py``) while the
entry points are package modules with relative imports.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..config import CONFIG_ENV_VAR, ProjectConfig
from ..data.io import find_data_files
from ..errors import UsageError
from ..options import BY_NAME, HYPERPARAMETERS, to_hyperparameters
from ..training.artifacts import metric_definitions
from ..training.entry_points import entry_points, module_path
from ..training.modeling import looks_like_path
from ..training.options import BASE_MODEL_ENV
from .images import (
    Versions,
    check_instance_type,
    check_versions,
    gpus_per_instance,
    image_uri,
    processor_for,
)
from .jobs import JobInfo, describe_job, wait_for_job
from .names import ProjectNames, timestamp
from .session import Aws, AwsSettings, error_message, project_tags

log = logging.getLogger(__name__)

PACKAGE = __package__.rsplit(".", 1)[0]
MODES = ("hosted", "local", "local_gpu", "process")
CHANNELS = ("train", "validation", "test")
REQUIRED_CHANNELS = ("train", "validation")
LAUNCHER = "sm_entry.py"
CONTAINER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
# The DLC ships these (built for its CUDA); reinstalling them from PyPI would break the image.
PROVIDED_BY_DLC = {"torch", "transformers"}
MLFLOW_PLUGIN = "sagemaker-mlflow>=0.1,<1"
# The distributions that provide the MLflow client (the project depends on the first).
MLFLOW_CLIENTS = ("mlflow-skinny", "mlflow")
# The channel the entry point reads the base model from (training/options.py).
BASE_MODEL_CHANNEL = BASE_MODEL_ENV.removeprefix("SM_CHANNEL_").lower()
UPLOAD_MARKER = "_upload-complete.json"
_TRACKING_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-(tracking-server|app)/[\w-]+$"
)


def parse_metrics(line: str, definitions: Iterable[Mapping[str, str]]) -> dict[str, float]:
    """The metrics SageMaker would extract from one log line with ``definitions``."""
    found = {}
    for definition in definitions:
        match = re.search(definition["Regex"], line)
        if match:
            found[definition["Name"]] = float(match.group(1))
    return found


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a launch needs, checked before anything touches AWS or Docker."""

    mode: str
    entry_point: str
    instance_type: str
    instance_count: int
    versions: Versions
    hyperparameters: dict[str, str]
    channels: dict[str, str]  # channel name -> local folder or s3:// URI
    base_job_name: str
    use_spot: bool
    max_run_seconds: int
    max_wait_seconds: int
    volume_size_gb: int
    torchrun: bool
    output_path: str = ""
    checkpoint_s3_uri: str = ""
    image: str = ""
    python: str = ""  # process mode: the interpreter that runs the entry point
    # A local base model folder, sent to hosted jobs as the BASE_MODEL_CHANNEL input channel
    # (a path on this machine means nothing inside the container); empty for a hub id.
    base_model_dir: str = ""
    # MLflow tracking server (URI or SageMaker MLflow ARN) the entry point logs to; empty: none.
    tracking_uri: str = ""


def default_hyperparameters(config: ProjectConfig) -> dict[str, str]:
    """The entry points' options from config.toml as SageMaker's strings; all are sent (though
    the job reads the same config.toml) so every run's settings show in the console."""
    return to_hyperparameters(config.options)


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` strings from ``--hp`` flags, checked against the entry points' options."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--hp expects key=value, got {pair!r}")
        if key not in HYPERPARAMETERS:
            raise UsageError(f"--hp {key}: not a training option; known: {', '.join(HYPERPARAMETERS)}")
        try:
            BY_NAME[key].parse(value)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"--hp {key}: {error}") from None
        overrides[key] = value.strip()
    return overrides


def check_channel(name: str, source: str) -> str:
    """A local channel folder must exist and hold exactly one data file; s3:// is used as is."""
    if source.startswith("s3://"):
        return source
    path = Path(source)
    if not path.exists():
        raise UsageError(
            f"channel {name!r}: {path} does not exist; run `{PACKAGE} data prepare` first, "
            f"or pass --{name} with a folder or an s3:// URI"
        )
    if path.is_file():
        raise UsageError(f"channel {name!r}: {path} is a file; pass the folder that holds it")
    files = find_data_files(path)
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "no data file"
        raise UsageError(f"channel {name!r}: {path} must hold exactly one CSV/TSV/JSONL file, found {found}")
    return str(path.resolve())


def local_base_model(name_or_path: str) -> str:
    """The absolute folder when ``name_or_path`` names a local model (which a hosted job gets
    as a channel: it cannot see this machine), "" for a hub id; checked before any upload."""
    if not name_or_path or not looks_like_path(name_or_path):
        return ""
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        raise UsageError(
            f"base model {name_or_path}: no such folder; set [model].base_model to a hub id or "
            "a saved model folder (or --hp model_name_or_path=...)"
        )
    if not (folder / "config.json").is_file():
        raise UsageError(f"base model folder {folder} has no config.json (not a saved model)")
    return str(folder.resolve())


def folder_digest(folder: Path) -> str:
    """SHA-256 over the relative names and full contents of a folder's files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def upload_base_model(aws: Aws, folder: Path, names: ProjectNames) -> str:
    """Upload a base model folder once, under its content digest; reuse an earlier upload of
    the same files (the marker object is written last, so a broken upload is redone)."""
    from botocore.exceptions import ClientError

    digest = folder_digest(folder)
    uri = names.base_models(aws.bucket, digest[:16])
    bucket, key = uri[len("s3://") :].split("/", 1)
    s3 = aws.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=f"{key}/{UPLOAD_MARKER}")
        log.info("base model %s: reusing %s (same files)", folder, uri)
        return uri
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey", "NotFound"):
            raise
    log.info("base model %s: uploading to %s", folder, uri)
    aws.upload(folder, uri)
    marker = json.dumps({"sha256": digest, "source": folder.name}).encode()
    s3.put_object(Bucket=bucket, Key=f"{key}/{UPLOAD_MARKER}", Body=marker)
    return uri


def plan_training(
    config: ProjectConfig,
    *,
    mode: str = "hosted",
    entry_point: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    versions: Versions | None = None,
    channels: Mapping[str, str | None] | None = None,
    overrides: Mapping[str, str] | None = None,
    use_spot: bool | None = None,
    max_run_seconds: int | None = None,
    max_wait_seconds: int | None = None,
    distribution: str | None = None,
    output_path: str | None = None,
    region: str | None = None,
    checkpoint_s3_uri: str | None = None,
    python: str | None = None,
    tracking_uri: str | None = None,
) -> TrainingPlan:
    """Validate a launch completely offline (instance type, image versions, channels...)."""
    section = config.sagemaker
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    entry_point = entry_point or section.entry_point
    if entry_point not in entry_points():
        raise UsageError(f"unknown entry point {entry_point!r}; use one of {', '.join(entry_points())}")
    if mode in ("local", "local_gpu"):
        instance_type, instance_count = mode, 1
    elif mode == "process":
        instance_type, instance_count = "local", 1
    else:
        instance_type = instance_type or section.train_instance_type
        instance_count = instance_count or section.train_instance_count
        check_instance_type(instance_type, "training")
    if instance_count < 1:
        raise UsageError(f"instance count must be at least 1, got {instance_count}")
    versions = versions or Versions(section.transformers_version, section.pytorch_version, section.py_version)
    if mode != "process":
        check_versions(versions, "training", processor_for(instance_type))
    if tracking_uri:
        check_tracking_uri(tracking_uri, mode)

    prepared = Path(config.data.prepared_dir)
    given = dict(channels or {})
    resolved: dict[str, str] = {}
    for name in CHANNELS:
        source = given.get(name) or str(prepared / name)
        if name not in REQUIRED_CHANNELS and not given.get(name) and not Path(source).exists():
            continue  # the test split is optional
        resolved[name] = check_channel(name, source)
    if mode == "process" and any(s.startswith("s3://") for s in resolved.values()):
        raise UsageError("process mode reads local folders only; download the s3:// channels first")

    hyperparameters = default_hyperparameters(config)
    hyperparameters.update(overrides or {})
    base_model_dir = local_base_model(hyperparameters.get("model_name_or_path", ""))
    if base_model_dir and mode == "process":
        # The entry point runs from the staged code folder: a relative path would miss.
        hyperparameters["model_name_or_path"] = base_model_dir
        base_model_dir = ""
    if base_model_dir:
        # The job reads it from its channel; a local path would mislead anyone reading the
        # job's hyperparameters.
        del hyperparameters["model_name_or_path"]

    use_spot = section.use_spot if use_spot is None else use_spot
    max_run = max_run_seconds or section.max_run_seconds
    max_wait = max_wait_seconds or section.max_wait_seconds
    if use_spot and max_wait < max_run:
        raise UsageError(f"spot training needs max_wait_seconds ({max_wait}) >= max_run_seconds ({max_run})")
    if use_spot and mode != "hosted":
        raise UsageError("spot training applies to hosted jobs only (--mode hosted)")

    distribution = distribution or section.distribution
    if distribution not in ("auto", "torchrun", "none"):
        raise UsageError(f"distribution must be auto, torchrun or none, got {distribution!r}")
    gpus = gpus_per_instance(instance_type, region or section.region) if mode == "hosted" else 0
    torchrun = distribution == "torchrun" or (distribution == "auto" and (instance_count > 1 or gpus > 1))
    for name, uri in (("output path", output_path), ("checkpoint URI", checkpoint_s3_uri)):
        if uri and not uri.startswith("s3://"):
            raise UsageError(f"{name} must be an s3:// URI, got {uri!r}")
    if checkpoint_s3_uri and mode != "hosted":
        raise UsageError("--checkpoint-s3-uri applies to hosted jobs only")
    if python:
        if mode != "process":
            raise UsageError("--python applies to process mode only (--mode process)")
        found = shutil.which(python)
        if found is None:
            raise UsageError(f"--python {python}: no such executable")
        python = str(Path(found).absolute())  # not resolved: a venv's python is a link
    return TrainingPlan(
        mode=mode,
        entry_point=entry_point,
        instance_type=instance_type,
        instance_count=instance_count,
        versions=versions,
        hyperparameters=hyperparameters,
        channels=resolved,
        base_job_name=ProjectNames.of(config.project.slug).training_job_base,
        use_spot=use_spot,
        max_run_seconds=max_run,
        max_wait_seconds=max_wait,
        volume_size_gb=section.volume_size_gb,
        torchrun=torchrun,
        output_path=(output_path or section.output_path).rstrip("/"),
        checkpoint_s3_uri=(checkpoint_s3_uri or "").rstrip("/"),
        python=python or "",
        base_model_dir=base_model_dir,
        tracking_uri=tracking_uri or "",
    )


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower()


def mlflow_client_pin(aws: Aws, tracking_arn: str, requirements: Iterable[str]) -> str:
    """The MLflow client requirement for a job that logs to a SageMaker managed MLflow server:
    the server's version family (``mlflow-skinny>=3.0,<3.1`` for 3.0.x), not the newest client,
    whose REST calls a server of an older minor version may not know. A server whose version
    family the project's MLflow requirement excludes (another major version, or a minor below its
    floor, whose client this project was never run with) is refused before anything is created."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    client = aws.client("sagemaker")
    kind, _, name = tracking_arn.rsplit(":", 1)[-1].partition("/")
    try:
        if kind == "mlflow-app":
            described = client.describe_mlflow_app(Arn=tracking_arn)
        else:
            described = client.describe_mlflow_tracking_server(TrackingServerName=name)
    except client.exceptions.ClientError as error:
        raise UsageError(f"MLflow tracking server {tracking_arn}: {error_message(error)}") from None
    version = str(described.get("MlflowVersion") or "")
    try:
        major, minor = Version(version).release[:2]
    except (InvalidVersion, ValueError):
        raise UsageError(f"MLflow tracking server {name}: unexpected MLflow version {version!r}") from None
    project = next((r for r in requirements if _requirement_name(r) in MLFLOW_CLIENTS), "")
    specifier = SpecifierSet(re.sub(r"^[\w.-]+(\[[^]]*\])?", "", project).split(";")[0].strip())
    if project and not any(specifier.contains(f"{major}.{minor}.{patch}") for patch in range(100)):
        raise UsageError(
            f"MLflow tracking server {name} runs MLflow {version}, which this project's MLflow client "
            f"({project}) does not support: create a tracking server with a version it supports "
            "(`aws sagemaker create-mlflow-tracking-server --mlflow-version ...`), or pass --mlflow "
            "an http(s) MLflow server"
        )
    return f"mlflow-skinny>={major}.{minor},<{major}.{minor + 1}"


def _requirements(config: ProjectConfig) -> list[str]:
    """This project's runtime dependencies minus what the DLC provides."""
    try:
        requires = metadata.requires(config.project.slug) or []
    except metadata.PackageNotFoundError:
        raise UsageError(
            f"the project distribution {config.project.slug!r} is not installed; run "
            "`pip install -e .` in the project folder (its dependencies become the job's "
            "requirements.txt)"
        ) from None
    kept = []
    for requirement in requires:
        if "extra ==" in requirement:
            continue
        if _requirement_name(requirement) not in PROVIDED_BY_DLC:
            kept.append(requirement)
    return kept


def stage_source(config: ProjectConfig, plan: TrainingPlan, destination: Path, mlflow_pin: str = "") -> Path:
    """Write the job's source folder: package copy, effective config, requirements, launcher.

    ``mlflow_pin`` replaces the project's MLflow requirement (see :func:`mlflow_client_pin`).
    """
    package_dir = Path(__file__).resolve().parents[1]
    target = destination / PACKAGE
    shutil.copytree(
        package_dir,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    # The job must train with the configuration this launch was validated against.
    shutil.copyfile(config.path, target / "config.toml")
    requirements = _requirements(config)
    if mlflow_pin:
        requirements = [r for r in requirements if _requirement_name(r) not in MLFLOW_CLIENTS] + [mlflow_pin]
    if plan.tracking_uri.startswith("arn:"):
        # Signs MLflow requests to a SageMaker managed tracking server.
        requirements.append(MLFLOW_PLUGIN)
    (destination / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    # The launcher points the package at the staged config: a config.toml found by searching
    # the working directory's parents could be another one.
    module = module_path(plan.entry_point)
    (destination / LAUNCHER).write_text(
        f'"""Run {module} as the SageMaker entry script (python or torchrun)."""\n'
        "import os\n"
        "import runpy\n\n"
        f"os.environ[{CONFIG_ENV_VAR!r}] = "
        f"os.path.join(os.path.dirname(os.path.abspath(__file__)), {PACKAGE!r}, 'config.toml')\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n",
        encoding="utf-8",
    )
    return destination


@dataclass
class TrainingResult:
    mode: str
    job_name: str
    model_location: str  # s3:// URI of model.tar.gz, or a local folder
    status: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def launch_sagemaker(
    config: ProjectConfig,
    plan: TrainingPlan,
    aws: Aws,
    *,
    wait: bool = True,
    on_launch: Callable[[JobInfo, str], None] | None = None,
) -> TrainingResult:
    """Hosted job or local-mode container through ``ModelTrainer``.

    Hosted: the SDK names the job ``<base>-<timestamp>``, and that name is the run id: local
    channels are uploaded by the SDK under ``<base>/<job>/input/``, checkpoints go to
    ``<base>/<job>/checkpoints`` (unless resuming from a given URI), the model to
    ``<output>/<job>/output/model.tar.gz``, and the entry point names its MLflow run after it.
    ``on_launch`` gets the created job and its output path.
    """
    from sagemaker.core.shapes import MetricDefinition, Tag
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
    )
    from sagemaker.train import ModelTrainer
    from sagemaker.train.distributed import Torchrun
    from sagemaker.train.model_trainer import Mode

    hosted = plan.mode == "hosted"
    environment = {"MLFLOW_TRACKING_URI": plan.tracking_uri} if plan.tracking_uri else {}
    pin = ""
    if hosted and plan.tracking_uri.startswith("arn:"):
        pin = mlflow_client_pin(aws, plan.tracking_uri, _requirements(config))
        log.info("MLflow client of the job: %s (the tracking server's version family)", pin)
    with tempfile.TemporaryDirectory(prefix="sm-source-") as staging:
        source_dir = stage_source(config, plan, Path(staging) / "code", pin)
        options: dict[str, Any] = {}
        channels = dict(plan.channels)
        if hosted:
            names = ProjectNames.of(config.project.slug)
            if plan.base_model_dir:
                channels[BASE_MODEL_CHANNEL] = upload_base_model(aws, Path(plan.base_model_dir), names)
            output_path = plan.output_path or names.training_output(aws.bucket)
            environment["MODEL_OUTPUT_S3_PATH"] = output_path
            options.update(
                sagemaker_session=aws.sagemaker_session,
                role=aws.settings.role,
                output_data_config=OutputDataConfig(s3_output_path=output_path),
                # No S3 URI: the SDK puts checkpoints under the job's own prefix.
                checkpoint_config=CheckpointConfig(
                    s3_uri=plan.checkpoint_s3_uri or None, local_path=CONTAINER_CHECKPOINT_DIR
                ),
                tags=[Tag(key=t["Key"], value=t["Value"]) for t in project_tags(config)],
            )
        else:
            from sagemaker.core.local import LocalSession

            check_docker()
            if plan.base_model_dir:
                channels[BASE_MODEL_CHANNEL] = plan.base_model_dir
            root = Path(plan.output_path or "sagemaker-local").resolve()
            root.mkdir(parents=True, exist_ok=True)
            options.update(
                training_mode=Mode.LOCAL_CONTAINER,
                sagemaker_session=LocalSession(boto_session=aws.boto),
                local_container_root=str(root),
            )
        inputs = [InputData(channel_name=name, data_source=source) for name, source in channels.items()]
        trainer = ModelTrainer(
            training_image=plan.image,
            source_code=SourceCode(
                source_dir=str(source_dir),
                entry_script=LAUNCHER,
                requirements="requirements.txt",
            ),
            distributed=Torchrun() if plan.torchrun else None,
            compute=Compute(
                instance_type=plan.instance_type,
                instance_count=plan.instance_count,
                volume_size_in_gb=plan.volume_size_gb,
                enable_managed_spot_training=plan.use_spot or None,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=plan.max_run_seconds,
                max_wait_time_in_seconds=plan.max_wait_seconds if plan.use_spot else None,
            ),
            hyperparameters=dict(plan.hyperparameters),
            base_job_name=plan.base_job_name,
            environment=environment,
            **options,
        ).with_metric_definitions(
            [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in metric_definitions()]
        )
        # Hosted: never the SDK's wait, whose log streaming ignores the session's region.
        trainer.train(input_data_config=inputs, wait=not hosted, logs=not hosted and wait)
    if not hosted:
        # Local mode gathers /opt/ml/model of every container into this tarball.
        model = Path(options["local_container_root"]) / "compressed_artifacts" / "model.tar.gz"
        return TrainingResult(plan.mode, plan.base_job_name, str(model), "Completed")
    job_name = launched_job_name(trainer.output_data)
    job = describe_job(aws, job_name)
    aws.client("sagemaker").add_tags(ResourceArn=job.arn, Tags=project_tags(config, job_name))
    if on_launch is not None:
        on_launch(job, output_path)
    if wait:
        wait_for_job(aws, job_name)
    job = describe_job(aws, job_name)
    return TrainingResult("hosted", job_name, job.model_data, job.status, job.final_metrics)


def launched_job_name(output_data: str) -> str:
    """The name of the job ``ModelTrainer.train`` just created, which the SDK chooses
    (``<base>-<timestamp>``) and does not return. Its public ``output_data`` is documented as
    ``<output path>/<job name>/output/output.tar.gz``."""
    prefix = output_data.removesuffix("/output/output.tar.gz")
    if prefix == output_data or "/" not in prefix:
        raise UsageError(
            f"sagemaker {metadata.version('sagemaker')}: ModelTrainer.output_data is {output_data!r}, "
            "not <output path>/<job name>/output/output.tar.gz; find the job with `sagemaker list`"
        )
    return prefix.rsplit("/", 1)[1]


def check_docker() -> None:
    """SageMaker local mode runs the training image with Docker; fail early without an engine."""
    docker = shutil.which("docker")
    if docker is None:
        raise UsageError(
            "SageMaker local mode needs Docker (the `docker` command was not found); install "
            "Docker, or use --mode process to run the entry point without a container"
        )
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"SageMaker local mode needs a running Docker engine: {error}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise UsageError(
            "SageMaker local mode needs a running Docker engine; `docker info` failed ("
            f"{detail[-1] if detail else 'no output'}); start Docker, or use --mode process"
        )


def count_gpus() -> int:
    """NVIDIA GPUs visible here, counted the way SageMaker's environment script does."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))


def container_environment(
    ml: Path, plan: TrainingPlan, hyperparameters: Mapping[str, str], job_name: str, num_gpus: int
) -> dict[str, str]:
    """The ``SM_*`` variables SageMaker's drivers export, pointing into ``ml`` (/opt/ml)."""
    channels = list(plan.channels)
    hps = {key: _deserialize(value) for key, value in hyperparameters.items()}
    resource = {
        "current_host": "algo-1",
        "current_instance_type": plan.instance_type,
        "hosts": ["algo-1"],
        "network_interface_name": "eth0",
    }
    input_config = {
        name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"} for name in channels
    }
    values: dict[str, Any] = {
        "TRAINING_JOB_NAME": job_name,
        "SM_MODEL_DIR": ml / "model",
        "SM_INPUT_DIR": ml / "input",
        "SM_INPUT_DATA_DIR": ml / "input" / "data",
        "SM_INPUT_CONFIG_DIR": ml / "input" / "config",
        "SM_OUTPUT_DIR": ml / "output",
        "SM_OUTPUT_FAILURE": ml / "output" / "failure",
        "SM_OUTPUT_DATA_DIR": ml / "output" / "data",
        "SM_LOG_LEVEL": 20,
        "SM_MASTER_ADDR": "algo-1",
        "SM_MASTER_PORT": 7777,
        "SM_SOURCE_DIR": ml / "input" / "data" / "code",
        "SM_ENTRY_SCRIPT": LAUNCHER,
        "SM_CHANNELS": channels,
        "SM_HPS": hps,
        "SM_CURRENT_HOST": "algo-1",
        "SM_CURRENT_INSTANCE_TYPE": plan.instance_type,
        "SM_HOSTS": ["algo-1"],
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_HOST_COUNT": 1,
        "SM_CURRENT_HOST_RANK": 0,
        "SM_NUM_CPUS": os.cpu_count() or 1,
        "SM_NUM_GPUS": num_gpus,
        "SM_NUM_NEURONS": 0,
        "SM_RESOURCE_CONFIG": resource,
        "SM_INPUT_DATA_CONFIG": input_config,
    }
    for name in channels:
        values[f"SM_CHANNEL_{name.upper()}"] = ml / "input" / "data" / name
    for key, value in hps.items():
        values[f"SM_HP_{key.replace('-', '_').upper()}"] = value
    values["SM_TRAINING_ENV"] = {
        "channel_input_dirs": {n: str(values[f"SM_CHANNEL_{n.upper()}"]) for n in channels},
        "current_host": "algo-1",
        "hosts": ["algo-1"],
        "hyperparameters": hps,
        "job_name": job_name,
        "model_dir": str(values["SM_MODEL_DIR"]),
        "num_gpus": num_gpus,
        "output_data_dir": str(values["SM_OUTPUT_DATA_DIR"]),
    }
    return {key: _serialize(value) for key, value in values.items()}


def _serialize(value: Any) -> str:
    # As SageMaker's environment.py writes them: strings as they are, everything else as JSON.
    return str(value) if isinstance(value, str | Path) else json.dumps(value)


def _deserialize(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def run_process(config: ProjectConfig, plan: TrainingPlan, work_dir: Path) -> TrainingResult:
    """Run the entry point like the container would, in a subprocess, under ``work_dir``."""
    job_name = f"{plan.base_job_name}-{timestamp()}"
    # Absolute: the entry point runs from the code folder, as in the container.
    root = (work_dir / job_name).resolve()
    ml = root / "opt" / "ml"
    code = ml / "input" / "data" / "code"
    for folder in ("model", "output/data", "input/config", "checkpoints"):
        (ml / folder).mkdir(parents=True, exist_ok=True)
    stage_source(config, plan, code)
    for name, source in plan.channels.items():
        shutil.copytree(source, ml / "input" / "data" / name)
    # /opt/ml/checkpoints is not writable outside a container; this is its stand-in.
    hyperparameters = {**plan.hyperparameters, "checkpoint_dir": str(ml / "checkpoints")}
    gpus = count_gpus()
    env = container_environment(ml, plan, hyperparameters, job_name, gpus)
    # UTF-8, as in the container, whatever this machine's locale.
    config_files = {
        "hyperparameters.json": json.dumps(hyperparameters, indent=2),
        "inputdataconfig.json": env["SM_INPUT_DATA_CONFIG"],
        "resourceconfig.json": env["SM_RESOURCE_CONFIG"],
    }
    for name, text in config_files.items():
        (ml / "input" / "config" / name).write_text(text, encoding="utf-8")

    python = plan.python or sys.executable
    command = [python, LAUNCHER]
    if plan.torchrun or gpus > 1:
        torchrun = ["-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={max(gpus, 1)}"]
        command = [python, *torchrun, LAUNCHER]
    for key, value in hyperparameters.items():  # as SageMaker's script drivers pass them
        command += [f"--{key}", _serialize(_deserialize(value))]
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("SM_")}
    child_env.update(env)
    child_env["PYTHONUNBUFFERED"] = "1"
    if plan.tracking_uri:
        child_env["MLFLOW_TRACKING_URI"] = plan.tracking_uri
    else:
        # As in a hosted job: no server configured, nothing tracked (not this machine's store).
        child_env.pop("MLFLOW_TRACKING_URI", None)
    # The staged copy, not the installed package, must be imported (as in the container).
    child_env.pop("PYTHONPATH", None)
    child_env.pop(f"{PACKAGE.upper()}_CONFIG", None)
    log.info("process mode: %s (cwd %s)", " ".join(command), code)
    metrics: dict[str, float] = {}
    definitions = metric_definitions()
    with subprocess.Popen(
        command,
        cwd=code,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stdout.write(line)
            metrics.update(parse_metrics(line, definitions))
        status = child.wait()
    if status != 0:
        failure = ml / "output" / "failure"
        reason = failure.read_text(encoding="utf-8", errors="replace").strip() if failure.exists() else ""
        raise UsageError(
            f"the entry point failed with exit status {status} (process mode, {root})"
            + (f": {reason}" if reason else "")
        )
    return TrainingResult("process", job_name, str(ml / "model"), "Completed", metrics)


def check_tracking_uri(uri: str, mode: str) -> None:
    """A tracking server the job can reach: a SageMaker MLflow ARN or an http(s) URL; a local
    store (sqlite:, a folder) only where the entry point runs on this machine."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == "arn":
        if not _TRACKING_ARN.match(uri):
            raise UsageError(
                f"MLflow tracking server {uri!r} is not a SageMaker MLflow ARN "
                "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
            )
    elif scheme not in ("http", "https") and mode in ("hosted", "local", "local_gpu"):
        raise UsageError(
            f"MLflow tracking server {uri!r}: a {mode} job runs in a container and cannot "
            "write to a store on this machine; use an MLflow server URL or a SageMaker MLflow ARN"
        )


def train(
    config: ProjectConfig,
    plan: TrainingPlan,
    settings: AwsSettings | None,
    *,
    wait: bool = True,
    work_dir: Path | None = None,
    on_launch: Callable[[JobInfo, str], None] | None = None,
) -> TrainingResult:
    """Launch ``plan``. Tracking happens inside the entry point (MLflow, when the plan names a
    tracking server), the same code for local runs, process mode and hosted jobs."""
    if plan.mode == "process":
        # Under the project root, where .gitignore expects it, whatever the working directory.
        return run_process(config, plan, work_dir or config.root / "sagemaker-process")
    # Local mode too: the training image comes from a private ECR registry.
    if settings is None:
        raise UsageError(f"{plan.mode} mode needs AWS settings (a region at least)")
    image = image_uri(plan.versions, "training", settings.region, plan.instance_type)
    return launch_sagemaker(
        config, dataclasses.replace(plan, image=image), Aws(settings), wait=wait, on_launch=on_launch
    )
