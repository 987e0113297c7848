"""Read and write tabular text data: CSV, TSV (``.tsv``/``.txt``) and JSON Lines.

Standard library only, so the cookiecutter hooks can use the same readers before any dependency
is installed. Every row keeps the line number it started on, so problems can be reported
precisely; quoted fields (including ones spanning lines) and CRLF line ends are handled by ``csv``.

Line numbers count only ``\\n``, ``\\r\\n`` and ``\\r`` line ends: texts may hold U+2028, U+0085,
form feeds and other characters that ``str.splitlines`` would also split on, and those are part of
the text, not line ends.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from io import StringIO
from itertools import chain, islice
from pathlib import Path
from typing import Any

from ..errors import DataFormatError

SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
# Tried in order. cp949 is a superset of EUC-KR, the usual encoding of Korean spreadsheets.
ENCODINGS = ("utf-8-sig", "cp949")
# Line numbers listed in a warning; the count is always exact.
MAX_LINES_SHOWN = 5
# Valid JSON, but line separators to JavaScript and to readers that split on every Unicode line
# end (Python's str.splitlines among them); escaped, a record stays on one line for all of them.
_JSONL_ESCAPES = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
_JSONL_ESCAPE_RE = re.compile("[\u2028\u2029\x85]")


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
    # Problems the reader worked around (dropped empty columns, skipped empty rows).
    warnings: list[str] = field(default_factory=list)

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


def _is_blank(fields: Sequence[str]) -> bool:
    return not any(value.strip() for value in fields)


class RowReader:
    """The rows of one data file: an iterator that parses each row as it is reached.

    The file is decoded up front (the encoding is known only once every byte decodes), so
    ``encoding`` and ``columns`` are set on creation and header errors surface at once. JSON
    Lines ``columns`` grow as later records add keys. ``warnings`` cover the rows read so far.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.format = data_format(path)
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError as error:
            raise DataFormatError(f"{path}: file not found") from error
        except OSError as error:
            raise DataFormatError(f"{path}: cannot read the file: {error.strerror or error}") from error
        text, self.encoding = decode(raw, path)
        self.columns: list[str] = []
        self._warnings: list[str] = []
        self._blank_rows: list[int] = []
        self._rows: Iterator[Row]
        if self.format == "jsonl":
            rows = self._jsonl_rows(text)
            # The first record is parsed now so that ``columns`` is known before iteration.
            first = next(rows, None)
            self._rows = chain(() if first is None else [first], rows)
        else:
            self._rows = self._open_delimited(text, "\t" if self.format == "tsv" else ",")

    @property
    def warnings(self) -> list[str]:
        warnings = list(self._warnings)
        if lines := self._blank_rows:
            shown = ", ".join(map(str, lines[:MAX_LINES_SHOWN]))
            more = f" and {len(lines) - MAX_LINES_SHOWN} more" if len(lines) > MAX_LINES_SHOWN else ""
            warnings.append(
                f"{self.path}: skipped {len(lines)} row(s) whose fields are all empty "
                f"(line{'s' if len(lines) > 1 else ''} {shown}{more}), as spreadsheet exports often leave"
            )
        return warnings

    def __iter__(self) -> RowReader:
        return self

    def __next__(self) -> Row:
        return next(self._rows)

    def _open_delimited(self, text: str, delimiter: str) -> Iterator[Row]:
        """Read the header now (it sets ``columns``); the records follow lazily."""
        path = self.path
        # newline="" hands csv the physical lines split at \n, \r\n and \r only, so that other
        # Unicode line breaks stay inside fields and reader.line_num counts real lines.
        reader = csv.reader(
            StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True, strict=True
        )
        header: list[str] = []
        try:
            # Blank lines (or a row of empty cells) above the header carry nothing.
            while _is_blank(header):
                header = next(reader)
        except StopIteration as error:
            raise DataFormatError(f"{path}: file is empty (expected a header line)") from error
        except csv.Error as error:
            raise DataFormatError(f"{path}: line {reader.line_num}: malformed header: {error}") from error
        header_line = reader.line_num
        columns = [name.strip() for name in header]
        # Spreadsheets export the empty columns right of the data as ",,,": unnamed, never data.
        unnamed = 0
        while columns and not columns[-1]:
            columns.pop()
            unnamed += 1
        if unnamed:
            self._warnings.append(
                f"{path}: line {header_line}: ignored {unnamed} unnamed empty column(s) at the end of "
                "the header (as spreadsheet exports add)"
            )
        duplicated = sorted({name for name in columns if columns.count(name) > 1})
        if duplicated:
            raise DataFormatError(
                f"{path}: line {header_line}: duplicate column name(s): {', '.join(map(repr, duplicated))}"
            )
        self.columns = columns
        return self._delimited_records(reader, columns)

    def _delimited_records(self, reader: Any, columns: list[str]) -> Iterator[Row]:
        path, width = self.path, len(columns)
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise DataFormatError(f"{path}: line {start}: malformed row: {error}") from error
            if not fields:
                pass  # a blank line carries no record
            elif len(fields) > 1 and _is_blank(fields):
                self._blank_rows.append(start)
            else:
                if len(fields) > width and _is_blank(fields[width:]):
                    fields = fields[:width]
                if len(fields) != width:
                    raise DataFormatError(
                        f"{path}: line {start}: expected {width} fields "
                        f"({', '.join(columns)}), found {len(fields)}; check the delimiter and quoting"
                    )
                yield Row(start, dict(zip(columns, fields, strict=True)))
            start = reader.line_num + 1

    def _jsonl_rows(self, text: str) -> Iterator[Row]:
        path = self.path
        known: set[str] = set()
        # newline="\n": records end at \n (or \r\n) only; JSON strings may hold U+2028 and friends.
        for number, line in enumerate(StringIO(text, newline="\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataFormatError(f"{path}: line {number}: invalid JSON: {error.msg}") from error
            if not isinstance(record, dict):
                raise DataFormatError(f"{path}: line {number}: expected a JSON object per line")
            for key in record:
                if key not in known:
                    known.add(key)
                    self.columns.append(key)
            yield Row(number, record)


def read_table(path: str | os.PathLike[str], limit: int | None = None) -> Table:
    """Read a whole data file (or its first ``limit`` rows) into a :class:`Table`."""
    reader = RowReader(path)
    rows = list(islice(reader, limit))
    return Table(reader.path, list(reader.columns), rows, reader.encoding, reader.warnings)


_NUMBER_RE = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")


def _looks_like_sentence(value: str) -> bool:
    return len(value) > 40 or len(value.split()) >= 3 or bool(re.search(r"[.!?~…]\s*$", value))


def _looks_like_label(value: str, label_names: Sequence[str]) -> bool:
    folded = value.casefold()
    return bool(_NUMBER_RE.fullmatch(value)) or any(folded == n.strip().casefold() for n in label_names)


def missing_columns_message(
    path: str | os.PathLike[str],
    columns: Sequence[str],
    required: Sequence[str],
    label_names: Sequence[str] | None = None,
    option: str | None = None,
    *,
    pair: bool = False,
) -> str:
    """The error for required columns (text column, label column; or just the text column) a
    file lacks. When the header reads like a record (a number, a label value or a sentence in
    it), it says the file seems to have no header row and how to add one. The remedy names
    ``option`` (e.g. ``--text-column``) where the user names the column with it, else the
    configuration's text_column/label_column. With ``pair`` (a text-pair project) the first two
    required columns are the two texts, and the remedy names text_pair_column too."""
    missing = [name for name in required if name not in columns]
    message = (
        f"{path}: missing column(s) {', '.join(map(repr, missing))} not found; "
        f"the file has {', '.join(map(repr, columns)) or 'no columns'}"
    )
    try:
        fmt = data_format(path)
    except DataFormatError:
        fmt = "jsonl"
    names = list(label_names or ())
    if option:
        rename = name = f"pass the text column's name as {option}"
    elif pair:
        rename = "set text_column/text_pair_column/label_column to its names"
        name = (
            "set text_column/text_pair_column/label_column to the names of the two text columns "
            "and the label column"
        )
    else:
        rename = "set text_column/label_column to its names"
        name = "set text_column/label_column to the names of the text and label columns"
    looks_like_data = any(
        _looks_like_label(column, names) or _looks_like_sentence(column) for column in columns if column
    )
    if fmt == "jsonl" or not looks_like_data:
        return message + f"; rename the file's columns or {rename}"
    kind = "comma" if fmt == "csv" else "tab"
    example = ("," if fmt == "csv" else "<TAB>").join(_suggest_header(columns, required, names, pair))
    return (
        f"{message}. The first line looks like data, not column names: the file seems to have no "
        f"header row. Add a first line naming the columns, e.g. `{example}` ({kind}-separated), "
        f"and {name}"
    )


def _suggest_header(
    columns: Sequence[str], required: Sequence[str], label_names: Sequence[str], pair: bool = False
) -> list[str]:
    """Names for a header-less file's fields: the required names where a field looks like text
    (the longest; for a pair the two longest, in file order) or a label value, the rest numbered."""
    names = [f"column{index + 1}" for index in range(len(columns))]
    if not columns:
        return list(required)
    text_count = 2 if pair and len(columns) > 1 and len(required) > 1 else 1
    longest = sorted(range(len(columns)), key=lambda index: len(columns[index]), reverse=True)
    text_indices = sorted(longest[:text_count])
    for index, column in zip(text_indices, required, strict=False):
        names[index] = column
    if len(required) > text_count:
        labelled = [
            index
            for index, value in enumerate(columns)
            if index not in text_indices and _looks_like_label(value, label_names)
        ]
        by_name = [index for index in labelled if not _NUMBER_RE.fullmatch(columns[index])]
        # Files lead with an id column more often than they end with one: prefer the last number.
        if by_name or labelled:
            names[(by_name or labelled)[-1]] = required[text_count]
    return names


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Write records as UTF-8 JSON Lines (Korean kept readable); returns the record count."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(jsonl_line(record))
            count += 1
    return count


def jsonl_line(record: Mapping[str, Any]) -> str:
    """One record as a JSON Lines line (Korean kept readable), newline included."""
    # json.dumps escapes the other control characters itself; these three occur only inside
    # JSON strings, where a \u escape reads back as the same character.
    line = json.dumps(record, ensure_ascii=False)
    return _JSONL_ESCAPE_RE.sub(lambda match: _JSONL_ESCAPES[match.group()], line) + "\n"


def find_data_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Data files directly inside ``folder`` (hidden files and other types are ignored)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIX_FORMATS
    )
