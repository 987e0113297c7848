"""Training throughput: this project's batching vs padding every text to the longest one.

Trains the same model on the same NSMC rows, in the same run, twice: with the project's batching
(no padding at tokenisation, per-batch dynamic padding, length grouping) and the old workshop's way
(every text padded to the longest text, random batches). Prints samples/s, token efficiency
(real tokens / processed tokens), validation accuracy and the speed ratio.

CPU comparison (a few thousand rows, minutes):
    python benchmarks/bench_training.py --model PATH_OR_HUB_ID --nsmc-dir DIR_WITH_ratings_*.txt
GPU run (full NSMC training set, 1 epoch, both entry points, peak GPU memory, test accuracy):
    python benchmarks/bench_training.py --model ... --nsmc-dir ... --full --entries hf torch \\
        --no-compare

Each training is a separate ``python -m <package>.training.train_*`` process, exactly as a user
or SageMaker would run it; figures come from the ``train_results.json`` it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nsmc_sentiment_classifier as package
from nsmc_sentiment_classifier.config import load_config
from nsmc_sentiment_classifier.data import io

PACKAGE = package.__name__
config = load_config()

MODES = {
    "project": ["--padding", "dynamic", "--group_by_length", "true"],
    "pad-to-longest": ["--padding", "longest", "--group_by_length", "false"],
}


def read_nsmc(path: Path) -> list[dict[str, Any]]:
    rows = io.read_table(path).rows
    return [
        {config.data.text_column: r.values["document"], config.data.label_column: int(r.values["label"])}
        for r in rows
        if (r.values["document"] or "").strip()
    ]


def make_channels(args: argparse.Namespace, root: Path) -> dict[str, int]:
    """Seeded sample of NSMC rows as train/validation/test channel folders."""
    train_rows = read_nsmc(args.nsmc_dir / "ratings_train.txt")
    random.Random(args.seed).shuffle(train_rows)
    validation = train_rows[: args.validation_rows]
    rest = train_rows[args.validation_rows :]
    train = rest if args.full else rest[: args.train_rows]
    test = read_nsmc(args.nsmc_dir / "ratings_test.txt")
    if not args.full:
        test = test[: args.test_rows]
    counts = {}
    for name, records in (("train", train), ("validation", validation), ("test", test)):
        if records:
            counts[name] = io.write_jsonl(root / "channels" / name / f"{name}.jsonl", records)
    return counts


def train(args: argparse.Namespace, root: Path, entry: str, mode: str) -> dict[str, Any]:
    job = root / f"{entry}-{mode}"
    channels = root / "channels"
    command = [
        sys.executable,
        "-m",
        f"{PACKAGE}.training.train_{entry}",
        "--model_name_or_path",
        args.model,
        "--train_dir",
        str(channels / "train"),
        "--validation_dir",
        str(channels / "validation"),
        "--model_dir",
        str(job / "model"),
        "--output_data_dir",
        str(job / "output"),
        "--checkpoint_dir",
        str(job / "checkpoints"),
        "--resume",
        "no",
        "--epochs",
        str(args.epochs),
        "--batch_size",
        str(args.batch_size),
        "--eval_batch_size",
        str(args.batch_size * 2),
        "--max_seq_length",
        str(args.max_seq_length),
        "--learning_rate",
        str(args.learning_rate),
        "--seed",
        str(args.seed),
        "--eval_strategy",
        "epoch",
        "--save_total_limit",
        "1",
        "--early_stopping_patience",
        "0",
        "--logging_steps",
        str(args.logging_steps),
        *MODES[mode],
    ]
    command += ["--test_dir", str(channels / "test") if (channels / "test").exists() else "none"]
    print(f"\n=== {entry} / {mode} ===\n{' '.join(command)}", flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True)
    wall = time.monotonic() - started
    results = json.loads((job / "output" / "train_results.json").read_text(encoding="utf-8"))
    final = results["final_metrics"]
    return {
        "entry": entry,
        "mode": mode,
        "wall_seconds": wall,
        "train_seconds": results["train_seconds"],
        "samples_per_second": results["train_samples_per_second"],
        "token_efficiency": results["token_efficiency"],
        "validation_accuracy": final.get("validation_accuracy"),
        "test_accuracy": final.get("test_accuracy"),
        "peak_gpu_memory_gib": final.get("peak_gpu_memory_gib"),
        "examples": results["train_examples_processed"],
    }


def machine() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=config.options.model_name_or_path,
        help="hub id or local folder (default: the config's base model)",
    )
    parser.add_argument(
        "--nsmc-dir", type=Path, required=True, help="folder with ratings_train.txt and ratings_test.txt"
    )
    parser.add_argument("--train-rows", type=int, default=3000)
    parser.add_argument("--validation-rows", type=int, default=1000)
    parser.add_argument(
        "--test-rows", type=int, default=0, help="test rows to evaluate on (the whole test file with --full)"
    )
    parser.add_argument(
        "--full", action="store_true", help="train on the whole NSMC training file (less the validation rows)"
    )
    parser.add_argument("--entries", nargs="+", choices=["hf", "torch"], default=["torch"])
    parser.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="only the project's batching (skip the pad-to-longest baseline)",
    )
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=config.options.batch_size)
    parser.add_argument("--max-seq-length", type=int, default=config.options.max_seq_length)
    parser.add_argument("--learning-rate", type=float, default=config.options.learning_rate)
    parser.add_argument("--logging-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, help="keep runs here (default: a temp folder)")
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-training-") as scratch:
        root = args.workdir or Path(scratch)
        counts = make_channels(args, root)
        print(f"rows: {counts}", flush=True)
        modes = list(MODES) if args.compare else ["project"]
        runs = [train(args, root, entry, mode) for entry in args.entries for mode in modes]

    info = machine()
    print("\n=== training benchmark ===")
    print(f"machine: {info}")
    print(
        f"model: {args.model}; rows: {counts}; epochs {args.epochs}; batch {args.batch_size}; "
        f"max_seq_length {args.max_seq_length}"
    )
    header = (
        f"{'entry':<6} {'batching':<15} {'samples/s':>10} {'token eff.':>10} "
        f"{'val. acc.':>9} {'test acc.':>9} {'peak GPU GiB':>12} {'train s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:

        def show(value: Any, fmt: str) -> str:
            return format(value, fmt) if value is not None else "-"

        print(
            f"{r['entry']:<6} {r['mode']:<15} {r['samples_per_second']:>10.1f} "
            f"{r['token_efficiency']:>10.3f} {show(r['validation_accuracy'], '9.4f'):>9} "
            f"{show(r['test_accuracy'], '9.4f'):>9} "
            f"{show(r['peak_gpu_memory_gib'], '12.2f'):>12} {r['train_seconds']:>8.1f}"
        )
    summary: dict[str, Any] = {"machine": info, "rows": counts, "runs": runs}
    if args.compare:
        for entry in args.entries:
            project, baseline = (
                next(r for r in runs if r["entry"] == entry and r["mode"] == m) for m in MODES
            )
            ratio = project["samples_per_second"] / baseline["samples_per_second"]
            delta = project["validation_accuracy"] - baseline["validation_accuracy"]
            summary[f"{entry}_speed_ratio"] = ratio
            print(
                f"{entry}: speed ratio project / pad-to-longest = {ratio:.2f}x; "
                f"token efficiency {project['token_efficiency']:.3f} vs "
                f"{baseline['token_efficiency']:.3f}; validation accuracy difference "
                f"{delta:+.4f}"
            )
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
