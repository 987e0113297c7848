"""The generated README's "where to change what" holds: a change named there is one file."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bake

PACKAGE = "nsmc_sentiment_classifier"

NEW_OPTION = (
    '    label_smoothing: float = option(0.0, "share of the target mass spread over the other labels",'
    " low=0, high=1, open_high=True, identity=True)\n"
)

CHECK_NEW_OPTION = """
from PACKAGE.aws.training import default_hyperparameters
from PACKAGE.config import load_config
from PACKAGE.training.options import parse_options

config = load_config("config.toml")
assert config.options.label_smoothing == 0.25, config.options
assert parse_options([], {}).label_smoothing == 0.25
assert parse_options(["--label-smoothing", "0.5"], {}).label_smoothing == 0.5
assert default_hyperparameters(config)["label_smoothing"] == "0.25"
print("ok")
"""


def append_field(options_file: Path, line: str) -> None:
    """Add ``line`` after the last field of ``TrainOptions``, as a developer would."""
    text = options_file.read_text(encoding="utf-8")
    (cls,) = (
        node
        for node in ast.parse(text).body
        if isinstance(node, ast.ClassDef) and node.name == "TrainOptions"
    )
    last = [node for node in cls.body if isinstance(node, ast.AnnAssign)][-1]
    assert last.end_lineno is not None
    lines = text.splitlines(keepends=True)
    options_file.write_text(
        "".join(lines[: last.end_lineno] + [line] + lines[last.end_lineno :]), encoding="utf-8"
    )


def test_a_training_option_is_one_field_in_options_py(tmp_path):
    project = bake(tmp_path)
    append_field(project / "src" / PACKAGE / "options.py", NEW_OPTION)
    config = project / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("[train]\n", "[train]\nlabel_smoothing = 0.25\n", 1),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "HF_HUB_OFFLINE": "1"}

    def run(*argv: str) -> str:
        result = subprocess.run(
            [sys.executable, *argv], cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert run("-c", CHECK_NEW_OPTION.replace("PACKAGE", PACKAGE)).strip() == "ok"
    for command in (["-m", PACKAGE, "train", "--help"], ["-m", f"{PACKAGE}.training.train_hf", "--help"]):
        assert "--label_smoothing" in run(*command), command


def _run_in(project: Path, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, *argv], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _where_to_change_what(project: Path) -> str:
    readme = (project / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Where to change what\n")
    return readme[start : readme.index("\n## ", start + 1)]


@pytest.mark.parametrize("include_sagemaker", [True, False], ids=["sagemaker", "no-sagemaker"])
def test_the_readme_names_files_that_exist(tmp_path, include_sagemaker):
    project = bake(tmp_path, include_sagemaker=include_sagemaker)
    section = _where_to_change_what(project)
    for concern in ("A training option", "A label scheme", "A training entry point", "A launcher"):
        assert f"| {concern}" in section, concern
    # Backticked file and folder names; `<name>` marks a file the developer creates.
    named = [
        token
        for token in re.findall(r"`([^`\s]+)`", section)
        if token.endswith((".py", ".toml", "/")) and "<" not in token
    ]
    assert len(named) >= 15, named
    package_dir = project / "src" / PACKAGE
    missing = [name for name in named if not ((package_dir / name).exists() or (project / name).exists())]
    assert not missing, f"the README's 'Where to change what' names what the project lacks: {missing}"


NEW_LAUNCHER = '''"""``cluster`` commands: train on the team's cluster (a launcher beside aws/)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("cluster", help="train on the team's cluster")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    submit = commands.add_parser("submit", help="submit a training job")
    submit.add_argument("--nodes", type=int, default=1)
    submit.set_defaults(handler=submit_job)


def submit_job(args: argparse.Namespace) -> int:
    print(f"submitted on {args.nodes} node(s), verbose={args.verbose}")
    return 0
'''


def test_a_launcher_is_one_new_package(tmp_path):
    project = bake(tmp_path)
    launcher = project / "src" / PACKAGE / "cluster"
    launcher.mkdir()
    (launcher / "__init__.py").write_text('"""Launch on the team\'s cluster."""\n', encoding="utf-8")
    (launcher / "commands.py").write_text(NEW_LAUNCHER, encoding="utf-8")

    assert "train on the team's cluster" in _run_in(project, "-m", PACKAGE, "--help").stdout
    ran = _run_in(project, "-m", PACKAGE, "cluster", "submit", "--nodes", "2", "-v")
    assert "submitted on 2 node(s), verbose=True" in ran.stdout
    # The project's own layering rules take the new package as a launcher, unedited.
    _run_in(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_architecture.py")


NEW_ENTRY_POINT = '''"""The plain loop under a second name: an entry point is one module like this."""

from __future__ import annotations

from .pipeline import main_for
from .train_torch import TorchLoop

BACKEND = TorchLoop


def main() -> int:
    return main_for(BACKEND, "train_scripted")


if __name__ == "__main__":
    raise SystemExit(main())
'''

CHECK_NEW_ENTRY_POINT = """
from PACKAGE import cli
from PACKAGE.training import entry_points
from PACKAGE.training.train_torch import TorchLoop

assert entry_points.entry_points() == ("train_hf", "train_scripted", "train_torch")
assert cli.build_parser().parse_args(["train", "--entry", "scripted"]).entry == "scripted"
assert entry_points.backend_for("scripted") is TorchLoop
assert entry_points.module_path("scripted") == "PACKAGE.training.train_scripted"
print("ok")
"""


def test_an_entry_point_is_one_new_module(tmp_path):
    project = bake(tmp_path)
    (project / "src" / PACKAGE / "training" / "train_scripted.py").write_text(
        NEW_ENTRY_POINT, encoding="utf-8"
    )

    assert "--entry {hf,scripted,torch}" in _run_in(project, "-m", PACKAGE, "train", "--help").stdout
    assert _run_in(project, "-c", CHECK_NEW_ENTRY_POINT.replace("PACKAGE", PACKAGE)).stdout.strip() == "ok"
    refused = _run_in(project, "-m", PACKAGE, "train", "--entry", "tf", ok=False)
    assert refused.returncode == 2 and "'hf', 'scripted', 'torch'" in refused.stderr

    # The SageMaker launcher takes it from config.toml, as it takes the shipped ones.
    channels = {}
    for split in ("train", "validation"):
        folder = tmp_path / "channels" / split
        folder.mkdir(parents=True)
        (folder / f"{split}.jsonl").write_text('{"document": "좋아요", "label": 1}\n', encoding="utf-8")
        channels[split] = str(folder)
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert 'entry_point = "train_hf"' in text
    config.write_text(
        text.replace('entry_point = "train_hf"', 'entry_point = "train_scripted"'), encoding="utf-8"
    )
    plan = _run_in(
        project, "-m", PACKAGE, "sagemaker", "train", "--mode", "process", "--dry-run",
        "--train", channels["train"], "--validation", channels["validation"],
    )  # fmt: skip
    assert json.loads(plan.stdout)["entry_point"] == "train_scripted"
    assert "train_scripted" in _run_in(project, "-m", PACKAGE, "sagemaker", "train", "--help").stdout
