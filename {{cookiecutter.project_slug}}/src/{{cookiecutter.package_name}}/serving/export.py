"""``export``: the model as ONNX (fp32 and int8) beside its weights, and the CPU engine to serve it.

Writes into the model folder (``package`` puts them in model.tar.gz with the weights):
  model.onnx       the fp32 graph with dynamic batch and sequence axes (``torch.onnx.export``);
                   its scores must match PyTorch's within :data:`PARITY` on the check texts, or
                   the export fails and writes nothing
  model.int8.onnx  int8 matrix products (ONNX Runtime dynamic quantization: weights with one
                   scale per output channel, activations with one scale per forward pass, which
                   the onnx engines make one text's: see inference.OnnxModel)
  engines.json     every engine's metric and texts/s on the check texts, measured on this machine
                   in one run, and ``default``: the fastest engine whose metric is within
                   :data:`ACCURACY_BOUND` of PyTorch's, which ``--engine auto`` (the default) serves
                   with on CPU
Which layers stay in float is decided by the same measurement: every matrix product is quantized
first; when that loses more than the bound, the down-projections (more inputs than outputs: a
feed-forward block's second layer, the classifier's last layer) stay in float and it is measured
again. The check texts are labelled: the validation split by default.
Static quantization (activation scales fixed on calibration texts) was measured too and is not
used: on NSMC it lost 1-1.5 accuracy points with every matrix product quantized (BENCHMARKS.md).
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.examples import Example
from ..training.artifacts import write_json
from . import inference
from .batch import classify

logger = logging.getLogger(__name__)

# ONNX fp32 against PyTorch fp32: the largest difference of any label score on the check texts.
PARITY = 1e-4
# How much of the metric (accuracy for single-label, micro-F1 for multi-label) an engine may
# lose against PyTorch fp32 and still be the default: half a point.
ACCURACY_BOUND = 0.005
# (name, keep the down-projections in float) in the order tried: fastest first.
INT8_VARIANTS = (("all matrix products", False), ("down-projections in float", True))
# Needed to export and quantize; serving needs only onnxruntime.
EXPORT_PACKAGES = "onnx, onnxscript and onnxruntime"


class ExportError(RuntimeError):
    """The model cannot be exported, or its export does not match the PyTorch model."""


@dataclass
class EngineFigures:
    engine: str
    # The scheme's best_metric on the check texts, and the share of texts labelled as torch does.
    metric: float
    agreement: float
    texts_per_second: float
    # Largest difference of a label score from torch's.
    max_score_difference: float
    file: str | None = None
    # For int8: which matrix products stayed in float.
    variant: str | None = None


def export_model(
    model_dir: str | os.PathLike[str],
    check: Sequence[Example],
    label_names: Sequence[str],
    progress: bool = True,
) -> dict[str, Any]:
    """Write model.onnx, model.int8.onnx and engines.json into ``model_dir``; return engines.json.
    ``check``: the labelled examples every engine is measured on."""
    require_export_packages()
    folder = Path(model_dir)
    reference = inference.load_model(str(folder), engine="torch")
    if list(reference.labels) != list(label_names):
        raise ExportError(
            f"the model's labels {reference.labels} differ from the configured label names "
            f"{list(label_names)}; export with the configuration the model was trained with"
        )
    metric = reference.scheme.best_metric
    gold = [example.label for example in check]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as scratch:
        work = Path(scratch)
        fp32 = work / inference.ONNX_FILES["onnx"]
        _export_fp32(reference, _first_batch(reference, check), fp32)
        torch_scores, torch_figures = _measure(reference, check, gold, metric, None, progress)
        figures = [torch_figures]
        onnx = inference.with_onnx(reference, fp32, "onnx")
        _, found = _measure(onnx, check, gold, metric, torch_scores, progress)
        if found.max_score_difference > PARITY:
            raise ExportError(
                f"the ONNX model's scores differ from PyTorch's by up to {found.max_score_difference:.2g} "
                f"(allowed {PARITY:g}) on {len(check)} texts; it was not written"
            )
        figures.append(found)
        int8 = work / inference.ONNX_FILES["onnx-int8"]
        for variant, keep_down in INT8_VARIANTS:
            _quantize(fp32, int8, keep_down, work)
            quantized = inference.with_onnx(reference, int8, "onnx-int8")
            _, found = _measure(quantized, check, gold, metric, torch_scores, progress)
            found.variant = variant
            logger.info(
                "int8 (%s): %s %.4f vs %.4f, %.1f texts/s",
                variant,
                metric,
                found.metric,
                torch_figures.metric,
                found.texts_per_second,
            )
            if _within_bound(found, torch_figures, metric, reference.scheme.lower_is_better):
                break
        figures.append(found)
        allowed = [
            f for f in figures if _within_bound(f, torch_figures, metric, reference.scheme.lower_is_better)
        ]
        default = max(allowed, key=lambda f: f.texts_per_second).engine
        for engine, path in (("onnx", fp32), ("onnx-int8", int8)):
            os.replace(path, folder / inference.ONNX_FILES[engine])
    for found in figures:
        found.file = inference.ONNX_FILES.get(found.engine)
    record = {
        "default": default,
        "metric": metric,
        "accuracy_bound": ACCURACY_BOUND,
        "check_texts": len(check),
        "machine": machine(),
        "engines": [asdict(found) for found in figures],
    }
    write_json(folder / inference.ENGINES_FILE, record)
    return record


def require_export_packages() -> None:
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(
            f"export needs {EXPORT_PACKAGES}; not installed: {', '.join(missing)} (pip install -e '.[onnx]')"
        )


def _within_bound(found: EngineFigures, reference: EngineFigures, metric: str, lower: frozenset[str]) -> bool:
    loss = (found.metric - reference.metric) if metric in lower else (reference.metric - found.metric)
    return loss <= ACCURACY_BOUND + 1e-12


def _first_batch(classifier: inference.Classifier, examples: Sequence[Example]) -> list[list[int]]:
    """Token ids of a few texts of different lengths: the sample the graph is traced with."""
    texts = [e.text for e in examples[:8]] or ["a", "a longer text"]
    pairs = None if classifier.text_pair_columns is None else [e.text_pair or "" for e in examples[:8]]
    work = inference.Work(inference.Request(texts, pairs), classifier)
    _, ids = work.take(len(texts))
    if len(ids) < 2 or len({len(row) for row in ids}) < 2:
        # Batch and sequence must vary in the sample, or the exporter fixes them as constants.
        ids = [*ids, list(ids[0][:1]) + list(ids[0])]
    return ids


def _export_fp32(classifier: inference.Classifier, sample: list[list[int]], path: Path) -> None:
    model = classifier.model
    inputs = inference.model_inputs(classifier, sample)
    accepted = inspect.signature(model.forward).parameters
    if "token_type_ids" in accepted and "token_type_ids" not in inputs:
        inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
    names = list(inputs)

    class Logits(torch.nn.Module):
        """The classifier with named tensor inputs and the logits as its one output."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    logger.info("exporting %s to ONNX (inputs %s)", type(model).__name__, ", ".join(names))
    try:
        torch.onnx.export(
            Logits().eval(),
            (),
            str(path),
            kwargs=inputs,
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=False,
        )
    except Exception as error:  # the exporter's errors come from deep inside torch.export
        raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {error}") from error


