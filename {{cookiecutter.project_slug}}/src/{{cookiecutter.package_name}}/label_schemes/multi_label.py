"""Several labels per text (or none): label sets read from a delimited cell, a JSON list or one
0/1 column per label; a sigmoid per label, binary cross-entropy (optionally with per-label
positive weights for rare labels), a decision threshold per label tuned on the validation split
to maximise that label's F1, micro/macro F1, per-label figures, Hamming loss and exact match.

A target is a tuple of label ids, sorted and unique, possibly empty. torch is imported inside
the methods that need it: the data commands and the cookiecutter hooks import this module
without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .label_values import LabelError, LabelMap, UnknownLabelsError, decide_format, label_key

if TYPE_CHECKING:
    import torch

    from . import LabelScheme

log = logging.getLogger(__name__)

DEFAULT_DELIMITER = "|"
DEFAULT_THRESHOLD = 0.5
# How a 0/1 label column may write yes and no (spreadsheets, pandas, JSON booleans).
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"0", "false", "no", "n"})


def cell_elements(raw: Any, delimiter: str) -> list[Any]:
    """The label values one cell holds: the items of a list (JSON Lines), the parts of a
    delimited string (blank parts dropped), nothing for an empty cell or null."""
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return list(raw)
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(delimiter) if part.strip()]
    return [raw]


def read_flag(value: Any) -> bool | None:
    """A 0/1 label column's cell as True/False; None for anything else."""
    if isinstance(value, bool):
        return value
    key = label_key(value).casefold()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return None


