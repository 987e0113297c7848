"""Labelled examples for training and evaluation, read from any supported data file.

Standard library only: the cookiecutter hooks import it (through ``data.check``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import label_schemes
from ..config import LABEL_LAYOUTS
from ..errors import DataFormatError
from ..label_schemes.label_values import LabelError, UnknownLabelsError, label_key
from ..label_schemes.multi_label import MultiLabel
from .io import Row, RowReader, find_data_files, missing_columns_message

log = logging.getLogger(__name__)

# What a label scheme reads a row's labels as: a label id (single-label) or a sorted tuple of
# label ids, possibly empty (multi-label).
Target = int | tuple[int, ...]


@dataclass(frozen=True)
class Example:
    text: str
    label: Target
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
    label_layout: str = "column",
) -> list[Example]:
    """Read labelled examples; any bad row is an error that names the file and line.

    Empty texts are skipped when ``skip_empty`` (NSMC has a few; `data validate` reports them).
    The label ``scheme`` (default: single-label) decides for the whole file whether its labels
    are ids or names, and what a row's label is. ``label_layout`` "columns" (multi-label): one
    0/1 column per label, named as the label; ``label_column`` is then unused.
    """
    if label_layout not in LABEL_LAYOUTS:
        raise ValueError(f"label_layout must be one of {', '.join(LABEL_LAYOUTS)}, got {label_layout!r}")
    scheme = scheme or label_schemes.get()
    file = resolve_data_file(path)
    reader = RowReader(file)
    if not reader.columns:  # JSON Lines without a record (an empty CSV/TSV fails in RowReader)
        raise DataFormatError(f"{file}: the file is empty (no records)")
    if label_layout == "columns":
        require_columns(reader.columns, (text_column, *label_names), file, label_names)
        examples = []
        for row in _texts(reader, file, text_column, skip_empty):
            try:
                target = scheme.read_columns(row.values, label_names)
            except LabelError as error:
                raise DataFormatError(f"{file}: line {row.line}: {error}") from None
            examples.append(Example(row.values.get(text_column) or "", target, row.line))
        for warning in reader.warnings:
            log.warning(warning)
        return examples
    require_columns(reader.columns, (text_column, label_column), file, label_names)
    kept: list[tuple[str, Any, int]] = []
    first_lines: dict[Any, int] = {}
    # Single-label values are keyed as text ("1" and 1 are one value); a multi-label cell keeps
    # its raw form (a JSON list as a tuple), which the scheme splits into label values itself.
    key_of = label_schemes.cell_key if isinstance(scheme, MultiLabel) else label_key
    for row in _texts(reader, file, text_column, skip_empty):
        value = row.values.get(label_column)
        kept.append((row.values.get(text_column) or "", value, row.line))
        first_lines.setdefault(key_of(value), row.line)
    for warning in reader.warnings:
        log.warning(warning)
    try:
        encode = scheme.label_reader(first_lines, label_names, label_format)
    except UnknownLabelsError as error:
        raise DataFormatError(f"{file}: line {error.first_line}: column {label_column!r}: {error}") from None
    except LabelError as error:
        raise DataFormatError(f"{file}: column {label_column!r}: {error}") from None
    return [Example(text, encode(value), line) for text, value, line in kept]


def _texts(reader: RowReader, file: Path, text_column: str, skip_empty: bool) -> Iterator[Row]:
    """The rows to read labels from: a missing text is empty, a non-text one is an error, and
    empty texts are left out when ``skip_empty``."""
    for row in reader:
        text = row.values.get(text_column)
        if text is not None and not isinstance(text, str):
            raise DataFormatError(
                f"{file}: line {row.line}: column {text_column!r} must hold text, got {text!r}"
            )
        if skip_empty and not (text or "").strip():
            continue
        yield row


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
