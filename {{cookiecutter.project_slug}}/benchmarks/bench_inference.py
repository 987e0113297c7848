"""Inference benchmark: every engine's texts/s and accuracy, and batch prediction vs ``pipeline``.

Same machine, same run, same texts and batch size for every method. Engines: torch (fp32),
and, when ``export`` has run on the model folder, onnx (ONNX Runtime fp32) and onnx-int8; each
is timed in alternation with the others (best of --repeats runs), scored against the file's
labels, and compared with torch label by label. int8's batch independence is checked too: the
first --alone texts scored one at a time and inside the batches. Then the project's batch
prediction with the default engine (what ``predict`` uses) against
``transformers.pipeline("text-classification")`` on the torch model. Example (full NSMC test
file via `data download`, a trained and exported model):

    python benchmarks/bench_inference.py --model path/to/model --data ratings_test.txt --limit 5000

Accuracy figures need a trained model: a fresh classification head scores near chance, where
agreement between engines means little. The server has its own benchmark: bench_server.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# Runs from a source checkout without installing; the package name is the project's own.
SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "nsmc_sentiment_classifier"
sys.path.insert(0, str(SRC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="saved model folder")
    parser.add_argument("--data", type=Path, required=True, help="CSV/TSV/JSONL file with texts")
    parser.add_argument("--text-column", default="document")
    parser.add_argument("--limit", type=int, default=2000, help="texts for the batch runs")
    parser.add_argument(
        "--batch-size", type=int, help="texts per forward pass for both (default: config eval_batch_size)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each batch method")
    parser.add_argument(
        "--label-column", default="label", help="gold label ids for the accuracy figures (if present)"
    )
    parser.add_argument(
        "--alone", type=int, default=300, help="texts scored one at a time for the batch-independence check"
    )
    parser.add_argument(
        "--threads", type=int, help="torch threads for the batch runs and the server (default: torch's)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from nsmc_sentiment_classifier.config import load_config
    from nsmc_sentiment_classifier.data import io as io_module
    from nsmc_sentiment_classifier.serving import batch

    config = load_config()
    args.batch_size = args.batch_size or config.options.eval_batch_size
    table = io_module.read_table(args.data, limit=args.limit)
    texts = [str(row.values[args.text_column]) for row in table.rows]
    gold = [row.values.get(args.label_column) for row in table.rows]
    results: dict = {"machine": machine(), "texts": len(texts), "batch_size": args.batch_size}
    print(f"{len(texts)} texts from {args.data}; model {args.model}")
    print(results["machine"])

    results["engines"] = compare_engines(args, texts, gold)
    classifier = batch.load_classifier(args.model, args.batch_size)
    reference = batch.load_classifier(args.model, args.batch_size, engine="torch")
    results["default_engine"] = classifier.engine
    print(f"\nbatch prediction (default engine: {classifier.engine}) vs pipeline (torch)")
    padding = padding_stats(classifier, texts, args.batch_size)
    results["padding"] = padding
    print(
        f"tokens: {padding['real']} real; padded to {padding['project']} in the project's "
        f"sub-batches ({padding['sorted']} if all were sorted by tokens), "
        f"{padding['input_order']} in input-order batches"
    )
    ours_run = lambda items: batch.classify(classifier, items, progress=False)  # noqa: E731
    pipe_run = pipeline_runner(reference, args.batch_size)
    ours_rates, pipe_rates, ours_cpu, pipe_cpu = [], [], [], []
    # Alternate the two and keep each one's best run: other load on the machine only ever
    # slows a run down, so the best run is the least disturbed one. CPU seconds of this
    # process are reported too; they depend less on what else runs on the machine.
    for _ in range(args.repeats):
        rate, cpu_rate, ours = time_batch(ours_run, texts, args.batch_size)
        ours_rates.append(rate)
        ours_cpu.append(cpu_rate)
        rate, cpu_rate, theirs = time_batch(pipe_run, texts, args.batch_size)
        pipe_rates.append(rate)
        pipe_cpu.append(cpu_rate)
    ours_rate, pipe_rate = max(ours_rates), max(pipe_rates)
    agree = sum(
        mine_label == their["label"] for mine_label, their in zip(labels_of(ours), theirs, strict=True)
    )
    results["batch"] = {
        "project_texts_per_s": ours_rates,
        "pipeline_texts_per_s": pipe_rates,
        "project_texts_per_cpu_s": ours_cpu,
        "pipeline_texts_per_cpu_s": pipe_cpu,
        "speedup_best": ours_rate / pipe_rate,
        "cpu_speedup_best": max(ours_cpu) / max(pipe_cpu),
        "same_label": agree / len(texts),
    }
    runs = lambda rates: ", ".join(f"{rate:.1f}" for rate in rates)  # noqa: E731
    print(f"batch prediction : {ours_rate:8.1f} texts/s (runs: {runs(ours_rates)})")
    print(f"pipeline         : {pipe_rate:8.1f} texts/s (runs: {runs(pipe_rates)})")
    speedup = ours_rate / pipe_rate
    print(f"speed-up         : {speedup:8.2f}x  (same label for {agree}/{len(texts)})")
    print(
        f"per CPU-second   : {max(ours_cpu):.1f} vs {max(pipe_cpu):.1f} texts = "
        f"{max(ours_cpu) / max(pipe_cpu):.2f}x"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), "utf-8")


def labels_of(prediction) -> list[str]:
    return [prediction.labels[row.index(max(row))] for row in prediction.scores]


def padding_stats(classifier, texts: list[str], batch_size: int) -> dict:
    """Tokens the model runs on: real ones, and with padding per length-sorted/input-order batch."""
    lengths = [
        len(ids)
        for ids in classifier.tokenizer(texts, truncation=True, max_length=classifier.max_length)["input_ids"]
    ]

    def padded(order: list[int]) -> int:
        return sum(
            len(order[i : i + batch_size]) * max(order[i : i + batch_size])
            for i in range(0, len(order), batch_size)
        )

    from nsmc_sentiment_classifier.serving import inference

    # What predict_fn runs: its own sub-batches, as inference.Work hands them out.
    work = inference.Work(inference.Request(list(texts)), classifier)
    project = 0
    while not work.done:
        indices, ids = work.take(batch_size)
        project += len(ids) * max(len(row) for row in ids)
        work.put(indices, [[0.0] for _ in indices])
    return {
        "real": sum(lengths),
        "sorted": padded(sorted(lengths, reverse=True)),
        "project": project,
        "input_order": padded(lengths),
    }


def time_batch(run, texts: list[str], batch_size: int):
    run(texts[: 2 * batch_size])  # warm-up: first calls allocate and pick kernels
    started, cpu_started = time.perf_counter(), time.process_time()
    output = run(texts)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return len(texts) / wall, len(texts) / cpu, output


def pipeline_runner(classifier, batch_size: int):
    from transformers import pipeline

    pipe = pipeline(
        "text-classification",
        model=classifier.model,
        tokenizer=classifier.tokenizer,
        device=classifier.device,
    )
    return lambda items: pipe(items, batch_size=batch_size, truncation=True, max_length=classifier.max_length)


def compare_engines(args: argparse.Namespace, texts: list[str], gold: list) -> dict:
    """Speed, accuracy and agreement with torch of every engine the model folder has."""
    from nsmc_sentiment_classifier.serving import batch, inference

    engines = [
        "torch",
        *(name for name, file in inference.ONNX_FILES.items() if (args.model / file).is_file()),
    ]
    if len(engines) == 1:
        print("no ONNX files in the model folder (run `export`): torch only")
    loaded = {name: batch.load_classifier(args.model, args.batch_size, engine=name) for name in engines}
    rates: dict[str, list[float]] = {name: [] for name in engines}
    outputs: dict = {}
    for _ in range(args.repeats):  # alternated; the best run of each is the least disturbed
        for name, classifier in loaded.items():
            rate, _, outputs[name] = time_batch(
                lambda items, c=classifier: batch.classify(c, items, progress=False), texts, args.batch_size
            )
            rates[name].append(rate)
    predicted = {name: [row.index(max(row)) for row in output.scores] for name, output in outputs.items()}
    labelled = [(i, int(label)) for i, label in enumerate(gold) if str(label).strip().lstrip("-").isdigit()]
    figures: dict = {}
    base = max(rates["torch"])
    print(f"{'engine':<10} {'texts/s':>8} {'vs torch':>8} {'accuracy':>8} {'points':>7} {'same label':>10}")
    for name in engines:
        row: dict = {
            "texts_per_s": rates[name],
            "speedup_best": max(rates[name]) / base,
            "same_label_as_torch": sum(
                a == b for a, b in zip(predicted[name], predicted["torch"], strict=True)
            )
            / len(texts),
            "max_score_difference": max(
                abs(a - b)
                for mine, theirs in zip(outputs[name].scores, outputs["torch"].scores, strict=True)
                for a, b in zip(mine, theirs, strict=True)
            ),
        }
        if labelled:
            row["accuracy"] = sum(predicted[name][i] == label for i, label in labelled) / len(labelled)
            row["accuracy_difference_points"] = 100 * (
                row["accuracy"] - figures.get("torch", row)["accuracy"]
            )
        figures[name] = row
        accuracy = (
            f"{row['accuracy']:8.4f} {row['accuracy_difference_points']:+7.2f}" if labelled else " " * 16
        )
        print(
            f"{name:<10} {max(rates[name]):8.1f} {row['speedup_best']:7.2f}x {accuracy} "
            f"{100 * row['same_label_as_torch']:9.2f}%   (max |dscore| {row['max_score_difference']:.2g})"
        )
    if labelled:
        print(f"accuracy on {len(labelled)} labelled texts")
    for name in engines[1:]:
        figures[name]["alone_vs_batched"] = alone_vs_batched(loaded[name], texts[: args.alone], outputs[name])
        found = figures[name]["alone_vs_batched"]
        print(
            f"{name}: {found['texts']} texts scored alone vs in batches of {args.batch_size}: "
            f"{found['label_changes']} label changes, max |dscore| {found['max_score_difference']:.2g}"
        )
    return figures


def alone_vs_batched(classifier, texts: list[str], batched) -> dict:
    """Scores of each text in a forward pass of its own against those it got inside a batch."""
    from nsmc_sentiment_classifier.serving import batch

    alone = [batch.classify(classifier, [text], progress=False).scores[0] for text in texts]
    pairs = list(zip(alone, batched.scores[: len(texts)], strict=True))
    return {
        "texts": len(texts),
        "label_changes": sum(a.index(max(a)) != b.index(max(b)) for a, b in pairs),
        "max_score_difference": max(
            (abs(x - y) for a, b in pairs for x, y in zip(a, b, strict=True)), default=0.0
        ),
    }


def machine() -> str:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    device = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}, {device}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )


if __name__ == "__main__":
    main()
