"""Run identity: every training run has an id, a fingerprint and folders of its own.

The fingerprint hashes what defines the run: the options that change what is trained
(``identity=True`` in :mod:`..options`), the entry point, the number of processes, the labels,
the training and validation files' contents, and the base model. A run is continued automatically
only when an unfinished run with the same fingerprint exists; anything else starts a new run.

Layout, relative to the project root (the config file's folder)::

    checkpoints/<run id>/run.json              the record: fingerprint, status, folders
    checkpoints/<run id>/run.lock              locked while a process trains the run
    checkpoints/<run id>/checkpoint-<step>/    written by one entry point only
    outputs/runs/<run id>/model/               the trained model (save_pretrained + README.md)
    outputs/runs/<run id>/                     metrics, plots, hyperparameters, run.json
    outputs/latest.json                        the newest completed run (what evaluate, predict,
                                               serve and package use); outputs/latest links to it

On SageMaker the container contract is unchanged: checkpoints go under /opt/ml/checkpoints/<run
id> (synced to S3, so a spot restart finds its run) and outputs to SM_MODEL_DIR and
SM_OUTPUT_DATA_DIR; the run id is the training job's name.

One process at a time trains a run: it is *claimed* before anything is written, by an OS file
lock that dies with its process, so a killed run is free to continue at once while a live one is
never shared. A completed run is never written again. Paths in a record are relative to the
project root where they lie inside it, so a moved or cloned project continues its runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..options import TrainOptions, identity_values
from .checkpoints import is_complete, list_checkpoints

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"  # the claim: locked by the process training the run
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
    with open(path, "rb") as handle:
        if limit is not None:
            return hashlib.sha256(handle.read(limit)).hexdigest()
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _folder_digest(path: Path, sized: bool = False) -> str:
    """Names and contents of every file in ``path``; ``sized``: large files by size and head."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        size = file.stat().st_size
        if sized:
            digest.update(str(size).encode())
        limit = _HEAD_BYTES if sized and size > 16 * _HEAD_BYTES else None
        digest.update(_sha256_file(file, limit).encode())
    return digest.hexdigest()


def data_digest(location: str | None) -> str | None:
    """Hash of a data file, or of every file in a data folder (names and contents)."""
    if not location:
        return None
    path = Path(location)
    if path.is_file():
        return _sha256_file(path)
    return _folder_digest(path) if path.is_dir() else None


def model_digest(name_or_path: str) -> str:
    """A hub id as is; a local folder by its files (not its path, which moves between machines)."""
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    return f"local folder {path.name} ({_folder_digest(path, sized=True)[:16]})"


def run_identity(options: TrainOptions, entry_point: str, world_size: int) -> dict[str, Any]:
    """What defines a run; two runs with equal identities train the same model."""
    identity = identity_values(options)
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


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically: a process killed while writing leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(partial, path)


def write_record(run_dir: Path, record: Mapping[str, Any], replace_completed: bool = False) -> None:
    """A completed run's record is never rewritten (``replace_completed`` only for copies
    outside the run folder)."""
    if not replace_completed:
        existing = read_record(run_dir)
        if existing is not None and existing.get("status") == COMPLETED:
            raise OptionError(
                f"run {existing.get('run_id', run_dir.name)} is complete: its record in {run_dir} "
                "is never rewritten; start a new run instead"
            )
    _write_json(run_dir / RUN_FILE, record)


