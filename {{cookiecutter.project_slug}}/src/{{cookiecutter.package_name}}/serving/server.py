"""Local HTTP server with the SageMaker hosting contract: ``GET /ping``, ``POST /invocations``.

Requests go through the very handlers the container uses (``inference.py``), so a request that
works here works on an endpoint. Standard library only (``ThreadingHTTPServer``): a thread per
connection; one model thread runs ``predict_fn`` for all of them, merging the requests that
wait at the same time into one call (micro-batching), which is how concurrent clients get
more throughput from the same cores.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import signal
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import inference

logger = logging.getLogger(__name__)


class _Job:
    def __init__(self, request: inference.Request) -> None:
        self.request = request
        self.done = threading.Event()
        self.prediction: inference.Prediction | None = None
        self.error: BaseException | None = None


class MicroBatcher:
    """Runs ``predict_fn`` on one thread, for all requests waiting at that moment at once.

    One thread: parallel forward passes only oversubscribe the cores, and a fast tokenizer
    shared between threads can fail with "Already borrowed". A lone request is never delayed:
    merging only takes what is already queued while the previous call ran.
    """

    def __init__(self, classifier: inference.Classifier, max_texts: int) -> None:
        self.classifier = classifier
        self.max_texts = max_texts
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="model", daemon=True)
        self._thread.start()

    def predict(self, request: inference.Request) -> inference.Prediction:
        job = _Job(request)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.prediction is not None
        return job.prediction

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, texts = [job], len(job.request.texts)
            while texts < self.max_texts:
                try:
                    waiting = self._queue.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                jobs.append(waiting)
                texts += len(waiting.request.texts)
            groups: dict[tuple[bool, int | None], list[_Job]] = {}
            for waiting in jobs:
                options = (waiting.request.truncation, waiting.request.max_length)
                groups.setdefault(options, []).append(waiting)
            for group in groups.values():
                self._predict_group(group)

    def _predict_group(self, jobs: list[_Job]) -> None:
        first = jobs[0].request
        merged = inference.Request(
            [text for job in jobs for text in job.request.texts],
            truncation=first.truncation,
            max_length=first.max_length,
        )
        try:
            prediction = inference.predict_fn(merged, self.classifier)
        except BaseException as error:
            if len(jobs) > 1:
                # Run them one by one so that only the request at fault gets the error.
                for job in jobs:
                    self._predict_group([job])
                return
            jobs[0].error = error
            jobs[0].done.set()
            return
        start = 0
        for job in jobs:
            end = start + len(job.request.texts)
            job.prediction = inference.Prediction(
                job.request, prediction.labels, prediction.scores[start:end]
            )
            start = end
            job.done.set()


class InferenceServer(ThreadingHTTPServer):
    # Finish in-flight requests on shutdown instead of cutting them off.
    daemon_threads = False
    block_on_close = True
    # Room for bursts of concurrent clients connecting at once (the default backlog is 5).
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], classifier: inference.Classifier, max_body_bytes: int
    ) -> None:
        super().__init__(address, InvocationHandler)
        self.classifier = classifier
        self.max_body_bytes = max_body_bytes
        self.batcher = MicroBatcher(classifier, inference.MAX_TEXTS)
        # Keep-alive connections waiting for their next request, closed at shutdown so that
        # joining their threads does not wait for the read timeout.
        self._idle: set[socket.socket] = set()
        self._idle_lock = threading.Lock()
        self.stopping = False

    def set_idle(self, connection: socket.socket, idle: bool) -> None:
        with self._idle_lock:
            if idle and self.stopping:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            elif idle:
                self._idle.add(connection)
            else:
                self._idle.discard(connection)

    def shutdown(self) -> None:
        with self._idle_lock:
            self.stopping = True
            for connection in self._idle:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._idle.clear()
        super().shutdown()


class InvocationHandler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    # Seconds a client may stall while sending; a stuck client must not hold a thread forever.
    timeout = 60

    def handle_one_request(self) -> None:
        self.server.set_idle(self.connection, True)
        super().handle_one_request()
        if self.server.stopping:
            self.close_connection = True

    def parse_request(self) -> bool:
        self.server.set_idle(self.connection, False)
        return super().parse_request()

    def finish(self) -> None:
        self.server.set_idle(self.connection, False)  # the connection is done; forget it
        super().finish()

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        if self.path.split("?", 1)[0] == "/ping":
            self._send(HTTPStatus.OK, b'{"status": "healthy"}', inference.JSON)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such path {self.path!r}; use /ping or /invocations")

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != "/invocations":
            self._error(HTTPStatus.NOT_FOUND, f"no such path {self.path!r}; use POST /invocations")
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.strip().isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
            return
        length = int(length_header)
        if length > self.server.max_body_bytes:
            # The unread body would be parsed as the next request; close the connection.
            self.close_connection = True
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {length} bytes exceeds the limit of {self.server.max_body_bytes}",
            )
            return
        body = self.rfile.read(length)
        started = time.perf_counter()
        try:
            request = inference.input_fn(body, self.headers.get("Content-Type"))
            # Fail on a bad Accept before spending model time.
            accept = self.headers.get("Accept")
            inference.response_type(accept)
            prediction = self.server.batcher.predict(request)
            payload = inference.output_fn(prediction, accept)
        except inference.RequestError as error:
            self._error(HTTPStatus(error.status), str(error))
            return
        except Exception as error:  # a bug or resource problem: report it, keep serving
            logger.exception("request failed")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")
            return
        elapsed_ms = 1000 * (time.perf_counter() - started)
        logger.debug("%d texts in %.1f ms", len(request.texts), elapsed_ms)
        self._send(HTTPStatus.OK, payload.encode("utf-8"), inference.response_type(accept))

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = json.dumps({"code": int(status), "type": status.phrase, "message": message})
        self._send(status, body.encode("utf-8"), inference.JSON)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base-class signature)
        logger.debug("%s " + format, self.address_string(), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.info('"%s" %s', self.requestline, code)


def make_server(
    model_dir: str, host: str = "127.0.0.1", port: int = 8080, max_body_bytes: int | None = None
) -> InferenceServer:
    """Load the model and bind the server (port 0 picks a free port: see ``server_address``)."""
    classifier = inference.model_fn(str(model_dir))
    return InferenceServer((host, port), classifier, max_body_bytes or inference.MAX_BODY_BYTES)


def serve(server: InferenceServer) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and close the socket."""

    def stop(signum: int, _frame: Any) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, so it must not run on that thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    host, port = server.server_address[:2]
    logger.info("serving on http://%s:%d (GET /ping, POST /invocations)", host, port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.batcher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("server stopped")
