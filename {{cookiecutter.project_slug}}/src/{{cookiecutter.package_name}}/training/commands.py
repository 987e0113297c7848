"""``<package> train``: fine-tune with either entry point, in this process or under torchrun."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Any

from .options import add_training_arguments, resolve_options, to_argv

ENTRY_POINTS = {"hf": "train_hf", "torch": "train_torch"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune the model on the prepared data",
        description=(
            "Fine-tune the base model on the prepared train/validation(/test) folders. Defaults "
            "come from the [model], [data] and [train] tables of the config file; every option "
            "below overrides them. A run resumes from the newest checkpoint automatically."
        ),
    )
    parser.add_argument(
        "--entry",
        choices=sorted(ENTRY_POINTS),
        default="hf",
        help="hf: Hugging Face Trainer (default); torch: plain PyTorch loop",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes (e.g. GPUs) to train with; above 1 runs under torchrun",
    )
    add_training_arguments(parser, with_config=False)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    module = f"{__package__}.{ENTRY_POINTS[args.entry]}"
    if args.nproc > 1:
        return _run_torchrun(module, args)
    options = resolve_options(args)
    from .pipeline import run_with_options
    from .train_hf import HFTrainer
    from .train_torch import TorchLoop

    backend = HFTrainer if args.entry == "hf" else TorchLoop
    return run_with_options(options, backend, ENTRY_POINTS[args.entry])


def _run_torchrun(module: str, args: argparse.Namespace) -> int:
    resolve_options(args)  # fail here, with a clear message, rather than in every child process
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    command = [torchrun, "--standalone", f"--nproc_per_node={args.nproc}", "-m", module]
    if args.config:
        command += ["--config", args.config]
    command += to_argv(args)
    print("running:", " ".join(command), file=sys.stderr, flush=True)
    return subprocess.call(command)
