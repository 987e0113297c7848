"""Pairs of NSMC reviews labelled by whether both reviews rate the film alike: a text-pair task
built from real Korean text (the template's text-pair scenario and its BENCHMARKS figures).

Neither review alone tells the label: a model must read both, which is what a text-pair
classifier is for. Half the pairs agree, half do not, and no review is used twice.

    python tools/review_pairs.py ../shared/data/nsmc/ratings_train.txt pairs.tsv --pairs 6000
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

# Label names in label-id order: 0 = the two reviews disagree, 1 = they agree.
LABELS = ("다름", "같음")
COLUMNS = ("review_a", "review_b", "agreement")


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


def write_review_pairs(source: Path, path: Path, pairs: int, seed: int = 13) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(review_pairs(source, pairs, seed))
    return path


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("source", type=Path, help="an NSMC ratings file (id, document, label)")
    parser.add_argument("output", type=Path, help="the TSV to write (review_a, review_b, agreement)")
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    write_review_pairs(args.source, args.output, args.pairs, args.seed)
    print(f"wrote {args.pairs} pairs to {args.output} (labels {', '.join(LABELS)})")


if __name__ == "__main__":
    main()
