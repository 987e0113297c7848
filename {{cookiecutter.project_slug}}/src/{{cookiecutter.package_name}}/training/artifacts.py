"""What a training run leaves behind, identical for both entry points.

``model_dir``: ``save_pretrained`` folder (safetensors weights, config with id2label/label2id
and the label scheme's decision parameters, tokenizer). ``output_data_dir``:
``metrics_<split>.json`` + ``confusion_matrix_<split>.png`` (multi-label: ``per_label_<split>.png``)
for validation and test, ``hyperparameters.json``, ``train_results.json`` (throughput, token
efficiency, history) and ``learning_curve.png``. Metrics also go to stdout as ``name=value;``
lines so SageMaker metric definitions (:func:`metric_definitions`) can scrape them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..label_schemes import SCHEMES
from ..metrics import save_metrics_png

# Every label scheme's scores, once each (a SageMaker job's metric definitions are fixed before
# it knows the project's scheme; a name no line prints is simply never scraped).
_SCORES = tuple(dict.fromkeys(name for scheme in SCHEMES.values() for name in scheme.metric_names))
# Names printed in metric lines; ``metric_definitions`` turns them into SageMaker regexes.
LOGGED_METRICS = (
    "epoch",
    "train_loss",
    "learning_rate",
    "grad_norm",
    "eval_loss",
    *(f"{prefix}_{name}" for prefix in ("eval", "validation", "test") for name in _SCORES),
    "train_samples_per_second",
    "token_efficiency",
)
_NUMBER = r"([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf))"


def metric_line(values: Mapping[str, Any]) -> str:
    """``name=value;`` pairs on one line, numbers only (a regex per name can pick each out)."""
    parts = []
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        text = str(value) if isinstance(value, int) else f"{value:.6g}"
        parts.append(f"{name}={text};")
    return "metrics: " + " ".join(parts)


def print_metrics(values: Mapping[str, Any]) -> None:
    print(metric_line(values), flush=True)


def metric_definitions(names: Sequence[str] = LOGGED_METRICS) -> list[dict[str, str]]:
    """SageMaker ``MetricDefinitions`` for the metric lines (``\\b`` keeps ``loss`` from
    matching inside ``eval_loss``)."""
    return [{"Name": name, "Regex": rf"\b{name}={_NUMBER};"} for name in names]


def samples_per_second(examples: float, seconds: float) -> float | None:
    """Training throughput; None when nothing was measured (not a misleading 0)."""
    return examples / seconds if examples > 0 and seconds > 0 else None


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def write_split_metrics(output_dir: str | os.PathLike[str], split: str, metrics: Mapping[str, Any]) -> None:
    write_json(Path(output_dir) / f"metrics_{split}.json", metrics)
    save_metrics_png(metrics, output_dir, split)


def save_learning_curve(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    metric_names: Sequence[str],
    metric: str,
) -> None:
    """Loss (train and validation) and the validation metrics (the label scheme's
    ``metric_names``) against optimizer steps."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    loss_axes, metric_axes = figure.subplots(1, 2)
    curves = (  # (axes, history key, legend label, marker)
        (loss_axes, "train_loss", "train loss", None),
        (loss_axes, "eval_loss", "validation loss", "o"),
        *((metric_axes, f"eval_{name}", name, "o") for name in metric_names),
    )
    for axes, key, label, marker in curves:
        points = [(r["step"], r[key]) for r in history if r.get(key) is not None and math.isfinite(r[key])]
        if points:
            axes.plot(*zip(*points, strict=True), marker=marker, label=label)
    loss_axes.set(xlabel="optimizer step", ylabel="loss", title="Loss")
    metric_axes.set(xlabel="optimizer step", title=f"Validation metrics (best model by {metric})")
    for axes in (loss_axes, metric_axes):
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
