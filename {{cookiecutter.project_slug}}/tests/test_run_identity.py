"""Run identity without training: fingerprints, which run a start continues, "latest", and the
one-place definition of training options."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PACKAGE, labelled_records, write_labelled

import nsmc_sentiment_classifier
from nsmc_sentiment_classifier.options import TrainOptions
from nsmc_sentiment_classifier.training import (
    options as options_module,
)
from nsmc_sentiment_classifier.training import runs

MARKER = "loop_state.json"


@pytest.fixture
def prepared(project_dir, config):
    """A project with tiny prepared splits; returns a function that resolves options."""
    for split, rows in (("train", 12), ("validation", 6)):
        path = project_dir / "data" / "prepared" / split / f"{split}.jsonl"
        write_labelled(path, config, labelled_records(config, rows), ids=True)

    def resolve(*argv: str) -> TrainOptions:
        return options_module.parse_options(["--model_name_or_path", "org/model", *argv], {})

    return resolve


def plan(options, entry="train_torch", world_size=1):
    """Plan a run as a train command does, then end that command (its claim ends with it)."""
    identity = runs.run_identity(options, entry, world_size)
    planned = runs.plan_run(options, identity, MARKER, Path(options.config_path).parent)
    runs.release_run(planned.run_dir)
    return planned


def save_checkpoint(run_dir: Path, step: int, complete: bool = True, marker: str = MARKER) -> Path:
    folder = run_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / marker).write_text("{}" if complete else '{"global', encoding="utf-8")
    return folder


def test_fingerprint_follows_what_changes_the_model(prepared, project_dir, config):
    base = prepared()
    same = runs.fingerprint(runs.run_identity(base, "train_torch", 1))
    # Options that do not change what is trained leave the fingerprint alone.
    for argv in (["--logging_steps", "7"], ["--eval_batch_size", "3"], ["--num_workers", "1"]):
        assert runs.fingerprint(runs.run_identity(prepared(*argv), "train_torch", 1)) == same
    for argv in (
        ["--learning_rate", "1e-3"],
        ["--batch_size", "8"],
        ["--dev_fraction", "0.5"],
        ["--class_weights", "balanced"],
        ["--model_name_or_path", "org/other"],
    ):
        assert runs.fingerprint(runs.run_identity(prepared(*argv), "train_torch", 1)) != same, argv
    assert runs.fingerprint(runs.run_identity(base, "train_hf", 1)) != same
    assert runs.fingerprint(runs.run_identity(base, "train_torch", 2)) != same
    # The data's contents, not its path.
    path = project_dir / "data" / "prepared" / "train" / "train.jsonl"
    write_labelled(path, config, labelled_records(config, 13), ids=True)
    assert runs.fingerprint(runs.run_identity(prepared(), "train_torch", 1)) != same


def test_local_base_model_is_identified_by_its_files(tmp_path):
    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"x": 1}')
    assert runs.model_digest(str(first)) == runs.model_digest(str(second))
    (second / "config.json").write_text('{"x": 2}')
    assert runs.model_digest(str(first)) != runs.model_digest(str(second))
    assert runs.model_digest("org/model") == "org/model"


def test_a_first_run_gets_its_own_folders(prepared, project_dir):
    first = plan(prepared())
    assert first.resume_from is None
    assert first.run_dir.parent == project_dir / "checkpoints"
    assert first.model_dir == project_dir / "outputs" / "runs" / first.run_id / "model"
    assert first.output_dir == project_dir / "outputs" / "runs" / first.run_id
    assert first.run_id.endswith(first.fingerprint[:8]) and first.default_outputs


def test_auto_resume_continues_only_an_unfinished_run_with_the_same_fingerprint(prepared, caplog):
    caplog.set_level(logging.INFO)
    first = plan(prepared())
    runs.write_record(first.run_dir, first.record)
    save_checkpoint(first.run_dir, 10)
    save_checkpoint(first.run_dir, 20)
    save_checkpoint(first.run_dir, 30, complete=False)  # killed while writing
    save_checkpoint(first.run_dir, 40, marker="trainer_state.json")  # the other entry point's

    again = plan(prepared("--logging_steps", "3"))
    assert again.run_id == first.run_id and again.resume_from == first.run_dir / "checkpoint-20"

    # Other settings: a new run, and the message says how to continue the old one.
    other = plan(prepared("--learning_rate", "1e-3"))
    assert other.run_id != first.run_id and other.resume_from is None
    assert f"--resume {first.run_id}" in caplog.text and "learning_rate 5e-05 -> 0.001" in caplog.text

    # A completed run is never continued: the same command trains a new run.
    runs.complete_run(first, Path(prepared().config_path).parent, {})
    fresh = plan(prepared())
    assert fresh.run_id != first.run_id and fresh.resume_from is None


def test_explicit_resume_checks_the_settings(prepared):
    first = plan(prepared())
    runs.write_record(first.run_dir, first.record)
    save_checkpoint(first.run_dir, 10)
    with pytest.raises(
        options_module.OptionError, match=r"other settings \(batch_size 32 -> 8\).*--resume no"
    ):
        plan(prepared("--resume", first.run_id, "--batch_size", "8"))
    by_checkpoint = plan(prepared("--resume", str(first.run_dir / "checkpoint-10")))
    assert by_checkpoint.run_id == first.run_id
    with pytest.raises(
        options_module.OptionError, match="not a run id, a run folder or a complete checkpoint"
    ):
        plan(prepared("--resume", "no-such-run"))
    runs.complete_run(first, Path(prepared().config_path).parent, {})
    with pytest.raises(options_module.OptionError, match="already complete"):
        plan(prepared("--resume", first.run_id))


def test_resume_no_and_a_cut_short_checkpoint(prepared):
    first = plan(prepared())
    runs.write_record(first.run_dir, first.record)
    cut = save_checkpoint(first.run_dir, 10, complete=False)
    assert plan(prepared("--resume", "no")).run_id != first.run_id
    # An unreadable marker means "incomplete": the run restarts from its beginning.
    assert plan(prepared()).resume_from is None
    with pytest.raises(options_module.OptionError, match="no readable loop_state.json"):
        plan(prepared("--resume", str(cut)))


def test_an_old_layout_checkpoint_is_resumed_only_when_named(prepared, project_dir, caplog):
    caplog.set_level(logging.INFO)
    legacy = save_checkpoint(project_dir / "checkpoints", 50)
    assert plan(prepared()).resume_from is None
    assert "without a run record" in caplog.text
    named = plan(prepared("--resume", str(legacy)))
    assert named.resume_from == legacy and named.run_dir != legacy.parent


def test_a_named_run_id_continues_that_run(prepared):
    named = plan(prepared("--run_id", "job-1"))
    assert named.run_id == "job-1"
    runs.write_record(named.run_dir, named.record)
    save_checkpoint(named.run_dir, 10)
    assert plan(prepared("--run_id", "job-1")).resume_from == named.run_dir / "checkpoint-10"
    with pytest.raises(options_module.OptionError, match="other settings"):
        plan(prepared("--run_id", "job-1", "--seed", "1"))


def test_a_finished_run_is_never_rewritten(prepared, project_dir):
    """``--run_id <finished run> --resume no`` (the way out the refusal used to suggest) rewrote
    the finished run in place; now any start naming it is refused, and nothing in it changes."""
    first = plan(prepared("--run_id", "job-1"))
    first.model_dir.mkdir(parents=True)
    runs.complete_run(first, project_dir, {"final_metrics": {"test_accuracy": 0.5}})
    before = {path: path.read_bytes() for path in project_dir.rglob("*") if path.is_file()}
    for argv in (["--resume", "no"], [], ["--learning_rate", "1e-3"], ["--resume", "job-1"]):
        with pytest.raises(options_module.OptionError, match="already complete"):
            plan(prepared("--run_id", "job-1", *argv))
    with pytest.raises(options_module.OptionError, match="already complete"):
        runs.complete_run(first, project_dir, {})
    assert {path: path.read_bytes() for path in project_dir.rglob("*") if path.is_file()} == before
    # Unfinished, it is continued by its id; --resume no with its id is a contradiction.
    unfinished = plan(prepared("--run_id", "job-2"))
    with pytest.raises(options_module.OptionError, match="pick another --run_id, or leave out --resume no"):
        plan(prepared("--run_id", "job-2", "--resume", "no"))
    assert plan(prepared("--run_id", "job-2")).run_id == unfinished.run_id
    for bad in ("../elsewhere", "a/b", ".hidden", ""):
        if bad:
            with pytest.raises(options_module.OptionError, match="--run_id"):
                plan(prepared("--run_id", bad))


def test_runs_started_in_the_same_second_get_their_own_ids(prepared, monkeypatch):
    moment = runs._now()
    monkeypatch.setattr(runs, "_now", lambda: moment)
    ids = [plan(prepared("--resume", "no")).run_id for _ in range(12)]
    assert len(set(ids)) == 12
    # The newest of them is the one "auto" continues (-10 after -9, not after -1).
    assert plan(prepared()).run_id == ids[-1]


def test_resume_refuses_a_run_of_another_project(prepared, project_dir, tmp_path_factory):
    first = plan(prepared())
    runs.write_record(first.run_dir, first.record)
    save_checkpoint(first.run_dir, 10)
    other = tmp_path_factory.mktemp("other") / "checkpoints" / first.run_id
    shutil.copytree(first.run_dir, other)
    for target in (other, other / "checkpoint-10"):
        with pytest.raises(options_module.OptionError, match="not in this project's checkpoint folder"):
            plan(prepared("--resume", str(target)))
    assert (runs.read_record(other) or {}).get("status") == "running"  # left alone


def test_records_hold_paths_relative_to_the_project(prepared, project_dir):
    first = plan(prepared())
    record = json.loads((first.run_dir / "run.json").read_text("utf-8"))
    assert record["checkpoint_dir"] == f"checkpoints/{first.run_id}"
    assert record["model_dir"] == f"outputs/runs/{first.run_id}/model"
    assert record["output_dir"] == f"outputs/runs/{first.run_id}"
    # Outside the project (SageMaker's folders, --model_dir elsewhere): absolute.
    elsewhere = plan(prepared("--resume", "no", "--model_dir", str(project_dir.parent / "m")))
    assert elsewhere.record["model_dir"] == str((project_dir.parent / "m").resolve())


def test_latest_names_the_newest_completed_run(prepared, project_dir):
    with pytest.raises(options_module.OptionError, match="no trained model yet"):
        runs.latest_model_dir(project_dir)
    first = plan(prepared())
    first.model_dir.mkdir(parents=True)
    runs.complete_run(first, project_dir, {"final_metrics": {"test_accuracy": 0.5}})
    assert runs.latest_model_dir(project_dir) == first.model_dir
    assert json.loads((first.output_dir / "run.json").read_text())["status"] == "completed"
    if (project_dir / "outputs" / "latest").is_symlink():
        assert (project_dir / "outputs" / "latest" / "model").resolve() == first.model_dir.resolve()
    # Outputs sent elsewhere do not move "latest".
    elsewhere = plan(prepared("--learning_rate", "1e-3", "--model_dir", str(project_dir / "m")))
    runs.complete_run(elsewhere, project_dir, {})
    assert runs.latest_model_dir(project_dir) == first.model_dir


ADDED_OPTION = """\
    label_smoothing: float = option(
        0.0, "label smoothing factor", low=0, high=1, open_high=True, identity=True
    )
