"""Batch prediction and evaluation on data files, through the container's handler functions."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DataSection
from ..data.examples import Example, load_examples, require_columns, resolve_data_file
from ..data.io import Table, jsonl_line, read_table
from ..errors import DataFormatError, UsageError
from ..label_schemes import LabelScheme
from ..metrics import save_confusion_matrix_png, save_per_label_png
from . import inference
from .options import OUTPUT_SUFFIXES

logger = logging.getLogger(__name__)

# predict works through its input in chunks of this many forward passes, in input order: each
# chunk is written (and flushed) before the next one starts, so an interrupted run keeps what it
# finished, and the progress bar's rate is an average over texts of every length from the first
# chunk on (each chunk is sorted by length only within itself, for little padding).
CHUNK_BATCHES = 8


class ModelLabelsError(ValueError):
    """The model's labels do not match the configured label names."""


@dataclass
class BatchReport:
    """What a predict or evaluate run did, beyond the scores: for the summary lines."""

    rows: int
    # Line numbers (in the input file) of empty or whitespace-only texts; they were scored too.
    empty_lines: list[int] = field(default_factory=list)
    # Texts longer than the model's token limit, cut to it.
    truncated: int = 0
    max_length: int = 0

    def notes(self) -> list[str]:
        found = []
        if self.empty_lines:
            shown = ", ".join(str(line) for line in self.empty_lines[:5])
            more = f" and {len(self.empty_lines) - 5} more" if len(self.empty_lines) > 5 else ""
            found.append(f"{len(self.empty_lines)} of {self.rows} texts are empty (lines {shown}{more})")
        if self.truncated:
            found.append(
                f"{self.truncated} of {self.rows} texts were longer than {self.max_length} tokens and "
                "were truncated (see --max-length)"
            )
        return found


def load_classifier(
    model_dir: str | os.PathLike[str], batch_size: int | None = None, engine: str = "auto"
) -> inference.Classifier:
    """``model_fn`` on a local folder, with a clear error when it is not a model folder."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise DataFormatError(
            f"{folder}: not a model folder (no config.json); train first or pass --model with "
            "the folder training wrote"
        )
    try:
        classifier = inference.load_model(str(folder), engine=engine)
    except inference.EngineError as error:
        raise UsageError(str(error)) from None
    if batch_size:
        classifier.batch_size = batch_size
    return classifier


def classify(
    classifier: inference.Classifier,
    texts: Sequence[str],
    max_length: int | None = None,
    progress: bool = True,
    description: str = "predict",
    pairs: Sequence[str] | None = None,
) -> inference.Prediction:
    """All label scores for every text (with ``pairs``: every text pair), in input order, with
    a progress bar."""
    chunks = list(classify_chunks(classifier, texts, max_length, progress, description, pairs))
    request = inference.Request(
        list(texts), None if pairs is None else list(pairs), top_k=None, legacy=False, max_length=max_length
    )
    scores = [row for chunk in chunks for row in chunk.scores]
    truncated = sum(chunk.truncated for chunk in chunks)
    return inference.Prediction(request, list(classifier.labels), scores, classifier.scheme, truncated)


def classify_chunks(
    classifier: inference.Classifier,
    texts: Sequence[str],
    max_length: int | None = None,
    progress: bool = True,
    description: str = "predict",
    pairs: Sequence[str] | None = None,
) -> Iterator[inference.Prediction]:
    """Label scores chunk by chunk (see ``CHUNK_BATCHES``), in input order, with a progress bar
    whose rate and ETA are averages over the whole run so far; ``pairs``: the second texts."""
    from tqdm.auto import tqdm

    size = max(classifier.batch_size, 1) * CHUNK_BATCHES
    # smoothing=0: a run-wide average, not the latest batches' rate, which swings within each
    # chunk from its longest texts to its shortest.
    with tqdm(total=len(texts), unit="text", desc=description, disable=not progress, smoothing=0) as bar:
        for start in range(0, len(texts), size):
            chunk = list(texts[start : start + size])
            request = inference.Request(
                chunk,
                None if pairs is None else list(pairs[start : start + size]),
                top_k=None,
                legacy=False,
                max_length=max_length,
                progress=bar.update,
            )
            yield inference.predict_fn(request, classifier)


def prediction_columns(scheme: LabelScheme, labels: Sequence[str]) -> list[str]:
    """The columns ``predict`` adds: the predicted label and its score, or for a multi-label
    model the decided labels; then every label's score."""
    if scheme.label_sets:
        return ["predicted_labels", *inference.score_columns(labels)]
    return ["predicted_label", "score", *inference.score_columns(labels)]


def prediction_values(prediction: inference.Prediction, index: int, as_list: bool = False) -> list[Any]:
    """The values of :func:`prediction_columns` for one text. A multi-label model's decided
    labels are joined by its delimiter (a CSV cell) or, with ``as_list``, a list (JSON)."""
    row, scheme = prediction.scores[index], prediction.scheme
    (chosen,) = scheme.predict([row])
    scores = [round(score, 6) for score in row]
    if scheme.label_sets:
        decided = (
            scheme.label_list(chosen, prediction.labels)
            if as_list
            else scheme.decode(chosen, prediction.labels)
        )
        return [decided, *scores]
    return [scheme.decode(chosen, prediction.labels), round(row[chosen], 6), *scores]


