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
        (b'{"inputs": {"a": 1}}', "application/json", 400, "unknown key(s) ['a'] in a text pair"),
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


def _whole_text_ids(classifier, texts, max_length):
    return classifier.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_cutting_by_characters_gives_the_ids_of_the_whole_text(classifier, max_length):
    import random

    words = ["정말", "재밌어요", "별로", "배우들", "연기도", "최고", "ㅋㅋㅋ", "스토리", "a", "!!", "영화"]
    rng = random.Random(max_length)
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 400))) for _ in range(60)]
    texts += ["  ".join(words) * 30, "\n".join(words) * 50, "가" * (max_length * 30), "영화 " * 3000 + "끝"]
    ids, too_long = inference.encode(classifier.tokenizer, texts, max_length)
    whole = _whole_text_ids(classifier, texts, max_length)
    for index, (text, got, expected) in enumerate(zip(texts, ids, whole, strict=True)):
        assert got == expected, f"text #{index} ({len(text)} characters)"
    full_lengths = [
        len(row) for row in classifier.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
    ]
    assert too_long == [i for i, length in enumerate(full_lengths) if length > max_length]


def test_texts_with_too_many_characters_per_token_are_cut_regardless(classifier):
    limit = 8
    huge_word = "가" * (limit * inference.WIDE_WINDOW * 2)  # no space to cut at
    mostly_blank = " " * (limit * inference.WIDE_WINDOW * 2) + "끝"
    ids, too_long = inference.encode(classifier.tokenizer, [huge_word, mostly_blank, "짧다"], limit)
    assert too_long == [0, 1]
    assert all(len(row) <= limit for row in ids)


class _RecordingTokenizer:
    """Passes calls through to the real tokenizer, noting the longest text it was given."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.longest = 0

    def __call__(self, texts, **kwargs):
        self.longest = max([self.longest, *(len(text) for text in texts)])
        return self._tokenizer(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_a_megabyte_text_is_cut_before_tokenising_and_counted_as_truncated(tiny_model_dir):
    recording = inference.model_fn(str(tiny_model_dir))
    recording.tokenizer = _RecordingTokenizer(recording.tokenizer)
    huge = "아주 긴 리뷰입니다 " * 200_000  # about 2 MB of UTF-8
    prediction = inference.predict_fn(inference.Request([huge, "짧다"]), recording)
    assert len(prediction.scores) == 2 and prediction.truncated == 1
    assert recording.tokenizer.longest <= recording.max_length * inference.WIDE_WINDOW
    refused = inference.Request([huge], truncation=False)
    with pytest.raises(inference.RequestError, match="longer than the limit"):
        inference.predict_fn(refused, recording)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", "nested too deeply"),
        (b"[" * 100_000, "application/jsonlines", "nested too deeply"),
        (b'{"inputs": "\\ud800 half a pair"}', "application/json", "surrogate"),
        (b'{"inputs": "\\udc00"}\n', "application/jsonlines", "surrogate"),
        (b'{"inputs": ["ok", "\\ud83d"]}', "application/json", "item #1"),
    ],
)
def test_hostile_json_is_a_request_error(body, content_type, reason):
    with pytest.raises(inference.RequestError, match=reason):
        inference.input_fn(body, content_type)


def test_an_unknown_engine_is_refused_and_the_container_reads_its_engine(tiny_model_dir, monkeypatch):
    with pytest.raises(ValueError, match="engine must be one of auto, torch, onnx, onnx-int8"):
        inference.load_model(str(tiny_model_dir), engine="int8")
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    with pytest.raises(inference.EngineError, match="model.onnx not found.*export"):
        inference.model_fn(str(tiny_model_dir))
    monkeypatch.setenv("INFERENCE_ENGINE", "auto")
    assert inference.model_fn(str(tiny_model_dir)).engine == "torch", "never exported: torch"


def test_long_texts_come_in_smaller_sub_batches_of_even_cost(classifier):
    texts = ["아주 긴 리뷰 " * 30] * 4 + ["짧다"] * 60
    work = inference.Work(inference.Request(texts), classifier)
    first = work.even_count(16)
    assert 1 <= first < 16, "the long texts come first, fewer at a time"
    work.take(first)
    while work.remaining > 60:
        work.take(work.even_count(16))
    assert work.even_count(16) == 16, "short texts fill a whole sub-batch"


# A multi-label model (conftest.build_multi_label_model): sigmoid scores, a threshold per label.


def model_variant(model_dir, folder, **recorded):
    """A copy of a model folder whose config.json records other values (thresholds, delimiter)."""
    import shutil

    shutil.copytree(model_dir, folder)
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text("utf-8")), **recorded}), "utf-8")
    return folder


@pytest.fixture(scope="module")
def multi(multi_label_model_dir):
    return inference.model_fn(str(multi_label_model_dir))


@pytest.fixture(scope="module")
def multi_pipe(multi_label_model_dir):
    from transformers import pipeline

    return pipeline("text-classification", model=str(multi_label_model_dir), device="cpu")


def decided(ranked, thresholds):
    """From the pipeline's scores of every label: those reaching their threshold, best first."""
    return [item for item in ranked if item["score"] >= thresholds[item["label"]]]


