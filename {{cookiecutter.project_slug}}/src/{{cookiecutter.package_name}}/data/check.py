"""Check a dataset against the project's columns and label names, reading every row.

Standard library only: the cookiecutter hooks run this before the project (or any dependency)
is installed, so generation accepts exactly what the project's commands will read later.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError
from ..label_schemes.label_values import LabelError, decide_format
from .io import RowReader, missing_columns_message
from .sources import split_files


@dataclass
class CheckResult:
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # "ids" or "names" when every file decided the same way, else None.
    label_format: str | None = None


def check_dataset(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    label_names: Sequence[str],
    label_format: str = "auto",
) -> CheckResult:
    """Columns, label values and label format of every file of a dataset source."""
    result = CheckResult()
    source = Path(path)
    try:
        # A folder's split files; files without a split name are ignored, as `data prepare` does.
        result.files = list(split_files(source).values()) if source.is_dir() else [source]
    except DataFormatError as error:
        result.problems.append(str(error))
        return result
    formats: dict[str, Path] = {}
    for file in result.files:
        try:
            reader = RowReader(file)
            if text_column not in reader.columns or label_column not in reader.columns:
                result.problems.append(
                    missing_columns_message(file, reader.columns, (text_column, label_column), label_names)
                    + " (answers text_column/label_column)"
                )
                continue
            # As `data prepare` reads it: rows without text are dropped, so their labels do not count.
            first_line: dict[str, int] = {}
            for row in reader:
                text = row.values.get(text_column)
                if isinstance(text, str) and text.strip():
                    first_line.setdefault(str(row.values.get(label_column)).strip(), row.line)
            result.warnings.extend(reader.warnings)
        except DataFormatError as error:
            result.problems.append(str(error))
            continue
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
    return result
