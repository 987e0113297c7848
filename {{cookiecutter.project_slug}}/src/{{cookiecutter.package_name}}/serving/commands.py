"""Commands ``predict``, ``evaluate``, ``serve``, ``export`` and ``package``.

torch and transformers are imported only once the options have been checked: importing them
takes seconds to half a minute, and a mistyped option should not wait for that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ProjectConfig, load_config
from ..errors import UsageError
from ..training.runs import LATEST_FILE, latest_model_dir
from .options import (
    DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_TIME_BUDGET,
    ENGINES,
    OUTPUT_SUFFIXES,
    ServerOptions,
)

if TYPE_CHECKING:
    from . import inference

logger = logging.getLogger(__name__)

# Defaults relative to the project root (the config file's folder), whatever the working directory.
EVALUATION_DIR = "reports/evaluation"
ARCHIVE = "outputs/model.tar.gz"


def _with_defaults(args: argparse.Namespace, out: str | None = None) -> ProjectConfig:
    """Load the config and fill the path options the user left out, relative to the project."""
    config = load_config(args.config)
    if args.model is None:
        args.model = latest_model_dir(config.root)
    if out is not None and args.out is None:
        args.out = config.root / out
    return config


def register(subparsers: Any) -> None:
    model_help = (
        "model folder written by training: config.json, safetensors weights, tokenizer "
        f"(default: the latest training run's, named in {LATEST_FILE.as_posix()})"
    )
    predict = subparsers.add_parser(
        "predict", help="predict labels and scores for every row of a CSV/TSV/JSONL file"
    )
    predict.add_argument("file", type=Path, help="data file (or a folder holding one)")
    evaluate = subparsers.add_parser(
        "evaluate", help="metrics, confusion matrix and misclassified rows for a labelled file"
    )
    evaluate.add_argument(
        "file", type=Path, nargs="?", help="labelled data file or folder (default: the prepared test split)"
    )
    evaluate.add_argument(
        "--baseline-train",
        type=Path,
        help="labelled file or folder the TF-IDF + logistic-regression baseline is fitted on "
        "(default: the prepared train split)",
    )
    evaluate.add_argument(
        "--no-baseline", action="store_true", help="skip the baseline and its comparison with the model"
    )
    serve = subparsers.add_parser(
        "serve", help="HTTP server with the SageMaker contract (GET /ping, POST /invocations)"
    )
    export = subparsers.add_parser(
        "export",
        help="write ONNX models (fp32, int8) next to the weights and choose the CPU engine from "
        "figures measured here",
    )
    export.add_argument(
        "--check",
        type=Path,
        help="labelled file or folder every engine is measured on (default: the prepared validation split)",
    )
    export.add_argument(
        "--check-rows",
        type=int,
        default=2000,
        help="measure on at most this many rows of --check (default: %(default)s)",
    )
    export.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    package = subparsers.add_parser(
        "package", help="build model.tar.gz for the Hugging Face inference container"
    )
    out_help = {
        predict: "output .csv/.tsv/.jsonl (default: <file>.predictions.<same type> next to the input)",
        evaluate: "folder for metrics.json, confusion_matrix.png (per_label.png), misclassified.csv "
        f"(default: {EVALUATION_DIR} in the project folder)",
        package: f"archive to write (default: {ARCHIVE} in the project folder)",
    }
    for parser, handler in (
        (predict, run_predict),
        (evaluate, run_evaluate),
        (serve, run_serve),
        (export, run_export),
        (package, run_package),
    ):
        parser.set_defaults(handler=handler)
        parser.add_argument("--model", type=Path, help=model_help)
        if parser in out_help:
            parser.add_argument("--out", type=Path, help=out_help[parser])
    predict.add_argument("--text-column", help="column with the texts (default: config [data])")
    predict.add_argument(
        "--text-pair-column",
        help="column with the second texts, for a model trained on text pairs (default: config "
        "[data].text_pair_column of a text-pair project, else the column the model was trained on)",
    )
    _add_run_options(predict)
    _add_run_options(evaluate)

    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s; 0.0.0.0 exposes the model to the network)",
    )
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        help="largest request body accepted (default: INFERENCE_MAX_BODY_BYTES or 6 MiB)",
    )
    serve.add_argument(
        "--batch-size", type=int, help="texts per forward pass (default: INFERENCE_BATCH_SIZE or 32)"
    )
    serve.add_argument(
        "--time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET,
        help="seconds a request may take before it gets 503 (default: %(default)s; SageMaker "
        "ends invocations at 60 s)",
    )
    serve.add_argument(
        "--shutdown-grace",
        type=float,
        default=DEFAULT_SHUTDOWN_GRACE,
        help="seconds the requests in flight get to finish after SIGTERM or Ctrl-C; the rest get "
        "503 (default: %(default)s)",
    )
    _add_engine_option(serve, os.environ.get("INFERENCE_ENGINE", "auto"), "INFERENCE_ENGINE or auto")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=int, help="texts per forward pass (default: config eval_batch_size)"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        help="truncate texts to this many tokens (default: the model's tokenizer limit)",
    )
    _add_engine_option(parser, "auto", "auto")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_engine_option(parser: argparse.ArgumentParser, default: str, shown_default: str) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default,
        help="what runs the model: torch, onnx (ONNX Runtime, same scores within 1e-4) or onnx-int8 "
        "(faster, a little less exact), both written by `export`; auto: torch on a GPU, on CPU "
        f"the engine export measured as fastest within its accuracy bound (default: {shown_default})",
    )


def _check_run_options(args: argparse.Namespace, command: str, output_suffixes: Sequence[str] = ()) -> None:
    """Every problem with the arguments at once, before the model or the data is touched."""
    problems = []
    if args.batch_size is not None and args.batch_size < 1:
        problems.append(f"--batch-size must be a positive number of texts, got {args.batch_size}")
    if args.max_length is not None and args.max_length < 2:
        problems.append(f"--max-length must be at least 2 tokens, got {args.max_length}")
    if args.file is not None and not args.file.exists():
        problems.append(f"{args.file}: no such file or folder")
    if args.model is not None and not (args.model / "config.json").is_file():
        problems.append(f"--model {args.model}: not a model folder (no config.json)")
    if output_suffixes and args.out is not None and args.out.suffix.lower() not in output_suffixes:
        problems.append(f"--out {args.out}: must end in {', '.join(output_suffixes)}")
    if not output_suffixes and args.out is not None and args.out.is_file():
        problems.append(f"--out {args.out}: is a file; give a folder for the reports")
    if problems:
        raise UsageError(f"{command}: " + "; ".join(problems))


def run_predict(args: argparse.Namespace) -> int:
    # Cheapest first: the arguments, then the data file, and only then the model.
    _check_run_options(args, "predict", OUTPUT_SUFFIXES)
    from .batch import predict_texts, read_texts

    config = _with_defaults(args)
    out = args.out or _default_output(args.file)
    text_column, pair_column = _predict_columns(args, config)
    data = read_texts(args.file, text_column, pair_column)
    classifier = _load_classifier(args, config)
    report = predict_texts(classifier, data, out, args.max_length, progress=not args.no_progress)
    print(f"wrote {report.rows} predictions to {out}")
    for note in report.notes():
        print(f"note: {note}")
    return 0


def _predict_columns(args: argparse.Namespace, config: ProjectConfig) -> tuple[str, str | None]:
    """The text column and, for a model trained on text pairs, the second text's column: the
    options, else a text-pair project's [data] columns, else the columns the model records."""
    recorded = _pair_columns(args.model)
    if recorded is None:
        if args.text_pair_column is not None:
            raise UsageError(
                f"predict: --text-pair-column {args.text_pair_column!r}: the model {args.model} reads "
                "one text per row, not text pairs"
            )
        return args.text_column or config.data.text_column, None
    project = config.data.text_columns if config.data.pair_column is not None else None
    text_column = args.text_column or (project or recorded)[0]
    return text_column, args.text_pair_column or (project or recorded)[1]


