"""Rebuild the bundled NSMC sample from the full corpus (reproducible: fixed seed, sorted ids).

Usage: python tools/make_nsmc_sample.py [NSMC_DIR]   (default: ../shared/data/nsmc)
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}/resources/nsmc_sample"
SIZES = {"ratings_train.txt": ("train.tsv", 4000), "ratings_test.txt": ("test.tsv", 1000)}
SEED = 20261127


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/nsmc"
    for name, (out_name, size) in SIZES.items():
        with open(source / name, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
        header, body = rows[0], rows[1:]
        picked = sorted(random.Random(SEED).sample(range(len(body)), size))
        with open(TARGET / out_name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body[i] for i in picked)
        print(f"{TARGET / out_name}: {size} rows from {name}")


if __name__ == "__main__":
    main()
