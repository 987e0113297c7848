"""The container handlers (serving/inference.py): formats, pipeline-shaped answers, bad requests."""

from __future__ import annotations

import csv
import io
import json

import pytest

from nsmc_sentiment_classifier.serving import inference

TEXTS = [
    "정말 재밌어요",
    "별로",
    "스토리도 연출도 배우들 연기도 모두 최고였다. 다시 보고 싶은 영화, 강력 추천합니다!",
    "",
    "ㅋㅋ",
    "이런 영화는 처음이다 " * 40,  # longer than the tiny model's 256 positions: truncated
    "그냥 그랬음",
]


@pytest.fixture(scope="module")
def classifier(tiny_model_dir):
    return inference.model_fn(str(tiny_model_dir))


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    from transformers import pipeline

    return pipeline("text-classification", model=str(tiny_model_dir), device="cpu")


def run(classifier, body, content_type="application/json", accept="application/json"):
    request = inference.input_fn(body, content_type)
    return inference.output_fn(inference.predict_fn(request, classifier), accept)


def assert_close(ours, theirs, tolerance=1e-5):
    """Same nesting, same labels, scores within ``tolerance``."""
    if isinstance(theirs, dict):
        assert set(ours) == {"label", "score"}
        assert ours["label"] == theirs["label"]
        assert ours["score"] == pytest.approx(theirs["score"], abs=tolerance)
    else:
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for mine, reference in zip(ours, theirs, strict=True):
            assert_close(mine, reference, tolerance)


@pytest.mark.parametrize(
    ("inputs", "parameters"),
    [
        ("정말 재밌어요", None),
        (["정말 재밌어요", "별로"], None),
        ("정말 재밌어요", {"top_k": 2}),
        ("정말 재밌어요", {"top_k": 1}),
        (["정말 재밌어요", "별로", "그냥 그랬음"], {"top_k": None}),
        (["정말 재밌어요", "별로"], {"top_k": 1}),
    ],
)
def test_json_answers_have_the_pipeline_shape(classifier, pipe, inputs, parameters):
    body = json.dumps({"inputs": inputs, **({"parameters": parameters} if parameters else {})})
    ours = json.loads(run(classifier, body.encode("utf-8")))
    theirs = pipe(inputs, **(parameters or {}))
    assert_close(ours, theirs)


def test_return_all_scores_keeps_the_legacy_shape(classifier, config):
    labels = len(config.data.label_names)
    legacy = '{"inputs": "좋다", "parameters": {"return_all_scores": true}}'
    single = json.loads(run(classifier, legacy))
    assert len(single) == 1 and len(single[0]) == labels
    assert sorted(s["label"] for s in single[0]) == sorted(config.data.label_names)
    several = json.loads(
        run(classifier, '{"inputs": ["좋다", "싫다"], "parameters": {"return_all_scores": true}}')
    )
    assert len(several) == 2 and all(len(scores) == labels for scores in several)


def test_sorted_sub_batches_keep_the_input_order(classifier):
    batched = inference.predict_fn(inference.Request(TEXTS), classifier).scores
    one_by_one = [inference.predict_fn(inference.Request([t]), classifier).scores[0] for t in TEXTS]
    assert len(batched) == len(TEXTS)
    for row, reference in zip(batched, one_by_one, strict=True):
        assert row == pytest.approx(reference, abs=1e-5)
        assert sum(row) == pytest.approx(1.0, abs=1e-5)


def test_sub_batches_smaller_than_the_request(tiny_model_dir):
    small = inference.model_fn(str(tiny_model_dir))
    small.batch_size = 2
    done: list[int] = []
    request = inference.Request(TEXTS, progress=done.append)
    scores = inference.predict_fn(request, small).scores
    assert sum(done) == len(TEXTS) and max(done) == 2
    full = inference.predict_fn(inference.Request(TEXTS), small).scores
    assert scores == full


def test_csv_in_and_out(classifier, config):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "inputs"])
    writer.writerows([[i, text] for i, text in enumerate(TEXTS)])
    answer = run(classifier, buffer.getvalue(), "text/csv", "text/csv")
    rows = list(csv.DictReader(io.StringIO(answer)))
    assert list(rows[0]) == ["label", "score", *(f"score_{n}" for n in config.data.label_names)]
    assert len(rows) == len(TEXTS)
    as_json = json.loads(run(classifier, json.dumps({"inputs": TEXTS})))
    for row, reference in zip(rows, as_json, strict=True):
        assert row["label"] == reference["label"]
        assert float(row["score"]) == pytest.approx(reference["score"], abs=1e-6)


