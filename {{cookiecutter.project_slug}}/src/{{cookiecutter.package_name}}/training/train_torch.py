"""Plain PyTorch training loop: ``python -m <package>.training.train_torch [--key value ...]``.

AdamW with linear warm-up/decay, gradient accumulation and clipping, bf16/fp16 autocast on GPUs,
evaluation + checkpoint every epoch or every N steps, early stopping and best-model selection.
Under ``torchrun`` it wraps the model in DDP and gives every rank its own slice of each batch.
Options, data, checkpoints and artefacts are shared with the Trainer entry point (``train_hf``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import random
import shutil
import time
from collections import ChainMap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup, set_seed

from ..errors import OptionError
from .checkpoints import PREFIX, checkpoint_step, rotate
from .data import BatchPlan, TokenCounter, TokenizedSplit
from .pipeline import FitResult, RunContext, best_is_higher, main_for

log = logging.getLogger(__name__)

STATE_FILE = "loop_state.json"  # written last: marks a complete checkpoint of this entry point
WEIGHTS_FILE = "model.safetensors"
RNG_FILE = "rng_state.pth"  # one entry per rank


@dataclass
class LoopState:
    global_step: int = 0
    epoch: int = 0
    batches_done: int = 0  # in the current epoch
    best_metric: float | None = None
    # The best checkpoint's folder name: relative to the run folder, so a moved or cloned
    # project keeps it (older checkpoints hold a full path; only its name is used).
    best_checkpoint: str | None = None
    evals_without_improvement: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    # What the saved position (epoch, batches_done) counts in; empty in older checkpoints.
    batch_plan: dict[str, int] = field(default_factory=dict)
    # The run's training up to this checkpoint (examples, tokens, seconds; all ranks), so a
    # resumed run reports throughput and token efficiency of the whole run.
    trained: dict[str, Any] = field(default_factory=dict)


def rng_state() -> dict[str, Any]:
    """The random states training draws from, in types ``torch.load(weights_only=True)`` reads."""
    # The legacy tuple form (numpy's stubs also allow a dict, which legacy=True never returns).
    numpy_state = cast(tuple[str, Any, int, int, float], np.random.get_state(legacy=True))
    kind, keys, position, has_gauss, gauss = numpy_state
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW's groups as the Trainer makes them: no weight decay on biases and normalisation
    weights (those of LayerNorm modules, or named so), in the model's parameter order."""
    norms = {
        id(parameter)
        for module in model.modules()
        if isinstance(module, torch.nn.LayerNorm)
        for parameter in module.parameters()
    }
    exempt_names = ("bias", "layernorm", "rmsnorm")
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            exempt = id(parameter) in norms or any(key in name.lower() for key in exempt_names)
            (plain if exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


class TorchLoop:
    checkpoint_marker = STATE_FILE

    def __init__(self, context: RunContext) -> None:
        self.ctx = context
        options, runtime = context.options, context.runtime
        self.model = context.model.to(runtime.device)
        self.wrapped: torch.nn.Module = self.model
        if runtime.distributed:
            self.wrapped = DistributedDataParallel(
                self.model,
                device_ids=[runtime.local_rank] if runtime.device.type == "cuda" else None,
            )
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, options.weight_decay),
            lr=options.learning_rate,
            fused=runtime.device.type == "cuda",
        )
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, context.schedule.warmup_steps, context.schedule.total_steps
        )
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(runtime.precision)
        self.autocast = functools.partial(
            torch.autocast, runtime.device.type, dtype=dtype, enabled=dtype is not None
        )
        self.scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
        self.plan = BatchPlan(
            context.data.train.lengths,
            options.batch_size,
            options.group_by_length,
            options.seed,
            runtime.rank,
            runtime.world_size,
        )
        self.state = LoopState(batch_plan=self._plan_signature())
        self.tokens = TokenCounter()

    def _plan_signature(self) -> dict[str, int]:
        """What makes a saved position in an epoch mean the same batches when resumed."""
        options = self.ctx.options
        return {
            "train_examples": len(self.plan.lengths),
            "batch_size": self.plan.batch_size,
            "world_size": self.plan.world_size,
            "gradient_accumulation_steps": options.gradient_accumulation_steps,
            "group_by_length": int(self.plan.group_by_length),
            "seed": self.plan.seed,
            "batches_per_epoch": len(self.plan),
        }

    def _check_resumable(self, path: Path) -> None:
        """Refuse a checkpoint whose batch plan differs: its position would point at other
        batches, or past the end of this plan's epoch (a loop that never ends)."""
        saved, current = self.state.batch_plan, self._plan_signature()
        changed = [
            f"{key} {saved[key]} -> {current[key]}"
            for key in current
            if key in saved and saved[key] != current[key]
        ]
        past_end = self.state.batches_done >= current["batches_per_epoch"]
        if changed or past_end:
            reason = ", ".join(changed) or (
                f"it stopped at batch {self.state.batches_done} of an epoch that now has "
                f"{current['batches_per_epoch']}"
            )
            raise OptionError(
                f"{path} was trained with another batch plan ({reason}); resume it with the "
                "options it was started with, or start over with --resume no"
            )

    def _forward(
        self, module: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits): the label scheme's loss, class-weighted with --class_weights."""
        output = module(**{key: value for key, value in batch.items() if key != "labels"})
        return self.ctx.scheme.loss(output.logits, batch["labels"], self.ctx.class_weights), output.logits

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: value.to(self.ctx.runtime.device, non_blocking=True) for key, value in batch.items()}

    # -- checkpoints ---------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        options, runtime = self.ctx.options, self.ctx.runtime
        folder = Path(options.checkpoint_dir)
        final = folder / f"{PREFIX}{self.state.global_step}"
        # Every rank's random state (dropout), so a resumed run continues exactly where this
        # one is; gathered here because only rank 0 writes the checkpoint.
        rng_states = runtime.gather(rng_state())
        if runtime.is_main:
            staging = folder / f".{final.name}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            save_model(self.model, str(staging / WEIGHTS_FILE))
            torch.save(self.optimizer.state_dict(), staging / "optimizer.pt")
            torch.save(self.scheduler.state_dict(), staging / "scheduler.pt")
            torch.save(self.scaler.state_dict(), staging / "scaler.pt")
            torch.save(rng_states, staging / RNG_FILE)
            (staging / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=1), encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)  # atomic: a checkpoint is either complete or absent
            best = self._best_path()
            rotate(folder, STATE_FILE, options.save_total_limit, protect=[best] if best else [])
        runtime.barrier()

    def _best_path(self) -> Path | None:
        best = self.state.best_checkpoint
        return Path(self.ctx.options.checkpoint_dir) / Path(best).name if best else None

    def _load_checkpoint(self, path: Path) -> None:
        # The state first: a checkpoint this run cannot continue is refused before any loading.
        self.state = LoopState(**json.loads((path / STATE_FILE).read_text(encoding="utf-8")))
        self._check_resumable(path)
        device = self.ctx.runtime.device
        load_model(self.model, str(path / WEIGHTS_FILE), device=str(device))
        self.optimizer.load_state_dict(
            torch.load(path / "optimizer.pt", weights_only=True, map_location=device)
        )
        self.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        self.scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=True))
        # Data order is a function of (seed, epoch), restored exactly; so is every rank's random
        # state, so dropout continues as if the run had never stopped.
        if (path / RNG_FILE).is_file():
            set_rng_state(torch.load(path / RNG_FILE, weights_only=True)[self.ctx.runtime.rank])
        else:
            log.info("%s has no %s (older checkpoint): dropout is re-seeded", path, RNG_FILE)
            set_seed(self.ctx.options.seed + self.state.global_step)

    # -- evaluation ----------------------------------------------------------------------------

    @torch.inference_mode()
    def predict(self, split: TokenizedSplit) -> tuple[list[Any], list[list[float]], float]:
        runtime, options = self.ctx.runtime, self.ctx.options
        self.model.eval()
        # Each rank takes every world_size-th example, longest first so batches pad little.
        mine = sorted(
            range(runtime.rank, len(split), runtime.world_size), key=lambda i: split.lengths[i], reverse=True
        )
        batches = [
            mine[i : i + options.eval_batch_size] for i in range(0, len(mine), options.eval_batch_size)
        ]
        loader = DataLoader(
            split,
            batch_sampler=batches,
            collate_fn=self.ctx.collator,
            num_workers=options.num_workers,
            generator=torch.Generator().manual_seed(options.seed),
        )
        scheme = self.ctx.scheme
        predictions: dict[int, Any] = {}
        loss_sum = 0.0
        for indices, batch in zip(batches, loader, strict=True):
            batch = self._to_device(batch)
            with self.autocast():
                loss, logits = self._forward(self.model, batch)
            loss_sum += float(loss) * len(indices)
            predictions.update(zip(indices, scheme.probabilities(logits).tolist(), strict=True))
        self.model.train()
        merged = ChainMap(*runtime.gather(predictions))  # each rank's part
        (total_loss,) = runtime.sum([loss_sum])
        rows = [merged[i] for i in range(len(split))]
        return split.labels, rows, total_loss / max(len(split), 1)

    def _evaluate(self, epoch: float) -> bool:
        """Evaluate, checkpoint, track the best model; returns True to stop early."""
        options = self.ctx.options
        started = time.monotonic()
        # Every rank takes part (the counts are summed across ranks).
        self.state.trained = self.tokens.totals(
            self.ctx.runtime.sum, started - self.fit_started - self.eval_seconds
        )
        y_true, rows, loss = self.predict(self.ctx.data.validation)
        scheme = self.ctx.scheme
        # Untuned decisions (default thresholds): the tuning comes after training.
        y_pred = scheme.predict(rows)
        metrics = {**scheme.compute_metrics(y_true, y_pred, self.ctx.data.label_names), "loss": loss}
        record = {
            "step": self.state.global_step,
            "epoch": round(epoch, 4),
            "eval_loss": loss,
            **{f"eval_{name}": metrics[name] for name in scheme.metric_names},
        }
        self.ctx.recorder.record(record)
        value = metrics[options.metric_for_best_model]
        best = self.state.best_metric
        improved = best is None or (
            value > best if best_is_higher(options.metric_for_best_model, scheme) else value < best
        )
        if improved:
            self.state.best_metric = value
            self.state.best_checkpoint = f"{PREFIX}{self.state.global_step}"
            self.state.evals_without_improvement = 0
        else:
            self.state.evals_without_improvement += 1
        self.state.history = self.ctx.recorder.history
        self._save_checkpoint()
        self.eval_seconds += time.monotonic() - started
        patience = options.early_stopping_patience
        if patience and self.state.evals_without_improvement >= patience:
            log.info(
                "early stopping: no improvement of %s in %d evaluations",
                options.metric_for_best_model,
                patience,
            )
            return True
        return False

    # -- training ------------------------------------------------------------------------------

    def fit(self, resume_from: Path | None) -> FitResult:
        options, runtime, schedule = self.ctx.options, self.ctx.runtime, self.ctx.schedule
        if resume_from is not None:
            self._load_checkpoint(resume_from)
            log.info(
                "resumed at step %d (epoch %d, batch %d)",
                self.state.global_step,
                self.state.epoch,
                self.state.batches_done,
            )
        resumed_from = self.state.global_step
        self.tokens.before = dict(self.state.trained)
        self.ctx.recorder.start(resumed_from, schedule.total_steps, self.state.history)
        self.eval_seconds = 0.0
        self.fit_started = time.monotonic()
        accumulate = options.gradient_accumulation_steps
        # Summed on the device: reading the loss every micro-batch would stall a GPU pipeline.
        window_loss = torch.zeros((), device=runtime.device)
        window_batches = 0
        stopped_early = False
        self.wrapped.train()
        while self.state.global_step < schedule.total_steps and not stopped_early:
            batches = self.plan.epoch(self.state.epoch)
            loader = DataLoader(
                self.ctx.data.train,
                batch_sampler=batches[self.state.batches_done :],
                collate_fn=self.ctx.collator,
                num_workers=options.num_workers,
                pin_memory=runtime.device.type == "cuda",
                # Its own generator: a DataLoader draws a worker seed when iterated, and drawing
                # from the global one would shift dropout after a resume (a new loader mid-epoch).
                generator=torch.Generator().manual_seed(options.seed + self.state.epoch),
            )
            for batch in loader:
                position = self.state.batches_done
                group_start = position - position % accumulate
                group_size = min(accumulate, len(batches) - group_start)
                update = position + 1 == group_start + group_size
                self.tokens.update(batch)
                batch = self._to_device(batch)
                # no_sync exists only on the DDP wrapper, which ``distributed`` guarantees.
                ddp = cast(DistributedDataParallel, self.wrapped)
                sync = ddp.no_sync() if runtime.distributed and not update else contextlib.nullcontext()
                with sync:
                    with self.autocast():
                        loss = self._forward(self.wrapped, batch)[0] / group_size
                    self.scaler.scale(loss).backward()
                window_loss += loss.detach().float() * group_size
                window_batches += 1
                self.state.batches_done += 1
                if not update:
                    continue
                self._optimizer_step()
                self.ctx.recorder.step_done(self.state.global_step)
                epoch_progress = self.state.epoch + self.state.batches_done / len(batches)
                if self.state.global_step % options.logging_steps == 0 or (
                    self.state.global_step == schedule.total_steps
                ):
                    (loss_sum, count) = runtime.sum([float(window_loss), window_batches])
                    self.ctx.recorder.record(
                        {
                            "step": self.state.global_step,
                            "epoch": round(epoch_progress, 4),
                            "train_loss": loss_sum / max(count, 1),
                            "learning_rate": self.scheduler.get_last_lr()[0],
                        }
                    )
                    window_loss.zero_()
                    window_batches = 0
                last = self.state.global_step >= schedule.total_steps
                end_of_epoch = self.state.batches_done == len(batches)
                if end_of_epoch:
                    self.state.epoch += 1
                    self.state.batches_done = 0
                due = options.eval_strategy == "steps" and self.state.global_step % options.eval_steps == 0
                due = due or (options.eval_strategy == "epoch" and end_of_epoch) or last
                stopped_early = due and self._evaluate(epoch_progress)
                if last or stopped_early:
                    break
        totals = self.tokens.totals(runtime.sum, time.monotonic() - self.fit_started - self.eval_seconds)
        best = self._best_path()
        if best is not None and best.is_dir():
            log.info(
                "loading the best model (%s = %.4f) from %s",
                options.metric_for_best_model,
                self.state.best_metric,
                best,
            )
            load_model(self.model, str(best / WEIGHTS_FILE), device=str(runtime.device))
        elif best is not None:
            # Deleted by hand: the last weights are saved, and said to be (not passed off as best).
            log.warning("the best checkpoint %s is missing: the model saved is the last one", best)
            best = None
        return FitResult(
            global_step=self.state.global_step,
            total_steps=schedule.total_steps,
            resumed_from_step=resumed_from,
            train_seconds=totals.pop("train_seconds"),
            tokens=totals,
            best_checkpoint=str(best) if best else None,
            best_metric=self.state.best_metric,
            stopped_early=stopped_early,
            extra={"best_step": checkpoint_step(best) if best else None},
        )

    def _optimizer_step(self) -> None:
        max_norm = self.ctx.options.max_grad_norm
        if max_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.global_step += 1


# What ``train --entry`` runs in-process (see entry_points.py).
BACKEND = TorchLoop


def main() -> int:
    return main_for(BACKEND, "train_torch")


if __name__ == "__main__":
    raise SystemExit(main())
