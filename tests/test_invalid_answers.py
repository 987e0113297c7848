"""Every class of invalid answer aborts with its message and leaves nothing on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import chdir
from pathlib import Path

import pytest
from conftest import REPO, bake, bake_replay, check_keys, install
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

CASES = {
    "slug-uppercase": ({"project_slug": "My Project"}, "project_slug='My Project'"),
    "package-invalid": ({"package_name": "my-pkg"}, "package_name='my-pkg': must be a valid"),
    "package-keyword": ({"package_name": "class"}, "is a Python keyword"),
    "package-too-long": ({"package_name": "p" * 66}, "66 characters, over 65; answer a shorter package_name"),
    "package-stdlib": ({"package_name": "json"}, "would shadow the module 'json'"),
    "package-test": ({"package_name": "test"}, "would shadow the module 'test'"),
    "package-torch": ({"package_name": "torch"}, "would shadow the module 'torch'"),
    "package-transformers": ({"package_name": "transformers"}, "shadow the module 'transformers'"),
    "one-label": ({"label_names": "positive"}, "need at least 2"),
    "empty-label": ({"label_names": "neg,,pos"}, "contains an empty name"),
    "duplicate-labels": ({"label_names": "Pos, neg, pos "}, "repeated: pos"),
    "model-shape": ({"base_model": "not a model id"}, "base_model='not a model id'"),
    "model-missing-folder": ({"base_model": "./no/such/model/dir"}, "neither an existing local"),
    "instance-type": ({"train_instance_type": "g5.2xlarge"}, "ml.<family>.<size>"),
    "inference-type": ({"inference_instance_type": "ml.gpu"}, "inference_instance_type='ml.gpu'"),
    "instance-count": ({"train_instance_count": "0"}, "train_instance_count='0': must be between"),
    "region": ({"aws_region": "Seoul"}, "aws_region='Seoul'"),
    "max-length-low": ({"max_seq_length": "2"}, "max_seq_length='2': must be between 8 and 8192"),
    "max-length-text": ({"max_seq_length": "long"}, "max_seq_length='long': must be a whole"),
    "dataset-missing": ({"dataset": "/no/such/file.csv"}, "does not exist"),
    "dataset-s3": ({"dataset": "s3://Bad_Bucket/x"}, "not a well-formed S3 URI"),
    "same-columns": ({"text_column": "x", "label_column": "x"}, "they must differ"),
    "label-format": ({"label_format": "numbers"}, "label_format='numbers': must be one of auto, ids, names"),
    # The wheel build rejects it later (packaging's metadata check) with a far worse message.
    "author-email": ({"author_email": "me at example"}, "author_email='me at example'"),
    "author-email-no-domain": ({"author_email": "me@localhost"}, "not an e-mail address"),
    "columns-single-label": ({"label_layout": "columns"}, "label_layout='columns': one 0/1 column per label"),
    "text-pair-without-column": (
        {"task": "text_pair"},
        "text_pair_column='': task=text_pair needs the column of each example's second text",
    ),
    "text-pair-same-column": (
        {"task": "text_pair", "text_pair_column": "document"},
        "text_pair_column='document': is also the text or label column",
    ),
    "pair-column-without-text-pair": (
        {"text_pair_column": "answer"},
        "text_pair_column='answer': only task=text_pair reads a second text",
    ),
    "blank-delimiter": (
        {"task": "multi_label", "label_delimiter": " "},
        "label_delimiter=' ': must not be blank",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_answer_aborts(name, out, capfd):
    context, message = CASES[name]
    with pytest.raises(FailedHookException):
        bake(out, **context)
    err = capfd.readouterr().err
    assert message in err, err
    assert "nothing was generated" in err and "--replay-file" in err and "key=value" in err
    assert list(out.iterdir()) == []


def test_all_problems_listed_in_one_message(out, capfd):
    with pytest.raises(FailedHookException):
        bake(out, package_name="json", label_names="a", aws_region="x", max_seq_length="0")
    err = capfd.readouterr().err
    assert "4 invalid answer(s)" in err
    for fragment in ("package_name='json'", "label_names='a'", "aws_region='x'", "max_seq_length"):
        assert fragment in err
    assert list(out.iterdir()) == []


def test_cpu_training_instance_only_warns(out, capfd):
    project = bake(out, train_instance_type="ml.m5.2xlarge")
    assert project.exists()
    assert "has no GPU: training will work but be slow" in capfd.readouterr().err


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_dataset_labels_must_match_label_names(out, tmp_path, capfd):
    data = write(tmp_path, "document,label\n좋다,good\n나쁘다,bad\n")
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data))
    err = capfd.readouterr().err
    assert "Labels found: 'bad', 'good'" in err and "0 or 'negative', 1 or 'positive'" in err
    assert list(out.iterdir()) == []


def test_dataset_label_id_out_of_range(out, tmp_path, capfd):
    data = write(tmp_path, "document,label\n좋다,1\n나쁘다,2\n")
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data))
    assert "'2' (line 3)" in capfd.readouterr().err
    assert list(out.iterdir()) == []


def test_dataset_missing_column(out, tmp_path, capfd):
    data = write(tmp_path, "review\tstars\n좋다\t1\n", name="data.tsv")
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data))
    err = capfd.readouterr().err
    assert "column(s) 'document', 'label' not found; the file has 'review', 'stars'" in err
    assert list(out.iterdir()) == []


def test_dataset_with_label_names_is_accepted(out, tmp_path):
    data = write(tmp_path, "document,label\n좋다,positive\n나쁘다,Negative\n")
    assert bake(out, dataset=str(data)).exists()


def test_unknown_extra_context_key_is_caught(out):
    """The harness's own guard: a misspelt key must fail the test, not bake the defaults."""
    with pytest.raises(AssertionError, match="keys not in cookiecutter.json: \\['labelnames'\\]"):
        bake(out, labelnames="a,b")


