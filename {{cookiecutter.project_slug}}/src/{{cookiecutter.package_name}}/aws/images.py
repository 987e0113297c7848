"""Hugging Face container images and instance types, checked offline before any AWS call.

The image table bundled with the SageMaker SDK is the source of truth: a transformers / PyTorch /
Python triple that has no image there would only fail minutes later inside AWS, so it is rejected
here with the list of triples that do exist.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache

from ..config import ProjectConfig
from ..errors import UsageError
from ..serving import container

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Versions:
    transformers: str
    pytorch: str
    py: str

    def describe(self) -> str:
        return f"transformers {self.transformers} / pytorch {self.pytorch} / {self.py}"


@cache
def _framework_table() -> dict:
    from sagemaker.core import image_uris

    return image_uris.config_for_framework("huggingface")


def supported_versions(scope: str) -> list[tuple[Versions, tuple[str, ...]]]:
    """Every (versions, processors) combination with an image for ``scope`` (training/inference)."""
    table = _framework_table()[scope]
    default_processors = tuple(table.get("processors", ()))
    found = []
    for version, frameworks in table["versions"].items():
        for framework, details in frameworks.items():
            if not framework.startswith("pytorch") or not isinstance(details, dict):
                continue
            processors = tuple(details.get("processors", default_processors))
            for py in details.get("py_versions", ()):
                found.append((Versions(version, framework[len("pytorch") :], py), processors))
    return found


# What the project's code needs (pyproject.toml): images below this cannot run its scripts.
MIN_TRANSFORMERS = (4, 51)
MIN_PYTHON = (3, 11)


def below_floor(versions: Versions) -> str:
    """Why the project's scripts cannot run in an image with ``versions`` ("" if they can)."""
    problems = []
    if tuple(int(part) for part in re.findall(r"\d+", versions.transformers)[:2]) < MIN_TRANSFORMERS:
        problems.append(f"transformers {versions.transformers} < {'.'.join(map(str, MIN_TRANSFORMERS))}")
    digits = versions.py.removeprefix("py")
    python = (int(digits[0]), int(digits[1:] or 0)) if digits.isdigit() else (0, 0)
    if python < MIN_PYTHON:
        problems.append(f"Python {versions.py} < py{''.join(map(str, MIN_PYTHON))}")
    return ", ".join(problems)


def check_versions(versions: Versions, scope: str, processor: str | None = None) -> None:
    """Raise UsageError naming the valid triples when ``versions`` has no ``scope`` image, when
    the image is older than what the project's scripts need, or has no image for ``processor``."""
    available = supported_versions(scope)
    floor = below_floor(versions)
    if floor:
        usable = [c for c, _ in available if not below_floor(c)]
        raise UsageError(
            f"the {scope} image {versions.describe()} cannot run this project's code ({floor}; "
            "pyproject.toml needs transformers >= 4.51 and Python >= 3.11); e.g. "
            + ", ".join(c.describe() for c in usable[-3:])
        )
    for candidate, processors in available:
        if candidate == versions:
            if processor == "cpu" and scope == "training" and processor not in processors:
                raise UsageError(
                    f"there is no CPU Hugging Face training image ({versions.describe()} exists "
                    "for GPU instances only); train on a GPU instance type (e.g. ml.g5.2xlarge), "
                    "or run the entry point without a container: --mode process"
                )
            if processor and processor not in processors:
                raise UsageError(
                    f"the Hugging Face {scope} image for {versions.describe()} exists only for "
                    f"{'/'.join(processors)} instances, not {processor}; choose a "
                    f"{'/'.join(processors)} instance type or other versions "
                    f"(see `sagemaker images`)"
                )
            return
    same = [c for c, _ in available if c.transformers == versions.transformers]
    hint = (
        f"images for transformers {versions.transformers}: " + ", ".join(c.describe() for c in same)
        if same
        else "newest: " + ", ".join(c.describe() for c, _ in available[-3:])
    )
    raise UsageError(
        f"no Hugging Face {scope} image for {versions.describe()} in the SageMaker SDK's image "
        f"table; {hint}. Set transformers_version / pytorch_version / py_version in [sagemaker] "
        f"of config.toml (or the matching command-line flags); `sagemaker images` lists all."
    )


