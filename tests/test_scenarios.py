"""Answer sets that look like real teams, each run as that team's CI would run it.

For every scenario: bake, ``git init && git add -A && git commit``, clone, build and install the
wheel from the CLONE, and run the generated project's suite from the clone as the team's CI
runner would: without the dataset (it lives outside the repository, or is git-ignored). The
default answers run the FULL suite; every other scenario runs what changes with the answers
(``-m "not engine"``: config, data, labels, packaging, one short train and predict), since the
engine tests (runs and resume, tracking, servers, SageMaker, containers) do not. One
scenario, with a local base model folder, first trains and predicts through the command line in
the clone, as a user would, checks that nothing it writes shows up as untracked in git, and then
runs the suite there, beside the local runs (mlruns/, outputs/, checkpoints/) and without the
dataset or the base model folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    NSMC_DIR,
    SHARED,
    bake,
    commit_and_clone,
    git,
    install,
    leftovers,
    project_files,
    run_generated_tests,
    template_files,
)
from review_pairs import LABELS as PAIR_LABELS
from review_pairs import review_pairs

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "{{cookiecutter.project_slug}}"
    / "src"
    / "{{cookiecutter.package_name}}"
    / "resources"
    / "nsmc_sample"
)


def sample_texts() -> list[str]:
    texts = []
    for name in ("train.tsv", "test.tsv"):
        with open(SAMPLE / name, encoding="utf-8", newline="") as handle:
            texts += [row["document"] for row in csv.DictReader(handle, delimiter="\t")]
    return [text for text in texts if text.strip()]


def korean_cp949_csv(folder: Path) -> dict[str, Any]:
    """A spreadsheet export: CP949, Korean column names, Korean label names as values."""
    path = folder / "리뷰.csv"
    with open(SAMPLE / "train.tsv", encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["document"].strip()]
    rows = [r for r in rows if r["document"].encode("cp949", "ignore").decode("cp949") == r["document"]]
    with open(path, "w", encoding="cp949", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["번호", "리뷰", "평가"])
        for number, row in enumerate(rows[:1500], start=1):
            writer.writerow([number, row["document"], ["부정", "긍정"][int(row["label"])]])
    return {
        # Slugified to 65 characters: every AWS name must fit the API and the generated policies.
        "project_name": "영화 리뷰 감성 분류 모델 학습과 배포 프로젝트",
        "dataset": str(path),
        "text_column": "리뷰",
        "label_column": "평가",
        "label_names": "부정, 긍정",
    }


# Non-English names for three classes: none, offensive, hate.
THREE_KOREAN = ["없음", "공격", "혐오"]


def split_folder(folder: Path) -> dict[str, Any]:
    """Three labels in split files next to files that are not data: a README, notes, a hidden
    file. Texts hold Unicode line separators, which must survive every read and write."""
    data = folder / "hate-speech"
    data.mkdir()
    names = THREE_KOREAN
    texts = sample_texts()
    for split, start, count in (("train", 0, 900), ("dev", 900, 150)):
        with open(data / f"{split}.tsv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(["comments", "contain_gender_bias", "hate"])
            for index, text in enumerate(texts[start : start + count]):
                separator = "\u2028" if index % 10 == 0 else " "
                writer.writerow([f"{text}{separator}{index % 3}", "False", names[index % 3]])
    (data / "README.md").write_text("# Comments\nNot data.\n", encoding="utf-8")
    (data / "notes.txt").write_text("free text, not a table\n\tat all\n", encoding="utf-8")
    (data / ".DS_Store").write_bytes(b"\x00\x01binary")
    return {
        "project_name": "Hate Speech",
        "dataset": str(data),
        "text_column": "comments",
        "label_column": "hate",
        "label_names": ",".join(THREE_KOREAN),
        "include_sagemaker": "no",
        "train_instance_type": "ml.m5.xlarge",
        "max_seq_length": "64",
        "license": "Apache-2.0",
    }


SEVEN = "fragment,statement,question,command,rhetorical_question,rhetorical_command,intonation"


def seven_sorted(folder: Path) -> dict[str, Any]:
    """A large file with label ids 0-6, sorted by label: every class shows up only late."""
    path = folder / "intents.tsv"
    texts = sample_texts()
    rows = [(index % 7, texts[index % len(texts)]) for index in range(55_000)]
    rows.sort(key=lambda row: row[0])
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return {
        "project_name": "Intents",
        "dataset": str(path),
        "text_column": "text",
        "label_column": "label",
        "label_names": SEVEN,
        "license": "BSD-3-Clause",
    }


def star_ratings(folder: Path) -> dict[str, Any]:
    """Numeric label names: star ratings 1-5 written as the names themselves (JSON Lines)."""
    path = folder / "ratings.jsonl"
    texts = sample_texts()
    with open(path, "w", encoding="utf-8") as handle:
        for index, text in enumerate(texts[:1000]):
            handle.write(json.dumps({"review": text, "stars": str(index % 5 + 1)}) + "\n")
    return {
        "project_name": "Star Ratings",
        "dataset": str(path),
        "text_column": "review",
        "label_column": "stars",
        "label_names": "1,2,3,4,5",
        "license": "Proprietary",
    }


HATE_SPEECH = SHARED / "data" / "korean-hate-speech"
# Offensive or hateful, and biased by gender or otherwise: up to two labels per comment, or none.
HATE_AND_BIAS = {"offensive": "공격", "hate": "혐오", "gender": "성별", "others": "기타"}


def hate_and_bias(folder: Path) -> dict[str, Any]:
    """Multi-label, as a moderation team exports it: one CSV, Korean column and label names,
    several labels per comment joined with ';' (none for a clean comment), from the shared
    hate-speech corpus's ``hate`` and ``bias`` columns."""
    path = folder / "moderation.csv"
    with open(HATE_SPEECH / "train.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:1200]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["댓글", "레이블"])
        for row in rows:
            labels = [HATE_AND_BIAS[value] for value in (row["hate"], row["bias"]) if value in HATE_AND_BIAS]
            writer.writerow([row["comments"], ";".join(labels)])
    return {
        "project_name": "Comment Moderation",
        "dataset": str(path),
        "task": "multi_label",
        "text_column": "댓글",
        "label_column": "레이블",
        "label_delimiter": ";",
        "label_names": ",".join(HATE_AND_BIAS.values()),
        "max_seq_length": "64",
    }


def review_agreement(folder: Path) -> dict[str, Any]:
    """Text pairs, as JSON Lines with Korean keys: two NSMC reviews and whether they rate the film
    alike (tools/review_pairs.py), so only both texts together tell the label."""
    path = folder / "리뷰쌍.jsonl"
    rows = review_pairs(NSMC_DIR / "ratings_train.txt", 1200, seed=7)
    with open(path, "w", encoding="utf-8") as handle:
        for first, second, agreement in rows:
            record = {"첫리뷰": first, "둘째리뷰": second, "관계": agreement}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {
        "project_name": "Review Agreement",
        "dataset": str(path),
        "task": "text_pair",
        "text_column": "첫리뷰",
        "text_pair_column": "둘째리뷰",
        "label_column": "관계",
        "label_names": ",".join(PAIR_LABELS),
        "max_seq_length": "64",
    }


# Shared by the scenarios: the libraries' analysis is the same for every project.
MYPY_CACHE = Path(tempfile.gettempdir()) / "text-classifier-template-mypy-cache"

# The tiers, as the reports (-rsp: every passed and skipped test) must show them: the answer tier
# trains and predicts in the project's own labels; the engine tier runs for the default answers.
ANSWER_TIER_TEST = "tests/test_train_predict.py::test_train_then_predict_in_the_projects_labels"
ENGINE_TIER_MODULES = (
    "tests/test_training_runs.py",
    "tests/test_serving_scheduler.py",
    "tests/test_run_store.py",
)
# Fewer would mean that most of what depends on the answers went into the engine tier.
MIN_ANSWER_TESTS = 150


@dataclass
class Scenario:
    make: Any = None
    package: str = ""
    sagemaker: bool = True
    config: dict[str, Any] = field(default_factory=dict)
    # Answer base_model with a local folder, then train and predict through the CLI in the clone
    # before its suite runs.
    local_session: bool = False


SCENARIOS = {
    "default": Scenario(None, "nsmc_sentiment_classifier"),
    # Also the one trained and queried through the CLI, with a local base model folder.
    "korean-cp949": Scenario(
        korean_cp949_csv,
        "yeonghwa_ribyu_gamseong_bunryu_model_hagseubgwa_baepo_peurojegteu",
        config={"label_names": ["부정", "긍정"]},
        local_session=True,
    ),
    "split-folder-no-sagemaker": Scenario(split_folder, "hate_speech", sagemaker=False),
    "seven-sorted-ids": Scenario(seven_sorted, "intents", config={"label_names": SEVEN.split(",")}),
    "numeric-names": Scenario(star_ratings, "star_ratings", config={"label_format": "names"}),
    # Trained and queried through the CLI too: several labels per text, or none.
    "multi-label-korean": Scenario(
        hate_and_bias,
        "comment_moderation",
        config={"task": "multi_label", "label_delimiter": ";", "label_names": list(HATE_AND_BIAS.values())},
        local_session=True,
    ),
    # Trained and queried through the CLI too: one label per pair of texts.
    "text-pair-korean": Scenario(
        review_agreement,
        "review_agreement",
        config={"task": "text_pair", "text_pair_column": "둘째리뷰", "label_names": list(PAIR_LABELS)},
        local_session=True,
    ),
}


@pytest.fixture(scope="module")
def tiny_model_factory():
    """The generated project's own tiny-model builder (its tests/conftest.py)."""
    conftest = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "tests" / "conftest.py"
    source = conftest.read_text(encoding="utf-8")
    start = source.index("def build_tiny_model(")
    end = source.index("\n\n\n", start)
    namespace: dict[str, Any] = {"Path": Path}
    exec(compile(source[start:end], str(conftest), "exec"), namespace)  # noqa: S102
    return namespace["build_tiny_model"]


def cli(site: Path, cwd: Path, package: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_from_a_git_clone(name, out, tmp_path, tiny_model_factory):
    scenario = SCENARIOS[name]
    answers = scenario.make(tmp_path) if scenario.make else {}
    if scenario.local_session:
        # What the README suggests offline: a model folder on this machine, outside the repository.
        labels = [label.strip() for label in answers["label_names"].split(",")]
        answers["base_model"] = str(
            tiny_model_factory(tmp_path / "base-model", sample_texts(), len(labels), labels)
        )
    project = bake(out, **answers)
    package = scenario.package
    assert project.name.replace("-", "_") == package

    assert project_files(project) == template_files(package, scenario.sagemaker)
    assert leftovers(project) == []
    # What the generated CI workflow checks before its tests: lint, formatting, types.
    for check in (
        ["ruff", "check", "--no-cache", "."],
        ["ruff", "format", "--no-cache", "--check", "."],
        ["mypy", "--cache-dir", str(MYPY_CACHE)],
    ):
        result = subprocess.run(
            [sys.executable, "-m", *check], cwd=project, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, (check, result.stdout[-4000:], result.stderr[-2000:])
    config = tomllib.loads((project / "config.toml").read_text(encoding="utf-8"))
    for key, value in scenario.config.items():
        assert config["data"][key] == value
    if not scenario.sagemaker:
        assert "sagemaker" not in config
        found = [n for n in project_files(project) if "[sagemaker]" in (project / n).read_text("utf-8")]
        assert found == []

    clone = commit_and_clone(project, tmp_path / "clone")
    # Everything arrives, src/<package>/data/ included (an unanchored "data/" ignored it).
    assert project_files(clone) == project_files(project)
    site = install(clone, tmp_path / "site")
    # The wheel is the package alone: no config, nothing of this machine (paths live in config.toml).
    with zipfile.ZipFile(next((tmp_path / "site-dist").glob("*.whl"))) as wheel:
        assert not [n for n in wheel.namelist() if n.endswith("config.toml")]
        leaked = [n for n in wheel.namelist() if str(tmp_path).encode() in wheel.read(n)]
        assert leaked == []
    if scenario.local_session:
        first_session(clone, site, package, Path(answers["dataset"]), tmp_path / "predictions.csv")
        shutil.rmtree(answers["base_model"])

    # The team's CI runner: the dataset is outside the repository (or git-ignored), so it has none.
    dataset = Path(answers["dataset"]) if "dataset" in answers else None
    if dataset is not None and dataset.is_dir():
        shutil.rmtree(dataset)
    elif dataset is not None:
        dataset.unlink()
    tier = () if name == "default" else ("-m", "not engine")
    result = run_generated_tests(clone, site, "-rfsp", *tier)
    # The report lists every passed test; name the failed ones first, then their tracebacks.
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert result.returncode == 0, "\n".join(failed) + "\n" + result.stdout[:8000] + result.stderr[-3000:]
    check_tier(result.stdout, full=name == "default")
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    # A virtualenv the template's Makefile builds; a skip for its absence only where none is set.
    allowed = ["Docker"] + [name for name in ("PARITY_PYTHON", "TRAINING_PYTHON") if not os.environ.get(name)]
    if not scenario.sagemaker:
        allowed.append("sagemaker")
    missing = [line for line in skips if "the configured dataset is not on this machine" in line]
    if dataset is not None:
        # Only the tests about the configured dataset itself skip, naming it.
        assert missing and all(str(dataset) in line for line in missing), skips
        allowed.append("the configured dataset is not on this machine")
    else:
        assert missing == [], skips
    assert all(any(word in line for word in allowed) for line in skips), skips


def check_tier(report: str, full: bool) -> None:
    """The default answers ran every test; another answer set ran the answer tier only, and
    still a good part of the suite."""
    passed = [line.split()[1] for line in report.splitlines() if line.startswith("PASSED ")]
    summary = report.strip().splitlines()[-1]
    assert ANSWER_TIER_TEST in passed, summary
    engine = [test for test in passed if test.startswith(ENGINE_TIER_MODULES)]
    if full:
        assert "deselected" not in summary and engine, summary
    else:
        assert "deselected" in summary and engine == [], summary
        assert len(passed) >= MIN_ANSWER_TESTS, summary


def first_session(clone: Path, site: Path, package: str, dataset: Path, predictions: Path) -> None:
    """A user's first session, from a subfolder of the clone: validate, prepare, train briefly
    (the configured base model: a local folder), predict; nothing it writes is untracked."""
    steps = [
        ("data", "validate"),
        ("data", "prepare"),
        (
            "train",
            "--entry",
            "torch",
            "--max_steps",
            "6",
            "--batch_size",
            "16",
            "--eval_batch_size",
            "64",
            "--max_seq_length",
            "32",
        ),
        ("predict", str(dataset), "--out", str(predictions)),
    ]
    for args in steps:
        run = cli(site, clone / "src", package, *args)  # from a subfolder: paths still resolve
        assert run.returncode == 0, (args, run.stdout[-3000:], run.stderr[-3000:])
    data = tomllib.loads((clone / "config.toml").read_text(encoding="utf-8"))["data"]
    with open(predictions, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if data["task"] == "multi_label":  # a set of labels per text, possibly none
        predicted = {
            name for row in rows for name in row["predicted_labels"].split(data["label_delimiter"]) if name
        }
        assert "predicted_labels" in rows[0]
    else:
        predicted = {row["predicted_label"] for row in rows}
    assert predicted and predicted <= set(data["label_names"])
    # Everything the run wrote is ignored by git, and nothing it needs is.
    latest = json.loads((clone / "outputs" / "latest.json").read_text(encoding="utf-8"))
    assert (clone / latest["run_dir"] / "model" / "config.json").is_file()
    assert (clone / latest["run_dir"] / "model" / "README.md").is_file()  # the model card
    assert (clone / "mlruns" / "mlflow.db").is_file()  # tracked in the project's local MLflow store
    assert any((clone / "checkpoints").iterdir())
    assert (clone / "data" / "prepared" / "train" / "train.jsonl").is_file()
    assert git("status", "--porcelain", cwd=clone) == ""
