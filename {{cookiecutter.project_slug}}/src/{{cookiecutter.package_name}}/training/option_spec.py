"""The training options, each defined once.

Everything else is derived from :data:`OPTIONS`: which keys ``config.toml`` accepts in its
[model], [data] and [train] tables (and their types and ranges), the ``--flags`` of both entry
points and of ``train``, the checks on the effective values, the strings SageMaker jobs receive
as hyperparameters, and the fingerprint that tells whether a checkpoint belongs to this run.
Adding an option is adding one :class:`Option` here (plus using its value where it matters).

This module imports nothing heavy: the config loader uses it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

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
        number = float(_unquote(str(value)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    return number


def parse_str(value: Any) -> str:
    return _unquote(str(value))


_PARSERS: dict[type, Callable[[Any], Any]] = {
    bool: parse_bool,
    int: parse_int,
    float: parse_float,
    str: parse_str,
}


@dataclass(frozen=True)
class Option:
    """One training option.

    ``config`` is the ``table.key`` of config.toml that gives the default (else ``default``).
    ``low``/``high`` bound numbers (``open_low``/``open_high`` make a bound exclusive).
    ``identity``: changing it changes what is trained, so it is part of the run fingerprint and
    a checkpoint made with another value is not resumed automatically.
    ``hyperparameter``: sent to SageMaker jobs (folders come from the container instead).
    """

    name: str
    kind: type
    help: str
    default: Any = None
    config: str | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    identity: bool = False
    hyperparameter: bool = True

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def metavar(self) -> str:
        return "{" + ",".join(self.choices) + "}" if self.choices else self.kind.__name__

    def parse(self, value: Any) -> Any:
        """The tolerant parser: command-line text, SageMaker strings or TOML values."""
        parsed = _PARSERS[self.kind](value)
        if self.choices:
            parsed = parsed.lower()
            if parsed not in self.choices:
                raise argparse.ArgumentTypeError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        return parsed

    def check_toml(self, value: Any) -> Any:
        """A value as written in config.toml: strict types (a typo'd string is not a number)."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and self.kind is not bool) or not isinstance(value, self.kind):
            raise TypeError(f"expected {self.kind.__name__}, got {value!r}")
        return self.parse(value)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or None."""
        if value is None or self.kind not in (int, float):
            return None
        too_low = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        if not (too_low or too_high):
            return None
        return f"must be {self.range_text()}, got {value}"

    def range_text(self) -> str:
        if self.low is not None and self.high is not None:
            left = "(" if self.open_low else "["
            right = ")" if self.open_high else "]"
            return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            if self.low == 0 and not self.open_low:
                return "not negative"
            if self.low == 0 and self.open_low:
                return "positive"
            return f"{'above' if self.open_low else 'at least'} {_number(self.low)}"
        if self.high is not None:
            return f"{'below' if self.open_high else 'at most'} {_number(self.high)}"
        return "any value"

    def to_hyperparameter(self, value: Any) -> str:
        """The string a SageMaker job passes back to :meth:`parse`."""
        return str(value).lower() if isinstance(value, bool) else str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


OPTIONS: tuple[Option, ...] = (
    # -- what is trained on and from -------------------------------------------------------------
    Option(
        "model_name_or_path",
        str,
        "hub id or local folder of the base model",
        config="model.base_model",
        identity=True,
    ),
    Option("train_dir", str, "training data: a file or a folder holding one data file", hyperparameter=False),
    Option("validation_dir", str, "validation data (file or folder)", hyperparameter=False),
    Option("test_dir", str, "test data (file or folder); optional, 'none' to skip", hyperparameter=False),
    Option(
        "max_seq_length",
        int,
        "longer texts are truncated to this many tokens",
        128,
        config="model.max_seq_length",
        low=1,
        identity=True,
    ),
    Option(
        "trust_remote_code",
        bool,
        "allow code shipped with the model repository",
        False,
        config="model.trust_remote_code",
    ),
    Option(
        "dev_fraction",
        float,
        "train on this stratified fraction of the training split",
        1.0,
        config="data.dev_fraction",
        low=0,
        high=1,
        open_low=True,
        identity=True,
    ),
    # -- where results go ------------------------------------------------------------------------
    Option(
        "model_dir", str, "where the trained model is saved (default: the run's folder)", hyperparameter=False
    ),
    Option(
        "output_data_dir",
        str,
        "where metrics, hyperparameters and plots are written (default: the run's folder)",
        hyperparameter=False,
    ),
    Option(
        "checkpoint_dir",
        str,
        "folder of run checkpoints (each run has a subfolder)",
        "checkpoints",
        config="train.checkpoint_dir",
        hyperparameter=False,
    ),
    Option(
        "resume",
        str,
        "'auto': continue the newest unfinished run with the same fingerprint; "
        "'no': start a new run; or a run id / run folder / checkpoint folder",
        "auto",
    ),
    Option("run_id", str, "name of this run (default: time and fingerprint; on SageMaker the job name)", ""),
    # -- how it is trained -----------------------------------------------------------------------
    Option(
        "epochs",
        float,
        "number of epochs (may be fractional)",
        3.0,
        config="train.epochs",
        low=0,
        identity=True,
    ),
    Option(
        "max_steps", int, "stop after this many optimizer steps (-1: use epochs)", -1, low=-1, identity=True
    ),
    Option(
        "learning_rate",
        float,
        "peak learning rate",
        5e-5,
        config="train.learning_rate",
        low=0,
        open_low=True,
        identity=True,
    ),
    Option(
        "batch_size",
        int,
        "training batch size per device",
        32,
        config="train.batch_size",
        low=1,
        identity=True,
    ),
    Option(
        "eval_batch_size", int, "evaluation batch size per device", 64, config="train.eval_batch_size", low=1
    ),
    Option(
        "weight_decay", float, "AdamW weight decay", 0.01, config="train.weight_decay", low=0, identity=True
    ),
    Option(
        "warmup_ratio",
        float,
        "share of steps with linear warm-up",
        0.1,
        config="train.warmup_ratio",
        low=0,
        high=1,
        open_high=True,
        identity=True,
    ),
    Option(
        "gradient_accumulation_steps",
        int,
        "batches per optimizer step",
        1,
        config="train.gradient_accumulation_steps",
        low=1,
        identity=True,
    ),
    Option(
        "max_grad_norm",
        float,
        "gradient clipping norm (0: off)",
        1.0,
        config="train.max_grad_norm",
        low=0,
        identity=True,
    ),
    Option("seed", int, "random seed", 42, config="train.seed", identity=True),
    Option(
        "mixed_precision",
        str,
        "auto (bf16 if the GPU supports it, else fp16; fp32 on CPU), no, fp16 or bf16",
        "auto",
        config="train.mixed_precision",
        choices=("auto", "no", "fp16", "bf16"),
        identity=True,
    ),
    Option(
        "class_weights",
        str,
        "none: plain cross-entropy; balanced: weight each class by "
        "n_examples / (n_classes * n_class_examples) in the training split (skewed data)",
        "none",
        config="train.class_weights",
        choices=("none", "balanced"),
        identity=True,
    ),
    Option(
        "eval_strategy",
        str,
        "evaluate (and checkpoint) every epoch or every eval_steps steps",
        "epoch",
        config="train.eval_strategy",
        choices=("epoch", "steps"),
        identity=True,
    ),
    Option(
        "eval_steps",
        int,
        "optimizer steps between evaluations (eval_strategy=steps)",
        500,
        config="train.eval_steps",
        low=1,
        identity=True,
    ),
    Option(
        "early_stopping_patience",
        int,
        "stop after this many evaluations without improvement (0: never)",
        3,
        config="train.early_stopping_patience",
        low=0,
        identity=True,
    ),
    Option(
        "metric_for_best_model",
        str,
        "validation metric that picks the best checkpoint",
        "accuracy",
        config="train.metric_for_best_model",
        choices=("accuracy", "macro_f1", "loss"),
        identity=True,
    ),
    Option(
        "group_by_length",
        bool,
        "batch texts of similar length together",
        True,
        config="train.group_by_length",
        identity=True,
    ),
    Option(
        "padding",
        str,
        "dynamic: pad each batch to its longest text; longest: pad every text to "
        "the longest in the split (the old workshop's way, for comparison only)",
        "dynamic",
        choices=("dynamic", "longest"),
        identity=True,
    ),
    Option(
        "logging_steps", int, "optimizer steps between log lines", 50, config="train.logging_steps", low=1
    ),
    Option(
        "save_total_limit",
        int,
        "checkpoints kept per run (the best one is always kept)",
        2,
        config="train.save_total_limit",
        low=1,
    ),
    Option("num_workers", int, "data-loader worker processes", 0, low=0),
    # -- records ---------------------------------------------------------------------------------
    Option(
        "report_to",
        str,
        "experiment tracking: 'mlflow' (local ./mlruns unless "
        "MLFLOW_TRACKING_URI is set), 'none', or a comma-separated list of Trainer integrations "
        "(e.g. mlflow,tensorboard; train_torch supports mlflow only)",
        "mlflow",
        config="train.report_to",
    ),
)
BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def config_options(table: str) -> dict[str, Option]:
    """Options whose default lives in ``[table]`` of config.toml, by their key there."""
    found = {}
    for option in OPTIONS:
        if option.config and option.config.split(".", 1)[0] == table:
            found[option.config.split(".", 1)[1]] = option
    return found


class OptionValues(Mapping[str, Any]):
    """Read-only option values with attribute access (``values.batch_size``)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._values!r})"

    def replace(self, **changes: Any) -> Self:
        unknown = set(changes) - set(self._values)
        if unknown:
            raise KeyError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return type(self)({**self._values, **changes})

    def to_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in self._values.items()
        }
