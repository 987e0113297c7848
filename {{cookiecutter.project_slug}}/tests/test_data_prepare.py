"""Validation reports and deterministic, stratified channel folders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter

import pytest
from conftest import label_cells, text_cells

from nsmc_sentiment_classifier.data import (
    io,
    prepare,
    sources,
    subset,
    validate,
)

# These tests read one label per text, whatever task the project was generated for.
SINGLE_LABEL = {"task": "single_label", "label_layout": "column"}


def test_validate_finds_every_problem_with_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "text,label\n좋다,1\n  ,0\n좋다,0\n별로,2\n나쁘다,0\n",
        encoding="utf-8",
    )
    report = validate.validate_file(path, "text", "label", ["neg", "pos"])
    rendered = report.render()
    assert not report.ok
    assert "1 row(s) with label '2' outside the label names" in rendered
    assert "(lines 5)" in rendered
    assert "empty or whitespace-only text" in rendered and "(lines 3)" in rendered
    assert "1 duplicate text(s)" in rendered
    assert "conflicting labels (lines 2, 4)" in rendered
    assert report.class_counts == {"neg": 3, "pos": 1}
    assert report.length_stats["max"] == 3


def test_validate_missing_column_is_an_error(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("review,label\n좋다,1\n", encoding="utf-8")
    report = validate.validate_file(path, "text", "label", ["neg", "pos"])
    assert not report.ok and "missing column(s) 'text'" in report.render()


def test_bundled_sample_is_clean_enough(config, sample_dir):
    report = validate.validate_file(sample_dir / "train.tsv", "document", "label", ["negative", "positive"])
    assert report.ok, report.render()
    assert sum(report.class_counts.values()) == 4000


def tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.jsonl")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def nsmc_section(config):
    return dataclasses.replace(
        config.data,
        **SINGLE_LABEL,
        text_column="document",
        label_column="label",
        label_names=("negative", "positive"),
        label_format="auto",
        source="nsmc-sample",
    )


def test_prepare_bundled_sample_is_deterministic_and_stratified(config, tmp_path):
    section = nsmc_section(config)
    first = prepare.prepare(section, tmp_path / "a")
    prepare.prepare(section, tmp_path / "b")
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    splits = first["splits"]
    assert set(splits) == {"train", "validation", "test"}
    assert splits["test"]["rows"] == 1000  # the sample ships its own test split
    # 14 training rows repeat a test text; they are dropped, the test split stays whole.
    assert first["dropped_duplicates"] == {"train": {"test": 14}}
    assert splits["train"]["rows"] + splits["validation"]["rows"] == 4000 - 14
    shares = [splits[s]["labels"]["positive"] / splits[s]["rows"] for s in ("train", "validation")]
    assert abs(shares[0] - shares[1]) < 0.02
    record = json.loads((tmp_path / "a/train/train.jsonl").read_text(encoding="utf-8").split("\n")[0])
    assert set(record) == {"document", "label"} and record["label"] in (0, 1)
    assert json.loads((tmp_path / "a/manifest.json").read_text())["seed"] == section.seed
    other = prepare.prepare(dataclasses.replace(section, seed=7), tmp_path / "c")
    assert other["splits"]["train"]["rows"] == splits["train"]["rows"]
    assert tree_digest(tmp_path / "c") != tree_digest(tmp_path / "a")


def test_prepare_single_file_gets_three_splits_with_label_names(config, tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [f"리뷰 {i},{['neg', 'pos', 'mixed'][i % 3]}" for i in range(300)] + ["  ,neg"]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    section = dataclasses.replace(
        config.data,
        **SINGLE_LABEL,
        source=str(path),
        text_column="text",
        label_column="label",
        label_names=("neg", "pos", "mixed"),
        label_format="auto",
        validation_fraction=0.1,
        test_fraction=0.2,
    )
    manifest = prepare.prepare(section, tmp_path / "out")
    counts = {s: info["rows"] for s, info in manifest["splits"].items()}
    assert counts == {"train": 210, "validation": 30, "test": 60}  # the empty text is dropped
    assert all(set(info["labels"].values()) == {counts[s] // 3} for s, info in manifest["splits"].items())


def test_prepare_folder_of_split_files(config, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, n in (("my_train.jsonl", 40), ("my_dev.jsonl", 10)):
        io.write_jsonl(folder / name, ({"t": f"{name} {i}", "y": i % 2} for i in range(n)))
    assert sorted(sources.split_files(folder)) == ["train", "validation"]
    section = _folder_section(config, folder, test_fraction=0.25)
    manifest = prepare.prepare(section, tmp_path / "out")
    assert {s: i["rows"] for s, i in manifest["splits"].items()} == {
        "train": 30,
        "validation": 10,
        "test": 10,
    }


def test_prepare_too_small_class_is_explained(config, tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\n" + "\n".join(f"t{i},0" for i in range(20)) + "\nx,1\n")
    section = dataclasses.replace(
        config.data,
        **SINGLE_LABEL,
        source=str(path),
        text_column="text",
        label_column="label",
        label_names=("a", "b"),
        label_format="auto",
    )
    with pytest.raises(io.DataFormatError, match="cannot carve a stratified test split"):
        prepare.prepare(section, tmp_path / "out")


def test_dev_subset_is_stratified_and_seeded():
    labels = [0] * 900 + [1] * 100
    chosen = subset.dev_subset(labels, 0.1, seed=1)
    assert Counter(labels[i] for i in chosen) == {0: 90, 1: 10}
    assert chosen == subset.dev_subset(labels, 0.1, seed=1)
    assert chosen != subset.dev_subset(labels, 0.1, seed=2)
    assert subset.dev_subset(labels, 1.0, seed=1) == list(range(1000))


def _folder_section(config, folder, **fractions):
    """The data section for a folder of JSON Lines split files with columns t (text), y (a/b)."""
    return dataclasses.replace(
        config.data,
        **SINGLE_LABEL,
        source=str(folder),
        text_column="t",
        label_column="y",
        label_names=("a", "b"),
        label_format="auto",
        **fractions,
    )


def _split_texts(out):
    return {
        split: [
            record["t"] for record in map(json.loads, (out / split / f"{split}.jsonl").open(encoding="utf-8"))
        ]
        for split in ("train", "validation", "test")
    }


def test_prepare_keeps_each_text_in_one_split(config, tmp_path):
    """Exact duplicates used to land in train and test alike (511 of 3i4k's test texts), which
    inflates test scores; the count was not reported anywhere."""
    folder = tmp_path / "data"
    folder.mkdir()
    # Train: 200 distinct texts, each written three times, plus 30 that the test file repeats.
    train = [{"t": f"문장 {i}", "y": i % 2} for i in range(200) for _ in range(3)]
    train += [{"t": f"시험 {i}", "y": i % 2} for i in range(30)]
    test = [{"t": f"시험 {i}", "y": i % 2} for i in range(60)]
    io.write_jsonl(folder / "train.jsonl", train)
    io.write_jsonl(folder / "test.jsonl", test)
    section = _folder_section(config, folder, validation_fraction=0.2)
    manifest = prepare.prepare(section, tmp_path / "out")
    texts = _split_texts(tmp_path / "out")
    assert texts["test"] == [row["t"] for row in test]  # the source's test split stays whole
    assert not set(texts["train"]) & set(texts["test"])
    assert not set(texts["train"]) & set(texts["validation"])
    assert not set(texts["validation"]) & set(texts["test"])
    assert manifest["dropped_duplicates"] == {"train": {"test": 30}}
    # Copies travel together, and the carve stays stratified.
    assert all(Counter(texts[s]).most_common()[-1][1] == 3 for s in ("train", "validation"))
    assert manifest["splits"]["validation"]["rows"] == 120
    assert manifest["splits"]["validation"]["labels"] == {"a": 60, "b": 60}


def test_prepare_command_prints_the_dropped_duplicates(config, project_dir, tmp_path, capsys):
    from nsmc_sentiment_classifier import cli

    folder = tmp_path / "data"
    folder.mkdir()
    names = config.data.label_names
    rows = [{**text_cells(config, f"문장 {i}"), **label_cells(config, i % len(names))} for i in range(100)]
    io.write_jsonl(folder / "train.jsonl", rows)
    io.write_jsonl(
        folder / "test.jsonl", rows[:7] + [{**text_cells(config, "새 문장"), **label_cells(config, 0)}]
    )
    assert cli.main(["data", "prepare", "--source", str(folder), "--out", str(tmp_path / "out")]) == 0
    what = "pair" if config.data.pair_column else "text"
    assert f"dropped 7 train rows whose {what} is also in the test split" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))
    assert manifest["dropped_duplicates"] == {"train": {"test": 7}}
