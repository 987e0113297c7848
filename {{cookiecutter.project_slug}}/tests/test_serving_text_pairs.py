"""Text pairs in every serving consumer: the wire formats, tokenisation as training does it,
``predict``/``evaluate`` with both columns, the local server and the try-it page.

The pair model is a tiny model that records ``text_pair_columns`` in its config.json, as
training records it for a text-pair project; it runs in every project, whatever its task (a
one-text project's tests name the columns themselves).
"""

from __future__ import annotations

import csv
import dataclasses
import http.client
import io
import json
from pathlib import Path

import pytest
from conftest import build_tiny_model, labelled_records, read_jsonl

from nsmc_sentiment_classifier import cli
from nsmc_sentiment_classifier.data import io as io_module
from nsmc_sentiment_classifier.serving import batch, inference

JSON, CSV, JSONL = "application/json", "text/csv", "application/jsonlines"
LONG = "끝까지 본 내 자신이 대견하다 " * 60


def pair_columns(config) -> list[str]:
    """The project's two text columns, or (a one-text project) two names of its own."""
    if config.data.pair_column is not None:
        return list(config.data.text_columns)
    return ["review_a", "review_b"]


def pair_section(config):
    """The project's [data] section as a text-pair project's (itself, for one)."""
    first, second = pair_columns(config)
    return dataclasses.replace(config.data, task="text_pair", text_column=first, text_pair_column=second)


def build_pair_model(folder: Path, config) -> Path:
    """A tiny model recorded as training records a text-pair one: the project's labels, the
    text-pair task's label scheme (one label per pair, whatever the project's task), and
    ``text_pair_columns``. Its tokenizer gives the second text of a pair token
    type 1, as BERT-style tokenizers do, so the tests see token types reach the model."""
    from tokenizers import Tokenizer, processors
    from transformers import AutoConfig

    texts = [text for text, _ in labelled_records(config, 2000)]
    names = config.data.label_names
    build_tiny_model(folder, texts, len(names), names)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    settings_path = folder / "tokenizer_config.json"
    settings = json.loads(settings_path.read_text("utf-8"))
    settings["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    settings_path.write_text(json.dumps(settings, indent=2), "utf-8")
    model_config = AutoConfig.from_pretrained(folder)
    scheme = pair_section(config).label_scheme
    model_config.problem_type = scheme.problem_type
    for key, value in scheme.model_config().items():
        setattr(model_config, key, value)
    model_config.text_pair_columns = pair_columns(config)
    model_config.save_pretrained(folder)
    return folder


def as_project_file(path: Path, config) -> Path:
    """A labelled file that conftest.write_labelled wrote, as a text-pair project's files are:
    when it lacks the pair column, each row's text is repeated there (an empty text stays an
    empty pair). A one-text project's file, or one that has the column, is left as it is."""
    pair = config.data.pair_column
    table = io_module.read_table(path)
    if pair is None or pair in table.columns:
        return path
    rows = [{**row.values, pair: row.values[config.data.text_column]} for row in table.rows]
    if path.suffix == ".jsonl":
        io_module.write_jsonl(path, rows)
        return path
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, [*table.columns, pair], delimiter="," if path.suffix == ".csv" else "\t"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def pair_model_dir(tmp_path_factory, config) -> Path:
    return build_pair_model(tmp_path_factory.mktemp("tiny-pair-model"), config)


@pytest.fixture(scope="module")
def pair_classifier(pair_model_dir):
    return inference.model_fn(str(pair_model_dir))


@pytest.fixture(scope="module")
def pairs(config) -> list[tuple[str, str]]:
    texts = [text for text, _ in labelled_records(config, 24, offset=4000)]
    found = list(zip(texts[::2], texts[1::2], strict=True))
    # One very long first text, one very long second text, both long.
    return [*found, (LONG, texts[0]), (texts[1], LONG), (LONG, LONG + "끝")]


def reference_scores(classifier, pairs, max_length=None):
    """The model on ``tokenizer(text, text_pair)`` straight from transformers, one pair at a
    time: what the text-classification pipeline computes."""
    import torch

    rows = []
    for text, pair in pairs:
        encoded = classifier.tokenizer(
            text,
            pair,
            truncation="longest_first",
            max_length=max_length or classifier.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = classifier.model(**encoded).logits
        rows.append(torch.softmax(logits, -1)[0].tolist())
    return rows


def as_pairs(pairs):
    return [{"text": text, "text_pair": pair} for text, pair in pairs]


def answer(classifier, body, content_type=JSON, accept=JSON):
    request = inference.input_fn(body.encode("utf-8"), content_type)
    return inference.output_fn(inference.predict_fn(request, classifier), accept)


# --- the wire formats -------------------------------------------------------------------------


def test_the_wire_formats_decode_to_the_same_pairs(pairs):
    shown = pairs[:3]
    expected = ([a for a, _ in shown], [b for _, b in shown])
    listed = inference.input_fn(json.dumps({"inputs": as_pairs(shown)}), JSON)
    lines = "".join(json.dumps({"inputs": item}, ensure_ascii=False) + "\n" for item in as_pairs(shown))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["id", "inputs", "text_pair"], *([n, a, b] for n, (a, b) in enumerate(shown))])
    for request in (listed, inference.input_fn(lines, JSONL), inference.input_fn(buffer.getvalue(), CSV)):
        assert (request.texts, request.pairs) == expected
        assert not request.single
    single = inference.input_fn(json.dumps({"inputs": as_pairs(shown)[0]}), JSON)
    assert (single.texts, single.pairs, single.single) == ([shown[0][0]], [shown[0][1]], True)
    assert inference.input_fn(json.dumps({"inputs": ["a", "b"]}), JSON).pairs is None


