"""The local server (``serve``): hosting contract, 16 concurrent clients, 4xx, SIGTERM."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import PACKAGE

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """``<package> serve`` in a subprocess on 127.0.0.1, on a free port the OS picks."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "INFERENCE_MAX_TEXTS": "64", "PYTHONUNBUFFERED": "1"}
    src = str(Path(__file__).parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                PACKAGE,
                "serve",
                "--model",
                str(tiny_model_dir),
                "--port",
                "0",
                "--max-body-bytes",
                str(MAX_BODY),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    port = None
    while port is None:
        started = log.read_text("utf-8", "replace")
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", started)
        if match:
            port = int(match.group(1))
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server did not start:\n{log.read_text('utf-8', 'replace')}")
        else:
            time.sleep(0.1)
    yield process, port, log
    if process.poll() is None:
        process.kill()
        process.wait()


def call(port, method, path, body=None, headers=None, connection=None):
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        if own:
            connection.close()


def invoke(port, payload, content_type="application/json", accept=None, connection=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return call(port, "POST", "/invocations", body, headers, connection)


def test_ping_and_invocations(server, tiny_model_dir, config):
    _, port, _ = server
    assert call(port, "GET", "/ping")[0] == 200
    status, content_type, body = invoke(port, {"inputs": ["정말 재밌어요", "별로"]})
    assert status == 200 and content_type.startswith("application/json")
    answers = json.loads(body)
    assert [set(a) for a in answers] == [{"label", "score"}] * 2
    status, content_type, body = invoke(port, b"inputs\n\xec\xa2\x8b\xeb\x8b\xa4\n", "text/csv", "text/csv")
    assert status == 200 and content_type.startswith("text/csv")
    header = next(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert header == ["label", "score", *(f"score_{n}" for n in config.data.label_names)]


def test_sixteen_concurrent_clients_get_their_own_answers(server, tiny_model_dir):
    _, port, _ = server
    from nsmc_sentiment_classifier.serving import inference

    classifier = inference.model_fn(str(tiny_model_dir))
    texts = [f"{'아주 ' * (i % 7)}좋은 영화 {i}" for i in range(16 * 4)]

    def client(number):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            results = []
            for round_ in range(4):  # keep-alive: several requests per connection
                text = texts[number * 4 + round_]
                status, _, body = invoke(
                    port, {"inputs": text, "parameters": {"top_k": None}}, connection=connection
                )
                results.append((text, status, json.loads(body)))
            return results
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = [r for batch in pool.map(client, range(16)) for r in batch]
    assert len(results) == 64
    expected = inference.predict_fn(inference.Request([t for t, _, _ in results]), classifier)
    for (_, status, answer), scores in zip(results, expected.scores, strict=True):
        assert status == 200
        by_label = {item["label"]: item["score"] for item in answer}
        assert [by_label[label] for label in expected.labels] == pytest.approx(scores, abs=1e-5)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/invocations", b'{"inputs": [', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"text": "a"}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"inputs": []}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"inputs": [1]}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b"x", {"Content-Type": "image/png"}, 415),
        (
            "POST",
            "/invocations",
            b'{"inputs": "a"}',
            {"Content-Type": "application/json", "Accept": "image/png"},
            406,
        ),
        (
            "POST",
            "/invocations",
            json.dumps({"inputs": ["a"] * 65}).encode(),
            {"Content-Type": "application/json"},
            413,
        ),
        ("POST", "/invocations", b"a" * (MAX_BODY + 1), {"Content-Type": "text/plain"}, 413),
        ("POST", "/nowhere", b"{}", {"Content-Type": "application/json"}, 404),
        ("GET", "/invocations", None, {}, 404),
    ],
)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, method, path, body, headers, status):
    _, port, _ = server
    got, content_type, answer = call(port, method, path, body, headers)
    assert got == status
    error = json.loads(answer)
    assert error["code"] == status and error["message"]
    assert call(port, "GET", "/ping")[0] == 200
    assert invoke(port, {"inputs": "괜찮네"})[0] == 200


def test_missing_content_length_is_rejected(server):
    _, port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    assert connection.getresponse().status == 411
    connection.close()


def test_sigterm_shuts_down_cleanly(server):
    process, port, log = server
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert invoke(port, {"inputs": "마지막"}, connection=idle)[0] == 200  # left open, idle
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert time.monotonic() - started < 10, "an idle keep-alive connection delayed shutdown"
    assert "server stopped" in log.read_text("utf-8")
    idle.close()
    with pytest.raises(OSError):
        call(port, "GET", "/ping")


def test_micro_batcher_merges_requests_and_isolates_errors(tiny_model_dir):
    from nsmc_sentiment_classifier.serving import inference
    from nsmc_sentiment_classifier.serving import server as server_module

    classifier = inference.model_fn(str(tiny_model_dir))

    batcher = server_module.MicroBatcher(classifier, max_texts=1000)
    requests = [inference.Request([f"{'정말 ' * i}좋다", "별로"]) for i in range(16)]
    requests[5] = inference.Request(["너무 길다 " * 300], truncation=False)
    try:
        # Hold the model thread busy so that all 16 requests queue up and merge.
        blocker = inference.Request(["잠깐"] * 10, progress=lambda n: time.sleep(0.3))
        with ThreadPoolExecutor(max_workers=17) as pool:
            first = pool.submit(batcher.predict, blocker)
            time.sleep(0.1)
            futures = [pool.submit(batcher.predict, r) for r in requests]
            first.result()
            outcomes: list[inference.Prediction | inference.RequestError] = []
            for future in futures:
                try:
                    outcomes.append(future.result(timeout=60))
                except inference.RequestError as error:
                    outcomes.append(error)
    finally:
        batcher.close()
    assert isinstance(outcomes[5], inference.RequestError) and "truncation" in str(outcomes[5])
    for index, (request, outcome) in enumerate(zip(requests, outcomes, strict=True)):
        if index == 5:
            continue
        assert isinstance(outcome, inference.Prediction)
        assert outcome.request is request
        expected = inference.predict_fn(request, classifier).scores
        assert len(outcome.scores) == 2
        for got, want in zip(outcome.scores, expected, strict=True):
            assert got == pytest.approx(want, abs=1e-5)
