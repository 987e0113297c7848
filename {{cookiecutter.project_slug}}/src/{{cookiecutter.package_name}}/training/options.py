"""Training options resolved: defaults -> config.toml -> SageMaker environment -> flags.

The options themselves are the fields of :class:`..options.TrainOptions`. Precedence, lowest
first: their defaults, ``config.toml`` ([model], [data], [train]), the SageMaker environment
(``SM_CHANNEL_*``, ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``, ``SM_HPS``, ``TRAINING_JOB_NAME``),
then ``--key value`` flags. SageMaker passes every hyperparameter as a string (``--epochs "3"``,
``--group_by_length "True"``), so every value goes through the options' tolerant parsers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import OptionError
from ..options import TrainOptions, add_arguments, from_hyperparameters, given, range_problems

log = logging.getLogger(__name__)

SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
SPLITS = ("train", "validation", "test")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The entry points' parser: ``--config`` and every option."""
    # Abbreviations would let a SageMaker hyperparameter silently match the wrong option.
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    parser.add_argument("--config", help="configuration file (default: the project's config.toml)")
    add_arguments(parser)
    return parser


def _sagemaker_hyperparameters(environ: Mapping[str, str]) -> dict[str, Any]:
    """Known keys of ``SM_HPS`` (the container's JSON copy of the hyperparameters)."""
    raw = environ.get("SM_HPS")
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("ignoring SM_HPS: not valid JSON")
        return {}
    return from_hyperparameters(values, "SM_HPS") if isinstance(values, dict) else {}


BASE_MODEL_ENV = "SM_CHANNEL_BASE_MODEL"


def log_ignored_channels(environ: Mapping[str, str]) -> None:
    """Channels such as ``code`` and ``sm_drivers`` (added by SDK v3) are not training data."""
    channels = {key.removeprefix("SM_CHANNEL_").lower() for key in environ if key.startswith("SM_CHANNEL_")}
    base_model = BASE_MODEL_ENV.removeprefix("SM_CHANNEL_").lower()
    ignored = sorted(channels - {*SPLITS, base_model})
    if ignored:
        log.info("ignoring input channel(s) that hold no training data: %s", ", ".join(ignored))


def resolve_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> TrainOptions:
    """Combine config, SageMaker environment and flags into checked :class:`TrainOptions`."""
    environ = os.environ if environ is None else environ
    config = load_config(getattr(args, "config", None))
    flags = given(args)
    values = _sagemaker_hyperparameters(environ)

    prepared = Path(config.data.prepared_dir)
    # Under the container contract only the channels SageMaker mounted exist; a local
    # data/prepared folder in the working directory must not stand in for a missing one.
    in_container = "SM_MODEL_DIR" in environ or any(k.startswith("SM_CHANNEL_") for k in environ)
    for split in SPLITS:
        local = "none" if in_container else str(prepared / split)
        values[f"{split}_dir"] = environ.get(f"SM_CHANNEL_{split.upper()}") or local
    # Empty: the run's own folder under outputs/runs (see runs.py), unless SageMaker says.
    values["model_dir"] = environ.get("SM_MODEL_DIR") or ""
    values["output_data_dir"] = environ.get("SM_OUTPUT_DATA_DIR") or ""
    # SageMaker creates /opt/ml/checkpoints (synced to S3) when the job has a checkpoint
    # location; without one, checkpoints there would not survive the instance anyway.
    if Path(SAGEMAKER_CHECKPOINT_DIR).is_dir():
        values["checkpoint_dir"] = SAGEMAKER_CHECKPOINT_DIR
    if environ.get("TRAINING_JOB_NAME"):
        values["run_id"] = environ["TRAINING_JOB_NAME"]
    values.update(flags)
    # A local base model reaches a hosted job as this channel (see aws/training.py).
    if environ.get(BASE_MODEL_ENV):
        values["model_name_or_path"] = environ[BASE_MODEL_ENV]

    # A missing test split is fine unless it was asked for explicitly; "none" skips it.
    skip = str(values["test_dir"]).strip().lower() in {"", "none"}
    if skip or ("test_dir" not in flags and not Path(values["test_dir"]).exists()):
        values["test_dir"] = None

    options = replace(config.options, **values)
    check_options(options)
    return options


def check_options(options: TrainOptions) -> None:
    """Every problem at once, each naming its flag."""
    problems = []
    for split in ("train", "validation"):
        if getattr(options, f"{split}_dir") == "none":
            problems.append(
                f"no {split} data: the SageMaker job has no '{split}' channel "
                f"(SM_CHANNEL_{split.upper()} is not set) and --{split}_dir was not given"
            )
    problems += range_problems(options)
    problems += check_metric(options)
    if options.epochs <= 0 and options.max_steps <= 0:
        problems.append(f"--epochs must be positive (or set --max_steps), got {options.epochs}")
    if not options.model_name_or_path:
        problems.append("no base model: set [model].base_model in config.toml or pass --model_name_or_path")
    if problems:
        raise OptionError("; ".join(problems))


def check_metric(options: TrainOptions) -> list[str]:
    """``metric_for_best_model`` against the project's label scheme: the option accepts every
    scheme's metric names, but a run can only pick its best model by one its scheme logs."""
    scheme = options.label_scheme
    choices = (*scheme.metric_names, "loss")
    if options.metric_for_best_model in choices:
        return []
    return [
        f"--metric_for_best_model {options.metric_for_best_model}: not a metric of {scheme.name} "
        f"(the project's [data].task); choose one of {', '.join(choices)}"
    ]


def parse_options(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    prog: str | None = None,
) -> TrainOptions:
    """Parse ``argv`` like a SageMaker container would pass it; unknown flags are errors,
    except ``sagemaker_*`` ones that older SDKs add for their own use."""
    parser = build_parser(prog=prog)
    args, unknown = parser.parse_known_args(argv)
    leftover = _drop_sagemaker_internal(unknown)
    if leftover:
        parser.error(f"unrecognized arguments: {' '.join(leftover)}")
    try:
        return resolve_options(args, environ)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))


def _drop_sagemaker_internal(unknown: list[str]) -> list[str]:
    """``unknown`` without the ``--sagemaker_*`` flags and their values."""
    leftover: list[str] = []
    skip_value = False  # the previous item was a --sagemaker_* flag without "="
    for item in unknown:
        internal = item.startswith("--sagemaker_")
        if not internal and not (skip_value and not item.startswith("--")):
            leftover.append(item)
        skip_value = internal and "=" not in item
    return leftover