NEEDS_BOTH = "a text pair needs both 'text' and 'text_pair'"
PAIR_AB = {"text": "a", "text_pair": "b"}
PAIR_LINE = json.dumps({"inputs": PAIR_AB})


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ({"inputs": {"text": "a"}}, JSON, f"\"inputs\": {NEEDS_BOTH}; missing 'text_pair'"),
        ({"inputs": {"text_pair": "b"}}, JSON, "missing 'text'"),
        ({"inputs": [PAIR_AB, {"text": "a"}]}, JSON, f'"inputs" item #1: {NEEDS_BOTH}'),
        ({"inputs": {"text": "a", "text_pair": 3}}, JSON, '"text_pair" must be a string, got int'),
        ({"inputs": {"text": None, "text_pair": "b"}}, JSON, '"text" must be a string, got NoneType'),
        ({"inputs": {**PAIR_AB, "label": 1}}, JSON, "unknown key(s) ['label'] in a text pair"),
        ({"inputs": [PAIR_AB, "c"]}, JSON, '"inputs" item #1 is str but item #0 is a text pair'),
        ({"inputs": ["c", PAIR_AB]}, JSON, '"inputs" item #0 is str but item #1 is a text pair'),
        (f'{PAIR_LINE}\n"c"\n', JSONL, "JSON Lines line 2: a text, but line 1 is a text pair"),
        (f'"c"\n{PAIR_LINE}\n', JSONL, "JSON Lines line 2: a text pair, but line 1 is a text"),
        ('{"inputs": {"text": "a"}}\n', JSONL, f'JSON Lines line 1: "inputs": {NEEDS_BOTH}'),
        ('{"inputs": 3}\n', JSONL, 'JSON Lines line 1: "inputs" must be a string or a text pair'),
        ("inputs,text_pair\na,b\nc\n", CSV, "a row has fewer fields than the header"),
        ({"inputs": {"text": "a", "text_pair": "\ud800"}}, JSON, "item #0 holds a lone UTF-16 surrogate"),
    ],
)
def test_malformed_pairs_are_refused_with_the_reason(body, content_type, reason):
    data = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(inference.RequestError) as caught:
        inference.input_fn(data, content_type)
    assert reason in str(caught.value)
    assert caught.value.status == 400


def test_a_pair_model_refuses_a_lone_text_saying_what_to_send(pair_classifier, config):
    first, second = pair_columns(config)
    for body, content_type in ((json.dumps({"inputs": "재밌다"}), JSON), ("재밌다", "text/plain")):
        with pytest.raises(inference.RequestError) as caught:
            answer(pair_classifier, body, content_type)
        message = str(caught.value)
        assert f"this model reads text pairs (trained on columns {first!r} and {second!r})" in message
        assert '{"text": "...", "text_pair": "..."}' in message


def test_a_one_text_model_refuses_a_pair(tiny_model_dir):
    classifier = inference.model_fn(str(tiny_model_dir))
    with pytest.raises(inference.RequestError) as caught:
        answer(classifier, json.dumps({"inputs": {"text": "a", "text_pair": "b"}}))
    assert "this model reads one text per input, not text pairs" in str(caught.value)


