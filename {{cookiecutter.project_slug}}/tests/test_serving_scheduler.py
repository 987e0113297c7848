"""The server's scheduler answers every text of every request, in order, whatever the mix.

It is driven as the server drives it (submissions from an event loop, one model thread) with the
real tokenizer and ``Work``, and a stub model whose logits are a function of each row's token
ids, so that every answer can be traced to its own text. The seed of a run is printed on failure
and can be replayed with SCHEDULER_SEED.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import labelled_records
from transformers import AutoTokenizer

from nsmc_sentiment_classifier import label_schemes
from nsmc_sentiment_classifier.serving import inference
from nsmc_sentiment_classifier.serving.server import Scheduler

pytestmark = pytest.mark.engine

LABELS = ["a", "b", "c"]
MAX_LENGTH = 128
# Seconds without a scored text, while requests wait, after which the scheduler counts as stuck.
STALL = 15.0


class StubModel:
    """Logits from each row's own tokens (their sum and count): cheap, and a text's answer
    differs from its neighbours', so a score in the wrong place shows."""

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        total = (input_ids * attention_mask).sum(dim=1)
        count = attention_mask.sum(dim=1)
        logits = torch.stack(
            [(total % 9973).float() / 1000, count.float() / 50, torch.zeros(len(total))], dim=1
        )
        return SimpleNamespace(logits=logits)


class Expected:
    """The stub's answer for each text on its own (token ids cached: texts recur)."""

    def __init__(self, classifier: inference.Classifier) -> None:
        self.classifier = classifier
        self._ids: dict[tuple[str, int], list[int]] = {}

    def scores(self, request: inference.Request) -> list[list[float]]:
        limit = request.max_length or MAX_LENGTH
        new = list({text for text in request.texts if (text, limit) not in self._ids})
        ids, _ = inference.encode(self.classifier.tokenizer, new, limit)
        self._ids.update(zip([(text, limit) for text in new], ids, strict=True))
        return inference.score_batch(self.classifier, [self._ids[text, limit] for text in request.texts])


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def reviews(config) -> list[str]:
    return [text for text, _ in labelled_records(config, 5000)]


@pytest.fixture(scope="module")
def long_texts(reviews) -> list[str]:
    rng = random.Random(2)
    return [long_text(rng, reviews) for _ in range(64)]


def stub_classifier(tokenizer: Any, batch_size: int) -> inference.Classifier:
    return inference.Classifier(
        model=StubModel(),
        tokenizer=tokenizer,
        labels=LABELS,
        device=torch.device("cpu"),
        max_length=MAX_LENGTH,
        batch_size=batch_size,
        scheme=label_schemes.get(),
    )


def long_text(rng: random.Random, reviews: list[str]) -> str:
    """Thousands of characters: reviews run together, now and then one endless word."""
    if rng.random() < 0.1:
        return "ㅋ" * rng.randint(1000, 6000)
    parts: list[str] = []
    target = rng.randint(1000, 6000)
    while sum(len(part) + 1 for part in parts) < target:
        parts.append(rng.choice(reviews))
    return " ".join(parts)


def request_size(rng: random.Random) -> int:
    """1-4,096 texts, mostly few, as clients send them."""
    roll = rng.random()
    if roll < 0.6:
        return rng.randint(1, 8)
    if roll < 0.87:
        return rng.randint(9, 64)
    if roll < 0.985:
        return rng.randint(65, 512)
    return rng.randint(513, inference.MAX_TEXTS)


def random_request(rng: random.Random, reviews: list[str], long_texts: list[str]) -> inference.Request:
    size = request_size(rng)
    texts = [rng.choice(reviews) for _ in range(size)]
    # Long texts anywhere: none, a few, or (in small requests) all of them.
    count = size if size <= 16 and rng.random() < 0.1 else min(size, rng.choice([0, 0, 1, 1, 2, 3, 8, 16]))
    for position in rng.sample(range(size), count):
        texts[position] = rng.choice(long_texts)
    if rng.random() < 0.05:
        texts[rng.randrange(size)] = rng.choice(["", " ", "\n"])
    request = inference.Request(texts, top_k=None, legacy=False)
    if rng.random() < 0.2:
        request.max_length = rng.randint(2, MAX_LENGTH)
    if rng.random() < 0.05:
        request.truncation = False  # fails if a text is over the limit, the others must not
    return request


@dataclass
class Outcome:
    request: inference.Request
    prediction: inference.Prediction | None = None
    error: BaseException | None = None
    left: bool = False  # the client hung up
    times: list[float] = field(default_factory=list)


