"""Training options: config defaults, SageMaker container contract, command-line overrides.

Precedence, lowest first: ``config.toml`` ([model], [data], [train]) -> SageMaker environment
(``SM_CHANNEL_*``, ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``, ``SM_HPS``) -> ``--key value`` flags.
SageMaker passes every hyperparameter as a string (``--epochs "3"``, ``--group_by_length "True"``),
so every value goes through the tolerant parsers below, whichever way it arrived.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, ProjectConfig, load_config

log = logging.getLogger(__name__)

SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
# Outside SageMaker, relative to the project root (the config file's folder).
LOCAL_MODEL_DIR = "outputs/model"
LOCAL_OUTPUT_DIR = "outputs"
SPLITS = ("train", "validation", "test")
MIXED_PRECISION_CHOICES = ("auto", "no", "fp16", "bf16")
EVAL_STRATEGIES = ("epoch", "steps")
PADDING_CHOICES = ("dynamic", "longest")
METRIC_CHOICES = ("accuracy", "macro_f1", "loss")

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", "none", ""}


def _unquote(text: str) -> str:
    # SDK v2 JSON-encoded hyperparameters; a value can still arrive wrapped in quotes.
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def parse_bool(value: Any) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` in any case, quoted or not."""
    if isinstance(value, bool):
        return value
    text = _unquote(str(value)).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, yes/no, 1/0), got {value!r}")


