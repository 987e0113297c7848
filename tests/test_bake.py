"""Bake named answer sets and check what comes out, down to the generated project's own tests."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import (
    NSMC_DIR,
    REPO,
    bake,
    bake_replay,
    install,
    leftovers,
    project_files,
    ruff,
    run_generated_tests,
    template_files,
)

# The generated tests that need no model training.
QUICK_TESTS = (
    "tests/test_config.py",
    "tests/test_data_io.py",
    "tests/test_data_prepare.py",
    "tests/test_cli_data.py",
)


def write_three_label_csv(folder):
    path = folder / "comments.csv"
    rows = ["comment,hate"]
    names = ["none", "offensive", "hate"]
    for i in range(90):
        rows.append(f'"댓글 {i}, 예시",{names[i % 3]}')
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def check_project(project, package, include_sagemaker=True, allowed=()):
    assert project_files(project) == template_files(package, include_sagemaker)
    assert leftovers(project, allowed) == []
    lint = ruff(project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    config = tomllib.loads((project / "config.toml").read_text(encoding="utf-8"))
    answers = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]
    return pyproject, config, answers


def test_relative_paths_are_pinned(out, tmp_path, monkeypatch):
    data = write_three_label_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    (tmp_path / "my-model").mkdir()
    project = bake(
        out,
        dataset="comments.csv",
        text_column="comment",
        label_column="hate",
        label_names="none,offensive,hate",
        base_model="my-model",
    )
    config = tomllib.loads((project / "config.toml").read_text(encoding="utf-8"))
    assert config["data"]["source"] == str(data)
    assert config["model"]["base_model"] == str(tmp_path / "my-model")


AWKWARD = {
    "project_name": 'Tom\'s "Classifier" \\ {{ 7*7 }} {% if %} 🎬 리뷰',
    "project_slug": "awkward-classifier",
    "package_name": "awkward_classifier",
    "description": "Quotes \" ' and C:\\Users\\me\\data, {{ cookiecutter.x }}, \"\"\" ''' ]] }",
    "author_name": "O'Brien \\ 홍길동 {#",
    "author_email": "o.brien@example.com",
    "label_names": 'neg "x", pos {{y}}',
}


def test_awkward_answers_stay_literal(out, tmp_path):
    """Typed answers (here via a replay file, which cookiecutter does not render) keep every
    character and cannot break or execute anything in the generated files."""
    project = bake_replay(out, AWKWARD)
    allowed = tuple(AWKWARD.values()) + ("pos {{y}}",)
    pyproject, config, answers = check_project(project, "awkward_classifier", allowed=allowed)
    assert config["project"]["name"] == AWKWARD["project_name"]
    assert config["data"]["label_names"] == ['neg "x"', "pos {{y}}"]
    assert pyproject["project"]["description"] == AWKWARD["description"]
    assert pyproject["project"]["authors"][0]["name"] == AWKWARD["author_name"]
    assert answers["project_name"] == AWKWARD["project_name"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {AWKWARD['project_name']}\n")
    site = install(project, tmp_path / "site")
    result = run_generated_tests(project, site, "tests/test_config.py")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


@pytest.mark.skipif(not NSMC_DIR.exists(), reason="needs ../shared/data/nsmc")
def test_folder_dataset_with_nsmc_files(out):
    project = bake(out, dataset=str(NSMC_DIR))
    config = tomllib.loads((project / "config.toml").read_text(encoding="utf-8"))
    assert config["data"]["source"] == str(NSMC_DIR)


def test_typed_answers_are_not_rendered(out):
    """At the prompts, `{{ 7*7 }}` stays `{{ 7*7 }}`: nothing typed is executed or re-rendered."""
    import subprocess
    import sys

    typed = 'My {{ 7*7 }} "App" \\ 🎬'
    answers = typed + "\n" + "\n" * 40  # every other prompt keeps its default
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(out), str(REPO)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (project,) = out.iterdir()
    assert project.name == "my-7-7-app"
    config = tomllib.loads((project / "config.toml").read_text(encoding="utf-8"))
    assert config["project"]["name"] == typed
    assert typed in (project / "README.md").read_text(encoding="utf-8")


def test_generated_tests_leave_room_for_the_longest_package_name():
    """The hook renames the package in tests/ and benchmarks/ (they import it by name) and accepts
    names up to PACKAGE_MAX_LENGTH: every line naming it must still fit the line length then, or a
    team with a long project name gets a red lint job. tests/test_scenarios.py bakes such a name
    and lints it; this finds the line at once."""
    import re

    from conftest import REPO, TEMPLATE_DIR

    hook = (REPO / "hooks" / "pre_gen_project.py").read_text(encoding="utf-8")
    longest = int(re.search(r"^PACKAGE_MAX_LENGTH = (\d+)$", hook, re.M)[1])
    template = "nsmc_sentiment_classifier"
    room = 110 - (longest - len(template))
    too_long = []
    for folder in ("tests", "benchmarks"):
        for path in sorted((TEMPLATE_DIR / folder).glob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                # ruff neither measures nor moves a trailing pragma comment (noqa, type).
                code = re.sub(r"\s+# (noqa|type:).*$", "", line)
                if template in line and len(code) > room:
                    too_long.append(f"{folder}/{path.name}:{number} ({len(code)} > {room})")
    assert too_long == [], "write these as `from ... import (` one name per line, with a trailing comma"
