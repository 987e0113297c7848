"""What endpoints, batch transform and the model registry share: the model to serve and the
inference container that runs it. Both import this module; neither imports the other's internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import ProjectConfig
from ..errors import UsageError
from .images import TESTED_INFERENCE, TESTED_TOOLKIT, Versions

log = logging.getLogger(__name__)


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


def container_environment(region: str) -> dict[str, str]:
    """What the Hugging Face inference container needs to run code/inference.py."""
    return {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
    }


def inference_versions(config: ProjectConfig) -> Versions:
    """The inference image's versions: the pair the container-parity test runs, unless
    [sagemaker] names others (then a warning says that image is not the tested one)."""
    section = config.sagemaker
    if not (section.inference_transformers_version or section.inference_pytorch_version):
        return TESTED_INFERENCE
    if not (section.inference_transformers_version and section.inference_pytorch_version):
        raise UsageError(
            "set both inference_transformers_version and inference_pytorch_version in "
            "[sagemaker] of config.toml, or neither (the tested image: "
            f"{TESTED_INFERENCE.describe()})"
        )
    chosen = Versions(
        section.inference_transformers_version, section.inference_pytorch_version, section.py_version
    )
    if chosen != TESTED_INFERENCE:
        log.warning(
            "inference image %s is not the one the container-parity test covers (%s, inference "
            "toolkit %s); leave inference_transformers_version and inference_pytorch_version "
            "empty to use that one",
            chosen.describe(),
            TESTED_INFERENCE.describe(),
            TESTED_TOOLKIT,
        )
    return chosen