def list_runs(checkpoint_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Run folders with a readable record, oldest first (``...-2`` before ``...-10`` within a
    second)."""
    if not checkpoint_root.is_dir():
        return []
    runs = [(path, record) for path in checkpoint_root.iterdir() if (record := read_record(path))]
    return sorted(runs, key=lambda item: (str(item[1].get("created", "")), len(item[0].name), item[0].name))


def recorded_path(path: str | os.PathLike[str], project_root: Path) -> str:
    """How a record stores ``path``: relative to the project root where it lies inside it (so a
    moved or cloned project still finds it), absolute otherwise (SageMaker's folders)."""
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(project_root.resolve()).as_posix()
    except ValueError:
        return str(absolute)


# -- claims: one live process per run -----------------------------------------------------------

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl


def _try_lock(fd: int) -> bool:
    # flock belongs to the open file, not the process: released when the process dies (even by
    # kill -9), and two opens in one process exclude each other as two processes do. Windows has
    # no flock; its byte-range lock is likewise released by the system when its process ends.
    try:
        if sys.platform == "win32":
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


_CLAIMS: dict[Path, int] = {}  # run folder (resolved) -> the open, locked LOCK_FILE


class RunInUseError(OptionError):
    """Another live process trains the run."""


def claim_run(run_dir: Path) -> bool:
    """Lock the existing folder ``run_dir`` for this caller; False when someone else holds it.
    Held until :func:`release_run` or the end of the process."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    # A second claim in the same process fails here too: each open() is its own lock holder.
    if not _try_lock(fd):
        os.close(fd)
        return False
    _CLAIMS[run_dir.resolve()] = fd
    # Who holds it, for the refusal message others get (information only: the lock decides).
    note = f"{os.getpid()} {socket.gethostname()}\n".encode()
    os.write(fd, note)
    os.ftruncate(fd, len(note))
    return True


def release_run(run_dir: Path) -> None:
    """Give up this process's claim on ``run_dir`` (nothing if it holds none)."""
    fd = _CLAIMS.pop(run_dir.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the locked file releases the lock


def holds_run(run_dir: Path) -> bool:
    return run_dir.resolve() in _CLAIMS


def _claim_existing(run_dir: Path, what: str, way_out: str) -> None:
    if claim_run(run_dir):
        return
    try:
        note = (run_dir / LOCK_FILE).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        note = []
    holder = f"process {note[0]} on {note[1]}" if len(note) >= 2 else "another process"
    raise RunInUseError(
        f"{what}: run {run_dir.name} is being trained by {holder} right now; wait for it to end, or {way_out}"
    )


def _claim_new(checkpoint_root: Path, project_root: Path, base: str) -> Path:
    """Create and claim a run folder named ``base`` (or ``base-2``, ...): ``mkdir`` is atomic,
    so two commands started in the same second get different runs."""
    checkpoint_root.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        run_id = base if number == 1 else f"{base}-{number}"
        if (project_root / RUNS_DIR / run_id).exists():
            continue
        run_dir = checkpoint_root / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        if claim_run(run_dir):
            return run_dir
    raise OptionError(f"no free run id {base}-N under {checkpoint_root}")


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class RunPlan:
    """Where this run's checkpoints and outputs go, and what it resumes from."""

    run_id: str
    fingerprint: str
    run_dir: Path  # this run's checkpoint folder
    model_dir: Path
    output_dir: Path
    resume_from: Path | None
    default_outputs: bool  # outputs in the project's runs folder: "latest" follows this run
    record: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


def _check_continuable(
    run_dir: Path, record: Mapping[str, Any], identity: Mapping[str, Any], what: str
) -> None:
    if record.get("status") == COMPLETED:
        raise OptionError(
            f"{what}: run {run_dir.name} is already complete (outputs in {record.get('output_dir')}) "
            "and is never rewritten; start a new run with --resume no (and without --run_id "
            f"{run_dir.name})"
        )
    if record.get("fingerprint") != fingerprint(identity):
        changed = "; ".join(differences(record.get("identity", {}), identity))
        raise OptionError(
            f"{what}: run {run_dir.name} was started with other settings ({changed}); "
            "continue it with its own settings, or start a new run with --resume no"
        )


def _auto_choice(checkpoint_root: Path, marker: str, identity: Mapping[str, Any]) -> Path | None:
    """The newest unfinished run with this fingerprint, if any (``--resume auto``)."""
    fp = fingerprint(identity)
    unfinished = [(path, rec) for path, rec in list_runs(checkpoint_root) if rec.get("status") != COMPLETED]
    matching = [path for path, rec in unfinished if rec.get("fingerprint") == fp]
    if not matching and unfinished:
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
    return matching[-1] if matching else None


def _named_choice(choice: str, checkpoint_root: Path, marker: str) -> tuple[Path | None, Path | None]:
    """(run folder, checkpoint) that ``--resume <choice>`` names; the run folder is None for a
    checkpoint of the older layout (no run record), which is resumed in a new run."""
    target = Path(choice)
    if not target.exists() and (checkpoint_root / choice).is_dir():
        target = checkpoint_root / choice
    run_dir: Path | None
    resume_from: Path | None
    if read_record(target) is not None:  # a run folder
        run_dir, resume_from = target, None
    elif is_complete(target, marker):  # a checkpoint folder
        resume_from = target
        run_dir = target.parent if read_record(target.parent) is not None else None
        if run_dir is None:
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
    if run_dir is not None and run_dir.resolve().parent != checkpoint_root.resolve():
        raise OptionError(
            f"--resume {choice}: run {run_dir.name} is not in this project's checkpoint folder "
            f"{checkpoint_root} (it belongs to another project or --checkpoint_dir) and is not "
            "continued from here; continue it from its own project, or start a new run here "
            f"from one of its checkpoints with --resume {run_dir / 'checkpoint-<step>'} "
            "after copying that checkpoint out of its run folder"
        )
    return run_dir, resume_from


def plan_run(options: TrainOptions, identity: dict[str, Any], marker: str, project_root: Path) -> RunPlan:
    """Choose the run (continue a matching unfinished one, or start a new one; see --resume and
    --run_id) and claim it for this process before anything is written. The claim lasts until
    :func:`release_run` or the end of the process; a run another live process holds is refused."""
    checkpoint_root = Path(options.checkpoint_dir)
    fp = fingerprint(identity)
    choice = options.resume.strip()
    mode = "no" if choice.lower() in _NO else "auto" if choice.lower() in _AUTO else "named"
    named_dir, resume_from = (
        _named_choice(choice, checkpoint_root, marker) if mode == "named" else (None, None)
    )
    run_dir: Path | None = None
    what, way_out = f"--resume {choice}", "start a separate run with --resume no"

    if options.run_id:
        if not _RUN_ID.match(options.run_id):
            raise OptionError(
                f"--run_id {options.run_id!r}: use up to 128 letters, digits, '.', '_' and '-', "
                "starting with a letter or digit (it names the run's folders)"
            )
        own = checkpoint_root / options.run_id
        what, way_out = f"--run_id {options.run_id}", "pick another --run_id"
        if named_dir is not None and named_dir.resolve() != own.resolve():
            raise OptionError(
                f"--run_id {options.run_id} and --resume {choice} name different runs; give only one of them"
            )
        # Its checkpoint folder's record (written last on completion), else its outputs' copy.
        existing = read_record(own) or read_record(project_root / RUNS_DIR / options.run_id)
        if existing is not None and existing.get("status") == COMPLETED:
            _check_continuable(own, existing, identity, what)  # refuses: complete
        if mode == "no" and (own.is_dir() or existing is not None):
            raise OptionError(
                f"--run_id {options.run_id} names an existing run, and --resume no starts a new "
                f"one: pick another --run_id, or leave out --resume no to continue run {options.run_id}"
            )
        if own.is_dir():
            run_dir = own
    elif mode == "auto":
        run_dir = _auto_choice(checkpoint_root, marker, identity)
    else:
        run_dir = named_dir

    record: dict[str, Any] | None = None
    if run_dir is not None:
        _claim_existing(run_dir, what, way_out)
        try:
            record = read_record(run_dir)  # again, under the claim: it may have changed meanwhile
            if record is not None:
                _check_continuable(run_dir, record, identity, what)
        except BaseException:
            release_run(run_dir)
            raise
    if record is not None and run_dir is not None:
        if resume_from is None:
            checkpoints = list_checkpoints(run_dir, marker)
            resume_from = checkpoints[-1] if checkpoints else None
        log.info(
            "continuing run %s from %s",
            run_dir.name,
            resume_from or "the start (it had saved no checkpoint yet)",
        )
    elif run_dir is None:
        if options.run_id:
            run_dir = checkpoint_root / options.run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            _claim_existing(run_dir, what, way_out)
        else:
            run_dir = _claim_new(checkpoint_root, project_root, f"{_now():%Y%m%d-%H%M%S}-{fp[:8]}")
        log.info("starting run %s (fingerprint %s)", run_dir.name, fp)
    run_id = run_dir.name

    try:
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
            "checkpoint_dir": recorded_path(run_dir, project_root),
            "model_dir": recorded_path(model_dir, project_root),
            "output_dir": recorded_path(output_dir, project_root),
        }
        write_record(run_dir, record)
    except BaseException:
        release_run(run_dir)
        raise
    return RunPlan(run_id, fp, run_dir, model_dir, output_dir, resume_from, default_outputs, record)


def complete_run(plan: RunPlan, project_root: Path, extra: Mapping[str, Any]) -> None:
    """Mark the run complete (last, so a run killed before this is continued) and point
    "latest" at it when its outputs are in the project's runs folder. Completing needs the
    run's claim (taken here if this caller does not hold it yet)."""
    held = holds_run(plan.run_dir)
    if not held:
        _claim_existing(plan.run_dir, f"completing run {plan.run_id}", "leave it to that process")
    try:
        current = read_record(plan.run_dir)
        if current is not None and current.get("status") == COMPLETED:
            raise OptionError(f"run {plan.run_id} is already complete and is never rewritten")
        record = {
            **plan.record,
            **extra,
            "status": COMPLETED,
            "finished": _now().isoformat(timespec="seconds"),
        }
        # The copy beside the outputs may be complete already (killed before the line below):
        # the run folder's record is the one that counts.
        write_record(plan.output_dir, record, replace_completed=True)
        if plan.default_outputs:
            set_latest(project_root, plan.run_id)
        write_record(plan.run_dir, record)
    finally:
        if not held:
            release_run(plan.run_dir)


def set_latest(project_root: Path, run_id: str) -> None:
    _write_json(project_root / LATEST_FILE, {"run_id": run_id, "run_dir": (RUNS_DIR / run_id).as_posix()})
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


def latest_model_dir(project_root: Path) -> Path:
    """The model folder commands use by default; a clear error before the first training run."""
    try:
        pointer = json.loads((project_root / LATEST_FILE).read_text(encoding="utf-8"))
        run_dir: Path | None = project_root / pointer["run_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        run_dir = None
    if run_dir is None or not (run_dir / "model").is_dir():
        raise OptionError(
            f"no trained model yet: {project_root / LATEST_FILE} names none; run `train` first, "
            "or pass --model FOLDER"
        )
    return run_dir / "model"
