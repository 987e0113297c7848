"""Labelled examples for training and evaluation, read from any supported data file.

Standard library only: the cookiecutter hooks import it (through ``data.check``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import label_schemes
from ..errors import DataFormatError
from ..label_schemes.label_values import LabelError, UnknownLabelsError, label_key
from .io import RowReader, find_data_files, missing_columns_message

log = logging.getLogger(__name__)


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
    label_names: Sequence[str],
    *,
    skip_empty: bool = True,
    label_format: str = "auto",
    scheme: label_schemes.LabelScheme | None = None,
) -> list[Example]:
    """Read labelled examples; any bad row is an error that names the file and line.

    Empty texts are skipped when ``skip_empty`` (NSMC has a few; `data validate` reports them).
    The label ``scheme`` (default: the project's) decides for the whole file whether its labels
    are ids or names.
    """
    file = resolve_data_file(path)
    reader = RowReader(file)
    if not reader.columns:  # JSON Lines without a record (an empty CSV/TSV fails in RowReader)
        raise DataFormatError(f"{file}: the file is empty (no records)")
    require_columns(reader.columns, (text_column, label_column), file, label_names)
    kept: list[tuple[str, Any, int]] = []
    first_lines: dict[str, int] = {}
    for row in reader:
        text = row.values.get(text_column)
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise DataFormatError(
                f"{file}: line {row.line}: column {text_column!r} must hold text, got {text!r}"
            )
        if skip_empty and not text.strip():
            continue
        value = row.values.get(label_column)
        kept.append((text, value, row.line))
        first_lines.setdefault(label_key(value), row.line)
    for warning in reader.warnings:
        log.warning(warning)
    try:
        encode = (scheme or label_schemes.get()).label_reader(first_lines, label_names, label_format)
    except UnknownLabelsError as error:
        raise DataFormatError(f"{file}: line {error.first_line}: column {label_column!r}: {error}") from None
    except LabelError as error:
        raise DataFormatError(f"{file}: column {label_column!r}: {error}") from None
    return [Example(text, encode(value), line) for text, value, line in kept]


def require_columns(
    columns: Sequence[str],
    required: Sequence[str],
    path: str | os.PathLike[str],
    label_names: Sequence[str] | None = None,
    option: str | None = None,
) -> None:
    """Raise :class:`DataFormatError` unless every required column is there (see
    :func:`missing_columns_message`)."""
    if any(name not in columns for name in required):
        raise DataFormatError(missing_columns_message(path, columns, required, label_names, option))
