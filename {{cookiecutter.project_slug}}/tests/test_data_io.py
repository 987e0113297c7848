"""Readers: formats, encodings, quoting and line numbers."""

from __future__ import annotations

import json

import pytest

from nsmc_sentiment_classifier.data import examples, io
from nsmc_sentiment_classifier.label_schemes import (
    label_values as labels,
)


def test_csv_quoted_fields_crlf_and_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(
        'text,label\r\n"좋아요, 정말",1\r\n"두 줄\r\n리뷰",0\r\n"따옴표 ""인용""",1\r\n'.encode()
    )
    table = io.read_table(path)
    assert [r.values["text"] for r in table.rows] == ["좋아요, 정말", "두 줄\r\n리뷰", '따옴표 "인용"']
    assert [r.line for r in table.rows] == [2, 3, 5]


def test_tsv_with_bom_and_txt_extension(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes("\ufeffid\tdocument\tlabel\n1\t재밌다\t1\n".encode())
    table = io.read_table(path)
    assert table.columns == ["id", "document", "label"]
    assert table.encoding == "utf-8-sig"


def test_cp949_is_detected(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\n최고의 영화,긍정\n".encode("cp949"))
    table = io.read_table(path)
    assert table.encoding == "cp949"
    assert table.rows[0].values["text"] == "최고의 영화"


def test_undecodable_file_names_the_encoding_problem(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nok,1\n\xff\xfe\xfa,0\n")
    with pytest.raises(io.DataFormatError, match=r"bad.csv: line 3: cannot decode.*UTF-8.*CP949"):
        io.read_table(path)


def test_wrong_field_count_names_the_line(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\na\t1\nb\t0\textra\n", encoding="utf-8")
    with pytest.raises(io.DataFormatError, match=r"d.tsv: line 3: expected 2 fields"):
        io.read_table(path)


def test_jsonl_and_bad_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "가", "label": 0}) + "\n\n{broken\n", encoding="utf-8")
    with pytest.raises(io.DataFormatError, match=r"d.jsonl: line 3: invalid JSON"):
        io.read_table(path)


def test_unsupported_extension(tmp_path):
    with pytest.raises(io.DataFormatError, match="unsupported file type '.xlsx'"):
        io.read_table(tmp_path / "d.xlsx")


def test_bundled_sample_keeps_quoted_rows(sample_dir):
    table = io.read_table(sample_dir / "train.tsv")
    assert len(table) == 4000
    assert table.columns == ["id", "document", "label"]
    assert any('"' in row.values["document"] for row in table.rows)


def test_label_map_accepts_ids_and_names():
    label_map = labels.LabelMap(["부정", "긍정"])
    assert [label_map.to_id(v) for v in (0, "1", " 긍정 ", 1.0)] == [0, 1, 1, 1]
    with pytest.raises(labels.LabelError, match=r"'2'.*0='부정', 1='긍정'"):
        label_map.to_id("2")


def test_load_examples_reports_bad_label_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n좋다,1\n나쁘다,3\n", encoding="utf-8")
    with pytest.raises(io.DataFormatError, match=r"d.csv: line 3: column 'label'"):
        examples.load_examples(path, "text", "label", ["neg", "pos"])


def test_load_examples_missing_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("review,label\n좋다,1\n", encoding="utf-8")
    with pytest.raises(io.DataFormatError, match=r"missing column\(s\) 'text'.*'review', 'label'"):
        examples.load_examples(path, "text", "label", ["neg", "pos"])
