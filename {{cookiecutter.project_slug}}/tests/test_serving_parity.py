"""Container parity: the packaged model.tar.gz under the inference toolkit's own handler service.

Needs a separate virtualenv pinned like the Hugging Face inference image that `sagemaker deploy`
and `batch-transform` use by default (serving/container.py: transformers 4.51.3 with
sagemaker-huggingface-inference-toolkit 2.6.0, which does not import with transformers 5); point
PARITY_PYTHON at its python. The template's ``.ci/parity-env.sh VENV`` builds one. A test fails
when that virtualenv and the default image drift apart.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import labelled_records

from nsmc_sentiment_classifier.serving import (
    batch,
    container,
    inference,
    package,
)

pytestmark = pytest.mark.engine

PARITY_PYTHON = os.environ.get("PARITY_PYTHON", "")
needs_parity_python = pytest.mark.skipif(
    not PARITY_PYTHON,
    reason="set PARITY_PYTHON to the python of a venv pinned like the inference container "
    f"(transformers {container.CONTAINER_TRANSFORMERS} + sagemaker-huggingface-inference-toolkit "
    f"{container.CONTAINER_TOOLKIT}; README: Container parity)",
)
PROJECT = Path(__file__).resolve().parents[1]

JSON, CSV, JSONL = "application/json", "text/csv", "application/jsonlines"
CONTAINER_LIMITS = {"INFERENCE_MAX_TEXTS": "50", "INFERENCE_MAX_BODY_BYTES": "20000"}


def csv_body(texts, with_id=True):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "inputs"] if with_id else ["inputs"])
    writer.writerows([number, text] if with_id else [text] for number, text in enumerate(texts))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def texts(config):
    records = labelled_records(config, 40, offset=4000)
    # Plus an empty text and one longer than the tiny model's 256 positions (truncated).
    return [text for text, _ in records] + ["", "끝까지 본 내 자신이 대견하다 " * 60]


BOM = "\ufeff"
# Accept headers with wildcards, lists and parameters. Both sides answer the same body (the first
# supported type, as inference.response_type picks it); the local server labels it with that
# concrete type, while the container's toolkit labels it with the Accept header as sent (see
# container_content_type).
ACCEPTS = [
    None,
    "*/*",
    "application/*",
    "text/*",
    "text/csv, application/json;q=0.5",
    "application/json; charset=utf-8",
    "application/json, text/csv",
]


def container_content_type(accept):
    """The Content-Type the inference toolkit 2.6.0 answers with: handler_service.handle replaces
    only a missing Accept or "*/*" (by application/json) and then calls
    context.set_response_content_type(0, accept) after the handlers ran, so output_fn cannot
    choose it."""
    return JSON if not accept or accept == "*/*" else accept


def edge_cases(texts):
    """(content type, accept, body) that the local server and the container must answer alike."""
    three = texts[:3]
    body = json.dumps({"inputs": three}, ensure_ascii=False)
    jsonl = "".join(json.dumps({"inputs": t}, ensure_ascii=False) + "\n" for t in three)
    # A UTF-8 byte-order mark, as spreadsheet exports write it. The toolkit decodes exactly
    # "application/json" and "text/csv" bodies itself, with .decode("utf-8"), which keeps the
    # mark; any other type (a charset parameter included) reaches input_fn as bytes.
    byte_order_marked = [
        (JSON, JSON, BOM + body),
        (JSON + "; charset=utf-8", JSON, BOM + body),
        # "inputs" first: the mark sticks to the first header cell.
        (CSV, CSV, BOM + csv_body(three, with_id=False)),
        (CSV, CSV, BOM + csv_body(three)),
        (JSONL, JSONL, BOM + jsonl),
        ("text/plain", JSON, BOM + texts[2]),
    ]
    accepts = [(JSON, accept, body) for accept in ACCEPTS]
    refused = [(JSON, "image/png", body), (JSON, "text/html, image/*", body)]
    return byte_order_marked + accepts + refused


@pytest.fixture(scope="module")
def container_answers(tiny_model_dir, tmp_path_factory, texts):
    """Package the model, extract it as SageMaker does, and answer requests in the toolkit."""
    work = tmp_path_factory.mktemp("parity")
    requests = [
        {"content_type": JSON, "accept": JSON, "body": json.dumps({"inputs": texts[0]})},
        {"content_type": JSON, "accept": None, "body": json.dumps({"inputs": texts})},
        {
            "content_type": JSON,
            "accept": "*/*",
            "body": json.dumps({"inputs": texts, "parameters": {"top_k": None}}),
        },
        {
            "content_type": JSON,
            "accept": JSON,
            "body": json.dumps({"inputs": texts[1], "parameters": {"top_k": 2, "max_length": 16}}),
        },
        {"content_type": CSV, "accept": CSV, "body": csv_body(texts)},
        {
            "content_type": JSONL,
            "accept": JSONL,
            "body": "".join(json.dumps({"inputs": t}, ensure_ascii=False) + "\n" for t in texts),
        },
        {"content_type": "text/plain", "accept": JSON, "body": texts[2]},
    ]
    bad = [
        (JSON, '{"inputs": ['),
        (JSON, '{"text": "a"}'),
        (JSON, '{"inputs": []}'),
        (JSON, '{"inputs": ["a", 3]}'),
        (JSON, json.dumps({"inputs": ["a"] * 51})),
        (JSON, json.dumps({"inputs": "a" * 20001})),
        ("application/x-npy", "x"),
        (CSV, "id,text\n1,a\n"),
    ]
    requests += [{"content_type": ct, "accept": JSON, "body": body} for ct, body in bad]
    requests.append({"content_type": JSON, "accept": "image/png", "body": '{"inputs": "a"}'})
    # Edge cases where the local server and the container must agree (see edge_cases).
    requests += [
        {"content_type": ct, "accept": accept, "body": body} for ct, accept, body in edge_cases(texts)
    ]
    return requests, run_in_toolkit(tiny_model_dir, work, requests)


def run_in_toolkit(model, work, requests, texts=None):
    """Package ``model``, extract it as SageMaker does and answer ``requests`` in the toolkit's
    handler service; with ``texts``, also return the toolkit's own pipeline's scores of them."""
    archive = work / "model.tar.gz"
    package.build_model_archive(model, archive)
    model_dir = work / "opt-ml-model"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    (work / "requests.json").write_text(json.dumps(requests, ensure_ascii=False), "utf-8")
    extra = []
    if texts is not None:
        (work / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), "utf-8")
        extra = [str(work / "texts.json"), str(work / "scores.json")]
    harness = Path(__file__).with_name("parity_harness.py")
    result = subprocess.run(
        [
            PARITY_PYTHON,
            str(harness),
            str(model_dir),
            str(work / "requests.json"),
            str(work / "results.json"),
            *extra,
        ],
        cwd=work,
        env=parity_environment(work),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"toolkit harness failed:\n{result.stdout}\n{result.stderr}"
    answers = json.loads((work / "results.json").read_text("utf-8"))
    if texts is None:
        return answers
    return answers, json.loads((work / "scores.json").read_text("utf-8"))


def parity_environment(home):
    """A clean environment: nothing of this project's (transformers 5) site on the path."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OMP_NUM_THREADS": "1", **CONTAINER_LIMITS}


