"""Pairs of NSMC reviews, two text-pair tasks built from real Korean text (the template's
text-pair scenario and its BENCHMARKS figures). Neither review alone tells the label: a model
must read both, which is what a text-pair classifier is for. No review is used twice.

- ``agreement`` (default): do both reviews rate the film alike (같음) or not (다름)? Half the
  pairs agree.
- ``preference``: one positive and one negative review; which of the two is the positive one,
  the first (첫째) or the second (둘째)? A pairwise preference judgement, as in ranking answers;
  the two texts together hold the same words whichever comes first, so only their order tells.

    python tools/review_pairs.py ../shared/data/nsmc/ratings_train.txt pairs.tsv --pairs 6000
    python tools/review_pairs.py ../shared/data/nsmc/ratings_train.txt pairs.tsv --kind preference
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

# Label names in label-id order: 0 = the two reviews disagree, 1 = they agree.
LABELS = ("다름", "같음")
COLUMNS = ("review_a", "review_b", "agreement")
# Label names in label-id order: 0 = the first review is the positive one, 1 = the second is.
PREFERENCE_LABELS = ("첫째", "둘째")
PREFERENCE_COLUMNS = ("review_a", "review_b", "positive")
KINDS = {"agreement": (COLUMNS, LABELS), "preference": (PREFERENCE_COLUMNS, PREFERENCE_LABELS)}


def read_reviews(source: Path) -> dict[str, list[str]]:
    """NSMC's reviews by rating ("0" negative, "1" positive), empty ones left out."""
    reviews: dict[str, list[str]] = {"0": [], "1": []}
    with open(source, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = (row["document"] or "").strip()
            if text and row["label"] in reviews:
                reviews[row["label"]].append(text)
    return reviews


def review_pairs(source: Path, pairs: int, seed: int = 13) -> list[tuple[str, str, str]]:
    """``pairs`` rows (review_a, review_b, agreement), half of each agreement, shuffled."""
    rng = random.Random(seed)
    reviews = read_reviews(source)
    for texts in reviews.values():
        rng.shuffle(texts)
    need = pairs // 2 + pairs % 2
    if min(len(texts) for texts in reviews.values()) < 2 * need:
        raise SystemExit(f"{source}: too few reviews for {pairs} pairs")
    negative, positive = iter(reviews["0"]), iter(reviews["1"])
    rows = []
    for index in range(pairs):
        if index % 2:  # agree: both negative or both positive
            pool = negative if index % 4 == 1 else positive
            rows.append((next(pool), next(pool), LABELS[1]))
        else:  # disagree, each side first half of the time
            first, second = (next(negative), next(positive))
            if index % 4 == 2:
                first, second = second, first
            rows.append((first, second, LABELS[0]))
    rng.shuffle(rows)
    return rows


def preference_pairs(source: Path, pairs: int, seed: int = 13) -> list[tuple[str, str, str]]:
    """``pairs`` rows (review_a, review_b, positive): a positive and a negative review, the
    positive one first in half of the rows, shuffled."""
    rng = random.Random(seed)
    reviews = read_reviews(source)
    for texts in reviews.values():
        rng.shuffle(texts)
    if min(len(texts) for texts in reviews.values()) < pairs:
        raise SystemExit(f"{source}: too few reviews for {pairs} pairs")
    rows = []
    chosen = zip(reviews["0"][:pairs], reviews["1"][:pairs], strict=True)
    for index, (negative, positive) in enumerate(chosen):
        first = index % 2 == 0
        pair = (positive, negative) if first else (negative, positive)
        rows.append((*pair, PREFERENCE_LABELS[0 if first else 1]))
    rng.shuffle(rows)
    return rows


def write_review_pairs(source: Path, path: Path, pairs: int, seed: int = 13, kind: str = "agreement") -> Path:
    make = {"agreement": review_pairs, "preference": preference_pairs}[kind]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(KINDS[kind][0])
        writer.writerows(make(source, pairs, seed))
    return path


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("source", type=Path, help="an NSMC ratings file (id, document, label)")
    parser.add_argument("output", type=Path, help="the TSV to write (review_a, review_b, the label)")
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--kind", choices=sorted(KINDS), default="agreement")
    args = parser.parse_args()
    write_review_pairs(args.source, args.output, args.pairs, args.seed, args.kind)
    columns, labels = KINDS[args.kind]
    print(f"wrote {args.pairs} pairs to {args.output} (column {columns[-1]}: {', '.join(labels)})")


if __name__ == "__main__":
    main()
