"""Living with a generated project: re-bake from the stored answers, regenerate over it safely,
and pull later template changes into it (with cruft, which builds on cookiecutter)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
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


def bake_relative(out: Path, overwrite_if_exists: bool = False, **context) -> Path:
    """`cookiecutter .` run inside the template: cookiecutter passes the hooks a relative path."""
    with chdir(REPO):
        return bake(out, overwrite_if_exists=overwrite_if_exists, template=".", **context)


@pytest.mark.parametrize("template", ["absolute", "relative"])
@pytest.mark.parametrize("problem", ["dataset-labels", "answer"])
def test_refused_regeneration_over_a_project_leaves_it_untouched(problem, template, out, tmp_path):
    data = labelled_csv(tmp_path, ["bad", "good"])
    answers = {
        "dataset": str(data),
        "text_column": "text",
        "label_column": "stars",
        "label_names": "bad,good",
    }
    baker = bake_relative if template == "relative" else bake
    project = baker(out, **answers)
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
        baker(out, overwrite_if_exists=True, **changed)
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


def link_with_stored_answers(project: Path, template: Path) -> None:
    """The README's command: link a plain-cookiecutter project with the answers it stored."""
    stored_answers = subprocess.run(
        [sys.executable, "-c", LINK_ANSWERS], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    cruft("link", "--no-input", "--extra-context", stored_answers, str(template), cwd=project)


def commit_generated(project: Path) -> None:
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "generated", cwd=project)


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
        link_with_stored_answers(project, template)
    commit_generated(project)
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


def test_stored_template_is_absolute_or_a_url():
    """`_template` must mean the same later, elsewhere: `.` is only meaningful where it was typed.
    `gh:` cannot be reached offline, so its resolution is tested here as a unit."""
    spec = importlib.util.spec_from_file_location("local_extensions", REPO / "local_extensions.py")
    assert spec is not None and spec.loader is not None
    extensions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extensions)
    template_reference = extensions.template_reference
    abbreviations = {"gh": "https://github.com/{0}.git", "gl": "https://gitlab.com/{0}.git"}
    assert template_reference("gh:me/tpl", "/x", abbreviations) == "https://github.com/me/tpl.git"
    assert template_reference("git+file:///srv/tpl", "/x", abbreviations) == "git+file:///srv/tpl"
    assert template_reference("https://host/a/tpl.git", "/x", abbreviations) == "https://host/a/tpl.git"
    assert template_reference("/srv/tpl", "/x", abbreviations) == "/srv/tpl"
    assert template_reference(".", "/srv/tpl", abbreviations) == "/srv/tpl"
    assert template_reference("../tpl", "/srv/tpl", abbreviations) == "/srv/tpl"


def stored(project: Path) -> dict:
    return json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]


def test_relative_template_is_stored_absolute_and_replays_elsewhere(out, tmp_path):
    project = bake_relative(out)
    assert stored(project)["_template"] == str(REPO)
    before = digest(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The README's command, from another folder, with the stored template as it is.
    with chdir(elsewhere):
        cookiecutter(
            stored(project)["_template"],
            replay=str(project / ".cookiecutter.json"),
            output_dir=str(out),
            overwrite_if_exists=True,
        )
    assert digest(project) == before


def test_git_url_template_is_checked_stored_and_linkable(out, tmp_path, capfd):
    template = template_repository(tmp_path)
    url = f"git+file://{template}"
    data = labelled_csv(tmp_path, ["bad", "good"])
    answers = {"dataset": str(data), "text_column": "text", "label_column": "stars"}
    with pytest.raises(FailedHookException):
        bake(out, template=url, **answers)
    assert "Labels found: 'bad', 'good'" in capfd.readouterr().err
    assert list(out.iterdir()) == []
    project = bake(out, template=url, label_names="bad,good", **answers)
    assert stored(project)["_template"] == url
    # The README's own commands (cruft hands the URL to git, which does not know `git+`).
    readme = (project / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if line.startswith(("TEMPLATE=", "cruft link "))]
    assert len(commands) == 2, commands
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-ec", "\n".join(commands)],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["template"] == str(template)


def test_regeneration_without_the_dataset_file(out, tmp_path, capfd):
    """The dataset may be private to the machine that baked the project: replaying its stored
    answers works without it, while a missing dataset in NEW answers is still refused."""
    data = labelled_csv(tmp_path, ["bad", "good"])
    answers = {
        "dataset": str(data),
        "text_column": "text",
        "label_column": "stars",
        "label_names": "bad,good",
    }
    project = bake(out, **answers)
    before = digest(project)
    data.unlink()
    capfd.readouterr()
    with chdir(project):
        cookiecutter(str(REPO), replay=".cookiecutter.json", output_dir="..", overwrite_if_exists=True)
    assert digest(project) == before
    err = capfd.readouterr().err
    assert f"dataset {str(data)!r} is not on this machine, so its rows were not checked" in err, err
    # New answers naming a missing file: a typo, refused as before.
    with pytest.raises(FailedHookException):
        bake(tmp_path / "fresh", **answers)
    assert "does not exist" in capfd.readouterr().err
    replay = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    replay["cookiecutter"]["dataset"] = str(tmp_path / "typo.csv")
    (tmp_path / "edited.json").write_text(json.dumps(replay), encoding="utf-8")
    with pytest.raises(FailedHookException):
        cookiecutter(str(REPO), replay=str(tmp_path / "edited.json"), output_dir=str(tmp_path / "fresh"))
    assert "typo.csv" in capfd.readouterr().err


def test_cruft_update_without_the_dataset_file(tmp_path):
    """`cruft update` on a machine that lacks the dataset the project was baked with."""
    template = template_repository(tmp_path)
    data = labelled_csv(tmp_path, ["bad", "good"])
    answers = {
        "dataset": str(data),
        "text_column": "text",
        "label_column": "stars",
        "label_names": "bad,good",
    }
    project = bake(tmp_path / "out", template=str(template), **answers)
    link_with_stored_answers(project, template)
    commit_generated(project)
    data.unlink()
    makefile = template / "{{cookiecutter.project_slug}}" / "Makefile"
    makefile.write_text(makefile.read_text(encoding="utf-8") + "# template change\n", encoding="utf-8")
    git("commit", "-q", "-am", "template change", cwd=template)
    cruft("update", "--skip-apply-ask", cwd=project)
    assert (project / "Makefile").read_text(encoding="utf-8").endswith("# template change\n")
    changed = git("status", "--porcelain", cwd=project).split("\n")
    assert sorted(line[3:] for line in changed if line) == [".cruft.json", "Makefile"]
