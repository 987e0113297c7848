#!/usr/bin/env bash
# BENCHMARKS.md "Label schemes", text pairs: a text-pair project on pairs of NSMC reviews labelled by
# whether the two reviews rate the film alike (tools/review_pairs.py; neither review alone tells
# the label), fine-tuned from the shared me5-small-ko model on CPU, then evaluated against the TF-IDF
# + logistic-regression baseline `evaluate` fits on the same train split (each pair joined).
# Training pairs come from NSMC's train file, test pairs from its test file: no review is in both.
#   OUT (default scratch/bench-textpair), PYTHON (default .venv/bin/python), EPOCHS (default 3),
#   PAIRS (training pairs, default 8000), TEST_PAIRS (default 1000), BATCH_SIZE (default 16),
#   LEARNING_RATE (default 1e-4: at 5e-5 one epoch of 7,200 pairs stayed at chance, loss 0.693)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}  # a venv's python: not resolved, or the venv is lost
OUT=$(mkdir -p "${OUT:-$ROOT/scratch/bench-textpair}" && cd "${OUT:-$ROOT/scratch/bench-textpair}" && pwd)
SHARED=$(cd "$ROOT/../shared" && pwd)
rm -rf "$OUT/review-pairs" "$OUT/review-agreement-benchmark"
mkdir -p "$OUT/review-pairs"
"$PYTHON" "$ROOT/tools/review_pairs.py" "$SHARED/data/nsmc/ratings_train.txt" "$OUT/review-pairs/train.tsv" \
  --pairs "${PAIRS:-8000}"
"$PYTHON" "$ROOT/tools/review_pairs.py" "$SHARED/data/nsmc/ratings_test.txt" "$OUT/review-pairs/test.tsv" \
  --pairs "${TEST_PAIRS:-1000}"
"$PYTHON" -m cookiecutter --no-input -o "$OUT" "$ROOT" project_name="Review Agreement Benchmark" \
  task=text_pair dataset="$OUT/review-pairs" text_column=review_a text_pair_column=review_b \
  label_column=agreement label_names=다름,같음 base_model="$SHARED/models/me5-small-ko" \
  max_seq_length=128 include_sagemaker=no
cd "$OUT/review-agreement-benchmark"
run() { PYTHONPATH=src HF_HUB_OFFLINE=1 "$PYTHON" -m review_agreement_benchmark "$@"; }
run data validate
run data prepare
run train --entry hf --epochs "${EPOCHS:-3}" --batch_size "${BATCH_SIZE:-16}" \
  --learning_rate "${LEARNING_RATE:-1e-4}" --max_seq_length 128 \
  --eval_strategy epoch --report_to none
run evaluate