@dataclass
class TextFile:
    """The rows of a file to predict, read (and checked) before the model is loaded."""

    source: Path
    table: Table
    texts: list[str]
    # The second texts, when the rows are text pairs.
    pairs: list[str] | None = None

    def empty_lines(self) -> list[int]:
        """Lines whose text (or a text of whose pair) is empty or blank."""
        halves = [self.texts] if self.pairs is None else [self.texts, self.pairs]
        return [
            row.line
            for row, *texts in zip(self.table.rows, *halves, strict=True)
            if not all(text.strip() for text in texts)
        ]


@dataclass
class LabelledFile:
    """The labelled rows to evaluate, read (and checked) before the model is loaded."""

    source: Path
    examples: list[Example]


def read_texts(
    input_path: str | os.PathLike[str], text_column: str, pair_column: str | None = None
) -> TextFile:
    """Read a CSV/TSV/JSONL file (or the one inside a folder) and its texts; with
    ``pair_column``, each row's text pair (a model that reads pairs).

    A file without rows is an error rather than an output with only a header: there is nothing
    to predict, and an empty output would pass for a successful run in a pipeline."""
    source = resolve_data_file(input_path)
    table = read_table(source)
    for warning in table.warnings:  # e.g. rows whose fields are all empty, skipped
        logger.warning(warning)
    if not table.rows:
        what = "only a header line" if table.columns else "the file is empty"
        raise DataFormatError(f"{source}: no rows to predict ({what})")
    require_columns(table.columns, (text_column,), source, option="--text-column")
    if pair_column is not None:
        require_columns(table.columns, (pair_column,), source, option="--text-pair-column")
    columns = [text_column] if pair_column is None else [text_column, pair_column]
    found: list[list[str]] = [[] for _ in columns]
    for row in table.rows:
        for column, texts in zip(columns, found, strict=True):
            text = row.values.get(column)
            if not isinstance(text, str):
                raise DataFormatError(
                    f"{source}: line {row.line}: column {column!r} must hold text, got {text!r}"
                )
            texts.append(text)
    return TextFile(source, table, found[0], found[1] if pair_column is not None else None)


def predict_texts(
    classifier: inference.Classifier,
    data: TextFile,
    output_path: str | os.PathLike[str],
    max_length: int | None = None,
    progress: bool = True,
) -> BatchReport:
    """Predict every row of ``data``; the output keeps the input columns and order.

    Rows are written as their chunk finishes: when the run is interrupted, the output holds
    the rows done so far (the first ones of the input), and a warning says how many."""
    added = prediction_columns(classifier.scheme, classifier.labels)
    as_list = is_jsonl(output_path)
    clash = sorted(set(added) & set(data.table.columns))
    if clash:
        raise DataFormatError(f"{data.source}: input already has output column(s) {clash}; rename them")
    rows = data.table.rows
    written = truncated = 0
    with open_records(output_path, [*data.table.columns, *added]) as write:
        try:
            for prediction in classify_chunks(classifier, data.texts, max_length, progress, pairs=data.pairs):
                write(
                    [
                        {
                            **row.values,
                            **dict(zip(added, prediction_values(prediction, i, as_list), strict=True)),
                        }
                        for i, row in enumerate(rows[written : written + len(prediction.scores)])
                    ]
                )
                written += len(prediction.scores)
                truncated += prediction.truncated
        except KeyboardInterrupt:
            logger.warning(
                "interrupted: %s holds the predictions of the first %d of %d rows (input lines up to %s)",
                output_path,
                written,
                len(rows),
                rows[written - 1].line if written else "none",
            )
            raise
    return BatchReport(len(rows), data.empty_lines(), truncated, max_length or classifier.max_length)


def read_labelled(data_path: str | os.PathLike[str], data: DataSection, label_format: str) -> LabelledFile:
    """Read the labelled rows of a file (or of the one inside a folder).

    Empty texts are kept: they are scored like any other (an endpoint gets them too) and
    reported with their line numbers, where training skips them. Labels are read with the
    project's label scheme ([data].task); a text-pair project's rows are pairs."""
    source = resolve_data_file(data_path)
    examples = load_examples(
        source,
        data.text_column,
        data.label_column,
        data.label_names,
        skip_empty=False,
        label_format=label_format,
        scheme=data.label_scheme,
        label_layout=data.label_layout,
        text_pair_column=data.pair_column,
    )
    if not examples:
        raise DataFormatError(f"{source}: no labelled rows to evaluate (only a header line)")
    return LabelledFile(source, examples)


