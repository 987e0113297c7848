"""Check a labelled dataset before training: structure, labels, empty and duplicate texts, stats.

Errors make a file unusable for training as it is (missing columns, unknown labels); warnings
are worth a look but training can proceed (empty texts are dropped, duplicates are kept).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataFormatError
from ..label_schemes.label_values import LabelError, LabelMap, UnknownLabelsError, decide_format, label_key
from .io import RowReader, missing_columns_message

# Long lists of row numbers help nobody; the count is always exact.
MAX_LINES_SHOWN = 10


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
        return {
            "path": self.path,
            "rows": self.rows,
            "encoding": self.encoding,
            "errors": [f.__dict__ for f in self.errors],
            "warnings": [f.__dict__ for f in self.warnings],
            "class_counts": self.class_counts,
            "text_length_chars": self.length_stats,
        }

    def render(self) -> str:
        lines = [f"{self.path}: {self.rows} rows ({self.encoding})"]
        if self.class_counts:
            total = sum(self.class_counts.values()) or 1
            lines.append("class balance:")
            for name, count in self.class_counts.items():
                lines.append(f"  {name:<20} {count:>8}  {count / total:6.1%}")
        if self.length_stats:
            stats = self.length_stats
            lines.append(
                "text length (chars): min {min:.0f}, median {median:.0f}, mean {mean:.1f}, "
                "p95 {p95:.0f}, max {max:.0f}".format(**stats)
            )
        lines.extend(f.render() for f in self.findings)
        lines.append(
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
            + ("" if self.ok else ": fix the errors before training")
        )
        return "\n".join(lines)


def validate_file(
    path: str | os.PathLike[str],
    text_column: str,
    label_column: str,
    label_names: Sequence[str],
    *,
    unlabelled: bool = False,
    label_format: str = "auto",
) -> ValidationReport:
    """Validate one data file; ``unlabelled`` skips label checks (e.g. files to predict on).
    Labels are ids or names for the whole file, as training reads it (``label_format``: as in
    [data])."""
    report = ValidationReport(str(path))
    required = [text_column] if unlabelled else [text_column, label_column]
    empty, non_text = [], []
    label_lines: dict[str, list[int]] = defaultdict(list)
    by_text: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    lengths = []
    try:
        reader = RowReader(path)
        report.encoding = reader.encoding
        if any(name not in reader.columns for name in required):
            report.add("error", missing_columns_message(path, reader.columns, required, label_names))
            return report
        for row in reader:
            report.rows += 1
            text = row.values.get(text_column)
            key = None
            if not unlabelled:
                key = label_key(row.values.get(label_column))
                label_lines[key].append(row.line)
            if text is None or (isinstance(text, str) and not text.strip()):
                empty.append(row.line)
                continue
            if not isinstance(text, str):
                non_text.append(row.line)
                continue
            lengths.append(len(text))
            by_text[text.strip()].append((row.line, key))
    except DataFormatError as error:
        report.add("error", str(error))
        return report
    for warning in reader.warnings:
        report.add("warning", warning)
    if not report.rows:
        report.add("error", "the file has a header but no rows")
        return report

    ids: dict[str, int] | None = None
    if not unlabelled:
        ids = _label_ids(label_lines, label_column, label_names, label_format, report)
    if non_text:
        report.add("error", f"{len(non_text)} row(s) whose {text_column!r} is not text", non_text)
    if empty:
        message = f"{len(empty)} row(s) with an empty or whitespace-only text (dropped by `data prepare`)"
        report.add("warning", message, empty)
    duplicates = [lines for lines in by_text.values() if len(lines) > 1]
    if duplicates:
        extra = [line for group in duplicates for line, _ in group[1:]]
        report.add("warning", f"{len(extra)} duplicate text(s) in {len(duplicates)} group(s)", extra)

        def label_of(key: str | None) -> int | str | None:
            # Raw values stand in for ids when the file's labels could not be read one way.
            return key if ids is None or key is None else ids.get(key)

        conflicting = [group for group in duplicates if len({label_of(key) for _, key in group} - {None}) > 1]
        if conflicting:
            lines = [line for group in conflicting for line, _ in group]
            report.add("warning", f"{len(conflicting)} text(s) appear with conflicting labels", lines)
    if ids is not None:
        counts: Counter[int] = Counter()
        for key, lines in label_lines.items():
            if key in ids:
                counts[ids[key]] += len(lines)
        report.class_counts = {name: counts.get(i, 0) for i, name in enumerate(label_names)}
        for name, count in report.class_counts.items():
            if count == 0:
                report.add("warning", f"label {name!r} has no rows")
    if lengths:
        ordered = sorted(lengths)
        report.length_stats = {
            "min": ordered[0],
            "median": statistics.median(ordered),
            "mean": statistics.fmean(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "max": ordered[-1],
        }
    return report


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
