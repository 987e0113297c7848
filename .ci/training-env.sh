#!/usr/bin/env bash
# Build a virtualenv with the transformers of the generated project's DEFAULT SageMaker training
# image, for its training-image test (tests/test_training_image.py): the entry points run there in
# process mode, so an API that only a newer transformers has fails in CI, not on a paid instance.
# The version is read from the template's config.toml ([sagemaker] transformers_version, today
# 5.3.0) and the other packages from the template's pyproject.toml ([project] dependencies, as
# the job's requirements.txt installs them next to the image's torch and transformers), so
# neither can drift apart from this venv. torch is the CPU 2.13.0 wheel, standing in for the
# image's CUDA build (its pytorch_version) on machines without a GPU.
# Usage: bash .ci/training-env.sh VENV_DIR   (idempotent: a working venv there is kept)
# Then: TRAINING_PYTHON=VENV_DIR/bin/python pytest tests/test_training_image.py
set -euo pipefail
venv="${1:?usage: $0 VENV_DIR}"
python="${PYTHON:-python3}"
torch_pin="torch==2.13.0"
template="$(cd "$(dirname "$0")/.." && pwd)/{{cookiecutter.project_slug}}"
# Both files hold Jinja (tomllib cannot read them): a regex over config.toml's [sagemaker] table,
# and pyproject.toml's dependency lines, Jinja lines skipped (a conditional dependency such as
# koreanize-matplotlib is kept: the venv serves every answer set), torch and transformers left out.
read_pins() {
    "$python" - "$template/config.toml" "$template/pyproject.toml" <<'PY'
import re, sys
config, pyproject = (open(path, encoding="utf-8").read() for path in sys.argv[1:])
table = config[config.index("\n[sagemaker]\n") + 1 :]
table = table.split("\n[", 1)[0]
[version] = re.findall(r'^transformers_version = "([^"]+)"$', table, re.MULTILINE)
block = re.search(r"^dependencies = \[\n(.*?)^\]", pyproject, re.MULTILINE | re.DOTALL)
requirements = []
for line in block.group(1).splitlines():
    line = line.strip()
    if not line or line.startswith("#") or line.startswith("{%"):
        continue
    [requirement] = re.fullmatch(r'"([^"]+)",?', line).groups()
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()
    if name not in ("torch", "transformers"):
        requirements.append(requirement)
assert requirements and "accelerate" in " ".join(requirements), requirements
print(version)
print("\n".join(requirements))
PY
}
pins="$(read_pins)"
transformers="$(head -n 1 <<<"$pins")"
mapfile -t requirements < <(tail -n +2 <<<"$pins")
export TRAINING_TRANSFORMERS="$transformers"

check() {
    "$venv/bin/python" - <<'PY' 2>/dev/null
import os
import accelerate, safetensors, sklearn, tokenizers, torch, transformers  # noqa: F401
from importlib.metadata import version
assert transformers.__version__ == os.environ["TRAINING_TRANSFORMERS"], transformers.__version__
assert version("torch").startswith("2.13.0"), version("torch")
PY
}

if [ -x "$venv/bin/python" ] && check; then
    echo "training venv ready: $venv (transformers $transformers)"
    exit 0
fi
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv" 2>/dev/null)" ]; then
    echo "$venv exists and is not a virtualenv; refusing to replace it" >&2
    exit 1
fi
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first, and pinned again below, so that no other requirement pulls another build.
"${pip[@]}" "$torch_pin"
"${pip[@]}" "$torch_pin" "transformers==$transformers" "${requirements[@]}"
check || { echo "training venv at $venv does not run transformers $transformers" >&2; exit 1; }
echo "training venv ready: $venv (transformers $transformers)"
