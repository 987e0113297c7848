"""The run both entry points share; only fitting and predicting differ between them.

options -> runtime -> tokenizer/model -> data -> resume point -> backend.fit -> evaluation on
validation and test -> model folder + metrics + hyperparameters + learning curve (rank 0 only).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from .. import baseline, label_schemes
from ..config import load_config
from ..errors import ConfigError, DataFormatError, OptionError
from ..options import TrainOptions
from .artifacts import (
    print_metrics,
    samples_per_second,
    save_learning_curve,
    write_json,
    write_split_metrics,
)
from .data import RunData, TokenizedSplit, load_run_data, make_collator
from .model_card import write_model_card
from .modeling import load_model, load_model_config, load_tokenizer
from .options import log_ignored_channels, parse_options
from .runs import RunPlan, complete_run, plan_run, release_run, run_identity, write_record
from .runtime import Progress, Runtime, init_runtime, setup_logging
from .tracking import Tracker, start_tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    batches_per_epoch: int  # per rank
    steps_per_epoch: int  # optimizer steps
    total_steps: int
    warmup_steps: int
    examples_per_step: int  # across all ranks


def make_schedule(options: TrainOptions, train_examples: int, world_size: int) -> Schedule:
    # Per rank, as BatchPlan and accelerate shard them: whole batches dealt out to ranks.
    batches = math.ceil(math.ceil(train_examples / options.batch_size) / world_size)
    steps_per_epoch = max(1, math.ceil(batches / options.gradient_accumulation_steps))
    total = (
        options.max_steps if options.max_steps > 0 else max(1, math.ceil(steps_per_epoch * options.epochs))
    )
    return Schedule(
        batches_per_epoch=batches,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        warmup_steps=math.ceil(total * options.warmup_ratio),
        examples_per_step=options.batch_size * options.gradient_accumulation_steps * world_size,
    )


class Recorder:
    """History of train/eval log records, mirrored as metric lines and progress lines."""

    def __init__(
        self,
        runtime: Runtime,
        schedule: Schedule,
        tracker: Tracker | None = None,
        logging_steps: int = 1,
    ) -> None:
        self.runtime = runtime
        self.schedule = schedule
        self.tracker = tracker or Tracker()
        self.logging_steps = max(logging_steps, 1)
        self.history: list[dict[str, Any]] = []
        self.progress = Progress(schedule.total_steps, 0, schedule.examples_per_step)
        self.logged_loss = False

    def start(self, step: int, total_steps: int, history: Sequence[Mapping[str, Any]]) -> None:
        self.history = [dict(record) for record in history]
        self.progress = Progress(total_steps, step, self.schedule.examples_per_step)
        self.logged_loss = False

    def step_done(self, step: int) -> None:
        """After each optimizer step: until the first loss line of this run (every
        ``logging_steps``, minutes away on a CPU), a progress line 1, 2, 4, 8, ... steps in, so
        rate and ETA show from the start."""
        done = step - self.progress.start_step
        due = done > 0 and done & (done - 1) == 0 and step % self.logging_steps != 0
        if self.runtime.is_main and due and not self.logged_loss and step < self.progress.total_steps:
            log.info("%s", self.progress.line(step))

    def record(self, values: Mapping[str, Any]) -> None:
        entry = {key: value for key, value in values.items() if value is not None}
        self.history.append(entry)
        if self.runtime.is_main:
            print_metrics(entry)
            self.tracker.log_metrics(
                {key: value for key, value in entry.items() if key != "step"}, int(entry.get("step", 0))
            )
            if "train_loss" in entry:
                self.logged_loss = True
                log.info("%s | loss %.4f", self.progress.line(entry["step"]), entry["train_loss"])
            else:
                shown = ", ".join(
                    f"{k} {v:.4f}" for k, v in entry.items() if k.startswith("eval_") and isinstance(v, float)
                )
                log.info(
                    "evaluation at step %s (epoch %.2f): %s",
                    entry.get("step"),
                    entry.get("epoch", 0.0),
                    shown,
                )


@dataclass
class FitResult:
    global_step: int
    total_steps: int
    resumed_from_step: int
    # The run's training time, evaluation excluded; with ``tokens``, the whole run's (the part
    # before a resume included), so throughput and token efficiency describe the run.
    train_seconds: float
    tokens: dict[str, float]
    best_checkpoint: str | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    options: TrainOptions
    runtime: Runtime
    tokenizer: Any
    model: Any
    data: RunData
    collator: Callable[[list[dict]], dict]
    schedule: Schedule
    recorder: Recorder
    class_weights: list[float] | None = None  # --class_weights; None: an unweighted loss
    entry_point: str = ""
    plan: RunPlan | None = None
    # The run's label scheme (``options.label_scheme``); after training, the one whose decision
    # parameters were tuned on the validation split (see :func:`tune_and_score`).
    scheme: label_schemes.LabelScheme = field(default_factory=label_schemes.get)


class Backend(Protocol):
    checkpoint_marker: str  # the file it writes last into each of its checkpoints

    def fit(self, resume_from: Path | None) -> FitResult:
        """Train; afterwards ``RunContext.model`` holds the best weights (updated in place)."""
        ...

    def predict(self, split: TokenizedSplit) -> tuple[list[Any], list[list[float]], float]:
        """(targets, the scheme's per-label probabilities per row, mean loss) in the split's
        order, gathered from all ranks. Probabilities rather than decisions: the decision
        parameters are tuned on them after training (:func:`tune_and_score`)."""
        ...


def best_is_higher(metric: str, scheme: label_schemes.LabelScheme) -> bool:
    """Whether a larger ``metric`` is a better model: not for the loss nor for the scheme's
    lower-is-better scores (multi-label's Hamming loss)."""
    return metric != "loss" and metric not in scheme.lower_is_better


def tune_and_score(
    backend: Backend, data: RunData, scheme: label_schemes.LabelScheme
) -> tuple[label_schemes.LabelScheme, dict[str, dict[str, Any]]]:
    """The scheme tuned on the validation split's probabilities (multi-label: a threshold per
    label; single-label: unchanged) and every evaluation split scored with it, so the metrics a
    run reports are the ones its saved model (which records the tuned parameters) gives."""
    scored = {split.name: backend.predict(split) for split in data.evaluation_splits()}
    targets, probabilities, _ = scored[data.validation.name]
    tuned = scheme.tune(probabilities, targets)
    evaluations = {
        name: {
            **tuned.compute_metrics(y_true, tuned.predict(rows), data.label_names),
            "loss": loss,
        }
        for name, (y_true, rows, loss) in scored.items()
    }
    return tuned, evaluations


class BackendFactory(Protocol):
    checkpoint_marker: str

    def __call__(self, context: RunContext) -> Backend: ...


def run_with_options(options: TrainOptions, backend_factory: BackendFactory, entry_point: str) -> int:
    from transformers import set_seed

    runtime = init_runtime(options.mixed_precision)
    tracker = Tracker()
    claimed: Path | None = None  # the run folder this process holds (rank 0 only)
    try:
        setup_logging(runtime)
        log.info(
            "entry point %s: %d process(es) on %s, precision %s",
            entry_point,
            runtime.world_size,
            runtime.device,
            runtime.precision,
        )
        log_ignored_channels(os.environ)
        trainer_integrations(options.report_to, entry_point)  # a typo fails here, not after loading
        set_seed(options.seed)
        # Everything that can be wrong with the options, the data, the labels or the base model
        # fails here, before any weights load (seconds to minutes for a large model).
        model_config = load_model_config(options.model_name_or_path, options.trust_remote_code)
        tokenizer = load_tokenizer(options.model_name_or_path, options.trust_remote_code)
        data = load_run_data(options, tokenizer, model_config)
        # Rank 0 decides (every rank must use the same run folder), the others follow.
        plan = runtime.broadcast(
            plan_run(
                options,
                run_identity(options, entry_point, runtime.world_size),
                backend_factory.checkpoint_marker,
                Path(options.config_path).parent,
            )
            if runtime.is_main
            else None
        )
        options = replace(
            options,
            run_id=plan.run_id,
            checkpoint_dir=str(plan.run_dir),
            model_dir=str(plan.model_dir),
            output_data_dir=str(plan.output_dir),
        )
        if runtime.is_main:
            claimed = plan.run_dir
            tracker = open_tracker(options, plan, entry_point)
            plan = replace(plan, record={**plan.record, "mlflow_run_id": tracker.run_id})
            write_record(plan.run_dir, plan.record)
        scheme = options.label_scheme
        model = load_model(
            options.model_name_or_path,
            options.label_names,
            options.trust_remote_code,
            scheme=scheme,
            pad_token_id=tokenizer.pad_token_id,
        )
        if options.pair_column:
            # Whatever serves the model asks for both texts, named as the training data names them.
            model.config.text_pair_columns = [options.text_column, options.pair_column]
        schedule = make_schedule(options, len(data.train), runtime.world_size)
        context = RunContext(
            options,
            runtime,
            tokenizer,
            model,
            data,
            make_collator(tokenizer, options.padding, data),
            schedule,
            Recorder(runtime, schedule, tracker, options.logging_steps),
            scheme.class_weights(options.class_weights, data.train.labels, data.label_names),
            entry_point,
            plan,
            scheme,
        )
        backend = backend_factory(context)
        result = backend.fit(plan.resume_from)
        context.scheme, evaluations = tune_and_score(backend, data, scheme)
        # Saved with the model: whatever serves it decides with the tuned parameters.
        for key, value in context.scheme.model_config().items():
            setattr(context.model.config, key, value)
        if runtime.is_main:
            write_outputs(context, result, evaluations)
            final = final_metrics(evaluations, context.scheme)
            label_params, thresholds = tracked_labels(context.scheme, data)
            tracker.log_params(label_params)
            tracker.log_metrics(thresholds, result.global_step)
            complete_run(plan, Path(options.config_path).parent, {"final_metrics": final})
            tracker.log_metrics(final, result.global_step)
            tracker.set_tags({"model_artifacts": model_artifacts_location(plan.model_dir)})
            # Not the weights: a copy per run would double the disk the runs take.
            tracker.log_artifacts(plan.output_dir, skip=("model",))
            for name in ("README.md", "config.json"):
                tracker.log_file(plan.model_dir / name, "model")
            tracker.finish("FINISHED")
    except BaseException as error:
        tracker.finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        runtime.close(wait=False)  # the other ranks may never reach a barrier now
        raise
    finally:
        # The process's end would release it too; in-process callers (tests, notebooks) go on.
        if claimed is not None:
            release_run(claimed)
    runtime.close()
    return 0


# Where things were, not what was trained: left out of the model card and the tracked params.
_PATH_OPTIONS = (
    "train_dir",
    "validation_dir",
    "test_dir",
    "model_dir",
    "output_data_dir",
    "checkpoint_dir",
    "config_path",
)


def recorded_options(options: TrainOptions) -> dict[str, Any]:
    return {key: value for key, value in options.to_dict().items() if key not in _PATH_OPTIONS}


def trainer_integrations(report_to: str, entry_point: str) -> list[str]:
    """``report_to`` as a list without ``mlflow`` (tracked by :mod:`.tracking` in both entry
    points); what is left goes to the Trainer's own integrations."""
    names = [name.strip().lower() for name in report_to.split(",") if name.strip()]
    names = [name for name in names if name not in {"none", "mlflow"}]
    if not names:
        return []
    if entry_point != "train_hf":
        raise OptionError(
            f"--report_to {report_to}: {', '.join(names)} is a Hugging Face Trainer integration; "
            "the plain loop tracks with mlflow only (use --entry hf, or --report_to mlflow)"
        )
    from transformers.integrations import get_reporting_integration_callbacks

    unknown, known = [], ""
    for name in names:
        try:
            get_reporting_integration_callbacks([name])
        except ValueError as error:  # it names the integrations this transformers knows
            unknown.append(name)
            known = str(error)
    if unknown:
        raise OptionError(
            f"--report_to: unknown integration(s) {', '.join(unknown)}; known: mlflow, none and the "
            f"Hugging Face Trainer's (transformers: {known})"
        )
    return names


def open_tracker(options: TrainOptions, plan: RunPlan, entry_point: str) -> Tracker:
    """MLflow tracking for this run (continued on resume), or a no-op tracker."""
    config = load_config(options.config_path)
    wanted = "mlflow" in [name.strip().lower() for name in options.report_to.split(",")]
    if wanted and os.environ.get("TRAINING_JOB_NAME") and not os.environ.get("MLFLOW_TRACKING_URI"):
        # A store inside the training container would vanish with it.
        log.info("MLflow tracking off: this SageMaker job has no MLFLOW_TRACKING_URI")
        wanted = False
    tracker = start_tracking(
        backend="mlflow" if wanted else "none",
        project_root=config.root,
        experiment=config.project.slug,
        run_name=plan.run_id,
        resume_run_id=plan.record.get("mlflow_run_id"),
        tags={"run_id": plan.run_id, "fingerprint": plan.fingerprint, "entry_point": entry_point},
    )
    tracker.log_params(
        {**recorded_options(options), "fingerprint": plan.fingerprint, "entry_point": entry_point}
    )
    return tracker


def model_artifacts_location(model_dir: Path) -> str:
    """Where the trained model ends up: in a SageMaker job, the model.tar.gz that SageMaker
    uploads from SM_MODEL_DIR when the job ends (the launcher passes the output path);
    elsewhere the model folder itself."""
    output_path = os.environ.get("MODEL_OUTPUT_S3_PATH", "").rstrip("/")
    job = os.environ.get("TRAINING_JOB_NAME", "")
    if output_path and job:
        return f"{output_path}/{job}/output/model.tar.gz"
    return str(Path(model_dir).resolve())


def final_metrics(
    evaluations: Mapping[str, Mapping[str, Any]], scheme: label_schemes.LabelScheme
) -> dict[str, Any]:
    final: dict[str, Any] = {}
    for split, metrics in evaluations.items():
        for key in (*scheme.metric_names, "loss"):
            final[f"{split}_{key}"] = metrics[key]
    return final


def tracked_labels(
    scheme: label_schemes.LabelScheme, data: RunData
) -> tuple[dict[str, Any], dict[str, float]]:
    """What MLflow records about the labels besides the scores, as (params, metrics): the
    scheme and how many training rows hold each label and none (params: fixed by the data),
    and the decision threshold per label the model was saved with (metrics: a resumed run
    that trains on may tune them anew)."""
    names = data.label_names
    counts = scheme.label_counts(data.train.labels, len(names))
    params: dict[str, Any] = {
        "label_scheme": scheme.name,
        **{f"train_rows.{name}": count for name, count in zip(names, counts, strict=True)},
        "train_rows_without_label": scheme.empty_rows(data.train.labels),
    }
    thresholds = scheme.model_config().get("label_thresholds")
    metrics = (
        {f"threshold.{name}": float(value) for name, value in zip(names, thresholds, strict=True)}
        if thresholds
        else {}
    )
    return params, metrics


def fit_baseline(context: RunContext) -> dict[str, Any] | None:
    """The TF-IDF + logistic-regression baseline's metrics on the split the model card details
    (test, else validation): fitted on the same training split, its decisions tuned on the
    same validation split. None where it cannot be fitted (e.g. one label in the training
    data), with the reason logged: the run itself has succeeded."""
    data, options = context.data, context.options
    shown = data.test or data.validation
    if data.train.texts is None or data.validation.texts is None or shown.texts is None:
        return None
    try:
        fitted = baseline.fit(
            data.train.texts,
            data.train.labels,
            options.label_scheme,
            len(data.label_names),
            options.seed,
            (data.validation.texts, data.validation.labels),
        )
    except ValueError as error:
        log.warning("no baseline in the model card: %s", error)
        return None
    metrics = fitted.scheme.compute_metrics(shown.labels, fitted.predict(shown.texts), data.label_names)
    return {**metrics, "split": shown.name, "method": baseline.DESCRIPTION}


def write_outputs(
    context: RunContext, result: FitResult, evaluations: Mapping[str, Mapping[str, Any]]
) -> None:
    import torch
    import transformers

    options, runtime = context.options, context.runtime
    output_dir = Path(options.output_data_dir)
    # save_pretrained writes safetensors; config.json carries id2label/label2id.
    context.model.save_pretrained(options.model_dir)
    # Inference truncates at the tokenizer's limit: make it the length the model was trained on
    # (--max_seq_length, capped by the model's position embeddings).
    context.tokenizer.model_max_length = context.data.max_length
    context.tokenizer.save_pretrained(options.model_dir)
    versions = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }
    plan = context.plan
    splits = (context.data.train, *context.data.evaluation_splits())
    baseline_metrics = fit_baseline(context)
    write_model_card(
        options.model_dir,
        project_name=load_config(options.config_path).project.name,
        run_id=options.run_id,
        fingerprint=plan.fingerprint if plan else "",
        entry_point=context.entry_point,
        base_model=options.model_name_or_path,
        label_names=list(options.label_names),
        scheme=context.scheme,
        label_counts={
            split.name: context.scheme.label_counts(split.labels, len(options.label_names))
            for split in splits
        },
        split_rows={split.name: len(split) for split in splits},
        rows_without_label={split.name: context.scheme.empty_rows(split.labels) for split in splits},
        metrics=evaluations,
        baseline=baseline_metrics,
        options=recorded_options(options),
        max_length=context.data.max_length,
        versions=versions,
        created=(plan.record.get("created", "") if plan else "")
        or datetime.now(UTC).isoformat(timespec="seconds"),
        text_pair_columns=getattr(context.model.config, "text_pair_columns", None),
    )
    for split, metrics in evaluations.items():
        write_split_metrics(output_dir, split, metrics)
    final = final_metrics(evaluations, context.scheme)
    throughput = samples_per_second(result.tokens["train_examples_processed"], result.train_seconds)
    final["train_samples_per_second"] = throughput
    final["token_efficiency"] = result.tokens["token_efficiency"]
    if runtime.device.type == "cuda":
        final["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(runtime.device) / 2**30
    print_metrics(final)
    write_json(
        output_dir / "hyperparameters.json",
        {
            **options.to_dict(),
            "entry_point": context.entry_point,
            "world_size": runtime.world_size,
            "device": str(runtime.device),
            "precision": runtime.precision,
            "effective_batch_size": context.schedule.examples_per_step,
            "total_steps": result.total_steps,
            "warmup_steps": context.schedule.warmup_steps,
            "max_length": context.data.max_length,
            "class_weight_values": context.class_weights,
            "train_examples": len(context.data.train),
            **{f"{name}_version": version for name, version in versions.items()},
        },
    )
    write_json(
        output_dir / "train_results.json",
        {
            **{key: value for key, value in asdict(result).items() if key not in {"tokens", "extra"}},
            **result.tokens,
            **result.extra,
            "train_samples_per_second": throughput,
            "final_metrics": final,
            "history": context.recorder.history,
        },
    )
    save_learning_curve(
        context.recorder.history,
        output_dir / "learning_curve.png",
        context.scheme.metric_names,
        options.metric_for_best_model,
    )
    log.info("model saved to %s; metrics, hyperparameters and plots in %s", options.model_dir, output_dir)


def main_for(backend_factory: BackendFactory, entry_point: str) -> int:
    """``python -m`` entry: clean one-line errors for problems the user can fix."""
    try:
        options = parse_options(None, None, prog=f"python -m {__package__}.{entry_point}")
        return run_with_options(options, backend_factory, entry_point)
    except (ConfigError, DataFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
