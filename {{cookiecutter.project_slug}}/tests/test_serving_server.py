"""The local server (``serve``): hosting contract, page, fairness, hostile clients, SIGTERM."""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

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


@pytest.mark.engine
def test_texts_cut_to_the_token_limit_are_logged(server):
    _, port, log = server
    assert invoke(port, {"inputs": ["아주 긴 리뷰 " * 400, "짧다"]})[0] == 200
    time.sleep(0.2)
    assert re.search(r"POST /invocations 200, 2 text\(s\), 1 cut to \d+ tokens", log.read_text("utf-8"))


@pytest.mark.engine
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


DEEP_JSON = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.engine
@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/invocations", b'{"inputs": [', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"text": "a"}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"inputs": []}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"inputs": [1]}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", DEEP_JSON[:MAX_BODY], {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b"[" * 50_000, {"Content-Type": "application/jsonlines"}, 400),
        ("POST", "/invocations", b'{"inputs": "\\ud800"}', {"Content-Type": "application/json"}, 400),
        ("POST", "/invocations", b'{"inputs": "\xff"}', {"Content-Type": "application/json"}, 400),
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
        ("GET", "/invocations", None, {}, 405),
        ("PUT", "/invocations", b"{}", {"Content-Type": "application/json"}, 405),
        ("DELETE", "/ping", None, {}, 405),
        ("POST", "/ping", b"{}", {}, 405),
    ],
)
def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(server, method, path, body, headers, status):
    _, port, _ = server
    got, content_type, answer = call(port, method, path, body, headers)
    assert got == status
    assert content_type.startswith("application/json")
    error = json.loads(answer)
    assert error["code"] == status and error["message"]
    assert call(port, "GET", "/ping")[0] == 200
    assert invoke(port, {"inputs": "괜찮네"})[0] == 200


@pytest.mark.engine
def test_wrong_method_names_the_allowed_ones(server):
    _, port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/invocations")
    response = connection.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    response.read()
    connection.close()


@pytest.mark.engine
def test_missing_content_length_is_rejected(server):
    _, port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411 and json.loads(response.read())["code"] == 411
    connection.close()


@pytest.mark.engine
def test_chunked_body_is_framed_like_a_sized_one(server):
    _, port, _ = server
    payload = json.dumps({"inputs": ["정말 재밌어요", "별로"]}).encode("utf-8")
    chunks = [payload[:7], payload[7:20], payload[20:]]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/invocations",
        body=iter(chunks),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    chunked = (response.status, json.loads(response.read()))
    # The same connection stays usable: the chunked body was consumed exactly.
    assert invoke(port, {"inputs": ["정말 재밌어요", "별로"]}, connection=connection)[0] == 200
    connection.close()
    status, _, body = invoke(port, {"inputs": ["정말 재밌어요", "별로"]})
    assert chunked == (status, json.loads(body))


@pytest.mark.engine
def test_unparseable_http_gets_400_and_the_server_keeps_serving(server):
    """uvicorn answers what it cannot parse as HTTP itself (plain text) and closes that
    connection; the server goes on serving."""
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert call(port, "GET", "/ping")[0] == 200


@pytest.mark.engine
def test_an_unexpected_error_is_a_500_with_a_reference_and_no_details(caplog):
    """A bug inside the server answers 500 with a reference to look up in the server log; the
    exception's type and message (paths, internals) go to the log only."""
    from nsmc_sentiment_classifier.serving.options import (
        ServerOptions,
    )
    from nsmc_sentiment_classifier.serving.server import App

    class BrokenScheduler:
        @property
        def alive(self) -> bool:
            raise KeyError("/srv/secret/model.safetensors")

    app = App(cast(Any, BrokenScheduler()), ServerOptions(), 1024, b"")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/ping", "headers": [], "client": ("127.0.0.1", 5)}
    with caplog.at_level(logging.ERROR):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 500
    message = json.loads(sent[1]["body"])["message"]
    assert "secret" not in message and "KeyError" not in message
    found = re.search(r"reference (\w+)", message)
    assert found, message
    logged = [record for record in caplog.records if found.group(1) in record.getMessage()]
    assert logged and logged[0].exc_info and "secret" in str(logged[0].exc_info[1])