def test_the_model_knows_its_pair_columns(pair_classifier, tiny_model_dir, config):
    assert pair_classifier.text_pair_columns == pair_columns(config)
    assert inference.model_fn(str(tiny_model_dir)).text_pair_columns is None


# --- tokenisation and scores ------------------------------------------------------------------


@pytest.mark.parametrize("max_length", [16, 17, 64])
def test_pairs_are_tokenised_as_training_tokenises_them(pair_classifier, pairs, max_length):
    tokenizer = pair_classifier.tokenizer
    texts, seconds = [a for a, _ in pairs], [b for _, b in pairs]
    ids, too_long = inference.encode_pairs(tokenizer, texts, seconds, max_length)
    # training/data.py tokenize: the whole texts, longest_first.
    expected = tokenizer(texts, seconds, truncation="longest_first", max_length=max_length)
    assert [list(row) for row in ids] == expected["input_ids"]
    assert [row.types for row in ids if isinstance(row, inference.PairIds)] == expected["token_type_ids"]
    whole = tokenizer(texts, seconds)["input_ids"]
    assert too_long == [i for i, row in enumerate(whole) if len(row) > max_length]
    for types in expected["token_type_ids"]:
        assert 0 in types and 1 in types, "both texts keep tokens under longest_first"


def test_a_pair_of_exactly_the_limit_is_not_too_long(pair_classifier):
    tokenizer = pair_classifier.tokenizer
    text, pair = "정말 재밌는 영화", "배우들 연기도 최고"
    exact = len(tokenizer(text, pair)["input_ids"])
    assert inference.encode_pairs(tokenizer, [text], [pair], exact)[1] == []
    assert inference.encode_pairs(tokenizer, [text], [pair], exact - 1)[1] == [0]


def test_pair_scores_match_the_model_on_the_tokenizers_pairs(pair_classifier, pairs):
    request = inference.Request([a for a, _ in pairs], [b for _, b in pairs])
    prediction = inference.predict_fn(request, pair_classifier)
    assert prediction.truncated == 3
    for ours, expected in zip(prediction.scores, reference_scores(pair_classifier, pairs), strict=True):
        assert ours == pytest.approx(expected, abs=1e-5)


def test_token_types_reach_the_model(pair_classifier, pairs):
    """The second text's token types change the scores: dropping them would not be parity."""
    ids, _ = inference.encode_pairs(pair_classifier.tokenizer, [pairs[0][0]], [pairs[0][1]], 64)
    with_types = inference.score_batch(pair_classifier, ids)
    without = inference.score_batch(pair_classifier, [list(ids[0])])
    assert with_types[0] != pytest.approx(without[0], abs=1e-7)


def test_the_work_orders_pairs_by_their_length(pair_classifier, pairs):
    request = inference.Request([a for a, _ in pairs], [b for _, b in pairs])
    work = inference.Work(request, pair_classifier)
    indices, ids = work.take(len(pairs))
    lengths = [len(row) for row in ids]
    assert lengths == sorted(lengths, reverse=True)
    assert set(indices[:3]) == {len(pairs) - 3, len(pairs) - 2, len(pairs) - 1}


def test_truncation_false_refuses_a_too_long_pair(pair_classifier, pairs):
    body = {"inputs": as_pairs([pairs[0], pairs[-1]]), "parameters": {"truncation": False}}
    with pytest.raises(inference.RequestError) as caught:
        answer(pair_classifier, json.dumps(body))
    assert "pair #1 is longer than the limit of 256 tokens (1 such pair(s)" in str(caught.value)
    assert "send truncation=true or shorter pairs" in str(caught.value)


