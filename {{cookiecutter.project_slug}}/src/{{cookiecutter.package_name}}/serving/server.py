"""Local HTTP server with the SageMaker hosting contract: ``GET /ping``, ``POST /invocations``.

Requests go through the very handlers the container uses (``inference.py``), so a request that
works here works on an endpoint; ``GET /`` adds a page to try the model in a browser.

HTTP itself (framing, keep-alive, chunked bodies, graceful shutdown) is uvicorn's. What is ours
is a small ASGI app and the scheduler of model work:

- One model thread scores for every request: parallel forward passes only oversubscribe the
  cores, and a fast tokenizer shared between threads can fail with "Already borrowed".
- Fair: each request is cut into sub-batches that the model thread takes in turn; a request
  that just arrived gets the next step, so a one-text request waits about one sub-batch
  however large the requests before it. Texts of several requests share a forward pass when
  a sub-batch has room. A request stays in turn until every one of its texts has been handed
  out (``Work.take`` hands out exactly the count asked for); tests/test_serving_scheduler.py
  drives this scheduler through thousands of random request mixes.
- Work for a client that hung up is dropped, and so is a request's rest once it has run past
  the time budget (below SageMaker's 60 s invocation limit): it gets a 503 with the reason.
- Shutdown (SIGTERM, Ctrl-C): no new connections; the requests in flight get the grace period,
  oldest first rather than in turn (taking turns would finish all of them late), and what is
  not done by its end gets a 503 with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import uvicorn

from . import inference
from .options import ServerOptions
from .page import render_page

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Seconds a client may pause while sending its body before it gets 408 (and frees the slot).
BODY_TIMEOUT = 15.0
# uvicorn cancels what is still running this long after the grace period (the app answers
# everything by its end; this only bounds a forward pass that never returns).
SHUTDOWN_BACKSTOP = 10
# An oversized body is read and discarded up to this many bytes, so that the client gets its
# 413 (closing while it still sends would reset the connection); beyond, the connection ends.
DRAIN_LIMIT = 64 * 1024 * 1024
# Room for bursts of clients connecting at once.
BACKLOG = 512
ROUTES = {"/": ("GET", "HEAD"), "/ping": ("GET", "HEAD"), "/invocations": ("POST",)}
SHUTTING_DOWN = "the server is shutting down; retry on another instance"


class ClientError(inference.RequestError):
    """A request the server refuses; ``close`` ends the connection (its framing is unknown)."""

    def __init__(
        self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None, close: bool = False
    ):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.close = close


def _unavailable(message: str, close: bool = False) -> ClientError:
    return ClientError(HTTPStatus.SERVICE_UNAVAILABLE, message, close=close)


@dataclass
class Job:
    """One request's work. The model thread settles ``future``; the event loop awaits it and
    cancels it when the client leaves (a thread-safe future, unlike asyncio's)."""

    work: inference.Work
    budget: float
    started: float = field(default_factory=time.monotonic)
    future: Future[inference.Prediction] = field(default_factory=Future)

    def finish(self, outcome: inference.Prediction | BaseException) -> None:
        with contextlib.suppress(InvalidStateError):  # cancelled or failed before: nobody waits
            if isinstance(outcome, BaseException):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)


