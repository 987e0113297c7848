"""Text pairs (task "text_pair") through data validation, preparation, training and the baseline.

Every test runs in every project: a project generated for another task is turned into a
text-pair one in a scratch copy of its config.toml (``pair_project``), with its own columns and
label names and a second text column.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import label_cells, labelled_records, read_jsonl, text_cells, train_briefly, write_labelled

from nsmc_sentiment_classifier import baseline
from nsmc_sentiment_classifier.config import (
    ProjectConfig,
    load_config,
)
from nsmc_sentiment_classifier.data import io, prepare, validate
from nsmc_sentiment_classifier.data.examples import (
    Example,
    load_examples,
)
from nsmc_sentiment_classifier.data.subset import dev_subset

# The second text's column where the project was generated for another task.
SECOND = "second_text"


@pytest.fixture
def pair_project(project_dir: Path, config: ProjectConfig) -> ProjectConfig:
    """The scratch project's config as a text-pair project (the generated one where it is one)."""
    path = project_dir / "config.toml"
    if not config.data.pair_column:
        text = path.read_text("utf-8")
        # One label per pair: a single-label layout and checkpoint metric.
        for key, value in (
            ("task", "text_pair"),
            ("text_pair_column", SECOND),
            ("label_layout", "column"),
            ("metric_for_best_model", "accuracy"),
        ):
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", text)
        path.write_text(text, "utf-8")
    pair_config = load_config(path)
    assert pair_config.data.pair_column and pair_config.data.task == "text_pair"
    return pair_config


# -- data validate -----------------------------------------------------------------------------

LONG = "아주 긴 리뷰 " * 150  # over validate.VERY_LONG_CHARS


def write_pair_file(path: Path) -> Path:
    rows = [
        ("좋은 영화", "재밌다", "1"),  # line 2
        ("좋은 영화", "재밌다", "1"),  # line 3: the pair of line 2 again
        ("좋은 영화", "지루하다", "0"),  # line 4: the same first text, another pair
        ("", "재밌다", "1"),  # line 5: the first text empty
        ("별로", "  ", "0"),  # line 6: the second text empty
        (" ", "", "0"),  # line 7: both empty, skipped as an empty text is
        ("같은 말", "같은 말", "1"),  # line 8: the two texts are the same
        ("ㅋ", "좋다", "1"),  # line 9: a very short first text
        ("좋다", LONG, "0"),  # line 10: a very long second text
    ]
    path.write_text("a\tb\ty\n" + "".join(f"{a}\t{b}\t{y}\n" for a, b, y in rows), encoding="utf-8")
    return path


def test_validate_reports_both_texts_of_a_pair_with_line_numbers(tmp_path):
    path = write_pair_file(tmp_path / "pairs.tsv")
    report = validate.validate_file(path, "a", "y", ["neg", "pos"], text_pair_column="b")
    rendered = report.render()
    assert not report.ok
    # One text of two: an error naming the empty column and the line, as load_examples refuses it.
    assert (
        "ERROR: 1 row(s) with an empty 'a' beside a text in 'b': every row of a text-pair dataset "
        "needs both texts; fill it or remove the row (lines 5)"
    ) in rendered
    assert "ERROR: 1 row(s) with an empty 'b' beside a text in 'a'" in rendered and "(lines 6)" in rendered
    with pytest.raises(Exception, match=r"line 5: column 'a' is empty"):
        load_examples(path, "a", "y", ["neg", "pos"], text_pair_column="b")
    empty = "WARNING: 1 row(s) with both texts empty or whitespace-only (dropped by `data prepare`) (lines 7)"
    assert empty in rendered
    assert "WARNING: 1 row(s) whose 'a' is very short (under 2 characters) (lines 9)" in rendered
    assert "WARNING: 1 row(s) whose 'b' is very long (over 1000 characters" in rendered
    assert "cuts it first) (lines 10)" in rendered
    assert "WARNING: 1 pair(s) whose two texts are identical (lines 8)" in rendered
    # Duplicates are duplicate pairs: line 4 shares only its first text with lines 2 and 3.
    assert "WARNING: 1 duplicate pair(s) in 1 group(s) (lines 3)" in rendered
    assert "'a' text length (chars): min 1" in rendered and "'b' text length (chars):" in rendered
    assert report.class_counts == {"neg": 4, "pos": 5}
    assert report.length_stats["max"] == 5 and report.pair_length_stats["max"] == len(LONG)

    data = report.to_dict()
    assert data["text_columns"] == ["a", "b"]
    assert data["text_length_chars"]["min"] == 1 and data["text_pair_length_chars"]["max"] == len(LONG)
    assert [f["lines"] for f in data["errors"]] == [[5], [6]]


