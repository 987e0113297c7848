"""SageMaker training launchers against a local moto server (no AWS, no Docker).

The project's code runs unchanged; only AWS_ENDPOINT_URL points it at moto on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import re
import time

import pytest

pytest.importorskip("sagemaker", reason="the 'sagemaker' extra is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

import aws_moto  # noqa: E402
from conftest import labelled_records, write_labelled  # noqa: E402

from nsmc_sentiment_classifier.aws.names import (  # noqa: E402
    ProjectNames,
)
from nsmc_sentiment_classifier.config import load_config  # noqa: E402
from nsmc_sentiment_classifier.training.modeling import (  # noqa: E402
    looks_like_path,
)

pytestmark = pytest.mark.engine

REGION = load_config().sagemaker.region
NAMES = ProjectNames.of(load_config().project.slug)


@pytest.fixture
def moto_url(monkeypatch, tmp_path):
    return aws_moto.activate(monkeypatch, tmp_path)


@pytest.fixture
def cli():
    from nsmc_sentiment_classifier import cli

    return cli


@pytest.fixture
def prepared(project_dir, config, tiny_model_dir):
    """data/prepared/{train,validation,test}/<split>.jsonl in a scratch project folder.

    A local base model folder in config.toml is the tiny model there: the team's folder is
    git-ignored (a CI runner has none), and a real model is too big to upload to moto per test.
    """
    if looks_like_path(config.options.model_name_or_path):
        scratch = project_dir / "config.toml"
        text, replaced = re.subn(
            r"(?m)^base_model = .*$",
            f"base_model = {json.dumps(str(tiny_model_dir))}",
            scratch.read_text("utf-8"),
        )
        assert replaced == 1, f"{scratch}: no [model] base_model line to point at the tiny model"
        scratch.write_text(text, encoding="utf-8")
    records = labelled_records(config, 80)
    random.Random(0).shuffle(records)
    sizes = {"train": 48, "validation": 16, "test": 16}
    start = 0
    for split, size in sizes.items():
        path = project_dir / "data" / "prepared" / split / f"{split}.jsonl"
        write_labelled(path, config, records[start : start + size], ids=True, with_id_column=False)
        start += size
    return project_dir / "data" / "prepared"


def _nothing_created() -> None:
    assert aws_moto.client("s3", REGION).list_buckets()["Buckets"] == []
    sm = aws_moto.client("sagemaker", REGION)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_hosted_job_description(moto_url, prepared, cli, pkg, config, capsys):
    aws_moto.client("s3", REGION).create_bucket(
        Bucket=aws_moto.BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    code = cli.main(
        [
            "sagemaker",
            "train",
            "--role",
            aws_moto.FAKE_ROLE,
            "--bucket",
            aws_moto.BUCKET,
            "--instance-type",
            "ml.g5.12xlarge",
            "--instance-count",
            "2",
            "--spot",
            "--max-run",
            "3600",
            "--max-wait",
            "7200",
            "--hp",
            "epochs=1",
            "--hp",
            "learning_rate=3e-5",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    sm = aws_moto.client("sagemaker", REGION)
    [summary] = sm.list_training_jobs()["TrainingJobSummaries"]
    job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    spec = job["AlgorithmSpecification"]
    assert spec["TrainingImage"] == (
        f"763104351884.dkr.ecr.{REGION}.amazonaws.com/huggingface-pytorch-training:"
        "2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04"
    )
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.12xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    hps = job["HyperParameters"]
    assert hps["epochs"] == "1" and hps["learning_rate"] == "3e-5"
    assert hps["batch_size"] == str(config.options.batch_size)
    assert all(isinstance(value, str) for value in hps.values())

    prefix = NAMES.s3_prefix(aws_moto.BUCKET)
    run_id = summary["TrainingJobName"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert {"train", "validation", "test", "code", "sm_drivers"} <= set(channels)
    # One run id names the job, its data prefix and its checkpoints, all printed at launch.
    assert run_id.startswith(f"{NAMES.training_job_base}-")
    for split in ("train", "validation", "test"):
        assert channels[split] == f"{prefix}/{run_id}/input/{split}"
        assert f"input {split}: {channels[split]}" in out
    assert job["OutputDataConfig"]["S3OutputPath"] == NAMES.training_output(aws_moto.BUCKET)
    assert job["CheckpointConfig"]["S3Uri"] == f"{prefix}/{run_id}/checkpoints"
    assert f"checkpoints: {job['CheckpointConfig']['S3Uri']}" in out
    assert f"run id {run_id}" in out
    assert job["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
    assert tags == {"project": config.project.slug, "run-id": run_id}
    if looks_like_path(config.options.model_name_or_path):
        # A local folder (the tiny model, see `prepared`) goes up and is mounted as a channel.
        assert "model_name_or_path" not in hps
        assert channels["base_model"].startswith(f"{prefix}/base-models/")
    else:
        # A hub id goes to the job as it is.
        assert hps["model_name_or_path"] == config.options.model_name_or_path
        assert "base_model" not in channels
    # Without a tracking server nothing is tracked.
    assert "MLFLOW_TRACKING_URI" not in job.get("Environment", {})
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}

    from nsmc_sentiment_classifier.training import artifacts

    assert spec["MetricDefinitions"] == artifacts.metric_definitions()
    # Each definition extracts its value from a line the entry points print.
    line = artifacts.metric_line({"eval_loss": 0.25, "eval_accuracy": 0.8125, "epoch": 1})
    from nsmc_sentiment_classifier.aws import training

    assert training.parse_metrics(line, spec["MetricDefinitions"]) == {
        "eval_loss": 0.25,
        "eval_accuracy": 0.8125,
        "epoch": 1.0,
    }

    # Uploaded: the local channel files, and the source folder the launcher runs from.
    s3 = aws_moto.client("s3", REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws_moto.BUCKET)["Contents"]]
    assert any(k.endswith("/train/train.jsonl") for k in keys)
    code_prefix = channels["code"].split(f"s3://{aws_moto.BUCKET}/", 1)[1]
    code_keys = {k[len(code_prefix) + 1 :] for k in keys if k.startswith(code_prefix + "/")}
    assert {
        "sm_entry.py",
        "requirements.txt",
        f"{pkg.__name__}/config.toml",
        f"{pkg.__name__}/training/train_hf.py",
    } <= code_keys
    requirements = s3.get_object(Bucket=aws_moto.BUCKET, Key=f"{code_prefix}/requirements.txt")
    names = {
        re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower()
        for line in requirements["Body"].read().decode().splitlines()
        if line.strip()
    }
    # The image's own CUDA builds of torch and transformers must not be replaced.
    assert "accelerate" in names and not names & {"torch", "transformers"}
    assert summary["TrainingJobName"] in out
    # SageMaker Experiments (Classic) is retired: tracking is MLflow, from inside the job.
    assert sm.list_trial_components()["TrialComponentSummaries"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no SageMaker execution role"),
        (["--role", "not-an-arn"], "is not an IAM role ARN"),
        (
            ["--role", aws_moto.FAKE_ROLE, "--instance-type", "ml.nonexistent.xlarge"],
            "unknown training instance type 'ml.nonexistent.xlarge'",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--pytorch-version", "2.8.0"],
            "no Hugging Face training image for transformers 5.3.0 / pytorch 2.8.0 / py312",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--instance-type", "ml.m5.xlarge"],
            "there is no CPU Hugging Face training image",
        ),
        (
            [
                "--role",
                aws_moto.FAKE_ROLE,
                "--transformers-version",
                "4.28.1",
                "--pytorch-version",
                "2.0.0",
                "--py-version",
                "py310",
            ],
            "cannot run this project's code (transformers 4.28.1 < 4.51, Python py310 < py311",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--mlflow", "sqlite:///mlflow.db"],
            "a hosted job runs in a container and cannot write to a store on this machine",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--mlflow", "arn:aws:sagemaker:xx:1:mlflow/x"],
            "is not a SageMaker MLflow ARN",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--hp", "model_name_or_path=./no-such-model"],
            "base model ./no-such-model: no such folder",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--train", "missing/train"],
            "channel 'train': missing/train does not exist",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--spot", "--max-run", "7200", "--max-wait", "3600"],
            "max_wait_seconds (3600) >= max_run_seconds (7200)",
        ),
        (["--role", aws_moto.FAKE_ROLE, "--hp", "epochz=3"], "--hp epochz: not a training option"),
        (
            # V100s: the default training image's CUDA 13 build has no kernels for them.
            ["--role", aws_moto.FAKE_ROLE, "--instance-type", "ml.p3.2xlarge"],
            "ml.p3.2xlarge has NVIDIA V100 GPUs (Volta, compute capability 7.0); the image "
            "huggingface-pytorch-training:2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04 is built "
            "with CUDA 13.0, whose PyTorch has no kernels below 7.5. Choose ml.g5.2xlarge (A10G)",
        ),
        (
            # A region the SDK's image table has no Hugging Face image in (it raised a traceback).
            ["--role", aws_moto.FAKE_ROLE, "--region", "eu-central-2", "--dry-run"],
            "in region 'eu-central-2'; the SageMaker SDK's image table has it in af-south-1, ap-east-1,",
        ),
    ],
)
def test_invalid_settings_fail_before_anything_is_created(moto_url, prepared, cli, capsys, args, message):
    code = cli.main(["sagemaker", "train", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    _nothing_created()


@pytest.mark.parametrize(
    ("instance_type", "cuda", "refused"),
    [
        ("ml.p3.2xlarge", "cu130", True),  # V100, Volta 7.0 < 7.5
        ("ml.p3dn.24xlarge", "cu130", True),
        ("ml.g3s.xlarge", "cu130", True),  # M60, Maxwell 5.2
        ("ml.p2.xlarge", "cu124", True),  # K80, Kepler 3.7 < 5.0 (CUDA 12)
        ("ml.p3.2xlarge", "cu124", False),  # CUDA 12 still builds for Volta
        ("ml.g4dn.xlarge", "cu130", False),  # T4, Turing 7.5
        ("ml.g5.2xlarge", "cu130", False),
        ("ml.p5.48xlarge", "cu130", False),
        ("ml.m5.xlarge", "cu130", False),  # no GPU: not this check's business
        ("local_gpu", "cu130", False),
        ("ml.p3.2xlarge", "", False),  # a CPU image names no CUDA
    ],
)
def test_a_gpu_the_images_cuda_has_no_kernels_for_is_refused(instance_type, cuda, refused):
    from nsmc_sentiment_classifier.aws.images import (
        check_gpu_generation,
    )
    from nsmc_sentiment_classifier.errors import UsageError

    uri = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/huggingface-pytorch-training:2.9.0-transformers5.3.0"
    uri += f"-gpu-py312-{cuda}-ubuntu22.04" if cuda else "-cpu-py312-ubuntu22.04"
    if refused:
        with pytest.raises(UsageError, match=rf"^{re.escape(instance_type)} has NVIDIA \S+ GPUs"):
            check_gpu_generation(instance_type, uri)
    else:
        check_gpu_generation(instance_type, uri)


def test_missing_region_fails_clearly(
    moto_url, prepared, project_dir, cli, config, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    text = (project_dir / "config.toml").read_text(encoding="utf-8")
    custom = tmp_path / "no-region.toml"
    custom.write_text(text.replace(f'region = "{config.sagemaker.region}"', 'region = ""'), encoding="utf-8")
    code = cli.main(["--config", str(custom), "sagemaker", "train", "--role", aws_moto.FAKE_ROLE])
    assert code == 2
    assert "no AWS region" in capsys.readouterr().err
    _nothing_created()


def test_local_mode_up_to_docker(moto_url, prepared, cli, pkg, capsys):
    code = cli.main(["sagemaker", "train", "--mode", "local_gpu", "--dry-run"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert plan["instance_type"] == "local_gpu"
    assert plan["image"].endswith("2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04")
    assert plan["channels"]["train"] == str(prepared / "train")

    from nsmc_sentiment_classifier.aws import training
    from nsmc_sentiment_classifier.errors import (
        UsageError as cli_error,
    )

    try:
        training.check_docker()
    except cli_error as error:
        code = cli.main(["sagemaker", "train", "--mode", "local_gpu"])
        assert code == 2
        assert "needs" in capsys.readouterr().err and "Docker" in str(error)
        _nothing_created()
        pytest.skip(f"no Docker engine, local mode checked up to the container start: {error}")
    pytest.skip("a Docker engine is available, but tests do not pull the multi-GB training image")


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is needed to train in process mode"
)
@pytest.mark.parametrize("entry_point", ["train_hf", "train_torch"])
def test_process_mode_trains_through_the_container_contract(
    moto_url,
    prepared,
    project_dir,
    cli,
    pkg,
    config,
    tiny_model_dir,
    tmp_path,
    capsys,
    monkeypatch,
    entry_point,
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = f"sqlite:///{(tmp_path / 'tracking' / 'mlflow.db').as_posix()}"
    (tmp_path / "tracking").mkdir()
    code = cli.main(
        [
            "sagemaker",
            "train",
            "--mode",
            "process",
            "--entry-point",
            entry_point,
            "--work-dir",
            str(tmp_path / "work"),
            "--mlflow",
            store,
            "--hp",
            f"model_name_or_path={tiny_model_dir}",
            "--hp",
            "epochs=1",
            "--hp",
            "batch_size=16",
            "--hp",
            "eval_batch_size=16",
            "--hp",
            "max_seq_length=32",
            "--hp",
            "logging_steps=1",
            "--hp",
            "mixed_precision=no",
            # Two evaluations, so the tracked metrics must be a history, not a final value.
            "--hp",
            "eval_strategy=steps",
            "--hp",
            "eval_steps=2",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    [job_dir] = (tmp_path / "work").iterdir()
    ml = job_dir / "opt" / "ml"
    model_dir = ml / "model"
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "model.safetensors").is_file()
    assert (ml / "output" / "data" / "metrics_validation.json").is_file()
    assert any((ml / "checkpoints").iterdir()), "checkpoints go to the /opt/ml/checkpoints stand-in"
    effective = json.loads((ml / "output" / "data" / "hyperparameters.json").read_text())
    assert effective["train_dir"] == str(ml / "input" / "data" / "train")
    assert effective["epochs"] == 1 and effective["batch_size"] == 16
    best = config.data.label_scheme.best_metric
    assert f"eval_{best}=" in out
    assert f"model: {model_dir}" in out

    # Tracked from INSIDE the entry point, in the MLflow store the launch named: the run is
    # named after the job (the run id), with its options, every evaluation and the model's place.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(config.project.slug)
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == job_dir.name
    assert run.info.status == "FINISHED"
    assert float(run.data.params["epochs"]) == 1
    assert run.data.params["entry_point"] == entry_point
    history = client.get_metric_history(run.info.run_id, f"eval_{best}")
    assert len({m.step for m in history}) >= 2, history
    assert f"validation_{best}" in run.data.metrics
    assert run.data.tags["model_artifacts"] == str(model_dir)
    # Nothing went to AWS (no experiments there) nor to the project's own local store.
    sm = aws_moto.client("sagemaker", REGION)
    assert sm.list_experiments()["ExperimentSummaries"] == []
    # (The scratch project's store: the real project's mlruns/ holds the user's own local runs.)
    assert not (project_dir / "mlruns").exists()


def _bucket() -> None:
    aws_moto.client("s3", REGION).create_bucket(
        Bucket=aws_moto.BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )


def _hosted(cli, *args: str) -> int:
    return cli.main(
        ["sagemaker", "train", "--role", aws_moto.FAKE_ROLE, "--bucket", aws_moto.BUCKET, "--no-wait", *args]
    )


def _jobs() -> list[dict]:
    sm = aws_moto.client("sagemaker", REGION)
    names = [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    return [sm.describe_training_job(TrainingJobName=name) for name in sorted(names)]


def test_local_base_model_is_uploaded_once_and_mounted_as_a_channel(
    moto_url, prepared, cli, config, tiny_model_dir, capsys, monkeypatch
):
    # A dry run shows where the folder will go, not the local path, and touches nothing.
    code = cli.main(
        [
            "sagemaker",
            "train",
            "--dry-run",
            "--role",
            aws_moto.FAKE_ROLE,
            "--bucket",
            aws_moto.BUCKET,
            "--hp",
            f"model_name_or_path={tiny_model_dir}",
        ]
    )
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    channel = plan["channels"]["base_model"]
    assert channel.startswith(f"{NAMES.s3_prefix(aws_moto.BUCKET)}/base-models/")
    assert "model_name_or_path" not in plan["hyperparameters"]
    assert str(tiny_model_dir) not in json.dumps(plan["channels"])
    _nothing_created()

    _bucket()
    for attempt in range(2):
        if attempt:
            time.sleep(1.1)  # the SDK names jobs <base>-<YYYYMMDDHHMMSS>: one per second
        assert _hosted(cli, "--hp", f"model_name_or_path={tiny_model_dir}", "--hp", "epochs=1") == 0
    capsys.readouterr()
    first, second = _jobs()
    for job in (first, second):
        channels = {
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]
        }
        # The same files are uploaded once and reused (content-addressed).
        assert channels["base_model"] == channel
        assert "model_name_or_path" not in job["HyperParameters"]
        assert job["HyperParameters"]["epochs"] == "1"
    s3 = aws_moto.client("s3", REGION)
    key = channel.split(f"s3://{aws_moto.BUCKET}/", 1)[1]
    listed = s3.list_object_versions(Bucket=aws_moto.BUCKET, Prefix=key).get("Versions", [])
    names = sorted(o["Key"][len(key) + 1 :] for o in listed)
    assert "config.json" in names and names.count("config.json") == 1

    # Inside the job, the channel is the base model (whatever config.toml says).
    from nsmc_sentiment_classifier.training import options

    args = options.build_parser().parse_args([])
    monkeypatch.setenv("SM_CHANNEL_BASE_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(prepared / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(prepared / "validation"))
    resolved = options.resolve_options(args)
    assert resolved.model_name_or_path == str(tiny_model_dir)


def test_hosted_job_logs_to_a_managed_mlflow_server(moto_url, prepared, cli, config, capsys):
    _bucket()
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:mlflow-tracking-server/team"
    aws_moto.MLFLOW_SERVERS["team"] = {"MlflowVersion": "3.4.2", "ArtifactStoreUri": "s3://team-mlflow/a"}
    assert _hosted(cli, "--mlflow", arn) == 0
    out = capsys.readouterr().out
    [job] = _jobs()
    assert job["Environment"]["MLFLOW_TRACKING_URI"] == arn
    assert job["Environment"]["MODEL_OUTPUT_S3_PATH"] == job["OutputDataConfig"]["S3OutputPath"]
    assert f"MLflow: {arn}" in out
    # The job installs the plugin that signs requests to a managed tracking server.
    code_uri = next(
        c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"] if c["ChannelName"] == "code"
    )
    key = code_uri.split(f"s3://{aws_moto.BUCKET}/", 1)[1] + "/requirements.txt"
    body = aws_moto.client("s3", REGION).get_object(Bucket=aws_moto.BUCKET, Key=key)["Body"].read().decode()
    assert "sagemaker-mlflow" in body
    # The client of the server's version family, not the newest one the project allows.
    mlflow = [line for line in body.splitlines() if line.startswith(("mlflow-skinny", "mlflow"))]
    assert mlflow == ["mlflow-skinny>=3.4,<3.5"]


def test_a_managed_mlflow_server_of_another_major_version_is_refused(moto_url, prepared, cli, config, capsys):
    _bucket()
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:mlflow-tracking-server/old"
    aws_moto.MLFLOW_SERVERS["old"] = {"MlflowVersion": "2.16.2", "ArtifactStoreUri": "s3://team-mlflow/a"}
    assert _hosted(cli, "--mlflow", arn) == 2
    err = capsys.readouterr().err
    assert "MLflow tracking server old runs MLflow 2.16.2, which this project's MLflow client" in err
    assert _jobs() == []
    # Same major version, below the project's floor: a client this project never ran with.
    aws_moto.MLFLOW_SERVERS["old"]["MlflowVersion"] = "3.0.1"
    assert _hosted(cli, "--mlflow", arn) == 2
    assert "runs MLflow 3.0.1, which this project's MLflow client" in capsys.readouterr().err
    assert _jobs() == []
    # An unknown server is one line too, before anything is created.
    missing = f"arn:aws:sagemaker:{REGION}:123456789012:mlflow-tracking-server/missing"
    assert _hosted(cli, "--mlflow", missing) == 2
    assert "MLflow tracking server " + missing in capsys.readouterr().err
    assert _jobs() == []
    assert aws_moto.client("s3", REGION).list_objects_v2(Bucket=aws_moto.BUCKET)["KeyCount"] == 0


def test_a_role_that_fails_the_permission_check_stops_before_any_upload(
    moto_url, prepared, cli, capsys, monkeypatch
):
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "true")
    role = f"arn:aws:iam::123456789012:role/{aws_moto.NO_PERMISSIONS}"
    code = cli.main(["sagemaker", "train", "--role", role])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "cannot run SageMaker training jobs: Missing permissions: " in err
    assert "docs/sagemaker.md" in err
    s3 = aws_moto.client("s3", REGION)
    assert all(
        s3.list_objects_v2(Bucket=b["Name"]).get("KeyCount", 0) == 0 for b in s3.list_buckets()["Buckets"]
    )
    assert aws_moto.client("sagemaker", REGION).list_training_jobs()["TrainingJobSummaries"] == []


def test_a_bucket_that_does_not_exist_is_refused_before_anything_else(moto_url, prepared, cli, capsys):
    code = cli.main(["sagemaker", "train", "--role", aws_moto.FAKE_ROLE, "--bucket", "no-such-bucket-here"])
    assert code == 2
    assert "S3 bucket 'no-such-bucket-here' does not exist" in capsys.readouterr().err
    _nothing_created()


def test_local_mode_on_a_cpu_machine_points_to_process_mode(moto_url, prepared, cli, capsys):
    from nsmc_sentiment_classifier.aws import training

    if training.count_gpus():
        pytest.skip("a GPU is visible here: local mode picks the GPU image")
    code = cli.main(["sagemaker", "train", "--mode", "local", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "there is no CPU Hugging Face training image" in err and "--mode process" in err


def test_describe_logs_and_stop_a_job_in_its_own_region(moto_url, prepared, cli, config, capsys):
    _bucket()
    assert _hosted(cli) == 0
    capsys.readouterr()
    [job] = _jobs()
    name = job["TrainingJobName"]

    assert cli.main(["sagemaker", "describe", name]) == 0
    out = capsys.readouterr().out
    assert f"training job {name}: Completed" in out
    assert f"checkpoints: {job['CheckpointConfig']['S3Uri']}" in out
    assert cli.main(["sagemaker", "describe", name, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["tags"] == {"project": config.project.slug, "run-id": name}

    # The job's log lines live in the configured region; AWS_DEFAULT_REGION names another one.
    logs = aws_moto.client("logs", REGION)
    now = int(time.time() * 1000)  # CloudWatch drops events older than its retention
    group, stream = "/aws/sagemaker/TrainingJobs", f"{name}/algo-1-{now // 1000}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": f"step {i}"} for i in range(3)],
    )
    assert cli.main(["sagemaker", "logs", name]) == 0
    assert capsys.readouterr().out.splitlines() == ["step 0", "step 1", "step 2"]

    aws_moto.set_training_job_status(name, REGION, "InProgress")
    assert cli.main(["sagemaker", "stop", name]) == 0
    assert f"training job {name}: Stopping" in capsys.readouterr().out
    # `delete --all` stops the project's running jobs (they bill), and says what it leaves.
    aws_moto.set_training_job_status(name, REGION, "InProgress")
    assert cli.main(["sagemaker", "delete", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"stopped training job: {name} (Stopping; billed until it ends)" in out
    assert (
        aws_moto.client("sagemaker", REGION).describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
        == "Stopping"
    )
    assert "training and transform job records: SageMaker keeps them" in out
    assert _jobs()[0]["TrainingJobStatus"] == "Stopping"
    assert cli.main(["sagemaker", "describe", "no-such-job"]) == 2
    assert "training job 'no-such-job'" in capsys.readouterr().err


def test_process_mode_reads_the_failure_file_as_utf8_under_any_locale(prepared, tmp_path):
    """The container contract's files are UTF-8 whatever this machine's locale: a Korean failure
    reason survives a C locale. The "interpreter" is a stand-in that writes the failure file the
    way a failing entry point in the container does, then exits."""
    import os
    import subprocess
    import sys

    reason = "3번째 줄: 레이블 열이 없습니다"
    fake_python = tmp_path / "failing-python"
    fake_python.write_text(
        f"#!/bin/sh\nprintf '%s' '{reason}' > \"$SM_OUTPUT_FAILURE\"\nexit 3\n", encoding="utf-8"
    )
    fake_python.chmod(0o755)
    # PYTHONUTF8=0 keeps Python's UTF-8 mode off, so open() without an encoding would use ASCII;
    # PYTHONIOENCODING only makes the error message printable.
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "utf-8"}
    command = ["sagemaker", "train", "--mode", "process", "--python", str(fake_python)]
    command += ["--work-dir", str(tmp_path / "work")]
    result = subprocess.run(
        [sys.executable, "-m", "nsmc_sentiment_classifier", *command],
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=600,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the entry point failed with exit status 3 (process mode, {tmp_path / 'work'}" in result.stderr
    assert reason in result.stderr
    [config_dir] = (tmp_path / "work").glob("*/opt/ml/input/config")
    assert json.loads((config_dir / "hyperparameters.json").read_text(encoding="utf-8"))


def test_the_job_name_comes_from_the_sdks_public_output_uri():
    from nsmc_sentiment_classifier.aws import training
    from nsmc_sentiment_classifier.errors import UsageError

    uri = "s3://bucket/proj/output/proj-20260301120000/output/output.tar.gz"
    assert training.launched_job_name(uri) == "proj-20260301120000"
    # A new layout in a later SDK fails the launch loudly, naming the SDK version.
    with pytest.raises(UsageError, match=r"sagemaker \d+\.\d+.*ModelTrainer.output_data"):
        training.launched_job_name("s3://bucket/proj-20260301120000.tar.gz")


def test_stop_reports_a_denied_describe_instead_of_guessing_the_job_kind(moto_url, cli, capsys):
    # Only "not found" means "not a training job": access denied is the answer the user needs.
    aws_moto.DENIED_JOBS.add("someone-elses-job")
    assert cli.main(["sagemaker", "stop", "someone-elses-job"]) != 0
    err = capsys.readouterr().err
    assert "AccessDenied" in err and "DescribeTrainingJob" in err


def test_image_tags_are_read_in_one_place():
    from nsmc_sentiment_classifier.aws.images import (
        Versions,
        parse_image,
    )

    registry = f"763104351884.dkr.ecr.{REGION}.amazonaws.com"
    training = parse_image(
        f"{registry}/huggingface-pytorch-training:2.8.0-transformers4.56.2-gpu-py312-cu130-ubuntu22.04"
    )
    assert training is not None
    assert (training.versions, training.processor, training.cuda) == (
        Versions("4.56.2", "2.8.0", "py312"),
        "gpu",
        (13, 0),
    )
    cpu = parse_image(
        f"{registry}/huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"
    )
    assert cpu is not None and cpu.processor == "cpu" and cpu.cuda is None
    assert parse_image("123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-own-image:latest") is None
