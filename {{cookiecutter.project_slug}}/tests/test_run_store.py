"""The run store under contention, without training: random sequences of start, continue,
checkpoint, finish, crash and project moves by several commands at once, checked against a
model of what each command must get; and real processes contending for one run."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import PACKAGE

from nsmc_sentiment_classifier.options import TrainOptions
from nsmc_sentiment_classifier.training import (
    options as options_module,
)
from nsmc_sentiment_classifier.training import runs
from nsmc_sentiment_classifier.training.runs import RunPlan

pytestmark = pytest.mark.engine

MARKER = "loop_state.json"
SETTINGS = ({"learning_rate": 1e-3}, {"learning_rate": 5e-5})  # two fingerprints
CASES = 150
OPERATIONS = 20


@pytest.fixture
def base_options(project_dir) -> TrainOptions:
    return options_module.parse_options(["--model_name_or_path", "org/model"], {})


@dataclass
class Run:
    fingerprint: str
    created: str
    completed: bool = False
    holder: int | None = None  # the live command training it
    frozen: dict[str, bytes] = field(default_factory=dict)  # its records once complete


@dataclass
class Model:
    """What the store must hold: every run, who trains it, and which are complete."""

    root: Path
    runs: dict[str, Run] = field(default_factory=dict)
    live: dict[int, RunPlan] = field(default_factory=dict)  # command -> its run

    def newest_unfinished(self, fingerprint: str) -> str | None:
        candidates = [
            (run.created, len(run_id), run_id)
            for run_id, run in self.runs.items()
            if not run.completed and run.fingerprint == fingerprint
        ]
        return max(candidates)[2] if candidates else None

    def expected(self, mode: str, name: str, fingerprint: str) -> tuple[str, str | None]:
        """("new" | "continue" | "in use" | "refused", run id) for one start."""

        def existing(run_id: str) -> tuple[str, str | None]:
            run = self.runs[run_id]
            if run.completed:
                return "refused", run_id
            if run.holder is not None:
                return "in use", run_id
            if run.fingerprint != fingerprint:
                return "refused", run_id
            return "continue", run_id

        if mode == "auto":
            newest = self.newest_unfinished(fingerprint)
            return ("new", None) if newest is None else existing(newest)
        if mode == "no":
            return "new", None
        if mode == "resume":
            return existing(name) if name in self.runs else ("refused", None)
        # --run_id name (with --resume auto or no)
        if name not in self.runs:
            return "new", name
        if mode == "run_id no":
            return "refused", name
        return existing(name)


def _options(base: TrainOptions, root: Path, mode: str, name: str) -> Any:
    resume = {"auto": "auto", "no": "no", "resume": name, "run_id auto": "auto", "run_id no": "no"}[mode]
    return replace(
        base,
        checkpoint_dir=str(root / "checkpoints"),
        config_path=str(root / "config.toml"),
        resume=resume,
        run_id=name if mode.startswith("run_id") else "",
    )


def _check_invariants(model: Model) -> None:
    checkpoints = model.root / "checkpoints"
    on_disk = {path.name for path, _ in runs.list_runs(checkpoints)}
    assert on_disk == set(model.runs), (on_disk, set(model.runs))
    for run_id, run in model.runs.items():
        run_dir = checkpoints / run_id
        record = runs.read_record(run_dir)
        assert record is not None and record["run_id"] == run_id
        assert record["status"] == ("completed" if run.completed else "running")
        assert record["fingerprint"] == run.fingerprint
        # Paths inside the project are relative to it and lead to the run, wherever it is now.
        assert not Path(record["checkpoint_dir"]).is_absolute()
        assert model.root / record["checkpoint_dir"] == run_dir
        assert model.root / record["output_dir"] == model.root / runs.RUNS_DIR / run_id
        assert runs.holds_run(run_dir) == (run.holder is not None)
        for path, content in run.frozen.items():  # a finished run is never rewritten
            assert (model.root / path).read_bytes() == content, f"{path} changed after completion"
    holders = [run.holder for run in model.runs.values() if run.holder is not None]
    assert len(holders) == len(set(holders)) == len(model.live)


def _start(model: Model, base: Any, rng: random.Random, command: int) -> None:
    mode = rng.choice(["auto", "auto", "no", "resume", "run_id auto", "run_id no"])
    known = sorted(model.runs)
    name = rng.choice([*known, "job-1", "job-2"]) if mode != "auto" and mode != "no" else ""
    settings = rng.choice(SETTINGS)
    fingerprint = runs.fingerprint(settings)
    outcome, expected_id = model.expected(mode, name, fingerprint)
    options = _options(base, model.root, mode, name)
    try:
        plan = runs.plan_run(options, dict(settings), MARKER, model.root)
    except runs.RunInUseError as error:
        assert outcome == "in use", (mode, name, outcome, str(error))
        return
    except options_module.OptionError as error:
        assert outcome == "refused", (mode, name, outcome, str(error))
        return
    assert outcome in {"new", "continue"}, (mode, name, outcome, plan.run_id)
    if outcome == "continue":
        assert plan.run_id == expected_id
        model.runs[plan.run_id].holder = command
    else:
        assert plan.run_id not in model.runs, f"{plan.run_id} reused"  # unique, even within a second
        if expected_id is not None:
            assert plan.run_id == expected_id
        model.runs[plan.run_id] = Run(fingerprint, plan.record["created"], holder=command)
    checkpoints = runs.list_checkpoints(plan.run_dir, MARKER)
    assert plan.resume_from == (checkpoints[-1] if checkpoints and outcome == "continue" else None)
    model.live[command] = plan


def _step(model: Model, base: Any, rng: random.Random, clock: list[datetime]) -> None:
    if rng.random() < 0.3:
        clock[0] += timedelta(seconds=1)  # most starts share a second with another
    command = rng.randrange(3)
    plan = model.live.get(command)
    action = rng.random()
    if plan is None:
        if action < 0.85 or model.live:
            _start(model, base, rng, command)
        else:  # nobody is training: move the whole project elsewhere
            moved = model.root.with_name(f"{model.root.name}-m")
            shutil.move(model.root, moved)
            model.root = moved
        return
    run = model.runs[plan.run_id]
    if action < 0.4:  # a checkpoint, written into its own run only
        step = len(runs.list_checkpoints(plan.run_dir, MARKER)) + 1
        folder = plan.run_dir / f"checkpoint-{step}"
        folder.mkdir()
        (folder / MARKER).write_text("{}", encoding="utf-8")
    elif action < 0.6:  # finish
        plan.output_dir.mkdir(parents=True, exist_ok=True)
        runs.complete_run(plan, model.root, {"final_metrics": {"test_accuracy": rng.random()}})
        runs.release_run(plan.run_dir)
        run.completed, run.holder = True, None
        del model.live[command]
        for folder in (plan.run_dir, plan.output_dir):
            relative = (folder / runs.RUN_FILE).relative_to(model.root)
            run.frozen[str(relative)] = (folder / runs.RUN_FILE).read_bytes()
    else:  # crash (kill -9): the claim goes with the process
        runs.release_run(plan.run_dir)
        run.holder = None
        del model.live[command]
    if run.frozen:
        # A completed run stays complete, even for a command that planned it long ago.
        with pytest.raises(options_module.OptionError, match="complete"):
            runs.complete_run(plan, model.root, {})


def test_random_command_sequences_keep_the_run_store_consistent(base_options, tmp_path, monkeypatch):
    """Thousands of operations: the outcome of every start is the one the model predicts (a
    live run is never shared, a completed one never continued or rewritten, ids never reused),
    and the store matches the model after every operation, also after the project moved."""
    clock = [datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)]
    monkeypatch.setattr(runs, "_now", lambda: clock[0])
    operations = 0
    for case in range(CASES):
        rng = random.Random(case)
        root = tmp_path / f"case{case}" / "project"
        root.mkdir(parents=True)
        model = Model(root)
        try:
            for _ in range(OPERATIONS):
                _step(model, base_options, rng, clock)
                _check_invariants(model)
                operations += 1
        finally:
            for plan in model.live.values():
                runs.release_run(plan.run_dir)
    assert operations == CASES * OPERATIONS


def test_recorded_paths_round_trip(tmp_path):
    rng = random.Random(0)
    for _ in range(2000):
        parts = [rng.choice(["a", "b b", "ü", "c.d", "-e"]) for _ in range(rng.randint(1, 4))]
        root = tmp_path / "p" / rng.choice(["x", "y"])
        inside = root.joinpath(*parts)
        text = runs.recorded_path(inside, root)
        assert not Path(text).is_absolute()
        moved = tmp_path / "q" / "moved"
        assert moved / text == moved.joinpath(*parts)
        outside = tmp_path / "elsewhere" / parts[0]
        assert moved / runs.recorded_path(outside, root) == outside.resolve()


HOLDER = """
import sys, time
from pathlib import Path
from PACKAGE.training import runs

