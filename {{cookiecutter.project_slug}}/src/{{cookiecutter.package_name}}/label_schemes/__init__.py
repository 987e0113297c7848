"""Label schemes: how a project's labels are read, encoded, lost, scored, decided and decoded.

A scheme is one module of this package whose ``SCHEME`` satisfies :class:`LabelScheme`; a new
module is found by itself (``SCHEMES``). Everything that touches labels (data files, training,
evaluation, batch prediction, the container handlers) asks the scheme. A trained model records
its scheme's name in ``config.json`` (``label_scheme``), so whatever serves it picks the same one.

Standard library only at import time, and nothing from the rest of the project: the hooks import
it without torch, and ``model.tar.gz`` ships it as ``code/label_schemes/`` for the container.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import single_label

if TYPE_CHECKING:
    import torch


class LabelScheme(Protocol):
    """What a label scheme decides. Targets and predictions are whatever the scheme encodes a
    row's labels as (a label id for single-label)."""

    # The name a project picks the scheme by, recorded in a trained model's config.json.
    @property
    def name(self) -> str: ...

    # transformers' ``problem_type`` for the model's config.
    @property
    def problem_type(self) -> str: ...

    # The scores that training logs (as ``eval_<name>``) and that can pick the best model.
    @property
    def metric_names(self) -> tuple[str, ...]: ...

    # The default of ``metric_for_best_model``.
    @property
    def best_metric(self) -> str: ...

    def label_reader(
        self, values: Mapping[Any, Any] | Iterable[Any], names: Sequence[str], label_format: str = "auto"
    ) -> Callable[[Any], Any]:
        """Decide how a file writes its labels from all its raw values (or a mapping from each
        to the line it first appears on); returns raw value -> target. Raises
        :class:`~.label_values.LabelError` for values it cannot read."""
        ...

    def class_weights(self, choice: str, targets: Sequence[Any], names: Sequence[str]) -> list[float] | None:
        """Loss weights for the ``--class_weights`` choice from the training targets; None: none."""
        ...

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: Sequence[float] | None
    ) -> torch.Tensor:
        """The training loss of a batch (also the reported evaluation loss)."""
        ...

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-label scores in [0, 1]: what predictions are decided on and clients are shown."""
        ...

    def predict(self, probabilities: Any) -> list[Any]:
        """The prediction (a target) for each row of :meth:`probabilities`."""
        ...

    def decode(self, prediction: Any, names: Sequence[str]) -> str:
        """A prediction as the label name(s) people read."""
        ...

    def compute_metrics(
        self, y_true: Sequence[Any], y_pred: Sequence[Any], names: Sequence[str]
    ) -> dict[str, Any]:
        """Every score of a split: at least ``metric_names``, plus the details reports show."""
        ...


def _discover() -> dict[str, LabelScheme]:
    """Every module of this package that defines ``SCHEME``, by the scheme's name."""
    found: dict[str, LabelScheme] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        scheme = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SCHEME", None)
        if scheme is not None:
            found[scheme.name] = scheme
    return found


DEFAULT = "single_label"
SCHEMES = _discover()


def get(name: str = DEFAULT) -> LabelScheme:
    """The scheme called ``name``."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown label scheme {name!r}; known: {', '.join(SCHEMES)}") from None


def for_model(config: Any) -> LabelScheme:
    """The scheme a model's config (``transformers`` config object) was trained with. A model
    without the record (trained elsewhere, or before schemes were recorded) is scored as
    transformers' text-classification pipeline scores it: one label per text, each label on
    its own for a multi-label or one-logit head."""
    name = getattr(config, "label_scheme", None)
    if name:
        return get(str(name))
    independent = config.problem_type == "multi_label_classification" or config.num_labels == 1
    return single_label.SingleLabel(independent_scores=independent)
