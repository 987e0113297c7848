"""Where AWS settings come from (CLI > config.toml > environment) and the sessions built on them.

Nothing here has a hard-coded account, role, region or bucket. Settings are validated before any
client is created, so a missing role or region is reported before anything is uploaded.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..config import ProjectConfig
from ..errors import UsageError
from .names import resource_name

log = logging.getLogger(__name__)

ROLE_ENV = "SAGEMAKER_ROLE"
BUCKET_ENV = "SAGEMAKER_BUCKET"
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class AwsSettings:
    region: str
    role: str
    bucket: str  # empty: the SageMaker session's default bucket


def resolve_settings(
    config: ProjectConfig,
    *,
    region: str | None = None,
    role: str | None = None,
    bucket: str | None = None,
    need_role: bool = True,
) -> AwsSettings:
    """Pick region, role and bucket from the CLI, then config.toml, then the environment."""
    section = config.sagemaker
    region = (
        region or section.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    )
    role = role or section.role or os.environ.get(ROLE_ENV, "")
    bucket = bucket or section.bucket or os.environ.get(BUCKET_ENV, "")
    if not region:
        raise UsageError("no AWS region: set region in [sagemaker] of config.toml, AWS_REGION, or --region")
    if not _REGION.match(region):
        raise UsageError(f"{region!r} is not an AWS region name (e.g. ap-northeast-2)")
    if need_role and not role:
        raise UsageError(
            "no SageMaker execution role: set role in [sagemaker] of config.toml, the "
            f"{ROLE_ENV} environment variable, or --role to an IAM role ARN "
            "(arn:aws:iam::<account>:role/<name>) that SageMaker can assume; see docs/sagemaker.md"
        )
    if role and not _ROLE_ARN.match(role):
        raise UsageError(
            f"{role!r} is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>"
        )
    if bucket.startswith("s3://"):
        bucket = bucket[len("s3://") :].strip("/")
    if bucket and not _BUCKET.match(bucket):
        raise UsageError(f"{bucket!r} is not a valid S3 bucket name")
    return AwsSettings(region=region, role=role, bucket=bucket)


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", error))


def error_message(error: Any) -> str:
    """The service's own message of a botocore ClientError."""
    return str(error.response.get("Error", {}).get("Message", error))


def is_not_found(error: Any) -> bool:
    """Whether a botocore ClientError says the resource does not exist (SageMaker answers a
    Describe of a missing resource with a ValidationException "Could not find ..."). Anything
    else (access denied, throttling) is an answer the caller must not read as "gone"."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = error_message(error).lower()
    if code in ("ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity"):
        return True
    return code == "ValidationException" and any(
        phrase in message for phrase in ("could not find", "not found", "does not exist")
    )


def paged(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item under ``key`` of a boto3 list operation, over all its pages."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise UsageError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@cache
def _api_rules(shape: str) -> dict[str, Any]:
    """botocore's SageMaker service model's limits for ``shape`` (pattern, min, max)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return dict(model.shape_for(shape).metadata)


def check_api_value(value: str | int, shape: str, option: str) -> None:
    """Raise UsageError, before anything is created, when ``value`` breaks the SageMaker API's
    own rules for ``shape`` (its pattern, length or range in botocore's service model): such a
    value would only fail at AWS, after a model and an upload were made."""
    rules = _api_rules(shape)
    if isinstance(value, int):
        low, high = rules.get("min"), rules.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            raise UsageError(f"{option} {value}: SageMaker takes {bounds} ({shape})")
        return
    pattern, longest = rules.get("pattern"), rules.get("max")
    too_long = longest is not None and len(value) > longest
    if too_long or not value or (pattern and not re.fullmatch(pattern, value)):
        why = f"{len(value)} characters, over {longest}" if too_long else f"pattern {pattern}"
        raise UsageError(
            f"{option} {value!r} is not a valid SageMaker {shape} ({why}): letters, digits and "
            f"hyphens, starting and ending with a letter or digit, {longest} characters at most; "
            f"e.g. {resource_name(value, max_length=longest or 63)!r}"
        )


# Tag keys on every resource this project creates; `list` and `delete --all` select by them.
PROJECT_TAG = "project"
RUN_TAG = "run-id"


def project_tags(config: ProjectConfig, run_id: str = "") -> list[dict[str, str]]:
    """``[{"Key": "project", "Value": <slug>}, {"Key": "run-id", ...}]`` as the APIs take them."""
    tags = [{"Key": PROJECT_TAG, "Value": config.project.slug}]
    if run_id:
        tags.append({"Key": RUN_TAG, "Value": run_id})
    return tags


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