def test_page_shows_the_models_labels_and_version(server, config):
    _, port, _ = server
    status, content_type, body = call(port, "GET", "/")
    assert status == 200 and content_type.startswith("text/html")
    page = body.decode("utf-8")
    found = re.search(r'<script type="application/json" id="model-info">(.*?)</script>', page)
    assert found, "the page embeds the model's labels and version"
    info = json.loads(found.group(1))
    assert info["labels"] == list(config.data.label_names)
    assert info["version"] and info["max_length"] > 0
    assert info["thresholds"] is None, "a single-label model decides its best label, no thresholds"
    assert "http://" not in page and "https://" not in page, "the page must not load anything from elsewhere"


@pytest.mark.engine
def test_the_page_and_answers_of_a_multi_label_model(live_server, multi_label_model_dir, tmp_path):
    """The page gets each label's threshold (the model's, 0.5 where none was recorded); POST
    answers the decided labels."""
    import shutil

    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS

    untuned = tmp_path / "untuned"
    shutil.copytree(multi_label_model_dir, untuned)
    recorded = json.loads((untuned / "config.json").read_text("utf-8"))
    del recorded["label_thresholds"]
    (untuned / "config.json").write_text(json.dumps(recorded), "utf-8")
    for model, thresholds in ((untuned, [0.5] * 4), (multi_label_model_dir, MULTI_LABEL_THRESHOLDS)):
        _, port = live_server(model)
        _, _, body = call(port, "GET", "/")
        found = re.search(r'id="model-info">(.*?)</script>', body.decode("utf-8"))
        assert found
        assert json.loads(found.group(1))["thresholds"] == dict(
            zip(MULTI_LABEL_NAMES, thresholds, strict=True)
        )
    status, _, body = invoke(port, {"inputs": ["정말 재밌어요", "별로"]})
    answers = json.loads(body)
    assert status == 200 and len(answers) == 2
    assert all({"hate", "gender"} <= {item["label"] for item in answer} for answer in answers)


@pytest.mark.engine
def test_page_escapes_what_it_embeds():
    from nsmc_sentiment_classifier.serving.page import render_page

    braces = "{" * 2 + "x" + "}" * 2  # written so: this file is itself a Jinja template
    page = render_page(["</script><script>alert(1)</script>", f"&amp; \"q\" '{braces}'"], "v1", 128)
    found = re.search(r'id="model-info">(.*?)</script>', page.decode("utf-8"), re.S)
    assert found
    embedded = found.group(1)
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert json.loads(embedded)["labels"][0] == "</script><script>alert(1)</script>"


@pytest.mark.engine
@pytest.mark.parametrize(
    "flags",
    [["--batch-size", "-1"], ["--batch-size", "0"], ["--time-budget", "0"], ["--max-body-bytes", "0"]],
)
def test_invalid_options_refuse_to_start(tiny_model_dir, flags):
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "serve", "--model", str(tiny_model_dir), "--port", "0", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "serving on" not in result.stderr
    assert flags[0].lstrip("-").replace("-", " ") in result.stderr


@pytest.fixture
def live(live_server, tiny_model_dir):
    return lambda **options: live_server(tiny_model_dir, **options)


@pytest.mark.engine
def test_connections_send_without_nagle_delay(live):
    # Headers and body leave in two writes; without TCP_NODELAY each keep-alive answer waited
    # for the client's delayed ACK (~40 ms). Checked as the socket option, not as a timing.
    server, port = live()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    assert call(port, "GET", "/ping", connection=connection)[0] == 200
    sockets = [c.transport.get_extra_info("socket") for c in server._server.server_state.connections]
    assert sockets
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
    connection.close()


@pytest.mark.engine
def test_a_small_request_is_not_stuck_behind_a_large_one(live):
    server, port = live(batch_size=8)
    big_texts = [f"{'아주 ' * (i % 13)}긴 리뷰 {i}" for i in range(1024)]
    finished: list[str] = []

    def big():
        status, _, _ = invoke(port, {"inputs": big_texts})
        finished.append(f"big {status}")

    thread = threading.Thread(target=big)
    thread.start()
    while server.scheduler.texts_scored == 0:
        time.sleep(0.005)
    status, _, _ = invoke(port, {"inputs": "짧은 리뷰"})
    finished.append(f"small {status}")
    scored_when_small_was_done = server.scheduler.texts_scored
    thread.join(timeout=120)
    assert finished == ["small 200", "big 200"]
    # The small request took its turn after at most a couple of the big one's sub-batches.
    assert scored_when_small_was_done < 1024 // 2


