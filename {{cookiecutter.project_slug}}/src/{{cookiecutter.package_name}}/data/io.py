"""Read and write tabular text data: CSV, TSV (``.tsv``/``.txt``) and JSON Lines.

Standard library only, so the cookiecutter hooks can use the same readers before any dependency
is installed. Every row keeps the line number it started on, so problems can be reported
precisely; quoted fields (including ones spanning lines) and CRLF line ends are handled by ``csv``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
# Tried in order. cp949 is a superset of EUC-KR, the usual encoding of Korean spreadsheets.
ENCODINGS = ("utf-8-sig", "cp949")


class DataFormatError(ValueError):
    """A data file cannot be read; the message names the file and, where known, the line."""


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Table:
    path: str
    columns: list[str]
    rows: list[Row]
    encoding: str

    def __len__(self) -> int:
        return len(self.rows)


def data_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise DataFormatError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"use one of {', '.join(sorted(SUFFIX_FORMATS))}"
        )
    return SUFFIX_FORMATS[suffix]


def decode(raw: bytes, path: str | os.PathLike[str]) -> tuple[str, str]:
    """Decode file bytes as UTF-8 (with or without BOM) or CP949/EUC-KR."""
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataFormatError(
            f"{path}: line {line}: cannot decode the file: it is neither UTF-8 (invalid byte "
            f"{raw[error.start : error.start + 1]!r} at byte {error.start}) nor CP949/EUC-KR. "
            "Re-save it as UTF-8 (e.g. `iconv -f <encoding> -t utf-8 in > out`)."
        ) from error
    raise AssertionError("unreachable")  # pragma: no cover


def read_table(path: str | os.PathLike[str], limit: int | None = None) -> Table:
    """Read a whole data file (or its first ``limit`` rows) into a :class:`Table`."""
    fmt = data_format(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as error:
        raise DataFormatError(f"{path}: file not found") from error
    text, encoding = decode(raw, path)
    if fmt == "jsonl":
        columns, rows = _read_jsonl(text, path, limit)
    else:
        columns, rows = _read_delimited(text, path, "\t" if fmt == "tsv" else ",", limit)
    return Table(str(path), columns, rows, encoding)


def _read_delimited(
    text: str, path: str | os.PathLike[str], delimiter: str, limit: int | None
) -> tuple[list[str], list[Row]]:
    lines = text.splitlines(keepends=True)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    try:
        header = next(reader)
    except StopIteration as error:
        raise DataFormatError(f"{path}: file is empty (expected a header line)") from error
    except csv.Error as error:
        raise DataFormatError(f"{path}: line 1: malformed header: {error}") from error
    columns = [name.strip() for name in header]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise DataFormatError(f"{path}: line 1: duplicate column name(s): {', '.join(duplicated)}")
    rows: list[Row] = []
    start = reader.line_num + 1
    while limit is None or len(rows) < limit:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataFormatError(f"{path}: line {start}: malformed row: {error}") from error
        if fields:  # blank lines carry no record
            if len(fields) != len(columns):
                raise DataFormatError(
                    f"{path}: line {start}: expected {len(columns)} fields "
                    f"({', '.join(columns)}), found {len(fields)}; check the delimiter and quoting"
                )
            rows.append(Row(start, dict(zip(columns, fields, strict=True))))
        start = reader.line_num + 1
    return columns, rows


def _read_jsonl(text: str, path: str | os.PathLike[str], limit: int | None) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}: line {number}: invalid JSON: {error.msg}") from error
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: line {number}: expected a JSON object per line")
        columns.update(dict.fromkeys(record))
        rows.append(Row(number, record))
    return list(columns), rows


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Write records as UTF-8 JSON Lines (Korean kept readable); returns the record count."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def find_data_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Data files directly inside ``folder`` (hidden files and other types are ignored)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIX_FORMATS
    )
