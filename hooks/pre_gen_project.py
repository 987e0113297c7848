"""Validate every cookiecutter answer before a single project file is written.

All problems are collected and reported in one message, so a user fixes them in one go.
The answers arrive as JSON (rendered with ``tojson``), never pasted into Python source, so
quotes, backslashes, Korean, emoji or template braces in an answer cannot break or execute
anything.

A local dataset is read in full here, with the template's own readers (the generated package's
``data.check``), so a mismatch stops generation before any file exists: with ``cookiecutter -f``
an existing project is left exactly as it was. The check runs here only: the post-generation
hook takes the label format it decided from ``LABEL_FORMAT_FILE`` instead of reading the data again.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import keyword
import os
import re
import sys
from pathlib import Path
from types import ModuleType

# Raw triple-quoted: JSON never holds three unescaped quotes in a row, nor ends in a backslash.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# Absolute, however the template was given (see local_extensions.template_folder).
# A JSON string: single-quoted, as Jinja's tojson escapes single quotes.
TEMPLATE_FOLDER = Path(json.loads(r'{{ cookiecutter._repo_dir | default("") | template_folder | tojson }}'))
# Where this hook leaves the label format it decided for the post-generation hook, which deletes it.
LABEL_FORMAT_FILE = ".template-label-format"
LABEL_FORMATS = ("auto", "ids", "names")
TASKS = ("single_label", "multi_label", "text_pair")
LABEL_LAYOUTS = ("column", "columns")

# Names a generated package must not take: importing it would shadow the stdlib module or a
# dependency the project itself imports.
DEPENDENCY_MODULES = {
    "accelerate",
    "boto3",
    "botocore",
    "datasets",
    "evaluate",
    "huggingface_hub",
    "matplotlib",
    "moto",
    "numpy",
    "pandas",
    "pytest",
    "safetensors",
    "sagemaker",
    "sklearn",
    "tokenizers",
    "torch",
    "tqdm",
    "transformers",
    "charset_normalizer",
    "setuptools",
    "pip",
    "tests",
    "test",
    "src",
    "scripts",
    "benchmarks",
    "conftest",
    "cookiecutter",
}
STDLIB_MODULES = set(getattr(sys, "stdlib_module_names", ()))

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
HUB_ID_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
INSTANCE_RE = re.compile(r"^ml\.([a-z][a-z0-9-]*)\.(\d*x?large|medium|small|micro|metal)$")
REGION_RE = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$")
S3_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")
DATA_SUFFIXES = {".csv", ".tsv", ".txt", ".jsonl", ".json"}
BUILTIN_DATASETS = {"nsmc", "nsmc-sample"}
# Families with an accelerator; anything else trains on CPU.
GPU_FAMILIES = re.compile(r"^(p\d|g\d|trn\d|dl\d|inf\d)")
MAX_LENGTH_RANGE = (8, 8192)
FIX_AMBIGUITY = (
    "answer label_format=ids or label_format=names (e.g. `cookiecutter --no-input <template> "
    "label_format=ids ...`), or use label names that are not numbers (e.g. '1star', '2star', ...)"
)
# Deliberately loose: one '@', a dotted domain, no spaces or brackets (what packaging accepts).
EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def user_path(value: str) -> Path:
    """Resolve a path the way the user meant it: relative to the directory they ran from."""
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    base = os.environ.get("PWD") or ANSWERS.get("_output_dir") or os.getcwd()
    return Path(base) / path


# The generated tests import the package by name and keep 40 characters of slack for it under
# the line length (tests/test_scenarios.py bakes a name this long and lints it).
PACKAGE_MAX_LENGTH = 65


def check_identifier(key: str, value: str, problems: list[str]) -> None:
    if len(value) > PACKAGE_MAX_LENGTH:
        problems.append(
            f"{key}={value!r}: {len(value)} characters, over {PACKAGE_MAX_LENGTH}; answer a shorter "
            f"{key} (the project name and slug may stay long)"
        )
        return
    if not PACKAGE_RE.match(value):
        problems.append(
            f"{key}={value!r}: must be a valid lowercase Python identifier "
            "(letters a-z, digits, '_', not starting with a digit)"
        )
        return
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        problems.append(f"{key}={value!r}: is a Python keyword; choose another name")
    if value in STDLIB_MODULES or value in DEPENDENCY_MODULES:
        problems.append(
            f"{key}={value!r}: would shadow the module {value!r} (standard library or a "
            "dependency); choose a more specific name, e.g. 'my_" + value + "'"
        )


def check_labels(value: str, problems: list[str]) -> None:
    names = [part.strip() for part in value.split(",")]
    if len(names) < 2:
        problems.append(
            f"label_names={value!r}: need at least 2 comma-separated names in label-id order, "
            "e.g. 'negative,positive'"
        )
    if any(not name for name in names):
        problems.append(f"label_names={value!r}: contains an empty name (check for stray commas)")
    folded = [name.casefold() for name in names if name]
    duplicates = sorted({name for name in folded if folded.count(name) > 1})
    if duplicates:
        problems.append(
            f"label_names={value!r}: names must be unique ignoring case and spaces; "
            f"repeated: {', '.join(duplicates)}"
        )


def regeneration(answers: dict) -> str | None:
    """Why these answers re-generate an existing project (None for a new one).

    cruft re-renders a linked project from its stored answers (update, diff, check) and marks its
    context with ``_commit``; a replay of a project's ``.cookiecutter.json`` carries the dataset
    that was checked when it was baked (``_checked_dataset``, written by the post-generation hook).
    """
    if answers.get("_commit"):
        return "cruft re-generates the project from its stored answers"
    if answers.get("_checked_dataset") and answers["_checked_dataset"] == answers["dataset"]:
        return "the answers are a project's stored answers, checked when it was generated"
    return None


def check_dataset(value: str, problems: list[str], warnings: list[str]) -> bool:
    """Whether the dataset answer is usable; True when its rows can and must be checked."""
    if value in BUILTIN_DATASETS:
        return False
    if value.startswith("s3://"):
        if not S3_RE.match(value):
            problems.append(
                f"dataset={value!r}: not a well-formed S3 URI; expected s3://bucket-name/prefix "
                "(bucket: 3-63 lowercase letters, digits, '.', '-')"
            )
        return False
    path = user_path(value)
    reason = regeneration(ANSWERS)
    if not path.exists() and reason:
        # The data may be private to the machine that baked the project; a re-generation still
        # works without it (the stored answers pin everything the data decided).
        warnings.append(
            f"dataset {str(path)!r} is not on this machine, so its rows were not checked ({reason})"
        )
        return False
    if not path.exists():
        problems.append(
            f"dataset={value!r}: {path} does not exist; give 'nsmc-sample', 'nsmc', an existing "
            "CSV/TSV/JSONL file or folder, or an s3:// URI"
        )
    elif path.is_file() and path.suffix.lower() not in DATA_SUFFIXES:
        problems.append(
            f"dataset={value!r}: unsupported file type {path.suffix!r}; accepted: "
            + ", ".join(sorted(DATA_SUFFIXES))
        )
    elif path.is_dir() and not any(p.suffix.lower() in DATA_SUFFIXES for p in path.iterdir() if p.is_file()):
        problems.append(f"dataset={value!r}: folder {path} holds no CSV/TSV/JSONL files")
    else:
        return True
    return False


def template_package() -> ModuleType:
    """The template's package (its standard-library data readers), under the project's name."""
    found = [
        path.parent
        for path in TEMPLATE_FOLDER.glob("*/src/*/__init__.py")
        if "cookiecutter" in path.parts[-4]
    ]
    if len(found) != 1:
        raise RuntimeError(
            f"the template folder {TEMPLATE_FOLDER} holds no single package to check the data with"
        )
    name = ANSWERS["package_name"]
    spec = importlib.util.spec_from_file_location(
        name, found[0] / "__init__.py", submodule_search_locations=[str(found[0])]
    )
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {found[0]} to check the data with")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def check_dataset_contents(value: str, problems: list[str], warnings: list[str]) -> None:
    """Columns and labels of a local dataset, every row of every split file; the label format it
    decides for numeric label names goes to the post-generation hook."""
    try:
        name = template_package().__name__
    except RuntimeError as error:
        problems.append(f"dataset={value!r}: cannot be checked: {error}")
        return
    check = importlib.import_module(f"{name}.data.check")
    labels = importlib.import_module(f"{name}.label_schemes.label_values")
    names = [part.strip() for part in ANSWERS["label_names"].split(",")]
    path = user_path(value)
    result = check.check_dataset(
        path,
        ANSWERS["text_column"],
        ANSWERS["label_column"],
        names,
        ANSWERS["label_format"],
        task=ANSWERS["task"],
        text_pair_column=ANSWERS.get("text_pair_column", "") if ANSWERS["task"] == "text_pair" else None,
        label_layout=ANSWERS["label_layout"],
        label_delimiter=ANSWERS["label_delimiter"],
    )
    # At generation time there is no config.toml yet: the fix is an answer.
    problems.extend(problem.replace(labels.FIX_AMBIGUITY, FIX_AMBIGUITY) for problem in result.problems)
    warnings.extend(result.warnings)
    if result.problems:
        return
    layout = "in one 0/1 column each" if ANSWERS["label_layout"] == "columns" else None
    print(
        f"Checked every row of {len(result.files)} file(s) of {path}: labels are "
        f"{layout or result.label_format or 'read per file'}",
        file=sys.stderr,
    )
    if result.label_format and ANSWERS["label_format"] == "auto" and any(n.isdigit() for n in names):
        Path(LABEL_FORMAT_FILE).write_text(result.label_format, encoding="utf-8")


def check_task(answers: dict, problems: list[str]) -> None:
    """task, label_layout and label_delimiter, and whether they go together."""
    task, layout, delimiter = answers["task"], answers["label_layout"], answers["label_delimiter"]
    if task not in TASKS:
        problems.append(
            f"task={task!r}: must be one of {', '.join(TASKS)} ('single_label': one label per text, "
            "'multi_label': any number of labels per text, 'text_pair': one label per pair of texts)"
        )
    pair = str(answers.get("text_pair_column", "")).strip()
    if task == "text_pair" and not pair:
        problems.append(
            "text_pair_column='': task=text_pair needs the column of each example's second text "
            "(text_column holds the first)"
        )
    elif task == "text_pair" and pair in (answers["text_column"], answers["label_column"]):
        problems.append(
            f"text_pair_column={pair!r}: is also the text or label column; it must name the column "
            "of the second text"
        )
    elif task != "text_pair" and pair:
        problems.append(
            f"text_pair_column={pair!r}: only task=text_pair reads a second text; answer task=text_pair "
            "or leave text_pair_column empty"
        )
    if layout not in LABEL_LAYOUTS:
        problems.append(
            f"label_layout={layout!r}: must be one of {', '.join(LABEL_LAYOUTS)} ('column': labels in "
            "label_column, 'columns': one 0/1 column per label name)"
        )
    elif layout == "columns" and task != "multi_label":
        problems.append(
            "label_layout='columns': one 0/1 column per label needs task=multi_label (a single-label "
            "dataset keeps its labels in label_column: label_layout=column)"
        )
    if task == "multi_label" and layout == "column" and not str(delimiter).strip():
        problems.append(
            f"label_delimiter={delimiter!r}: must not be blank: it separates the labels of a "
            "multi-label cell, e.g. '|'"
        )


def check_instance(key: str, value: str, problems: list[str], warnings: list[str]) -> None:
    match = INSTANCE_RE.match(value)
    if not match:
        problems.append(
            f"{key}={value!r}: expected an instance type like 'ml.<family>.<size>', e.g. ml.g5.2xlarge"
        )
    elif key == "train_instance_type" and not GPU_FAMILIES.match(match.group(1)):
        warnings.append(
            f"{key}={value!r} has no GPU: training will work but be slow; "
            "a GPU type such as ml.g5.2xlarge is recommended"
        )


def check_int(key: str, value: str, low: int, high: int, problems: list[str]) -> None:
    try:
        number = int(str(value).strip())
    except ValueError:
        problems.append(f"{key}={value!r}: must be a whole number between {low} and {high}")
        return
    if not low <= number <= high:
        problems.append(f"{key}={value!r}: must be between {low} and {high}")


def validate(answers: dict) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    if not str(answers["project_name"]).strip():
        problems.append("project_name='': must not be empty")
    slug = answers["project_slug"]
    if not SLUG_RE.match(slug):
        problems.append(
            f"project_slug={slug!r}: must be lowercase letters and digits separated by single "
            "'-', starting with a letter, e.g. 'nsmc-classifier'"
        )
    check_identifier("package_name", answers["package_name"], problems)
    email = str(answers["author_email"]).strip()
    if not EMAIL_RE.match(email):
        problems.append(
            f"author_email={answers['author_email']!r}: not an e-mail address like "
            "'you@example.com' (the package metadata must hold a valid one)"
        )
    for key in ("text_column", "label_column"):
        if not str(answers[key]).strip():
            problems.append(f"{key}='': must name a column of the dataset")
    if answers["text_column"].strip() and answers["text_column"] == answers["label_column"]:
        problems.append(f"text_column and label_column are both {answers['text_column']!r}: they must differ")
    check_labels(answers["label_names"], problems)
    check_task(answers, problems)
    if answers["label_format"] not in LABEL_FORMATS:
        problems.append(
            f"label_format={answers['label_format']!r}: must be one of {', '.join(LABEL_FORMATS)} "
            "('auto': decided from the data)"
        )
    model = answers["base_model"]
    if user_path(model).is_dir():
        pass
    elif not HUB_ID_RE.match(model) or ".." in model:
        problems.append(
            f"base_model={model!r}: neither an existing local folder nor a hub id like "
            "'organisation/model-name'"
        )
    check_int("max_seq_length", answers["max_seq_length"], *MAX_LENGTH_RANGE, problems)
    check_int("train_instance_count", answers["train_instance_count"], 1, 100, problems)
    check_instance("train_instance_type", answers["train_instance_type"], problems, warnings)
    check_instance("inference_instance_type", answers["inference_instance_type"], problems, warnings)
    if not REGION_RE.match(answers["aws_region"]):
        problems.append(f"aws_region={answers['aws_region']!r}: expected a region name like 'ap-northeast-2'")
    dataset_problems: list[str] = []
    readable = check_dataset(answers["dataset"], dataset_problems, warnings)
    problems.extend(dataset_problems)
    # The data is read with the column, label and task answers: only when those are sound.
    answered = ("text_column", "text_pair_column", "label_", "task=")
    if readable and not any(key in problem for problem in problems for key in answered):
        check_dataset_contents(answers["dataset"], problems, warnings)
    return problems, warnings


def main() -> int:
    problems, warnings = validate(ANSWERS)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if not problems:
        return 0
    lines = [f"  - {problem}" for problem in problems]
    print(
        f"ERROR: {len(problems)} invalid answer(s); nothing was generated.\n"
        + "\n".join(lines)
        + "\n\nRerun without retyping everything:\n"
        "  cookiecutter --replay-file ~/.cookiecutter_replay/<template>.json <template>"
        "  (edit the file first), or\n"
        "  cookiecutter --no-input <template> key=value [key=value ...]",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
