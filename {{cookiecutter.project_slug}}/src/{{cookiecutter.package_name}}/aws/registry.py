"""The SageMaker Model Registry: versions of this project's model, approved before they serve.

``register`` records a model.tar.gz as a new version in a model package group named after the
project, with what a reviewer needs to approve it: the evaluation metrics (as an S3 JSON that
SageMaker Studio links, and as searchable metadata), the inference image it was tested with, and
where it came from. New versions wait as PendingManualApproval, so nothing reaches an endpoint
until someone approves it; ``resolve_model_package`` only hands out Approved versions.

Plain boto3 calls, one per resource: the SDK's registry helpers build models and pipelines
around them, which this project does not need.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ProjectConfig
from ..errors import UsageError
from .images import (
    TESTED_INFERENCE,
    TESTED_TOOLKIT,
    Versions,
    container_environment,
    image_uri,
    inference_versions,
    versions_from_image,
)
from .jobs import describe_job
from .names import ProjectNames, timestamp
from .session import Aws, error_message, paged, split_s3_uri

log = logging.getLogger(__name__)

LATEST_APPROVED = "latest-approved"
PENDING = "PendingManualApproval"
APPROVED = "Approved"
# What serving/inference.py (code/inference.py in the archive) accepts and answers; a test
# keeps these equal to its REQUEST_TYPES / RESPONSE_TYPES (importing it here would need torch).
REQUEST_TYPES = ("application/json", "text/csv", "application/jsonlines", "text/plain")
RESPONSE_TYPES = ("application/json", "application/jsonlines", "text/csv")
METRIC_PREFIX = "metric."
# CustomerMetadataProperties: at most 50 entries; keys 1-128 and values 1-256 characters of
# letters, digits, spaces and _.:/=+-@ (botocore's service model).
MAX_METADATA = 50
_METADATA_UNSAFE = re.compile(r"[^\w .:/=+@-]")
_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+$")


@dataclass(frozen=True)
class ModelSource:
    """A model.tar.gz on S3 (or local, uploaded on use) and the versions it was trained with."""

    model_data: str
    versions: Versions
    origin: str
    run_id: str = ""  # the training job (= run id) it came from, when known
    package_arn: str = ""  # a registered model package version deployed as such
    image: str = ""  # a registered version's own image (else: the configured inference image)


@dataclass
class Removed:
    kind: str
    name: str


def check_package_ref(ref: str) -> str:
    """Offline: ``ref`` is a versioned model package ARN or ``latest-approved``."""
    if ref != LATEST_APPROVED and not _PACKAGE_ARN.match(ref):
        raise UsageError(
            f"--model-package {ref!r}: expected a versioned model package ARN "
            f"(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>) or {LATEST_APPROVED}"
        )
    return ref


def group_name(config: ProjectConfig) -> str:
    """One group per project, so its versions sit together and ``latest-approved`` has a scope."""
    return ProjectNames.of(config.project.slug).model_package_group


@dataclass(frozen=True)
class Registered:
    """A model package version as the registry records it: what ``register`` made, and what
    ``resolve_model_package`` hands to a deployment (its container's image and model data)."""

    arn: str
    version: int
    group: str
    image: str
    model_data: str
    status: str
    metrics_uri: str = ""

    @property
    def versions(self) -> Versions | None:
        """The image's transformers / PyTorch / Python versions (None for a non-DLC image)."""
        return versions_from_image(self.image)

    def model_source(self, fallback: Versions) -> ModelSource:
        """As the ModelSource that endpoints.deploy / batch_transform take."""
        return ModelSource(
            self.model_data,
            self.versions or fallback,
            f"model package {self.arn}",
            package_arn=self.arn,
            image=self.image,
        )


def numeric_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """The top-level numbers of a metrics document (e.g. ``evaluate``'s metrics.json, which also
    holds lists and notes)."""
    return {
        str(key): float(value)
        for key, value in data.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def metrics_for_job(aws: Aws, job_name: str) -> dict[str, float]:
    """A completed training job's final metrics, so that a version registered from the job
    carries the numbers it was judged by."""
    job = describe_job(aws, job_name)
    if job.status != "Completed":
        raise UsageError(f"training job {job_name} is {job.status}, not Completed")
    return job.final_metrics


def register(
    config: ProjectConfig,
    aws: Aws,
    source: ModelSource,
    *,
    metrics: Mapping[str, float] | None,
    metrics_uri: str | None,
    tags: Mapping[str, str],
    description: str = "",
    run_id: str = "",
) -> Registered:
    """Add ``source`` (an S3 model.tar.gz that already holds code/inference.py) to the project's
    model package group as a PendingManualApproval version.

    ``metrics`` are uploaded as JSON and linked as the version's model-quality statistics, unless
    ``metrics_uri`` names such a document already on S3; they are also copied into its metadata,
    which the registry can search and compare. The image is the configured inference image.
    """
    if not source.model_data.startswith("s3://"):
        raise UsageError(f"{source.model_data}: register needs the model on S3 (upload it first)")
    if metrics_uri:
        split_s3_uri(metrics_uri)
    region = aws.settings.region
    served = inference_versions(config)
    image = image_uri(served, "inference", region, config.sagemaker.inference_instance_type)
    training_job = source.origin[len("job ") :] if source.origin.startswith("job ") else ""
    group = ensure_group(config, aws, tags)
    uploaded = ""
    if metrics is not None and not metrics_uri:
        uploaded = metrics_uri = _upload_metrics(config, aws, metrics)
    metadata = _metadata(
        metrics or {},
        {
            "training_job": training_job,
            "run_id": run_id,
            "training_versions": source.versions.describe(),
            "inference_versions": served.describe(),
            "inference_toolkit": TESTED_TOOLKIT if served == TESTED_INFERENCE else "",
            "source": source.origin,
        },
    )
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": _description(description or f"{config.project.name}: {source.origin}"),
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": image,
                    "ModelDataUrl": source.model_data,
                    "Environment": container_environment(region),
                    "Framework": "PYTORCH",
                    "FrameworkVersion": served.pytorch,
                }
            ],
            "SupportedContentTypes": list(REQUEST_TYPES),
            "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
        },
        "ModelApprovalStatus": PENDING,
        "Domain": "NATURAL_LANGUAGE_PROCESSING",
        "Task": "CLASSIFICATION",
        "CustomerMetadataProperties": metadata,
    }
    if metrics_uri:
        request["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}
        }
    if tags:
        request["Tags"] = _tag_list(tags)
    client = aws.client("sagemaker")
    try:
        arn = client.create_model_package(**request)["ModelPackageArn"]
    except BaseException:
        if uploaded:
            bucket, key = split_s3_uri(uploaded)
            try:
                aws.client("s3").delete_object(Bucket=bucket, Key=key)
            except Exception as error:  # keep the original failure
                log.warning("could not remove %s: %s", uploaded, error)
        raise
    registered = _registered(client.describe_model_package(ModelPackageName=arn))
    log.info("registered %s (%s) in %s", arn, registered.status, group)
    return registered


