"""Checkpoint folders (``checkpoint-<step>``) of one run: list the complete ones, rotate old ones.

On SageMaker the folder is ``/opt/ml/checkpoints``, which the platform syncs to S3; after a spot
interruption the new instance gets it back and training resumes from the newest checkpoint.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "checkpoint-"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


def checkpoint_step(path: str | Path) -> int | None:
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete(path: Path, marker: str) -> bool:
    """Whether ``path`` holds a readable ``marker``: a JSON object, the file each entry point
    writes last. A process killed while writing it leaves it missing or cut short."""
    try:
        return isinstance(json.loads((path / marker).read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def list_checkpoints(folder: str | Path, marker: str) -> list[Path]:
    """Complete checkpoints, oldest first. A folder cut short by an interruption (its marker
    missing or unreadable), or written by the other entry point (another marker), is skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if not path.is_dir() or checkpoint_step(path) is None or not (path / marker).exists():
            continue
        if is_complete(path, marker):
            found.append(path)
        else:
            log.warning("ignoring %s: its %s is unreadable (interrupted while saving)", path, marker)
    return sorted(found, key=lambda path: checkpoint_step(path) or 0)


def rotate(folder: str | Path, marker: str, keep: int, protect: Iterable[str | Path] = ()) -> None:
    """Delete all but the ``keep`` newest checkpoints; protected ones (the best) always stay."""
    protected = {Path(path).resolve() for path in protect if path}
    checkpoints = list_checkpoints(folder, marker)
    newest = {path.resolve() for path in checkpoints[-keep:]} if keep > 0 else set()
    for path in checkpoints:
        if path.resolve() not in newest | protected:
            shutil.rmtree(path, ignore_errors=True)