def _pair_columns(model: Path) -> list[str] | None:
    """The data columns a model trained on text pairs records in its config.json (None for a
    model that reads one text), read without loading the model."""
    try:
        text = (model / "config.json").read_text("utf-8")
    except OSError:
        return None  # not a model folder: loading the model says so, after the data is checked
    try:
        recorded = json.loads(text).get("text_pair_columns")
    except (ValueError, AttributeError) as error:
        raise UsageError(f"predict: --model {model}: cannot read config.json: {error}") from None
    if recorded is None:
        return None
    if not (isinstance(recorded, list) and len(recorded) == 2 and all(isinstance(c, str) for c in recorded)):
        raise UsageError(
            f"predict: --model {model}: config.json text_pair_columns must be two column names, "
            f"got {recorded!r}"
        )
    return recorded


def run_evaluate(args: argparse.Namespace) -> int:
    _check_run_options(args, "evaluate")
    if args.baseline_train is not None and not args.baseline_train.exists():
        raise UsageError(f"evaluate: --baseline-train {args.baseline_train}: no such file or folder")
    from .. import baseline
    from ..data.commands import is_prepared
    from .batch import ModelLabelsError, evaluate_examples, evaluation_summary, read_labelled

    config = _with_defaults(args, EVALUATION_DIR)
    if args.file is None:
        args.file = Path(config.data.prepared_dir) / "test"
        if not args.file.exists():
            raise UsageError(
                f"evaluate: no prepared test split at {args.file}; run `data prepare` first "
                "or pass a labelled file"
            )
    data = config.data
    # Prepared splits hold label ids; other files hold labels as [data].label_format says.
    label_format = "ids" if is_prepared(args.file, data.prepared_dir) else data.label_format
    labelled = read_labelled(args.file, data, label_format)
    # The baseline's data is read before the model loads, so a bad file fails fast.
    train_path = args.baseline_train or Path(data.prepared_dir) / "train"
    splits = None
    if not args.no_baseline and train_path.exists():
        train_format = "ids" if is_prepared(train_path, data.prepared_dir) else data.label_format
        splits = baseline.read_splits(train_path, train_format, data)
    classifier = _load_classifier(args, config)
    try:
        metrics = evaluate_examples(
            classifier, labelled, args.out, data, args.max_length, progress=not args.no_progress
        )
    except ModelLabelsError as error:
        raise UsageError(str(error)) from None
    scheme = classifier.scheme
    print(evaluation_summary(metrics))
    if splits is not None:
        try:
            figures = baseline.evaluate(
                labelled.examples, splits, data.label_scheme, data.label_names, config.options.seed
            )
        except ValueError as error:
            raise UsageError(f"evaluate: baseline: {error}") from None
        metrics["baseline"] = figures
        metrics["difference"] = baseline.compare(metrics, figures, scheme.metric_names)
        print(baseline.describe(figures))
        print(baseline.text_table(metrics, figures, scheme.metric_names, scheme.lower_is_better))
    elif not args.no_baseline:
        metrics["notes"].append(baseline.missing_train_note(train_path))
    for note in metrics["notes"]:
        print(f"note: {note}")
    if not args.no_baseline:  # evaluate_examples wrote metrics.json without the baseline
        (args.out / "metrics.json").write_text(
            json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    picture = "confusion_matrix.png" if "confusion_matrix" in metrics else "per_label.png"
    print(f"wrote metrics.json, {picture} and misclassified.csv to {args.out}")
    return 0


def _load_classifier(args: argparse.Namespace, config: ProjectConfig) -> inference.Classifier:
    """The model for predict/evaluate, with --max-length checked against its token limit."""
    from .batch import load_classifier

    classifier = load_classifier(args.model, args.batch_size or config.options.eval_batch_size, args.engine)
    if args.max_length is not None and args.max_length > classifier.max_length:
        raise UsageError(
            f"{args.group}: --max-length {args.max_length} exceeds the model's limit of "
            f"{classifier.max_length} tokens"
        )
    return classifier


def run_serve(args: argparse.Namespace) -> int:
    _with_defaults(args)
    options = ServerOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(ServerOptions)}
    )
    problems = options.problems()
    if not (args.model / "config.json").is_file():
        problems.insert(0, f"{args.model}: not a model folder (no config.json); train first or pass --model")
    if problems:
        raise UsageError("serve: " + "; ".join(problems))
    from .inference import EngineError
    from .server import make_server

    try:
        server = make_server(args.model, options)
    except EngineError as error:
        raise UsageError(f"serve: {error}") from None
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error}") from None
    server.serve()
    return 0