def ensure_group(config: ProjectConfig, aws: Aws, tags: Mapping[str, str]) -> str:
    """The project's group, created (with ``tags``) on first registration."""
    client = aws.client("sagemaker")
    group = group_name(config)
    if _group_exists(client, group):
        return group
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageGroupDescription": _description(f"{config.project.name} text classifier versions"),
    }
    if tags:
        request["Tags"] = _tag_list(tags)
    try:
        client.create_model_package_group(**request)
    except client.exceptions.ClientError as error:
        # Another registration may have created it meanwhile.
        if not _group_exists(client, group):
            raise UsageError(f"model package group {group}: {error_message(error)}") from None
    log.info("created model package group %s", group)
    return group


def resolve_model_package(config: ProjectConfig, aws: Aws, ref: str) -> Registered:
    """The Approved version ``ref`` names: a model package ARN, or ``latest-approved`` (the
    highest Approved version in the project's group). Anything not Approved is refused: approval
    is the registry's gate between training and serving."""
    client = aws.client("sagemaker")
    group = group_name(config)
    approve = "aws sagemaker update-model-package --model-package-arn ARN --model-approval-status Approved"
    if ref == LATEST_APPROVED:
        versions = list_versions(aws, group)
        approved = [v for v in versions if v["status"] == APPROVED]
        if not approved:
            pending = [v["arn"] for v in versions if v["status"] == PENDING]
            waiting = f"{len(pending)} pending, newest {pending[-1]}" if pending else "none pending"
            raise UsageError(
                f"no Approved version in model package group {group} ({aws.settings.region}; "
                f"{waiting}); approve one with `{approve}` (`sagemaker register` adds versions)"
            )
        ref = max(approved, key=lambda v: int(v["version"]))["arn"]
    else:
        check_package_ref(ref)
    try:
        described = client.describe_model_package(ModelPackageName=ref)
    except client.exceptions.ClientError as error:
        raise UsageError(
            f"model package {ref} not found in {aws.settings.region}: {error_message(error)}"
        ) from None
    registered = _registered(described)
    if registered.status != APPROVED:
        raise UsageError(
            f"model package {ref} is {registered.status or 'without approval status'}, not Approved; "
            f"approve it with `{approve.replace('ARN', ref)}`"
        )
    if not registered.model_data:
        raise UsageError(f"model package {ref} has no container with model data to deploy")
    return registered


