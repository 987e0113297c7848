"""``data`` commands: download NSMC, validate a dataset, prepare channel folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import load_config


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("data", help="download, validate and prepare datasets")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    download = commands.add_parser("download", help="fetch the full NSMC corpus and verify it")
    download.add_argument(
        "--from",
        dest="local_copy",
        type=Path,
        help="copy ratings_train.txt/ratings_test.txt from this folder instead of the internet",
    )
    download.add_argument("--to", type=Path, help="target folder (default: the project's cache)")
    download.set_defaults(handler=run_download)

    validate = commands.add_parser(
        "validate", help="report missing columns, bad labels, empty/duplicate texts and statistics"
    )
    validate.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="data files (default: every split file of the configured source)",
    )
    validate.add_argument("--json", type=Path, help="also write the report(s) as JSON here")
    validate.add_argument(
        "--unlabelled", action="store_true", help="the files have no label column (to predict on)"
    )
    validate.set_defaults(handler=run_validate)

    prepare = commands.add_parser(
        "prepare", help="write seeded, stratified train/validation/test channel folders"
    )
    prepare.add_argument("--source", help="dataset source (default: config [data].source)")
    prepare.add_argument("--out", type=Path, help="output folder (default: config [data].prepared_dir)")
    prepare.set_defaults(handler=run_prepare)


def run_download(args: argparse.Namespace) -> int:
    from .download import DownloadError, download_nsmc

    try:
        folder = download_nsmc(args.to, local_copy=args.local_copy)
    except DownloadError as error:
        print(f"error: {error}")
        return 1
    print(f"NSMC is ready in {folder}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from .sources import resolve_source
    from .validate import validate_file

    config = load_config(args.config).data
    files = args.files or list(resolve_source(config.source).values())
    reports = [
        validate_file(
            path,
            config.text_column,
            config.label_column,
            config.label_names,
            unlabelled=args.unlabelled,
            # Prepared splits hold label ids, whatever the source files held.
            label_format="ids" if is_prepared(path, config.prepared_dir) else config.label_format,
            scheme=config.label_scheme,
            label_layout=config.label_layout,
            text_pair_column=config.pair_column,
        )
        for path in files
    ]
    for report in reports:
        print(report.render(), end="\n\n")
    if args.json:
        args.json.write_text(
            json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2), encoding="utf-8"
        )
    return 0 if all(report.ok for report in reports) else 1


def is_prepared(path: str | Path, prepared_dir: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(prepared_dir).resolve())


def run_prepare(args: argparse.Namespace) -> int:
    from .prepare import prepare

    config = load_config(args.config).data
    out = args.out or Path(config.prepared_dir)
    manifest = prepare(config, out, source=args.source)
    what = "pair" if config.pair_column else "text"
    for split, sources in manifest["dropped_duplicates"].items():
        for held_out, rows in sources.items():
            print(f"dropped {rows} {split} rows whose {what} is also in the {held_out} split")
    for split, info in manifest["splits"].items():
        # Multi-label: rows holding each label, and rows holding none.
        empty = f"  without a label: {info['rows_without_label']}" if "rows_without_label" in info else ""
        print(f"{split:<10} {info['rows']:>7} rows  {info['labels']}{empty}  -> {out / info['path']}")
    return 0
