"""One label per text: values read as label ids or names, softmax scores, (class-weighted)
cross-entropy, argmax predictions, accuracy and macro-F1 with per-class figures.

torch and scikit-learn are imported inside the methods that need them: data commands and the
cookiecutter hooks import this module without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .label_values import LabelError, LabelMap, decide_format, label_key

if TYPE_CHECKING:
    import torch

    from . import LabelScheme

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SingleLabel:
    """The single-label scheme (see :class:`~.LabelScheme` for what each member decides)."""

    # Scores every label on its own (sigmoid) instead of against each other (softmax): only for
    # models trained elsewhere whose head asks for it, as transformers' pipeline scores them.
    independent_scores: bool = False
    name: str = "single_label"
    problem_type: str = "single_label_classification"
    metric_names: tuple[str, ...] = ("accuracy", "macro_f1")
    best_metric: str = "accuracy"
    lower_is_better: frozenset[str] = frozenset()
    label_sets: bool = False

    def cell_key(self, raw: Any) -> str:
        # Keyed as text: "1" and 1 are one value.
        return label_key(raw)

    def cell_values(self, raw: Any) -> list[Any]:
        return [raw]

    def label_reader(
        self, values: Mapping[Any, Any] | Iterable[Any], names: Sequence[str], label_format: str = "auto"
    ) -> Callable[[Any], int]:
        return LabelMap(names, decide_format(values, names, label_format)).to_id

    def read_columns(self, row: Mapping[str, Any], names: Sequence[str]) -> int:
        raise LabelError('one 0/1 column per label (label_layout = "columns") needs task = "multi_label"')

    def as_feature(self, target: int, num_labels: int) -> int:
        return int(target)

    def from_feature(self, value: Any) -> int:
        return int(value)

    def label_counts(self, targets: Iterable[int], num_labels: int) -> list[int]:
        counts = [0] * num_labels
        for target in targets:
            counts[target] += 1
        return counts

    def empty_rows(self, targets: Iterable[int]) -> int:
        return 0

    def class_weights(self, choice: str, targets: Sequence[int], names: Sequence[str]) -> list[float] | None:
        if choice == "none":
            return None
        weights = balanced_class_weights(targets, names)
        log.info(
            "class-weighted loss: %s",
            ", ".join(f"{name} {weight:.3f}" for name, weight in zip(names, weights, strict=True)),
        )
        return weights

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: Sequence[float] | None
    ) -> torch.Tensor:
        """Mean cross-entropy; with per-class weights, their weighted mean (as
        ``torch.nn.CrossEntropyLoss``). Computed in float32 whatever the autocast dtype."""
        import torch

        weight = None
        if weights is not None:
            weight = torch.tensor(list(weights), dtype=torch.float32, device=logits.device)
        return torch.nn.functional.cross_entropy(logits.float(), targets, weight=weight)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-label scores in [0, 1] (float32): softmax, or a sigmoid per label for a one-logit
        head or a model that asks for independent scores (as transformers' pipeline does)."""
        logits = logits.float()
        if self.independent_scores or logits.shape[-1] == 1:
            return logits.sigmoid()
        return logits.softmax(dim=-1)

    def predict(self, probabilities: Any) -> list[int]:
        """The best label id per row of scores (a tensor, array or nested list); the first of
        equal scores wins, as in ``argmax``."""
        rows = probabilities.tolist() if hasattr(probabilities, "tolist") else probabilities
        return [max(range(len(row)), key=row.__getitem__) for row in rows]

    def tune(self, probabilities: Any, targets: Sequence[int]) -> SingleLabel:
        """Nothing to fit: the best-scoring label is the decision."""
        return self

    def model_config(self) -> dict[str, Any]:
        return {"label_scheme": self.name}

    def decision_thresholds(self, num_labels: int) -> list[float] | None:
        return None

    def mistake_score(self, scores: Sequence[float], target: int) -> float:
        """The score of the wrongly predicted label."""
        (chosen,) = self.predict([scores])
        return float(scores[chosen])

    def decode(self, prediction: int, names: Sequence[str]) -> str:
        return names[prediction]

    def label_list(self, prediction: int, names: Sequence[str]) -> list[str]:
        return [names[prediction]]

    def compute_metrics(
        self, y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str]
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

        ``per_class`` is keyed by label name; the confusion matrix is a nested list with rows =
        true labels and columns = predicted labels, both in label-id order (so classes absent
        from a small split still get a row and column instead of silently shifting the others).
        """
        from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

        y_true = [int(value) for value in y_true]
        y_pred = [int(value) for value in y_pred]
        if len(y_true) != len(y_pred):
            raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
        names = list(names)
        label_ids = list(range(len(names)))
        out_of_range = sorted({v for v in (*y_true, *y_pred) if not 0 <= v < len(names)})
        if out_of_range:
            raise ValueError(f"label id(s) {out_of_range} outside 0..{len(names) - 1} ({', '.join(names)})")
        if y_true:
            precision, recall, f1, support = precision_recall_fscore_support(
                y_true, y_pred, labels=label_ids, average=None, zero_division=0
            )
            matrix = confusion_matrix(y_true, y_pred, labels=label_ids).tolist()
            accuracy = accuracy_score(y_true, y_pred)
            macro_f1 = f1.mean()  # over every label id, as average="macro" with these labels
        else:  # scikit-learn refuses empty input; an empty split scores 0
            precision = recall = f1 = support = [0.0] * len(names)
            matrix = [[0] * len(names) for _ in names]
            accuracy = macro_f1 = 0.0
        return {
            "num_examples": len(y_true),
            "accuracy": float(accuracy),
            "macro_f1": float(macro_f1),
            "per_class": {
                name: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i, name in enumerate(names)
            },
            "confusion_matrix": [[int(cell) for cell in row] for row in matrix],
            "labels": names,
        }


def balanced_class_weights(labels: Sequence[int], label_names: Sequence[str]) -> list[float]:
    """``n_examples / (n_classes * n_class_examples)`` per class (scikit-learn's "balanced"):
    every class contributes as much to the loss as it would in balanced data. A class with no
    training examples gets 0 (nothing to learn from; its weight would be infinite)."""
    counts = SingleLabel().label_counts(labels, len(label_names))
    total, classes = len(labels), len(label_names)
    weights = [total / (classes * count) if count else 0.0 for count in counts]
    missing = [name for name, count in zip(label_names, counts, strict=True) if not count]
    if missing:
        log.warning("no training examples for %s: class weight 0", ", ".join(missing))
    return weights


SCHEME: LabelScheme = SingleLabel()
