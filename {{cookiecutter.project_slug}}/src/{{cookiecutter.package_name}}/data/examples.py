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
from ..label_schemes.label_values import LabelError, UnknownLabelsError
from .io import Row, RowReader, find_data_files, missing_columns_message

log = logging.getLogger(__name__)

# What a label scheme reads a row's labels as: a label id (single-label) or a sorted tuple of
# label ids, possibly empty (multi-label).
Target = int | tuple[int, ...]


# Between the two texts of a pair where one string must stand for both (the TF-IDF baseline):
# a token no text holds, so no word or character n-gram spans the two texts unmarked.
PAIR_SEPARATOR = " [SEP] "


@dataclass(frozen=True)
class Example:
    text: str
    label: Target
    line: int
    # The second text of a text pair (task "text_pair"); None for one text per example.
    text_pair: str | None = None

    @property
    def texts(self) -> tuple[str, ...]:
        """The text, or both texts of a pair: what tells examples apart (duplicates, leakage)."""
        return (self.text,) if self.text_pair is None else (self.text, self.text_pair)

    @property
    def joined(self) -> str:
        """The text, or both texts of a pair joined by :data:`PAIR_SEPARATOR`."""
        return PAIR_SEPARATOR.join(self.texts)


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
    text_pair_column: str | None = None,
) -> list[Example]:
    """Read labelled examples; any bad row is an error that names the file and line.

    Empty texts are skipped when ``skip_empty`` (NSMC has a few; `data validate` reports them).
    The label ``scheme`` (default: single-label) decides for the whole file whether its labels
    are ids or names, and what a row's label is. ``label_layout`` "columns" (multi-label): one
    0/1 column per label, named as the label; ``label_column`` is then unused. With
    ``text_pair_column`` (task "text_pair") every example is a pair of texts: a row holding only
    one of the two is an error, a row holding neither is skipped like an empty text.
    """
    if label_layout not in LABEL_LAYOUTS:
        raise ValueError(f"label_layout must be one of {', '.join(LABEL_LAYOUTS)}, got {label_layout!r}")
    scheme = scheme or label_schemes.get()
    file = resolve_data_file(path)
    reader = RowReader(file)
    if not reader.columns:  # JSON Lines without a record (an empty CSV/TSV fails in RowReader)
        raise DataFormatError(f"{file}: the file is empty (no records)")
    texts = _TextColumns(text_column, text_pair_column)
    if label_layout == "columns":
        require_columns(reader.columns, (*texts.columns, *label_names), file, label_names, pair=texts.paired)
        examples = []
        for row in texts.rows(reader, file, skip_empty):
            try:
                target = scheme.read_columns(row.values, label_names)
            except LabelError as error:
                raise DataFormatError(f"{file}: line {row.line}: {error}") from None
            text, pair = texts.of(row)
            examples.append(Example(text, target, row.line, pair))
        for warning in reader.warnings:
            log.warning(warning)
        return examples
    require_columns(reader.columns, (*texts.columns, label_column), file, label_names, pair=texts.paired)
    kept: list[tuple[tuple[str, str | None], Any, int]] = []
    first_lines: dict[Any, int] = {}
    for row in texts.rows(reader, file, skip_empty):
        value = row.values.get(label_column)
        kept.append((texts.of(row), value, row.line))
        first_lines.setdefault(scheme.cell_key(value), row.line)
    for warning in reader.warnings:
        log.warning(warning)
    try:
        encode = scheme.label_reader(first_lines, label_names, label_format)
    except UnknownLabelsError as error:
        raise DataFormatError(f"{file}: line {error.first_line}: column {label_column!r}: {error}") from None
    except LabelError as error:
        raise DataFormatError(f"{file}: column {label_column!r}: {error}") from None
    return [Example(text, encode(value), line, pair) for (text, pair), value, line in kept]


@dataclass(frozen=True)
class _TextColumns:
    """The column(s) an example's text is read from: one, or two for a text pair."""

    text: str
    pair: str | None = None

    @property
    def paired(self) -> bool:
        return self.pair is not None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.text,) if self.pair is None else (self.text, self.pair)

    def of(self, row: Row) -> tuple[str, str | None]:
        text = row.values.get(self.text) or ""
        return text, None if self.pair is None else (row.values.get(self.pair) or "")

    def rows(self, reader: RowReader, file: Path, skip_empty: bool) -> Iterator[Row]:
        """The rows to read labels from: a missing text is empty, a non-text one is an error,
        and empty rows are left out when ``skip_empty``. A pair with one empty text is an error
        (the model would learn from half an example) however ``skip_empty`` is set."""
        for row in reader:
            filled = []
            for column in self.columns:
                text = row.values.get(column)
                if text is not None and not isinstance(text, str):
                    raise DataFormatError(
                        f"{file}: line {row.line}: column {column!r} must hold text, got {text!r}"
                    )
                filled.append(bool((text or "").strip()))
            if self.pair is not None and any(filled) and not all(filled):
                empty = self.columns[filled.index(False)]
                raise DataFormatError(
                    f"{file}: line {row.line}: column {empty!r} is empty: every row of a text-pair "
                    f"dataset needs both texts ({self.text!r} and {self.pair!r}); fill it or remove the row"
                )
            if skip_empty and not any(filled):
                continue
            yield row


def require_columns(
    columns: Sequence[str],
    required: Sequence[str],
    path: str | os.PathLike[str],
    label_names: Sequence[str] | None = None,
    option: str | None = None,
    *,
    pair: bool = False,
) -> None:
    """Raise :class:`DataFormatError` unless every required column is there (see
    :func:`missing_columns_message`; ``pair``: the first two are a text pair's columns)."""
    if any(name not in columns for name in required):
        message = missing_columns_message(path, columns, required, label_names, option, pair=pair)
        raise DataFormatError(message)
