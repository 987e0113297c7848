"""Iterative stratification of multi-label rows (Sechidis, Tsoumakas and Vlahavas, "On the
stratification of multi-label data", ECML PKDD 2011).

scikit-learn's stratified splits take one class per row; a label *set* per row has too many
combinations to stratify on as classes. The iterative algorithm takes the label with the fewest
rows still to place, hands each of its rows to the split that most lacks that label, and repeats,
so rare labels are spread first, while they still can be. Unlike the paper, a split never takes
more rows than its size: split sizes are exact (the ``iterative-stratification`` package's
drift by a few rows), which keeps `data prepare`'s split sizes what config.toml asks for.

Standard library only; deterministic for a seed and input order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def iterative_split(targets: Sequence[Sequence[int]], fraction: float, seed: int) -> list[int]:
    """Sorted indices of ``round(len(targets) * fraction)`` rows, stratified by label: each
    label's share among them is as close to ``fraction`` as whole rows allow."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    chosen = round(len(targets) * fraction)
    assignment = assign(targets, [len(targets) - chosen, chosen], seed)
    return [index for index, split in enumerate(assignment) if split == 1]


def assign(targets: Sequence[Sequence[int]], sizes: Sequence[int], seed: int) -> list[int]:
    """The split (an index into ``sizes``) of each row; split ``j`` gets exactly ``sizes[j]``
    rows. Rows without a label fill what room the labelled ones left."""
    if sum(sizes) != len(targets) or any(size < 0 for size in sizes):
        raise ValueError(f"split sizes {list(sizes)} do not add up to {len(targets)} rows")
    rng = random.Random(seed)
    order = list(range(len(targets)))
    rng.shuffle(order)
    total = len(targets) or 1
    room = list(sizes)
    rows_of: dict[int, list[int]] = {}
    for index in order:
        for label in set(targets[index]):
            rows_of.setdefault(label, []).append(index)
    # How many more rows holding each label each split should get (fractional, as in the paper).
    wanted = {label: [len(rows) * size / total for size in sizes] for label, rows in rows_of.items()}
    left = {label: len(rows) for label, rows in rows_of.items()}
    split_of: list[int | None] = [None] * len(targets)
    while any(left.values()):
        # The label with the fewest rows left to place; ties in label order (deterministic).
        label = min((count, label) for label, count in left.items() if count)[1]
        for index in rows_of[label]:
            if split_of[index] is not None:
                continue
            open_splits = [j for j in range(len(sizes)) if room[j] > 0]
            best = max((wanted[label][j], room[j]) for j in open_splits)
            split = rng.choice([j for j in open_splits if (wanted[label][j], room[j]) == best])
            split_of[index] = split
            room[split] -= 1
            for held in set(targets[index]):
                wanted[held][split] -= 1
                left[held] -= 1
    for index in order:
        if split_of[index] is None:
            split = max(range(len(sizes)), key=lambda j: (room[j], -j))
            split_of[index] = split
            room[split] -= 1
    return [split for split in split_of if split is not None]
