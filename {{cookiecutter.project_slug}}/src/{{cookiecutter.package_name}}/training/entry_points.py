"""The training entry points: every ``train_<name>`` module of this package is one.

Such a module runs as ``python -m <package>.training.train_<name>`` (its ``main()``) and names its
backend factory ``BACKEND`` for in-process runs. ``train --entry <name>``, the SageMaker launcher's
``--entry-point`` (and its config key ``entry_point``) and every record of a run (run.json,
hyperparameters.json, MLflow, the model card) use the names found here, so a new entry point is
one new module and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .pipeline import BackendFactory

PREFIX = "train_"
DEFAULT = "train_hf"


def entry_points() -> tuple[str, ...]:
    """Module names (``train_hf``, ...), found without importing them: ``--help`` stays fast."""
    found = pkgutil.iter_modules([str(Path(__file__).parent)])
    return tuple(sorted(module.name for module in found if module.name.startswith(PREFIX)))


def check_entry_point(name: str) -> str:
    """``name`` as a module name (``hf`` and ``train_hf`` both give ``train_hf``), or a UsageError."""
    module = name if name.startswith(PREFIX) else PREFIX + name
    known = entry_points()
    if module not in known:
        raise UsageError(
            f"unknown training entry point {name!r}; use one of {', '.join(known)} "
            f"(the {PREFIX}*.py modules in {Path(__file__).parent})"
        )
    return module


def module_path(entry_point: str) -> str:
    """The importable module that runs ``entry_point`` (for ``python -m`` and torchrun)."""
    return f"{__package__}.{check_entry_point(entry_point)}"


def backend_for(entry_point: str) -> BackendFactory:
    return importlib.import_module(module_path(entry_point)).BACKEND
