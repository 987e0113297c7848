"""Check a labelled dataset before training: structure, labels, empty and duplicate texts, stats.

Errors make a file unusable for training as it is (missing columns, unknown labels); warnings
are worth a look but training can proceed (empty texts are dropped, duplicates are kept).

A text-pair dataset (task "text_pair") is checked per text column: a row holding one text of
the two is an error, as ``load_examples`` reads it; empty, very short and very long texts and
the length statistics are reported for each column, duplicates are duplicate pairs, and a pair
whose two texts are the same is a warning (it tells the model nothing about how two texts relate).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from .. import label_schemes
from ..errors import DataFormatError
from ..label_schemes.label_values import LabelError, LabelMap, UnknownLabelsError, decide_format, label_key
from .io import RowReader, missing_columns_message

# Long lists of row numbers help nobody; the count is always exact.
MAX_LINES_SHOWN = 10
# Label pairs shown (most frequent first) in a multi-label report.
MAX_PAIRS_SHOWN = 10
# Text pairs: a text of fewer characters than this says next to nothing about its partner
# ("네", "ㅋ"), and one longer than this leaves its partner few of max_seq_length's tokens under
# longest_first truncation (an NSMC review has at most 140 characters).
VERY_SHORT_CHARS = 2
VERY_LONG_CHARS = 1000


@dataclass
class Finding:
    severity: str  # "error" or "warning"
    message: str
    lines: list[int] = field(default_factory=list)

    def render(self) -> str:
        if not self.lines:
            return f"{self.severity.upper()}: {self.message}"
        shown = ", ".join(map(str, self.lines[:MAX_LINES_SHOWN]))
        more = f" and {len(self.lines) - MAX_LINES_SHOWN} more" if len(self.lines) > MAX_LINES_SHOWN else ""
        return f"{self.severity.upper()}: {self.message} (lines {shown}{more})"


@dataclass
class ValidationReport:
    path: str
    rows: int = 0
    encoding: str = ""
    findings: list[Finding] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    length_stats: dict[str, float] = field(default_factory=dict)
    # Multi-label only (None otherwise): rows with no label, labels per row (mean, max and
    # {count: rows}), and the label pairs that occur together most, with their rows.
    rows_without_label: int | None = None
    labels_per_row: dict[str, Any] | None = None
    label_pairs: list[dict[str, Any]] | None = None
    # Text pairs only: the two text columns and the second column's length statistics.
    text_columns: list[str] | None = None
    pair_length_stats: dict[str, float] = field(default_factory=dict)

    def add(self, severity: str, message: str, lines: Sequence[int] = ()) -> None:
        self.findings.append(Finding(severity, message, list(lines)))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        report = {
            "path": self.path,
            "rows": self.rows,
            "encoding": self.encoding,
            "errors": [f.__dict__ for f in self.errors],
            "warnings": [f.__dict__ for f in self.warnings],
            "class_counts": self.class_counts,
            "text_length_chars": self.length_stats,
        }
        if self.labels_per_row is not None:
            report["rows_without_label"] = self.rows_without_label
            report["labels_per_row"] = self.labels_per_row
            report["label_pairs"] = self.label_pairs
        if self.text_columns is not None:
            report["text_columns"] = self.text_columns
            report["text_pair_length_chars"] = self.pair_length_stats
        return report

    def render(self) -> str:
        lines = [f"{self.path}: {self.rows} rows ({self.encoding})"]
        if self.labels_per_row is not None:
            lines.extend(self._render_label_sets())
        elif self.class_counts:
            total = sum(self.class_counts.values()) or 1
            lines.append("class balance:")
            for name, count in self.class_counts.items():
                lines.append(f"  {name:<20} {count:>8}  {count / total:6.1%}")
        if self.text_columns is not None:
            both = (self.length_stats, self.pair_length_stats)
            for column, stats in zip(self.text_columns, both, strict=True):
                if stats:
                    lines.append(f"{column!r} " + _render_lengths(stats))
        elif self.length_stats:
            lines.append(_render_lengths(self.length_stats))
        lines.extend(f.render() for f in self.findings)
        lines.append(
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
            + ("" if self.ok else ": fix the errors before training")
        )
        return "\n".join(lines)

    def _render_label_sets(self) -> list[str]:
        """Multi-label statistics: a label's share is of the rows (a row may hold several)."""
        rows = self.rows or 1
        lines = ["rows holding each label:"]
        for name, count in self.class_counts.items():
            lines.append(f"  {name:<20} {count:>8}  {count / rows:6.1%}")
        empty = self.rows_without_label or 0
        lines.append(f"rows without a label: {empty} ({empty / rows:.1%})")
        per_row = self.labels_per_row or {}
        spread = ", ".join(f"{size}: {count}" for size, count in per_row.get("distribution", {}).items())
        lines.append(f"labels per row: mean {per_row.get('mean', 0.0):.2f} (rows by label count: {spread})")
        if self.label_pairs:
            pairs = ", ".join(f"{'+'.join(pair['labels'])} {pair['rows']}" for pair in self.label_pairs)
            lines.append(f"labels most often together: {pairs}")
        return lines