@pytest.mark.engine
def test_work_of_a_client_that_hung_up_is_dropped(live, caplog):
    server, port = live(batch_size=8)
    body = json.dumps({"inputs": [f"리뷰 {i} " * 20 for i in range(2048)]}).encode("utf-8")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        while server.scheduler.texts_scored == 0:
            time.sleep(0.005)
    deadline = time.monotonic() + 60
    while server.scheduler.jobs_dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.scheduler.jobs_dropped == 1
    assert invoke(port, {"inputs": "다음 손님"})[0] == 200
    assert server.scheduler.texts_scored < 2048
    assert "Traceback" not in caplog.text and "BrokenPipe" not in caplog.text


@pytest.mark.engine
def test_a_request_past_its_time_budget_gets_503(live):
    server, port = live(batch_size=4, time_budget=0.2)
    status, content_type, body = invoke(port, {"inputs": [f"리뷰 {i} " * 30 for i in range(4000)]})
    assert status == 503 and content_type.startswith("application/json")
    assert "time budget of 0.2 s" in json.loads(body)["message"]
    assert server.scheduler.texts_scored < 4000
    assert invoke(port, {"inputs": "그다음"})[0] == 200


@pytest.mark.engine
def test_requests_share_forward_passes_and_only_the_faulty_one_fails(live, tiny_model_dir):
    from nsmc_sentiment_classifier.serving import inference

    server, port = live(batch_size=64)
    payloads: list[dict[str, Any]] = [{"inputs": [f"{'정말 ' * i}좋다", "별로"]} for i in range(16)]
    payloads[5] = {"inputs": ["너무 길다 " * 300], "parameters": {"truncation": False}}
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            pool.map(
                lambda p: invoke(port, {**p, "parameters": {"top_k": None, **p.get("parameters", {})}}),
                payloads,
            )
        )
    assert answers[5][0] == 400 and "truncation" in json.loads(answers[5][2])["message"]
    classifier = inference.model_fn(str(tiny_model_dir))
    for index, (status, _, body) in enumerate(answers):
        if index == 5:
            continue
        assert status == 200
        expected = inference.predict_fn(inference.Request(payloads[index]["inputs"]), classifier)
        for answer, scores in zip(json.loads(body), expected.scores, strict=True):
            by_label = {item["label"]: item["score"] for item in answer}
            assert [by_label[label] for label in expected.labels] == pytest.approx(scores, abs=1e-5)


@pytest.mark.engine
def test_sixty_four_clients_mixing_good_and_bad_requests_get_no_5xx(live, caplog):
    _, port = live(batch_size=16, max_body_bytes=MAX_BODY)
    kinds = [
        ("POST", "/invocations", json.dumps({"inputs": ["좋아요", "별로예요"]}).encode(), 200),
        ("POST", "/invocations", b'{"inputs": [', 400),
        ("GET", "/invocations", None, 405),
        ("POST", "/invocations", b"a" * (MAX_BODY + 1), 413),
        ("GET", "/ping", None, 200),
        ("POST", "/invocations", json.dumps({"inputs": ["리뷰"] * 40}).encode(), 200),
    ]
    stop_at = time.monotonic() + 5
    problems: list[str] = []

    def client(number):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        count = 0
        try:
            while time.monotonic() < stop_at:
                method, path, body, expected = kinds[(number + count) % len(kinds)]
                count += 1
                try:
                    status, _, _ = call(
                        port, method, path, body, {"Content-Type": "application/json"}, connection
                    )
                except (OSError, http.client.HTTPException) as error:
                    problems.append(f"{method} {path}: {type(error).__name__}: {error}")
                    connection.close()
                    continue
                if status != expected:
                    problems.append(f"{method} {path}: {status}, expected {expected}")
                if status == 413:  # the server closes the connection after an oversized body
                    connection.close()
        finally:
            connection.close()
        return count

    with ThreadPoolExecutor(max_workers=64) as pool:
        total = sum(pool.map(client, range(64)))
    assert not problems, problems[:10]
    assert total >= 64
    assert "Traceback" not in caplog.text, "client errors are one log line each"


