"""Process-level runtime: distributed setup (torchrun), device, mixed precision, progress logs.

torchrun sets ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``; without them everything runs as a single
process. The process group is created here for both entry points (NCCL on GPUs, gloo on CPU), so
shared code (checkpoint choice, token counts) can use collectives; the Trainer reuses the group.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..config import VERBOSE_ENV_VAR
from ..errors import OptionError

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    precision: str  # "no", "fp16" or "bf16"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (so all ranks take the same decision)."""
        return self.gather(value)[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def sum(self, values: list[float]) -> list[float]:
        return [sum(column) for column in zip(*self.gather(list(values)), strict=True)]

    def close(self, wait: bool = True) -> None:
        if self.distributed and dist.is_initialized():
            if wait:
                dist.barrier()
            dist.destroy_process_group()


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto``: bf16 where the GPU supports it, else fp16 on GPUs, full precision on CPU."""
    if device.type != "cuda":
        if requested == "fp16":
            raise OptionError("--mixed_precision fp16 needs a CUDA GPU; use 'no' or 'bf16' on CPU")
        return "bf16" if requested == "bf16" else "no"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if requested == "bf16" and not torch.cuda.is_bf16_supported():
        raise OptionError("--mixed_precision bf16: this GPU does not support bf16; use fp16")
    return requested


def init_runtime(mixed_precision: str, environ: Mapping[str, str] | None = None) -> Runtime:
    environ = os.environ if environ is None else environ
    world_size = int(environ.get("WORLD_SIZE", "1"))
    rank = int(environ.get("RANK", "0"))
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(minutes=30),
        )
    runtime = Runtime(rank, local_rank, world_size, device, resolve_precision(mixed_precision, device))
    gpus = int(environ.get("SM_NUM_GPUS", "0") or 0)
    if gpus > world_size and world_size == 1:
        log.warning(
            "%d GPUs are visible but one process runs; launch with "
            "`torchrun --nproc_per_node %d -m ...` to use them all",
            gpus,
            gpus,
        )
    return runtime


def setup_logging(runtime: Runtime) -> None:
    """INFO on rank 0 (DEBUG with ``-v``), warnings only elsewhere, so multi-process logs stay
    readable."""
    verbose = os.environ.get(VERBOSE_ENV_VAR, "") not in {"", "0"}
    level = (logging.DEBUG if verbose else logging.INFO) if runtime.is_main else logging.WARNING
    logging.basicConfig(
        level=level,
        stream=sys.stdout,
        force=True,
        format=f"%(asctime)s %(levelname)s [rank {runtime.rank}] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    import transformers

    # Our own progress lines replace the per-file tqdm bars of loading and saving.
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity(logging.WARNING if runtime.is_main else logging.ERROR)


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Progress:
    """Periodic progress lines with rate and ETA, measured from this run's first step (steps done
    before a resume do not inflate the rate)."""

    def __init__(self, total_steps: int, start_step: int, examples_per_step: int) -> None:
        self.total_steps = total_steps
        self.start_step = start_step
        self.examples_per_step = examples_per_step
        self.started = time.monotonic()

    def line(self, step: int) -> str:
        elapsed = time.monotonic() - self.started
        done = step - self.start_step
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        eta = _clock((self.total_steps - step) / rate) if rate else "?"
        percent = 100.0 * step / max(self.total_steps, 1)
        return (
            f"step {step}/{self.total_steps} ({percent:.1f}%) | "
            f"{rate * self.examples_per_step:.1f} samples/s | {rate:.2f} steps/s | "
            f"elapsed {_clock(elapsed)} | ETA {eta}"
        )