def write_rows(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(header + "\n")
        handle.writelines(row + "\n" for row in rows)
    return path


def test_whole_file_is_checked_not_its_first_rows(out, tmp_path, capfd):
    """Seven classes sorted by label: the first thousands of rows show only class 0."""
    rows = [f"text {i}\t{i * 7 // 7000}" for i in range(7000)]
    data = write_rows(tmp_path / "intents.tsv", "text\tlabel", rows)
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data), text_column="text", label_column="label")
    err = capfd.readouterr().err
    assert "'6'" in err and "line 6002" in err, err
    assert list(out.iterdir()) == []


def test_numeric_label_names_do_not_merge_classes(out, tmp_path):
    """Ids 0-4 with label names 1..5: read as ids, as a whole file, so every class keeps its rows."""
    rows = [f"review {i},{i % 5}" for i in range(100)]
    data = write_rows(tmp_path / "ratings.csv", "text,stars", rows)
    project = bake(out, dataset=str(data), text_column="text", label_column="stars", label_names="1,2,3,4,5")
    config = (project / "config.toml").read_text(encoding="utf-8")
    assert 'label_format = "ids"' in config
    site = install(project, tmp_path / "site")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            project.name.replace("-", "_"),
            "data",
            "validate",
            "--json",
            str(tmp_path / "report.json"),
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [report] = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["class_counts"] == {"1": 20, "2": 20, "3": 20, "4": 20, "5": 20}


def test_ambiguous_numeric_labels_are_refused_with_the_fix(out, tmp_path, capfd):
    """Values 1-4 with label names 1..5 read either way (ids 1-4 or names 1-4)."""
    rows = [f"review {i},{i % 4 + 1}" for i in range(100)]
    data = write_rows(tmp_path / "ratings.csv", "text,stars", rows)
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data), text_column="text", label_column="stars", label_names="1,2,3,4,5")
    err = capfd.readouterr().err
    # The fix is an answer: at generation time there is no config.toml to edit.
    assert "answer label_format=ids or label_format=names" in err and "numbers" in err, err
    assert "config.toml" not in err, err
    assert list(out.iterdir()) == []
    project = bake(
        out,
        dataset=str(data),
        text_column="text",
        label_column="stars",
        label_names="1,2,3,4,5",
        label_format="names",
    )
    assert 'label_format = "names"' in (project / "config.toml").read_text(encoding="utf-8")


def test_file_without_header_row_is_named_as_such(out, tmp_path, capfd):
    """3i4k style: `label<TAB>text` lines and no header."""
    rows = [f"{i % 2}\t문장 번호 {i} 입니다" for i in range(50)]
    data = write_rows(tmp_path / "fci.txt", "1\t첫 문장입니다", rows)
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data))
    err = capfd.readouterr().err
    assert "no header row" in err, err
    assert list(out.iterdir()) == []


