"""Server benchmark: keep-alive vs new connections, fairness, and a hostile mixed load.

Starts ``serve`` as users do (a subprocess on 127.0.0.1) and measures, in one run:

1. One-text latency on a keep-alive connection vs a new connection per request (p50, p99):
   keep-alive must not be slower (no Nagle / delayed-ACK stalls).
2. Fairness: one-text requests sent while another client's large request (512 texts by
   default) runs; each small request's latency as a share of the large request's time.
3. Mixed lengths: requests of 17 and 64 texts, a few of them thousands of characters long
   among short ones; latency, and that every text got its answer.
4. Mixed load: 64 concurrent clients for 30 s sending good requests and bad ones (malformed
   JSON, wrong methods, oversized bodies, deep nesting, lone surrogates, unknown paths, clients
   that hang up mid-request); counts by status, 5xx and connection errors, and the server's
   resident memory after a 10 s warm-up with the same load and after the load (Linux /proc).

    python benchmarks/bench_server.py --model path/to/model --data ratings_test.txt
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench_inference import PACKAGE, SRC, machine

MAX_BODY = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="saved model folder")
    parser.add_argument("--data", type=Path, required=True, help="CSV/TSV/JSONL file with texts")
    parser.add_argument("--text-column", default="document")
    parser.add_argument("--requests", type=int, default=200, help="requests per latency scenario")
    parser.add_argument("--big", type=int, default=512, help="texts in the large request")
    parser.add_argument("--rounds", type=int, default=3, help="large requests in the fairness scenario")
    parser.add_argument("--clients", type=int, default=64, help="clients in the mixed load")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the mixed load")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds of the same load before it")
    parser.add_argument(
        "--engine", choices=("auto", "torch", "onnx", "onnx-int8"), help="serve's --engine (default: its own)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))
    from nsmc_sentiment_classifier.data import io as io_module

    table = io_module.read_table(args.data, limit=max(args.big, 2000))
    texts = [str(row.values[args.text_column]) for row in table.rows]
    results: dict = {"machine": machine(), "engine": args.engine}
    print(results["machine"])
    process, port = start_server(args)
    try:
        for text in texts[:10]:  # first calls set up kernels (int8 ones especially)
            post(new_connection(port), {"inputs": text})
        results["latency"] = latency(port, texts, args.requests)
        results["fairness"] = fairness(port, texts, args.big, args.rounds)
        results["mixed_lengths"] = mixed_lengths(port, texts, args.requests // 10 or 1)
        # Warm-up: the same load, briefly. First uses of each input shape and thread grow the
        # heap once (allocator arenas, kernel caches); what grows after that would be a leak.
        print("warm-up:", end=" ")
        mixed_load(port, texts, args.clients, args.warm_up)
        results["rss_after_warm_up_mb"] = rss_mb(process.pid)
        results["mixed_load"] = mixed_load(port, texts, args.clients, args.seconds)
        time.sleep(1)
        results["rss_after_load_mb"] = rss_mb(process.pid)
        ratio = results["rss_after_load_mb"] / results["rss_after_warm_up_mb"]
        results["rss_ratio"] = ratio
        print(
            f"resident memory: {results['rss_after_warm_up_mb']:.0f} MB after warm-up, "
            f"{results['rss_after_load_mb']:.0f} MB after the load ({ratio:.2f}x)"
        )
    finally:
        process.terminate()
        process.wait(timeout=60)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), "utf-8")


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], int]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", PACKAGE, "serve", "--model", str(args.model), "--port", "0"]
    command += ["--max-body-bytes", str(MAX_BODY)]
    if args.engine:  # so that it also runs against servers older than the flag
        command += ["--engine", args.engine]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if match:
            # Keep reading the log, or a full pipe would block the server.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
            return process, int(match.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("the server did not start")


def new_connection(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def post(connection: http.client.HTTPConnection, payload: object) -> tuple[int, float]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    started = time.perf_counter()
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status, time.perf_counter() - started


def percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def latency(port: int, texts: list[str], requests: int) -> dict:
    figures = {}
    for name, call in (("invocations", _one_text), ("ping", _ping)):
        kept, fresh = [], []
        keep_alive = new_connection(port)
        # Interleaved, so that other load on the machine affects both alike.
        for number in range(requests):
            text = texts[number % len(texts)]
            kept.append(call(keep_alive, text))
            connection = new_connection(port)
            fresh.append(call(connection, text))
            connection.close()
        keep_alive.close()
        figure = {"keep_alive": percentiles(kept), "new_connection": percentiles(fresh)}
        figure["p50_ratio"] = figure["keep_alive"]["p50_ms"] / figure["new_connection"]["p50_ms"]
        figures[name] = figure
        what = "one text" if name == "invocations" else "GET /ping"
        print(
            f"{what}, keep-alive    : p50 {figure['keep_alive']['p50_ms']:.1f} ms, "
            f"p99 {figure['keep_alive']['p99_ms']:.1f} ms\n"
            f"{what}, new connection: p50 {figure['new_connection']['p50_ms']:.1f} ms, "
            f"p99 {figure['new_connection']['p99_ms']:.1f} ms  (keep-alive/new p50 "
            f"{figure['p50_ratio']:.2f})"
        )
    return figures


def _one_text(connection: http.client.HTTPConnection, text: str) -> float:
    return post(connection, {"inputs": text})[1]


def _ping(connection: http.client.HTTPConnection, _text: str) -> float:
    started = time.perf_counter()
    connection.request("GET", "/ping")
    connection.getresponse().read()
    return time.perf_counter() - started


def fairness(port: int, texts: list[str], big: int, rounds: int) -> dict:
    shares, small_ms, big_ms = [], [], []
    for round_ in range(rounds):
        outcome: dict = {}
        chunk = [texts[(round_ * big + i) % len(texts)] for i in range(big)]
        thread = threading.Thread(target=_timed_post, args=(port, {"inputs": chunk}, outcome))
        thread.start()
        time.sleep(0.3)  # the large request is being scored
        smalls: list[float] = []
        while thread.is_alive():  # small requests sent while the large one runs
            status, seconds = post(new_connection(port), {"inputs": texts[len(smalls) % len(texts)]})
            smalls.append(seconds)
            time.sleep(0.2)
        thread.join()
        worst = max(smalls) if smalls else 0.0
        shares.append(worst / outcome["seconds"])
        small_ms.append(1000 * worst)
        big_ms.append(1000 * outcome["seconds"])
        print(
            f"fairness round {round_ + 1}: {big}-text request {outcome['seconds']:.2f} s "
            f"(status {outcome['status']}); {len(smalls)} one-text requests meanwhile, slowest "
            f"{1000 * worst:.0f} ms = {100 * worst / outcome['seconds']:.1f}% of it"
        )
    return {
        "big_texts": big,
        "big_ms": big_ms,
        "slowest_small_ms": small_ms,
        "share": shares,
        "worst_share": max(shares),
    }


def mixed_lengths(port: int, texts: list[str], rounds: int) -> dict:
    figures = {}
    for size in (17, 64):
        seconds: list[float] = []
        statuses: Counter[int] = Counter()
        answered = 0
        for round_ in range(rounds):
            chunk = [texts[(round_ * size + i) % len(texts)] for i in range(size)]
            for position in range(round_ % 3, size, 16):  # one long text in every 16
                chunk[position] = " ".join(texts[position : position + 100])[:3000]
            connection = new_connection(port)
            body = json.dumps({"inputs": chunk}, ensure_ascii=False).encode("utf-8")
            started = time.perf_counter()
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            seconds.append(time.perf_counter() - started)
            connection.close()
            statuses[response.status] += 1
            if response.status == 200 and len(json.loads(answer)) == size:
                answered += 1
        figure = {
            **percentiles(seconds),
            "requests": rounds,
            "all_answered": answered,
            "by_status": dict(statuses),
        }
        figures[f"{size}_texts"] = figure
        print(
            f"{size} texts of mixed length: p50 {figure['p50_ms']:.0f} ms, p99 {figure['p99_ms']:.0f} ms; "
            f"{answered} of {rounds} requests answered in full; by status {dict(statuses)}"
        )
    return figures


def _timed_post(port: int, payload: object, outcome: dict) -> None:
    outcome["status"], outcome["seconds"] = post(new_connection(port), payload)


def _bad_requests(texts: list[str]) -> list[tuple[str, str, bytes, dict, int | None]]:
    """(method, path, body, headers, expected status); None: the client hangs up mid-request."""
    json_type = {"Content-Type": "application/json"}
    good = json.dumps({"inputs": texts[0]}, ensure_ascii=False).encode("utf-8")
    eight = json.dumps({"inputs": texts[:8]}, ensure_ascii=False).encode("utf-8")
    csv_body = ("inputs\n" + "\n".join(t.replace('"', "") for t in texts[:4]) + "\n").encode("utf-8")
    return [
        ("POST", "/invocations", good, json_type, 200),
        ("POST", "/invocations", eight, json_type, 200),
        ("POST", "/invocations", csv_body, {"Content-Type": "text/csv", "Accept": "text/csv"}, 200),
        ("GET", "/ping", b"", {}, 200),
        ("POST", "/invocations", b'{"inputs": [', json_type, 400),
        ("POST", "/invocations", b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", json_type, 400),
        ("POST", "/invocations", b'{"inputs": "\\ud800"}', json_type, 400),
        ("PUT", "/invocations", good, json_type, 405),
        ("GET", "/invocations", b"", {}, 405),
        ("POST", "/nowhere", good, json_type, 404),
        ("POST", "/invocations", b"x" * (MAX_BODY + 1), {"Content-Type": "text/plain"}, 413),
        ("POST", "/invocations", eight, {**json_type, "Accept": "image/png"}, 406),
        ("POST", "/invocations", json.dumps({"inputs": texts[:200]}).encode(), json_type, None),
    ]


def mixed_load(port: int, texts: list[str], clients: int, seconds: float) -> dict:
    kinds = _bad_requests(texts)
    statuses: Counter[int] = Counter()
    wrong: Counter[str] = Counter()
    connection_errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(number: int) -> None:
        connection = new_connection(port)
        count = 0
        while time.monotonic() < stop_at:
            method, path, body, headers, expected = kinds[(number + count) % len(kinds)]
            count += 1
            if expected is None:
                hang_up(port, body)
                continue
            try:
                connection.request(method, path, body or None, headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    connection_errors.append(f"{method} {path}: {type(error).__name__}: {error}")
                connection.close()
                connection = new_connection(port)
                continue
            with lock:
                statuses[response.status] += 1
                if response.status != expected:
                    wrong[f"{method} {path} -> {response.status}, expected {expected}"] += 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = new_connection(port)
        connection.close()

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    figures = {
        "clients": clients,
        "seconds": elapsed,
        "requests": sum(statuses.values()),
        "by_status": dict(sorted(statuses.items())),
        "server_errors": server_errors,
        "connection_errors": len(connection_errors),
        "unexpected": dict(wrong),
    }
    print(
        f"mixed load: {clients} clients, {figures['requests']} answered requests in {elapsed:.1f} s; "
        f"by status {figures['by_status']}; 5xx {server_errors}; connection errors "
        f"{len(connection_errors)}; unexpected statuses {dict(wrong) or 'none'}"
    )
    for line in connection_errors[:5]:
        print(f"  {line}")
    return figures


def hang_up(port: int, body: bytes) -> None:
    """Send a request and leave before the answer (as a client that timed out would)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.05)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        kilobytes = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    return kilobytes / 1024


if __name__ == "__main__":
    main()