def test_jsonlines_one_answer_per_line(classifier):
    body = "\n".join(json.dumps({"inputs": t}, ensure_ascii=False) for t in TEXTS) + "\n"
    lines = run(classifier, body.encode("utf-8"), "application/jsonlines", "application/jsonlines")
    answers = [json.loads(line) for line in lines.splitlines()]
    assert len(answers) == len(TEXTS)
    assert_close(answers, json.loads(run(classifier, json.dumps({"inputs": TEXTS}))), 1e-6)
    # Bare strings per line and a shared top_k are accepted too.
    body = '{"inputs": "좋다", "parameters": {"top_k": 2}}\n{"inputs": "싫다", "parameters": {"top_k": 2}}'
    answers = [
        json.loads(line)
        for line in run(classifier, body, "application/x-jsonlines", "application/jsonlines").splitlines()
    ]
    assert [len(a) for a in answers] == [2, 2]


def test_text_plain_and_accept_defaults(classifier):
    plain = json.loads(run(classifier, "정말 재밌어요\n".encode(), "text/plain; charset=utf-8", None))
    ours = json.loads(run(classifier, '{"inputs": "정말 재밌어요"}', "application/json", "*/*"))
    assert plain == ours and len(plain) == 1
    assert inference.response_type("text/html, application/json;q=0.9") == "application/json"


def test_max_length_parameter_truncates(classifier):
    import torch

    long_text = TEXTS[5]
    short = json.loads(
        run(classifier, json.dumps({"inputs": long_text, "parameters": {"max_length": 8, "top_k": None}}))
    )
    ids = classifier.tokenizer(long_text, truncation=True, max_length=8)["input_ids"]
    assert len(ids) == 8
    with torch.inference_mode():
        logits = classifier.model(input_ids=torch.tensor([ids])).logits
    expected = logits.softmax(-1)[0].tolist()
    by_label = {item["label"]: item["score"] for item in short}
    assert [by_label[label] for label in classifier.labels] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b'{"inputs": ["a"', "application/json", 400, "malformed JSON"),
        (b'{"text": "a"}', "application/json", 400, '"inputs"'),
        (b'["a", "b"]', "application/json", 400, '"inputs"'),
        (b'{"inputs": []}', "application/json", 400, "no texts"),
        (b'{"inputs": ["a", 3]}', "application/json", 400, "item #1 is int"),
        (b'{"inputs": {"a": 1}}', "application/json", 400, "string or a list"),
        (b'{"inputs": "a", "parameters": {"top_k": 0}}', "application/json", 400, "top_k"),
        (b'{"inputs": "a", "parameters": {"topk": 1}}', "application/json", 400, "unknown param"),
        (b'{"inputs": "a", "parameters": {"max_length": "x"}}', "application/json", 400, "max_length"),
        (b'{"inputs": "a", "extra": 1}', "application/json", 400, "unknown JSON key"),
        (b"\xff\xfe\x00", "application/json", 400, "UTF-8"),
        (b"id,text\n1,a\n", "text/csv", 400, "'inputs' column"),
        (b"inputs\n", "text/csv", 400, "no texts"),
        (b'{"inputs": "a"}\nnot json\n', "application/jsonlines", 400, "line 2"),
        (b'{"inputs": ["a"]}\n', "application/jsonlines", 400, "line 1"),
        (b"   ", "text/plain", 400, "empty"),
        (b"\x93NUMPY", "application/x-npy", 415, "unsupported content type"),
        (b"a" * (6 * 1024 * 1024 + 1), "text/plain", 413, "exceeds the limit"),
        (json.dumps({"inputs": ["a"] * 4097}).encode(), "application/json", 413, "4097 texts"),
    ],
)
def test_bad_requests_raise_request_errors(body, content_type, status, reason):
    with pytest.raises(inference.RequestError) as caught:
        inference.input_fn(body, content_type)
    assert caught.value.status == status
    assert reason in str(caught.value)


def test_bad_accept_and_overlong_texts(classifier):
    with pytest.raises(inference.NotAcceptable, match="unsupported Accept"):
        run(classifier, '{"inputs": "a"}', accept="image/png")
    too_long = json.dumps({"inputs": TEXTS[5], "parameters": {"truncation": False}})
    with pytest.raises(inference.RequestError, match="truncation=true"):
        run(classifier, too_long)
    with pytest.raises(inference.RequestError, match="exceeds the model's limit"):
        run(classifier, '{"inputs": "a", "parameters": {"max_length": 100000}}')
