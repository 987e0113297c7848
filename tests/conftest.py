"""Helpers to bake the template, install the result and run its own tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = REPO / "{{cookiecutter.project_slug}}"
TEMPLATE_KEYS = set(json.loads((REPO / "cookiecutter.json").read_text(encoding="utf-8")))
SHARED = REPO.parent / "shared"
NSMC_DIR = SHARED / "data" / "nsmc"
# The template's tools are scripts, not a package; tests build their data with them, as BENCHMARKS does.
sys.path.insert(0, str(REPO / "tools"))
# A Jinja expression, statement or comment, or a reference to the cookiecutter context.
JINJA_LEFTOVER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|cookiecutter\.(?!json)[a-z_]+", re.DOTALL)
# Python files are copied, not rendered, and may hold braces of their own (e.g. a docker
# --format string); in them only a reference to the cookiecutter context is a leftover.
CONTEXT_REFERENCE = re.compile(r"cookiecutter\.(?!json)[a-z_]+")
CACHE_PARTS = {"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache", ".git"}


def check_keys(context: dict) -> None:
    """cookiecutter silently ignores unknown keys: a typo would quietly test the defaults."""
    unknown = sorted(set(context) - TEMPLATE_KEYS)
    assert not unknown, f"keys not in cookiecutter.json: {unknown}"


def bake(output_dir: Path, overwrite_if_exists: bool = False, template: str = "", **context) -> Path:
    """Bake from ``template`` as typed (a relative path, a URL), by default this template's folder."""
    check_keys(context)
    return Path(
        cookiecutter(
            template or str(REPO),
            no_input=True,
            extra_context=context,
            output_dir=str(output_dir),
            overwrite_if_exists=overwrite_if_exists,
        )
    )


def bake_replay(output_dir: Path, answers: dict) -> Path:
    """Bake with literal answers, as typed at the prompts (cookiecutter does not render them)."""
    check_keys(answers)
    defaults = json.loads((REPO / "cookiecutter.json").read_text(encoding="utf-8"))
    context = {k: v for k, v in defaults.items() if not k.startswith("_")}
    # A choice answer's default is the first of its choices (license, task, label_layout).
    context.update({key: value[0] for key, value in context.items() if isinstance(value, list)})
    context.update(answers)
    replay = output_dir / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": context}, ensure_ascii=False), encoding="utf-8")
    return Path(cookiecutter(str(REPO), replay=str(replay), output_dir=str(output_dir)))


def project_files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not CACHE_PARTS & set(path.relative_to(root).parts)
    }


def template_files(package: str, include_sagemaker: bool) -> set[str]:
    """What a bake must contain: every template file under its rendered name, minus the
    SageMaker-only ones when declined, plus the stored answers."""
    files = {name.replace("{{cookiecutter.package_name}}", package) for name in project_files(TEMPLATE_DIR)}
    if not include_sagemaker:
        files = {
            name
            for name in files
            if not (
                name.startswith(f"src/{package}/aws/")
                or re.match(r"tests/(test_)?aws_", name)
                or name == "docs/sagemaker.md"
            )
        }
    return files | {".cookiecutter.json"}


def leftovers(root: Path, allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for name in sorted(project_files(root)):
        if name.startswith(".github/workflows/"):
            continue  # GitHub Actions' own ${{ }} syntax, copied verbatim
        path = root / name
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for value in allowed:
            # The answer itself, and as escaped in JSON/TOML strings, may contain braces.
            for form in (value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]):
                text = text.replace(form, "")
        pattern = CONTEXT_REFERENCE if name.endswith(".py") else JINJA_LEFTOVER
        if pattern.search(text):
            found.append(name)
    return found


def ruff(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=root,
        capture_output=True,
        text=True,
    )


def install(project: Path, target: Path) -> Path:
    """Build a wheel and install it into ``target`` (no deps: the test environment has them)."""
    dist = target.parent / f"{target.name}-dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(project),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(dist.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [
            "git",
            "-c",
            "user.name=CI",
            "-c",
            "user.email=ci@example.com",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def commit_and_clone(project: Path, clone: Path) -> Path:
    """What a team does first: commit the generated project and clone it elsewhere (their CI)."""
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "Generated project", cwd=project)
    git("clone", "-q", str(project), str(clone), cwd=project.parent)
    return clone


def run_generated_tests(project: Path, site: Path, *args: str, timeout: int = 1800):
    """Run the generated project's suite against the installed wheel, not the source tree."""
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PATH": f"{site / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    if NSMC_DIR.exists():
        env.setdefault("NSMC_DIR", str(NSMC_DIR))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder
