"""Hugging Face Trainer entry point: ``python -m <package>.training.train_hf [--key value ...]``.

Same options, data, batching, checkpoints folder and artefacts as the plain loop (``train_torch``);
the Trainer brings its own loop, DDP handling (under ``torchrun``), mixed precision and resume.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    EarlyStoppingCallback,
    PreTrainedModel,
    PrinterCallback,
    TrainerCallback,
    TrainerState,
    TrainingArguments,
)
from transformers import __version__ as transformers_version

from ..label_schemes import SCHEMES, LabelScheme
from .artifacts import write_json
from .checkpoints import PREFIX, checkpoint_step
from .data import BatchPlan, PlanSampler, TokenCounter, TokenizedSplit
from .pipeline import FitResult, Recorder, RunContext, best_is_higher, main_for, trainer_integrations
from .transformers_internals import PlannedTrainer, use_per_batch_mean_loss

log = logging.getLogger(__name__)

# The Trainer's evaluation records that go into the history: the loss and every scheme's
# scores (a resumed run's history may come from either), not its timings.
EVAL_KEYS = frozenset(
    {"eval_loss", *(f"eval_{name}" for scheme in SCHEMES.values() for name in scheme.metric_names)}
)

STATE_FILE = "trainer_state.json"  # the Trainer writes it last into each checkpoint
# The run's training up to a checkpoint (examples, tokens, seconds), written beside the Trainer's
# files so a resumed run reports throughput and token efficiency of the whole run.
TOTALS_FILE = "run_totals.json"


def _history_entry(logs: dict[str, Any], step: int) -> dict[str, Any] | None:
    """Trainer log records in the plain loop's vocabulary (``loss`` -> ``train_loss``)."""
    if "train_runtime" in logs:  # the end-of-training summary, not a point on the curve
        return None
    entry: dict[str, Any] = {"step": logs.get("step", step), "epoch": logs.get("epoch")}
    if "loss" in logs:
        entry.update(
            train_loss=logs["loss"], learning_rate=logs.get("learning_rate"), grad_norm=logs.get("grad_norm")
        )
    elif "eval_loss" in logs:
        entry.update({key: value for key, value in logs.items() if key in EVAL_KEYS})
    else:
        return None
    return entry


class _RecorderCallback(TrainerCallback):
    """Feeds the shared recorder (metric lines, progress with ETA), times evaluations and writes
    the run's training totals into the checkpoint each evaluation precedes (saving follows every
    evaluation: the strategies are the same), before the Trainer's files, so a complete
    checkpoint has them."""

    def __init__(self, recorder: Recorder, totals: Callable[[], dict[str, Any]], is_main: bool) -> None:
        self.recorder = recorder
        self.totals = totals
        self.is_main = is_main
        self.started = False
        self.eval_seconds = 0.0

    def begin(self, state: TrainerState) -> None:
        if not self.started:
            self.started = True
            previous = [
                entry
                for record in state.log_history
                if (entry := _history_entry(record, int(record.get("step", 0))))
            ]
            self.recorder.start(state.global_step, state.max_steps, previous)

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer API
        self.begin(state)  # after a resume the restored state is only known from here on

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        entry = _history_entry(dict(logs or {}), state.global_step)
        if entry is not None:
            self.recorder.record(entry)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001
        self.eval_seconds += float((metrics or {}).get("eval_runtime", 0.0))
        totals = self.totals()  # on every rank: the counts are summed across ranks
        if self.is_main:
            write_json(Path(args.output_dir) / f"{PREFIX}{state.global_step}" / TOTALS_FILE, totals)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.recorder.step_done(state.global_step)
        # Evaluate (and checkpoint) at the last step too, as the plain loop does, so the final
        # weights compete for "best model" even when the last interval is incomplete.
        if state.global_step >= state.max_steps and args.eval_strategy == "steps":
            control.should_evaluate = True
            control.should_save = True


def _probabilities(scheme: LabelScheme, predictions: Any) -> list[list[float]]:
    """The scheme's per-label scores per row of the Trainer's output (logits, or a tuple led by
    them)."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return scheme.probabilities(torch.as_tensor(logits)).tolist()


def _read_totals(checkpoint: Path) -> dict[str, Any]:
    try:
        totals = json.loads((checkpoint / TOTALS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}  # an older checkpoint: only this process's training is counted
    return totals if isinstance(totals, dict) else {}


def _reanchor_best(checkpoint: Path, run_dir: Path) -> None:
    """The Trainer records the best checkpoint by its full path, and on resume drops one that is
    not there (ending with the last weights instead). In a moved or cloned project the same
    checkpoint is in this run folder: point the resumed state at it, atomically."""
    path = checkpoint / STATE_FILE
    state = json.loads(path.read_text(encoding="utf-8"))
    best = state.get("best_model_checkpoint")
    if not best or Path(best) == run_dir / Path(best).name:
        return
    state["best_model_checkpoint"] = str(run_dir / Path(best).name)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


class _CountingTrainer(PlannedTrainer):
    """Uses the project's batch plan (same batches as the plain loop) and counts real vs padded
    tokens of the training batches (token efficiency)."""

    token_counter: TokenCounter
    scheme: LabelScheme
    class_weights: list[float] | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        # Used for training and evaluation alike, so the validation loss is the label scheme's
        # (class-weighted) loss, as in the plain loop.
        outputs = model(**{key: value for key, value in inputs.items() if key != "labels"})
        loss = self.scheme.loss(outputs.logits, inputs["labels"], self.class_weights)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, *args, **kwargs):  # noqa: ANN001 - Trainer API
        self.token_counter.update(inputs)
        return super().training_step(model, inputs, *args, **kwargs)

    def save_model(self, *args: Any, **kwargs: Any) -> None:
        # Passed through whole: the Trainer's own calls add a private keyword.
        super().save_model(*args, **kwargs)
        # transformers 4.5x checks on every rank, right after this call, whether the best
        # checkpoint folder exists; ranks that look before rank 0 has written it disagree and
        # then hang at the end of training. Waiting here makes them agree (5.x waits itself).
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()


def training_arguments(context: RunContext) -> TrainingArguments:
    options, runtime = context.options, context.runtime
    kwargs: dict[str, Any] = dict(
        output_dir=options.checkpoint_dir,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.eval_batch_size,
        num_train_epochs=options.epochs,
        max_steps=options.max_steps if options.max_steps > 0 else -1,
        learning_rate=options.learning_rate,
        weight_decay=options.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=context.schedule.warmup_steps,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        max_grad_norm=options.max_grad_norm,
        seed=options.seed,
        data_seed=options.seed,
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        eval_strategy=options.eval_strategy,
        eval_steps=options.eval_steps,
        save_strategy=options.eval_strategy,
        save_steps=options.eval_steps,
        save_total_limit=options.save_total_limit,
        load_best_model_at_end=True,
        # Early stopping's count of evaluations without improvement survives a resume.
        restore_callback_states_from_checkpoint=True,
        metric_for_best_model=options.metric_for_best_model,
        greater_is_better=best_is_higher(options.metric_for_best_model, options.label_scheme),
        logging_strategy="steps",
        logging_steps=options.logging_steps,
        report_to=trainer_integrations(options.report_to, "train_hf") or "none",
        disable_tqdm=True,  # the shared recorder logs progress with rate and ETA
        dataloader_num_workers=options.num_workers,
        remove_unused_columns=False,
        use_cpu=runtime.device.type != "cuda",
    )
    if runtime.distributed:
        kwargs["ddp_backend"] = "nccl" if runtime.device.type == "cuda" else "gloo"
    # Every one of these matters (dropping one would train differently without a word).
    missing = sorted(set(kwargs) - {field.name for field in dataclasses.fields(TrainingArguments)})
    if missing:
        raise RuntimeError(
            f"transformers {transformers_version}: TrainingArguments has no {', '.join(missing)}, "
            "which this project sets; install the transformers range in pyproject.toml"
        )
    return TrainingArguments(**kwargs)


class HFTrainer:
    checkpoint_marker = STATE_FILE

    def __init__(self, context: RunContext) -> None:
        self.ctx = context
        self.callback = _RecorderCallback(context.recorder, self._totals, context.runtime.is_main)
        self.started = time.monotonic()
        callbacks: list[TrainerCallback] = [self.callback]
        if context.options.early_stopping_patience > 0:
            callbacks.append(EarlyStoppingCallback(context.options.early_stopping_patience))
        names, scheme = context.data.label_names, context.scheme

        def trainer_metrics(prediction: Any) -> dict[str, float]:
            # Untuned decisions (default thresholds): the tuning comes after training.
            predicted = scheme.predict(_probabilities(scheme, prediction.predictions))
            targets = [scheme.from_feature(value) for value in prediction.label_ids]
            metrics = scheme.compute_metrics(targets, predicted, names)
            return {name: metrics[name] for name in scheme.metric_names}

        self.trainer = _CountingTrainer(
            model=context.model,
            args=training_arguments(context),
            train_dataset=context.data.train,
            # Longest first, as the plain loop evaluates: the Trainer batches evaluation data in
            # its order, and in input order most of each batch is padding. Evaluation during
            # training only yields scores, which do not depend on the order.
            eval_dataset=context.data.validation.longest_first()[0],
            data_collator=context.collator,
            processing_class=context.tokenizer,
            compute_metrics=trainer_metrics,
            callbacks=callbacks,
        )
        self.trainer.token_counter = TokenCounter()
        self.trainer.scheme = context.scheme
        self.trainer.class_weights = context.class_weights
        options = context.options
        self.trainer.train_sampler = PlanSampler(
            BatchPlan(context.data.train.lengths, options.batch_size, options.group_by_length, options.seed)
        )
        # The recorder prints progress and metric lines; the Trainer's raw dict printing would
        # only duplicate them.
        self.trainer.remove_callback(PrinterCallback)
        # compute_loss above returns the label scheme's per-batch mean loss.
        use_per_batch_mean_loss(self.trainer)

    def _load_weights(self, checkpoint: str | Path) -> None:
        """A checkpoint's weights into the model through ``from_pretrained``, which reads every
        key naming the running transformers may have written. The Trainer's own loading
        (``load_state_dict(strict=False)``) skips names it does not expect without a word:
        transformers 5.3 (the default training image) saves BERT/ELECTRA LayerNorm weights
        as ``gamma``/``beta``, so the best model and resumed runs silently kept other
        LayerNorm weights."""
        model = self.trainer.model
        assert isinstance(model, PreTrainedModel)
        saved = type(model).from_pretrained(str(checkpoint))
        model.load_state_dict(saved.state_dict())

    def _totals(self) -> dict[str, Any]:
        return self.trainer.token_counter.totals(
            self.ctx.runtime.sum, time.monotonic() - self.started - self.callback.eval_seconds
        )

    def fit(self, resume_from: Path | None) -> FitResult:
        self.started = time.monotonic()
        finished = False
        if resume_from:
            if self.ctx.runtime.is_main:
                _reanchor_best(resume_from, Path(self.ctx.options.checkpoint_dir))
            self.ctx.runtime.barrier()
            self.trainer.token_counter.before = _read_totals(resume_from)
            saved = TrainerState.load_from_json(str(resume_from / STATE_FILE))
            # Killed after its last checkpoint: the Trainer would train one more step before it
            # noticed that none was left.
            finished = saved.max_steps > 0 and saved.global_step >= saved.max_steps
            self._load_weights(resume_from)
        if finished:
            self.trainer.state = saved
            self.callback.begin(saved)
        else:
            self.trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        totals = self._totals()
        state = self.trainer.state
        if state.best_model_checkpoint and self.trainer.args.load_best_model_at_end:
            self._load_weights(state.best_model_checkpoint)
        resumed_from = (checkpoint_step(resume_from) or 0) if resume_from else 0
        return FitResult(
            global_step=state.global_step,
            total_steps=state.max_steps,
            resumed_from_step=resumed_from,
            train_seconds=totals.pop("train_seconds"),
            tokens=totals,
            best_checkpoint=state.best_model_checkpoint,
            best_metric=state.best_metric,
            stopped_early=state.global_step < state.max_steps,
            extra={"best_step": getattr(state, "best_global_step", None)},
        )

    def predict(self, split: TokenizedSplit) -> tuple[list[Any], list[list[float]], float]:
        """Targets and probabilities in the split's order (it is scored longest first)."""
        ordered, order = split.longest_first()
        output = self.trainer.predict(ordered, metric_key_prefix=split.name)
        rows: list[list[float]] = [[] for _ in range(len(split))]
        for index, row in zip(order, _probabilities(self.ctx.scheme, output.predictions), strict=True):
            rows[index] = row
        loss = float((output.metrics or {}).get(f"{split.name}_loss", float("nan")))
        return split.labels, rows, loss


# What ``train --entry`` runs in-process (see entry_points.py).
BACKEND = HFTrainer


def main() -> int:
    return main_for(BACKEND, "train_hf")


if __name__ == "__main__":
    raise SystemExit(main())