async def drive(
    scheduler: Scheduler, batches: list[list[inference.Request]], rng: random.Random
) -> list[Outcome]:
    """Each batch is one client's requests, sent one after another; clients run concurrently,
    and now and then one hangs up while it waits (as the server's ``_wait`` does)."""
    outcomes: list[Outcome] = []
    hang_ups = {id(request) for batch in batches for request in batch if rng.random() < 0.03}

    async def client(requests: list[inference.Request]) -> None:
        for request in requests:
            await asyncio.sleep(rng.random() * 0.002)
            outcome = Outcome(request)
            outcomes.append(outcome)
            try:
                job = scheduler.submit(request, budget=3600)
            except inference.RequestError as error:
                outcome.error = error
                continue
            if id(request) in hang_ups:
                await asyncio.sleep(rng.random() * 0.01)
                if job.future.cancel():
                    outcome.left = True
                    continue
            try:
                outcome.prediction = await asyncio.wrap_future(job.future)
            except inference.RequestError as error:
                outcome.error = error

    tasks = [asyncio.ensure_future(client(batch)) for batch in batches]
    scored, progress_at = scheduler.texts_scored, time.monotonic()
    while not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=0.5)
        if scheduler.texts_scored != scored:
            scored, progress_at = scheduler.texts_scored, time.monotonic()
        elif time.monotonic() - progress_at > STALL:
            for task in tasks:
                task.cancel()
            waiting = [o for o in outcomes if o.prediction is None and o.error is None and not o.left]
            sizes = sorted(len(o.request.texts) for o in waiting)
            raise AssertionError(f"{len(waiting)} request(s) never finished (sizes {sizes[:20]})")
    for task in tasks:
        task.result()
    return outcomes


def check(expected: Expected, outcomes: list[Outcome], seed: int) -> None:
    for outcome in outcomes:
        request = outcome.request
        if outcome.left:
            continue
        if outcome.error is not None:
            assert not request.truncation, f"seed {seed}: {outcome.error}"
            assert "truncation" in str(outcome.error), f"seed {seed}: {outcome.error}"
            continue
        assert outcome.prediction is not None
        assert len(outcome.prediction.scores) == len(request.texts), f"seed {seed}"
        wanted = expected.scores(request)
        for position, (got, want) in enumerate(zip(outcome.prediction.scores, wanted, strict=True)):
            if max(abs(a - b) for a, b in zip(got, want, strict=True)) > 1e-6:
                raise AssertionError(f"seed {seed}: text #{position} got another text's answer")


def test_every_text_of_every_request_is_answered_in_order(tokenizer, reviews, long_texts):
    seed = int(os.environ.get("SCHEDULER_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    requests = 0
    for _ in range(24):
        batch_size = rng.choice([1, 2, 3, 4, 7, 8, 16, 32, 64])
        classifier = stub_classifier(tokenizer, batch_size)
        clients = rng.randint(1, 16)
        batches = [
            [random_request(rng, reviews, long_texts) for _ in range(rng.randint(1, 12))]
            for _ in range(clients)
        ]
        scheduler = Scheduler(classifier)
        try:
            outcomes = asyncio.run(drive(scheduler, batches, rng))
        finally:
            scheduler.close()
        assert len(outcomes) == sum(len(batch) for batch in batches)
        check(Expected(classifier), outcomes, seed)
        requests += len(outcomes)
    assert requests >= 1000, f"seed {seed}: only {requests} requests"


@pytest.mark.parametrize("batch_size", [1, 8, 32])
def test_a_long_text_among_short_ones_leaves_none_behind(tokenizer, reviews, long_texts, batch_size):
    # The case of the report: 16 short texts and one of 3,000 characters. The long one came
    # first in a sub-batch of its own; of the rest only the texts already tokenised were handed
    # out, and the request was never picked again.
    classifier = stub_classifier(tokenizer, batch_size)
    texts = [*(f"짧은 리뷰 {i}" for i in range(8)), long_texts[0][:3000], *(f"좋다 {i}" for i in range(8))]
    request = inference.Request(texts, top_k=None, legacy=False)
    scheduler = Scheduler(classifier)
    try:
        outcomes = asyncio.run(drive(scheduler, [[request]], random.Random(0)))
    finally:
        scheduler.close()
    assert outcomes[0].prediction is not None
    check(Expected(classifier), outcomes, seed=0)


def test_work_hands_out_exactly_what_is_asked(tokenizer, reviews, long_texts):
    # The contract the scheduler counts on: take(n) gives min(n, remaining) texts.
    rng = random.Random(1)
    for _ in range(300):
        request = random_request(rng, reviews, long_texts)
        request.truncation = True
        work = inference.Work(request, stub_classifier(tokenizer, 32))
        handed: list[int] = []
        while work.remaining:
            count = rng.randint(1, 40)
            before = work.remaining
            indices, ids = work.take(count)
            assert len(indices) == len(ids) == min(count, before)
            assert work.remaining == before - len(indices)
            handed += indices
        assert sorted(handed) == list(range(len(request.texts)))
