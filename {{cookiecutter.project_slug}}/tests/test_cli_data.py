"""The command line as a user runs it: installed entry point, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import PACKAGE, label_value, labelled_records, write_labelled


def run(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def balance_heading(config):
    """How `data validate` heads its label counts: a share of rows per label for label sets."""
    return "rows holding each label:" if config.data.task == "multi_label" else "class balance"


def test_help_lists_command_groups():
    result = run("--help")
    assert result.returncode == 0
    assert "data" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "data", "validate"],
        ["data", "validate", "-v"],
        ["data", "-v", "validate"],
        ["train", "--verbose", "--entry", "torch"],
        ["-v", "serve"],
    ],
)
def test_verbose_is_taken_before_or_after_any_command(argv):
    from nsmc_sentiment_classifier import cli

    assert cli.build_parser().parse_args(argv).verbose is True
    quiet = [arg for arg in argv if arg not in {"-v", "--verbose"}]
    assert cli.build_parser().parse_args(quiet).verbose is False


def test_validate_default_source_passes(tmp_path, config, configured_dataset):
    result = run("data", "validate", "--json", str(tmp_path / "report.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert balance_heading(config) in result.stdout
    reports = json.loads((tmp_path / "report.json").read_text())
    assert reports and all(report["errors"] == [] for report in reports)
    if config.data.source == "nsmc-sample":
        assert len(reports) == 2  # one report per split file: the sample ships train and test


def test_commands_work_from_a_subfolder(config, tmp_path):
    """The project's config is found from any folder inside the project."""
    path = write_labelled(tmp_path / "reviews.csv", config, labelled_records(config, 40))
    result = run("data", "validate", str(path), cwd=config.root / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert balance_heading(config) in result.stdout


def test_validate_and_prepare_a_file_in_the_projects_columns(tmp_path, config):
    """What the configured-dataset tests check, on data that every machine has: a file in this
    project's columns and label names (the real dataset is git-ignored, absent on CI)."""
    source = write_labelled(tmp_path / "reviews.tsv", config, labelled_records(config, 200))
    result = run("data", "validate", str(source), "--json", str(tmp_path / "report.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    [report] = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["errors"] == []
    result = run("data", "prepare", "--source", str(source), "--out", str(tmp_path / "prep"))
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text(encoding="utf-8"))
    for split in ("train", "validation", "test"):
        assert (tmp_path / "prep" / split / f"{split}.jsonl").exists()
        assert list(manifest["splits"][split]["labels"]) == list(config.data.label_names)


def test_outside_the_project_without_config(tmp_path, config):
    # A file of its own: with an editable install the command reads the checkout's config.toml,
    # whose dataset need not be on this machine.
    path = write_labelled(tmp_path / "reviews.csv", config, labelled_records(config, 40))
    result = run("data", "validate", str(path), cwd=tmp_path)
    # An editable install finds its source checkout; an installed wheel says what to do.
    if result.returncode != 0:
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "pass --config FILE" in result.stderr


def test_validate_bad_file_exits_non_zero(tmp_path, config):
    path = tmp_path / "bad.csv"
    # A text-pair project's files hold the second text too (a column and a cell before the label).
    text = ",".join(config.data.text_columns)
    label, names = config.data.label_column, config.data.label_names
    good, bad = ("좋다,재밌다,", "별로,지루하다,") if config.data.pair_column else ("좋다,", "별로,")
    if config.data.label_layout == "columns":
        rest = ",0" * (len(names) - 1)
        path.write_text(f"{text},{','.join(names)}\n{good}1{rest}\n{bad}unknown{rest}\n")
        unknown = f"column {names[0]!r} must hold 0 or 1 (or true/false), got 'unknown'"
    else:
        path.write_text(f"{text},{label}\n{good}{label_value(config, 0)}\n{bad}unknown\n")
        # Single-label: one finding per value; multi-label: the values of every cell read as one file.
        multi = config.data.task == "multi_label"
        unknown = "'unknown' (line 3)" if multi else "'unknown' outside the label names"
    result = run("data", "validate", str(path))
    assert result.returncode == 1
    assert unknown in result.stdout and "(lines 3)" in result.stdout


def test_prepare_writes_channels_of_the_configured_dataset(tmp_path, config, configured_dataset):
    result = run("data", "prepare", "--out", str(tmp_path / "prep"))
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text(encoding="utf-8"))
    for split in ("train", "validation", "test"):
        assert (tmp_path / "prep" / split / f"{split}.jsonl").exists()
        assert list(manifest["splits"][split]["labels"]) == list(config.data.label_names)
    assert manifest["text_column"] == config.data.text_column


def test_prepare_other_source_with_other_columns_says_why(tmp_path, config):
    other = tmp_path / "other.csv"
    other.write_text("a,b\nx,y\n", encoding="utf-8")
    result = run("data", "prepare", "--source", str(other), "--out", str(tmp_path / "prep"))
    assert result.returncode == 2
    assert f"missing column(s) {config.data.text_column!r}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_is_a_clean_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[data]\nsource = 1\n")
    result = run("--config", str(path), "data", "prepare")
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