def run_export(args: argparse.Namespace) -> int:
    if args.check_rows < 1:
        raise UsageError(f"export: --check-rows must be a positive number of rows, got {args.check_rows}")
    config = _with_defaults(args)
    if not (args.model / "config.json").is_file():
        raise UsageError(f"export: --model {args.model}: not a model folder (no config.json)")
    from .export import ExportError, export_model, require_export_packages
    from .inference import EngineError

    try:
        require_export_packages()
    except ExportError as error:
        raise UsageError(f"export: {error}") from None
    from ..data.commands import is_prepared
    from .batch import read_labelled

    data = config.data
    path = args.check or Path(data.prepared_dir) / "validation"
    if not path.exists():
        raise UsageError(f"export: {path}: no such file or folder; run `data prepare` first or pass --check")
    check = read_labelled(path, data, "ids" if is_prepared(path, data.prepared_dir) else data.label_format)
    try:
        record = export_model(
            args.model,
            check.examples[: args.check_rows],
            data.label_names,
            progress=not args.no_progress,
        )
    except (ExportError, EngineError) as error:
        raise UsageError(f"export: {error}") from None
    print(engine_table(record))
    print(
        f"wrote model.onnx, model.int8.onnx and engines.json to {args.model}; default engine on CPU: "
        f"{record['default']}"
    )
    return 0


