#!/usr/bin/env bash
# `make demo`: bake the default project into a scratch folder, install it, prepare the bundled
# NSMC sample, fine-tune briefly, evaluate, and print a few predictions.
#   BASE_MODEL=/path/to/model   use a local model folder (offline) instead of the hub default
#   DEMO_DIR, PYTHON            where to bake, which interpreter (make passes the template's venv)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
DEMO_DIR=$(mkdir -p "${DEMO_DIR:-$ROOT/scratch/demo}" && cd "${DEMO_DIR:-$ROOT/scratch/demo}" && pwd)
PACKAGE=nsmc_sentiment_classifier
step() { printf '\n==> %s\n' "$*"; }

step "baking the default project into $DEMO_DIR"
rm -rf "$DEMO_DIR/nsmc-sentiment-classifier"
answers=()
if [ -n "${BASE_MODEL:-}" ]; then
  answers+=("base_model=$(cd "$BASE_MODEL" && pwd)")
fi
"$PYTHON" -m cookiecutter --no-input -o "$DEMO_DIR" "$ROOT" "${answers[@]}"
cd "$DEMO_DIR/nsmc-sentiment-classifier"

step "installing it"
"$PYTHON" -m pip install -q -e .

step "validating and preparing the bundled NSMC sample"
"$PYTHON" -m "$PACKAGE" data validate
"$PYTHON" -m "$PACKAGE" data prepare

step "fine-tuning (1 epoch on a quarter of the sample: quick, not the best model)"
"$PYTHON" -m "$PACKAGE" train --entry torch --epochs 1 --dev_fraction 0.25 --max_seq_length 64 \
  --batch_size 16 --eval_strategy epoch --logging_steps 5

step "evaluating on the prepared test split"
"$PYTHON" -m "$PACKAGE" evaluate

step "predicting a few reviews"
printf '%s\n' document '정말 재미있고 감동적인 영화였어요' '시간 아까운 최악의 영화' \
  '배우들 연기가 훌륭하다' '지루해서 중간에 잤다' > reviews.csv
"$PYTHON" -m "$PACKAGE" predict reviews.csv --out predictions.csv
cat predictions.csv
step "done: the project is in $PWD"
