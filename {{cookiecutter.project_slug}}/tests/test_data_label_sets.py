"""Multi-label data: label sets read from a delimited cell, a JSON list or 0/1 columns, their
errors, `data validate`'s label-set statistics, and `data prepare`'s iterative stratification."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics

import pytest

from nsmc_sentiment_classifier import label_schemes
from nsmc_sentiment_classifier.data import (
    examples,
    io,
    prepare,
    stratify,
    subset,
    validate,
)
from nsmc_sentiment_classifier.errors import DataFormatError

NAMES = ("hate", "offensive", "gender", "others")
MULTI = label_schemes.for_project("multi_label", "|")


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def labels_of(path, layout="column", label_format="auto", scheme=MULTI, column="labels"):
    loaded = examples.load_examples(
        path, "text", column, NAMES, scheme=scheme, label_layout=layout, label_format=label_format
    )
    return [example.label for example in loaded]


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited_cells_are_label_sets(tmp_path, suffix, sep):
    rows = [
        "text" + sep + "labels",
        f"a{sep}hate|gender",
        f"b{sep}",
        f"c{sep}Others | hate ",
        f"d{sep}gender|gender",
    ]
    path = write(tmp_path / f"d{suffix}", "\n".join(rows) + "\n")
    # Sorted, unique ids; an empty cell is a row without a label, kept.
    assert labels_of(path) == [(0, 2), (), (0, 3), (2,)]


def test_other_delimiter_is_the_schemes(tmp_path):
    path = write(tmp_path / "d.csv", 'text,labels\na,"hate,others"\n')
    assert labels_of(path, scheme=label_schemes.for_project("multi_label", ",")) == [(0, 3)]


def test_json_lists_of_names_or_ids(tmp_path):
    path = tmp_path / "d.jsonl"
    io.write_jsonl(
        path,
        [
            {"text": "a", "labels": ["hate", "gender"]},
            {"text": "b", "labels": []},
            {"text": "c", "labels": None},
            {"text": "d", "labels": ["offensive"]},
        ],
    )
    assert labels_of(path) == [(0, 2), (), (), (1,)]
    io.write_jsonl(path, [{"text": "a", "labels": [2, 0]}, {"text": "b", "labels": [3]}])
    assert labels_of(path) == [(0, 2), (3,)]
    assert labels_of(path, label_format="ids") == [(0, 2), (3,)]


def test_zero_one_columns_in_every_spelling(tmp_path):
    path = write(
        tmp_path / "d.csv",
        "text,hate,offensive,gender,others\na,1,0,1,0\nb,true,false,False,TRUE\nc,1.0,0.0,0,0\nd,0,0,0,0\n",
    )
    assert labels_of(path, layout="columns") == [(0, 2), (0, 3), (0,), ()]
    jsonl = tmp_path / "d.jsonl"
    io.write_jsonl(jsonl, [{"text": "a", "hate": True, "offensive": 0, "gender": 1.0, "others": "0"}])
    assert labels_of(jsonl, layout="columns") == [(0, 2)]


def test_single_label_reading_is_unchanged(tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,hate\nb,2\n")
    with pytest.raises(DataFormatError, match="mix label ids"):
        labels_of(path, scheme=label_schemes.get())
    path = write(tmp_path / "d.csv", "text,labels\na,hate\nb,gender\n")
    assert labels_of(path, scheme=label_schemes.get()) == [0, 2]


def test_unknown_label_in_a_cell_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,hate\nb,hate|racism\n")
    with pytest.raises(DataFormatError) as caught:
        labels_of(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 3: column 'labels': ") and "'racism' (line 3)" in message


def test_missing_delimiter_is_explained(tmp_path):
    path = write(tmp_path / "d.csv", 'text,labels\na,"hate,gender"\n')
    with pytest.raises(DataFormatError) as caught:
        labels_of(path)
    assert "The label delimiter '|' occurs in no cell (the cells contain ',')" in str(caught.value)


def test_bad_zero_one_value_names_file_line_column_and_value(tmp_path):
    path = write(tmp_path / "d.csv", "text,hate,offensive,gender,others\na,1,0,0,0\nb,0,2,0,0\n")
    with pytest.raises(DataFormatError) as caught:
        labels_of(path, layout="columns")
    assert str(caught.value) == (
        f"{path}: line 3: column 'offensive' must hold 0 or 1 (or true/false), got '2'"
    )


def test_missing_label_column_in_columns_layout(tmp_path):
    path = write(tmp_path / "d.csv", "text,hate,offensive,gender\na,1,0,0\n")
    with pytest.raises(DataFormatError, match="missing column\\(s\\) 'others' not found"):
        labels_of(path, layout="columns")


def test_columns_layout_needs_multi_label(tmp_path):
    path = write(tmp_path / "d.csv", "text,hate,offensive,gender,others\na,1,0,0,0\n")
    with pytest.raises(DataFormatError, match='needs task = "multi_label"'):
        labels_of(path, layout="columns", scheme=label_schemes.get())
    with pytest.raises(ValueError, match="label_layout must be one of column, columns, got 'rows'"):
        labels_of(path, layout="rows")


# `data validate`


def test_validate_reports_label_set_statistics(tmp_path):
    path = write(
        tmp_path / "d.tsv",
        "text\tlabels\na\thate|gender\nb\t\nc\thate|gender|others\nd\toffensive\ne\thate|others\n",
    )
    report = validate.validate_file(path, "text", "labels", NAMES, scheme=MULTI)
    assert report.ok, report.render()
    assert report.class_counts == {"hate": 3, "offensive": 1, "gender": 2, "others": 2}
    assert report.rows_without_label == 1
    assert report.labels_per_row == {"mean": 1.6, "max": 3, "distribution": {0: 1, 1: 1, 2: 2, 3: 1}}
    assert report.label_pairs == [
        {"labels": ["hate", "gender"], "rows": 2},
        {"labels": ["hate", "others"], "rows": 2},
        {"labels": ["gender", "others"], "rows": 1},
    ]
    text = report.render()
    assert "rows holding each label:" in text and "  hate                        3   60.0%" in text
    assert "rows without a label: 1 (20.0%)" in text
    assert "labels per row: mean 1.60 (rows by label count: 0: 1, 1: 1, 2: 2, 3: 1)" in text
    assert "labels most often together: hate+gender 2, hate+others 2, gender+others 1" in text
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["rows_without_label"] == 1 and as_json["label_pairs"][0]["rows"] == 2
    assert as_json["labels_per_row"]["distribution"] == {"0": 1, "1": 1, "2": 2, "3": 1}


def test_validate_single_label_report_has_no_label_set_keys(tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,hate\nb,gender\n")
    report = validate.validate_file(path, "text", "labels", NAMES)
    assert "rows_without_label" not in report.to_dict() and "class balance:" in report.render()


def test_validate_unknown_label_lists_every_row(tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,hate\nb,racism|hate\nc,gender\nd,racism\n")
    report = validate.validate_file(path, "text", "labels", NAMES, scheme=MULTI)
    [error] = report.errors
    assert error.lines == [3, 5] and "column 'labels'" in error.message and "'racism'" in error.message


def test_validate_zero_one_columns(tmp_path):
    path = write(tmp_path / "d.csv", "text,hate,offensive,gender,others\na,1,0,1,0\nb,0,0,0,0\nc,0,x,0,0\n")
    report = validate.validate_file(path, "text", "labels", NAMES, scheme=MULTI, label_layout="columns")
    [error] = report.errors
    assert error.lines == [4]
    assert "column 'offensive' must hold 0 or 1 (or true/false), got 'x'" in error.message
    assert report.class_counts == {"hate": 1, "offensive": 0, "gender": 1, "others": 0}
    assert report.rows_without_label == 1
    assert [w.message for w in report.warnings] == [
        "label 'offensive' has no rows",
        "label 'others' has no rows",
    ]


def test_validate_conflicting_label_sets_of_one_text(tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,hate|gender\na,gender|hate\nb,hate\nb,hate|others\n")
    report = validate.validate_file(path, "text", "labels", NAMES, scheme=MULTI)
    conflicting = [w for w in report.warnings if "conflicting" in w.message]
    assert [w.lines for w in conflicting] == [[4, 5]]


# `data prepare`


def multi_section(config, source, layout="column", **changes):
    return dataclasses.replace(
        config.data,
        source=str(source),
        text_column="text",
        label_column="labels",
        label_names=NAMES,
        label_format="auto",
        task="multi_label",
        label_layout=layout,
        label_delimiter="|",
        **changes,
    )


def random_label_sets(count, seed):
    rng = random.Random(seed)
    shares = (0.4, 0.25, 0.15, 0.05)
    return [tuple(i for i, share in enumerate(shares) if rng.random() < share) for _ in range(count)]


def test_prepare_stratifies_label_sets_and_reads_back(config, tmp_path):
    sets = random_label_sets(1000, seed=3)
    path = tmp_path / "d.tsv"
    cells = ["|".join(NAMES[i] for i in target) for target in sets]
    write(path, "text\tlabels\n" + "".join(f"문장 {i}\t{cell}\n" for i, cell in enumerate(cells)))
    section = multi_section(config, path)
    manifest = prepare.prepare(section, tmp_path / "out")
    splits = manifest["splits"]
    assert {s: info["rows"] for s, info in splits.items()} == {"train": 800, "validation": 100, "test": 100}
    assert manifest["task"] == "multi_label" and manifest["label_layout"] == "column"
    for name_index, name in enumerate(NAMES):
        total = sum(name_index in target for target in sets)
        for split, info in splits.items():
            # Each label's share per split within 1.5 percentage points of its share overall.
            assert abs(info["labels"][name] / info["rows"] - total / 1000) < 0.015, (split, name)
    assert sum(info["rows_without_label"] for info in splits.values()) == sum(not t for t in sets)
    record = json.loads((tmp_path / "out/train/train.jsonl").read_text(encoding="utf-8").split("\n")[0])
    assert set(record) == {"text", "labels"} and isinstance(record["labels"], list)
    by_text = dict(zip((f"문장 {i}" for i in range(1000)), sets, strict=True))
    for split in splits:
        back = examples.load_examples(
            tmp_path / "out" / split, "text", "labels", NAMES, label_format="ids", scheme=MULTI
        )
        assert len(back) == splits[split]["rows"]
        assert all(example.label == by_text[example.text] for example in back)
    again = prepare.prepare(section, tmp_path / "again")
    assert again["splits"] == manifest["splits"]
    for split in splits:
        first = (tmp_path / "out" / split / f"{split}.jsonl").read_bytes()
        assert first == (tmp_path / "again" / split / f"{split}.jsonl").read_bytes()


def test_prepare_zero_one_columns_keeps_the_layout(config, tmp_path):
    sets = random_label_sets(200, seed=5)
    path = tmp_path / "d.csv"
    rows = [f"문장 {i}," + ",".join(str(int(j in target)) for j in range(4)) for i, target in enumerate(sets)]
    write(path, "text," + ",".join(NAMES) + "\n" + "\n".join(rows) + "\n")
    section = multi_section(config, path, layout="columns")
    manifest = prepare.prepare(section, tmp_path / "out")
    record = json.loads((tmp_path / "out/test/test.jsonl").read_text(encoding="utf-8").split("\n")[0])
    assert set(record) == {"text", *NAMES} and set(record.values()) - {record["text"]} <= {0, 1}
    by_text = dict(zip((f"문장 {i}" for i in range(200)), sets, strict=True))
    for split, info in manifest["splits"].items():
        back = examples.load_examples(
            tmp_path / "out" / split,
            "text",
            "labels",
            NAMES,
            label_format="ids",
            scheme=MULTI,
            label_layout="columns",
        )
        assert len(back) == info["rows"] and all(e.label == by_text[e.text] for e in back)
        counts = MULTI.label_counts((e.label for e in back), len(NAMES))
        assert info["labels"] == dict(zip(NAMES, counts, strict=True))


def test_prepare_keeps_copies_of_a_text_together_with_their_most_common_set(config, tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"text": f"문장 {i}", "labels": [NAMES[i % 4]]} for i in range(100) for _ in range(3)]
    rows[1]["labels"] = ["hate", "others"]  # one copy disagrees: the text's set is its copies' most common
    io.write_jsonl(path, rows)
    prepare.prepare(multi_section(config, path), tmp_path / "out")
    texts = {
        split: [json.loads(line)["text"] for line in (tmp_path / "out" / split / f"{split}.jsonl").open()]
        for split in ("train", "validation", "test")
    }
    assert not set(texts["train"]) & set(texts["test"]) and not set(texts["validation"]) & set(texts["test"])
    assert {len(texts[split]) for split in ("validation", "test")} == {30}


def test_prepare_too_few_texts_to_carve_is_explained(config, tmp_path):
    path = write(tmp_path / "d.csv", "text,labels\na,hate\nb,gender\n")
    with pytest.raises(DataFormatError, match="cannot carve a test split of 10% from 2 distinct texts"):
        prepare.prepare(multi_section(config, path), tmp_path / "out")


def test_prepare_command_prints_rows_without_label(config, tmp_path, monkeypatch, capsys):
    from nsmc_sentiment_classifier.data import commands

    path = write(
        tmp_path / "d.csv", "text,labels\n" + "".join(f"t{i},{'hate' if i % 2 else ''}\n" for i in range(40))
    )
    section = multi_section(config, path)
    monkeypatch.setattr(commands, "load_config", lambda _: dataclasses.replace(config, data=section))
    args = type("Args", (), {"config": None, "out": tmp_path / "out", "source": None})()
    assert commands.run_prepare(args) == 0
    assert (
        "train           32 rows  {'hate': 16, 'offensive': 0, 'gender': 0, 'others': 0}  without a label: 16"
        in (capsys.readouterr().out)
    )


# Iterative stratification, as a property of thousands of random label matrices.


def test_iterative_stratification_properties():
    rng = random.Random(2011)
    deviations = []
    for case in range(2000):
        rows, labels = rng.randint(1, 120), rng.randint(1, 6)
        shares = [rng.random() * 0.6 for _ in range(labels)]
        targets = [tuple(j for j in range(labels) if rng.random() < shares[j]) for _ in range(rows)]
        fraction = rng.choice((0.1, 0.2, 1 / 3, 0.5))
        chosen = stratify.iterative_split(targets, fraction, seed=case)
        # Every row in exactly one split; the split's size is the nearest whole row count.
        assert chosen == sorted(set(chosen)) and all(0 <= i < rows for i in chosen)
        assert abs(len(chosen) - rows * fraction) <= 0.5 + 1e-9
        assert chosen == stratify.iterative_split(targets, fraction, seed=case)  # deterministic
        picked = set(chosen)
        for label in range(labels):
            holding = [i for i, target in enumerate(targets) if label in target]
            if len(holding) >= 30:
                share = sum(i in picked for i in holding) / len(holding)
                deviations.append(abs(share - fraction))
                assert abs(share - fraction) < 0.15, (case, label)
    # Typically far closer than a random split's (which is off by ~6 points at 30 rows).
    assert statistics.fmean(deviations) < 0.01


def test_assign_gives_every_split_its_exact_size():
    targets = [(0,)] * 50 + [(1,)] * 7 + [()] * 13
    split_of = stratify.assign(targets, [40, 20, 10], seed=1)
    assert [split_of.count(j) for j in range(3)] == [40, 20, 10]
    with pytest.raises(ValueError, match=r"split sizes \[1, 2\] do not add up to 70 rows"):
        stratify.assign(targets, [1, 2], seed=1)


def test_dev_subset_of_label_sets_is_stratified_and_seeded():
    sets = random_label_sets(1000, seed=9)
    chosen = subset.dev_subset(sets, 0.2, seed=1)
    assert len(chosen) == 200 and chosen == subset.dev_subset(sets, 0.2, seed=1)
    for label in range(4):
        total = sum(label in target for target in sets)
        assert abs(sum(label in sets[i] for i in chosen) - total * 0.2) <= 2
    assert len(subset.dev_subset(sets[:5], 0.01, seed=1)) == 1
    with pytest.raises(ValueError, match="labels mix label ids and label sets"):
        subset.dev_subset([0, (1,)], 0.5, seed=1)
