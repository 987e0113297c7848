#!/usr/bin/env bash
# BENCHMARKS.md "Label schemes": a multi-label project on the shared Korean hate-speech corpus
# (labels offensive/hate from its `hate` column plus gender/others from its `bias` column; a
# clean comment has none), fine-tuned from the shared me5-small-ko model on CPU, then evaluated
# on the corpus's dev set against the TF-IDF + logistic-regression baseline `evaluate` fits.
#   OUT (default scratch/bench-multilabel), PYTHON (default .venv/bin/python), EPOCHS (default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}  # a venv's python: not resolved, or the venv is lost
OUT=$(mkdir -p "${OUT:-$ROOT/scratch/bench-multilabel}" && cd "${OUT:-$ROOT/scratch/bench-multilabel}" && pwd)
SHARED=$(cd "$ROOT/../shared" && pwd)
rm -rf "$OUT/moderation" "$OUT/hate-bias-benchmark"
mkdir -p "$OUT/moderation"
"$PYTHON" - "$SHARED/data/korean-hate-speech" "$OUT/moderation" <<'PY'
import csv, sys
from pathlib import Path
source, target = Path(sys.argv[1]), Path(sys.argv[2])
# The corpus's dev set is the test set here (its test set has no labels); validation is carved
# from train by `data prepare`.
for name, split in (("train.tsv", "train.tsv"), ("dev.tsv", "test.tsv")):
    with open(source / name, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    with open(target / split, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["comments", "labels"])
        for row in rows:
            labels = [value for value in (row["hate"], row["bias"]) if value != "none"]
            writer.writerow([row["comments"], "|".join(labels)])
PY
"$PYTHON" -m cookiecutter --no-input -o "$OUT" "$ROOT" project_name="Hate Bias Benchmark" \
  task=multi_label dataset="$OUT/moderation" text_column=comments label_column=labels \
  label_names=offensive,hate,gender,others base_model="$SHARED/models/me5-small-ko" \
  max_seq_length=128 include_sagemaker=no
cd "$OUT/hate-bias-benchmark"
run() { PYTHONPATH=src HF_HUB_OFFLINE=1 "$PYTHON" -m hate_bias_benchmark "$@"; }
run data validate
run data prepare
run train --entry hf --epochs "${EPOCHS:-3}" --batch_size 32 --learning_rate 5e-5 --max_seq_length 128 \
  --eval_strategy epoch --report_to none
run evaluate
