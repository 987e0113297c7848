"""Development subsets: train on a stratified fraction of the data for fast iteration.

The NSMC workshop did this with ``SubsetRandomSampler``; picking indices up front (seeded,
per class) gives the same effect and works identically for both training entry points.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from .stratify import iterative_split


def dev_subset(labels: Sequence[int | tuple[int, ...]], fraction: float, seed: int) -> list[int]:
    """Sorted indices of a stratified ``fraction`` of ``labels`` (at least one per class).

    Label sets (multi-label targets, tuples) are stratified per label by iterative
    stratification (:mod:`.stratify`): at least one row, each label's share close to the whole's.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"dev fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return list(range(len(labels)))
    sets = [label for label in labels if isinstance(label, tuple)]
    if sets:
        if len(sets) != len(labels):
            raise ValueError("labels mix label ids and label sets")
        return iterative_split(sets, max(fraction, 1 / len(sets)), seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        if not isinstance(label, tuple):
            by_class[label].append(index)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_class):
        indices = by_class[label]
        rng.shuffle(indices)
        chosen.extend(indices[: max(1, round(len(indices) * fraction))])
    return sorted(chosen)
