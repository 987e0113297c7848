"""Every SageMaker and S3 name the project creates fits the API and the documented policies.

Property test over thousands of random slugs (the hook accepts any length), checked against the
limits in botocore's own SageMaker service model, not a copy of them.
"""

from __future__ import annotations

import functools
import random
import re
import string

import pytest

botocore_session = pytest.importorskip("botocore.session", reason="the 'sagemaker' extra is not installed")

from nsmc_sentiment_classifier.aws.names import (  # noqa: E402
    PREFIX_LENGTH,
    ProjectNames,
    name_prefix,
    timestamp,
)

# What the SageMaker SDK appends to a training job's base name: -YYYY-MM-DD-HH-MM-SS-mmm.
SDK_JOB_SUFFIX = "-2026-03-01-12-00-00-000"


# The request member each name is sent as: its shape's pattern and length are the API's rules.
MEMBERS = {
    "ModelPackageGroupName": "CreateModelPackageGroup",
    "TrainingJobName": "CreateTrainingJob",
    "EndpointName": "CreateEndpoint",
    "ModelName": "CreateModel",
    "EndpointConfigName": "CreateEndpointConfig",
    "TransformJobName": "CreateTransformJob",
}


@functools.cache
def _rules(member: str) -> tuple[re.Pattern[str], int]:
    model = botocore_session.get_session().get_service_model("sagemaker")
    metadata = model.operation_model(MEMBERS[member]).input_shape.members[member].metadata
    return re.compile(metadata["pattern"]), metadata["max"]


def _fits(name: str, member: str) -> bool:
    pattern, longest = _rules(member)
    return bool(pattern.fullmatch(name)) and len(name) <= longest


def _random_slug(rng: random.Random) -> str:
    words = [
        "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 12)))
        for _ in range(rng.randint(1, 20))
    ]
    return "-".join(words)


def test_every_name_fits_the_api_and_starts_with_the_prefix():
    rng = random.Random(20)
    stamp = timestamp()
    for _ in range(3000):
        slug = _random_slug(rng)
        names = ProjectNames.of(slug)
        prefix = names.prefix
        assert prefix == name_prefix(slug)
        assert 1 <= len(prefix) <= PREFIX_LENGTH and slug.startswith(prefix)
        assert _fits(prefix, "ModelPackageGroupName"), slug
        assert _fits(names.training_job_base + SDK_JOB_SUFFIX, "TrainingJobName"), slug
        assert _fits(names.default_endpoint, "EndpointName"), slug
        assert names.default_endpoint.endswith("-endpoint")
        assert _fits(names.batch_job(stamp), "TransformJobName"), slug
        endpoint = rng.choice([names.default_endpoint, "team-endpoint", "e" * 63, f"{prefix}-x"])
        model = names.model(endpoint, stamp)
        assert _fits(model, "ModelName") and _fits(model, "EndpointConfigName"), (slug, endpoint)
        # The policies grant <prefix>-*; delete sweeps <endpoint_models>-* for leftovers.
        for name in (names.default_endpoint, names.batch_job(stamp), model):
            assert names.owns(name), (slug, name)
        assert model.startswith(names.endpoint_models(endpoint) + "-")
        for uri in (names.models("b", stamp), names.batch_input("b", "j"), names.base_models("b", "d")):
            assert uri.startswith(f"s3://b/{prefix}/")


def test_a_long_slug_keeps_the_endpoint_suffix_and_one_prefix_everywhere():
    slug = "korean-movie-review-sentiment-classifier"  # 40 characters
    names = ProjectNames.of(slug)
    assert names.prefix == "korean-movie-review-sentiment-classifi"
    assert names.default_endpoint == "korean-movie-review-sentiment-classifi-endpoint"
    assert names.model(names.default_endpoint, "20260301-120000") == (
        "korean-movie-review-sentiment-classifi-endpoint-20260301-120000"
    )
    # Outside the prefix: the model gets it, shortened so that the timestamp stays whole.
    assert names.model("team-endpoint", "20260301-120000") == (
        "korean-movie-review-sentiment-classifi-team-end-20260301-120000"
    )
    assert names.s3_prefix("b") == "s3://b/korean-movie-review-sentiment-classifi"
