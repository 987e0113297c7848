"""Every SageMaker and S3 name this project creates, derived from one prefix.

The launchers, the tests and the IAM policies and clean-up commands generated into
docs/sagemaker.md (the template renders them through this very module) all take their names from
here, so a policy cannot grant ``<slug>-*`` while the commands create ``<first 38 characters>-*``.

This module imports nothing from the package: the template's generator loads it on its own.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

# The SageMaker SDK names a training job ``<base>-<YYYY-MM-DD-HH-MM-SS-mmm>`` (24 characters) and
# the API takes 63: every name starts with a prefix short enough for the longest of them.
PREFIX_LENGTH = 38
# The API's longest name (training jobs, models, endpoint configs, endpoints, transform jobs).
NAME_LENGTH = 63
_STAMP = "%Y%m%d-%H%M%S"
# The one production variant of every endpoint (what autoscaling targets).
VARIANT = "AllTraffic"


def resource_name(base: str, suffix: str = "", max_length: int = NAME_LENGTH) -> str:
    """A SageMaker resource name (letters, digits, hyphens; ``max_length`` characters at most)
    made of ``base`` shortened so that ``-<suffix>`` is kept whole."""
    clean = re.sub(r"[^A-Za-z0-9-]+", "-", base).strip("-") or "project"
    clean = re.sub(r"-{2,}", "-", clean)
    if suffix:
        clean = clean[: max_length - len(suffix) - 1].rstrip("-") + "-" + suffix
    return clean[:max_length].rstrip("-")


def name_prefix(slug: str) -> str:
    """What every name starts with: the project slug, cut to :data:`PREFIX_LENGTH` characters."""
    return resource_name(slug, max_length=PREFIX_LENGTH)


def timestamp() -> str:
    """A sortable UTC suffix (``20260301-120000``) for names of models, configs and prefixes."""
    return time.strftime(_STAMP, time.gmtime())


@dataclass(frozen=True)
class ProjectNames:
    """The names of one project's resources (``prefix`` is :func:`name_prefix` of its slug)."""

    prefix: str

    @classmethod
    def of(cls, slug: str) -> ProjectNames:
        return cls(name_prefix(slug))

    # SageMaker resources: every one is <prefix>-..., which is what the policies grant.
    @property
    def training_job_base(self) -> str:
        """The SDK's ``base_job_name``: it appends the launch time."""
        return self.prefix

    @property
    def default_endpoint(self) -> str:
        return f"{self.prefix}-endpoint"

    def endpoint_models(self, endpoint: str) -> str:
        """What the models and endpoint configs of ``endpoint`` are named before ``-<timestamp>``.

        An endpoint named outside the prefix (``--endpoint-name``) still gets its models and
        configs inside it, so that only the endpoint's own ARN needs adding to the caller policy.
        """
        middle = endpoint[len(self.prefix) + 1 :] if self.owns(endpoint) else endpoint
        return resource_name(f"{self.prefix}-{middle}", max_length=NAME_LENGTH - len(timestamp()) - 1)

    def model(self, endpoint: str, stamp: str) -> str:
        """The model and endpoint config ``endpoint`` is deployed with at ``stamp`` (one name)."""
        return f"{self.endpoint_models(endpoint)}-{stamp}"

    def batch_job(self, stamp: str) -> str:
        return resource_name(f"{self.prefix}-batch", stamp)

    def owns(self, name: str) -> bool:
        """Whether the documented policies grant ``name`` (it starts with ``<prefix>-``)."""
        return name.startswith(f"{self.prefix}-")

    @property
    def model_package_group(self) -> str:
        return self.prefix

    # S3: everything under s3://<bucket>/<prefix>/.
    def s3_prefix(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.prefix}"

    def training_output(self, bucket: str) -> str:
        return f"{self.s3_prefix(bucket)}/output"

    def models(self, bucket: str, stamp: str) -> str:
        return f"{self.s3_prefix(bucket)}/models/{stamp}"

    def registry_metrics(self, bucket: str, unique: str) -> str:
        return f"{self.s3_prefix(bucket)}/registry/{unique}/metrics.json"

    def batch_input(self, bucket: str, job: str) -> str:
        return f"{self.s3_prefix(bucket)}/batch/{job}/input"

    def batch_output(self, bucket: str, job: str) -> str:
        return f"{self.s3_prefix(bucket)}/batch/{job}/output"

    def base_models(self, bucket: str, digest: str) -> str:
        return f"{self.s3_prefix(bucket)}/base-models/{digest}"