def test_answers_have_the_pipelines_shapes(pair_classifier, pairs):
    labels = list(pair_classifier.labels)
    one = answer(pair_classifier, json.dumps({"inputs": as_pairs(pairs)[0]}))
    # The pipeline answers a single pair (not a single text) without a wrapping list.
    assert isinstance(json.loads(one), dict) and json.loads(one)["label"] in labels
    ranked = json.loads(
        answer(pair_classifier, json.dumps({"inputs": as_pairs(pairs)[0], "parameters": {"top_k": None}}))
    )
    assert [item["label"] for item in ranked] != [] and sorted(i["label"] for i in ranked) == sorted(labels)
    several = json.loads(answer(pair_classifier, json.dumps({"inputs": as_pairs(pairs[:3])})))
    assert len(several) == 3 and all(isinstance(item, dict) for item in several)
    lines = "".join(json.dumps({"inputs": item}, ensure_ascii=False) + "\n" for item in as_pairs(pairs[:3]))
    out = answer(pair_classifier, lines, JSONL, JSONL)  # batch transform's records
    assert [json.loads(line) for line in out.splitlines()] == several
    table = list(csv.DictReader(io.StringIO(answer(pair_classifier, "inputs,text_pair\na,b\n", CSV, CSV))))
    assert [row["label"] for row in table] == [
        json.loads(answer(pair_classifier, json.dumps({"inputs": {"text": "a", "text_pair": "b"}})))["label"]
    ]


# --- predict and evaluate ---------------------------------------------------------------------


def write_pairs(path: Path, columns, rows, *, label_column=None, labels=None):
    records = []
    for number, (text, pair) in enumerate(rows, start=1):
        record = {"id": number, columns[0]: text, columns[1]: pair}
        if label_column is not None:
            record[label_column] = labels[number - 1]
        records.append(record)
    if path.suffix == ".jsonl":
        io_module.write_jsonl(path, records)
        return path
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(records[0]), delimiter="," if path.suffix == ".csv" else "\t")
        writer.writeheader()
        writer.writerows(records)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_predict_reads_both_columns_and_keeps_the_input_columns(
    pair_model_dir, pair_classifier, pairs, tmp_path, config, suffix, capsys
):
    columns = pair_columns(config)
    data = write_pairs(tmp_path / f"pairs{suffix}", columns, pairs)
    out = tmp_path / f"predicted{suffix}"
    assert (
        cli.main(["predict", str(data), "--model", str(pair_model_dir), "--out", str(out), "--no-progress"])
        == 0
    )
    assert f"wrote {len(pairs)} predictions" in capsys.readouterr().out
    table = io_module.read_table(out)
    scores = [f"score_{name}" for name in config.data.label_names]
    assert table.columns == ["id", *columns, "predicted_label", "score", *scores]
    expected = reference_scores(pair_classifier, pairs)
    for row, (text, pair), row_scores in zip(table.rows, pairs, expected, strict=True):
        assert (row.values[columns[0]], row.values[columns[1]]) == (text, pair)
        assert [float(row.values[column]) for column in scores] == pytest.approx(row_scores, abs=1e-5)


def test_predict_without_the_pair_column_names_the_file_and_column(pair_model_dir, tmp_path, config, capsys):
    first, second = pair_columns(config)
    data = tmp_path / "one-column.csv"
    data.write_text(f"{first}\n재밌다\n", "utf-8")
    assert cli.main(["predict", str(data), "--model", str(pair_model_dir)]) == 2
    err = capsys.readouterr().err
    assert str(data) in err and repr(second) in err and "--text-pair-column" in err


def test_predict_takes_other_pair_columns_by_option(pair_model_dir, tmp_path):
    data = write_pairs(tmp_path / "other.tsv", ["a", "b"], [("재밌다", "최고")])
    out = tmp_path / "out.tsv"
    args = ["predict", str(data), "--model", str(pair_model_dir), "--out", str(out), "--no-progress"]
    assert cli.main([*args, "--text-column", "a", "--text-pair-column", "b"]) == 0
    assert io_module.read_table(out).columns[:3] == ["id", "a", "b"]


def test_a_pair_column_for_a_one_text_model_is_refused(tiny_model_dir, tmp_path, capsys):
    data = write_pairs(tmp_path / "other.tsv", ["a", "b"], [("재밌다", "최고")])
    code = cli.main(["predict", str(data), "--model", str(tiny_model_dir), "--text-pair-column", "b"])
    assert code == 2
    assert "--text-pair-column 'b'" in capsys.readouterr().err


def test_predict_notes_pairs_with_an_empty_text(pair_model_dir, tmp_path, config, capsys):
    data = write_pairs(tmp_path / "gaps.csv", pair_columns(config), [("재밌다", "최고"), ("별로", " ")])
    assert cli.main(["predict", str(data), "--model", str(pair_model_dir), "--no-progress"]) == 0
    assert "1 of 2 texts are empty (lines 3)" in capsys.readouterr().out