def test_folder_ignores_files_that_are_not_splits(out, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_rows(folder / "train.csv", "document,label", ["좋다,1", "나쁘다,0"] * 10)
    write_rows(folder / "test.csv", "document,label", ["좋다,1", "나쁘다,0"] * 5)
    (folder / "notes.txt").write_text("not a table\tat all\t\t\n", encoding="utf-8")
    (folder / "README.md").write_text("# data\n", encoding="utf-8")
    assert bake(out, dataset=str(folder)).exists()


def test_spreadsheet_export_warns_but_is_accepted(out, tmp_path, capfd):
    """Excel: empty trailing header columns and comma-only rows."""
    rows = ["좋다,1,,", "나쁘다,0,,", ",,,", "최고,1,,", ",,,"]
    data = write_rows(tmp_path / "export.csv", "document,label,,", rows)
    project = bake(out, dataset=str(data))
    assert project.exists()
    err = capfd.readouterr().err
    assert "WARNING" in err and "line" in err, err


CHECKED = "Checked every row of"


def template_as_given(form: str, tmp_path: Path) -> tuple[str, Path]:
    """The template argument and the folder cookiecutter runs in, for each way users give it."""
    if form == "dot":
        return ".", REPO
    sibling = tmp_path / "sibling"
    sibling.mkdir(exist_ok=True)
    if form == "absolute":
        return str(REPO), sibling
    return os.path.relpath(REPO, sibling), sibling


def bake_as_given(form: str, tmp_path: Path, out: Path, **context) -> tuple[int, str]:
    """Bake through the Python API, or through the command line for the "cli-*" forms."""
    check_keys(context)
    template, cwd = template_as_given(form.removeprefix("cli-"), tmp_path)
    if form.startswith("cli-"):
        pairs = [f"{key}={value}" for key, value in context.items()]
        command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), template, *pairs]
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
        return result.returncode, result.stderr
    with chdir(cwd):
        try:
            cookiecutter(template, no_input=True, extra_context=context, output_dir=str(out))
        except FailedHookException:
            return 1, ""
    return 0, ""


FORMS = ["dot", "relative", "absolute", "cli-dot", "cli-relative"]


@pytest.mark.parametrize("form", FORMS)
def test_dataset_is_checked_however_the_template_is_given(form, out, tmp_path, capfd):
    """`cookiecutter .` or `../template`: the check ran nowhere and bad data was accepted."""
    data = write(tmp_path, "document,label\n좋다,good\n나쁘다,bad\n")
    code, err = bake_as_given(form, tmp_path, out, dataset=str(data))
    err += capfd.readouterr().err
    assert code != 0 and "Labels found: 'bad', 'good'" in err, err
    assert list(out.iterdir()) == []
    columns = write(tmp_path, "review,stars\n좋다,1\n", name="columns.csv")
    code, err = bake_as_given(form, tmp_path, out, dataset=str(columns))
    err += capfd.readouterr().err
    assert code != 0 and "column(s) 'document', 'label' not found" in err, err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("form", ["dot", "cli-relative"])
def test_dataset_is_read_once_before_anything_is_written(form, out, tmp_path, capfd):
    """Once, by the pre-generation hook; the post-generation hook never reads the data again."""
    rows = [f"review {i},{i % 5 + 1}" for i in range(100)]
    data = write_rows(tmp_path / "ratings.csv", "text,stars", rows)
    answers = {
        "dataset": str(data),
        "text_column": "text",
        "label_column": "stars",
        "label_names": "1,2,3,4,5",
    }
    code, err = bake_as_given(form, tmp_path, out, **answers)
    err += capfd.readouterr().err
    assert code == 0, err
    assert err.count(CHECKED) == 1, err
    (project,) = out.iterdir()
    assert 'label_format = "names"' in (project / "config.toml").read_text(encoding="utf-8")
    stored = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]
    assert stored["label_format"] == "names"
    assert not (project / ".template-label-format").exists()


def test_task_and_layout_outside_their_choices_are_listed_together(out, capfd):
    """A replay file (or an edited stored answer) is not held to cookiecutter's choices."""
    with pytest.raises(FailedHookException):
        answers = {
            "project_slug": "rating",
            "package_name": "rating",
            "task": "regression",
            "label_layout": "rows",
        }
        bake_replay(out, answers)
    err = capfd.readouterr().err
    assert "2 invalid answer(s)" in err, err
    assert "task='regression': must be one of single_label, multi_label, text_pair" in err
    assert "label_layout='rows': must be one of column, columns" in err
    assert [path.name for path in out.iterdir()] == ["replay.json"]


MULTI_LABEL = {"task": "multi_label", "text_column": "text", "label_names": "hate,offensive,gender,others"}


