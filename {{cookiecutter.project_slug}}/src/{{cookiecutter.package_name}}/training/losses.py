"""Class-weighted cross-entropy for skewed data (``--class_weights balanced``), one definition
for both entry points' training steps and evaluations."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def balanced_class_weights(labels: Sequence[int], label_names: Sequence[str]) -> list[float]:
    """``n_examples / (n_classes * n_class_examples)`` per class (scikit-learn's "balanced"):
    every class contributes as much to the loss as it would in balanced data. A class with no
    training examples gets 0 (nothing to learn from; its weight would be infinite)."""
    counts = [0] * len(label_names)
    for label in labels:
        counts[label] += 1
    total, classes = len(labels), len(label_names)
    weights = [total / (classes * count) if count else 0.0 for count in counts]
    missing = [name for name, count in zip(label_names, counts, strict=True) if not count]
    if missing:
        log.warning("no training examples for %s: class weight 0", ", ".join(missing))
    return weights


def class_weights_for(choice: str, labels: Sequence[int], label_names: Sequence[str]) -> list[float] | None:
    """The weights the ``--class_weights`` choice asks for; None means plain cross-entropy."""
    if choice == "none":
        return None
    weights = balanced_class_weights(labels, label_names)
    log.info(
        "class-weighted loss: %s",
        ", ".join(f"{name} {weight:.3f}" for name, weight in zip(label_names, weights, strict=True)),
    )
    return weights


def weighted_loss(logits: Any, labels: Any, weights: Sequence[float]) -> Any:
    """Mean cross-entropy with per-class weights (weighted mean, as ``torch.nn.CrossEntropyLoss``)."""
    import torch

    weight = torch.tensor(list(weights), dtype=torch.float32, device=logits.device)
    return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weight)