class Scheduler:
    """The model thread: sub-batches from all waiting requests, taken in turn."""

    def __init__(self, classifier: inference.Classifier) -> None:
        self.classifier = classifier
        self.batch_size = classifier.batch_size
        # Requests not yet served go first, then the ones already under way, round-robin.
        self._new: deque[Job] = deque()
        self._running: deque[Job] = deque()
        self._new_only = False  # whether the last step served only new requests
        self._wake = threading.Condition()
        self._closed = False
        # Set when shutdown begins: the requests in flight must be done by then.
        self._stop_by: float | None = None
        self._grace = 0.0
        self.texts_scored = 0
        self.jobs_dropped = 0
        self._thread = threading.Thread(target=self._run, name="model", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, request: inference.Request, budget: float) -> Job:
        job = Job(inference.Work(request, self.classifier), budget)
        with self._wake:
            if self._closed or (self._stop_by is not None and time.monotonic() >= self._stop_by):
                raise _unavailable(SHUTTING_DOWN)
            self._new.append(job)
            self._wake.notify()
        return job

    def drain(self, grace: float) -> None:
        """Shutdown has begun: serve the requests in flight oldest first (in turn, all of them
        would finish late) and fail what is not done within ``grace`` seconds."""
        with self._wake:
            self._grace = grace
            self._stop_by = time.monotonic() + grace
            self._running = deque(sorted([*self._running, *self._new], key=lambda job: job.started))
            self._new.clear()
            self._wake.notify()

    def close(self) -> None:
        """Stop after the sub-batch under way; requests still waiting get 503."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._new or self._running or self._closed):
                    self._wake.wait()
                if self._closed:
                    for job in (*self._new, *self._running):
                        job.finish(_unavailable(SHUTTING_DOWN))
                    return
                picked = self._pick() if self._stop_by is None else self._pick_oldest_first()
            parts = []
            for job, count in picked:
                try:
                    parts.append((job, *job.work.take(count)))
                except Exception as error:  # a text this request may not send (truncation=false)
                    job.finish(error)
            if parts:
                self._score(parts)

    def _pick(self) -> list[tuple[Job, int]]:
        """Up to ``batch_size`` texts. Requests that just arrived get a step of their own
        (a one-text request then waits for the step under way and its own short one), but
        never twice in a row, so that a stream of small requests cannot starve a large one."""
        picked: list[tuple[Job, int]] = []
        room = self.batch_size
        served: list[Job] = []
        now = time.monotonic()
        queues = (self._new,) if self._new and not self._new_only else (self._running, self._new)
        self._new_only = queues == (self._new,)
        for queue in queues:
            while queue and room:
                job = queue.popleft()
                if not self._may_go_on(job, now):
                    continue
                take = job.work.even_count(min(room, job.work.remaining))
                picked.append((job, take))
                room -= take
                if job.work.remaining > take:
                    served.append(job)
        self._running.extend(served)
        return picked

    def _pick_oldest_first(self) -> list[tuple[Job, int]]:
        """While shutting down: up to ``batch_size`` texts of the oldest requests; every
        request is checked, so that all fail together at the end of the grace period."""
        self._running.extend(self._new)  # arrived after shutdown began: the newest
        self._new.clear()
        picked: list[tuple[Job, int]] = []
        room = self.batch_size
        waiting: deque[Job] = deque()
        now = time.monotonic()
        for job in self._running:
            if not self._may_go_on(job, now):
                continue
            take = job.work.even_count(min(room, job.work.remaining)) if room else 0
            if take:
                picked.append((job, take))
                room -= take
            if job.work.remaining > take:
                waiting.append(job)
        self._running = waiting
        return picked

    def _may_go_on(self, job: Job, now: float) -> bool:
        """Whether ``job`` gets texts in this step; one that may not is dropped or failed."""
        if job.future.cancelled():  # the client left
            self.jobs_dropped += 1
            logger.info("dropped %d unscored text(s) of a request nobody waits for", job.work.remaining)
            return False
        if job.future.done():  # failed on an earlier sub-batch
            return False
        total = len(job.work.request.texts)
        progress = f"scored {total - job.work.remaining} of {total} texts"
        if self._stop_by is not None and now >= self._stop_by:
            reason = (
                f"the server is shutting down and this request was not done within the "
                f"{self._grace:g} s grace period ({progress}); retry on another instance"
            )
        elif now > job.started + job.budget:
            reason = (
                f"not done within the time budget of {job.budget:g} s: {progress}; send fewer "
                "texts per request"
            )
        else:
            return True
        self.jobs_dropped += 1
        job.finish(_unavailable(reason))
        return False

    def _score(self, parts: list[tuple[Job, list[int], list[list[int]]]]) -> None:
        try:
            scores = inference.score_batch(self.classifier, [row for _, _, ids in parts for row in ids])
        except Exception:
            if len(parts) > 1:  # score each request on its own, so only the one at fault fails
                for part in parts:
                    self._score([part])
                return
            logger.exception("scoring failed")
            parts[0][0].finish(RuntimeError("the model failed on this request's texts"))
            return
        start = 0
        for job, indices, ids in parts:
            job.work.put(indices, scores[start : start + len(ids)])
            start += len(ids)
            self.texts_scored += len(indices)
            if job.work.done:
                job.finish(job.work.prediction())


class App:
    """The ASGI application: routes, body limits, errors as JSON, one log line per request."""

    def __init__(
        self, scheduler: Scheduler, options: ServerOptions, max_body_bytes: int, page: bytes
    ) -> None:
        self.scheduler = scheduler
        self.options = options
        self.max_body_bytes = max_body_bytes
        self.page = page
        self.in_flight = 0
        # Event-loop time by which every request must be answered, once shutdown has begun.
        self._stop_by: float | None = None

    def begin_shutdown(self) -> None:
        """No new connections come (uvicorn closed the socket); the requests in flight get the
        grace period, and what is not done by its end gets 503 (called on the event loop)."""
        grace = self.options.shutdown_grace
        self._stop_by = asyncio.get_running_loop().time() + grace
        self.scheduler.drain(grace)
        logger.info(
            "shutting down: %d request(s) in flight get at most %g s to finish", self.in_flight, grace
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.in_flight += 1
        try:
            await self._answer(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        client = scope.get("client")
        source = f"{client[0]}:{client[1]}" if client else "?"
        try:
            status, note = await self._route(scope, receive, send)
        except asyncio.CancelledError:
            if self._stop_by is None:
                raise
            # uvicorn's backstop after the grace period (a forward pass overran it): still an
            # answer, not its plain-text 500 and a traceback.
            await _send_error(send, _unavailable(SHUTTING_DOWN, close=True))
            logger.warning("%s %s 503 from %s: cut off at shutdown", method, path, source)
            return
        except inference.RequestError as error:  # the handlers' refusals and ours
            refusal = (
                error if isinstance(error, ClientError) else ClientError(HTTPStatus(error.status), str(error))
            )
            await _send_error(send, refusal)
            logger.warning("%s %s %d from %s: %s", method, path, error.status, source, error)
            return
        except Exception:  # a bug or resource problem: the details go to the log only
            reference = uuid.uuid4().hex[:12]
            logger.exception("%s %s failed (reference %s)", method, path, reference)
            message = f"internal server error (reference {reference}: the server log has the details)"
            await _send_error(send, ClientError(HTTPStatus.INTERNAL_SERVER_ERROR, message))
            return
        elapsed = 1000 * (time.perf_counter() - started)
        logger.info("%s %s %d%s in %.1f ms", method, path, status, note, elapsed)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, str]:
        method, path = scope["method"], scope["path"]
        allowed = ROUTES.get(path)
        if allowed is None:
            raise ClientError(
                HTTPStatus.NOT_FOUND, f"no such path {path!r}; use GET /, GET /ping or POST /invocations"
            )
        if method not in allowed:
            raise ClientError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{method} is not allowed on {path}; use {' or '.join(allowed)}",
                {"Allow": ", ".join(allowed)},
            )
        if path == "/":
            await _send(send, HTTPStatus.OK, self.page, "text/html")
            return HTTPStatus.OK, ""
        if path == "/ping":
            if not self.scheduler.alive:
                raise _unavailable("the model thread has stopped")
            await _send(send, HTTPStatus.OK, b'{"status": "healthy"}', inference.JSON)
            return HTTPStatus.OK, ""
        return await self._invoke(scope, receive, send)

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, str]:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        body = await self._read_body(headers, receive)
        if body is None:
            return 499, " (client closed the connection while sending)"
        accept = headers.get("accept")
        # Decoding a 6 MiB body takes a while: off the event loop, which serves everyone.
        request = await asyncio.get_running_loop().run_in_executor(
            None, inference.input_fn, body, headers.get("content-type")
        )
        media_type = inference.response_type(accept)  # a bad Accept fails before model time
        job = self.scheduler.submit(request, self.options.time_budget)
        prediction = await self._wait(job, receive)
        if prediction is None:
            return 499, f" (client left; {job.work.remaining} text(s) dropped)"
        payload = inference.output_fn(prediction, accept).encode("utf-8")
        await _send(send, HTTPStatus.OK, payload, media_type)
        cut = f", {prediction.truncated} cut to {job.work.max_length} tokens" if prediction.truncated else ""
        return HTTPStatus.OK, f", {len(request.texts)} text(s){cut}"

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        length = headers.get("content-length")
        declared = int(length) if length is not None else 0  # h11 has checked it is a number
        if length is None and "chunked" not in headers.get("transfer-encoding", "").lower():
            raise ClientError(
                HTTPStatus.LENGTH_REQUIRED, "a Content-Length header (or a chunked body) is required"
            )
        body = bytearray()
        more = True
        while more:
            message = await self._receive_body(receive)
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if max(len(body), declared) > self.max_body_bytes:
                await self._refuse_large(len(body), more, receive)
        return bytes(body)

    async def _refuse_large(self, received: int, more: bool, receive: Receive) -> None:
        """413, after reading what the client still sends (up to a point): a client that is
        still sending when the connection closes gets a reset instead of the answer."""
        drained, limit = received, self.max_body_bytes
        while more and drained <= DRAIN_LIMIT:
            message = await self._receive_body(receive)
            if message["type"] == "http.disconnect":
                break
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        raise ClientError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"request body of {drained}{'+' if more else ''} bytes exceeds the limit of {limit}",
            # Past the drain limit the rest of the body is unread: it would be parsed as the
            # next request, so the connection ends.
            close=more,
        )

    async def _receive_body(self, receive: Receive) -> Message:
        """The next part of the body: 408 when the client pauses too long, 503 (and the
        connection ends) when the shutdown's grace period ends first."""
        timeout = BODY_TIMEOUT
        if self._stop_by is not None:
            timeout = min(timeout, max(0.0, self._stop_by - asyncio.get_running_loop().time()))
        try:
            return await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            if timeout < BODY_TIMEOUT:
                raise _unavailable(SHUTTING_DOWN, close=True) from None
            raise ClientError(
                HTTPStatus.REQUEST_TIMEOUT, f"no request body data for {BODY_TIMEOUT:g} s", close=True
            ) from None

    async def _wait(self, job: Job, receive: Receive) -> inference.Prediction | None:
        """The prediction, or None when the client hung up first (its work is dropped)."""

        async def hang_up() -> None:
            # With the body read, the next message is the disconnect, if the client leaves.
            while (await receive())["type"] != "http.disconnect":
                pass

        outcome = asyncio.wrap_future(job.future)
        watcher = asyncio.ensure_future(hang_up())
        try:
            # The scheduler fails the job at its deadline; the margin only guards against a
            # sub-batch that never returns.
            waiting: set[asyncio.Future[Any]] = {outcome, watcher}
            done, _ = await asyncio.wait(waiting, timeout=job.budget + 5, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not outcome.done():
                outcome.cancel()  # cancels job.future too: the scheduler drops the rest
        if not outcome.cancelled():  # settled, even if just after the wait
            return outcome.result()
        if watcher in done:
            return None
        raise _unavailable(
            f"not done within the time budget of {job.budget:g} s; send fewer texts per request"
        )


async def _send_error(send: Send, error: ClientError) -> None:
    headers = {**error.headers, **({"Connection": "close"} if error.close else {})}
    body = {"code": int(error.status), "type": HTTPStatus(error.status).phrase, "message": str(error)}
    with contextlib.suppress(RuntimeError, OSError):  # the response had started or the client left
        await _send(send, error.status, json.dumps(body).encode("utf-8"), inference.JSON, headers)


async def _send(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw = [
        (b"content-type", f"{content_type}; charset=utf-8".encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ),
    ]
    await send({"type": "http.response.start", "status": int(status), "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown begins. No configuration or lifespan event
    comes that early, so this overrides ``Server.shutdown`` (a public method, called once when
    the server stops; tests/test_library_internals.py checks its signature)."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # First, before uvicorn closes the idle connections and waits for the busy ones.
        self._on_shutdown()
        await super().shutdown(sockets)


class InferenceServer:
    """A bound socket, the model and its scheduler; :meth:`serve` runs until SIGTERM/SIGINT."""

    def __init__(
        self, classifier: inference.Classifier, options: ServerOptions, listener: socket.socket, version: str
    ) -> None:
        self.socket = listener
        if options.batch_size is not None:
            classifier.batch_size = options.batch_size
        self.scheduler = Scheduler(classifier)
        scheme = classifier.scheme
        thresholds = scheme.decision_thresholds(len(classifier.labels))
        page = render_page(
            classifier.labels, version, classifier.max_length, thresholds, classifier.text_pair_columns
        )
        app = App(self.scheduler, options, options.max_body_bytes or inference.MAX_BODY_BYTES, page)
        config = uvicorn.Config(
            app,
            # uvicorn's own HTTP/1.1 parser whatever else is installed: its framing is the
            # one the tests prove (requests it cannot parse get its plain-text 400).
            http="h11",
            ws="none",
            loop="asyncio",
            lifespan="off",  # serve() closes the scheduler
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=math.ceil(options.shutdown_grace) + SHUTDOWN_BACKSTOP,
            backlog=BACKLOG,
        )
        self._server = _Uvicorn(config, app.begin_shutdown)

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    def serve(self) -> None:
        host, port = self.server_address
        shown = f"[{host}]" if ":" in host else host
        logger.info(
            "serving on http://%s:%d (GET / to try the model, GET /ping, POST /invocations)", shown, port
        )
        # uvicorn takes SIGTERM and SIGINT while it serves (and shuts down gracefully), then raises
        # the signal again for the handlers it found. Python's would end the process "killed by
        # SIGTERM" or with KeyboardInterrupt; a server that stopped cleanly on request exits
        # normally, so the handlers it finds ignore them.
        stopping = (signal.SIGTERM, signal.SIGINT)
        main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in stopping} if main else {}
        try:
            self._server.run(sockets=[self.socket])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.scheduler.close()
            self.socket.close()
        logger.info("server stopped")

    def stop(self) -> None:
        """Ask :meth:`serve` to finish (from another thread)."""
        self._server.should_exit = True


def make_server(model_dir: str | Path, options: ServerOptions | None = None) -> InferenceServer:
    """Check the options, bind the socket (port 0: any free port), then load the model."""
    options = options or ServerOptions()
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    listener = _bind(options.host, options.port)
    try:
        classifier = inference.load_model(str(model_dir), engine=options.engine)
    except BaseException:
        listener.close()
        raise
    return InferenceServer(classifier, options, listener, model_version(Path(model_dir)))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without it each
    # keep-alive answer waits ~40 ms (headers and body go out as two writes; Nagle meets the
    # client's delayed ACK). Measured: /ping p50 44 ms on keep-alive with proto 0, 0.8 ms fresh.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
    except BaseException:
        listener.close()
        raise
    return listener


def model_version(model_dir: Path) -> str:
    """The training run's id when the folder is a run's model (outputs/runs/<id>/model)."""
    try:
        record = json.loads((model_dir.parent / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    run_id = record.get("run_id") if isinstance(record, dict) else None
    return str(run_id) if run_id else model_dir.resolve().name