"""

CHECK_ADDED_OPTION = """
import argparse, importlib.util, json, sys
from pathlib import Path
from PACKAGE import config as config_module
from PACKAGE.training import options, runs

config_path = Path(sys.argv[1])
config = config_module.load_config(config_path)
assert config.options.label_smoothing == 0.25, config.options
parsed = options.parse_options(["--model_name_or_path", "org/model"], {})
assert parsed.label_smoothing == 0.25
flag = options.parse_options(["--model_name_or_path", "org/model", "--label-smoothing", "0.5"], {})
assert flag.label_smoothing == 0.5
hps = {"SM_HPS": json.dumps({"label_smoothing": "0.125"})}
sagemaker = options.parse_options(["--model_name_or_path", "org/model"], hps)
assert sagemaker.label_smoothing == 0.125
try:
    options.parse_options(["--model_name_or_path", "org/model", "--label_smoothing", "1.5"], {})
except options.OptionError as error:
    assert "--label_smoothing must be in [0, 1), got 1.5" in str(error), error
else:
    raise AssertionError("out of range accepted")
identity = runs.run_identity(parsed, "train_torch", 1)
assert identity["label_smoothing"] == 0.25
help_text = options.build_parser().format_help()
assert "--label_smoothing" in help_text and "label smoothing factor" in help_text
if importlib.util.find_spec("PACKAGE.aws") is not None:
    from PACKAGE.aws.training import default_hyperparameters
    assert default_hyperparameters(config)["label_smoothing"] == "0.25"
