"""Run identity: every training run has an id, a fingerprint and folders of its own.

The fingerprint is a hash of what defines the run: the options that change what is trained
(``identity=True`` in :mod:`.option_spec`), the entry point, the number of processes, the labels,
the contents of the training and validation files, and the base model. A run is continued
automatically only when an unfinished run with the same fingerprint exists; anything else starts
a new run and leaves earlier runs' checkpoints and outputs alone.

Layout, relative to the project root (the config file's folder)::

    checkpoints/<run id>/run.json              the record: fingerprint, status, folders
    checkpoints/<run id>/checkpoint-<step>/    written by one entry point only
    outputs/runs/<run id>/model/               the trained model (save_pretrained + README.md)
    outputs/runs/<run id>/                     metrics, plots, hyperparameters, run.json
    outputs/latest.json                        the newest completed run (what evaluate, predict,
                                               serve and package use); outputs/latest links to it

On SageMaker the container contract is unchanged: checkpoints go under /opt/ml/checkpoints/<run
id> (synced to S3, so a spot restart finds its run) and outputs to SM_MODEL_DIR and
SM_OUTPUT_DATA_DIR; the run id is the training job's name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .checkpoints import is_complete, list_checkpoints
from .option_spec import OPTIONS
from .options import OptionError, TrainOptions

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RUNS_DIR = Path("outputs") / "runs"
LATEST_FILE = Path("outputs") / "latest.json"
LATEST_LINK = Path("outputs") / "latest"
RUNNING, COMPLETED = "running", "completed"
_NO = {"no", "false", "never", "0", "none", "new"}
_AUTO = {"auto", "yes", "true", "1"}
# A base model's weights are identified by size and their first bytes: hashing several GB on
# every start would cost more than it protects against.
_HEAD_BYTES = 1 << 20


def _sha256_file(path: Path, limit: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        remaining = limit
        while True:
            chunk = handle.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    break
    return digest.hexdigest()


def data_digest(location: str | None) -> str | None:
    """Hash of a data file, or of every file in a data folder (names and contents)."""
    if not location:
        return None
    path = Path(location)
    if path.is_file():
        return _sha256_file(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(_sha256_file(file).encode())
    return digest.hexdigest()


def model_digest(name_or_path: str) -> str:
    """A hub id as is; a local folder by its files (not its path, which moves between machines)."""
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        size = file.stat().st_size
        digest.update(str(size).encode())
        digest.update(_sha256_file(file, None if size <= 16 * _HEAD_BYTES else _HEAD_BYTES).encode())
    return f"local folder {path.name} ({digest.hexdigest()[:16]})"


def run_identity(options: TrainOptions, entry_point: str, world_size: int) -> dict[str, Any]:
    """What defines a run; two runs with equal identities train the same model."""
    identity: dict[str, Any] = {option.name: options[option.name] for option in OPTIONS if option.identity}
    identity["model_name_or_path"] = model_digest(options.model_name_or_path)
    identity.update(
        entry_point=entry_point,
        world_size=world_size,
        label_names=list(options.label_names),
        text_column=options.text_column,
        label_column=options.label_column,
        train_data=data_digest(options.train_dir),
        validation_data=data_digest(options.validation_dir),
    )
    return identity


def fingerprint(identity: Mapping[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``key old -> new`` for what changed (data and model digests are shortened)."""

    def shown(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        return text[:12] + "..." if len(text) > 40 else text

    return [
        f"{key} {shown(before.get(key))} -> {shown(after.get(key))}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) and "fingerprint" in record else None


def write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Atomically: a run killed while writing keeps its previous record."""
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = run_dir / f".{RUN_FILE}.partial"
    partial.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(partial, run_dir / RUN_FILE)


def list_runs(checkpoint_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Run folders with a readable record, oldest first."""
    if not checkpoint_root.is_dir():
        return []
    runs = [(path, record) for path in checkpoint_root.iterdir() if (record := read_record(path))]
    return sorted(runs, key=lambda item: (str(item[1].get("created", "")), item[0].name))


@dataclass(frozen=True)
class RunPlan:
    """Where this run's checkpoints and outputs go, and what it resumes from."""

    run_id: str
    fingerprint: str
    identity: dict[str, Any]
    run_dir: Path  # this run's checkpoint folder
    model_dir: Path
    output_dir: Path
    resume_from: Path | None
    default_outputs: bool  # outputs in the project's runs folder: "latest" follows this run
    record: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_run_id(checkpoint_root: Path, fingerprint_: str) -> str:
    base = f"{_now():%Y%m%d-%H%M%S}-{fingerprint_[:8]}"
    run_id, suffix = base, 2
    while (checkpoint_root / run_id).exists():
        run_id, suffix = f"{base}-{suffix}", suffix + 1
    return run_id


def _check_continuable(
    run_dir: Path, record: Mapping[str, Any], identity: Mapping[str, Any], what: str
) -> None:
    if record.get("status") == COMPLETED:
        raise OptionError(
            f"{what}: run {run_dir.name} is already complete (outputs in {record.get('output_dir')}); "
            "start a new run with --resume no"
        )
    if record.get("fingerprint") != fingerprint(identity):
        changed = "; ".join(differences(record.get("identity", {}), identity))
        raise OptionError(
            f"{what}: run {run_dir.name} was started with other settings ({changed}); "
            "continue it with its own settings, or start a new run with --resume no"
        )


def plan_run(options: TrainOptions, identity: dict[str, Any], marker: str, project_root: Path) -> RunPlan:
    """Choose the run: continue a matching unfinished one, or start a new one (see --resume)."""
    checkpoint_root = Path(options.checkpoint_dir)
    fp = fingerprint(identity)
    choice = options.resume.strip()
    resume_from: Path | None = None
    run_dir: Path | None = None
    record: dict[str, Any] | None = None

    if options.run_id and (checkpoint_root / options.run_id).is_dir() and choice.lower() not in _NO:
        # A named run that exists (e.g. a SageMaker job restarted on a new spot instance).
        run_dir = checkpoint_root / options.run_id
        record = read_record(run_dir)
        if record is not None:
            _check_continuable(run_dir, record, identity, f"--run_id {options.run_id}")
    elif choice.lower() in _AUTO:
        unfinished = [
            (path, rec) for path, rec in list_runs(checkpoint_root) if rec.get("status") != COMPLETED
        ]
        matching = [(path, rec) for path, rec in unfinished if rec.get("fingerprint") == fp]
        if matching:
            run_dir, record = matching[-1]
        elif unfinished:
            other, other_record = unfinished[-1]
            changed = "; ".join(differences(other_record.get("identity", {}), identity))
            log.info(
                "not continuing unfinished run %s: it was started with other settings (%s); "
                "pass --resume %s to continue it",
                other.name,
                changed,
                other.name,
            )
        legacy = list_checkpoints(checkpoint_root, marker)
        if legacy:
            log.info(
                "%s holds checkpoints without a run record (an older layout); they are not resumed "
                "automatically: pass --resume %s to continue one",
                checkpoint_root,
                legacy[-1],
            )
    elif choice.lower() not in _NO:
        target = Path(choice)
        if not target.exists() and (checkpoint_root / choice).is_dir():
            target = checkpoint_root / choice
        if read_record(target) is not None:  # a run folder
            run_dir, record = target, read_record(target)
        elif is_complete(target, marker):  # a checkpoint folder
            resume_from = target
            parent_record = read_record(target.parent)
            if parent_record is not None:
                run_dir, record = target.parent, parent_record
            else:
                log.warning(
                    "%s has no run record (an older layout): resuming it in a new run without "
                    "checking that the settings match",
                    target,
                )
        else:
            raise OptionError(
                f"--resume {choice}: not a run id, a run folder or a complete checkpoint of this "
                f"entry point (no readable {marker}) under {checkpoint_root}"
            )
        if run_dir is not None and record is not None:
            _check_continuable(run_dir, record, identity, f"--resume {choice}")

    if run_dir is not None and record is not None:
        if resume_from is None:
            checkpoints = list_checkpoints(run_dir, marker)
            resume_from = checkpoints[-1] if checkpoints else None
        run_id = run_dir.name
        log.info(
            "continuing run %s from %s",
            run_id,
            resume_from or "the start (it had saved no checkpoint yet)",
        )
    else:
        run_id = options.run_id or _new_run_id(checkpoint_root, fp)
        run_dir = checkpoint_root / run_id
        record = None
        log.info("starting run %s (fingerprint %s)", run_id, fp)

    default_outputs = not options.model_dir and not options.output_data_dir
    run_outputs = project_root / RUNS_DIR / run_id
    model_dir = Path(options.model_dir) if options.model_dir else run_outputs / "model"
    output_dir = Path(options.output_data_dir) if options.output_data_dir else run_outputs
    if record is None:
        record = {
            "run_id": run_id,
            "fingerprint": fp,
            "status": RUNNING,
            "created": _now().isoformat(timespec="seconds"),
            "identity": identity,
        }
    record = {
        **record,
        "status": RUNNING,
        "checkpoint_dir": str(run_dir),
        "model_dir": str(model_dir),
        "output_dir": str(output_dir),
    }
    return RunPlan(run_id, fp, identity, run_dir, model_dir, output_dir, resume_from, default_outputs, record)


def complete_run(plan: RunPlan, project_root: Path, extra: Mapping[str, Any]) -> None:
    """Mark the run complete (last, so a run killed before this is continued) and point
    "latest" at it when its outputs are in the project's runs folder."""
    record = {
        **plan.record,
        **extra,
        "status": COMPLETED,
        "finished": _now().isoformat(timespec="seconds"),
    }
    write_record(plan.output_dir, record)
    if plan.default_outputs:
        set_latest(project_root, plan.run_id)
    write_record(plan.run_dir, record)


def set_latest(project_root: Path, run_id: str) -> None:
    pointer = project_root / LATEST_FILE
    pointer.parent.mkdir(parents=True, exist_ok=True)
    partial = pointer.with_name(f".{pointer.name}.partial")
    run_dir = (RUNS_DIR / run_id).as_posix()
    partial.write_text(json.dumps({"run_id": run_id, "run_dir": run_dir}, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, pointer)
    # A convenience for people (ls outputs/latest/); commands read the JSON, which works where
    # symbolic links do not (Windows without developer mode).
    link = project_root / LATEST_LINK
    temporary = link.with_name(".latest.partial")
    try:
        if temporary.is_symlink() or temporary.exists():
            temporary.unlink()
        temporary.symlink_to(Path("runs") / run_id, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as error:
        log.debug("no outputs/latest link: %s", error)


def latest_run_dir(project_root: Path) -> Path | None:
    """Output folder of the newest completed run, or None before the first one."""
    try:
        pointer = json.loads((project_root / LATEST_FILE).read_text(encoding="utf-8"))
        return project_root / pointer["run_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest_model_dir(project_root: Path) -> Path:
    """The model folder commands use by default; a clear error before the first training run."""
    run_dir = latest_run_dir(project_root)
    if run_dir is None or not (run_dir / "model").is_dir():
        raise OptionError(
            f"no trained model yet: {project_root / LATEST_FILE} names none; run `train` first, "
            "or pass --model FOLDER"
        )
    return run_dir / "model"
