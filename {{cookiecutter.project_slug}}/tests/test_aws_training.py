"""SageMaker training launchers against a local moto server (no AWS, no Docker).

The project's code runs unchanged; only AWS_ENDPOINT_URL points it at moto on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("sagemaker", reason="the 'sagemaker' extra is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

import aws_moto  # noqa: E402
from conftest import labelled_records, write_labelled  # noqa: E402

from nsmc_sentiment_classifier.config import load_config  # noqa: E402

REGION = load_config().sagemaker.region


@pytest.fixture
def moto_url(monkeypatch, tmp_path):
    return aws_moto.activate(monkeypatch, tmp_path)


@pytest.fixture
def cli():
    from nsmc_sentiment_classifier import cli

    return cli


@pytest.fixture
def prepared(project_dir, config):
    """data/prepared/{train,validation,test}/<split>.jsonl in a scratch project folder."""
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
    assert hps["batch_size"] == str(config.train.batch_size)
    assert all(isinstance(value, str) for value in hps.values())

    slug = config.project.slug
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert {"train", "validation", "test", "code", "sm_drivers"} <= set(channels)
    for split in ("train", "validation", "test"):
        assert channels[split].startswith(f"s3://{aws_moto.BUCKET}/{slug}/data/")
        assert channels[split].endswith(f"/{split}")
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{aws_moto.BUCKET}/{slug}/output"
    assert job["CheckpointConfig"]["S3Uri"].startswith(f"s3://{aws_moto.BUCKET}/{slug}/checkpoints/")
    assert job["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
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

    # Hosted runs are tracked by default, under an experiment named after the project.
    [component] = sm.list_trial_components()["TrialComponentSummaries"]
    described = sm.describe_trial_component(TrialComponentName=component["TrialComponentName"])
    assert described["Parameters"]["training_job"] == {"StringValue": summary["TrainingJobName"]}
    assert described["Parameters"]["instance_count"] == {"NumberValue": 2.0}
    assert described["Parameters"]["image"] == {"StringValue": spec["TrainingImage"]}


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
        (["--role", aws_moto.FAKE_ROLE, "--instance-type", "ml.m5.xlarge"], "exists only for gpu instances"),
        (
            ["--role", aws_moto.FAKE_ROLE, "--train", "missing/train"],
            "channel 'train': missing/train does not exist",
        ),
        (
            ["--role", aws_moto.FAKE_ROLE, "--spot", "--max-run", "7200", "--max-wait", "3600"],
            "max_wait_seconds (3600) >= max_run_seconds (7200)",
        ),
        (["--role", aws_moto.FAKE_ROLE, "--hp", "epochz=3"], "--hp epochz: not a training option"),
    ],
)
def test_invalid_settings_fail_before_anything_is_created(moto_url, prepared, cli, capsys, args, message):
    code = cli.main(["sagemaker", "train", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    _nothing_created()


def test_missing_region_fails_clearly(moto_url, prepared, cli, config, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    text = Path(config.path).read_text(encoding="utf-8")
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
    from nsmc_sentiment_classifier.cli import UsageError as cli_error

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
def test_process_mode_trains_through_the_container_contract(
    moto_url, prepared, cli, pkg, config, tiny_model_dir, tmp_path, capsys
):
    code = cli.main(
        [
            "sagemaker",
            "train",
            "--mode",
            "process",
            "--work-dir",
            str(tmp_path / "work"),
            "--track",
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
    assert "eval_accuracy=" in out
    assert f"model: {model_dir}" in out

    # The run was recorded as an experiment named after the project, with params and metrics.
    sm = aws_moto.client("sagemaker", REGION)
    experiments = [e["ExperimentName"] for e in sm.list_experiments()["ExperimentSummaries"]]
    assert experiments == [config.project.slug]
    components = sm.list_trial_components()["TrialComponentSummaries"]
    [component] = [c for c in components if c["TrialComponentName"].startswith(config.project.slug)]
    described = sm.describe_trial_component(TrialComponentName=component["TrialComponentName"])
    params = described["Parameters"]
    assert params["epochs"] == {"StringValue": "1"}
    assert params["entry_point"] == {"StringValue": "train_hf"}
    assert params["mode"] == {"StringValue": "process"}
    metrics = {m["MetricName"] for m in described.get("Metrics", [])}
    assert {"eval_accuracy", "eval_loss"} <= metrics, described.get("Metrics")