def _registered(described: Mapping[str, Any]) -> Registered:
    """A DescribeModelPackage answer as a Registered version."""
    containers = described.get("InferenceSpecification", {}).get("Containers") or [{}]
    statistics = described.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return Registered(
        arn=str(described["ModelPackageArn"]),
        version=int(described.get("ModelPackageVersion", 0)),
        group=str(described.get("ModelPackageGroupName", "")),
        image=str(containers[0].get("Image", "")),
        model_data=str(containers[0].get("ModelDataUrl", "")),
        status=str(described.get("ModelApprovalStatus", "")),
        metrics_uri=str(statistics.get("S3Uri", "")),
    )


def list_versions(aws: Aws, group: str) -> list[dict[str, Any]]:
    """Every version in ``group``, oldest first: arn, version, status (approval) and created
    (ISO time). A group that does not exist has none."""
    client = aws.client("sagemaker")
    return _versions(client, group) if _group_exists(client, group) else []


def _versions(client: Any, group: str) -> list[dict[str, Any]]:
    found = [
        {
            "arn": item["ModelPackageArn"],
            "version": int(item.get("ModelPackageVersion", 0)),
            "status": str(item.get("ModelApprovalStatus", "")),
            "created": item["CreationTime"].isoformat(),  # botocore parses it into a datetime
        }
        for item in paged(
            client, "list_model_packages", "ModelPackageSummaryList", ModelPackageGroupName=group
        )
    ]
    return sorted(found, key=lambda v: v["version"])


def delete_group(aws: Aws, group: str) -> list[Removed]:
    """Delete every version of ``group``, then the group (SageMaker refuses a non-empty one).

    Separate from endpoints.delete_all on purpose: registered versions are the record of what
    was approved and usually outlive the endpoints that served them.
    """
    client = aws.client("sagemaker")
    if not _group_exists(client, group):
        return []
    removed = []
    for version in _versions(client, group):
        client.delete_model_package(ModelPackageName=version["arn"])
        removed.append(Removed("model package", version["arn"]))
    client.delete_model_package_group(ModelPackageGroupName=group)
    removed.append(Removed("model package group", group))
    return removed


def _upload_metrics(config: ProjectConfig, aws: Aws, metrics: Mapping[str, float]) -> str:
    """The metrics JSON under ``<project>/registry/`` in the project's bucket, one folder per
    registration so a version's evidence is never overwritten by a later one."""
    uri = ProjectNames.of(config.project.slug).registry_metrics(
        aws.bucket, f"{timestamp()}-{uuid.uuid4().hex[:8]}"
    )
    key = split_s3_uri(uri)[1]
    # JSON has no NaN or infinity: those are written as strings rather than as invalid JSON.
    numbers = {str(k): float(v) if math.isfinite(v) else str(float(v)) for k, v in metrics.items()}
    body = json.dumps(numbers, indent=2) + "\n"
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json"
    )
    return f"s3://{aws.bucket}/{key}"


def _metadata(metrics: Mapping[str, float], facts: Mapping[str, str]) -> dict[str, str]:
    """CustomerMetadataProperties: the provenance facts, then as many metrics as fit."""
    properties = {key: _metadata_text(value, 256) for key, value in facts.items() if value}
    properties = {key: value for key, value in properties.items() if value}
    for name, value in metrics.items():
        key = _metadata_text(f"{METRIC_PREFIX}{name}", 128)
        if len(properties) >= MAX_METADATA:
            log.warning("only %d metadata entries fit; metrics from %s on are left out", MAX_METADATA, name)
            break
        properties[key] = repr(float(value))
    return properties


def _metadata_text(text: str, limit: int) -> str:
    return _METADATA_UNSAFE.sub("-", text)[:limit].strip()


def _description(text: str) -> str:
    # One line: the API's description pattern has no control characters.
    return " ".join(text.split())[:1024]


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _group_exists(client: Any, group: str) -> bool:
    try:
        client.describe_model_package_group(ModelPackageGroupName=group)
    except client.exceptions.ClientError as error:
        if "does not exist" in str(error) or "ValidationException" in str(error):
            return False
        raise
    return True