@pytest.mark.engine
def test_sigterm_shuts_down_cleanly_despite_idle_and_stalled_clients(server):
    process, port, log = server
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert invoke(port, {"inputs": "마지막"}, connection=idle)[0] == 200  # left open, idle
    stalled = socket.create_connection(("127.0.0.1", port), timeout=40)
    stalled.sendall(b'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"inp')
    time.sleep(0.2)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
    assert time.monotonic() - started < 30, "a stalled client delayed shutdown"
    text = log.read_text("utf-8")
    assert "server stopped" in text and "Traceback" not in text
    idle.close()
    stalled.close()
    with pytest.raises(OSError):
        call(port, "GET", "/ping")


@pytest.mark.engine
def test_a_long_text_among_short_ones_gets_every_answer(live):
    # 16 short texts and one of 3,000 characters: the short ones not yet tokenised were never
    # scheduled, and the request waited out its time budget for a 503.
    _, port = live(time_budget=10)
    texts = [f"짧은 리뷰 {i}" for i in range(8)] + ["아주 긴 리뷰 " * 430] + [f"좋다 {i}" for i in range(8)]
    for content_type, body in (
        ("application/json", json.dumps({"inputs": texts}).encode("utf-8")),
        ("application/jsonlines", "".join(json.dumps({"inputs": t}) + "\n" for t in texts).encode("utf-8")),
    ):
        status, _, answer = invoke(port, body, content_type, "application/jsonlines")
        assert status == 200, answer
        assert len(answer.decode("utf-8").splitlines()) == 17


@pytest.mark.engine
@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": "a", "parameters": {"top_k": ' + b"9" * 5000 + b"}}",
        b'{"inputs": ' + b"1" * 5000 + b"}",
    ],
)
def test_a_number_too_long_to_parse_is_a_400(live, body):
    _, port = live()
    status, content_type, answer = invoke(port, body)
    assert status == 400 and content_type.startswith("application/json")
    assert "number is too long" in json.loads(answer)["message"]


@pytest.mark.engine
def test_serve_checks_its_options_before_importing_torch(tmp_path):
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    for command in (
        ["serve", "--model", str(tmp_path), "--port", "99999"],
        ["predict", str(tmp_path), "--batch-size", "0"],
    ):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", PACKAGE, *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert error and ("port must be 0-65535" in error[0] or "--batch-size" in error[0])
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert "torch" not in imported and "transformers" not in imported


@pytest.mark.engine
def test_sigterm_under_load_answers_every_request_in_flight(tiny_model_dir, tmp_path):
    log = tmp_path / "server.log"
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", PACKAGE, "serve", "--model", str(tiny_model_dir), "--port", "0"]
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [*command, "--batch-size", "1", "--shutdown-grace", "2"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"serving on http://127\.0\.0\.1:(\d+)", log.read_text("utf-8"))):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text("utf-8")
            time.sleep(0.1)
        port = int(match.group(1))
        # A step per text: the large requests outlast the grace period on any machine.
        sizes = [1, 2, 8, 64, 512, 4000, 17, 4000, 3]
        results: list[tuple[int, bytes] | BaseException] = [OSError("not answered")] * len(sizes)

        def client(number: int) -> None:
            texts = [f"{'아주 ' * (i % 9)}리뷰 {i}" for i in range(sizes[number])]
            try:
                status, _, body = invoke(port, {"inputs": texts})
                results[number] = (status, body)
            except (OSError, http.client.HTTPException) as error:
                results[number] = error

        threads = [threading.Thread(target=client, args=(n,)) for n in range(len(sizes))]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # all of them in flight
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=60)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text("utf-8")
    assert "Traceback" not in text and "never retrieved" not in text, text
    for size, result in zip(sizes, results, strict=True):
        assert isinstance(result, tuple), f"{size} texts: {result}"
        status, body = result
        answer = json.loads(body)
        if status == 200:
            assert len(answer) == size
        else:
            assert status == 503 and "shutting down" in answer["message"]
    with pytest.raises(OSError):
        call(port, "GET", "/ping")
