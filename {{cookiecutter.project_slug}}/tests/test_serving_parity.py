"""Container parity: the packaged model.tar.gz under the inference toolkit's own handler service.

Needs a separate virtualenv pinned like the Hugging Face inference container (transformers
4.51.3, sagemaker-huggingface-inference-toolkit 2.6.0, which does not import with transformers
5); point PARITY_PYTHON at its python. The template's ``.ci/parity-env.sh VENV`` builds one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import labelled_records

from nsmc_sentiment_classifier.serving import batch, container, inference, package

PARITY_PYTHON = os.environ.get("PARITY_PYTHON", "")
pytestmark = pytest.mark.skipif(
    not PARITY_PYTHON,
    reason="set PARITY_PYTHON to the python of a venv pinned like the inference container "
    "(transformers 4.51.3 + sagemaker-huggingface-inference-toolkit 2.6.0)",
)

JSON, CSV, JSONL = "application/json", "text/csv", "application/jsonlines"
CONTAINER_LIMITS = {"INFERENCE_MAX_TEXTS": "50", "INFERENCE_MAX_BODY_BYTES": "20000"}


def csv_body(texts):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "inputs"])
    writer.writerows(enumerate(texts))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def texts(config):
    records = labelled_records(config, 40, offset=4000)
    # Plus an empty text and one longer than the tiny model's 256 positions (truncated).
    return [text for text, _ in records] + ["", "끝까지 본 내 자신이 대견하다 " * 60]


BOM = "\ufeff"
# Accept headers with wildcards, lists and parameters: both sides answer the same body; locally
# the Content-Type is the concrete type, while the container's toolkit (2.6.0,
# handler_service.handle) echoes the Accept header as the Content-Type, except "*/*" and none.
ACCEPTS = ["application/*", "text/csv, application/json;q=0.5", "application/json; charset=utf-8", "text/*"]


def edge_cases(texts):
    body = json.dumps({"inputs": texts[:3]}, ensure_ascii=False)
    byte_order_marked = [
        (JSON, JSON, BOM + body),
        (CSV, CSV, BOM + csv_body(texts[:3])),
        (
            JSONL,
            JSONL,
            BOM + "".join(json.dumps({"inputs": t}, ensure_ascii=False) + "\n" for t in texts[:3]),
        ),
        ("text/plain", JSON, BOM + texts[2]),
    ]
    return byte_order_marked + [(JSON, accept, body) for accept in ACCEPTS]


@pytest.fixture(scope="module")
def container_answers(tiny_model_dir, tmp_path_factory, texts):
    """Package the model, extract it as SageMaker does, and answer requests in the toolkit."""
    work = tmp_path_factory.mktemp("parity")
    archive = work / "model.tar.gz"
    package.build_model_archive(tiny_model_dir, archive)
    model_dir = work / "opt-ml-model"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
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
    # Edge cases where the local server and the container must agree (see EDGE_CASES).
    requests += [
        {"content_type": ct, "accept": accept, "body": body} for ct, accept, body in edge_cases(texts)
    ]
    (work / "requests.json").write_text(json.dumps(requests, ensure_ascii=False), "utf-8")
    harness = Path(__file__).with_name("parity_harness.py")
    # A clean environment: nothing of this project's (transformers 5) site on the path.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "OMP_NUM_THREADS": "1", **CONTAINER_LIMITS}
    result = subprocess.run(
        [
            PARITY_PYTHON,
            str(harness),
            str(model_dir),
            str(work / "requests.json"),
            str(work / "results.json"),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"toolkit harness failed:\n{result.stdout}\n{result.stderr}"
    version = subprocess.run(
        [PARITY_PYTHON, "-c", "import transformers; print(transformers.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == container.CONTAINER_TRANSFORMERS, (
        f"PARITY_PYTHON has transformers {version}, but deploy's default image has "
        f"{container.CONTAINER_TRANSFORMERS} (serving/container.py): test that image or change the default"
    )
    toolkit = subprocess.run(
        [
            PARITY_PYTHON,
            "-c",
            "import importlib.metadata as m; print(m.version('sagemaker-huggingface-inference-toolkit'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert toolkit == container.CONTAINER_TOOLKIT, (
        f"PARITY_PYTHON has toolkit {toolkit}; deploy's default image: {container.CONTAINER_TOOLKIT}"
    )
    answers = json.loads((work / "results.json").read_text("utf-8"))
    return requests, answers


@pytest.fixture(scope="module")
def local(tiny_model_dir):
    return inference.model_fn(str(tiny_model_dir))


def local_answer(classifier, request):
    decoded = inference.input_fn(request["body"].encode("utf-8"), request["content_type"])
    return inference.output_fn(inference.predict_fn(decoded, classifier), request["accept"])


def assert_same(container, ours):
    if isinstance(ours, dict):
        assert container["label"] == ours["label"]
        assert abs(container["score"] - ours["score"]) <= 1e-4
    else:
        assert isinstance(container, list) and len(container) == len(ours)
        for theirs, mine in zip(container, ours, strict=True):
            assert_same(theirs, mine)


def test_json_and_text_requests_match_local_predictions(container_answers, local):
    requests, answers = container_answers
    for index in (0, 1, 2, 3, 6):
        assert answers[index]["status"] == 200, answers[index]
        assert answers[index]["content_type"] == JSON
        assert_same(json.loads(answers[index]["body"]), json.loads(local_answer(local, requests[index])))


def test_container_matches_the_local_batch_prediction(container_answers, local, texts):
    _, answers = container_answers
    container = json.loads(answers[2]["body"])
    ours = batch.classify(local, texts, progress=False)
    for ranked, scores in zip(container, ours.scores, strict=True):
        by_label = {item["label"]: item["score"] for item in ranked}
        for label, score in zip(ours.labels, scores, strict=True):
            assert abs(by_label[label] - score) <= 1e-4


def test_csv_and_jsonlines_match(container_answers, local, texts, config):
    requests, answers = container_answers
    csv_answer, jsonl_answer = answers[4], answers[5]
    assert csv_answer["status"] == 200 and csv_answer["content_type"] == CSV
    theirs = list(csv.DictReader(io.StringIO(csv_answer["body"])))
    mine = list(csv.DictReader(io.StringIO(local_answer(local, requests[4]))))
    assert len(theirs) == len(mine) == len(texts)
    for container_row, local_row in zip(theirs, mine, strict=True):
        assert container_row["label"] == local_row["label"]
        for column in ("score", *(f"score_{n}" for n in config.data.label_names)):
            assert abs(float(container_row[column]) - float(local_row[column])) <= 1e-4
    assert jsonl_answer["status"] == 200 and jsonl_answer["content_type"] == JSONL
    lines = jsonl_answer["body"].splitlines()
    assert len(lines) == len(texts)
    assert_same(
        [json.loads(line) for line in lines],
        [json.loads(line) for line in local_answer(local, requests[5]).splitlines()],
    )


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


def test_byte_order_marks_and_accept_variants_agree_with_the_local_server(container_answers, local, texts):
    requests, answers = container_answers
    cases = edge_cases(texts)
    for request, answer in zip(requests[-len(cases) :], answers[-len(cases) :], strict=True):
        assert answer["status"] == 200, (request["content_type"], request["accept"], answer)
        ours = local_answer(local, request)
        concrete = inference.response_type(request["accept"])
        if request["accept"] in ACCEPTS:
            assert answer["content_type"] == request["accept"], "toolkit 2.6.0 echoes Accept"
        else:
            assert answer["content_type"] == concrete
        if concrete == CSV:
            theirs_rows = list(csv.DictReader(io.StringIO(answer["body"])))
            ours_rows = list(csv.DictReader(io.StringIO(ours)))
            assert [r["label"] for r in theirs_rows] == [r["label"] for r in ours_rows]
        elif concrete == JSONL:
            assert_same(
                [json.loads(line) for line in answer["body"].splitlines()],
                [json.loads(line) for line in ours.splitlines()],
            )
        else:
            assert_same(json.loads(answer["body"]), json.loads(ours))