# The inference image the container-parity test runs (see serving/container.py).
TESTED_INFERENCE = Versions(
    container.CONTAINER_TRANSFORMERS, container.CONTAINER_PYTORCH, container.CONTAINER_PYTHON
)
TESTED_TOOLKIT = container.CONTAINER_TOOLKIT


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


def processor_for(instance_type: str) -> str:
    """'gpu' or 'cpu', the way the SDK's image table calls them."""
    if instance_type == "local_gpu":
        return "gpu"
    if instance_type == "local":
        return "cpu"
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    return "gpu" if family.startswith(("p", "g")) else "cpu"


def image_regions(versions: Versions, scope: str) -> list[str]:
    """The regions the SDK's image table has the ``scope`` image of ``versions`` in."""
    frameworks = _framework_table()[scope]["versions"].get(versions.transformers, {})
    details = frameworks.get(f"pytorch{versions.pytorch}", {})
    return sorted(details.get("registries", {})) if isinstance(details, dict) else []


def check_region(versions: Versions, scope: str, region: str) -> None:
    """Raise UsageError, one line naming the regions that have it, when the ``scope`` image of
    ``versions`` is not published in ``region`` (the SDK's own error is a traceback)."""
    regions = image_regions(versions, scope)
    if region not in regions:
        raise UsageError(
            f"no Hugging Face {scope} image for {versions.describe()} in region {region!r}; the "
            f"SageMaker SDK's image table has it in {', '.join(regions)}. Choose one of those with "
            "--region (or region in [sagemaker] of config.toml), or upgrade the sagemaker package "
            "if the region is new"
        )


# The NVIDIA GPU of each SageMaker instance family: (GPU, architecture, compute capability).
GPUS = {
    "p2": ("NVIDIA K80", "Kepler", (3, 7)),
    "g3": ("NVIDIA M60", "Maxwell", (5, 2)),
    "g3s": ("NVIDIA M60", "Maxwell", (5, 2)),
    "p3": ("NVIDIA V100", "Volta", (7, 0)),
    "p3dn": ("NVIDIA V100", "Volta", (7, 0)),
    "g4dn": ("NVIDIA T4", "Turing", (7, 5)),
    "g5": ("NVIDIA A10G", "Ampere", (8, 6)),
    "p4d": ("NVIDIA A100", "Ampere", (8, 0)),
    "p4de": ("NVIDIA A100", "Ampere", (8, 0)),
    "g6": ("NVIDIA L4", "Ada Lovelace", (8, 9)),
    "g6e": ("NVIDIA L40S", "Ada Lovelace", (8, 9)),
    "p5": ("NVIDIA H100", "Hopper", (9, 0)),
    "p5e": ("NVIDIA H200", "Hopper", (9, 0)),
    "p5en": ("NVIDIA H200", "Hopper", (9, 0)),
    "p6": ("NVIDIA B200", "Blackwell", (10, 0)),
}
# The oldest compute capability PyTorch's builds for each CUDA major version have kernels for:
# CUDA 12 dropped Kepler, CUDA 13 dropped Maxwell, Pascal and Volta.
OLDEST_GPU = {11: (3, 5), 12: (5, 0), 13: (7, 5)}
NEWER_GPUS = "ml.g5.2xlarge (A10G), ml.g6.2xlarge (L4), ml.g4dn.2xlarge (T4) or ml.p4d.24xlarge (A100)"


def check_gpu_generation(instance_type: str, uri: str) -> None:
    """Raise UsageError, one line naming instance types that work, when the image's CUDA build
    has no kernels for the instance's GPU: the job would start, be billed, and fail with "no
    kernel image is available for execution on the device"."""
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    tag = parse_image(uri)
    cuda = tag.cuda if tag else None
    if family not in GPUS or cuda is None or cuda[0] not in OLDEST_GPU:
        return
    gpu, architecture, capability = GPUS[family]
    oldest = OLDEST_GPU[cuda[0]]
    if capability < oldest:
        raise UsageError(
            f"{instance_type} has {gpu} GPUs ({architecture}, compute capability "
            f"{capability[0]}.{capability[1]}); the image {uri.rsplit('/', 1)[-1]} is built with CUDA "
            f"{cuda[0]}.{cuda[1]}, whose PyTorch has no kernels below {oldest[0]}.{oldest[1]}. Choose "
            f"{NEWER_GPUS}, or image versions built with an older CUDA (`sagemaker images`)"
        )