def _render_lengths(stats: dict[str, float]) -> str:
    return (
        "text length (chars): min {min:.0f}, median {median:.0f}, mean {mean:.1f}, "
        "p95 {p95:.0f}, max {max:.0f}".format(**stats)
    )


def _length_stats(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {}
    ordered = sorted(lengths)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "mean": statistics.fmean(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def validate_file(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    label_names: Sequence[str],
    *,
    unlabelled: bool = False,
    label_format: str = "auto",
    scheme: label_schemes.LabelScheme | None = None,
    label_layout: str = "column",
    text_pair_column: str | None = None,
) -> ValidationReport:
    """Validate one data file; ``unlabelled`` skips label checks (e.g. files to predict on).
    Labels are ids or names for the whole file, as training reads it (``label_format``: as in
    [data]); ``scheme``, ``label_layout`` and ``text_pair_column`` as
    :func:`~.examples.load_examples` takes them. A multi-label report adds rows without a label,
    labels per row and label co-occurrence; a text-pair report covers both text columns."""
    report = ValidationReport(str(path))
    scheme = scheme or label_schemes.get()
    columns = scheme.label_sets and label_layout == "columns" and not unlabelled
    texts = [text_column] if text_pair_column is None else [text_column, text_pair_column]
    required = [*texts] if unlabelled else [*texts, label_column]
    if columns:
        required = [*texts, *label_names]
    if text_pair_column is not None:
        report.text_columns = texts
    empty: list[int] = []
    # Per text column: rows whose text is not a string, whose text alone of the pair is empty,
    # very short or very long; and each column's text lengths.
    non_text: dict[str, list[int]] = {column: [] for column in texts}
    half_empty: dict[str, list[int]] = {column: [] for column in texts}
    short: dict[str, list[int]] = {column: [] for column in texts}
    long: dict[str, list[int]] = {column: [] for column in texts}
    column_lengths: dict[str, list[int]] = {column: [] for column in texts}
    same: list[int] = []
    # Each distinct label cell (the target itself for 0/1 columns) -> the lines holding it.
    label_lines: dict[Any, list[int]] = defaultdict(list)
    unreadable: list[tuple[int, str]] = []
    by_text: dict[tuple[str, ...], list[tuple[int, Any]]] = defaultdict(list)
    try:
        reader = RowReader(path)
        report.encoding = reader.encoding
        if any(name not in reader.columns for name in required):
            report.add(
                "error",
                missing_columns_message(
                    path, reader.columns, required, label_names, pair=text_pair_column is not None
                ),
            )
            return report
        for row in reader:
            report.rows += 1
            key = None
            if columns:
                try:
                    key = scheme.read_columns(row.values, label_names)
                except LabelError as error:
                    unreadable.append((row.line, str(error)))
                else:
                    label_lines[key].append(row.line)
            elif not unlabelled:
                value = row.values.get(label_column)
                key = scheme.cell_key(value)
                label_lines[key].append(row.line)
            values = [row.values.get(column) for column in texts]
            wrong = [column for column, value in zip(texts, values, strict=True) if not _is_text(value)]
            for column in wrong:
                non_text[column].append(row.line)
            if wrong:
                continue
            filled = [bool((value or "").strip()) for value in values]
            if not any(filled):
                empty.append(row.line)
                continue
            if not all(filled):  # a pair holding one text: load_examples refuses the row
                half_empty[texts[filled.index(False)]].append(row.line)
                continue
            stripped = tuple(value.strip() for value in values if isinstance(value, str))
            for column, value, text in zip(texts, values, stripped, strict=True):
                column_lengths[column].append(len(value or ""))
                if text_pair_column is not None and len(text) < VERY_SHORT_CHARS:
                    short[column].append(row.line)
                if text_pair_column is not None and len(value or "") > VERY_LONG_CHARS:
                    long[column].append(row.line)
            if text_pair_column is not None and stripped[0] == stripped[1]:
                same.append(row.line)
            by_text[stripped].append((row.line, key))
    except DataFormatError as error:
        report.add("error", str(error))
        return report
    for warning in reader.warnings:
        report.add("warning", warning)
    if not report.rows:
        report.add("error", "the file has a header but no rows")
        return report

    ids: dict[Any, Any] | None = None
    if columns:
        ids = {key: key for key in label_lines}
        if unreadable:
            line, message = unreadable[0]
            lines = [line for line, _ in unreadable]
            report.add(
                "error",
                f"{len(lines)} row(s) with a label column that is not 0/1 (line {line}: {message})",
                lines,
            )
    elif scheme.label_sets and not unlabelled:
        ids = _label_sets(label_lines, label_column, label_names, label_format, scheme, report)
    elif not unlabelled:
        ids = _label_ids(label_lines, label_column, label_names, label_format, report)
    pair = text_pair_column is not None
    for column, lines in non_text.items():
        if lines:
            report.add("error", f"{len(lines)} row(s) whose {column!r} is not text", lines)
    for column, lines in half_empty.items():
        if lines:
            other = texts[1 - texts.index(column)]
            report.add(
                "error",
                f"{len(lines)} row(s) with an empty {column!r} beside a text in {other!r}: every row "
                "of a text-pair dataset needs both texts; fill it or remove the row",
                lines,
            )
    if empty:
        what = "both texts empty or whitespace-only" if pair else "an empty or whitespace-only text"
        report.add("warning", f"{len(empty)} row(s) with {what} (dropped by `data prepare`)", empty)
    for column, lines in short.items():
        if lines:
            message = (
                f"{len(lines)} row(s) whose {column!r} is very short (under {VERY_SHORT_CHARS} characters)"
            )
            report.add("warning", message, lines)
    for column, lines in long.items():
        if lines:
            message = (
                f"{len(lines)} row(s) whose {column!r} is very long (over {VERY_LONG_CHARS} characters; "
                "longest_first truncation cuts it first)"
            )
            report.add("warning", message, lines)
    if same:
        report.add("warning", f"{len(same)} pair(s) whose two texts are identical", same)
    duplicates = [lines for lines in by_text.values() if len(lines) > 1]
    if duplicates:
        extra = [line for group in duplicates for line, _ in group[1:]]
        what = "pair" if pair else "text"
        report.add("warning", f"{len(extra)} duplicate {what}(s) in {len(duplicates)} group(s)", extra)

        def label_of(key: Any) -> Any:
            # Raw values stand in for ids when the file's labels could not be read one way.
            return key if ids is None or key is None else ids.get(key)

        conflicting = [group for group in duplicates if len({label_of(key) for _, key in group} - {None}) > 1]
        if conflicting:
            lines = [line for group in conflicting for line, _ in group]
            what = "pair" if pair else "text"
            report.add("warning", f"{len(conflicting)} {what}(s) appear with conflicting labels", lines)
    if ids is not None and scheme.label_sets:
        targets = [ids[key] for key, lines in label_lines.items() if key in ids for _ in lines]
        _label_set_stats(report, targets, label_names, scheme)
    elif ids is not None:
        counts: Counter[int] = Counter()
        for key, lines in label_lines.items():
            if key in ids:
                counts[ids[key]] += len(lines)
        report.class_counts = {name: counts.get(i, 0) for i, name in enumerate(label_names)}
    for name, count in report.class_counts.items():
        if count == 0:
            report.add("warning", f"label {name!r} has no rows")
    report.length_stats = _length_stats(column_lengths[text_column])
    if pair:
        report.pair_length_stats = _length_stats(column_lengths[texts[1]])
    return report


def _is_text(value: Any) -> bool:
    """A missing cell counts as an empty text; anything else must be a string."""
    return value is None or isinstance(value, str)


def _label_ids(
    label_lines: dict[str, list[int]],
    label_column: str,
    label_names: Sequence[str],
    label_format: str,
    report: ValidationReport,
) -> dict[str, int] | None:
    """Each label value's id, the file's values read one way throughout; unreadable values become
    error findings with every line they are on. None when no one way reads them all."""
    first_lines = {key: lines[0] for key, lines in label_lines.items()}
    try:
        decided = decide_format(first_lines, label_names, label_format)
    except UnknownLabelsError as error:
        accepted = ", ".join(f"{i}/{n!r}" for i, n in enumerate(label_names))
        outside = "that is not a label id" if label_format == "ids" else "outside the label names"
        for value in error.values:
            lines = label_lines[value]
            report.add("error", f"{len(lines)} row(s) with label {value!r} {outside} ({accepted})", lines)
        # The remaining values may still be readable one way: count those.
        first_lines = {key: line for key, line in first_lines.items() if key not in error.values}
        try:
            decided = decide_format(first_lines, label_names, label_format)
        except LabelError as second:
            report.add("error", f"column {label_column!r}: {second}")
            return None
    except LabelError as error:
        report.add("error", f"column {label_column!r}: {error}")
        return None
    labels = LabelMap(label_names, decided)
    return {key: labels.to_id(key) for key in first_lines}


def _label_sets(
    label_lines: dict[Any, list[int]],
    label_column: str,
    label_names: Sequence[str],
    label_format: str,
    scheme: label_schemes.LabelScheme,
    report: ValidationReport,
) -> dict[Any, tuple[int, ...]] | None:
    """Each multi-label cell's label set, the file's values read one way throughout; values it
    cannot read become one error finding with every row holding them. None when unreadable."""
    first_lines = {key: lines[0] for key, lines in label_lines.items()}
    try:
        read = scheme.label_reader(first_lines, label_names, label_format)
        return {key: read(key) for key in label_lines}
    except UnknownLabelsError as error:
        unknown = set(error.values)
        lines = sorted(
            line
            for key, cell_lines in label_lines.items()
            if unknown & {label_key(value) for value in scheme.cell_values(key)}
            for line in cell_lines
        )
        report.add("error", f"column {label_column!r}: {error}", lines)
    except LabelError as error:
        report.add("error", f"column {label_column!r}: {error}")
    return None


def _label_set_stats(
    report: ValidationReport,
    targets: Sequence[tuple[int, ...]],
    names: Sequence[str],
    scheme: label_schemes.LabelScheme,
) -> None:
    """Rows per label, rows without a label, labels per row and the most frequent label pairs."""
    report.class_counts = dict(zip(names, scheme.label_counts(targets, len(names)), strict=True))
    report.rows_without_label = scheme.empty_rows(targets)
    sizes = Counter(len(target) for target in targets)
    report.labels_per_row = {
        "mean": statistics.fmean(sizes.elements()) if targets else 0.0,
        "max": max(sizes, default=0),
        "distribution": {count: sizes[count] for count in sorted(sizes)},
    }
    pairs = Counter(pair for target in targets for pair in combinations(sorted(target), 2))
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
    report.label_pairs = [
        {"labels": [names[first], names[second]], "rows": rows}
        for (first, second), rows in ranked[:MAX_PAIRS_SHOWN]
    ]