assert runs.claim_run(Path(sys.argv[1]))
print("claimed", flush=True)
time.sleep(600)
"""

CREATOR = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from PACKAGE.training import runs

start = float(sys.argv[2])
while time.time() < start:  # every process creates its run in the same instant
    time.sleep(0.001)
run_dir = runs._claim_new(Path(sys.argv[1]), Path(sys.argv[1]).parent, "20261205-090000-abcdef12")
print(run_dir.name, flush=True)
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script).replace("PACKAGE", PACKAGE), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_run_held_by_a_live_process_is_refused_until_that_process_dies(base_options, project_dir):
    settings = dict(SETTINGS[0])
    first = runs.plan_run(base_options, settings, MARKER, project_dir)
    runs.release_run(first.run_dir)
    holder = _python(HOLDER, str(first.run_dir))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        for options in (base_options, replace(base_options, resume=first.run_id)):
            with pytest.raises(runs.RunInUseError, match=f"process {holder.pid} on .*--resume no"):
                runs.plan_run(options, settings, MARKER, project_dir)
        with pytest.raises(runs.RunInUseError, match="pick another --run_id"):
            runs.plan_run(replace(base_options, run_id=first.run_id), settings, MARKER, project_dir)
        with pytest.raises(runs.RunInUseError):  # nor may another process finish it
            runs.complete_run(first, project_dir, {})
        separate = runs.plan_run(replace(base_options, resume="no"), settings, MARKER, project_dir)
        runs.release_run(separate.run_dir)
        assert separate.run_id != first.run_id
    finally:
        holder.kill()  # kill -9: nothing gets to clean up
        holder.wait(timeout=60)
    # The claim died with its process: the run is free to continue at once.
    again = runs.plan_run(replace(base_options, resume=first.run_id), settings, MARKER, project_dir)
    runs.release_run(again.run_dir)
    assert again.run_id == first.run_id


def test_processes_creating_runs_in_the_same_instant_get_their_own(tmp_path):
    root = tmp_path / "project" / "checkpoints"
    start = f"{time.time() + 3:.3f}"
    creators = [_python(CREATOR, str(root), start) for _ in range(4)]
    names = []
    for creator in creators:
        output, _ = creator.communicate(timeout=120)
        assert creator.returncode == 0, output
        names.append(output.strip())
    assert len(set(names)) == 4 and "20261205-090000-abcdef12" in names, names