def image_uri(versions: Versions, scope: str, region: str, instance_type: str) -> str:
    """The ECR URI of the Hugging Face ``scope`` image (validated first: versions, region, and
    that the image's CUDA build runs on the instance's GPU)."""
    from sagemaker.core import image_uris

    check_versions(versions, scope, processor_for(instance_type))
    check_region(versions, scope, region)
    uri = str(
        image_uris.retrieve(
            "huggingface",
            region=region,
            version=versions.transformers,
            base_framework_version=f"pytorch{versions.pytorch}",
            py_version=versions.py,
            instance_type=instance_type,
            image_scope=scope,
        )
    )
    check_gpu_generation(instance_type, uri)
    return uri


# A Hugging Face DLC tag: 2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04 (CPU: no -cuNNN).
_IMAGE_TAG = re.compile(
    r":(?P<pytorch>[\d.]+)-transformers(?P<transformers>[\d.]+)-(?P<processor>cpu|gpu)-(?P<py>py\d+)"
    r"(?:-cu(?P<cuda>\d{2,3})(?=-|$))?"
)


@dataclass(frozen=True)
class ImageTag:
    """What a Hugging Face DLC URI's tag says: versions, processor, CUDA build (GPU images)."""

    versions: Versions
    processor: str  # cpu or gpu
    cuda: tuple[int, int] | None  # cu130 -> (13, 0)


def parse_image(uri: str) -> ImageTag | None:
    """The tag of a Hugging Face DLC URI, or None for another image."""
    match = _IMAGE_TAG.search(uri)
    if not match:
        return None
    cuda = match["cuda"]
    return ImageTag(
        Versions(match["transformers"], match["pytorch"], match["py"]),
        match["processor"],
        (int(cuda[:-1]), int(cuda[-1])) if cuda else None,
    )


def versions_from_image(uri: str) -> Versions | None:
    """Read the versions back from a Hugging Face DLC URI (e.g. a finished training job's)."""
    tag = parse_image(uri)
    return tag.versions if tag else None


def image_for_instance(uri: str, region: str, instance_type: str) -> str:
    """``uri``, or the Hugging Face inference image of the same versions built for
    ``instance_type``'s processor when ``uri`` is a DLC for the other one: a registered GPU image
    would not run on a serverless endpoint (CPU only) and wastes a CPU instance's disk and memory.
    A URI that is not a Hugging Face DLC is returned as it is."""
    tag = parse_image(uri)
    if tag is None or tag.processor == processor_for(instance_type):
        return uri
    return image_uri(tag.versions, "inference", region, instance_type)


@cache
def _instance_enum(shape: str) -> tuple[str, ...]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for(shape).enum)


# botocore's SageMaker service model lists the instance types each API accepts.
INSTANCE_SHAPES = {
    "training": "TrainingInstanceType",
    "endpoint": "ProductionVariantInstanceType",
    "transform": "TransformInstanceType",
}


def check_instance_type(instance_type: str, use: str) -> None:
    """Raise UsageError if ``instance_type`` is not valid for ``use`` (training/endpoint/...)."""
    known = _instance_enum(INSTANCE_SHAPES[use])
    if instance_type in known:
        return
    family = instance_type.rsplit(".", 1)[0]
    similar = [name for name in known if name.startswith(family + ".")][:8]
    hint = f"; e.g. {', '.join(similar)}" if similar else ""
    raise UsageError(
        f"unknown {use} instance type {instance_type!r} (not in botocore's SageMaker API model; "
        f"instance types start with 'ml.'{hint})"
    )


def gpus_per_instance(instance_type: str, region: str) -> int:
    """GPUs of one instance according to the SDK's bundled table (0 when unknown or CPU)."""
    from sagemaker.core import instance_types_gpu_info

    info = instance_types_gpu_info.retrieve(region).get(instance_type, {})
    return int(info.get("Count", 0))