def evaluate_examples(
    classifier: inference.Classifier,
    data: LabelledFile,
    out_dir: str | os.PathLike[str],
    section: DataSection,
    max_length: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write metrics.json, confusion_matrix.png (single-label) or per_label.png (multi-label)
    and misclassified.csv; return
    the metrics. A multi-label text counts as misclassified unless its whole label set is right."""
    text_column, label_names = section.text_column, section.label_names
    if list(classifier.labels) != list(label_names):
        raise ModelLabelsError(
            f"the model's labels {classifier.labels} differ from the configured label names "
            f"{list(label_names)}; evaluate with the configuration the model was trained with"
        )
    scheme = classifier.scheme
    if scheme.name != section.label_scheme.name:
        raise ModelLabelsError(
            f"the model was trained as {scheme.name} but config.toml's [data].task is "
            f"{section.label_scheme.name!r}; evaluate with the configuration the model was trained with"
        )
    pair_column = section.pair_column
    if bool(classifier.text_pair_columns) != (pair_column is not None):
        reads = "text pairs" if classifier.text_pair_columns else "one text"
        raise ModelLabelsError(
            f"the model reads {reads} per example but config.toml's [data].task is "
            f"{section.task!r}; evaluate with the configuration the model was trained with"
        )
    examples = data.examples
    texts = [e.text for e in examples]
    pairs = None if pair_column is None else [e.text_pair or "" for e in examples]
    prediction = classify(classifier, texts, max_length, progress, "evaluate", pairs)
    predicted = scheme.predict(prediction.scores)
    metrics = scheme.compute_metrics([e.label for e in examples], predicted, label_names)
    metrics["data"] = str(data.source)
    empty = [e.line for e in examples if not all(text.strip() for text in e.texts)]
    report = BatchReport(len(texts), empty, prediction.truncated, max_length or classifier.max_length)
    metrics["empty_texts"] = len(report.empty_lines)
    metrics["empty_text_lines"] = report.empty_lines
    metrics["truncated_texts"] = report.truncated
    metrics["max_length"] = report.max_length
    metrics["notes"] = report.notes()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(
        json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    if "confusion_matrix" in metrics:
        save_confusion_matrix_png(metrics["confusion_matrix"], label_names, out / "confusion_matrix.png")
    else:
        save_per_label_png(metrics["per_class"], label_names, out / "per_label.png")
    true_column = "true_labels" if scheme.label_sets else "true_label"
    # A pair's misclassified row shows both texts, under the project's column names.
    text_columns = [text_column] if pair_column is None else [text_column, pair_column]
    columns = ["line", *text_columns, true_column, *prediction_columns(scheme, prediction.labels)]
    wrong = []
    for i, e in enumerate(examples):
        if predicted[i] == e.label:
            continue
        values = [e.line, *e.texts, scheme.decode(e.label, label_names), *prediction_values(prediction, i)]
        wrong.append(
            (
                # Rounded as misclassified.csv shows scores: ties keep the input order.
                round(scheme.mistake_score(prediction.scores[i], e.label), 6),
                dict(zip(columns, values, strict=True)),
            )
        )
    # Most confident mistakes first: those are the likeliest label errors or blind spots.
    wrong.sort(key=lambda pair: -pair[0])
    with open_records(out / "misclassified.csv", columns) as write:
        write([record for _, record in wrong])
    return metrics


def evaluation_summary(metrics: dict[str, Any]) -> str:
    """The line ``evaluate`` prints: the split's headline scores."""
    if "accuracy" in metrics:
        return (
            f"{metrics['num_examples']} examples: accuracy {metrics['accuracy']:.4f}, "
            f"macro-F1 {metrics['macro_f1']:.4f}"
        )
    return (
        f"{metrics['num_examples']} examples: micro-F1 {metrics['micro_f1']:.4f}, macro-F1 "
        f"{metrics['macro_f1']:.4f}, exact match {metrics['exact_match']:.4f}, Hamming loss "
        f"{metrics['hamming_loss']:.4f}"
    )


def is_jsonl(path: str | os.PathLike[str]) -> bool:
    """Whether :func:`open_records` writes JSON Lines to ``path`` (by its extension)."""
    return Path(path).suffix.lower() in (".jsonl", ".json")


@contextlib.contextmanager
def open_records(
    path: str | os.PathLike[str], columns: Sequence[str]
) -> Iterator[Callable[[Sequence[dict[str, Any]]], None]]:
    """A writer of CSV, TSV (.tsv/.txt) or JSON Lines records, by the file's extension: each
    call appends records and flushes them."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise DataFormatError(f"{path}: output must end in {', '.join(OUTPUT_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonl = is_jsonl(path)
    # A byte-order mark lets spreadsheet programs detect UTF-8 (Korean text otherwise garbles).
    encoding = "utf-8" if jsonl else "utf-8-sig"
    with open(path, "w", encoding=encoding, newline="\n" if jsonl else "") as handle:
        delimiter = "," if suffix == ".csv" else "\t"
        table = csv.DictWriter(
            handle, list(columns), delimiter=delimiter, extrasaction="ignore", lineterminator="\n"
        )
        if not jsonl:
            table.writeheader()

        def write(records: Sequence[dict[str, Any]]) -> None:
            if jsonl:
                handle.writelines(jsonl_line(record) for record in records)
            else:
                table.writerows(records)
            handle.flush()

        yield write
