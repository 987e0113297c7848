#!/usr/bin/env bash
# BENCHMARKS.md "Label schemes", text pairs: a text-pair project on pairs of NSMC reviews
# (tools/review_pairs.py; neither review alone tells the label), fine-tuned from the shared
# me5-small-ko model on CPU, then evaluated against the TF-IDF + logistic-regression baseline
# `evaluate` fits on the same train split (each pair joined).
# Training pairs come from NSMC's train file, test pairs from its test file: no review is in both.
#   KIND (default preference: which review of a positive/negative pair is the positive one;
#     agreement: do both rate the film alike), OUT (default scratch/bench-textpair-KIND),
#   PYTHON (default .venv/bin/python), EPOCHS (default 2), PAIRS (training pairs, default 4000),
#   TEST_PAIRS (default 1000), BATCH_SIZE (default 16), LEARNING_RATE (default 5e-5)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}  # a venv's python: not resolved, or the venv is lost
KIND=${KIND:-preference}
case "$KIND" in
  preference) LABEL_COLUMN=positive LABEL_NAMES=첫째,둘째 ;;
  agreement) LABEL_COLUMN=agreement LABEL_NAMES=다름,같음 ;;
  *) echo "KIND must be preference or agreement, not $KIND" >&2; exit 2 ;;
esac
OUT=${OUT:-$ROOT/scratch/bench-textpair-$KIND}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
SHARED=$(cd "$ROOT/../shared" && pwd)
rm -rf "$OUT/review-pairs" "$OUT/review-pairs-benchmark"
mkdir -p "$OUT/review-pairs"
"$PYTHON" "$ROOT/tools/review_pairs.py" "$SHARED/data/nsmc/ratings_train.txt" "$OUT/review-pairs/train.tsv" \
  --pairs "${PAIRS:-4000}" --kind "$KIND"
"$PYTHON" "$ROOT/tools/review_pairs.py" "$SHARED/data/nsmc/ratings_test.txt" "$OUT/review-pairs/test.tsv" \
  --pairs "${TEST_PAIRS:-1000}" --kind "$KIND"
"$PYTHON" -m cookiecutter --no-input -o "$OUT" "$ROOT" project_name="Review Pairs Benchmark" \
  task=text_pair dataset="$OUT/review-pairs" text_column=review_a text_pair_column=review_b \
  label_column="$LABEL_COLUMN" label_names="$LABEL_NAMES" base_model="$SHARED/models/me5-small-ko" \
  max_seq_length=128 include_sagemaker=no
cd "$OUT/review-pairs-benchmark"
run() { PYTHONPATH=src HF_HUB_OFFLINE=1 "$PYTHON" -m review_pairs_benchmark "$@"; }
run data validate
run data prepare
run train --entry hf --epochs "${EPOCHS:-2}" --batch_size "${BATCH_SIZE:-16}" \
  --learning_rate "${LEARNING_RATE:-5e-5}" --max_seq_length 128 \
  --eval_strategy epoch --report_to none
run evaluate