def test_multi_label_datasets_are_accepted(out, tmp_path, capfd):
    cells = write(tmp_path, "text\tlabel\n욕설\thate|gender\n평범\t\n비꼼\toffensive\n", "cells.tsv")
    project = bake(out, dataset=str(cells), **MULTI_LABEL)
    config = (project / "config.toml").read_text(encoding="utf-8")
    assert 'task = "multi_label"' in config and 'metric_for_best_model = "micro_f1"' in config
    assert f"{CHECKED} 1 file(s) of {cells}: labels are names" in capfd.readouterr().err
    columns = write(
        tmp_path,
        "text,hate,offensive,gender,others\n욕설,1,0,true,0\n평범,0,0,0,0\n",
        "flags.csv",
    )
    project = bake(out, overwrite_if_exists=True, dataset=str(columns), label_layout="columns", **MULTI_LABEL)
    assert 'label_layout = "columns"' in (project / "config.toml").read_text(encoding="utf-8")
    assert "labels are in one 0/1 column each" in capfd.readouterr().err


MULTI_LABEL_DATA_ERRORS = {
    "unknown-label-in-a-cell": (
        "text,label\n욕설,hate|gender\n비꼼,offensive|racism\n",
        {},
        ["data.csv: line 3: column 'label': ", "'racism' (line 3)"],
    ),
    "delimiter-in-no-cell": (
        'text,label\n욕설,"hate,gender"\n비꼼,offensive\n',
        {},
        [
            "data.csv: line 2: column 'label': the label delimiter '|' occurs in no label cell",
            "the cells hold ',' instead, e.g. 'hate,gender'",
            "answer label_delimiter with the character that separates the labels",
            "if each text really has at most one label, use task single_label",
        ],
    ),
    "zero-one-column-with-other-values": (
        "text,hate,offensive,gender,others\n욕설,1,0,0,0\n비꼼,0,yes please,0,0\n",
        {"label_layout": "columns"},
        ["data.csv: line 3: column 'offensive' must hold 0 or 1 (or true/false), got 'yes please'"],
    ),
    "missing-label-column": (
        "text,hate,offensive,gender\n욕설,1,0,0\n",
        {"label_layout": "columns"},
        ["missing column(s) 'others' not found", 'label_layout "columns" needs a column per label'],
    ),
}


@pytest.mark.parametrize("name", sorted(MULTI_LABEL_DATA_ERRORS))
def test_multi_label_dataset_errors_abort(name, out, tmp_path, capfd):
    text, answers, fragments = MULTI_LABEL_DATA_ERRORS[name]
    data = write(tmp_path, text)
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data), **{**MULTI_LABEL, **answers})
    err = capfd.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert list(out.iterdir()) == []


TEXT_PAIR = {
    "task": "text_pair",
    "text_column": "query",
    "text_pair_column": "answer",
    "label_names": "무관,관련",
}


def test_text_pair_datasets_are_accepted(out, tmp_path, capfd):
    data = write(
        tmp_path, "query,answer,label\n환불 방법,영수증을 지참하세요,관련\n환불 방법,날씨가 맑아요,무관\n"
    )
    project = bake(out, dataset=str(data), **TEXT_PAIR)
    config = (project / "config.toml").read_text(encoding="utf-8")
    assert 'task = "text_pair"' in config and 'text_pair_column = "answer"' in config
    assert 'metric_for_best_model = "accuracy"' in config
    assert f"{CHECKED} 1 file(s) of {data}: labels are names" in capfd.readouterr().err


TEXT_PAIR_DATA_ERRORS = {
    "empty-pair-text": (
        "query,answer,label\n환불 방법,영수증을 지참하세요,관련\n배송 기간,,무관\n",
        [
            "data.csv: line 3: column 'answer' is empty: every row of a text-pair dataset needs both texts",
            "fill it or remove the row (answers text_column/text_pair_column)",
        ],
    ),
    "empty-first-text": (
        "query,answer,label\n,영수증을 지참하세요,관련\n",
        ["data.csv: line 2: column 'query' is empty: every row of a text-pair dataset needs both texts"],
    ),
    "missing-pair-column": (
        "query,label\n환불 방법,관련\n",
        ["missing column(s) 'answer' not found", "(answers text_column/text_pair_column/label_column)"],
    ),
}


@pytest.mark.parametrize("name", sorted(TEXT_PAIR_DATA_ERRORS))
def test_text_pair_dataset_errors_abort(name, out, tmp_path, capfd):
    text, fragments = TEXT_PAIR_DATA_ERRORS[name]
    data = write(tmp_path, text)
    with pytest.raises(FailedHookException):
        bake(out, dataset=str(data), **TEXT_PAIR)
    err = capfd.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert list(out.iterdir()) == []
