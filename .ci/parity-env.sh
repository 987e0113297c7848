#!/usr/bin/env bash
# Build a virtualenv pinned like the Hugging Face inference image that the generated project
# deploys by default, for its container-parity test: the transformers and inference-toolkit
# versions are read from the template's serving/container.py (today transformers 4.51.3 +
# sagemaker-huggingface-inference-toolkit 2.6.0), so the two cannot drift apart.
# Usage: bash .ci/parity-env.sh VENV_DIR   (idempotent: a working venv there is kept)
# Then: PARITY_PYTHON=VENV_DIR/bin/python pytest tests/test_serving_parity.py
set -euo pipefail
venv="${1:?usage: $0 VENV_DIR}"
python="${PYTHON:-python3}"
pins="$(cd "$(dirname "$0")/.." && pwd)/{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}/serving/container.py"
versions="$("$python" -c '
import runpy, sys
pins = runpy.run_path(sys.argv[1])
print(pins["CONTAINER_TRANSFORMERS"], pins["CONTAINER_TOOLKIT"], pins["CONTAINER_ONNXRUNTIME"])
' "$pins")"
read -r transformers toolkit onnxruntime <<<"$versions"
export PARITY_TRANSFORMERS="$transformers" PARITY_TOOLKIT="$toolkit" PARITY_ONNXRUNTIME="$onnxruntime"

check() {
    "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata, os
import transformers, torch, onnxruntime
import sagemaker_huggingface_inference_toolkit.handler_service  # noqa: F401
import mms.context, mms.metrics.metrics_store  # noqa: F401
assert transformers.__version__ == os.environ["PARITY_TRANSFORMERS"], transformers.__version__
toolkit = importlib.metadata.version("sagemaker-huggingface-inference-toolkit")
assert toolkit == os.environ["PARITY_TOOLKIT"], toolkit
assert onnxruntime.__version__ == os.environ["PARITY_ONNXRUNTIME"], onnxruntime.__version__
PY
}

if [ -x "$venv/bin/python" ] && check; then
    echo "parity venv ready: $venv (transformers $transformers, inference toolkit $toolkit, onnxruntime $onnxruntime)"
    exit 0
fi
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv" 2>/dev/null)" ]; then
    echo "$venv exists and is not a virtualenv; refusing to replace it" >&2
    exit 1
fi
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first, so the transformers pin does not pull another build; CPU wheel is enough here.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" "transformers==$transformers" "sagemaker-inference==1.10.1" "multi-model-server==1.1.11" \
    "Pillow==13.0.0" "retrying==1.3.7"
# What code/requirements.txt of an exported model installs in the container at start-up.
"${pip[@]}" "onnxruntime==$onnxruntime"
# The toolkit's own dependency pins are for the container image; its code is all we need.
"${pip[@]}" --no-deps "sagemaker-huggingface-inference-toolkit==$toolkit"
check || { echo "parity venv at $venv does not import the toolkit" >&2; exit 1; }
echo "parity venv ready: $venv (transformers $transformers, inference toolkit $toolkit, onnxruntime $onnxruntime)"
