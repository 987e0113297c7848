"""Check a dataset against the project's columns and label names, reading every row.

Standard library only: the cookiecutter hooks run this before the project (or any dependency)
is installed, so generation accepts exactly what the project's commands will read later.
Messages name the answers to change: there is no config.toml yet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import label_schemes
from ..errors import DataFormatError
from ..label_schemes.label_values import LabelError, UnknownLabelsError, decide_format, label_key
from ..label_schemes.multi_label import cell_elements
from .io import RowReader, missing_columns_message
from .sources import split_files

# Characters people join labels with; named when the configured delimiter occurs in no cell.
SEPARATORS = ",;/|+"


@dataclass
class CheckResult:
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # "ids" or "names" when every file decided the same way, else None.
    label_format: str | None = None


@dataclass
class _LabelCells:
    """One file's label cells, as `data prepare` reads them: rows without text do not count."""

    file: Path
    # Each label value (a multi-label cell's parts) -> the line it first appears on.
    values: dict[str, int] = field(default_factory=dict)
    # Each string cell -> the line it first appears on (for the delimiter check).
    strings: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def check_dataset(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    label_names: Sequence[str],
    label_format: str = "auto",
    *,
    task: str = label_schemes.DEFAULT,
    label_layout: str = "column",
    label_delimiter: str = "|",
    text_pair_column: str | None = None,
) -> CheckResult:
    """Columns, label values and label format of every file of a dataset source.

    Multi-label (``task``): with ``label_layout`` "column" a cell holds label values joined by
    ``label_delimiter`` or a JSON list, and the delimiter must occur somewhere in the dataset's
    string cells; with "columns" every label name is a column of 0/1 (true/false) values.
    ``text_pair_column`` (task "text_pair"): every row with a text holds the second text too.
    """
    result = CheckResult()
    source = Path(path)
    try:
        # A folder's split files; files without a split name are ignored, as `data prepare` does.
        result.files = list(split_files(source).values()) if source.is_dir() else [source]
    except DataFormatError as error:
        result.problems.append(str(error))
        return result
    multi = task == "multi_label"
    if multi and label_layout == "columns":
        for file in result.files:
            _check_flag_columns(file, text_column, label_names, task, label_delimiter, result)
        return result
    cells = []
    for file in result.files:
        try:
            cells.append(
                _read_label_cells(
                    file, text_column, label_column, label_names, multi, label_delimiter, text_pair_column
                )
            )
        except DataFormatError as error:
            result.problems.append(str(error))
        except _MissingColumns as missing:
            pair = "/text_pair_column" if text_pair_column else ""
            result.problems.append(f"{missing} (answers text_column{pair}/label_column)")
    if multi and cells and not _delimiter_occurs(cells, label_column, label_delimiter, result):
        return result
    formats: dict[str, Path] = {}
    for found in cells:
        result.warnings.extend(found.warnings)
        try:
            formats[decide_format(found.values, label_names, label_format)] = found.file
        except LabelError as error:
            line = error.first_line if isinstance(error, UnknownLabelsError) else None
            at = f" line {line}:" if line else ""
            result.problems.append(f"{found.file}:{at} column {label_column!r}: {error}")
    if len(formats) > 1 and any(name.strip().isdigit() for name in label_names):
        described = ", ".join(f"{file.name} holds label {kind}" for kind, file in formats.items())
        result.problems.append(
            f"the files disagree on what the label values are ({described}); with numeric label "
            "names every file must use the same kind"
        )
    elif len(formats) == 1:
        result.label_format = next(iter(formats))
    return result


class _MissingColumns(Exception):
    """A file lacks the text or label column (the message is the whole problem)."""


def _read_label_cells(
    file: Path,
    text_column: str,
    label_column: str,
    label_names: Sequence[str],
    multi: bool,
    delimiter: str,
    pair_column: str | None = None,
) -> _LabelCells:
    reader = RowReader(file)
    texts = (text_column,) if pair_column is None else (text_column, pair_column)
    required = (*texts, label_column)
    if any(column not in reader.columns for column in required):
        raise _MissingColumns(
            missing_columns_message(file, reader.columns, required, label_names, pair=pair_column is not None)
        )
    found = _LabelCells(file)
    for row in reader:
        text = row.values.get(text_column)
        filled = isinstance(text, str) and bool(text.strip())
        if pair_column is not None:
            pair = row.values.get(pair_column)
            if filled != (isinstance(pair, str) and bool(pair.strip())):
                empty = pair_column if filled else text_column
                raise DataFormatError(
                    f"{file}: line {row.line}: column {empty!r} is empty: every row of a text-pair "
                    f"dataset needs both texts ({text_column!r} and {pair_column!r}); fill it or "
                    "remove the row (answers text_column/text_pair_column)"
                )
        if not filled:
            continue
        raw: Any = row.values.get(label_column)
        if not multi:
            found.values.setdefault(str(raw).strip(), row.line)
            continue
        if isinstance(raw, str):
            found.strings.setdefault(raw, row.line)
        for element in cell_elements(raw, delimiter):
            found.values.setdefault(label_key(element), row.line)
    found.warnings = reader.warnings
    return found


def _delimiter_occurs(
    cells: Sequence[_LabelCells], label_column: str, delimiter: str, result: CheckResult
) -> bool:
    """Whether ``delimiter`` occurs in a string label cell of any file (or no cell is a string:
    JSON lists); if not, a problem naming the separators the cells hold instead."""
    strings = [(found.file, cell, line) for found in cells for cell, line in found.strings.items()]
    if not strings or any(delimiter in cell for _, cell, _ in strings):
        return True
    others = [
        char for char in SEPARATORS if char != delimiter and any(char in cell for _, cell, _ in strings)
    ]
    # The first cell holding another separator is the likeliest place to look; else the first cell.
    file, cell, line = next(
        ((f, c, n) for f, c, n in strings if any(char in c for char in others)), strings[0]
    )
    holds = (
        f"the cells hold {', '.join(map(repr, others))} instead" if others else "the cells hold no separator"
    )
    result.problems.append(
        f"{file}: line {line}: column {label_column!r}: the label delimiter {delimiter!r} occurs in no "
        f"label cell of the dataset ({holds}, e.g. {cell!r}); answer label_delimiter with the character "
        "that separates the labels, or, if each text really has at most one label, use task single_label"
    )
    return False


def _check_flag_columns(
    file: Path,
    text_column: str,
    label_names: Sequence[str],
    task: str,
    delimiter: str,
    result: CheckResult,
) -> None:
    """label_layout "columns": every label name is a column holding only 0/1 (true/false)."""
    scheme = label_schemes.for_project(task, delimiter)
    try:
        reader = RowReader(file)
        required = (text_column, *label_names)
        if any(name not in reader.columns for name in required):
            result.problems.append(
                missing_columns_message(file, reader.columns, required, label_names)
                + ' (answers text_column/label_names: label_layout "columns" needs a column per label)'
            )
            return
        for row in reader:
            text = row.values.get(text_column)
            if not (isinstance(text, str) and text.strip()):
                continue
            try:
                scheme.read_columns(row.values, label_names)
            except LabelError as error:
                result.problems.append(f"{file}: line {row.line}: {error}")
                return
        result.warnings.extend(reader.warnings)
    except DataFormatError as error:
        result.problems.append(str(error))
