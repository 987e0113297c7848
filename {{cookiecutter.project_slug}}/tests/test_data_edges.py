"""Data files as people really have them: odd Unicode, big files, no header, spreadsheet
exports, numeric label names."""

from __future__ import annotations

import json
import logging
import time

import pytest

from nsmc_sentiment_classifier.data import examples, io, validate
from nsmc_sentiment_classifier.label_schemes import (
    label_values as labels,
)

# Characters str.splitlines() treats as line ends although they are no line ends in a data file.
LINE_BREAKS_INSIDE_TEXT = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]
TEXTS = [f"앞{char}뒤 {index}" for index, char in enumerate(LINE_BREAKS_INSIDE_TEXT)]


# 1. Unicode line breaks inside texts


def test_jsonl_round_trip_keeps_unicode_line_breaks(tmp_path):
    path = tmp_path / "d.jsonl"
    io.write_jsonl(path, ({"text": text, "label": 1} for text in TEXTS))
    table = io.read_table(path)
    assert [row.values["text"] for row in table.rows] == TEXTS
    assert [row.line for row in table.rows] == list(range(1, len(TEXTS) + 1))
    # Escaped on disk, so readers that split on every Unicode line end see one record per line.
    written = path.read_text(encoding="utf-8")
    assert not any(char in written for char in ("\u2028", "\u2029", "\x85"))
    assert [json.loads(line)["text"] for line in written.splitlines()] == TEXTS


def test_jsonl_reader_accepts_unescaped_unicode_line_breaks(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"text": text, "label": 0}, ensure_ascii=False) for text in TEXTS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    table = io.read_table(path)
    assert [row.values["text"] for row in table.rows] == TEXTS
    assert [row.line for row in table.rows] == list(range(1, len(TEXTS) + 1))


@pytest.mark.parametrize("suffix,delimiter", [(".csv", ","), (".tsv", "\t")])
def test_delimited_files_keep_unicode_line_breaks_and_line_numbers(tmp_path, suffix, delimiter):
    path = tmp_path / f"d{suffix}"
    body = [f"text{delimiter}label"]
    body += [f"{text}{delimiter}1" for text in TEXTS]
    body += [f'"두 줄\r\n{TEXTS[0]}"{delimiter}0', f"끝{delimiter}1"]
    path.write_bytes(("\r\n".join(body) + "\r\n").encode("utf-8"))
    table = io.read_table(path)
    assert [row.values["text"] for row in table.rows] == [*TEXTS, f"두 줄\r\n{TEXTS[0]}", "끝"]
    count = len(TEXTS)
    assert [row.line for row in table.rows] == [*range(2, count + 2), count + 2, count + 4]


def test_inference_jsonlines_request_keeps_unicode_line_breaks():
    from nsmc_sentiment_classifier.serving import inference

    body = "".join(json.dumps({"inputs": text}, ensure_ascii=False) + "\r\n" for text in TEXTS)
    assert inference.input_fn(body.encode("utf-8"), "application/jsonlines").texts == TEXTS


# 2. Streaming


def write_large_tsv(path, count=55_000, bad_last_line=False):
    lines = ["label\ttext"] + [f"{index % 7}\t리뷰 {index} 정말 재밌어요" for index in range(count)]
    if bad_last_line:
        lines.append("3\ttoo\tmany")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_iter_rows_streams_a_large_file_quickly(tmp_path):
    path = write_large_tsv(tmp_path / "big.tsv")
    started = time.perf_counter()
    reader = io.RowReader(path)
    assert reader.columns == ["label", "text"] and reader.encoding == "utf-8-sig"
    count = sum(1 for _ in reader)
    loaded = examples.load_examples(path, "text", "label", [str(n) + "x" for n in range(7)])
    report = validate.validate_file(path, "text", "label", [str(n) + "x" for n in range(7)])
    assert count == len(loaded) == report.rows == 55_000
    assert report.ok and report.class_counts["0x"] == 7858
    assert time.perf_counter() - started < 10


def test_iter_rows_yields_rows_before_reaching_a_bad_line(tmp_path):
    path = write_large_tsv(tmp_path / "big.tsv", count=1000, bad_last_line=True)
    reader = io.RowReader(path)
    first = next(reader)
    assert first.line == 2 and first.values == {"label": "0", "text": "리뷰 0 정말 재밌어요"}
    assert next(reader).line == 3
    with pytest.raises(io.DataFormatError, match=r"big.tsv: line 1002: expected 2 fields"):
        list(reader)
    assert [row.line for row in io.read_table(path, limit=3).rows] == [2, 3, 4]