def test_one_text_reports_keep_their_form(tmp_path):
    """Without a pair column nothing of the pair report shows: no per-column lengths or pair
    findings, and a one-text file's wording is unchanged."""
    path = tmp_path / "d.csv"
    path.write_text("text,label\n좋다,1\n좋다,1\nㅋ,0\n", encoding="utf-8")
    report = validate.validate_file(path, "text", "label", ["neg", "pos"])
    assert "1 duplicate text(s) in 1 group(s)" in report.render()
    assert "very short" not in report.render() and "text_columns" not in report.to_dict()
    assert report.render().count("text length (chars)") == 1


def test_validate_of_a_pair_file_missing_its_second_column_names_the_answer(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n좋다,1\n", encoding="utf-8")
    report = validate.validate_file(path, "a", "y", ["neg", "pos"], text_pair_column="b")
    assert "missing column(s) 'b' not found" in report.render()
    assert "set text_column/text_pair_column/label_column to its names" in report.render()


def test_a_header_less_pair_file_gets_a_header_with_both_text_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("정말 재미있는 영화였다,아주 지루한 영화였다,1\n", encoding="utf-8")
    report = validate.validate_file(path, "a", "y", ["0", "1"], text_pair_column="b")
    rendered = report.render()
    assert "seems to have no header row" in rendered
    assert "`a,b,y`" in rendered
    assert "set text_column/text_pair_column/label_column to the names of the two text columns" in rendered


def test_data_validate_command_reports_pairs_as_text_and_json(pair_project, project_dir, capsys):
    from nsmc_sentiment_classifier import cli

    data = pair_project.data
    first, second = data.text_columns
    records = labelled_records(pair_project, 6)
    path = write_labelled(project_dir / "pairs.csv", pair_project, records)
    # Line 8: a copy of line 2's pair; line 9: the second text alone.
    with open(path, "a", encoding="utf-8", newline="") as handle:
        values = {**text_cells(pair_project, records[0][0]), **label_cells(pair_project, records[0][1])}
        writer = csv.writer(handle)
        writer.writerow([7, *values.values()])
        writer.writerow([8, "", "혼자 남은 글", values[data.label_column]])
    report_path = project_dir / "report.json"
    assert cli.main(["data", "validate", str(path), "--json", str(report_path)]) == 1
    out = capsys.readouterr().out
    assert f"1 row(s) with an empty {first!r} beside a text in {second!r}" in out and "(lines 9)" in out
    assert "1 duplicate pair(s) in 1 group(s) (lines 8)" in out
    assert f"{first!r} text length (chars)" in out and f"{second!r} text length (chars)" in out
    [report] = json.loads(report_path.read_text("utf-8"))
    assert report["text_columns"] == [first, second]
    assert [error["lines"] for error in report["errors"]] == [[9]]


# -- data prepare and the dev subset -----------------------------------------------------------


def test_prepare_writes_both_texts_and_keeps_each_pair_in_one_split(pair_project, tmp_path):
    data = pair_project.data
    first, second = data.text_columns
    names = data.label_names

    def row(a: str, b: str, label: int) -> dict:
        return {first: a, second: b, **label_cells(pair_project, label)}

    folder = tmp_path / "source"
    folder.mkdir()
    # Train: 60 distinct pairs, each twice; 10 pairs the test split holds too; 10 pairs that share
    # only their first text with a test pair (another pair: not a leak).
    train = [row(f"문장 {i}", f"대답 {i}", i % 2) for i in range(60) for _ in range(2)]
    train += [row(f"시험 {i}", f"답 {i}", i % 2) for i in range(10)]
    train += [row(f"시험 {i}", f"다른 답 {i}", i % 2) for i in range(10)]
    test = [row(f"시험 {i}", f"답 {i}", i % 2) for i in range(20)]
    io.write_jsonl(folder / "train.jsonl", train)
    io.write_jsonl(folder / "test.jsonl", test)
    section = dataclasses.replace(data, source=str(folder), validation_fraction=0.2)
    manifest = prepare.prepare(section, tmp_path / "out")
    assert manifest["task"] == "text_pair" and manifest["text_pair_column"] == second
    assert manifest["dropped_duplicates"] == {"train": {"test": 10}}
    pairs = {}
    for split in ("train", "validation", "test"):
        rows = read_jsonl(tmp_path / "out" / split / f"{split}.jsonl")
        assert all(set(r) == {first, second, data.label_column} for r in rows)
        assert all(r[data.label_column] in range(len(names)) for r in rows)  # label ids
        pairs[split] = [(r[first], r[second]) for r in rows]
    assert not set(pairs["train"]) & set(pairs["test"])
    assert not set(pairs["train"]) & set(pairs["validation"])
    # The pairs sharing a first text with a test pair stay in train or validation.
    kept = set(pairs["train"]) | set(pairs["validation"])
    assert {(f"시험 {i}", f"다른 답 {i}") for i in range(10)} <= kept
    # Copies of a pair travel together into one split.
    for i in range(60):
        pair = (f"문장 {i}", f"대답 {i}")
        assert {pairs[split].count(pair) for split in ("train", "validation")} == {0, 2}


def test_dev_subset_of_pair_examples_keeps_the_pairs():
    examples = [Example(f"글 {i}", i % 2, i + 2, f"짝 {i}") for i in range(40)]
    keep = dev_subset([e.label for e in examples], 0.25, seed=3)
    chosen = [examples[i] for i in keep]
    assert len(chosen) == 10 and sorted(e.label for e in chosen) == [0] * 5 + [1] * 5
    assert all(e.text_pair == f"짝 {e.text.split()[1]}" for e in chosen)
    assert keep == dev_subset([e.label for e in examples], 0.25, seed=3)


# -- tokenising and training -------------------------------------------------------------------


def test_a_pair_is_tokenised_as_two_segments_and_truncated_longest_first(tiny_model_dir):
    from transformers import AutoTokenizer

    from nsmc_sentiment_classifier import label_schemes
    from nsmc_sentiment_classifier.training.data import tokenize

    # Token types, as BERT's and ELECTRA's tokenizers return them (the tiny tokenizer's own
    # inputs are ids and mask only).
    inputs = ["input_ids", "token_type_ids", "attention_mask"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, model_input_names=inputs)
    short, long = "재밌다 좋다", " ".join(["지루한 영화 정말 별로"] * 40)
    examples = [Example(short, 1, 2, long), Example(short, 0, 3, "좋다")]
    split = tokenize("train", examples, tokenizer, 32, label_schemes.get("single_label"), 2)
    truncated, whole = split.features
    assert len(truncated["input_ids"]) == 32
    # Token types tell the two texts apart: 0 for [CLS] a [SEP], 1 for b [SEP].
    alone = tokenizer(short)["input_ids"]  # [CLS] short [SEP]
    types = truncated["token_type_ids"]
    assert types == [0] * len(alone) + [1] * (32 - len(alone))
    # longest_first took every cut token from the long text: the short one is whole.
    assert truncated["input_ids"][: len(alone)] == alone
    # ... and the long one its start, then [SEP].
    kept = 32 - len(alone) - 1
    long_ids = tokenizer(long, add_special_tokens=False)["input_ids"]
    assert truncated["input_ids"][len(alone) : -1] == long_ids[:kept] and len(long_ids) > kept
    # Length grouping sees a pair's length, both texts and their special tokens.
    assert split.lengths == [32, len(tokenizer(short, "좋다")["input_ids"])]
    assert split.lengths[1] > len(alone) and whole["token_type_ids"][-1] == 1
    assert split.texts == [f"{short} [SEP] {long}", f"{short} [SEP] 좋다"]


@pytest.mark.parametrize("entry", ["hf", "torch"])
def test_a_pair_project_trains_and_records_its_two_columns(
    entry, pair_project, project_dir, tiny_model_dir, monkeypatch
):
    import logging

    from mlflow import MlflowClient

    monkeypatch.setattr(logging.root, "handlers", logging.root.handlers[:])
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    store = f"sqlite:///{(project_dir / 'mlflow.db').as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    first, second = pair_project.data.text_columns
    run_dir = train_briefly(
        project_dir, pair_project, tiny_model_dir,
        "--entry", entry, "--max_steps", "2", "--dev_fraction", "0.5", "--report_to", "mlflow",
    )  # fmt: skip
    model_dir = run_dir / "model"
    saved = json.loads((model_dir / "config.json").read_text("utf-8"))
    assert saved["text_pair_columns"] == [first, second]
    assert saved["label_scheme"] == "single_label"

    card = (model_dir / "README.md").read_text("utf-8")
    assert f"It classifies pairs of texts: each pair, a text from `{first}` and one from\n`{second}`" in card
    assert f"| text columns | `{first}`, `{second}` (a pair) |" in card
    assert 'classifier({"text": "first text", "text_pair": "second text"}, truncation=True)' in card
    assert 'tokenizer(texts, text_pairs, truncation="longest_first"' in card
    assert "reading each pair as one text (the two texts joined by a separator token)" in card
    # The dev subset: half of the 32 training rows, stratified (a row more or less with more labels).
    labels = [label for _, label in labelled_records(pair_project, 32)]
    assert f"| train | {len(dev_subset(labels, 0.5, pair_project.options.seed))} |" in card

    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    params = MlflowClient(tracking_uri=store).get_run(record["mlflow_run_id"]).data.params
    assert params["task"] == "text_pair" and params["text_pair_column"] == second


@pytest.fixture
def one_text_project(project_dir: Path, config: ProjectConfig) -> ProjectConfig:
    """The scratch project's config as a one-text project (a text-pair project's as single-label,
    its own labels kept; the generated one where it reads one text)."""
    path = project_dir / "config.toml"
    if config.data.pair_column:
        text = re.sub(r'(?m)^task = "text_pair"$', 'task = "single_label"', path.read_text("utf-8"))
        path.write_text(text, "utf-8")
    one_text = load_config(path)
    assert one_text.data.pair_column is None
    return one_text


def test_a_one_text_model_records_no_pair_columns(tiny_model_dir, project_dir, one_text_project):
    run_dir = train_briefly(
        project_dir, one_text_project, tiny_model_dir, "--max_steps", "1", "--report_to", "none"
    )
    assert "text_pair_columns" not in json.loads((run_dir / "model" / "config.json").read_text("utf-8"))
    card = (run_dir / "model" / "README.md").read_text("utf-8")
    assert "pairs of texts" not in card and "| text columns |" not in card and '"text_pair":' not in card


# -- the baseline ------------------------------------------------------------------------------


def test_the_baseline_reads_a_pair_as_its_joined_texts_fits_and_scores(pair_project, project_dir):
    """The label follows a word of the second text only: the baseline has to read it."""
    data = pair_project.data
    words = ("좋다", "싫다")
    names = data.label_names
    texts = [text for text, _ in labelled_records(pair_project, 120)]
    records = [(text, index % 2) for index, text in enumerate(texts)]
    pairs = [f"{words[label]} 정말 {words[label]}" for _, label in records]
    train = write_labelled(project_dir / "train.jsonl", pair_project, records[:80], pairs=pairs[:80])
    validation_dir = Path(data.prepared_dir) / "validation"
    validation = records[80:100]
    write_labelled(
        validation_dir / "validation.jsonl", pair_project, validation, ids=True, pairs=pairs[80:100]
    )
    splits = baseline.read_splits(train, data.label_format, data)
    assert splits.train[0].text_pair == pairs[0] and len(splits.validation) == 20
    scored = [
        Example(text, label, 1, pair) for (text, label), pair in zip(records[100:], pairs[100:], strict=True)
    ]
    metrics = baseline.evaluate(scored, splits, data.label_scheme, names, seed=1)
    assert metrics["accuracy"] >= 0.9 and metrics["train_rows"] == 80
    # Joined, the pair is one text: the second text's words are features.
    train_texts = [e.joined for e in splits.train]
    fitted = baseline.fit(train_texts, [e.label for e in splits.train], data.label_scheme, len(names))
    assert fitted.predict(["아무 말 [SEP] 좋다 정말 좋다", "아무 말 [SEP] 싫다 정말 싫다"]) == [0, 1]