class Aws:
    """boto3 and SageMaker SDK sessions for one region, created on first use."""

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings

    @cached_property
    def boto(self) -> Any:
        import boto3

        session = boto3.Session(region_name=self.settings.region)
        if session.get_credentials() is None:
            raise UsageError(
                "no AWS credentials found: run `aws configure` / `aws sso login`, or set "
                "AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return session

    @cached_property
    def account(self) -> str:
        """The caller's account; also proves the credentials work (before anything is sent)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except ClientError as error:
            raise UsageError(
                f"AWS credentials were refused ({_error_code(error)}); refresh them "
                "(`aws sso login`, `aws configure`) or check AWS_PROFILE"
            ) from None
        except BotoCoreError as error:
            raise UsageError(f"AWS credentials cannot be used: {error}") from None

    def preflight(self, role_type: str | None) -> None:
        """Every precondition of a launch, each failing in one line, before any upload or
        create: credentials, a configured bucket (exists, owned by this account), and with
        ``role_type`` ("training" or "serving") the role, through the SageMaker SDK's own
        permission and trust check (skipped when SAGEMAKER_VALIDATE_ROLE=false)."""
        log.debug("AWS account %s", self.account)
        if self.settings.bucket:
            log.debug("bucket %s", self.bucket)  # the default bucket is checked when first used
        if role_type is None:
            return
        from sagemaker.core.helper.iam_role_resolver import RoleValidationError, resolve_and_validate_role

        try:
            # The resolver reads only boto_session from its session argument; the full SDK
            # session would resolve (and create) the default bucket before anything is checked.
            resolve_and_validate_role(
                self.settings.role,
                role_type=role_type,
                sagemaker_session=SimpleNamespace(boto_session=self.boto),
            )
        except RoleValidationError as error:
            detail = [line.strip() for line in str(error).splitlines() if line.strip()]
            missing = next((line for line in detail if line.startswith("Missing permissions")), "")
            trust = next((line for line in detail if "trust policy" in line), "")
            raise UsageError(
                f"role {self.settings.role} cannot run SageMaker {role_type} jobs: "
                f"{missing or trust or _first_line(str(error))}; see docs/sagemaker.md "
                "(IAM policy for the role)"
            ) from None
        except ValueError as error:
            raise UsageError(f"role {self.settings.role}: {_first_line(str(error))}") from None

    @cached_property
    def sagemaker_session(self) -> Any:
        from sagemaker.core.helper.session_helper import Session

        return Session(boto_session=self.boto, default_bucket=self.bucket)

    @cached_property
    def bucket(self) -> str:
        """The configured bucket (which must exist), or SageMaker's default bucket
        ``sagemaker-<region>-<account>``, created when missing.

        The default is resolved here rather than by the SDK, whose lookup calls a hard-coded
        regional STS URL and so ignores endpoint settings (VPC endpoints, AWS_ENDPOINT_URL).
        """
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        account = self.account
        if self.settings.bucket:
            try:
                # Data and models must not go to a bucket of another account.
                s3.head_bucket(Bucket=self.settings.bucket, ExpectedBucketOwner=account)
            except ClientError as error:
                raise UsageError(
                    f"S3 bucket {self.settings.bucket!r} does not exist, is not accessible or "
                    f"belongs to another account than {account} ({_error_code(error)}); create "
                    "it, or leave bucket empty to use the SageMaker default bucket"
                ) from None
            return self.settings.bucket
        region = self.settings.region
        name = f"sagemaker-{region}-{account}"
        try:
            # The name is predictable, so make sure this account owns it (bucket squatting).
            s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
            return name
        except ClientError as error:
            if _error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
                raise UsageError(
                    f"default bucket {name} is not usable ({_error_code(error)}); it may belong "
                    "to another account: set bucket in [sagemaker] of config.toml or --bucket"
                ) from None
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=name, **location)
        log.info("created the SageMaker default bucket %s", name)
        return name

    def client(self, service: str) -> Any:
        return self.boto.client(service)

    def upload(self, local: Path, s3_prefix: str) -> str:
        """Upload a file or a folder's files under ``s3_prefix``; returns the S3 URI."""
        bucket, key = split_s3_uri(s3_prefix)
        key = key.strip("/")
        s3 = self.client("s3")
        if local.is_file():
            target = f"{key}/{local.name}"
            s3.upload_file(str(local), bucket, target)
            return f"s3://{bucket}/{target}"
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            s3.upload_file(str(path), bucket, f"{key}/{path.relative_to(local).as_posix()}")
        return f"s3://{bucket}/{key}"
