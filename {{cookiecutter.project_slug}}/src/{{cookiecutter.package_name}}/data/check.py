"""Check a dataset against the project's columns and label names, reading every row.

Standard library only: the cookiecutter hooks run this before the project (or any dependency)
is installed, so generation accepts exactly what the project's commands will read later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .examples import missing_columns_message
from .io import DataFormatError, read_table
from .labels import LabelError, decide_format
from .sources import split_files

# Values listed per problem; the count is always exact.
MAX_VALUES_SHOWN = 10


@dataclass
class CheckResult:
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # "ids" or "names" when every file decided the same way; None when nothing was decided.
    label_format: str | None = None


def dataset_files(path: Path) -> list[Path]:
    """The files the project reads for ``path``: the file itself, or a folder's split files
    (files without a split name are ignored, as ``data prepare`` ignores them)."""
    if path.is_dir():
        return list(split_files(path).values())
    return [path]


def check_dataset(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    label_names: list[str] | tuple[str, ...],
    label_format: str = "auto",
) -> CheckResult:
    """Columns, label values and label format of every file of a dataset source."""
    result = CheckResult()
    try:
        result.files = dataset_files(Path(path))
    except DataFormatError as error:
        result.problems.append(str(error))
        return result
    formats: dict[str, Path] = {}
    for file in result.files:
        try:
            table = read_table(file)
        except DataFormatError as error:
            result.problems.append(str(error))
            continue
        result.warnings.extend(getattr(table, "warnings", []))
        if text_column not in table.columns or label_column not in table.columns:
            result.problems.append(
                missing_columns_message(file, table.columns, (text_column, label_column), label_names)
                + " (answers text_column/label_column)"
            )
            continue
        first_line: dict[str, int] = {}
        for row in table.rows:
            first_line.setdefault(str(row.values[label_column]).strip(), row.line)
        try:
            formats[decide_format(first_line, label_names, label_format)] = file
        except LabelError as error:
            result.problems.append(f"{file}: column {label_column!r}: {error}")
    if len(formats) > 1 and any(name.strip().isdigit() for name in label_names):
        described = ", ".join(f"{file.name} holds label {kind}" for kind, file in formats.items())
        result.problems.append(
            f"the files disagree on what the label values are ({described}); with numeric label "
            "names every file must use the same kind"
        )
    elif len(formats) == 1:
        result.label_format = next(iter(formats))
    elif formats:
        result.label_format = "mixed"
    return result
