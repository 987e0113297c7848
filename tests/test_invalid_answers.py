"""Every class of invalid answer aborts with its message and leaves nothing on disk."""

from __future__ import annotations

import pytest
from conftest import bake
from cookiecutter.exceptions import FailedHookException

CASES = {
    "slug-uppercase": ({"project_slug": "My Project"}, "project_slug='My Project'"),
    "package-invalid": ({"package_name": "my-pkg"}, "package_name='my-pkg': must be a valid"),
    "package-keyword": ({"package_name": "class"}, "is a Python keyword"),
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
    # The wheel build rejects it later (packaging's metadata check) with a far worse message.
    "author-email": ({"author_email": "me at example"}, "author_email='me at example'"),
    "author-email-no-domain": ({"author_email": "me@localhost"}, "not an e-mail address"),
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
