"""TF-IDF + logistic regression: the baseline a fine-tuned model is compared with.

``evaluate`` fits it on the same train split as the model and scores it on the same rows, so a
report shows what the transformer adds over a linear model that trains in seconds; the model
card shows both (:func:`markdown_table`).

Label-scheme generic: a target is whatever the project's scheme encodes a row's labels as, and
the scheme's training feature (``scheme.as_feature``) decides the fit. A label id: one
multinomial logistic regression, softmax scores as the model's single-label head gives. A 0/1
row per label: one-vs-rest logistic regressions, a sigmoid score per label, whose decision
thresholds are tuned on the validation split as the model's are (``scheme.tune``), so neither
side of the comparison gets a decision rule the other lacks.

A text pair is one text to the baseline: both texts joined by a separator token
(``Example.joined``), so the features come from both texts but no feature relates one text to
the other -- what a cross-encoder adds.

scikit-learn is imported inside the functions: the commands import this module before their
options are checked.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data.examples import Example, load_examples

if TYPE_CHECKING:
    from .config import DataSection
    from .label_schemes import LabelScheme

log = logging.getLogger(__name__)

DESCRIPTION = "TF-IDF + logistic regression"
# Fits on at least this many texts log each step at INFO (150k NSMC reviews take minutes on one
# core); smaller ones, seconds at most, only at DEBUG.
PROGRESS_TEXTS = 20_000
# Inverse regularisation strength, measured on NSMC with make_vectorizer's features: accuracy
# 0.8714 at C=1, 0.8731 at C=2.
REGULARIZATION_C = 2.0


def make_vectorizer() -> Any:
    """Character 1-4-grams inside word boundaries plus word 1-2-grams, both TF-IDF with
    sublinear term frequency.

    Why: Korean words are stems with particles and endings attached (영화가, 영화는, 영화를),
    so whole-word features split one stem into many rare ones; character n-grams within a word
    share the stem, and need no tokenizer for any language. Word features keep the exact forms
    and pairs (안 보다) that carry meaning on their own. Sublinear tf (1 + log tf) stops a
    repeated syllable (ㅋㅋㅋㅋ) from dominating a text. Accuracy on NSMC (149,995 training and
    50,000 test reviews, C=1): words 1-2 0.8212; characters 1-4 0.8679; characters 1-4 + words
    0.8695; characters 2-5 + words 0.8690; characters 1-4 + words 1-2 0.8714 (this one; 0.8731
    at C=2). Features seen in one training text only are dropped (min_df=2): noise that lets
    the regression memorise single reviews.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True)
    # \w+ rather than the default \w\w+: one-syllable Korean words (잘, 꼭, 왜) count.
    words = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    return FeatureUnion([("chars", chars), ("words", words)])


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline: its scores and decisions for any texts."""

    scheme: LabelScheme
    num_labels: int
    vectorizer: Any
    classifier: Any
    # The label id of each column of the classifier's scores (a single-label fit only sees the
    # ids its training split holds; the others score 0).
    columns: tuple[int, ...]

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        """Per-label scores in [0, 1], one row per text, one column per label id."""
        scores = self.classifier.predict_proba(self.vectorizer.transform(list(texts)))
        rows = []
        for row in scores.tolist():
            full = [0.0] * self.num_labels
            for column, score in zip(self.columns, row, strict=True):
                full[column] = float(score)
            rows.append(full)
        return rows

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """The scheme's decision (a target) for each text."""
        return self.scheme.predict(self.probabilities(texts))

    def tuned(self, texts: Sequence[str], targets: Sequence[Any]) -> Baseline:
        """This baseline with the scheme's decision parameters fitted on these rows."""
        return replace(self, scheme=self.scheme.tune(self.probabilities(texts), targets))


