"""docs/sagemaker.md's walkthrough needs exactly the permissions its IAM policies grant.

The walkthrough runs against the moto server; every AWS call the project's code makes on the way is
recorded and evaluated against the caller policy of the docs as generated (tests/iam_policies.py,
an IAM evaluator, not moto's allow-all), and what SageMaker will do with the execution role for
each job and model it created is evaluated against the execution role's policy.
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sagemaker", reason="the 'sagemaker' extra is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

import aws_moto  # noqa: E402
import iam_policies  # noqa: E402
from iam_policies import Request, allows, caller_requests, denied, documented_policies, role_requests  # noqa: E402

from nsmc_sentiment_classifier.aws.names import ProjectNames  # noqa: E402
from nsmc_sentiment_classifier.config import load_config  # noqa: E402

pytestmark = pytest.mark.engine

REGION = load_config().sagemaker.region
NAMES = ProjectNames.of(load_config().project.slug)
PACKAGE = __import__("nsmc_sentiment_classifier").__name__
DOCS = Path(__file__).resolve().parents[1] / "docs" / "sagemaker.md"
TRACKING_SERVER = "team-mlflow"
ARTIFACT_STORE = "s3://team-mlflow-artifacts/mlflow"
VALUES = {
    "ACCOUNT_ID": iam_policies.ACCOUNT,
    "REGION": REGION,
    "BUCKET": aws_moto.BUCKET,
    "ROLE_NAME": aws_moto.FAKE_ROLE.rsplit("/", 1)[-1],
    "TRACKING_SERVER_NAME": TRACKING_SERVER,
    "ARTIFACT_STORE_BUCKET": ARTIFACT_STORE[len("s3://") :].split("/")[0],
    "ARTIFACT_STORE_PREFIX": ARTIFACT_STORE[len("s3://") :].split("/", 1)[1],
}


def test_the_evaluator_follows_iam():
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "arn:aws:s3:::b/p/*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/p/secret/*"},
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:sagemaker:*:*:endpoint/x-?"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::1:role/r",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
        ]
    }
    assert allows(policy, Request("S3:getobject", "arn:aws:s3:::b/p/k"))  # actions ignore case
    assert not allows(policy, Request("s3:GetObject", "arn:aws:s3:::b/P/k"))  # resources do not
    assert not allows(policy, Request("s3:GetObject", "arn:aws:s3:::b/p/secret/k"))  # deny wins
    assert not allows(policy, Request("s3:PutObject", "arn:aws:s3:::b/p/k"))
    assert allows(policy, Request("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:r:1:endpoint/x-1"))
    assert not allows(policy, Request("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:r:1:endpoint/x-12"))
    assert not allows(policy, Request("iam:GetRole", "arn:aws:sagemaker:r:1:endpoint/x-1"))
    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert allows(policy, Request("iam:PassRole", "arn:aws:iam::1:role/r", passed))
    assert not allows(policy, Request("iam:PassRole", "arn:aws:iam::1:role/r"))
    assert not allows(policy, Request("iam:PassRole", "arn:aws:iam::1:role/r", {"iam:PassedToService": "x"}))
    literal = {
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/[ab]"}]
    }
    assert not allows(literal, Request("s3:GetObject", "arn:aws:s3:::b/a"))  # [ is not a class
    assert allows(literal, Request("s3:GetObject", "arn:aws:s3:::b/[ab]"))
    negated = {
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
            }
        ]
    }
    with pytest.raises(NotImplementedError, match="StringNotEquals"):
        allows(negated, Request("s3:GetObject", "arn:aws:s3:::b/k"))
    with pytest.raises(AssertionError, match="no IAM mapping for s3:PutBucketPolicy"):
        caller_requests("s3", "PutBucketPolicy", {"Bucket": "b"}, REGION)


def test_the_evaluators_wildcards_match_a_reference_over_random_cases():
    """IAM's * and ? against fnmatch with its character classes escaped (IAM has none), on
    thousands of random patterns and values over an alphabet of ARN punctuation."""
    import fnmatch
    import random

    rng = random.Random(21)
    for _ in range(4000):
        pattern = "".join(rng.choices("ab*?[]:/-", k=rng.randint(0, 8)))
        value = "".join(rng.choices("abAB[]:/-", k=rng.randint(0, 8)))
        reference = fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))
        policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": pattern}]}
        assert allows(policy, Request("s3:GetObject", value)) is reference, (pattern, value)
        insensitive = fnmatch.fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))
        policy = {"Statement": [{"Effect": "Allow", "Action": f"s3:{pattern}", "Resource": "*"}]}
        assert allows(policy, Request(f"s3:{value}", "x")) is insensitive, (pattern, value)


def _from_project_code() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(f"{PACKAGE}."):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@pytest.fixture
def recorded(monkeypatch) -> list[tuple[str, str, dict[str, Any], str]]:
    """Every boto3 call the project's code (and the SDK on its behalf) makes: botocore's one
    entry point for them is wrapped, so the calls themselves still reach moto unchanged."""
    from botocore.client import BaseClient

    calls: list[tuple[str, str, dict[str, Any], str]] = []
    original = BaseClient._make_api_call

    def record(self, operation_name, api_params):
        if _from_project_code():
            service = self.meta.service_model.service_name
            calls.append((service, operation_name, dict(api_params), self.meta.region_name))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return calls


@pytest.fixture
def cli():
    from nsmc_sentiment_classifier import cli

    return cli


@pytest.fixture
def moto_url(monkeypatch, project_dir):
    return aws_moto.activate(monkeypatch, project_dir)


def _run(cli, capsys, *args: str) -> str:
    code = cli.main(["sagemaker", *args])
    captured = capsys.readouterr()
    assert code == 0, (args, captured.out[-3000:], captured.err[-3000:])
    return captured.out


def _walkthrough(cli, capsys, tiny_model_dir: Path, tmp_path: Path, config, role_documents) -> None:
    """docs/sagemaker.md sections 4-5 in order, as a user with the documented policies runs them."""
    role = ["--role", aws_moto.FAKE_ROLE, "--bucket", aws_moto.BUCKET]
    sm = aws_moto.client("sagemaker", REGION)
    # 2.1-2.2: the execution role with the documented policy (its simulation decides where the
    # SDK stages the job's inputs).
    iam = aws_moto.client("iam", REGION)
    trust, permissions = role_documents
    iam.create_role(RoleName=VALUES["ROLE_NAME"], AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=VALUES["ROLE_NAME"], PolicyName="execution", PolicyDocument=json.dumps(permissions)
    )
    # 1.3: the bucket exists (made by `aws s3 mb`, outside the commands).
    aws_moto.client("s3", REGION).create_bucket(
        Bucket=aws_moto.BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    tracking = f"arn:aws:sagemaker:{REGION}:{iam_policies.ACCOUNT}:mlflow-tracking-server/{TRACKING_SERVER}"
    aws_moto.MLFLOW_SERVERS[TRACKING_SERVER] = {"MlflowVersion": "3.4.2", "ArtifactStoreUri": ARTIFACT_STORE}
    out = _run(cli, capsys, "train", *role, "--no-wait", "--mlflow", tracking)
    job = next(line.split()[2] for line in out.splitlines() if line.startswith("training job "))
    _run(cli, capsys, "describe", job)
    logs = aws_moto.client("logs", REGION)
    group, stream = "/aws/sagemaker/TrainingJobs", f"{job}/algo-1-1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now, "message": "x"}]
    )
    _run(cli, capsys, "logs", job)
    # The job's model, as the container would have written it (moto runs nothing).
    artifact = sm.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
    bare = tmp_path / "bare.tar.gz"
    with tarfile.open(bare, "w:gz") as archive:
        for path in tiny_model_dir.iterdir():
            archive.add(path, arcname=path.name)
    bucket, key = artifact[len("s3://") :].split("/", 1)
    aws_moto.client("s3", REGION).upload_file(str(bare), bucket, key)

    out = _run(cli, capsys, "register", "--job", job, *role)
    package = out.split()[2].rstrip(":")
    # 5.7: approval is the user's own call (aws sagemaker update-model-package).
    sm.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    _run(cli, capsys, "deploy", "--model-package", "latest-approved", *role)
    aws_moto.queue_endpoint_results(
        aws_moto.server_url(), REGION, [[{"label": config.data.label_names[0], "score": 0.9}]]
    )
    _run(cli, capsys, "invoke", "정말 재밌게 봤어요")
    _run(cli, capsys, "deploy", "--model-package", "latest-approved", "--update", "--autoscale", "1:2", *role)
    # 5.9: a canary update with a rollback alarm, on the autoscaled endpoint (read and restored).
    alarm = f"{NAMES.default_endpoint}-5xx"
    aws_moto.client("cloudwatch", REGION).put_metric_alarm(
        AlarmName=alarm,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    _run(
        cli,
        capsys,
        "deploy",
        "--model-package",
        "latest-approved",
        "--update",
        "--traffic",
        "canary:20",
        "--rollback-alarm",
        alarm,
        *role,
    )
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({config.data.text_column: "시간 낭비"}, ensure_ascii=False) + "\n", "utf-8")
    _run(cli, capsys, "batch-transform", "--model-package", "latest-approved", "--input", str(texts), *role)
    _run(cli, capsys, "list")
    aws_moto.set_training_job_status(job, REGION, "InProgress")
    _run(cli, capsys, "stop", job)
    _run(cli, capsys, "delete", "--all")


def test_the_walkthrough_needs_only_the_documented_permissions(
    moto_url, recorded, cli, tiny_model_dir, project_dir, tmp_path, capsys, config
):
    policies = documented_policies(DOCS.read_text(encoding="utf-8"), VALUES)
    _prepare(project_dir, config, tiny_model_dir)
    _walkthrough(
        cli, capsys, tiny_model_dir, tmp_path, config, (policies["trust"], policies["execution-role"])
    )

    operations = {(service, operation) for service, operation, _, _ in recorded}
    # The walkthrough reached every kind of call the commands make.
    for needed in (
        ("sagemaker", "CreateTrainingJob"),
        ("sagemaker", "CreateModelPackage"),
        ("sagemaker", "UpdateEndpoint"),
        ("sagemaker", "CreateTransformJob"),
        ("sagemaker", "StopTrainingJob"),
        ("sagemaker-runtime", "InvokeEndpoint"),
        ("application-autoscaling", "RegisterScalableTarget"),
        ("application-autoscaling", "DescribeScalingPolicies"),
        ("cloudwatch", "DescribeAlarms"),
        ("s3", "PutObject"),
        ("logs", "GetLogEvents"),
    ):
        assert needed in operations, (needed, sorted(operations))
    caller = [
        r for service, op, params, region in recorded for r in caller_requests(service, op, params, region)
    ]
    missing = denied(policies["caller"], caller)
    assert not missing, "the caller policy of docs/sagemaker.md 2.3 denies:\n" + "\n".join(missing)
    role = [
        request
        for service, op, params, region in recorded
        if service == "sagemaker"
        for request in role_requests(op, params, region, ARTIFACT_STORE)
    ]
    assert any(r.why.endswith("MLflow artifacts") for r in role)
    missing = denied(policies["execution-role"], role)
    assert not missing, "the execution role's policy of docs/sagemaker.md 2.2 denies:\n" + "\n".join(missing)
    # The SDK simulates s3:PutObject on <BUCKET>/* for the role; the documented role may write
    # <prefix>/* only, so the SDK stages code and data under the output path (docs 5.12 says so).
    [create] = [params for _, op, params, _ in recorded if op == "CreateTrainingJob"]
    job = create["TrainingJobName"]
    staged = f"{NAMES.training_output(aws_moto.BUCKET)}/{NAMES.training_job_base}/{job}/input/"
    for channel in create["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        if channel["ChannelName"] != "base_model":
            assert uri.startswith(staged), uri


def _prepare(project_dir: Path, config, tiny_model_dir: Path) -> None:
    from conftest import labelled_records, write_labelled

    records = labelled_records(config, 48)
    for split, rows in (("train", records[:32]), ("validation", records[32:40]), ("test", records[40:])):
        path = project_dir / "data" / "prepared" / split / f"{split}.jsonl"
        write_labelled(path, config, rows, ids=True, with_id_column=False)
    text = (project_dir / "config.toml").read_text("utf-8")
    # A local base model is uploaded by `train` (the case with the most S3 calls).
    text, replaced = re.subn(
        r"(?m)^base_model = .*$", f"base_model = {json.dumps(str(tiny_model_dir))}", text
    )
    assert replaced == 1
    (project_dir / "config.toml").write_text(text, encoding="utf-8")


def test_a_permission_the_walkthrough_needs_is_caught_when_removed():
    """The check has teeth: without the statement for InvokeEndpoint, the call is reported."""
    policies = documented_policies(DOCS.read_text(encoding="utf-8"), VALUES)
    caller = policies["caller"]
    request = caller_requests(
        "sagemaker-runtime", "InvokeEndpoint", {"EndpointName": NAMES.default_endpoint}, REGION
    )
    assert denied(caller, request) == []
    for statement in caller["Statement"]:
        actions = statement.get("Action", [])
        if isinstance(actions, list) and "sagemaker:InvokeEndpoint" in actions:
            actions.remove("sagemaker:InvokeEndpoint")
    assert denied(caller, request) == [str(request[0])]
    # A name outside the prefix is not granted: the reason every name comes from aws/names.py.
    outside = caller_requests("sagemaker", "CreateEndpoint", {"EndpointName": "team-endpoint"}, REGION)
    assert denied(policies["caller"], outside)
