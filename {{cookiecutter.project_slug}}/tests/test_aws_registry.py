"""The model registry (aws/registry.py) against a local moto server (no AWS).

moto 5.2.5 stores model package groups and versions (create, describe, list, update) and
models made from a package, which is what these tests read back. It has no DeleteModelPackage
or DeleteModelPackageGroup and no ListTags for model-package ARNs, so the deletion order is
checked with botocore's Stubber and a version's tags as the request that reached the server.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sagemaker", reason="the 'sagemaker' extra is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

import aws_moto  # noqa: E402

from nsmc_sentiment_classifier.aws.names import (  # noqa: E402
    ProjectNames,
)
from nsmc_sentiment_classifier.config import load_config  # noqa: E402
from nsmc_sentiment_classifier.errors import UsageError  # noqa: E402

pytestmark = pytest.mark.engine

REGION = load_config().sagemaker.region
NAMES = ProjectNames.of(load_config().project.slug)
INFERENCE_IMAGE = (
    f"763104351884.dkr.ecr.{REGION}.amazonaws.com/huggingface-pytorch-inference:"
    "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
)
ACCOUNT_ARN = f"arn:aws:sagemaker:{REGION}:123456789012"
TAGS = {"project": "registry-test", "owner": "ml-team"}


@pytest.fixture
def moto_url(monkeypatch, project_dir):
    return aws_moto.activate(monkeypatch, project_dir)


@pytest.fixture
def registry():
    from nsmc_sentiment_classifier.aws import registry

    return registry


@pytest.fixture
def aws(moto_url, config):
    """The project's session on moto, recording the model-package requests as sent."""
    from nsmc_sentiment_classifier.aws.session import (
        Aws,
        resolve_settings,
    )

    session = Aws(resolve_settings(config, role=aws_moto.FAKE_ROLE))
    session.sent = []  # type: ignore[attr-defined]

    def record(params, model, **_):
        session.sent.append((model.name, params))  # type: ignore[attr-defined]

    # Handlers on the boto3 session reach every client made from it afterwards.
    session.boto.events.register("before-parameter-build.sagemaker.CreateModelPackage", record)
    return session


@pytest.fixture(scope="module")
def model_archive(pkg, tiny_model_dir, tmp_path_factory):
    from nsmc_sentiment_classifier.serving import package

    archive = tmp_path_factory.mktemp("archive") / "model.tar.gz"
    package.build_model_archive(tiny_model_dir, archive)
    return archive


@pytest.fixture
def source(aws, config, model_archive):
    """The local archive uploaded the way deploy --model-data uploads it."""
    from nsmc_sentiment_classifier.aws.endpoints import (
        materialise_model_source,
    )

    return materialise_model_source(config, aws, "local", str(model_archive))


def _read_s3(uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return aws_moto.client("s3", REGION).get_object(Bucket=bucket, Key=key)["Body"].read()


def test_register_records_image_metrics_provenance_and_tags(registry, aws, config, source, model_archive):
    from nsmc_sentiment_classifier.aws.images import (
        TESTED_INFERENCE,
        TESTED_TOOLKIT,
    )

    metrics = {"eval_accuracy": 0.91, "eval_f1": 0.9, "eval_loss": 0.25}
    registered = registry.register(
        config, aws, source, metrics=metrics, metrics_uri=None, tags=TAGS, run_id="run-7"
    )
    group = registry.group_name(config)
    assert group == NAMES.model_package_group
    assert (registered.group, registered.version, registered.status) == (group, 1, "PendingManualApproval")
    assert registered.image == INFERENCE_IMAGE
    assert registered.model_data == source.model_data

    sm = aws_moto.client("sagemaker", REGION)
    described = sm.describe_model_package(ModelPackageName=registered.arn)
    assert described["ModelPackageGroupName"] == group
    assert described["ModelPackageVersion"] == 1
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    spec = described["InferenceSpecification"]
    [container] = spec["Containers"]
    # Trained with the configured versions, served by the image the container-parity test runs.
    assert container["Image"] == INFERENCE_IMAGE
    assert container["ModelDataUrl"] == source.model_data
    assert _read_s3(container["ModelDataUrl"]) == model_archive.read_bytes()
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_REGION"] == REGION
    assert spec["SupportedContentTypes"] == [
        "application/json",
        "text/csv",
        "application/jsonlines",
        "text/plain",
    ]
    assert spec["SupportedResponseMIMETypes"] == ["application/json", "application/jsonlines", "text/csv"]

    properties = described["CustomerMetadataProperties"]
    assert properties["metric.eval_accuracy"] == "0.91"
    assert properties["metric.eval_loss"] == "0.25"
    assert properties["run_id"] == "run-7"
    assert properties["inference_versions"] == TESTED_INFERENCE.describe()
    assert properties["inference_toolkit"] == TESTED_TOOLKIT
    assert properties["source"] == str(model_archive.resolve())
    assert "training_job" not in properties  # not from a job

    statistics = described["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"] == registered.metrics_uri
    assert statistics["S3Uri"].startswith(f"{NAMES.s3_prefix(aws.bucket)}/registry/")
    assert json.loads(_read_s3(statistics["S3Uri"])) == metrics

    group_arn = sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=group_arn)["Tags"]} == TAGS
    [(_, sent)] = aws.sent
    assert {t["Key"]: t["Value"] for t in sent["Tags"]} == TAGS

    # A second registration is the next version of the same group, with its own metrics file.
    second = registry.register(
        config, aws, source, metrics={"eval_accuracy": 0.93}, metrics_uri=None, tags=TAGS
    )
    assert (second.group, second.version) == (group, 2)
    assert second.metrics_uri != registered.metrics_uri
    assert json.loads(_read_s3(registered.metrics_uri)) == metrics
    assert [
        g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    ] == [group]
    listed = registry.list_versions(aws, group)
    assert [(v["arn"], v["version"], v["status"]) for v in listed] == [
        (registered.arn, 1, "PendingManualApproval"),
        (second.arn, 2, "PendingManualApproval"),
    ]
    assert all(v["created"] for v in listed)


