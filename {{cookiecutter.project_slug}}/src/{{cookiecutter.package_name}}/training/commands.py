"""``<package> train``: fine-tune with either entry point, in this process or under torchrun."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from ..options import add_arguments, to_argv
from .entry_points import DEFAULT, PREFIX, backend_for, check_entry_point, entry_points, module_path
from .options import resolve_options


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
        choices=[name.removeprefix(PREFIX) for name in entry_points()],
        default=DEFAULT.removeprefix(PREFIX),
        help=(
            "which training/train_ENTRY.py module trains: hf, the Hugging Face Trainer (default); "
            "torch, a plain PyTorch loop"
        ),
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes (e.g. GPUs) to train with; above 1 runs under torchrun",
    )
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # Resolved first under torchrun too: a bad option fails here, once, not in every child process.
    options = resolve_options(args)
    if args.nproc > 1:
        torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
        command = [torchrun, "--standalone", f"--nproc_per_node={args.nproc}", "-m", module_path(args.entry)]
        if args.config:
            command += ["--config", args.config]
        command += to_argv(args)
        print("running:", " ".join(command), file=sys.stderr, flush=True)
        return run_and_forward_signals(command)
    from .pipeline import run_with_options

    return run_with_options(options, backend_for(args.entry), check_entry_point(args.entry))


def run_and_forward_signals(command: list[str], grace_seconds: float = 20.0) -> int:
    """Run ``command`` in its own process group and make Ctrl-C / SIGTERM stop all of it.

    torchrun handles SIGTERM/SIGINT by stopping its workers; the group kill afterwards catches
    workers that do not exit within ``grace_seconds`` (e.g. stuck in a collective).
    """
    process = subprocess.Popen(command, start_new_session=True)
    received: list[tuple[int, float]] = []  # (signal, when)

    def forward(signum: int, frame: object) -> None:
        received.append((signum, time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - received[0][1] > grace_seconds:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        # Workers left behind by a torchrun that died first still belong to the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    if received:
        print("training stopped by signal; the same command resumes it", file=sys.stderr)
        return 128 + received[0][0]
    return code