def parity_output(script, home):
    """What ``script`` prints under the parity virtualenv's Python."""
    return subprocess.run(
        [PARITY_PYTHON, "-c", script],
        env=parity_environment(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_documents_name_the_default_inference_image():
    """README (and with SageMaker, config.toml and docs/sagemaker.md) state the pair of
    serving/container.py."""
    transformers, toolkit = container.CONTAINER_TRANSFORMERS, container.CONTAINER_TOOLKIT
    readme = (PROJECT / "README.md").read_text("utf-8")
    for pin in (f"transformers=={transformers}", f"sagemaker-huggingface-inference-toolkit=={toolkit}"):
        assert pin in readme, f"README.md: the parity virtualenv recipe should pin {pin}"
    # config.toml's SageMaker table and docs/sagemaker.md exist only with the SageMaker part.
    with_sagemaker = (PROJECT / "docs" / "sagemaker.md").exists()
    for name in ("README.md", *(("config.toml", "docs/sagemaker.md") if with_sagemaker else ())):
        text = (PROJECT / name).read_text("utf-8")
        for statement in (f"transformers {transformers}", f"toolkit {toolkit}"):
            assert statement in text, f"{name} should name the default inference image: {statement!r}"


@needs_parity_python
def test_the_parity_environment_runs_the_default_inference_image(tmp_path):
    """deploy and batch-transform use the image of serving/container.py unless config.toml names
    another; this test is only worth its name if it runs that image's transformers and toolkit."""
    script = (
        "import importlib.metadata as m, transformers; "
        "print(transformers.__version__, m.version('sagemaker-huggingface-inference-toolkit'))"
    )
    found = parity_output(script, tmp_path).split()
    default = [container.CONTAINER_TRANSFORMERS, container.CONTAINER_TOOLKIT]
    assert found == default, (
        f"PARITY_PYTHON runs transformers {found[0]} with inference toolkit {found[1]}, but the "
        f"default inference image of deploy and batch-transform (serving/container.py) has "
        f"transformers {default[0]} with toolkit {default[1]}: rebuild the parity virtualenv for "
        f"that image, or change the default"
    )


@pytest.fixture(scope="module")
def local(tiny_model_dir):
    return inference.model_fn(str(tiny_model_dir))


def local_answer(classifier, request):
    decoded = inference.input_fn(request["body"].encode("utf-8"), request["content_type"])
    return inference.output_fn(inference.predict_fn(decoded, classifier), request["accept"])


def assert_same(container, ours):
    if isinstance(ours, dict) and "labels" in ours:  # a multi-label JSON Lines record
        assert container.keys() == ours.keys() and container["labels"] == ours["labels"]
        for key in ours.keys() - {"labels"}:
            assert abs(container[key] - ours[key]) <= 1e-4, key
    elif isinstance(ours, dict):
        assert container["label"] == ours["label"]
        assert abs(container["score"] - ours["score"]) <= 1e-4
    else:
        assert isinstance(container, list) and len(container) == len(ours)
        for theirs, mine in zip(container, ours, strict=True):
            assert_same(theirs, mine)


@needs_parity_python
def test_json_and_text_requests_match_local_predictions(container_answers, local):
    requests, answers = container_answers
    for index in (0, 1, 2, 3, 6):
        assert answers[index]["status"] == 200, answers[index]
        assert answers[index]["content_type"] == JSON
        assert_same(json.loads(answers[index]["body"]), json.loads(local_answer(local, requests[index])))


@needs_parity_python
def test_container_matches_the_local_batch_prediction(container_answers, local, texts):
    _, answers = container_answers
    container = json.loads(answers[2]["body"])
    ours = batch.classify(local, texts, progress=False)
    for ranked, scores in zip(container, ours.scores, strict=True):
        by_label = {item["label"]: item["score"] for item in ranked}
        for label, score in zip(ours.labels, scores, strict=True):
            assert abs(by_label[label] - score) <= 1e-4


def assert_same_body(media_type, container, ours):
    """Two answers in ``media_type``: same labels, scores within 1e-4."""
    if media_type == CSV:
        theirs, mine = (list(csv.DictReader(io.StringIO(body))) for body in (container, ours))
        assert len(theirs) == len(mine)
        for container_row, local_row in zip(theirs, mine, strict=True):
            assert container_row.keys() == local_row.keys()
            # "label" (the best label), or a multi-label model's "labels" (the decided ones).
            text_column = "labels" if "labels" in local_row else "label"
            assert container_row.pop(text_column) == local_row.pop(text_column)
            for column, score in local_row.items():
                assert abs(float(container_row[column]) - float(score)) <= 1e-4, column
    elif media_type == JSONL:
        assert_same(*([json.loads(line) for line in body.splitlines()] for body in (container, ours)))
    else:
        assert_same(json.loads(container), json.loads(ours))


@needs_parity_python
def test_csv_and_jsonlines_match(container_answers, local, texts):
    requests, answers = container_answers
    for index, media_type in ((4, CSV), (5, JSONL)):
        answer = answers[index]
        assert answer["status"] == 200 and answer["content_type"] == media_type, answer
        assert len(answer["body"].splitlines()) == len(texts) + (media_type == CSV)
        assert_same_body(media_type, answer["body"], local_answer(local, requests[index]))


@needs_parity_python
def test_bad_requests_are_4xx_with_a_reason(container_answers):
    _, answers = container_answers
    reasons = [
        "malformed JSON",
        '"inputs"',
        "no texts",
        "item #1 is int",
        "51 texts",
        "exceeds the limit",
        "unsupported content type",
        "'inputs' column",
        "unsupported Accept",
    ]
    bad_answers = answers[7 : 7 + len(reasons)]
    assert len(bad_answers) == len(reasons)
    for answer, reason in zip(bad_answers, reasons, strict=True):
        assert answer["status"] == 400, answer
        assert reason in answer["body"], (reason, answer["body"])


def local_server_answer(port, request):
    """The request over HTTP to `serve`'s server: {"status", "content_type", "body"}."""
    headers = {"Content-Type": request["content_type"]}
    if request["accept"] is not None:
        headers["Accept"] = request["accept"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/invocations", request["body"].encode("utf-8"), headers)
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        return {"status": response.status, "content_type": response.getheader("Content-Type"), "body": body}
    finally:
        connection.close()


def media_type(content_type):
    return content_type.split(";", 1)[0].strip()


@needs_parity_python
def test_byte_order_marks_and_accept_variants_agree_with_the_local_server(
    container_answers, live_server, tiny_model_dir, texts
):
    # The byte-order-mark cases need inference.input_fn to drop a leading U+FEFF from a body
    # the toolkit already decoded (a str), as it does for bytes ("utf-8-sig").
    requests, answers = container_answers
    cases = edge_cases(texts)
    _, port = live_server(tiny_model_dir)
    for request, container_answer in zip(requests[-len(cases) :], answers[-len(cases) :], strict=True):
        ours = local_server_answer(port, request)
        case = (request["content_type"], request["accept"], container_answer, ours)
        assert container_answer["status"] // 100 == ours["status"] // 100, case
        if ours["status"] != 200:
            assert container_answer["status"] == 400 and ours["status"] == 406, case
            assert "unsupported Accept" in container_answer["body"], case
            assert "unsupported Accept" in ours["body"], case
            continue
        concrete = inference.response_type(request["accept"])
        assert media_type(ours["content_type"]) == concrete, case
        # The container labels the same body with the Accept header as sent (see
        # container_content_type): send a concrete Accept to get a concrete Content-Type.
        assert container_answer["content_type"] == container_content_type(request["accept"]), case
        assert_same_body(concrete, container_answer["body"], ours["body"])


MULTI_LABEL_TEXTS = ["정말 재밌어요", "별로", "그냥 그랬음", "", "다시 보고 싶은 영화, 강력 추천합니다!"]


@pytest.fixture(scope="module")
def multi_label_container(multi_label_model_dir, tmp_path_factory):
    """A multi-label model's answers in the toolkit, and its own pipeline's scores."""
    texts = MULTI_LABEL_TEXTS
    jsonl = "".join(json.dumps({"inputs": text}, ensure_ascii=False) + "\n" for text in texts)
    requests = [
        {"content_type": JSON, "accept": JSON, "body": json.dumps({"inputs": texts})},
        {"content_type": JSON, "accept": JSON, "body": json.dumps({"inputs": texts[0]})},
        {
            "content_type": JSON,
            "accept": JSON,
            "body": json.dumps({"inputs": texts, "parameters": {"top_k": None}}),
        },
        {"content_type": CSV, "accept": CSV, "body": csv_body(texts)},
        {"content_type": JSONL, "accept": JSONL, "body": jsonl},
    ]
    work = tmp_path_factory.mktemp("parity-multi-label")
    answers, pipeline_scores = run_in_toolkit(multi_label_model_dir, work, requests, texts)
    return requests, answers, pipeline_scores


@needs_parity_python
def test_the_container_answers_a_multi_label_model_as_locally(multi_label_container, multi_label_model_dir):
    requests, answers, _ = multi_label_container
    local = inference.model_fn(str(multi_label_model_dir))
    for request, answer in zip(requests, answers, strict=True):
        assert answer["status"] == 200, answer
        media_type = request["accept"]
        assert_same_body(media_type, answer["body"], local_answer(local, request))
    several = json.loads(answers[0]["body"])
    assert all(len(labels) >= 2 for labels in several), "each text should get several labels"
    assert [item["label"] for item in json.loads(answers[1]["body"])] == [
        item["label"] for item in several[0]
    ]


@needs_parity_python
def test_the_container_scores_a_multi_label_model_as_the_toolkits_pipeline(multi_label_container):
    """Sigmoid scores per label, as the toolkit's own pipeline gives them; decided by threshold."""
    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS

    _, answers, pipeline_scores = multi_label_container
    thresholds = dict(zip(MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS, strict=True))
    ranked, decided = json.loads(answers[2]["body"]), json.loads(answers[0]["body"])
    assert len(pipeline_scores) == len(ranked) == len(MULTI_LABEL_TEXTS)
    for theirs, ours, chosen in zip(pipeline_scores, ranked, decided, strict=True):
        assert_same(theirs, ours)
        reached = [item for item in theirs if item["score"] >= thresholds[item["label"]]]
        assert_same(reached, chosen)


@pytest.fixture(scope="module")
def pair_container(tmp_path_factory, config):
    """A text-pair model (text_pair_columns in its config.json) answering pair payloads in the
    toolkit, and the toolkit's own pipeline's scores of the same pairs."""
    from test_serving_text_pairs import LONG, as_pairs, build_pair_model

    model = build_pair_model(tmp_path_factory.mktemp("pair-model"), config)
    texts = [text for text, _ in labelled_records(config, 20, offset=4000)]
    # Plus a pair longer than the model's positions on each side (cut longest_first).
    items = as_pairs([*zip(texts[::2], texts[1::2], strict=True), (LONG, texts[0]), (texts[1], LONG)])
    jsonl = "".join(json.dumps({"inputs": item}, ensure_ascii=False) + "\n" for item in items)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["inputs", "text_pair"], *([item["text"], item["text_pair"]] for item in items)])
    requests = [
        {"content_type": JSON, "accept": JSON, "body": json.dumps({"inputs": items[0]})},
        {"content_type": JSON, "accept": JSON, "body": json.dumps({"inputs": items})},
        {
            "content_type": JSON,
            "accept": JSON,
            "body": json.dumps({"inputs": items, "parameters": {"top_k": None}}),
        },
        {"content_type": JSONL, "accept": JSONL, "body": jsonl},
        {"content_type": CSV, "accept": CSV, "body": buffer.getvalue()},
        {"content_type": JSON, "accept": JSON, "body": json.dumps({"inputs": texts[0]})},
    ]
    work = tmp_path_factory.mktemp("parity-pairs")
    # The harness calls the pipeline without truncation: its reference scores are the short pairs'
    # (the long ones are compared with the local handler, which cuts them as training does).
    answers, pipeline_scores = run_in_toolkit(model, work, requests, items[:-2])
    return model, requests, answers, pipeline_scores


@needs_parity_python
def test_the_container_answers_pairs_as_the_toolkits_pipeline_and_as_locally(pair_container):
    model, requests, answers, pipeline_scores = pair_container
    local = inference.model_fn(str(model))
    for request, answer in zip(requests[:-1], answers[:-1], strict=True):
        assert answer["status"] == 200, answer
        assert_same_body(request["accept"], answer["body"], local_answer(local, request))
    # Every label's score, best first, as the pipeline ranks them for each pair.
    short = len(pipeline_scores)
    assert_same(pipeline_scores, json.loads(answers[2]["body"])[:short])
    best = [ranked[0] for ranked in pipeline_scores]
    assert_same(best, json.loads(answers[1]["body"])[:short])
    assert_same(best, [json.loads(line) for line in answers[3]["body"].splitlines()][:short])
    # A single pair without top_k: one object, not a list, as the pipeline answers it.
    assert_same(best[0], json.loads(answers[0]["body"]))
    assert isinstance(json.loads(answers[0]["body"]), dict)


@needs_parity_python
def test_the_container_refuses_a_lone_text_for_a_pair_model(pair_container):
    *_, answers, _ = pair_container
    refusal = answers[-1]
    assert refusal["status"] == 400
    assert "this model reads text pairs" in refusal["body"] and '"text_pair"' in refusal["body"]


@pytest.fixture(scope="module")
def onnx_container(exported_model_dir, tmp_path_factory, texts):
    """An exported model whose engines.json chooses int8, answered in the toolkit."""
    work = tmp_path_factory.mktemp("parity-onnx")
    model = work / "model"
    shutil.copytree(exported_model_dir, model)
    record = json.loads((model / inference.ENGINES_FILE).read_text("utf-8"))
    (model / inference.ENGINES_FILE).write_text(json.dumps({**record, "default": "onnx-int8"}), "utf-8")
    requests = [
        {
            "content_type": JSON,
            "accept": JSON,
            "body": json.dumps({"inputs": texts, "parameters": {"top_k": None}}),
        },
        {"content_type": JSON, "accept": None, "body": json.dumps({"inputs": texts[0]})},
        {"content_type": CSV, "accept": CSV, "body": csv_body(texts)},
        {
            "content_type": JSONL,
            "accept": JSONL,
            "body": "".join(json.dumps({"inputs": t}, ensure_ascii=False) + "\n" for t in texts),
        },
    ]
    return model, requests, run_in_toolkit(model, work, requests)


@needs_parity_python
def test_the_container_serves_an_exported_model_with_onnx_runtime(onnx_container, tmp_path):
    """model_fn's default (auto) follows engines.json in the container too: ONNX Runtime, from
    the archive's code/requirements.txt (the parity venv has that version), answering as locally."""
    model, requests, answers = onnx_container
    found = parity_output("import onnxruntime; print(onnxruntime.__version__)", tmp_path).strip()
    assert found == container.CONTAINER_ONNXRUNTIME, "rebuild the parity venv: .ci/parity-env.sh"
    int8 = inference.load_model(str(model))
    assert int8.engine == "onnx-int8"
    for request, answer in zip(requests, answers, strict=True):
        assert answer["status"] == 200, answer
        assert_same_body(request["accept"] or JSON, answer["body"], local_answer(int8, request))
    # Scores are int8's, not PyTorch's: closer to the local int8 engine than to torch.
    torch_model = inference.load_model(str(model), engine="torch")
    ranked = [{item["label"]: item["score"] for item in row} for row in json.loads(answers[0]["body"])]
    mine = [
        {item["label"]: item["score"] for item in row} for row in json.loads(local_answer(int8, requests[0]))
    ]
    fp32 = [
        {item["label"]: item["score"] for item in row}
        for row in json.loads(local_answer(torch_model, requests[0]))
    ]
    off = lambda a, b: max(abs(x[k] - y[k]) for x, y in zip(a, b, strict=True) for k in x)  # noqa: E731
    assert off(ranked, mine) <= 1e-6 < off(ranked, fp32)