def _quantize(fp32: Path, out: Path, keep_down_projections: bool, work: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / "prepared.onnx"
    # Constant folding and shape inference first, as ONNX Runtime recommends before quantizing;
    # the symbolic shape pass does not know every op the exporter emits, and is not needed here.
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    kept = []
    if keep_down_projections:
        graph = onnx.load(str(prepared)).graph
        weights = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
        for node in graph.node:
            shape = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
            if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
                kept.append(node.name)
    # The quantizer logs a line per tensor through the root logger: not for the user's console.
    root = logging.getLogger()
    quiet = _DropRootRecords()
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(prepared),
            str(out),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=kept,
        )
    finally:
        root.removeFilter(quiet)
    prepared.unlink()


class _DropRootRecords(logging.Filter):
    """Drops the records logged on the root logger itself (``logging.info(...)``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "root"


def _measure(
    classifier: inference.Classifier,
    check: Sequence[Example],
    gold: list[Any],
    metric: str,
    reference: list[list[float]] | None,
    progress: bool,
) -> tuple[list[list[float]], EngineFigures]:
    texts = [e.text for e in check]
    pairs = None if classifier.text_pair_columns is None else [e.text_pair or "" for e in check]
    classify(
        classifier,
        texts[: classifier.batch_size],
        progress=False,
        pairs=pairs and pairs[: classifier.batch_size],
    )
    started = time.perf_counter()
    prediction = classify(classifier, texts, progress=progress, description=classifier.engine, pairs=pairs)
    elapsed = time.perf_counter() - started
    scheme = classifier.scheme
    predicted = scheme.predict(prediction.scores)
    value = float(scheme.compute_metrics(gold, predicted, classifier.labels)[metric])
    if reference is None:
        return prediction.scores, EngineFigures(classifier.engine, value, 1.0, len(texts) / elapsed, 0.0)
    ours = np.asarray(prediction.scores, dtype=np.float64)
    theirs = np.asarray(reference, dtype=np.float64)
    same = np.mean([a == b for a, b in zip(predicted, scheme.predict(reference), strict=True)])
    return prediction.scores, EngineFigures(
        classifier.engine,
        value,
        float(same),
        len(texts) / elapsed,
        float(np.max(np.abs(ours - theirs))) if len(ours) else 0.0,
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on: int8 speed depends on the CPU's instruction sets."""
    import platform

    import onnxruntime

    flags: list[str] = []
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu == (platform.processor() or platform.machine()):
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = [
                    f
                    for f in value.split()
                    if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                ]
    except OSError:
        pass
    return {
        "cpu": cpu,
        "int8_instructions": flags,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
