"""Turn the configured dataset source into data files, one per split that the source provides."""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

from ..errors import DataFormatError
from .download import cache_dir, nsmc_dir
from .io import data_format, find_data_files

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# Name tokens that mark a split file; "train" wins over "val" so fci_train_val.txt is training data.
SPLIT_TOKENS = {
    "test": {"test", "testing", "eval"},
    "train": {"train", "training"},
    "validation": {"validation", "valid", "val", "dev"},
}


def bundled_sample_dir() -> Path:
    package = __package__.split(".")[0]
    return Path(str(resources.files(package).joinpath("resources", "nsmc_sample")))


def split_files(folder: Path) -> dict[str, Path]:
    """Assign the data files of a folder to splits by name (ratings_train.txt -> train)."""
    files = find_data_files(folder)
    if not files:
        raise DataFormatError(f"{folder}: no CSV/TSV/JSONL files in this folder")
    assigned: dict[str, Path] = {}
    for path in files:
        tokens = set(re.split(r"[^a-z0-9]+", path.stem.lower()))
        split = next((split for split, names in SPLIT_TOKENS.items() if tokens & names), None)
        if split is None:
            continue
        if split in assigned:
            raise DataFormatError(
                f"{folder}: both {assigned[split].name} and {path.name} look like the {split} split; "
                "keep one per split"
            )
        assigned[split] = path
    if "train" not in assigned:
        if len(files) == 1:
            return {"train": files[0]}
        raise DataFormatError(
            f"{folder}: cannot tell which file is the training split among "
            f"{', '.join(p.name for p in files)}; name it e.g. train.csv (validation.csv, test.csv)"
        )
    return assigned


def resolve_source(source: str) -> dict[str, Path]:
    """Split name -> data file for ``source`` (see config.toml [data].source)."""
    if source == "nsmc-sample":
        return split_files(bundled_sample_dir())
    if source == "nsmc":
        folder = nsmc_dir()
        files = {"train": folder / "ratings_train.txt", "test": folder / "ratings_test.txt"}
        if not all(path.exists() for path in files.values()):
            raise DataFormatError(
                f"the full NSMC corpus is not in {folder}; run `data download` first "
                "(or `data download --from FOLDER` with local copies)"
            )
        return files
    if source.startswith("s3://"):
        return resolve_source(str(download_s3(source)))
    path = Path(source).expanduser()
    if path.is_dir():
        return split_files(path)
    if path.is_file():
        data_format(path)  # raises for an unsupported file type
        return {"train": path}
    raise DataFormatError(f"dataset source {source!r}: no such file or folder")


def download_s3(uri: str) -> Path:
    """Copy an S3 object or prefix into the cache; returns the local file or folder."""
    try:
        import boto3
    except ImportError as error:
        raise DataFormatError(
            f"{uri}: reading from S3 needs boto3; install the project with its 'sagemaker' extra"
        ) from error
    bucket, _, key = uri[len("s3://") :].partition("/")
    target = cache_dir() / "s3" / bucket / key
    client = boto3.client("s3")
    objects = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]
    if not objects:
        raise DataFormatError(f"{uri}: no objects under this S3 location")
    if objects == [key]:
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))
        return target
    for name in objects:
        destination = target / name[len(key) :].lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading s3://%s/%s", bucket, name)
        client.download_file(bucket, name, str(destination))
    return target
