"""Finish the generated project: check a local dataset against the answers, drop declined
parts, pin the dataset path and keep the answers for later regeneration.

Runs inside the new project folder. A failure here makes cookiecutter delete that folder, so a
mismatch between dataset and answers never leaves a half-usable project behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

# Raw triple-quoted: JSON never holds three unescaped quotes in a row, nor ends in a backslash.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
PROJECT = Path.cwd()
PACKAGE_DIR = PROJECT / "src" / ANSWERS["package_name"]
SAMPLE_ROWS = 5000
SAGEMAKER_ONLY = ("src/{package}/aws", "tests/test_aws_*.py", "tests/aws_*.py", "docs/sagemaker.md")


def data_modules():
    """The generated package's own stdlib-only readers: the hook checks what training will read."""
    sys.path.insert(0, str(PROJECT / "src"))
    from importlib import import_module

    package = ANSWERS["package_name"]
    return import_module(f"{package}.data.io"), import_module(f"{package}.data.labels")


def user_path(value: str) -> Path:
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    return Path(os.environ.get("PWD") or ANSWERS.get("_output_dir") or os.getcwd()) / path


def check_dataset(path: Path) -> list[str]:
    io, labels_module = data_modules()
    files = [path] if path.is_file() else io.find_data_files(path)
    text_column, label_column = ANSWERS["text_column"], ANSWERS["label_column"]
    names = [name.strip() for name in ANSWERS["label_names"].split(",")]
    labels = labels_module.LabelMap(names)
    problems = []
    for file in files:
        try:
            table = io.read_table(file, limit=SAMPLE_ROWS)
        except io.DataFormatError as error:
            problems.append(str(error))
            continue
        missing = [c for c in (text_column, label_column) if c not in table.columns]
        if missing:
            problems.append(
                f"{file}: column(s) {', '.join(map(repr, missing))} not found; the file has "
                f"{', '.join(map(repr, table.columns))} (answers text_column/label_column)"
            )
            continue
        found: dict[str, int] = {}
        bad: dict[str, int] = {}
        for row in table.rows:
            value = str(row.values[label_column]).strip()
            found.setdefault(value, row.line)
            try:
                labels.to_id(row.values[label_column])
            except labels_module.LabelError:
                bad.setdefault(value, row.line)
        if bad:
            expected = ", ".join(f"{i} or {n!r}" for i, n in enumerate(names))
            first = ", ".join(f"{value!r} (line {line})" for value, line in bad.items())
            problems.append(
                f"{file}: label values {first} match no label name. Labels found: "
                f"{', '.join(map(repr, sorted(found)))}; expected (label_names in id order): "
                f"{expected}"
            )
    return problems


def pin_path(key: str, resolved: Path) -> None:
    """Store an absolute path in config.toml: a relative one meant the user's folder, not the
    project's, and the project's commands run from elsewhere."""
    config = PACKAGE_DIR / "config.toml"
    text = config.read_text(encoding="utf-8")
    value = json.dumps(str(resolved), ensure_ascii=False).replace("\x7f", "\\u007f")
    text = re.sub(
        rf"^{key} = .*$", lambda _: f"{key} = {value}", text, count=1, flags=re.MULTILINE
    )
    config.write_text(text, encoding="utf-8")


def remove_sagemaker_parts() -> None:
    for pattern in SAGEMAKER_ONLY:
        for path in PROJECT.glob(pattern.format(package=ANSWERS["package_name"])):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    docs = PROJECT / "docs"
    if docs.is_dir() and not any(docs.iterdir()):
        docs.rmdir()


def save_answers() -> None:
    answers = {k: v for k, v in ANSWERS.items() if not k.startswith("_") or k == "_template"}
    (PROJECT / ".cookiecutter.json").write_text(
        json.dumps(answers, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def main() -> int:
    dataset = ANSWERS["dataset"]
    if dataset not in ("nsmc", "nsmc-sample") and not dataset.startswith("s3://"):
        path = user_path(dataset)
        problems = check_dataset(path)
        if problems:
            print(
                "ERROR: the dataset does not match the answers; nothing was generated.\n"
                + "\n".join(f"  - {p}" for p in problems)
                + "\nFix the answers (text_column, label_column, label_names) or the data and rerun.",
                file=sys.stderr,
            )
            return 1
        if str(path) != dataset:
            pin_path("source", path)
    model = user_path(ANSWERS["base_model"])
    if model.is_dir() and str(model) != ANSWERS["base_model"]:
        pin_path("base_model", model)
    if not ANSWERS["include_sagemaker"]:
        remove_sagemaker_parts()
    save_answers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
