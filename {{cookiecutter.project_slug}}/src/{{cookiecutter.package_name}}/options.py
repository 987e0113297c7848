"""The training options: one typed field each of :class:`TrainOptions`.

From those fields come the config.toml keys of [model], [data] and [train] (types, ranges), the
``--flags``, the range checks, the SageMaker hyperparameter strings (read back from ``SM_HPS``)
and a run's fingerprint. Adding an option is adding one field here; by default it is a [train]
key. Being typed, a misspelt option is a mypy error. Standard library only (config.py uses it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from . import label_schemes

T = TypeVar("T")


def option(
    default: T,
    help: str,
    *,
    config: str | None = "train",
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    identity: bool = False,
    hyperparameter: bool = True,
) -> T:
    """An option field: a flag, and a key of the config.toml table ``config`` (``"table.key"``
    where the key is not the option's name; None: flag only). ``low``/``high`` bound numbers
    (``open_*``: exclusive). ``identity``: part of the run fingerprint, so a checkpoint made with
    another value is not resumed automatically. ``hyperparameter``: sent to SageMaker jobs."""
    spec = {"help": help, "config": config, "low": low, "high": high, "open_low": open_low}
    spec |= {"open_high": open_high, "identity": identity, "hyperparameter": hyperparameter}
    return field(default=default, metadata=spec)


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run uses; written out as the effective hyperparameters."""

    # -- what is trained on and from -------------------------------------------------------------
    model_name_or_path: str = option(
        "", "hub id or local folder of the base model", config="model.base_model", identity=True
    )
    train_dir: str = option(
        "", "training data: a file or a folder holding one data file", config=None, hyperparameter=False
    )
    validation_dir: str = option("", "validation data (file or folder)", config=None, hyperparameter=False)
    test_dir: str | None = option(
        None, "test data (file or folder); optional, 'none' to skip", config=None, hyperparameter=False
    )
    max_seq_length: int = option(
        128, "longer texts are truncated to this many tokens", config="model", low=1, identity=True
    )
    trust_remote_code: bool = option(False, "allow code shipped with the model repository", config="model")
    dev_fraction: float = option(
        1.0,
        "train on this stratified fraction of the training split",
        config="data",
        low=0,
        high=1,
        open_low=True,
        identity=True,
    )
    # -- where results go ------------------------------------------------------------------------
    model_dir: str = option(
        "", "where the trained model is saved (default: the run's folder)", config=None, hyperparameter=False
    )
    output_data_dir: str = option(
        "",
        "where metrics, hyperparameters and plots are written (default: the run's folder)",
        config=None,
        hyperparameter=False,
    )
    checkpoint_dir: str = option(
        "checkpoints", "folder of run checkpoints (each run has a subfolder)", hyperparameter=False
    )
    resume: str = option(
        "auto",
        "'auto': continue the newest unfinished run with the same fingerprint; "
        "'no': start a new run; or a run id / run folder / checkpoint folder",
    )
    # Not a config key: one fixed name would make every later run collide with the first.
    run_id: str = option(
        "", "name of this run (default: time and fingerprint; on SageMaker the job name)", config=None
    )
    # -- how it is trained -----------------------------------------------------------------------
    epochs: float = option(3.0, "number of epochs (may be fractional)", low=0, identity=True)
    max_steps: int = option(
        -1, "stop after this many optimizer steps (-1: use epochs)", low=-1, identity=True
    )
    learning_rate: float = option(5e-5, "peak learning rate", low=0, open_low=True, identity=True)
    batch_size: int = option(32, "training batch size per device", low=1, identity=True)
    eval_batch_size: int = option(64, "evaluation batch size per device", low=1)
    weight_decay: float = option(0.01, "AdamW weight decay", low=0, identity=True)
    warmup_ratio: float = option(
        0.1, "share of steps with linear warm-up", low=0, high=1, open_high=True, identity=True
    )
    gradient_accumulation_steps: int = option(1, "batches per optimizer step", low=1, identity=True)
    max_grad_norm: float = option(1.0, "gradient clipping norm (0: off)", low=0, identity=True)
    seed: int = option(42, "random seed", identity=True)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = option(
        "auto", "auto (bf16 if the GPU supports it, else fp16; fp32 on CPU), no, fp16 or bf16", identity=True
    )
    class_weights: Literal["none", "balanced"] = option(
        "none",
        "none: plain cross-entropy; balanced: weight each class by "
        "n_examples / (n_classes * n_class_examples) in the training split (skewed data)",
        identity=True,
    )
    eval_strategy: Literal["epoch", "steps"] = option(
        "epoch", "evaluate (and checkpoint) every epoch or every eval_steps steps", identity=True
    )
    eval_steps: int = option(
        500, "optimizer steps between evaluations (eval_strategy=steps)", low=1, identity=True
    )
    early_stopping_patience: int = option(
        3, "stop after this many evaluations without improvement (0: never)", low=0, identity=True
    )
    # Every scheme's metrics; a run checks the choice against its own scheme's (check_metric).
    metric_for_best_model: Literal[
        "accuracy",
        "macro_f1",
        "micro_f1",
        "micro_precision",
        "micro_recall",
        "hamming_loss",
        "exact_match",
        "loss",
    ] = option(
        "accuracy",
        "validation metric that picks the best checkpoint (single_label: accuracy or macro_f1; "
        "multi_label: micro_f1, macro_f1, micro_precision, micro_recall, hamming_loss or exact_match; "
        "or loss)",
        identity=True,
    )
    group_by_length: bool = option(True, "batch texts of similar length together", identity=True)
    padding: Literal["dynamic", "longest"] = option(
        "dynamic",
        "dynamic: pad each batch to its longest text; longest: pad every text to "
        "the longest in the split (the old workshop's way, for comparison only)",
        identity=True,
    )
    logging_steps: int = option(50, "optimizer steps between log lines", low=1)
    save_total_limit: int = option(2, "checkpoints kept per run (the best one is always kept)", low=1)
    num_workers: int = option(0, "data-loader worker processes", low=0)
    # -- records ---------------------------------------------------------------------------------
    report_to: str = option(
        "mlflow",
        "experiment tracking: 'mlflow' (local ./mlruns unless "
        "MLFLOW_TRACKING_URI is set), 'none', or a comma-separated list of Trainer integrations "
        "(e.g. mlflow,tensorboard; train_torch supports mlflow only)",
    )
    # -- not options: what every run carries from config.toml's [data] table and its path -------
    label_names: tuple[str, ...] = ()
    text_column: str = ""
    label_column: str = ""
    task: str = "single_label"
    text_pair_column: str = ""
    label_layout: str = "column"
    label_delimiter: str = "|"
    config_path: str = ""

    @property
    def label_scheme(self) -> label_schemes.LabelScheme:
        """The label scheme of the project's ``[data]`` task."""
        return label_schemes.for_project(self.task, self.label_delimiter)

    @property
    def pair_column(self) -> str | None:
        """The column of each example's second text (task "text_pair"), else None."""
        return self.text_pair_column if self.task == "text_pair" else None

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


# -- parsing: tolerant of SageMaker's strings, strict for TOML ----------------------------------
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
    """Integers, also written as ``"3.0"`` or ``"1e3"`` as long as they are whole (a bool is not)."""
    if isinstance(value, int) and not isinstance(value, bool):
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


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Option:
    """One option as read from its field: its type and the ``option()`` settings."""

    name: str
    kind: type
    choices: tuple[str, ...]
    help: str
    config: str | None
    low: float | None
    high: float | None
    open_low: bool
    open_high: bool
    identity: bool
    hyperparameter: bool

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def table(self) -> str | None:
        return self.config.split(".", 1)[0] if self.config else None

    @property
    def key(self) -> str:
        """The key in its config.toml table."""
        return self.config.split(".", 1)[1] if self.config and "." in self.config else self.name

    def parse(self, value: Any) -> Any:
        """The tolerant parser: command-line text, SageMaker strings or TOML values."""
        parsed = _PARSERS[self.kind](value)
        if self.choices:
            parsed = parsed.lower()
            if parsed not in self.choices:
                raise argparse.ArgumentTypeError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        return parsed

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
            if self.low == 0:
                return "positive" if self.open_low else "not negative"
            return f"{'above' if self.open_low else 'at least'} {_number(self.low)}"
        if self.high is not None:
            return f"{'below' if self.open_high else 'at most'} {_number(self.high)}"
        return "any value"


def check_type(value: Any, kind: type) -> Any:
    """A TOML value checked against ``kind``, strictly (a typo'd string is not a number; a bool is
    no int); an int is taken where a float is expected."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value


def _to_text(value: Any) -> str:
    """The string a SageMaker job (or a torchrun child) parses back to ``value``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _option(spec: dataclasses.Field[Any], hint: Any) -> Option:
    # ``str | None`` is a str option that may be unset; ``Literal[...]`` a str with choices.
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    choices: tuple[str, ...] = ()
    if get_origin(hint) is Literal:
        choices, hint = get_args(hint), str
    return Option(spec.name, hint, choices, **spec.metadata)


_HINTS = get_type_hints(TrainOptions)
OPTIONS: tuple[Option, ...] = tuple(
    _option(spec, _HINTS[spec.name]) for spec in dataclasses.fields(TrainOptions) if spec.metadata
)
BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
HYPERPARAMETERS: tuple[str, ...] = tuple(option.name for option in OPTIONS if option.hyperparameter)


def config_keys(table: str) -> dict[str, Option]:
    """Options set in ``[table]`` of config.toml, by their key there."""
    return {option.key: option for option in OPTIONS if option.table == table}


def table_values(options: TrainOptions, table: str) -> dict[str, Any]:
    """``[table]``'s options as config.toml names them."""
    return {key: getattr(options, option.name) for key, option in config_keys(table).items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option as ``--learning_rate`` (and ``--learning-rate``), None when not given so that
    later layers can tell what was set."""
    for option in OPTIONS:
        flags = [option.flag]
        if "_" in option.name:
            flags.append(f"--{option.name.replace('_', '-')}")
        range_note = f" ({option.range_text()})" if option.low is not None or option.high is not None else ""
        parser.add_argument(
            *flags,
            dest=option.name,
            type=option.parse,
            default=None,
            help=option.help + range_note,
            metavar="{" + ",".join(option.choices) + "}" if option.choices else option.kind.__name__,
        )


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given as flags."""
    return {name: getattr(args, name) for name in BY_NAME if getattr(args, name, None) is not None}


def to_argv(args: argparse.Namespace) -> list[str]:
    """The ``--key value`` flags that were given, to hand to a child process (torchrun)."""
    argv = []
    for name, value in given(args).items():
        argv += [BY_NAME[name].flag, _to_text(value)]
    return argv


def to_hyperparameters(options: TrainOptions) -> dict[str, str]:
    """The options SageMaker jobs receive, as strings; an empty value (no run id) is left out."""
    values = {name: getattr(options, name) for name in HYPERPARAMETERS}
    return {name: _to_text(value) for name, value in values.items() if value not in (None, "")}


def from_hyperparameters(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The known options among SageMaker's hyperparameters (keys with '-' or '_'), parsed;
    other keys are the SDK's own."""
    known = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name in BY_NAME:
            try:
                known[name] = BY_NAME[name].parse(value)
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentTypeError(f"{where}[{key!r}]: {error}") from None
    return known


def range_problems(options: TrainOptions) -> list[str]:
    """Every out-of-range value, each naming its flag."""
    problems = [(option.flag, option.problem(getattr(options, option.name))) for option in OPTIONS]
    return [f"{flag} {problem}" for flag, problem in problems if problem]


def identity_values(options: TrainOptions) -> dict[str, Any]:
    """The options that change what is trained (``identity=True``)."""
    return {option.name: getattr(options, option.name) for option in OPTIONS if option.identity}
