"""What the serving commands' options may be, checked before torch and transformers load.

Importing those takes seconds to half a minute, so a mistyped option must be reported from
here, a module that imports nothing heavy. The handlers (``inference.py``) keep their own copy
of ``ENGINES``: the container imports that file on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("auto", "torch", "onnx", "onnx-int8")
# What predict can write, by extension (batch.open_records).
OUTPUT_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json")
# SageMaker ends an invocation after 60 s; answering before that lets the client see why.
DEFAULT_TIME_BUDGET = 50.0
# Seconds that requests in flight get to finish after SIGTERM or Ctrl-C.
DEFAULT_SHUTDOWN_GRACE = 20.0
LONGEST_WAIT = 3600.0


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    # None: the handlers' limits (INFERENCE_MAX_BODY_BYTES, INFERENCE_BATCH_SIZE).
    max_body_bytes: int | None = None
    batch_size: int | None = None
    time_budget: float = DEFAULT_TIME_BUDGET
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    engine: str = "auto"

    def problems(self) -> list[str]:
        """Everything wrong with these options, so that a bad server never starts."""
        found = []
        if not 0 <= self.port <= 65535:
            found.append(f"port must be 0-65535 (0 = any free port), got {self.port}")
        if self.max_body_bytes is not None and self.max_body_bytes < 1:
            found.append(f"max body bytes must be positive, got {self.max_body_bytes}")
        if self.batch_size is not None and self.batch_size < 1:
            found.append(f"batch size must be a positive number of texts, got {self.batch_size}")
        if not 0 < self.time_budget <= LONGEST_WAIT:
            found.append(f"time budget must be 0-{LONGEST_WAIT:g} seconds, got {self.time_budget:g}")
        if not 0 <= self.shutdown_grace <= LONGEST_WAIT:
            found.append(f"shutdown grace must be 0-{LONGEST_WAIT:g} seconds, got {self.shutdown_grace:g}")
        if self.engine not in ENGINES:
            found.append(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        return found
