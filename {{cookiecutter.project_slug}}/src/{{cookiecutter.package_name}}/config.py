"""Load the project's single configuration file, ``config.toml`` at the project root.

Each TOML table maps to a frozen dataclass. Unknown keys and wrongly typed values are errors
that name the file, table and key, because a typo would otherwise silently fall back to a default.

Relative paths in the file (dataset, prepared data, checkpoints, a local base model) mean "next
to the config file", so every command behaves the same from any working directory, and the
installed package itself carries no paths of the machine it was built on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from . import label_schemes
from .errors import ConfigError
from .options import TrainOptions, check_type, config_keys, table_values

CONFIG_ENV_VAR = f"{__package__.upper()}_CONFIG"
CONFIG_FILE_NAME = "config.toml"
# Set by ``-v``; read by training processes (also those torchrun starts) to log debug messages.
VERBOSE_ENV_VAR = f"{__package__.upper()}_VERBOSE"
# Dataset sources that are not paths.
BUILTIN_SOURCES = ("nsmc", "nsmc-sample")
LABEL_FORMATS = ("auto", "ids", "names")
LABEL_LAYOUTS = ("column", "columns")


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
    # "single_label", "multi_label" or "text_pair" (label_schemes.TASKS).
    task: str = "single_label"
    # The second text of each example (task "text_pair").
    text_pair_column: str = ""
    # "column": labels in label_column; "columns": one 0/1 column per label name (multi_label).
    label_layout: str = "column"
    # Separates several labels in one label_column cell (multi_label).
    label_delimiter: str = "|"
    prepared_dir: str = "data/prepared"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 42

    @property
    def label_scheme(self) -> label_schemes.LabelScheme:
        """The label scheme of ``task``."""
        return label_schemes.for_project(self.task, self.label_delimiter)

    @property
    def pair_column(self) -> str | None:
        """The column of each example's second text, or None when an example is one text."""
        return self.text_pair_column if self.task == "text_pair" else None

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The column(s) an example's text is read from."""
        return (self.text_column,) if self.pair_column is None else (self.text_column, self.pair_column)


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
    # Empty: the inference image the container-parity test runs (serving/container.py).
    inference_transformers_version: str = ""
    inference_pytorch_version: str = ""
    entry_point: str = "train_hf"
    output_path: str = ""
    use_spot: bool = False
    max_run_seconds: int = 86400
    max_wait_seconds: int = 172800
    volume_size_gb: int = 50
    distribution: str = "auto"
    # MLflow tracking server for training jobs: a SageMaker MLflow ARN or an http(s) URL.
    mlflow_tracking_server: str = ""
    endpoint_name: str = ""


@dataclass(frozen=True)
class ProjectConfig:
    project: ProjectSection
    data: DataSection
    # The training options as the file sets them (see options.py), and the [data] values every
    # run carries (label names, columns) and this file's path.
    options: TrainOptions
    sagemaker: SageMakerSection = field(default_factory=SageMakerSection)
    path: str = ""

    @property
    def root(self) -> Path:
        """The folder of the config file: the project root, where run outputs go by default."""
        return Path(self.path).resolve().parent

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": dataclasses.asdict(self.project),
            "data": {**dataclasses.asdict(self.data), **table_values(self.options, "data")},
            "model": table_values(self.options, "model"),
            "train": table_values(self.options, "train"),
            "sagemaker": dataclasses.asdict(self.sagemaker),
        }


# Tables of config.toml; [model] and [train] hold training options only, [data] both.
SECTIONS: dict[str, type | None] = {
    "project": ProjectSection,
    "data": DataSection,
    "model": None,
    "train": None,
    "sagemaker": SageMakerSection,
}


def _coerce(value: Any, expected: Any, where: str) -> Any:
    if expected == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    try:
        return check_type(value, expected)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def _section(cls: type | None, table: Any, where: str, option_values: dict[str, Any]) -> Any:
    """A table as its dataclass; training-option keys go to ``option_values`` instead."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    table_name = where.rsplit("[", 1)[-1].rstrip("]")
    option_keys = config_keys(table_name)
    for key, option in option_keys.items():
        if key in table:
            try:
                value = option.parse(check_type(table[key], option.kind))
            except (TypeError, argparse.ArgumentTypeError) as error:
                raise ConfigError(f"{where}.{key}: {error}") from None
            problem = option.problem(value)
            if problem:
                raise ConfigError(f"{where}.{key}: {problem}")
            option_values[option.name] = value
    table = {key: value for key, value in table.items() if key not in option_keys}
    hints = get_type_hints(cls) if cls is not None else {}
    unknown = sorted(set(table) - set(hints))
    if unknown:
        known = [*hints, *option_keys]
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if cls is None:
        return None
    values = {key: _coerce(value, hints[key], f"{where}.{key}") for key, value in table.items()}
    try:
        return cls(**values)
    except TypeError as error:
        missing = [f.name for f in fields(cls) if f.name not in values and f.default is dataclasses.MISSING]
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}") from error


# Files or folders that mark a project root: the search for config.toml stops at one.
PROJECT_MARKERS = ("pyproject.toml", ".git")
# tomllib's messages end in "(at line L, column C)" (Python 3.11 and 3.12 carry no attributes).
_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's tables; invalid TOML is ``FILE:LINE:COLUMN: not valid TOML: reason``, the
    position an editor jumps to."""
    with open(path, "rb") as handle:
        try:
            return tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            message = str(error)
    match = _TOML_POSITION_RE.search(message)
    if match is None:
        raise ConfigError(f"{path}: not valid TOML: {message}")
    position = f"{path}:{match.group(1)}:{match.group(2)}"
    raise ConfigError(f"{position}: not valid TOML: {message[: match.start()]}")