config_path.write_text(config_path.read_text().replace("0.25", "-1"))
try:
    config_module.load_config(config_path)
except config_module.ConfigError as error:
    assert "[train].label_smoothing: must be in [0, 1), got -1" in str(error), error
else:
    raise AssertionError("config range not checked")
print("ok")
"""


def test_adding_a_training_option_is_one_definition(project_dir, tmp_path):
    """Add an option the way a developer would: one field in options.py. Config loading,
    flags, SageMaker hyperparameters, range checks and the run fingerprint all follow."""
    source = Path(nsmc_sentiment_classifier.__file__).parent
    copy = tmp_path / "src" / PACKAGE
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = copy / "options.py"
    text = spec.read_text(encoding="utf-8")
    marker = "    def to_dict(self)"
    spec.write_text(text.replace(marker, ADDED_OPTION + "\n" + marker, 1), encoding="utf-8")
    config_text = (project_dir / "config.toml").read_text(encoding="utf-8")
    config_text = config_text.replace("[train]\n", "[train]\nlabel_smoothing = 0.25\n", 1)
    (project_dir / "config.toml").write_text(config_text, encoding="utf-8")
    script = textwrap.dedent(CHECK_ADDED_OPTION).replace("PACKAGE", PACKAGE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(project_dir / "config.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=project_dir,
        timeout=300,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr


def test_report_to_is_checked_before_anything_loads():
    from nsmc_sentiment_classifier.training.pipeline import (
        trainer_integrations,
    )

    assert trainer_integrations("mlflow", "train_torch") == []
    assert trainer_integrations("none", "train_hf") == []
    assert trainer_integrations("mlflow, TensorBoard", "train_hf") == ["tensorboard"]
    with pytest.raises(options_module.OptionError, match="the plain loop tracks with mlflow only"):
        trainer_integrations("mlflow,tensorboard", "train_torch")
    with pytest.raises(
        options_module.OptionError, match=r"unknown integration\(s\) tensorbord; known: .*wandb"
    ):
        trainer_integrations("tensorbord", "train_hf")


def test_tracking_in_a_sagemaker_job_needs_a_server(prepared, project_dir, monkeypatch):
    """Without a tracking server a hosted job tracks nothing (a store in the container would be
    lost with it); locally the default store is the project's mlruns/."""
    from nsmc_sentiment_classifier.training.pipeline import (
        open_tracker,
    )

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    options = prepared()
    first = plan(options)
    local = open_tracker(options, first, "train_torch")
    assert local.run_id and (project_dir / "mlruns" / "mlflow.db").is_file()
    local.finish()
    monkeypatch.setenv("TRAINING_JOB_NAME", "job-1")
    assert open_tracker(options, first, "train_torch").run_id is None
