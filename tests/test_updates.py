"""Living with a generated project: re-bake from the stored answers, regenerate over it safely,
and pull later template changes into it (with cruft, which builds on cookiecutter)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from contextlib import chdir
from pathlib import Path

import pytest
from conftest import REPO, bake, git, project_files
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter


def digest(root: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in sorted(project_files(root))
    }


def labelled_csv(folder: Path, labels: list[str]) -> Path:
    path = folder / "reviews.csv"
    rows = [f"review {i},{labels[i % len(labels)]}" for i in range(30)]
    path.write_text("text,stars\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_stored_answers_rebake_the_same_project(out, tmp_path):
    data = labelled_csv(tmp_path, ["bad", "good"])
    project = bake(
        out,
        project_name="리뷰 분류기",
        dataset=str(data),
        text_column="text",
        label_column="stars",
        label_names="bad, good",
        include_sagemaker="no",
        license="BSD-3-Clause",
    )
    stored = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    assert stored["cookiecutter"]["label_names"] == "bad, good"
    before = digest(project)
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "generated", cwd=project)
    # The README's command, run from inside the project: the stored file is a replay file as it
    # is (no editing, no extra answers), and regenerating in place changes nothing.
    with chdir(project):
        cookiecutter(str(REPO), replay=".cookiecutter.json", output_dir="..", overwrite_if_exists=True)
    assert digest(project) == before
    assert git("status", "--porcelain", cwd=project) == ""


@pytest.mark.parametrize("problem", ["dataset-labels", "answer"])
def test_refused_regeneration_over_a_project_leaves_it_untouched(problem, out, tmp_path):
    data = labelled_csv(tmp_path, ["bad", "good"])
    answers = {
        "dataset": str(data),
        "text_column": "text",
        "label_column": "stars",
        "label_names": "bad,good",
    }
    project = bake(out, **answers)
    (project / "config.toml").write_text(
        (project / "config.toml").read_text(encoding="utf-8") + "# my edit\n", encoding="utf-8"
    )
    before = digest(project)
    # The data gained a label the answers do not name (found only by reading every row), or an
    # answer is invalid: either way nothing in the existing project may change.
    if problem == "dataset-labels":
        with open(data, "a", encoding="utf-8") as handle:
            handle.write("late review,meh\n")
        changed = answers
    else:
        changed = {**answers, "author_email": "not-an-address"}
    with pytest.raises(FailedHookException):
        bake(out, overwrite_if_exists=True, **changed)
    assert digest(project) == before


def template_repository(folder: Path) -> Path:
    """A git copy of this template, as users reach it (cruft needs a git repository)."""
    ignore = shutil.ignore_patterns(
        ".venv",
        ".parity-venv",
        ".git",
        "scratch",
        "__pycache__",
        ".ruff_cache",
        ".pytest_cache",
        ".mypy_cache",
    )
    template = folder / "template"
    shutil.copytree(REPO, template, ignore=ignore)
    git("init", "-q", cwd=template)
    git("add", "-A", cwd=template)
    git("commit", "-q", "-m", "template", cwd=template)
    return template


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "cruft", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


LINK_ANSWERS = "import json; print(json.dumps(json.load(open('.cookiecutter.json'))['cookiecutter']))"


@pytest.mark.parametrize("start", ["cruft-create", "cookiecutter-then-link"])
def test_cruft_pulls_template_changes_and_keeps_the_users(start, tmp_path):
    """The README's update workflow: a linked project, a template change, ``cruft update``."""
    template = template_repository(tmp_path)
    out = tmp_path / "out"
    answers = {"project_name": "Movie Reviews", "label_names": "neg,pos"}
    if start == "cruft-create":
        cruft(
            "create",
            "--no-input",
            "--output-dir",
            str(out),
            "--extra-context",
            json.dumps(answers),
            str(template),
            cwd=tmp_path,
        )
        project = out / "movie-reviews"
    else:
        project = Path(cookiecutter(str(template), no_input=True, extra_context=answers, output_dir=str(out)))
        # The README's command: link with the answers the project stored.
        stored = subprocess.run(
            [sys.executable, "-c", LINK_ANSWERS], cwd=project, capture_output=True, text=True, check=True
        ).stdout
        cruft("link", "--no-input", "--extra-context", stored, str(template), cwd=project)
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "generated", cwd=project)
    linked = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert linked["context"]["cookiecutter"]["project_name"] == "Movie Reviews"
    cli = project / "src" / "movie_reviews" / "cli.py"
    cli.write_text(cli.read_text(encoding="utf-8") + "# team change\n", encoding="utf-8")
    git("commit", "-q", "-am", "team change", cwd=project)

    makefile = template / "{{cookiecutter.project_slug}}" / "Makefile"
    makefile.write_text(makefile.read_text(encoding="utf-8") + "# template change\n", encoding="utf-8")
    git("commit", "-q", "-am", "template change", cwd=template)

    cruft("update", "--skip-apply-ask", cwd=project)
    assert (project / "Makefile").read_text(encoding="utf-8").endswith("# template change\n")
    assert cli.read_text(encoding="utf-8").endswith("# team change\n")
    # The tests were renamed to the project's package in both renders, so no conflict there.
    assert "movie_reviews" in (project / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert not list(project.rglob("*.rej"))
    # Nothing else changed: the update touched only the template's change (and cruft's file).
    changed = git("status", "--porcelain", cwd=project).split("\n")
    assert sorted(line[3:] for line in changed if line) == [".cruft.json", "Makefile"]