def test_iter_rows_knows_jsonl_columns_before_iterating(tmp_path):
    path = tmp_path / "d.jsonl"
    io.write_jsonl(path, [{"text": "가", "label": 0}, {"text": "나", "label": 1, "extra": True}])
    reader = io.RowReader(path)
    assert reader.columns == ["text", "label"]
    assert [row.line for row in reader] == [1, 2]
    assert reader.columns == ["text", "label", "extra"]


# 3. Files without a header row


def test_headerless_3i4k_style_file_is_explained(tmp_path):
    path = tmp_path / "fci_train_val.txt"
    path.write_text("0\t어디 가세요\n1\t문 좀 닫아 줘\n", encoding="utf-8")
    names = ["fragment", "statement", "question"]
    with pytest.raises(io.DataFormatError) as caught:
        examples.load_examples(path, "text", "label", names)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "missing column(s) 'text', 'label'" in message
    assert "seems to have no header row" in message
    assert "`label<TAB>text`" in message and "set text_column/label_column" in message
    report = validate.validate_file(path, "text", "label", names)
    assert not report.ok and "no header row" in report.render()


def test_headerless_csv_suggests_a_header_in_its_own_delimiter(tmp_path):
    path = tmp_path / "ratings.csv"
    message = io.missing_columns_message(
        path, ["9976970", "아 더빙.. 진짜 짜증나네요 목소리", "0"], ("document", "label"), ["neg", "pos"]
    )
    assert "no header row" in message and "`column1,document,label`" in message
    assert "comma-separated" in message