def test_register_from_training_job_records_its_final_metrics(registry, aws, config, source):
    from nsmc_sentiment_classifier.aws.endpoints import ModelSource

    sm = aws_moto.client("sagemaker", REGION)
    sm.create_training_job(
        TrainingJobName="finished-job",
        AlgorithmSpecification={
            "TrainingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/huggingface-pytorch-"
            "training:2.8.0-transformers4.56.2-gpu-py312-cu129-ubuntu22.04",
            "TrainingInputMode": "File",
        },
        RoleArn=aws_moto.FAKE_ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{aws.bucket}/output"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    # moto completes jobs at once and reports one fixed final metric.
    metrics = registry.metrics_for_job(aws, "finished-job")
    assert metrics == {"train:progress": 100.0}
    with pytest.raises(UsageError, match="training job 'absent-job'"):
        registry.metrics_for_job(aws, "absent-job")

    from_job = ModelSource(source.model_data, source.versions, "job finished-job")
    registered = registry.register(config, aws, from_job, metrics=metrics, metrics_uri=None, tags={})
    properties = sm.describe_model_package(ModelPackageName=registered.arn)["CustomerMetadataProperties"]
    assert properties["training_job"] == "finished-job"
    assert properties["metric.train:progress"] == "100.0"
    assert properties["training_versions"] == source.versions.describe()
    assert "Tags" not in aws.sent[-1][1]


def test_register_links_given_metrics_uri_without_uploading(registry, aws, config, source):
    s3 = aws_moto.client("s3", REGION)
    uri = f"s3://{aws.bucket}/evaluations/metrics.json"
    s3.put_object(Bucket=aws.bucket, Key="evaluations/metrics.json", Body=b'{"accuracy": 0.9}')
    before = s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"]
    registered = registry.register(config, aws, source, metrics=None, metrics_uri=uri, tags=TAGS)
    described = aws_moto.client("sagemaker", REGION).describe_model_package(ModelPackageName=registered.arn)
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == uri
    assert not any(k.startswith("metric.") for k in described["CustomerMetadataProperties"])
    assert s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] == before

    with pytest.raises(UsageError, match="needs the model on S3"):
        registry.register(
            config,
            aws,
            type(source)("/local/model.tar.gz", source.versions, "x"),
            metrics=None,
            metrics_uri=None,
            tags={},
        )


def test_latest_approved_and_arns_must_be_approved(registry, aws, config, source):
    from nsmc_sentiment_classifier.aws.images import TESTED_INFERENCE

    def refused(ref: str) -> str:
        with pytest.raises(UsageError) as caught:
            registry.resolve_model_package(config, aws, ref)
        message = str(caught.value)
        assert "\n" not in message
        return message

    # No group yet, then only pending versions: both name the approval command.
    for waiting in ("none pending", "1 pending, newest "):
        message = refused("latest-approved")
        assert f"no Approved version in model package group {NAMES.model_package_group}" in message
        assert waiting in message
        assert "aws sagemaker update-model-package" in message
        assert "--model-approval-status Approved" in message
        registry.register(config, aws, source, metrics={"eval_accuracy": 0.9}, metrics_uri=None, tags={})
    first, second = (v["arn"] for v in registry.list_versions(aws, registry.group_name(config)))

    message = refused(first)
    assert f"model package {first} is PendingManualApproval, not Approved" in message
    assert f"--model-package-arn {first} --model-approval-status Approved" in message

    sm = aws_moto.client("sagemaker", REGION)
    sm.update_model_package(ModelPackageArn=first, ModelApprovalStatus="Approved")
    resolved = registry.resolve_model_package(config, aws, "latest-approved")
    assert (resolved.arn, resolved.version, resolved.status) == (first, 1, "Approved")
    assert resolved.image == INFERENCE_IMAGE
    assert resolved.model_data == source.model_data
    assert resolved.versions == TESTED_INFERENCE
    assert resolved.metrics_uri.endswith("/metrics.json")
    as_source = resolved.model_source(source.versions)
    assert (as_source.model_data, as_source.origin) == (source.model_data, f"model package {first}")

    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Approved")
    assert registry.resolve_model_package(config, aws, "latest-approved").arn == second
    assert registry.resolve_model_package(config, aws, first).arn == first
    # A rejected newest version is skipped.
    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Rejected")
    assert registry.resolve_model_package(config, aws, "latest-approved").arn == first

    unknown = first.rsplit("/", 1)[0] + "/99"
    assert f"model package {unknown} not found in {REGION}" in refused(unknown)
    assert "expected a versioned model package ARN" in refused("my-model")