def parse_int(value: Any) -> int:
    """Integers, also written as ``"3.0"`` or ``"1e3"`` as long as they are whole."""
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    text = _unquote(str(value))
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(number)


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
    try:
        return float(_unquote(str(value)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None


def parse_str(value: Any) -> str:
    return _unquote(str(value))


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _unquote(str(value)).lower()
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    parse.__name__ = "{" + ",".join(choices) + "}"  # shown as the metavar in --help
    return parse


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run uses; written out as the effective hyperparameters."""

    model_name_or_path: str
    train_dir: str
    validation_dir: str
    test_dir: str | None
    model_dir: str
    output_data_dir: str
    checkpoint_dir: str
    resume: str
    epochs: float
    max_steps: int
    learning_rate: float
    batch_size: int
    eval_batch_size: int
    weight_decay: float
    warmup_ratio: float
    gradient_accumulation_steps: int
    max_grad_norm: float
    seed: int
    mixed_precision: str
    eval_strategy: str
    eval_steps: int
    early_stopping_patience: int
    metric_for_best_model: str
    group_by_length: bool
    padding: str
    logging_steps: int
    save_total_limit: int
    max_seq_length: int
    dev_fraction: float
    trust_remote_code: bool
    num_workers: int
    label_names: tuple[str, ...]
    text_column: str
    label_column: str
    config_path: str

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["label_names"] = list(self.label_names)
        return data


@dataclass(frozen=True)
class _Option:
    name: str
    parse: Callable[[Any], Any]
    help: str
    default: Callable[[ProjectConfig], Any] | None = None


# One table of hyperparameters for both entry points, so SageMaker jobs can switch between them
# without renaming anything. Defaults that are None here are resolved from the environment.
OPTIONS: tuple[_Option, ...] = (
    _Option(
        "model_name_or_path",
        parse_str,
        "hub id or local folder of the base model",
        lambda c: c.model.base_model,
    ),
    _Option("train_dir", parse_str, "training data: a file or a folder holding one data file"),
    _Option("validation_dir", parse_str, "validation data (file or folder)"),
    _Option("test_dir", parse_str, "test data (file or folder); optional, 'none' to skip"),
    _Option("model_dir", parse_str, "where the trained model is saved"),
    _Option("output_data_dir", parse_str, "where metrics, hyperparameters and plots are written"),
    _Option("checkpoint_dir", parse_str, "checkpoint folder (resumed from automatically)"),
    _Option(
        "resume",
        parse_str,
        "'auto': newest checkpoint if any; 'no': start over; or a checkpoint folder",
        lambda c: "auto",
    ),
    _Option("epochs", parse_float, "number of epochs (may be fractional)", lambda c: c.train.epochs),
    _Option("max_steps", parse_int, "stop after this many optimizer steps (-1: use epochs)", lambda c: -1),
    _Option("learning_rate", parse_float, "peak learning rate", lambda c: c.train.learning_rate),
    _Option("batch_size", parse_int, "training batch size per device", lambda c: c.train.batch_size),
    _Option(
        "eval_batch_size", parse_int, "evaluation batch size per device", lambda c: c.train.eval_batch_size
    ),
    _Option("weight_decay", parse_float, "AdamW weight decay", lambda c: c.train.weight_decay),
    _Option(
        "warmup_ratio", parse_float, "share of steps with linear warm-up", lambda c: c.train.warmup_ratio
    ),
    _Option(
        "gradient_accumulation_steps",
        parse_int,
        "batches per optimizer step",
        lambda c: c.train.gradient_accumulation_steps,
    ),
    _Option("max_grad_norm", parse_float, "gradient clipping norm (0: off)", lambda c: c.train.max_grad_norm),
    _Option("seed", parse_int, "random seed", lambda c: c.train.seed),
    _Option(
        "mixed_precision",
        _choice(*MIXED_PRECISION_CHOICES),
        "auto (bf16 if the GPU supports it, else fp16; fp32 on CPU), no, fp16 or bf16",
        lambda c: c.train.mixed_precision,
    ),
    _Option(
        "eval_strategy",
        _choice(*EVAL_STRATEGIES),
        "evaluate (and checkpoint) every epoch or every eval_steps steps",
        lambda c: c.train.eval_strategy,
    ),
    _Option(
        "eval_steps",
        parse_int,
        "optimizer steps between evaluations (eval_strategy=steps)",
        lambda c: c.train.eval_steps,
    ),
    _Option(
        "early_stopping_patience",
        parse_int,
        "stop after this many evaluations without improvement (0: never)",
        lambda c: c.train.early_stopping_patience,
    ),
    _Option(
        "metric_for_best_model",
        _choice(*METRIC_CHOICES),
        "validation metric that picks the best checkpoint",
        lambda c: c.train.metric_for_best_model,
    ),
    _Option(
        "group_by_length",
        parse_bool,
        "batch texts of similar length together",
        lambda c: c.train.group_by_length,
    ),
    _Option(
        "padding",
        _choice(*PADDING_CHOICES),
        "dynamic: pad each batch to its longest text; longest: pad every text to the longest "
        "in the split (the old workshop's way, for comparison only)",
        lambda c: "dynamic",
    ),
    _Option("logging_steps", parse_int, "optimizer steps between log lines", lambda c: c.train.logging_steps),
    _Option(
        "save_total_limit",
        parse_int,
        "checkpoints kept (the best one is always kept)",
        lambda c: c.train.save_total_limit,
    ),
    _Option(
        "max_seq_length",
        parse_int,
        "longer texts are truncated to this many tokens",
        lambda c: c.model.max_seq_length,
    ),
    _Option(
        "dev_fraction",
        parse_float,
        "train on this stratified fraction of the training split",
        lambda c: c.data.dev_fraction,
    ),
    _Option(
        "trust_remote_code",
        parse_bool,
        "allow code shipped with the model repository",
        lambda c: c.model.trust_remote_code,
    ),
    _Option("num_workers", parse_int, "data-loader worker processes", lambda c: 0),
)
_BY_NAME = {option.name: option for option in OPTIONS}


def build_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """The shared parser; every option defaults to None so later layers can tell what was set."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        # Abbreviations would let a SageMaker hyperparameter silently match the wrong option.
        allow_abbrev=False,
    )
    add_training_arguments(parser)
    return parser


def add_training_arguments(parser: argparse.ArgumentParser, with_config: bool = True) -> None:
    """Add every hyperparameter (``--learning_rate`` or ``--learning-rate``) and ``--config``
    (left out where a parent parser already has it)."""
    if with_config:
        parser.add_argument("--config", help="configuration file (default: the project's config.toml)")
    for option in OPTIONS:
        flags = [f"--{option.name}"]
        if "_" in option.name:
            flags.append(f"--{option.name.replace('_', '-')}")
        parser.add_argument(
            *flags,
            dest=option.name,
            type=option.parse,
            default=None,
            help=option.help,
            metavar=option.parse.__name__.removeprefix("parse_"),
        )


def to_argv(args: argparse.Namespace) -> list[str]:
    """The ``--key value`` flags that were given, to hand to a child process (torchrun)."""
    argv = []
    for option in OPTIONS:
        value = getattr(args, option.name, None)
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            argv += [f"--{option.name}", text]
    return argv


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
    if not isinstance(values, dict):
        return {}
    known = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name in _BY_NAME:
            try:
                known[name] = _BY_NAME[name].parse(value)
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentTypeError(f"SM_HPS[{key!r}]: {error}") from None
    return known


def _channel(environ: Mapping[str, str], split: str) -> str | None:
    return environ.get(f"SM_CHANNEL_{split.upper()}")


def log_ignored_channels(environ: Mapping[str, str]) -> None:
    """Channels such as ``code`` and ``sm_drivers`` (added by SDK v3) are not training data."""
    ignored = sorted(
        key[len("SM_CHANNEL_") :].lower()
        for key in environ
        if key.startswith("SM_CHANNEL_") and key[len("SM_CHANNEL_") :].lower() not in SPLITS
    )
    if ignored:
        log.info("ignoring input channel(s) that hold no training data: %s", ", ".join(ignored))


def resolve_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> TrainOptions:
    """Combine config, SageMaker environment and flags into checked :class:`TrainOptions`."""
    environ = os.environ if environ is None else environ
    config = load_config(getattr(args, "config", None))
    given = {name: getattr(args, name) for name in _BY_NAME if getattr(args, name, None) is not None}
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.default is not None:
            values[option.name] = option.default(config)
    values.update(_sagemaker_hyperparameters(environ))

    prepared = Path(config.data.prepared_dir)
    # Under the container contract only the channels SageMaker mounted exist; a local
    # data/prepared folder in the working directory must not stand in for a missing one.
    in_container = "SM_MODEL_DIR" in environ or any(k.startswith("SM_CHANNEL_") for k in environ)
    for split in SPLITS:
        local = "none" if in_container else str(prepared / split)
        values[f"{split}_dir"] = _channel(environ, split) or local
    values["model_dir"] = environ.get("SM_MODEL_DIR") or str(config.root / LOCAL_MODEL_DIR)
    values["output_data_dir"] = environ.get("SM_OUTPUT_DATA_DIR") or str(config.root / LOCAL_OUTPUT_DIR)
    # SageMaker creates /opt/ml/checkpoints (synced to S3) when the job has a checkpoint
    # location; without one, checkpoints there would not survive the instance anyway.
    values["checkpoint_dir"] = (
        SAGEMAKER_CHECKPOINT_DIR if Path(SAGEMAKER_CHECKPOINT_DIR).is_dir() else config.train.checkpoint_dir
    )
    values.update(given)

    # A missing test split is fine unless it was asked for explicitly; "none" skips it.
    skip = str(values["test_dir"]).strip().lower() in {"", "none"}
    if skip or ("test_dir" not in given and not Path(values["test_dir"]).exists()):
        values["test_dir"] = None

    options = TrainOptions(
        **values,
        label_names=config.data.label_names,
        text_column=config.data.text_column,
        label_column=config.data.label_column,
        config_path=config.path,
    )
    check_options(options)
    return options


class OptionError(ConfigError):
    """An option value is out of range; the message names the option."""


def check_options(options: TrainOptions) -> None:
    problems = []
    positive = (
        "batch_size",
        "eval_batch_size",
        "gradient_accumulation_steps",
        "max_seq_length",
        "logging_steps",
        "eval_steps",
    )
    for split in ("train", "validation"):
        if getattr(options, f"{split}_dir") == "none":
            problems.append(
                f"no {split} data: the SageMaker job has no '{split}' channel "
                f"(SM_CHANNEL_{split.upper()} is not set) and --{split}_dir was not given"
            )
    for name in positive:
        if getattr(options, name) < 1:
            problems.append(f"--{name} must be at least 1, got {getattr(options, name)}")
    if options.epochs <= 0 and options.max_steps <= 0:
        problems.append(f"--epochs must be positive (or set --max_steps), got {options.epochs}")
    if options.learning_rate <= 0:
        problems.append(f"--learning_rate must be positive, got {options.learning_rate}")
    if not 0.0 <= options.warmup_ratio < 1.0:
        problems.append(f"--warmup_ratio must be in [0, 1), got {options.warmup_ratio}")
    if not 0.0 < options.dev_fraction <= 1.0:
        problems.append(f"--dev_fraction must be in (0, 1], got {options.dev_fraction}")
    for name in ("weight_decay", "max_grad_norm", "early_stopping_patience", "num_workers"):
        if getattr(options, name) < 0:
            problems.append(f"--{name} must not be negative, got {getattr(options, name)}")
    if options.save_total_limit < 1:
        problems.append(f"--save_total_limit must be at least 1, got {options.save_total_limit}")
    if problems:
        raise OptionError("; ".join(problems))


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
    raise AssertionError("unreachable")  # pragma: no cover


def _drop_sagemaker_internal(unknown: list[str]) -> list[str]:
    leftover = []
    skip_value = False
    for item in unknown:
        if skip_value:
            skip_value = False
            if not item.startswith("--"):
                continue
        key = item[2:].split("=", 1)[0] if item.startswith("--") else ""
        if key.startswith("sagemaker_"):
            skip_value = "=" not in item
            continue
        leftover.append(item)
    return leftover
