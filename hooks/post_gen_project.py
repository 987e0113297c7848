"""Finish the generated project: pin the dataset's label format and paths, drop declined parts,
point tests at the real package name and keep the answers for later regeneration.

Runs inside the new project folder. The dataset was checked by the pre-generation hook, before
any file was written, so a mismatch never leaves a half-written (or, with ``-f``, a
half-updated) project behind; this hook never reads the data: the label format that check decided
for numeric label names arrives in ``LABEL_FORMAT_FILE``.
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
# An absolute path or a URL, whatever was typed (see local_extensions.stored_template).
# A JSON string: single-quoted, as Jinja's tojson escapes single quotes.
TEMPLATE = json.loads(r'{{ cookiecutter._template | default("") | stored_template | tojson }}')
LABEL_FORMAT_FILE = Path(".template-label-format")
PROJECT = Path.cwd()
PACKAGE = ANSWERS["package_name"]
CONFIG = PROJECT / "config.toml"
SAGEMAKER_ONLY = ("src/{package}/aws", "tests/test_aws_*.py", "tests/aws_*.py", "docs/sagemaker.md")
# The template's tests and benchmarks import the package under the default answer's name, so
# they stay plain Python that linters read in place; here they get the project's real name.
TEMPLATE_PACKAGE = "nsmc_sentiment_classifier"
RENAMED_FOLDERS = ("tests", "benchmarks")
BUILTIN_DATASETS = ("nsmc", "nsmc-sample")


def user_path(value: str) -> Path:
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    return Path(os.environ.get("PWD") or ANSWERS.get("_output_dir") or os.getcwd()) / path


def set_config_value(table: str, key: str, value: str) -> None:
    """Replace ``key = ...`` inside ``[table]`` of config.toml with a TOML-escaped string."""
    text = CONFIG.read_text(encoding="utf-8")
    start = text.index(f"[{table}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    encoded = json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    section = re.sub(
        rf"^{key} = .*$", lambda _: f"{key} = {encoded}", text[start:end], count=1, flags=re.MULTILINE
    )
    CONFIG.write_text(text[:start] + section + text[end:], encoding="utf-8")


def decided_label_format() -> str | None:
    """The label format the pre-generation hook's dataset check decided, if it left one."""
    if not LABEL_FORMAT_FILE.is_file():
        return None
    decided = LABEL_FORMAT_FILE.read_text(encoding="utf-8").strip()
    LABEL_FORMAT_FILE.unlink()
    return decided


def remove_sagemaker_parts() -> None:
    for pattern in SAGEMAKER_ONLY:
        for path in PROJECT.glob(pattern.format(package=PACKAGE)):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    docs = PROJECT / "docs"
    if docs.is_dir() and not any(docs.iterdir()):
        docs.rmdir()


def rename_package_in_tests() -> None:
    if PACKAGE == TEMPLATE_PACKAGE:
        return
    pattern = re.compile(rf"\b{TEMPLATE_PACKAGE}\b")
    for folder in RENAMED_FOLDERS:
        for path in (PROJECT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            renamed = pattern.sub(PACKAGE, text)
            if renamed != text:
                path.write_text(renamed, encoding="utf-8")


def save_answers(pinned: dict[str, str]) -> None:
    """``.cookiecutter.json`` in cookiecutter's replay format, so it re-bakes as it is:
    ``cookiecutter --replay-file .cookiecutter.json <template>``, from any folder or machine:
    the template is absolute or a URL, and ``_checked_dataset`` tells the pre-generation hook that
    a missing dataset at that path is another machine's, not a typo."""
    answers = {k: v for k, v in ANSWERS.items() if not k.startswith("_")}
    answers.update(pinned)
    answers["_template"] = TEMPLATE
    dataset = answers["dataset"]
    if dataset not in BUILTIN_DATASETS and not dataset.startswith("s3://"):
        answers["_checked_dataset"] = dataset
    (PROJECT / ".cookiecutter.json").write_text(
        json.dumps({"cookiecutter": answers}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def main() -> int:
    pinned: dict[str, str] = {}
    dataset = ANSWERS["dataset"]
    label_format = decided_label_format()
    if label_format:
        set_config_value("data", "label_format", label_format)
        pinned["label_format"] = label_format
    if dataset not in BUILTIN_DATASETS and not dataset.startswith("s3://"):
        # Stored absolute: a relative answer meant the folder cookiecutter ran in.
        path = user_path(dataset)
        if str(path) != dataset:
            set_config_value("data", "source", str(path))
            pinned["dataset"] = str(path)
    model = user_path(ANSWERS["base_model"])
    if model.is_dir() and str(model) != ANSWERS["base_model"]:
        set_config_value("model", "base_model", str(model))
        pinned["base_model"] = str(model)
    if not ANSWERS["include_sagemaker"]:
        remove_sagemaker_parts()
    rename_package_in_tests()
    save_answers(pinned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