def test_create_model_from_package_runs_the_registered_version(registry, aws, config, source):
    from nsmc_sentiment_classifier.aws.endpoints import create_model

    registered = registry.register(config, aws, source, metrics=None, metrics_uri=None, tags={})
    tags = [{"Key": key, "Value": value} for key, value in TAGS.items()]
    create_model(
        aws,
        "from-package",
        "",
        registered.model_source(source.versions),
        tags,
        environment={"INFERENCE_MAX_TEXTS": "100"},
    )
    sm = aws_moto.client("sagemaker", REGION)
    model = sm.describe_model(ModelName="from-package")
    assert model["PrimaryContainer"] == {
        "ModelPackageName": registered.arn,
        "Environment": {"INFERENCE_MAX_TEXTS": "100"},
    }
    assert model["ExecutionRoleArn"] == aws_moto.FAKE_ROLE
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=model["ModelArn"])["Tags"]} == TAGS


def test_delete_group_removes_versions_before_the_group(registry):
    """moto has no DeleteModelPackage(Group): the calls are checked against the service model."""
    import datetime

    import boto3
    from botocore.stub import Stubber

    from nsmc_sentiment_classifier.aws.session import AwsSettings

    client = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    arns = [f"{ACCOUNT_ARN}:model-package/proj/{n}" for n in (1, 2)]
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response(
                "describe_model_package_group",
                {
                    "ModelPackageGroupName": "proj",
                    "ModelPackageGroupArn": f"{ACCOUNT_ARN}:model-package-group/proj",
                    "CreationTime": now,
                    "CreatedBy": {},
                    "ModelPackageGroupStatus": "Completed",
                },
                {"ModelPackageGroupName": "proj"},
            )
            stub.add_response(
                "list_model_packages",
                {
                    "ModelPackageSummaryList": [
                        {
                            "ModelPackageArn": arn,
                            "ModelPackageVersion": n,
                            "CreationTime": now,
                            "ModelPackageStatus": "Completed",
                            "ModelApprovalStatus": "Approved",
                        }
                        for n, arn in enumerate(arns, 1)
                    ]
                },
                {"ModelPackageGroupName": "proj"},
            )
            for arn in arns:
                stub.add_response("delete_model_package", {}, {"ModelPackageName": arn})
            stub.add_response("delete_model_package_group", {}, {"ModelPackageGroupName": "proj"})
        stub.add_client_error(
            "describe_model_package_group",
            "ValidationException",
            "ModelPackageGroup proj does not exist.",
            expected_params={"ModelPackageGroupName": "proj"},
        )

        class StubAws:
            settings = AwsSettings(REGION, aws_moto.FAKE_ROLE, "")

            def client(self, service):
                return client

        fake = StubAws()
        removed = registry.delete_group(fake, "proj")
        assert [(r.kind, r.name) for r in removed] == [
            ("model package", arns[0]),
            ("model package", arns[1]),
            ("model package group", "proj"),
        ]
        # The same again (the stub answers as if the group were still there).
        assert len(registry.delete_group(fake, "proj")) == 3
        # Already gone: nothing to do.
        assert registry.delete_group(fake, "proj") == []
        stub.assert_no_pending_responses()


def test_handler_content_types_and_metric_helpers(registry):
    from nsmc_sentiment_classifier.serving import inference

    assert registry.REQUEST_TYPES == inference.REQUEST_TYPES
    assert registry.RESPONSE_TYPES == inference.RESPONSE_TYPES
    # evaluate's metrics.json also holds lists, strings and flags.
    document = {"accuracy": 0.9, "support": 10, "confusion_matrix": [[1]], "notes": "x", "flag": True}
    assert registry.numeric_metrics(document) == {"accuracy": 0.9, "support": 10.0}