def engine_table(record: dict[str, Any]) -> str:
    """engines.json as the lines ``export`` prints."""
    metric = record["metric"]
    lines = [
        f"{record['check_texts']} check texts, {record['machine']['threads']} thread(s), "
        f"{record['machine']['cpu']}",
        f"{'engine':<10} {metric:>9} {'vs torch':>9} {'same label':>10} {'texts/s':>9} {'speed':>6}",
    ]
    torch_row = record["engines"][0]
    for row in record["engines"]:
        lines.append(
            f"{row['engine']:<10} {row['metric']:>9.4f} {row['metric'] - torch_row['metric']:>+9.4f} "
            f"{row['agreement']:>10.2%} {row['texts_per_second']:>9.1f} "
            f"{row['texts_per_second'] / torch_row['texts_per_second']:>5.2f}x"
            + (f"  ({row['variant']})" if row.get("variant") else "")
        )
    return "\n".join(lines)


def run_package(args: argparse.Namespace) -> int:
    from .package import PackageError, build_model_archive

    _with_defaults(args, ARCHIVE)
    try:
        members = build_model_archive(args.model, args.out)
    except PackageError as error:
        raise UsageError(str(error)) from None
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), layout checked:")
    for name in members:
        print(f"  {name}")
    return 0


def _default_output(path: Path) -> Path:
    suffix = ".tsv" if path.suffix.lower() == ".txt" else path.suffix.lower() or ".csv"
    if path.is_dir():
        return path.parent / f"{path.name}.predictions.csv"
    return path.with_name(f"{path.stem}.predictions{suffix}")