def test_a_real_header_with_other_names_is_not_called_headerless(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("review\tstars\n좋다\t1\n", encoding="utf-8")
    with pytest.raises(io.DataFormatError) as caught:
        examples.load_examples(path, "document", "label", ["neg", "pos"])
    message = str(caught.value)
    assert "column(s) 'document', 'label' not found; the file has 'review', 'stars'" in message
    assert "no header row" not in message


# 4. Spreadsheet exports


def test_empty_trailing_header_columns_are_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "excel.csv"
    path.write_text("text,label,,,\r\n좋다,1,,,\r\n나쁘다,0,,\r\n", encoding="utf-8")
    table = io.read_table(path)
    assert table.columns == ["text", "label"]
    assert [row.values for row in table.rows] == [
        {"text": "좋다", "label": "1"},
        {"text": "나쁘다", "label": "0"},
    ]
    assert len(table.warnings) == 1 and "excel.csv: line 1" in table.warnings[0]
    assert "3 unnamed empty column(s)" in table.warnings[0]
    with caplog.at_level(logging.WARNING):
        loaded = examples.load_examples(path, "text", "label", ["neg", "pos"])
    assert [e.label for e in loaded] == [1, 0]
    assert "unnamed empty column(s)" in caplog.text
    report = validate.validate_file(path, "text", "label", ["neg", "pos"])
    assert report.ok and any("unnamed empty column(s)" in f.message for f in report.warnings)


def test_a_value_under_an_unnamed_column_is_still_an_error(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("text,label,,\n좋다,1,,oops\n", encoding="utf-8")
    with pytest.raises(io.DataFormatError, match=r"excel.csv: line 2: expected 2 fields"):
        io.read_table(path)


@pytest.mark.parametrize(
    "name,header,record,blank",
    [
        ("d.csv", "id,text,label,note", "1,좋다,1,x", ",,,"),
        ("d.tsv", "text\tlabel\tnote", "좋다\t1\tx", "\t\t"),
    ],
)
def test_rows_of_empty_cells_are_skipped_with_a_warning(tmp_path, name, header, record, blank):
    path = tmp_path / name
    blank_lines = (3, 5, 6, 7, 8, 9, 11)
    lines = [header] + [blank if number in blank_lines else record for number in range(2, 12)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = io.read_table(path)
    assert [row.line for row in table.rows] == [2, 4, 10]
    assert all(row.values["label"] == "1" for row in table.rows)
    assert table.warnings == [
        f"{path}: skipped 7 row(s) whose fields are all empty (lines 3, 5, 6, 7, 8 and 2 more), "
        "as spreadsheet exports often leave"
    ]
    report = validate.validate_file(path, "text", "label", ["neg", "pos"])
    assert report.ok, report.render()
    assert report.rows == 3 and report.class_counts == {"neg": 0, "pos": 3}
    assert any("skipped 7 row(s)" in finding.message for finding in report.warnings)
    assert [e.label for e in examples.load_examples(path, "text", "label", ["neg", "pos"])] == [1, 1, 1]


# 5. Label values decided per file


STARS = ["1", "2", "3", "4", "5"]


def write_stars(path, values):
    path.write_text(
        "text,stars\n" + "".join(f"리뷰 {i},{v}\n" for i, v in enumerate(values)), encoding="utf-8"
    )
    return path


def test_ids_with_numeric_label_names_keep_every_class_apart(tmp_path):
    """Regression: "1" once matched the name "1" (id 0) while "0" was id 0, merging two classes."""
    path = write_stars(tmp_path / "d.csv", ["0", "1", "2", "3", "4"])
    assert [e.label for e in examples.load_examples(path, "text", "stars", STARS)] == [0, 1, 2, 3, 4]
    assert labels.decide_format(["0", "1", "2", "3", "4"], STARS) == "ids"
    report = validate.validate_file(path, "text", "stars", STARS)
    assert report.ok and report.class_counts == dict.fromkeys(STARS, 1)


def test_numeric_label_names_written_as_names(tmp_path):
    path = write_stars(tmp_path / "d.csv", ["1", "2", "3", "4", "5", "5"])
    assert [e.label for e in examples.load_examples(path, "text", "stars", STARS)] == [0, 1, 2, 3, 4, 4]


def test_values_readable_both_ways_are_an_error_with_the_fix(tmp_path):
    path = write_stars(tmp_path / "d.csv", ["1", "2", "3", "4"])
    with pytest.raises(labels.AmbiguousLabelsError) as caught:
        labels.decide_format(["1", "2", "3", "4"], STARS)
    message = str(caught.value)
    assert "label names are numbers" in message and "either as label ids or as label names" in message
    assert "'1star'" in message and 'label_format = "ids" or "names"' in message
    with pytest.raises(io.DataFormatError, match=r"d.csv: column 'stars': the label names are numbers"):
        examples.load_examples(path, "text", "stars", STARS)
    report = validate.validate_file(path, "text", "stars", STARS)
    assert not report.ok and "label names are numbers" in report.render()
    # The setting decides.
    as_ids = examples.load_examples(path, "text", "stars", STARS, label_format="ids")
    as_names = examples.load_examples(path, "text", "stars", STARS, label_format="names")
    assert [e.label for e in as_ids] == [1, 2, 3, 4] and [e.label for e in as_names] == [0, 1, 2, 3]
    assert validate.validate_file(path, "text", "stars", STARS, label_format="names").ok


def test_label_format_allows_only_its_reading(tmp_path):
    path = write_stars(tmp_path / "d.csv", ["0", "1"])
    with pytest.raises(io.DataFormatError, match=r"d.csv: line 2: column 'stars': .*'0' \(line 2\)"):
        examples.load_examples(path, "text", "stars", STARS, label_format="names")
    assert labels.LabelMap(STARS, "names").label_format == "names"
    assert labels.decide_format([0, 1.0, "2", " 3 "], STARS, "ids") == "ids"


def test_mixed_ids_and_names_are_an_error_naming_the_values(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n좋다,1\n나쁘다,negative\n최고,positive\n", encoding="utf-8")
    with pytest.raises(labels.MixedLabelsError, match=r"ids \('1' \(line 2\)\) and label names"):
        labels.decide_format({"1": 2, "negative": 3, "positive": 4}, ["negative", "positive"])
    with pytest.raises(io.DataFormatError, match=r"d.csv: column 'label': the label values mix"):
        examples.load_examples(path, "text", "label", ["negative", "positive"])


def test_unknown_values_are_named_with_their_first_lines():
    with pytest.raises(labels.UnknownLabelsError) as caught:
        labels.decide_format({"1": 2, "bad": 7, "2": 3}, ["negative", "positive"])
    message = str(caught.value)
    assert "'2' (line 3), 'bad' (line 7)" in message and "Labels found: '1', '2', 'bad'" in message
    assert "0 or 'negative', 1 or 'positive'" in message
    assert caught.value.first_line == 3


def test_label_map_alone_refuses_a_value_that_reads_two_ways():
    with pytest.raises(labels.AmbiguousLabelsError, match="label_format"):
        labels.LabelMap(STARS).to_id("2")
    assert labels.LabelMap(STARS, "ids").to_id("2") == 2
    assert labels.LabelMap(STARS, "names").to_id(2) == 1