def _check_owner(path: Path) -> Path:
    """``path`` itself when it is this package's config file; else an error saying whose it is."""
    project = _read_toml(path).get("project")
    package = project.get("package") if isinstance(project, dict) else None
    if package == __package__:
        return path
    owner = f"of the package {package!r}" if isinstance(package, str) else "without [project].package"
    raise ConfigError(
        f"{path} is the nearest {CONFIG_FILE_NAME} but is a config file {owner}, not of "
        f"{__package__!r}; run the command inside the {__package__!r} project, pass --config FILE, "
        f"or set {CONFIG_ENV_VAR}"
    )


def default_config_path() -> Path:
    """The file used when --config is not given.

    In order: the environment variable; else the nearest ``config.toml`` in the working
    directory or its parents, which must be this package's and valid TOML (a broken or foreign
    file is an error, never a reason to look further up, where another project may live); a
    project root without one (``pyproject.toml`` or ``.git``) ends the search with an error.
    Outside any project: the project root of a source checkout (editable installs, so commands
    work from anywhere), then a copy next to the modules (the staged source of a SageMaker job).
    """
    override = os.environ.get(CONFIG_ENV_VAR)
    if override:
        return Path(override)
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return _check_owner(candidate)
        markers = [name for name in PROJECT_MARKERS if (folder / name).exists()]
        if markers:
            raise ConfigError(
                f"no {CONFIG_FILE_NAME} in {folder}, the root of a project (it has "
                f"{' and '.join(markers)}), or below it on the way to {cwd}; run the command inside "
                f"the {__package__!r} project, pass --config FILE, or set {CONFIG_ENV_VAR}"
            )
    module_dir = Path(__file__).resolve().parent
    for candidate in (module_dir.parents[1] / CONFIG_FILE_NAME, module_dir / CONFIG_FILE_NAME):
        if candidate.is_file():
            try:
                return _check_owner(candidate)
            except ConfigError:
                continue  # a site-packages neighbour, not this package's source checkout
    raise ConfigError(
        f"no {CONFIG_FILE_NAME} of the {__package__!r} project in {cwd} or its parent folders; "
        f"run the command inside the project, pass --config FILE, or set {CONFIG_ENV_VAR}"
    )


def load_config(path: str | os.PathLike[str] | None = None) -> ProjectConfig:
    """Read and validate the configuration; ``path`` defaults to :func:`default_config_path`."""
    config_path = Path(path) if path else default_config_path()
    try:
        raw = _read_toml(config_path)
    except FileNotFoundError as error:
        raise ConfigError(f"configuration file not found: {config_path}") from error
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown table(s) [{'], ['.join(unknown)}]; known: {', '.join(SECTIONS)}"
        )
    option_values: dict[str, Any] = {}
    sections = {}
    for name, cls in SECTIONS.items():
        if name in raw:
            sections[name] = _section(cls, raw[name], f"{config_path} [{name}]", option_values)
    for required in ("project", "data", "model"):
        if required not in raw:
            raise ConfigError(f"{config_path}: missing table [{required}]")
    if not option_values.get("model_name_or_path"):
        raise ConfigError(f"{config_path} [model]: missing key(s) base_model")
    data = sections["data"]
    path = str(config_path.resolve())
    options = TrainOptions(
        **option_values,
        label_names=data.label_names,
        text_column=data.text_column,
        label_column=data.label_column,
        task=data.task,
        text_pair_column=data.text_pair_column,
        label_layout=data.label_layout,
        label_delimiter=data.label_delimiter,
        config_path=path,
    )
    config = ProjectConfig(
        project=sections["project"],
        data=data,
        options=options,
        sagemaker=sections.get("sagemaker") or SageMakerSection(),
        path=path,
    )
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
    base_model = config.options.model_name_or_path
    # A hub id ("org/name") looks like a relative path: only an existing folder is a path.
    if not Path(base_model).expanduser().is_absolute() and (root / base_model).is_dir():
        base_model = resolved(base_model)
    options = replace(
        config.options, model_name_or_path=base_model, checkpoint_dir=resolved(config.options.checkpoint_dir)
    )
    return replace(
        config,
        data=replace(data, source=source, prepared_dir=resolved(data.prepared_dir)),
        options=options,
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
    data = config.data
    if data.task not in label_schemes.TASKS:
        known = ", ".join(label_schemes.TASKS)
        raise ConfigError(f"{where}.task: must be one of {known}, got {data.task!r}")
    if data.label_layout not in LABEL_LAYOUTS:
        raise ConfigError(
            f"{where}.label_layout: must be one of {', '.join(LABEL_LAYOUTS)}, got {data.label_layout!r}"
        )
    if data.label_layout == "columns" and data.task != "multi_label":
        raise ConfigError(
            f'{where}.label_layout: "columns" (one 0/1 column per label) needs task = "multi_label"'
        )
    if data.task == "text_pair":
        pair = data.text_pair_column
        if not pair.strip():
            raise ConfigError(
                f'{where}.text_pair_column: task = "text_pair" needs the column of the second text'
            )
        if pair in (data.text_column, data.label_column):
            raise ConfigError(
                f"{where}.text_pair_column: {pair!r} is also the text or label column; it must name "
                "the column of the second text"
            )
    if data.task == "multi_label" and not data.label_delimiter.strip():
        raise ConfigError(f"{where}.label_delimiter: must not be blank, got {data.label_delimiter!r}")
    for key in ("validation_fraction", "test_fraction"):
        value = getattr(config.data, key)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{where}.{key}: must be in [0, 1), got {value}")
