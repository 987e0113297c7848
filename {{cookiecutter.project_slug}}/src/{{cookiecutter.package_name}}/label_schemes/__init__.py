"""Label schemes: how a project's labels are read, encoded, lost, scored, decided and decoded.

``single_label``: one label per text. ``multi_label``: a set of labels per text (possibly empty).

A scheme is one module of this package whose ``SCHEME`` satisfies :class:`LabelScheme`; a new
module is found by itself (``SCHEMES``). Everything that touches labels (data files, training,
evaluation, batch prediction, the container handlers) asks the scheme. A trained model records
its scheme's name and decision parameters in ``config.json`` (:meth:`LabelScheme.model_config`),
so whatever serves it decides the same way.

Standard library only at import time, and nothing from the rest of the project: the hooks import
it without torch, and ``model.tar.gz`` ships it as ``code/label_schemes/`` for the container.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from . import multi_label, single_label

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

    # Metric names where lower is better (besides "loss", which always is).
    @property
    def lower_is_better(self) -> frozenset[str]: ...

    # True when a target is a set of labels (any number, none included), False for one label:
    # what reports and answers name "labels" rather than "label".
    @property
    def label_sets(self) -> bool: ...

    def cell_key(self, raw: Any) -> Any:
        """A raw label cell as a dict key, for :meth:`label_reader`'s first lines."""
        ...

    def cell_values(self, raw: Any) -> list[Any]:
        """The label values one raw cell holds (a multi-label cell's parts)."""
        ...

    def label_reader(
        self, values: Mapping[Any, Any] | Iterable[Any], names: Sequence[str], label_format: str = "auto"
    ) -> Callable[[Any], Any]:
        """Decide how a file writes its labels from all its raw values (or a mapping from each
        to the line it first appears on); returns raw value -> target. Raises
        :class:`~.label_values.LabelError` for values it cannot read."""
        ...

    def read_columns(self, row: Mapping[str, Any], names: Sequence[str]) -> Any:
        """A target from one 0/1 column per label (``label_layout = "columns"``); raises
        :class:`~.label_values.LabelError` naming the column and value it cannot read."""
        ...

    def as_feature(self, target: Any, num_labels: int) -> Any:
        """What a training row's ``labels`` holds for a target (the loss's target format)."""
        ...

    def from_feature(self, value: Any) -> Any:
        """A target back from a ``labels`` row (e.g. the Trainer's ``label_ids``)."""
        ...

    def label_counts(self, targets: Iterable[Any], num_labels: int) -> list[int]:
        """Rows holding each label id."""
        ...

    def empty_rows(self, targets: Iterable[Any]) -> int:
        """Rows without any label."""
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

    def tune(self, probabilities: Any, targets: Sequence[Any]) -> LabelScheme:
        """This scheme with its decision parameters fitted on these rows (the validation split)."""
        ...

    def model_config(self) -> dict[str, Any]:
        """What a trained model records in its config.json; :func:`for_model` reads it back."""
        ...

    def decision_thresholds(self, num_labels: int) -> list[float] | None:
        """The score each label needs to be predicted, or None where labels compete (argmax)."""
        ...

    def mistake_score(self, scores: Sequence[float], target: Any) -> float:
        """How sure a wrong prediction from ``scores`` was (the surest wrong decision first
        in reports of mistakes)."""
        ...

    def decode(self, prediction: Any, names: Sequence[str]) -> str:
        """A prediction as the text people read (one cell of a CSV)."""
        ...

    def label_list(self, prediction: Any, names: Sequence[str]) -> list[str]:
        """A prediction as its label names (JSON answers)."""
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


# Tasks named for their inputs, not their labels, and the scheme that reads their labels: a text
# pair gets one label of N, as a single text does.
TASK_SCHEMES = {"text_pair": "single_label"}
TASKS = ("single_label", "multi_label", *TASK_SCHEMES)


def for_project(task: str = DEFAULT, label_delimiter: str = multi_label.DEFAULT_DELIMITER) -> LabelScheme:
    """The scheme of a project's ``[data]`` settings (``task``, ``label_delimiter``)."""
    scheme = get(TASK_SCHEMES.get(task, task))
    if isinstance(scheme, multi_label.MultiLabel):
        return replace(scheme, delimiter=label_delimiter)
    return scheme


def for_model(config: Any) -> LabelScheme:
    """The scheme a model's config (``transformers`` config object) was trained with, with the
    decision parameters it recorded. A model without the record (trained elsewhere, or before
    schemes were recorded) is scored as transformers' text-classification pipeline scores it:
    one label per text, each label on its own for a multi-label or one-logit head."""
    name = getattr(config, "label_scheme", None)
    if name:
        scheme = get(str(name))
        if isinstance(scheme, multi_label.MultiLabel):
            thresholds = getattr(config, "label_thresholds", None) or ()
            delimiter = getattr(config, "label_delimiter", None) or scheme.delimiter
            thresholds = tuple(float(value) for value in thresholds)
            return replace(scheme, thresholds=thresholds, delimiter=delimiter)
        return scheme
    independent = config.problem_type == "multi_label_classification" or config.num_labels == 1
    return single_label.SingleLabel(independent_scores=independent)