@dataclass(frozen=True)
class MultiLabel:
    """The multi-label scheme (see :class:`~.LabelScheme` for what each member decides)."""

    # Joins several labels in one text cell (label_layout "column") and in decoded predictions.
    delimiter: str = DEFAULT_DELIMITER
    # Per label id; empty: DEFAULT_THRESHOLD for every label (an untuned model).
    thresholds: tuple[float, ...] = ()
    name: str = "multi_label"
    problem_type: str = "multi_label_classification"
    metric_names: tuple[str, ...] = (
        "micro_f1",
        "macro_f1",
        "micro_precision",
        "micro_recall",
        "hamming_loss",
        "exact_match",
    )
    best_metric: str = "micro_f1"
    lower_is_better: frozenset[str] = frozenset({"hamming_loss"})
    label_sets: bool = True

    def cell_key(self, raw: Any) -> Any:
        # The raw form (a JSON list as a tuple), which the reader splits into label values itself.
        return tuple(raw) if isinstance(raw, list) else raw

    def cell_values(self, raw: Any) -> list[Any]:
        return cell_elements(raw, self.delimiter)

    def label_reader(
        self, values: Mapping[Any, Any] | Iterable[Any], names: Sequence[str], label_format: str = "auto"
    ) -> Callable[[Any], tuple[int, ...]]:
        """Read cells holding label sets. The ids-or-names decision is made over every label
        value in every cell of the file (as the single-label scheme does over its cells); a
        string cell is split at ``delimiter``."""
        lines = values if isinstance(values, Mapping) else dict.fromkeys(values)
        elements: dict[Any, Any] = {}
        for cell, line in lines.items():
            for element in cell_elements(list(cell) if isinstance(cell, tuple) else cell, self.delimiter):
                key = label_key(element)
                known = elements.get(key)
                if key not in elements or (line is not None and (known is None or line < known)):
                    elements[key] = line
        try:
            label_map = LabelMap(names, decide_format(elements, names, label_format))
        except UnknownLabelsError as error:
            raise UnknownLabelsError(
                str(error) + self._delimiter_hint(lines, names), error.values, error.lines
            ) from None

        def read(raw: Any) -> tuple[int, ...]:
            return tuple(sorted({label_map.to_id(element) for element in cell_elements(raw, self.delimiter)}))

        return read

    def _delimiter_hint(self, cells: Mapping[Any, Any], names: Sequence[str]) -> str:
        """Why values may be unknown: the delimiter occurs in no cell, while another does."""
        texts = [cell for cell in cells if isinstance(cell, str)]
        if not texts or any(self.delimiter in text for text in texts):
            return ""
        others = [char for char in ",;/|+" if char != self.delimiter and any(char in text for text in texts)]
        seen = f" (the cells contain {', '.join(repr(char) for char in others)})" if others else ""
        return (
            f". The label delimiter {self.delimiter!r} occurs in no cell{seen}: set "
            "[data].label_delimiter in config.toml (the label_delimiter answer when generating) to "
            "the character that separates the labels"
        )

    def read_columns(self, row: Mapping[str, Any], names: Sequence[str]) -> tuple[int, ...]:
        """A target from one 0/1 column per label (label_layout "columns"); raises
        :class:`LabelError` naming the column and the value it cannot read."""
        chosen = []
        for index, name in enumerate(names):
            flag = read_flag(row.get(name))
            if flag is None:
                raise LabelError(f"column {name!r} must hold 0 or 1 (or true/false), got {row.get(name)!r}")
            if flag:
                chosen.append(index)
        return tuple(chosen)

    def as_feature(self, target: Sequence[int], num_labels: int) -> list[float]:
        row = [0.0] * num_labels
        for index in target:
            row[index] = 1.0
        return row

    def from_feature(self, value: Any) -> tuple[int, ...]:
        row = value.tolist() if hasattr(value, "tolist") else value
        return tuple(index for index, flag in enumerate(row) if flag >= 0.5)

    def label_counts(self, targets: Iterable[Sequence[int]], num_labels: int) -> list[int]:
        counts = [0] * num_labels
        for target in targets:
            for index in target:
                counts[index] += 1
        return counts

    def empty_rows(self, targets: Iterable[Sequence[int]]) -> int:
        return sum(1 for target in targets if not target)

    def class_weights(
        self, choice: str, targets: Sequence[Sequence[int]], names: Sequence[str]
    ) -> list[float] | None:
        """ "balanced": a positive weight per label, its negatives / positives in the training
        targets (as ``BCEWithLogitsLoss``'s ``pos_weight`` is meant to be set), so a rare label's
        few positives count as much as its negatives. A label without positives gets 1."""
        if choice == "none":
            return None
        positives = self.label_counts(targets, len(names))
        weights = [(len(targets) - count) / count if count else 1.0 for count in positives]
        missing = [name for name, count in zip(names, positives, strict=True) if not count]
        if missing:
            log.warning("no training examples for %s: positive weight 1", ", ".join(missing))
        log.info(
            "label positive weights: %s",
            ", ".join(f"{name} {weight:.3f}" for name, weight in zip(names, weights, strict=True)),
        )
        return weights

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: Sequence[float] | None
    ) -> torch.Tensor:
        """Mean binary cross-entropy over every (text, label) cell, in float32."""
        import torch

        pos_weight = None
        if weights is not None:
            pos_weight = torch.tensor(list(weights), dtype=torch.float32, device=logits.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), pos_weight=pos_weight
        )

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().sigmoid()

    def threshold(self, index: int) -> float:
        return self.thresholds[index] if self.thresholds else DEFAULT_THRESHOLD

    def predict(self, probabilities: Any) -> list[tuple[int, ...]]:
        """Every label whose score reaches its threshold, per row."""
        rows = probabilities.tolist() if hasattr(probabilities, "tolist") else probabilities
        return [tuple(i for i, score in enumerate(row) if score >= self.threshold(i)) for row in rows]

    def tune(self, probabilities: Any, targets: Sequence[Sequence[int]]) -> MultiLabel:
        """A copy whose thresholds maximise each label's F1 on these rows (the validation
        split): see :func:`best_threshold`. A label without positives keeps the default."""
        rows = probabilities.tolist() if hasattr(probabilities, "tolist") else list(map(list, probabilities))
        if len(rows) != len(targets):
            raise ValueError(f"{len(rows)} rows of scores but {len(targets)} targets")
        num_labels = len(rows[0]) if rows else len(self.thresholds)
        sets = [set(target) for target in targets]
        thresholds = tuple(
            best_threshold([row[i] for row in rows], [i in chosen for chosen in sets])
            for i in range(num_labels)
        )
        return replace(self, thresholds=thresholds)

    def model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"label_scheme": self.name, "label_delimiter": self.delimiter}
        if self.thresholds:
            config["label_thresholds"] = list(self.thresholds)
        return config

    def decision_thresholds(self, num_labels: int) -> list[float] | None:
        return [self.threshold(index) for index in range(num_labels)]

    def mistake_score(self, scores: Sequence[float], target: Sequence[int]) -> float:
        """The surest wrong decision: a wrongly chosen label's score, or one minus a missed
        label's score."""
        (chosen,) = self.predict([scores])
        wrong = set(chosen) ^ set(target)
        return max((scores[i] if i in chosen else 1 - scores[i] for i in wrong), default=0.0)

    def decode(self, prediction: Sequence[int], names: Sequence[str]) -> str:
        return self.delimiter.join(self.label_list(prediction, names))

    def label_list(self, prediction: Sequence[int], names: Sequence[str]) -> list[str]:
        return [names[index] for index in prediction]

    def compute_metrics(
        self, y_true: Sequence[Sequence[int]], y_pred: Sequence[Sequence[int]], names: Sequence[str]
    ) -> dict[str, Any]:
        """Micro/macro F1, micro precision/recall, Hamming loss (wrong cells / all cells),
        exact match (rows whose whole set is right), per-label figures and 2x2 matrices.

        Counted from the label sets directly: scikit-learn reads a one-label indicator matrix as
        a binary target and would score class 0 instead. An empty split scores 0; a label never
        predicted (or never present) has precision (or recall) 0, as ``zero_division=0``.
        """
        names = list(names)
        if len(y_true) != len(y_pred):
            raise ValueError(f"y_true has {len(y_true)} rows but y_pred has {len(y_pred)}")
        out_of_range = sorted({i for row in (*y_true, *y_pred) for i in row if not 0 <= i < len(names)})
        if out_of_range:
            raise ValueError(f"label id(s) {out_of_range} outside 0..{len(names) - 1} ({', '.join(names)})")
        truth, guess = [set(row) for row in y_true], [set(row) for row in y_pred]
        tp, fp, fn = ([0] * len(names) for _ in range(3))
        for true_set, guess_set in zip(truth, guess, strict=True):
            for index in true_set & guess_set:
                tp[index] += 1
            for index in guess_set - true_set:
                fp[index] += 1
            for index in true_set - guess_set:
                fn[index] += 1
        rows = len(truth)
        per_label = [_scores(tp[i], fp[i], fn[i]) for i in range(len(names))]
        micro = _scores(sum(tp), sum(fp), sum(fn))
        metrics: dict[str, Any] = {
            "num_examples": rows,
            "labels": names,
            "micro_precision": micro[0],
            "micro_recall": micro[1],
            "micro_f1": micro[2],
            "macro_f1": sum(scores[2] for scores in per_label) / len(names) if rows else 0.0,
            "hamming_loss": (sum(fp) + sum(fn)) / (rows * len(names)) if rows else 0.0,
            "exact_match": sum(t == g for t, g in zip(truth, guess, strict=True)) / rows if rows else 0.0,
        }
        metrics["per_class"] = {
            name: {
                "precision": per_label[i][0],
                "recall": per_label[i][1],
                "f1": per_label[i][2],
                "support": tp[i] + fn[i],
            }
            for i, name in enumerate(names)
        }
        # scikit-learn's multilabel_confusion_matrix layout: [[tn, fp], [fn, tp]] per label.
        metrics["label_confusion"] = {
            name: [[rows - tp[i] - fp[i] - fn[i], fp[i]], [fn[i], tp[i]]] for i, name in enumerate(names)
        }
        metrics["empty_true"] = self.empty_rows(y_true)
        metrics["empty_predicted"] = self.empty_rows(y_pred)
        if self.thresholds:
            metrics["thresholds"] = {name: self.thresholds[i] for i, name in enumerate(names)}
        return metrics


def _scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; 0 where a denominator is 0."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def best_threshold(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The threshold that maximises F1 for one label: the midpoint below the lowest score it
    keeps, so a score equal to a validation positive's is still chosen. Ties go to the higher
    threshold (fewer false positives); without positives the default stays."""
    total = sum(positive)
    if not total:
        return DEFAULT_THRESHOLD
    ranked = sorted(zip(scores, positive, strict=True), key=lambda pair: -pair[0])
    best_f1, best = -1.0, DEFAULT_THRESHOLD
    true_positives = 0
    for rank, (score, is_positive) in enumerate(ranked, start=1):
        true_positives += is_positive
        # Only between distinct scores: equal scores are kept or dropped together.
        if rank < len(ranked) and ranked[rank][0] == score:
            continue
        f1 = 2 * true_positives / (rank + total)
        if f1 > best_f1:
            below = ranked[rank][0] if rank < len(ranked) else 0.0
            best_f1, best = f1, (score + below) / 2
    return best


SCHEME: LabelScheme = MultiLabel()