def test_evaluate_reads_labelled_pairs_and_shows_both_texts_of_a_mistake(
    pair_model_dir, pair_classifier, pairs, tmp_path, config
):
    section = pair_section(config)
    names = list(config.data.label_names)
    labels = [names[i % len(names)] for i in range(len(pairs))]
    data = write_pairs(
        tmp_path / "test.tsv", section.text_columns, pairs, label_column=section.label_column, labels=labels
    )
    labelled = batch.read_labelled(data, section, "names")
    assert [(e.text, e.text_pair) for e in labelled.examples] == pairs
    out = tmp_path / "report"
    metrics = batch.evaluate_examples(pair_classifier, labelled, out, section, progress=False)
    assert metrics["num_examples"] == len(pairs) and metrics["truncated_texts"] == 3
    assert (out / "confusion_matrix.png").is_file()
    with open(out / "misclassified.csv", encoding="utf-8-sig") as handle:
        wrong = list(csv.DictReader(handle))
    assert wrong, "a random tiny model gets some pairs wrong"
    first, second = section.text_columns
    assert list(wrong[0])[:4] == ["line", first, second, "true_label"]
    by_line = {row["line"]: row for row in wrong}
    for example in labelled.examples:
        if str(example.line) in by_line:
            row = by_line[str(example.line)]
            assert (row[first], row[second]) == (example.text, example.text_pair)


def test_evaluate_refuses_a_one_text_model_for_pairs_and_the_reverse(
    pair_classifier, tiny_model_dir, pairs, tmp_path, config
):
    section = pair_section(config)
    names = list(config.data.label_names)
    data = write_pairs(
        tmp_path / "test.tsv",
        section.text_columns,
        pairs[:2],
        label_column=section.label_column,
        labels=names[:1] * 2,
    )
    labelled = batch.read_labelled(data, section, "names")
    one_text = inference.model_fn(str(tiny_model_dir))
    with pytest.raises(
        batch.ModelLabelsError, match="the model reads one text per example but config.toml's"
    ):
        batch.evaluate_examples(one_text, labelled, tmp_path / "r1", section, progress=False)
    single = dataclasses.replace(section, task="single_label")
    with pytest.raises(batch.ModelLabelsError, match="the model reads text pairs per example"):
        batch.evaluate_examples(pair_classifier, labelled, tmp_path / "r2", single, progress=False)


# --- the local server -------------------------------------------------------------------------


def post(port, body, content_type=JSON):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/invocations", body.encode("utf-8"), {"Content-Type": content_type})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_the_server_answers_pairs_and_asks_for_both_texts(
    live_server, pair_model_dir, pair_classifier, pairs, config
):
    _, port = live_server(pair_model_dir, batch_size=4)
    status, answers = post(port, json.dumps({"inputs": as_pairs(pairs), "parameters": {"top_k": None}}))
    assert status == 200
    expected = reference_scores(pair_classifier, pairs)
    for ranked, scores in zip(answers, expected, strict=True):
        by_label = {item["label"]: item["score"] for item in ranked}
        assert [by_label[label] for label in pair_classifier.labels] == pytest.approx(scores, abs=1e-5)
    status, refusal = post(port, json.dumps({"inputs": "재밌다"}))
    assert status == 400 and "this model reads text pairs" in refusal["message"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/")
    page = connection.getresponse().read().decode("utf-8")
    assert json.dumps(pair_columns(config), ensure_ascii=False).replace(" ", "") in page.replace(" ", "")
    assert 'id="text-pair"' in page


def test_a_one_text_models_page_has_no_pair_columns(live_server, tiny_model_dir):
    _, port = live_server(tiny_model_dir)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/")
    assert '"pair_columns": null' in connection.getresponse().read().decode("utf-8")


def test_pair_jsonl_records_answer_line_by_line(pair_classifier, pairs, tmp_path):
    lines = "".join(json.dumps({"inputs": item}, ensure_ascii=False) + "\n" for item in as_pairs(pairs))
    path = tmp_path / "out.jsonl"
    path.write_text(answer(pair_classifier, lines, JSONL, JSONL), "utf-8")
    records = read_jsonl(path)
    assert len(records) == len(pairs)
    expected = reference_scores(pair_classifier, pairs)
    for record, scores in zip(records, expected, strict=True):
        assert record["label"] == pair_classifier.labels[scores.index(max(scores))]
