"""Load the project's single configuration file, ``config.toml`` at the project root.

Each TOML table maps to a frozen dataclass. Unknown keys and wrongly typed values are errors
that name the file, table and key, because a typo would otherwise silently fall back to a default.

Relative paths in the file (dataset, prepared data, checkpoints, a local base model) mean "next
to the config file", so every command behaves the same from any working directory, and the
installed package itself carries no paths of the machine it was built on.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

CONFIG_ENV_VAR = f"{__package__.upper()}_CONFIG"
CONFIG_FILE_NAME = "config.toml"
# Dataset sources that are not paths.
BUILTIN_SOURCES = ("nsmc", "nsmc-sample")
LABEL_FORMATS = ("auto", "ids", "names")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or holds an invalid value."""


@dataclass(frozen=True)
class ProjectSection:
    name: str
    slug: str
    package: str


@dataclass(frozen=True)
class DataSection:
    source: str
    text_column: str
    label_column: str
    label_names: tuple[str, ...]
    label_format: str = "auto"
    prepared_dir: str = "data/prepared"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 42
    dev_fraction: float = 1.0


@dataclass(frozen=True)
class ModelSection:
    base_model: str
    max_seq_length: int = 128
    trust_remote_code: bool = False


@dataclass(frozen=True)
class TrainSection:
    epochs: float = 3
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    mixed_precision: str = "auto"
    eval_strategy: str = "epoch"
    eval_steps: int = 500
    early_stopping_patience: int = 3
    metric_for_best_model: str = "accuracy"
    group_by_length: bool = True
    logging_steps: int = 50
    checkpoint_dir: str = "checkpoints"
    save_total_limit: int = 2


@dataclass(frozen=True)
class SageMakerSection:
    region: str = "ap-northeast-2"
    train_instance_type: str = "ml.g5.2xlarge"
    train_instance_count: int = 1
    inference_instance_type: str = "ml.g4dn.xlarge"
    role: str = ""
    bucket: str = ""
    # Hugging Face DLC versions; the triple must exist in the SageMaker SDK's image table.
    transformers_version: str = "5.3.0"
    pytorch_version: str = "2.9.0"
    py_version: str = "py312"
    # Empty: the inference DLC closest to the training transformers version (same major).
    inference_transformers_version: str = ""
    inference_pytorch_version: str = ""
    entry_point: str = "train_hf"
    output_path: str = ""
    use_spot: bool = False
    max_run_seconds: int = 86400
    max_wait_seconds: int = 172800
    volume_size_gb: int = 50
    distribution: str = "auto"
    track_experiments: bool = True
    experiment_name: str = ""
    endpoint_name: str = ""


@dataclass(frozen=True)
class ProjectConfig:
    project: ProjectSection
    data: DataSection
    model: ModelSection
    train: TrainSection = field(default_factory=TrainSection)
    sagemaker: SageMakerSection = field(default_factory=SageMakerSection)
    path: str = ""

    @property
    def root(self) -> Path:
        """The folder of the config file: the project root, where run outputs go by default."""
        return Path(self.path).resolve().parent

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (tuples as lists), e.g. for writing next to a trained model."""
        data = dataclasses.asdict(self)
        data.pop("path", None)
        return data


SECTIONS = {f.name: f.type for f in fields(ProjectConfig) if f.name != "path"}


def _coerce(value: Any, expected: Any, where: str) -> Any:
    """Check a TOML value against a field type; ints are accepted where floats are expected."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {value!r}")
    return value


def _section(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    hints = get_type_hints(cls)
    unknown = sorted(set(table) - set(hints))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(hints)}")
    values = {key: _coerce(value, hints[key], f"{where}.{key}") for key, value in table.items()}
    try:
        return cls(**values)
    except TypeError as error:
        missing = [
            f.name
            for f in fields(cls)
            if f.name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}") from error


