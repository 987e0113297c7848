"""Check a labelled dataset before training: structure, labels, empty and duplicate texts, stats.

Errors make a file unusable for training as it is (missing columns, unknown labels); warnings
are worth a look but training can proceed (empty texts are dropped, duplicates are kept).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .io import DataFormatError, read_table
from .labels import LabelError, LabelMap

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
    label_names: tuple[str, ...] | list[str],
    *,
    unlabelled: bool = False,
) -> ValidationReport:
    """Validate one data file; ``unlabelled`` skips label checks (e.g. files to predict on)."""
    report = ValidationReport(str(path))
    try:
        table = read_table(path)
    except DataFormatError as error:
        report.findings.append(Finding("error", str(error)))
        return report
    report.rows, report.encoding = len(table), table.encoding
    required = [text_column] if unlabelled else [text_column, label_column]
    missing = [name for name in required if name not in table.columns]
    if missing:
        report.findings.append(
            Finding(
                "error",
                f"missing column(s) {', '.join(map(repr, missing))}; the file has "
                f"{', '.join(map(repr, table.columns))}; set text_column/label_column in config.toml",
            )
        )
        return report
    if not table.rows:
        report.findings.append(Finding("error", "the file has a header but no rows"))
        return report

    labels = LabelMap(label_names)
    empty, non_text, unknown_labels = [], [], defaultdict(list)
    by_text: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    counts: Counter[int] = Counter()
    lengths = []
    for row in table.rows:
        text = row.values.get(text_column)
        label_id = None
        if not unlabelled:
            raw_label = row.values.get(label_column)
            try:
                label_id = labels.to_id(raw_label)
                counts[label_id] += 1
            except LabelError:
                unknown_labels[str(raw_label)].append(row.line)
        if text is None or (isinstance(text, str) and not text.strip()):
            empty.append(row.line)
            continue
        if not isinstance(text, str):
            non_text.append(row.line)
            continue
        lengths.append(len(text))
        by_text[text.strip()].append((row.line, label_id))

    for value, lines in sorted(unknown_labels.items(), key=lambda item: item[1][0]):
        accepted = ", ".join(f"{i}/{n!r}" for i, n in enumerate(labels.names))
        report.findings.append(
            Finding(
                "error",
                f"{len(lines)} row(s) with label {value!r} outside the label names ({accepted})",
                lines,
            )
        )
    if non_text:
        report.findings.append(
            Finding("error", f"{len(non_text)} row(s) whose {text_column!r} is not text", non_text)
        )
    if empty:
        report.findings.append(
            Finding(
                "warning",
                f"{len(empty)} row(s) with an empty or whitespace-only text (dropped by `data prepare`)",
                empty,
            )
        )
    duplicates = [lines for lines in by_text.values() if len(lines) > 1]
    if duplicates:
        extra = [line for group in duplicates for line, _ in group[1:]]
        report.findings.append(
            Finding("warning", f"{len(extra)} duplicate text(s) in {len(duplicates)} group(s)", extra)
        )
        conflicting = [
            group for group in duplicates if len({label for _, label in group if label is not None}) > 1
        ]
        if conflicting:
            report.findings.append(
                Finding(
                    "warning",
                    f"{len(conflicting)} text(s) appear with conflicting labels",
                    [line for group in conflicting for line, _ in group],
                )
            )
    if not unlabelled:
        report.class_counts = {labels.names[i]: counts.get(i, 0) for i in range(len(labels))}
        for name, count in report.class_counts.items():
            if count == 0:
                report.findings.append(Finding("warning", f"label {name!r} has no rows"))
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