def test_a_multi_label_model_answers_its_decided_labels_best_first(multi, multi_pipe):
    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS

    thresholds = dict(zip(MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS, strict=True))
    texts = ["정말 재밌어요", "별로", "그냥 그랬음"]
    # The pipeline's own scores of every label: a sigmoid per label for this problem type.
    every = multi_pipe(texts, top_k=None)
    answers = json.loads(run(multi, json.dumps({"inputs": texts})))
    assert len(answers) == len(texts)
    for answer, ranked in zip(answers, every, strict=True):
        assert_close(answer, decided(ranked, thresholds))
        chosen = [item["label"] for item in answer]
        # Several labels; "age" scores highest of all but stays below its 0.99 threshold.
        assert {"hate", "gender"} <= set(chosen) and "age" not in chosen
        assert [item["score"] for item in answer] == sorted((item["score"] for item in answer), reverse=True)
    # One text: its list of labels itself, as the pipeline answers a single text with top_k.
    single = json.loads(run(multi, json.dumps({"inputs": texts[0]})))
    assert_close(single, decided(every[0], thresholds))


@pytest.mark.parametrize(
    ("inputs", "parameters"),
    [
        ("정말 재밌어요", {"top_k": None}),
        (["정말 재밌어요", "별로"], {"top_k": 2}),
        ("정말 재밌어요", {"top_k": 1}),
    ],
)
def test_a_multi_label_model_with_top_k_answers_the_pipelines_ranked_scores(
    multi, multi_pipe, inputs, parameters
):
    ours = json.loads(run(multi, json.dumps({"inputs": inputs, "parameters": parameters})))
    assert_close(ours, multi_pipe(inputs, **parameters))


def test_a_multi_label_text_without_a_decided_label_answers_an_empty_list(multi_label_model_dir, tmp_path):
    from conftest import MULTI_LABEL_NAMES

    strict = model_variant(multi_label_model_dir, tmp_path / "strict", label_thresholds=[0.99] * 4)
    model = inference.model_fn(str(strict))
    assert json.loads(run(model, '{"inputs": "별로"}')) == []
    assert json.loads(run(model, '{"inputs": ["별로", "ㅋㅋ"]}')) == [[], []]
    rows = list(csv.DictReader(io.StringIO(run(model, "inputs\n별로\n", "text/csv", "text/csv"))))
    assert rows[0]["labels"] == "" and len(rows[0]) == 1 + len(MULTI_LABEL_NAMES)
    line = json.loads(run(model, '{"inputs": "별로"}\n', "application/jsonlines", "application/jsonlines"))
    assert line["labels"] == []


def test_multi_label_csv_answers_join_the_decided_labels_with_the_models_delimiter(
    multi_label_model_dir, multi, tmp_path
):
    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS

    body = "id,inputs\n1,정말 재밌어요\n2,별로\n"
    prediction = inference.predict_fn(inference.input_fn(body, "text/csv"), multi)
    columns = ["labels", *(f"score_{name}" for name in MULTI_LABEL_NAMES)]
    plus = inference.model_fn(
        str(model_variant(multi_label_model_dir, tmp_path / "plus", label_delimiter=" + "))
    )
    for model, delimiter in ((multi, "|"), (plus, " + ")):
        rows = list(csv.DictReader(io.StringIO(run(model, body, "text/csv", "text/csv"))))
        assert [list(row) for row in rows] == [columns, columns]
        for row, scores in zip(rows, prediction.scores, strict=True):
            assert [float(row[column]) for column in columns[1:]] == pytest.approx(scores, abs=1e-6)
            reached = zip(MULTI_LABEL_NAMES, scores, MULTI_LABEL_THRESHOLDS, strict=True)
            expected = [name for name, score, threshold in reached if score >= threshold]
            assert expected[:2] == ["hate", "gender"]  # in label order
            assert row["labels"] == delimiter.join(expected)


def test_batch_transform_jsonlines_output_has_the_decided_labels_and_every_score(multi):
    """The handler's output for SageMaker batch transform (JSON Lines in, JSON Lines out)."""
    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS

    texts = ["정말 재밌어요", "별로", "", "그냥 그랬음"]
    body = "".join(json.dumps({"inputs": text}, ensure_ascii=False) + "\n" for text in texts)
    request = inference.input_fn(body.encode("utf-8"), "application/jsonlines")
    prediction = inference.predict_fn(request, multi)
    answer = inference.output_fn(prediction, "application/jsonlines")
    assert answer.endswith("\n") and answer.count("\n") == len(texts)
    lines = [json.loads(line) for line in answer.splitlines()]
    for line, scores in zip(lines, prediction.scores, strict=True):
        assert list(line) == ["labels", *(f"score_{name}" for name in MULTI_LABEL_NAMES)]
        assert [line[f"score_{name}"] for name in MULTI_LABEL_NAMES] == scores
        reached = zip(MULTI_LABEL_NAMES, scores, MULTI_LABEL_THRESHOLDS, strict=True)
        assert line["labels"] == [name for name, score, threshold in reached if score >= threshold]
        assert len(line["labels"]) >= 2
    # With top_k, each line holds the ranked scores, as for any model.
    ranked = body.replace('"}', '", "parameters": {"top_k": 2}}')
    for line in run(multi, ranked, "application/jsonlines", "application/jsonlines").splitlines():
        items = json.loads(line)
        assert len(items) == 2 and items[0]["score"] >= items[1]["score"]


def test_an_untuned_multi_label_model_decides_at_one_half(multi_label_model_dir, tmp_path):
    untuned = model_variant(multi_label_model_dir, tmp_path / "untuned", label_thresholds=None)
    model = inference.model_fn(str(untuned))
    prediction = inference.predict_fn(inference.Request(["별로"], top_k=None, legacy=False), model)
    answer = json.loads(run(model, '{"inputs": ["별로"]}'))[0]
    expected = [name for name, score in zip(model.labels, prediction.scores[0], strict=True) if score >= 0.5]
    assert sorted(item["label"] for item in answer) == sorted(expected)