def _names_this_package(path: Path) -> bool:
    """Whether ``path`` is a config file of this package (not another project's config.toml)."""
    try:
        with open(path, "rb") as handle:
            project = tomllib.load(handle).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(project, dict) and project.get("package") == __package__


def default_config_path() -> Path:
    """The file used when --config is not given.

    In order: the environment variable; a ``config.toml`` of this package in the working
    directory or one of its parents; the project root of a source checkout (editable installs,
    so commands work from anywhere); a copy next to the modules (the staged source of a
    SageMaker job).
    """
    override = os.environ.get(CONFIG_ENV_VAR)
    if override:
        return Path(override)
    cwd = Path.cwd()
    candidates = [folder / CONFIG_FILE_NAME for folder in (cwd, *cwd.parents)]
    module_dir = Path(__file__).resolve().parent
    candidates += [module_dir.parents[1] / CONFIG_FILE_NAME, module_dir / CONFIG_FILE_NAME]
    for candidate in candidates:
        if candidate.is_file() and _names_this_package(candidate):
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE_NAME} of the {__package__!r} project in {cwd} or its parent folders; "
        f"run the command inside the project, pass --config FILE, or set {CONFIG_ENV_VAR}"
    )


def load_config(path: str | os.PathLike[str] | None = None) -> ProjectConfig:
    """Read and validate the configuration; ``path`` defaults to :func:`default_config_path`."""
    config_path = Path(path) if path else default_config_path()
    try:
        with open(config_path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"configuration file not found: {config_path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{config_path}: not valid TOML: {error}") from error
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown table(s) [{'], ['.join(unknown)}]; known: {', '.join(SECTIONS)}"
        )
    types = get_type_hints(ProjectConfig)
    sections = {
        name: _section(types[name], raw[name], f"{config_path} [{name}]") for name in SECTIONS if name in raw
    }
    for required in ("project", "data", "model"):
        if required not in sections:
            raise ConfigError(f"{config_path}: missing table [{required}]")
    config = ProjectConfig(**sections, path=str(config_path.resolve()))
    _check(config)
    return _resolve_paths(config)


def _resolve_paths(config: ProjectConfig) -> ProjectConfig:
    """Make the file's relative paths absolute against its folder (see the module docstring)."""
    root = config.root

    def resolved(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else root / path)

    data = config.data
    source = data.source
    if source not in BUILTIN_SOURCES and not source.startswith("s3://"):
        source = resolved(source)
    base_model = config.model.base_model
    # A hub id ("org/name") looks like a relative path: only an existing folder is a path.
    if not Path(base_model).expanduser().is_absolute() and (root / base_model).is_dir():
        base_model = resolved(base_model)
    return replace(
        config,
        data=replace(data, source=source, prepared_dir=resolved(data.prepared_dir)),
        model=replace(config.model, base_model=base_model),
        train=replace(config.train, checkpoint_dir=resolved(config.train.checkpoint_dir)),
    )


def _check(config: ProjectConfig) -> None:
    where = f"{config.path} [data]"
    names = config.data.label_names
    if len(names) < 2:
        raise ConfigError(f"{where}.label_names: need at least 2 labels, got {list(names)}")
    folded = [name.strip().casefold() for name in names]
    if len(set(folded)) != len(folded) or not all(folded):
        raise ConfigError(f"{where}.label_names: names must be non-empty and unique: {list(names)}")
    if config.data.label_format not in LABEL_FORMATS:
        raise ConfigError(
            f"{where}.label_format: must be one of {', '.join(LABEL_FORMATS)}, "
            f"got {config.data.label_format!r}"
        )
    for key in ("validation_fraction", "test_fraction"):
        value = getattr(config.data, key)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{where}.{key}: must be in [0, 1), got {value}")
    if not 0.0 < config.data.dev_fraction <= 1.0:
        raise ConfigError(f"{where}.dev_fraction: must be in (0, 1], got {config.data.dev_fraction}")
