"""Bake named answer sets and check what comes out, down to the generated project's own tests."""

from __future__ import annotations

import json
import os
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

# The generated tests that need no model training: fast enough to run for every scenario.
QUICK_TESTS = ("tests/test_config.py", "tests/test_data_io.py", "tests/test_data_prepare.py",
               "tests/test_cli_data.py")


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
    config = tomllib.loads(
        (project / "src" / package / "config.toml").read_text(encoding="utf-8")
    )
    answers = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    return pyproject, config, answers


def test_default_project_full_suite(out, tmp_path):
    project = bake(out)
    assert project.name == "nsmc-sentiment-classifier"
    package = "nsmc_sentiment_classifier"
    pyproject, config, answers = check_project(project, package)
    assert pyproject["project"]["name"] == "nsmc-sentiment-classifier"
    assert "sagemaker" in pyproject["project"]["optional-dependencies"]
    assert config["data"]["label_names"] == ["negative", "positive"]
    assert config["model"]["base_model"] == "monologg/koelectra-small-v3-discriminator"
    assert config["sagemaker"]["train_instance_type"] == "ml.g5.2xlarge"
    assert answers["dataset"] == "nsmc-sample"
    site = install(project, tmp_path / "site")
    result = run_generated_tests(project, site, "-rs")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    # The only acceptable skips: SageMaker local mode without Docker, and the container-parity
    # test when no twin environment was built (CI always builds it).
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    allowed = ["Docker"] + ([] if os.environ.get("PARITY_PYTHON") else ["PARITY_PYTHON"])
    assert all(any(word in line for word in allowed) for line in skips), skips


def test_korean_labels_and_project_name(out, tmp_path):
    project = bake(out, project_name="영화 리뷰 감성 분류", label_names="부정, 긍정")
    package = project.name.replace("-", "_")
    assert project.name == "yeonghwa-ribyu-gamseong-bunryu"
    _, config, _ = check_project(project, package)
    assert config["data"]["label_names"] == ["부정", "긍정"]
    assert config["project"]["name"] == "영화 리뷰 감성 분류"
    site = install(project, tmp_path / "site")
    result = run_generated_tests(project, site, *QUICK_TESTS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_three_labels_custom_csv_without_sagemaker(out, tmp_path):
    data = write_three_label_csv(tmp_path)
    project = bake(
        out, project_name="Hate Speech", dataset=str(data), text_column="comment",
        label_column="hate", label_names="none,offensive,hate", include_sagemaker="no",
        max_seq_length="64", train_instance_type="ml.m5.xlarge",
    )
    pyproject, config, _ = check_project(project, "hate_speech", include_sagemaker=False)
    assert "sagemaker" not in pyproject["project"].get("optional-dependencies", {})
    assert not (project / "src/hate_speech/aws").exists()
    assert config["data"]["source"] == str(data)
    assert config["model"]["max_seq_length"] == 64
    site = install(project, tmp_path / "site")
    result = run_generated_tests(project, site, *QUICK_TESTS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_relative_paths_are_pinned(out, tmp_path, monkeypatch):
    data = write_three_label_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    (tmp_path / "my-model").mkdir()
    project = bake(
        out, dataset="comments.csv", text_column="comment", label_column="hate",
        label_names="none,offensive,hate", base_model="my-model",
    )
    config = tomllib.loads(next(project.glob("src/*/config.toml")).read_text(encoding="utf-8"))
    assert config["data"]["source"] == str(data)
    assert config["model"]["base_model"] == str(tmp_path / "my-model")


AWKWARD = {
    "project_name": 'Tom\'s "Classifier" \\ {{ 7*7 }} {% if %} 🎬 리뷰',
    "project_slug": "awkward-classifier",
    "package_name": "awkward_classifier",
    "description": 'Quotes " \' and C:\\Users\\me\\data, {{ cookiecutter.x }}, """ \'\'\' ]] }',
    "author_name": "O'Brien \\ 홍길동 {#",
    "author_email": "o.brien@example.com",
    "label_names": 'neg "x", pos {{y}}',
}


def test_awkward_answers_stay_literal(out, tmp_path):
    """Typed answers (here via a replay file, which cookiecutter does not render) keep every
    character and cannot break or execute anything in the generated files."""
    project = bake_replay(out, AWKWARD)
    allowed = tuple(AWKWARD.values()) + ('pos {{y}}',)
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
    config = tomllib.loads(next(project.glob("src/*/config.toml")).read_text(encoding="utf-8"))
    assert config["data"]["source"] == str(NSMC_DIR)


def test_typed_answers_are_not_rendered(out):
    """At the prompts, `{{ 7*7 }}` stays `{{ 7*7 }}`: nothing typed is executed or re-rendered."""
    import subprocess
    import sys

    typed = 'My {{ 7*7 }} "App" \\ 🎬'
    answers = typed + "\n" + "\n" * 40  # every other prompt keeps its default
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(out), str(REPO)],
        input=answers, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (project,) = out.iterdir()
    assert project.name == "my-7-7-app"
    config = tomllib.loads(next(project.glob("src/*/config.toml")).read_text(encoding="utf-8"))
    assert config["project"]["name"] == typed
    assert typed in (project / "README.md").read_text(encoding="utf-8")
