"""Labelled examples for training and evaluation, read from any supported data file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .io import DataFormatError, find_data_files, read_table
from .labels import LabelError, LabelMap


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    line: int


def resolve_data_file(path: str | os.PathLike[str]) -> Path:
    """A data file, or the single data file inside a folder (e.g. a SageMaker channel)."""
    path = Path(path)
    if path.is_dir():
        files = find_data_files(path)
        if len(files) != 1:
            found = ", ".join(p.name for p in files) or "none"
            raise DataFormatError(
                f"{path}: expected exactly one CSV/TSV/JSONL file in this folder, found {found}"
            )
        return files[0]
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or folder")
    return path


def load_examples(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    label_names: tuple[str, ...] | list[str],
    *,
    skip_empty: bool = True,
) -> list[Example]:
    """Read labelled examples; any bad row is an error that names the file and line.

    Empty or whitespace-only texts are skipped when ``skip_empty`` (NSMC has a few): there is
    nothing to learn from them, and `data validate` reports them.
    """
    file = resolve_data_file(path)
    table = read_table(file)
    require_columns(table.columns, (text_column, label_column), file)
    labels = LabelMap(label_names)
    examples: list[Example] = []
    for row in table.rows:
        text = row.values[text_column]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise DataFormatError(
                f"{file}: line {row.line}: column {text_column!r} must hold text, got {text!r}"
            )
        if skip_empty and not text.strip():
            continue
        try:
            label = labels.to_id(row.values[label_column])
        except LabelError as error:
            raise DataFormatError(f"{file}: line {row.line}: column {label_column!r}: {error}") from None
        examples.append(Example(text, label, row.line))
    return examples


def require_columns(columns: list[str], required: tuple[str, ...], path: str | os.PathLike[str]) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the file has: {', '.join(map(repr, columns)) or 'no columns'}"
        )
