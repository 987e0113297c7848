"""Finish the generated project: pin the dataset's label format and paths, drop declined parts,
point tests at the real package name and keep the answers for later regeneration.

Runs inside the new project folder. The dataset was checked by the pre-generation hook, before
any file was written, so a mismatch never leaves a half-written (or, with ``-f``, a
half-updated) project behind; this hook only repeats that check where the pre-generation hook
could not reach the template's readers (see ``needs_check``).
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


def needs_check(names: list[str]) -> bool:
    """The pre-generation hook checked the dataset when it could load the template's readers;
    numeric label names also need the decided label format, which only a check yields."""
    return not ANSWERS.get("_repo_dir") or any(name.strip().isdigit() for name in names)


def check_dataset(path: Path) -> str | None:
    """Check the dataset with the generated package's readers; returns the label format to pin."""
    sys.path.insert(0, str(PROJECT / "src"))
    from importlib import import_module

    check = import_module(f"{PACKAGE}.data.check")
    names = [name.strip() for name in ANSWERS["label_names"].split(",")]
    result = check.check_dataset(path, ANSWERS["text_column"], ANSWERS["label_column"], names)
    if result.problems:
        print(
            "ERROR: the dataset does not match the answers; the project is removed.\n"
            + "\n".join(f"  - {p}" for p in result.problems),
            file=sys.stderr,
        )
        raise SystemExit(1)
    return result.label_format


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
    ``cookiecutter --replay-file .cookiecutter.json <template>``."""
    answers = {k: v for k, v in ANSWERS.items() if not k.startswith("_")}
    answers.update(pinned)
    answers["_template"] = ANSWERS.get("_template", "")
    (PROJECT / ".cookiecutter.json").write_text(
        json.dumps({"cookiecutter": answers}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def main() -> int:
    pinned: dict[str, str] = {}
    dataset = ANSWERS["dataset"]
    names = [name.strip() for name in ANSWERS["label_names"].split(",")]
    if dataset not in BUILTIN_DATASETS and not dataset.startswith("s3://"):
        # Stored absolute: a relative answer meant the folder cookiecutter ran in.
        path = user_path(dataset)
        if needs_check(names):
            label_format = check_dataset(path)
            if label_format and any(name.isdigit() for name in names):
                set_config_value("data", "label_format", label_format)
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