def fit(
    texts: Sequence[str],
    targets: Sequence[Any],
    scheme: LabelScheme,
    num_labels: int,
    seed: int = 42,
    validation: tuple[Sequence[str], Sequence[Any]] | None = None,
) -> Baseline:
    """Fit the vectoriser and the regression on ``texts``; with ``validation`` (texts,
    targets), tune the scheme's decision parameters on it. The same inputs and seed give the
    same baseline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    if len(texts) != len(targets):
        raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
    if not texts:
        raise ValueError("the baseline needs training texts; the train split holds none")
    level = logging.INFO if len(texts) >= PROGRESS_TEXTS else logging.DEBUG
    # lbfgs is deterministic; random_state pins the seed for solvers that shuffle.
    regression = LogisticRegression(C=REGULARIZATION_C, max_iter=1000, random_state=seed)
    features = [scheme.as_feature(target, num_labels) for target in targets]
    if isinstance(features[0], list):  # one 0/1 cell per label: one regression per label
        classifier: Any = OneVsRestClassifier(regression)
        columns = tuple(range(num_labels))
    else:
        classifier = regression
        columns = tuple(sorted(set(features)))
        if len(columns) < 2:
            raise ValueError(
                "the baseline needs at least two labels in the train split; it holds only label id "
                f"{columns[0]}"
            )
    vectorizer = make_vectorizer()
    with _step(level, f"baseline: TF-IDF features of {len(texts)} training texts"):
        try:
            matrix = vectorizer.fit_transform(list(texts))
        except ValueError as error:  # scikit-learn: "empty vocabulary; ..."
            raise ValueError(f"the baseline cannot learn from these training texts: {error}") from None
    log.log(level, "baseline: %d features", matrix.shape[1])
    with _step(level, f"baseline: {DESCRIPTION} fit"):
        classifier.fit(matrix, features)
    baseline = Baseline(scheme, num_labels, vectorizer, classifier, columns)
    if validation is not None and validation[0]:
        baseline = baseline.tuned(*validation)
    return baseline


@contextmanager
def _step(level: int, what: str) -> Iterator[None]:
    start = time.monotonic()
    log.log(level, "%s ...", what)
    yield
    log.log(level, "%s done in %.1f s", what, time.monotonic() - start)


@dataclass(frozen=True)
class Splits:
    """What ``evaluate`` fits the baseline on: a train split, and the validation split its
    decisions are tuned on (as the model's are) when there is one."""

    train_path: Path
    train: list[Example]
    validation_path: Path | None = None
    validation: list[Example] = field(default_factory=list)


def read_splits(train_path: str | os.PathLike[str], train_format: str, data: DataSection) -> Splits:
    """The train split at ``train_path`` (labels in ``train_format``) and the prepared
    validation split (label ids) if it exists, read as training reads them: empty texts
    skipped."""
    train_path = Path(train_path)
    validation_path = Path(data.prepared_dir) / "validation"

    def read(path: Path, label_format: str) -> list[Example]:
        return load_examples(
            path,
            data.text_column,
            data.label_column,
            data.label_names,
            label_format=label_format,
            scheme=data.label_scheme,
            label_layout=data.label_layout,
            text_pair_column=data.pair_column,
        )

    train = read(train_path, train_format)
    if not validation_path.exists():
        return Splits(train_path, train)
    return Splits(train_path, train, validation_path, read(validation_path, "ids"))


def missing_train_note(train_path: str | os.PathLike[str]) -> str:
    """What ``evaluate`` says when there is no prepared train split to fit the baseline on."""
    return (
        f"no baseline: no prepared train split at {train_path}; run `data prepare` or pass "
        "--baseline-train FILE (--no-baseline skips the baseline)"
    )


def evaluate(
    examples: Sequence[Example], splits: Splits, scheme: LabelScheme, names: Sequence[str], seed: int = 42
) -> dict[str, Any]:
    """The baseline's metrics on ``examples`` (the rows the model was scored on): the scheme's
    ``compute_metrics`` figures, plus what it was fitted on (``train``, ``train_rows``) and the
    split its decisions were tuned on (``tuned_on``; None where the scheme has nothing to tune)."""
    validation = splits.validation
    baseline = fit(
        [e.joined for e in splits.train],
        [e.label for e in splits.train],
        scheme,
        len(names),
        seed,
        ([e.joined for e in validation], [e.label for e in validation]) if validation else None,
    )
    predicted = baseline.predict([e.joined for e in examples])
    metrics = baseline.scheme.compute_metrics([e.label for e in examples], predicted, names)
    metrics["method"] = DESCRIPTION
    metrics["train"] = str(splits.train_path)
    metrics["train_rows"] = len(splits.train)
    metrics["tuned_on"] = str(splits.validation_path) if baseline.scheme != scheme else None
    return metrics


def describe(metrics: dict[str, Any]) -> str:
    """One line saying what the baseline (``evaluate``'s metrics) was fitted and tuned on."""
    tuned = f", decision thresholds tuned on {metrics['tuned_on']}" if metrics.get("tuned_on") else ""
    return f"baseline: {metrics['method']} fitted on {metrics['train']} ({metrics['train_rows']} rows){tuned}"


def compare(
    model_metrics: dict[str, Any], baseline_metrics: dict[str, Any], metric_names: Sequence[str]
) -> dict[str, float]:
    """Model minus baseline for each named metric both hold (positive: the model scores
    higher, which is worse for a lower-is-better metric)."""
    return {
        name: float(model_metrics[name]) - float(baseline_metrics[name])
        for name in metric_names
        if name in model_metrics and name in baseline_metrics
    }


def _rows(
    model_metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
    metric_names: Sequence[str],
    lower_is_better: Collection[str],
) -> list[tuple[str, str, str, str]]:
    difference = compare(model_metrics, baseline_metrics, metric_names)
    return [
        (
            f"{name} (lower is better)" if name in lower_is_better else name,
            f"{model_metrics[name]:.4f}",
            f"{baseline_metrics[name]:.4f}",
            f"{value:+.4f}",
        )
        for name, value in difference.items()
    ]


HEADER = ("metric", "model", "baseline", "difference")


def text_table(
    model_metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
    metric_names: Sequence[str],
    lower_is_better: Collection[str] = (),
) -> str:
    """Model, baseline and difference per metric, aligned for a terminal."""
    rows = [HEADER, *_rows(model_metrics, baseline_metrics, metric_names, lower_is_better)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join([row[0].ljust(widths[0]), *(cell.rjust(widths[i]) for i, cell in enumerate(row) if i)])
        for row in rows
    )


def markdown_table(
    model_metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
    metric_names: Sequence[str],
    lower_is_better: Collection[str] = (),
) -> str:
    """Model, baseline and difference per metric as a Markdown table (for the model card)."""
    rows = _rows(model_metrics, baseline_metrics, metric_names, lower_is_better)
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|---|---:|---:|---:|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"
