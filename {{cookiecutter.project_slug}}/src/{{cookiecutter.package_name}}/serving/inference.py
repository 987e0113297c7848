"""Request handlers for the Hugging Face inference container, also used by local serving.

This file is copied as ``code/inference.py`` into ``model.tar.gz``, the label schemes beside it
as ``code/label_schemes/``; the container's inference toolkit imports it on its own, so it must
import nothing else of the project (standard library, numpy, torch, transformers, the label
schemes, and onnxruntime for the onnx engines, which code/requirements.txt installs) and work with
the container's transformers 4.51 as well as 5.x.

The toolkit calls ``model_fn(model_dir)`` once, then per request
``output_fn(predict_fn(input_fn(body, content_type), model), accept)``. It counts each handler's
parameters to decide whether to pass its ``context``, so the signatures must stay exactly these.
Every exception raised here becomes an HTTP 400 in the container; the local server uses the
``status`` of :class:`RequestError` for a more precise 4xx.

Requests:
  application/json       {"inputs": "text" | ["t1", ...], "parameters": {...}}
  text/csv               a header with an ``inputs`` column, one text per row (other columns
                         are ignored)
  application/jsonlines  one record per line: {"inputs": "text"} (or a bare JSON string)
  text/plain             the whole body is one text
A model trained on text pairs (``text_pair_columns`` in its config.json) reads pairs, in the
text-classification pipeline's shape:
  application/json       {"inputs": {"text": "a", "text_pair": "b"}} or a list of such objects
  text/csv               a header with ``inputs`` and ``text_pair`` columns
  application/jsonlines  one record per line: {"inputs": {"text": "a", "text_pair": "b"}}
A pair is tokenised as training tokenises it (the tokenizer's pair template, ``longest_first``
truncation). A pair sent to a one-text model, or a lone text to a pair model, is refused (400):
the toolkit's own pipeline would score either, but as an input the model never saw in training.
Without top_k a single pair's answer is the pipeline's: one ``{"label", "score"}`` object (a
single text's is a list holding it).
Parameters: ``top_k`` (int, or null for all labels), ``return_all_scores`` (legacy pipeline
flag), ``truncation`` (default true) and ``max_length`` (tokens).
Responses (Accept): application/json in the shape of the transformers text-classification
pipeline; application/jsonlines with one answer per input line; text/csv with ``label``,
``score`` and one ``score_<label>`` column per label.
A multi-label model (``label_scheme = "multi_label"`` in its config.json) scores each label on
its own (a sigmoid) and decides every label whose score reaches that label's threshold (from
config.json, 0.5 when none was recorded). Its answers, per text:
  no top_k               the decided labels, ``[{"label": name, "score": s}, ...]`` best first,
                         possibly ``[]`` (a single text's answer is that list itself)
  top_k / return_all_scores  as for any model: the pipeline's ranked scores
  application/jsonlines  ``{"labels": [name, ...], "score_<label>": s, ...}`` per line (the
                         decided labels and every label's score, the record ``predict`` writes);
                         with top_k, the ranked scores as above
  text/csv               ``labels`` (the decided labels joined by the model's delimiter, empty
                         for none), then one ``score_<label>`` column per label
Limits (environment variables): INFERENCE_MAX_TEXTS (texts per request, default 4096),
INFERENCE_MAX_BODY_BYTES (default 6 MiB, SageMaker's real-time payload limit),
INFERENCE_BATCH_SIZE (texts per forward pass, default 32), INFERENCE_MAX_LENGTH (default token
limit; otherwise the tokenizer's, capped by the model's position embeddings).
INFERENCE_ENGINE chooses what runs the model: ``torch`` (PyTorch, the saved weights), ``onnx``
(ONNX Runtime on CPU, ``model.onnx``: the same scores within 1e-4), ``onnx-int8`` (ONNX Runtime,
``model.int8.onnx``: int8 matrix products, faster, a little less exact) or ``auto``
(default): on a GPU machine torch, on CPU the engine ``export`` measured as the fastest within its
accuracy bound (``engines.json``), torch when the model was never exported. The ONNX files and
engines.json are written by the project's ``export`` command next to the weights. ONNX Runtime
scores every text in a forward pass of its own (no padding), several at a time on as many threads
as torch uses, so a text's scores never depend on the other texts of a request or of the server's
merged batches (int8 quantizes activations with one scale per forward pass: per text).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import reprlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

try:
    from ..label_schemes import LabelScheme, for_model
except ImportError:  # code/inference.py in the container: a top-level module, schemes beside it
    from label_schemes import LabelScheme, for_model  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
TEXT = "text/plain"
# Spellings of JSON Lines seen in SageMaker batch transform and client libraries.
JSONLINES_TYPES = {JSONLINES, "application/x-jsonlines", "application/jsonl", "application/json-lines"}
REQUEST_TYPES = (JSON, CSV, JSONLINES, TEXT)
RESPONSE_TYPES = (JSON, JSONLINES, CSV)
PARAMETERS = ("top_k", "return_all_scores", "truncation", "max_length")
ENGINES = ("auto", "torch", "onnx", "onnx-int8")
# Written by the project's export command next to the weights (and packaged with them).
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
ENGINES_FILE = "engines.json"
# Texts are cut to this many characters per allowed token before tokenising (at a space), so a
# huge text costs no more than a long one; a cut that yields too few tokens is widened once to
# WIDE_WINDOW, beyond which a text is cut regardless (it is longer than any model limit).
CHARS_PER_TOKEN = 8
# Sub-batches a request tokenises at a time (see Work.take).
TOKENISED_AHEAD = 8
WIDE_WINDOW = 64


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    message = f"environment variable {name} must be a positive integer, got {value!r}"
    try:
        number = int(value)
    except ValueError:
        raise ValueError(message) from None
    if number < 1:
        raise ValueError(message)
    return number


MAX_TEXTS = _env_int("INFERENCE_MAX_TEXTS", 4096)
MAX_BODY_BYTES = _env_int("INFERENCE_MAX_BODY_BYTES", 6 * 1024 * 1024)
BATCH_SIZE = _env_int("INFERENCE_BATCH_SIZE", 32)


class RequestError(ValueError):
    """The request cannot be served as sent; ``status`` is the HTTP status a server should use."""

    status = 400


class EngineError(RuntimeError):
    """The chosen engine cannot run this model here (runtime not installed, file missing)."""


class UnsupportedContentType(RequestError):
    status = 415


class NotAcceptable(RequestError):
    status = 406


class PayloadTooLarge(RequestError):
    status = 413


@dataclass
class Classifier:
    """What ``model_fn`` returns: the model with everything needed to run and label it."""

    # A transformers model (engine "torch") or an :class:`OnnxModel`.
    model: Any
    tokenizer: Any
    labels: list[str]
    device: torch.device
    max_length: int
    # Texts per forward pass; local batch runs may change it.
    batch_size: int
    # How scores are computed and decided: the scheme the model was trained with.
    scheme: LabelScheme
    # The data columns of a model trained on text pairs (config.json ``text_pair_columns``),
    # None for a model that reads one text.
    text_pair_columns: list[str] | None = None
    # What runs the model: "torch", "onnx" or "onnx-int8" (never "auto": resolved at load).
    engine: str = "torch"


@dataclass
class Request:
    """A decoded request: texts plus the options that shape the prediction and the answer."""

    texts: list[str]
    # The second text of each item when the request holds text pairs (else None).
    pairs: list[str] | None = None
    top_k: int | None = 1
    # True when the client gave no top_k (pipeline "legacy" shape: a single dict per text).
    legacy: bool = True
    # The pipeline's return_all_scores=True wraps even a single text's scores in a list.
    all_scores_legacy: bool = False
    truncation: bool = True
    max_length: int | None = None
    single: bool = False
    # Only set by local callers (no wire format): called with the number of texts just done.
    progress: Callable[[int], None] | None = field(default=None, repr=False)


@dataclass
class Prediction:
    """Scores per text (label-id order), in the order of the request's texts."""

    request: Request
    labels: list[str]
    scores: list[list[float]]
    scheme: LabelScheme
    # How many texts were longer than the token limit and cut to it (truncation=true).
    truncated: int = 0


def model_fn(model_dir: str) -> Classifier:
    """Load the fine-tuned model and tokenizer from a folder (weights must be safetensors)."""
    return load_model(model_dir, engine=os.environ.get("INFERENCE_ENGINE", "auto"))


def load_model(model_dir: str, engine: str = "auto") -> Classifier:
    """``model_fn`` with its options as arguments (``engine``: one of :data:`ENGINES`)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    engine = resolve_engine(model_dir, engine, device)
    tokenizer = _load_tokenizer(model_dir)
    model: Any
    if engine == "torch":
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, use_safetensors=True, trust_remote_code=False
        )
        model.eval()
        model.to(device)
        config = model.config
    else:
        # ONNX Runtime's CPU build: a GPU, when there is one, stays unused (logged below).
        device = torch.device("cpu")
        model = OnnxModel(os.path.join(model_dir, ONNX_FILES[engine]), engine)
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and config.model_type in ("roberta", "xlm-roberta"):
        positions -= 2  # RoBERTa-style position ids start after the padding index
    limits = [positions, tokenizer.model_max_length]
    # Tokenizers without a known limit report a huge sentinel value; positions are the hard cap.
    model_limit = min(value for value in limits if isinstance(value, int) and 0 < value < 1_000_000)
    max_length = min(_env_int("INFERENCE_MAX_LENGTH", model_limit), model_limit)
    logger.info(
        "loaded %s on %s with engine %s: labels %s, max_length %d",
        model_dir,
        device,
        engine,
        labels,
        max_length,
    )
    pair_columns = getattr(config, "text_pair_columns", None)
    return Classifier(
        model,
        tokenizer,
        labels,
        device,
        max_length,
        BATCH_SIZE,
        for_model(config),
        [str(column) for column in pair_columns] if pair_columns else None,
        engine,
    )


def resolve_engine(model_dir: str, engine: str, device: torch.device) -> str:
    """The engine that runs the model: ``engine`` itself, or for "auto" torch on a GPU and on CPU
    the default ``export`` chose (engines.json; torch for a model never exported)."""
    engine = (engine or "auto").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "auto":
        if engine != "torch" and device.type != "cpu":
            logger.warning(
                "engine %s runs on the CPU (ONNX Runtime's CPU build); %s stays unused", engine, device
            )
        return engine
    if device.type != "cpu":
        return "torch"
    path = os.path.join(model_dir, ENGINES_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            chosen = json.load(handle).get("default")
    except FileNotFoundError:
        return "torch"
    except (OSError, ValueError, AttributeError) as error:
        raise EngineError(f"{path}: cannot read the engine export chose: {error}") from None
    if chosen not in ONNX_FILES and chosen != "torch":
        raise EngineError(f"{path}: default engine {chosen!r} is not one of torch, {', '.join(ONNX_FILES)}")
    return str(chosen)


def with_onnx(classifier: Classifier, path: str | os.PathLike[str], engine: str) -> Classifier:
    """``classifier`` run by the ONNX model at ``path`` (same tokenizer, labels and limits)."""
    return replace(classifier, model=OnnxModel(str(path), engine), engine=engine, device=torch.device("cpu"))


class OnnxModel:
    """An ONNX Runtime CPU session that scores each text in a forward pass of its own, on a pool
    of as many threads as torch would use (OMP_NUM_THREADS, torch.set_num_threads), one text per
    thread at a time. No padding is computed, and a text's scores never depend on which texts
    share a request: int8's dynamic quantization takes one activation scale per forward pass,
    which is then one text's (over a padded batch it was every text's, and labels changed)."""

    def __init__(self, path: str, engine: str) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise EngineError(
                f"engine {engine} needs ONNX Runtime, which is not installed: pip install onnxruntime "
                "(or choose the torch engine)"
            ) from None
        if not os.path.isfile(path):
            raise EngineError(
                f"{path} not found: engine {engine} runs the ONNX model that the project's export "
                "command writes next to the weights (or choose the torch engine)"
            )
        options = onnxruntime.SessionOptions()
        # One thread per forward pass: one text's matrices are too small to split well, and
        # texts side by side keep every core busy (measured in BENCHMARKS.md).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [node.name for node in self.session.get_inputs()]
        threads = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="onnx") if threads > 1 else None

    def logits(self, batch: Sequence[list[int]]) -> np.ndarray:
        """The logits of each row of token ids, each computed alone (rows in, rows out)."""
        rows = self._pool.map(self._one, batch) if self._pool is not None else map(self._one, batch)
        return np.stack(list(rows))

    def _one(self, ids: list[int]) -> np.ndarray:
        tokens = np.asarray([ids], dtype=np.int64)
        types = ids.types if isinstance(ids, PairIds) else [0] * len(ids)
        feeds = {
            "input_ids": tokens,
            "attention_mask": np.ones_like(tokens),
            "token_type_ids": np.asarray([types], dtype=np.int64),
        }
        (logits,) = self.session.run(["logits"], {name: feeds[name] for name in self.inputs})
        return np.asarray(logits[0])


def _load_tokenizer(model_dir: str) -> Any:
    try:
        with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as handle:
            saved_class = json.load(handle).get("tokenizer_class")
    except (OSError, ValueError):
        saved_class = None
    # transformers 5 saves tokenizers that have no model-specific class as "TokenizersBackend",
    # which 4.x (the inference container) lacks; the generic fast class reads the same
    # tokenizer.json, so both versions tokenize identically.
    if saved_class == "TokenizersBackend" and not hasattr(transformers, "TokenizersBackend"):
        return transformers.PreTrainedTokenizerFast.from_pretrained(model_dir)
    return AutoTokenizer.from_pretrained(model_dir)


def input_fn(input_data: bytes | str, content_type: str | None) -> Request:
    """Decode a request body; any problem raises :class:`RequestError` with the reason."""
    size = len(input_data.encode("utf-8") if isinstance(input_data, str) else input_data)
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body of {size} bytes exceeds the limit of {MAX_BODY_BYTES}")
    media_type = _media_type(content_type) or JSON
    if media_type in JSONLINES_TYPES:
        media_type = JSONLINES
    if media_type not in REQUEST_TYPES:
        raise UnsupportedContentType(
            f"unsupported content type {content_type!r}; use one of {', '.join(REQUEST_TYPES)}"
        )
    if isinstance(input_data, bytes | bytearray):
        try:
            text = bytes(input_data).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise RequestError(f"request body is not valid UTF-8: {error}") from None
    else:
        # The container's toolkit decodes JSON and CSV bodies itself, as "utf-8", which keeps a
        # byte-order mark; spreadsheet exports often start with one. Drop it, as locally.
        text = input_data.removeprefix("\ufeff")
    if media_type != TEXT:
        return {JSON: _from_json, CSV: _from_csv, JSONLINES: _from_jsonlines}[media_type](text)
    if not text.strip():
        raise RequestError("text/plain request body is empty")
    return Request([text.rstrip("\r\n")], single=True)


def predict_fn(data: Request, model: Classifier) -> Prediction:
    """Score all texts: longest first in sub-batches, each padded only to its own longest text."""
    work = Work(data, model)
    while not work.done:
        indices, ids = work.take(model.batch_size)
        work.put(indices, score_batch(model, ids))
        if data.progress is not None:
            data.progress(len(indices))
    return work.prediction()


class Work:
    """A request's texts in the order they are scored: longest first, sub-batch by sub-batch.

    Texts are tokenised one sub-batch at a time, when their turn comes, so a server can
    interleave the sub-batches of several requests (see server.py) and a long request never
    holds the tokenizer or the model for more than one sub-batch.
    """

    def __init__(self, request: Request, model: Classifier) -> None:
        self.request = request
        self.model = model
        self.max_length = request.max_length or model.max_length
        if self.max_length > model.max_length:
            raise RequestError(
                f"parameters.max_length={self.max_length} exceeds the model's limit of "
                f"{model.max_length} tokens"
            )
        _check_shape(request, model)
        # Character length orders texts nearly as token length does, without tokenising first
        # (capped where encode() cuts, so one huge text does not count as thousands of tokens);
        # a pair counts both of its texts.
        window = self.max_length * CHARS_PER_TOKEN
        self._chars = [min(len(text), window) for text in request.texts]
        if request.pairs is not None:
            self._chars = [
                chars + min(len(pair), window) for chars, pair in zip(self._chars, request.pairs, strict=True)
            ]
        self._order = sorted(range(len(request.texts)), key=self._chars.__getitem__, reverse=True)
        self._mean_chars = sum(self._chars) / max(1, len(self._chars))
        self._next = 0
        # Tokenised texts not yet handed out, longest (in tokens) first.
        self._ready: list[tuple[int, list[int]]] = []
        self._scores: list[list[float] | None] = [None] * len(request.texts)
        self._left = len(request.texts)
        self.truncated = 0

    @property
    def done(self) -> bool:
        return self._left == 0

    @property
    def remaining(self) -> int:
        """Texts not yet handed out by :meth:`take`."""
        return len(self._order) - self._next + len(self._ready)

    def even_count(self, count: int) -> int:
        """How many of the next ``count`` texts to take so that a sub-batch costs about as much
        as an average one of this request: fewer when the next texts are the long ones (they
        come first). A server uses it to keep every step short, so that other requests wait
        about one average sub-batch, not the longest one."""
        if self.remaining == 0:
            return 0
        longest = max(1, self._chars[self._ready[0][0] if self._ready else self._order[self._next]])
        return max(1, min(count, int(count * self._mean_chars / longest)))

    def take(self, count: int) -> tuple[list[int], list[list[int]]]:
        """The next ``count`` texts (indices into the request) with their token ids: exactly
        ``min(count, remaining)`` of them, as a scheduler that counts on ``remaining`` needs."""
        while len(self._ready) < count and self._next < len(self._order):
            # Tokenise several sub-batches at once and order them by tokens: character order is
            # only close to token order, and within a block the difference is made up.
            block = self._order[self._next : self._next + count * TOKENISED_AHEAD]
            self._next += len(block)
            texts = [self.request.texts[i] for i in block]
            if self.request.pairs is None:
                ids, too_long = encode(self.model.tokenizer, texts, self.max_length)
            else:
                pairs = [self.request.pairs[i] for i in block]
                ids, too_long = encode_pairs(self.model.tokenizer, texts, pairs, self.max_length)
            if too_long and not self.request.truncation:
                first = block[too_long[0]]
                item = "text" if self.request.pairs is None else "pair"
                raise RequestError(
                    f"{item} #{first} is longer than the limit of {self.max_length} tokens "
                    f"({len(too_long)} such {item}(s) in this part of the request); send "
                    f"truncation=true or shorter {item}s"
                )
            self.truncated += len(too_long)
            self._ready = sorted(
                [*self._ready, *zip(block, ids, strict=True)], key=lambda pair: len(pair[1]), reverse=True
            )
        part, self._ready = self._ready[:count], self._ready[count:]
        return [index for index, _ in part], [ids for _, ids in part]

    def put(self, indices: Sequence[int], scores: Sequence[list[float]]) -> None:
        for index, row in zip(indices, scores, strict=True):
            self._scores[index] = row
        self._left -= len(indices)

    def prediction(self) -> Prediction:
        scores = [row for row in self._scores if row is not None]
        if len(scores) != len(self._scores):
            raise RuntimeError("prediction asked for before every text was scored")
        return Prediction(self.request, self.model.labels, scores, self.model.scheme, self.truncated)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Token ids per text, cut to ``max_length``, and the positions of texts that were longer.

    A long text is cut by characters before tokenising, at a space, so a multi-megabyte text
    costs no more than a long one. The ids are those of the whole text whenever the cut holds
    more tokens than the limit (checked; otherwise the cut is widened once). Only texts with
    over ``WIDE_WINDOW`` characters per token (a huge word, pages of spaces) are cut regardless,
    and counted as too long.
    """
    ids: list[list[int]] = [[] for _ in texts]
    too_long: dict[int, str] = {}  # position -> the (cut) text to tokenise with truncation
    pending = list(range(len(texts)))
    windows = (max_length * CHARS_PER_TOKEN, max_length * WIDE_WINDOW)
    for window in windows:
        final = window == windows[-1]
        cuts = [_cut(texts[i], window) for i in pending]
        # One token over the limit tells "longer than the limit" apart from "exactly the limit".
        found = _tokenize(tokenizer, [cut for cut, _ in cuts], max_length + 1)
        retry = []
        for i, (cut, whole_words), row in zip(pending, cuts, found, strict=True):
            if cut is texts[i] and len(row) <= max_length:
                ids[i] = row
            elif (whole_words and len(row) > max_length) or final:
                too_long[i] = cut
            else:
                retry.append(i)  # too few tokens, or a word cut in two: widen the cut once
        pending = retry
        if not pending:
            break
    if too_long:
        cut_ids = _tokenize(tokenizer, list(too_long.values()), max_length)
        for i, row in zip(too_long, cut_ids, strict=True):
            ids[i] = row
    return ids, sorted(too_long)


class PairIds(list[int]):
    """A text pair's token ids, with its token type ids (which ids are the second text's), for
    models that read them: a list of ids like a single text's, so schedulers pass both alike."""

    def __init__(self, ids: Sequence[int], types: Sequence[int]) -> None:
        super().__init__(ids)
        self.types = list(types)


def encode_pairs(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str], max_length: int
) -> tuple[list[list[int]], list[int]]:
    """:func:`encode` for text pairs: the ids of ``texts[i]`` with ``pairs[i]`` as training
    tokenises them (the pair template, ``longest_first`` truncation to ``max_length``), and the
    positions of pairs that were longer.

    Each text is cut by characters first, as in :func:`encode`. ``longest_first`` keeps at most
    the tokens a text has, taking from the longer text first; so the ids of a cut text are those
    of the whole text when the cut alone holds at least ``max_length`` tokens (more than truncation
    keeps) and, when the other text is whole, more tokens than it (the longer one stays the
    longer one). Otherwise the cut is widened once, as in :func:`encode`. When both texts are cut
    the whole texts' order is unknown; both keep half of the limit, and only the odd token of an
    odd limit may go to the other text than with the whole texts."""
    ids: list[list[int]] = [[] for _ in texts]
    too_long: set[int] = set()
    cut: dict[int, tuple[str, str]] = {}
    pending = list(range(len(texts)))
    windows = (max_length * CHARS_PER_TOKEN, max_length * WIDE_WINDOW)
    special = tokenizer.num_special_tokens_to_add(pair=True)
    for window in windows:
        final = window == windows[-1]
        firsts = [_cut(texts[i], window) for i in pending]
        seconds = [_cut(pairs[i], window) for i in pending]
        first_counts = _token_counts(tokenizer, [text for text, _ in firsts])
        second_counts = _token_counts(tokenizer, [text for text, _ in seconds])
        retry = []
        for position, i in enumerate(pending):
            halves = [
                (firsts[position], first_counts[position], texts[i]),
                (seconds[position], second_counts[position], pairs[i]),
            ]
            was_cut = [(text, whole) for (text, whole), _, original in halves if text is not original]
            cut[i] = (firsts[position][0], seconds[position][0])
            if not was_cut:
                if first_counts[position] + second_counts[position] + special > max_length:
                    too_long.add(i)
                continue
            counts = [count for _, count, _ in halves]
            exact = all(whole for _, whole in was_cut) and all(
                count >= max_length for (text, _), count, original in halves if text is not original
            )
            if len(was_cut) == 1:
                longer = 0 if halves[0][0][0] is not texts[i] else 1
                exact = exact and counts[longer] > counts[1 - longer]
            if exact or final:
                too_long.add(i)
            else:
                retry.append(i)
        pending = retry
        if not pending:
            break
    order = list(cut)
    encoded = _tokenize_pairs(tokenizer, [cut[i] for i in order], max_length)
    for i, row in zip(order, encoded, strict=True):
        ids[i] = row
    return ids, sorted(too_long)


def _token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    """Tokens per text, without special tokens and without truncation."""
    if not texts:
        return []
    found = tokenizer(
        texts,
        add_special_tokens=False,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )["input_ids"]
    return [len(row) for row in found]


def _tokenize_pairs(tokenizer: Any, pairs: list[tuple[str, str]], max_length: int) -> list[list[int]]:
    if not pairs:
        return []
    types = "token_type_ids" in tokenizer.model_input_names
    encoded = tokenizer(
        [text for text, _ in pairs],
        [pair for _, pair in pairs],
        truncation="longest_first",
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=types,
        verbose=False,
    )
    if not types:
        return list(encoded["input_ids"])
    return [
        PairIds(ids, row_types)
        for ids, row_types in zip(encoded["input_ids"], encoded["token_type_ids"], strict=True)
    ]


def _cut(text: str, window: int) -> tuple[str, bool]:
    """``text`` itself when it fits in ``window`` characters, else its start ending at a space
    in the window's second half (True: whole words) or, without one, at the window (False)."""
    if len(text) <= window:
        return text, True
    space = max(text.rfind(blank, window // 2, window) for blank in _BLANKS)
    if space > 0:
        return text[:space], True
    return text[:window], False


_BLANKS = (" ", "\n", "\t", "\r", "\u3000")


def _tokenize(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )["input_ids"]


def score_batch(model: Classifier, batch: Sequence[list[int]]) -> list[list[float]]:
    """Label scores for one sub-batch of token ids, padded to its longest row."""
    if model.engine != "torch":
        logits = torch.from_numpy(model.model.logits(batch))
        return model.scheme.probabilities(logits).tolist()
    inputs = {name: tensor.to(model.device) for name, tensor in model_inputs(model, batch).items()}
    with torch.inference_mode():
        logits = model.model(**inputs).logits
        return model.scheme.probabilities(logits).cpu().tolist()


def model_inputs(model: Classifier, batch: Sequence[list[int]]) -> dict[str, torch.Tensor]:
    """The PyTorch model's inputs for a sub-batch of token ids (on the CPU), padded to its
    longest row."""
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    left = model.tokenizer.padding_side == "left"
    ids, mask = _pad(list(batch), pad_id, left)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if any(isinstance(row, PairIds) for row in batch):
        # Token types tell a pair's second text apart (a single text's are all 0, the default).
        types, _ = _pad([row.types if isinstance(row, PairIds) else [0] * len(row) for row in batch], 0, left)
        inputs["token_type_ids"] = types
    return inputs


def output_fn(prediction: Prediction, accept: str | None) -> str:
    """Encode predictions for the Accept type (missing or ``*/*`` means JSON)."""
    media_type = response_type(accept)
    request = prediction.request
    scheme, labels = prediction.scheme, prediction.labels
    label_sets = scheme.label_sets
    decided = scheme.predict(prediction.scores)
    if media_type == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        scores = score_columns(labels)
        writer.writerow(["labels", *scores] if label_sets else ["label", "score", *scores])
        for row, chosen in zip(prediction.scores, decided, strict=True):
            text = scheme.decode(chosen, labels)
            writer.writerow([text, *row] if label_sets else [text, row[chosen], *row])
        return buffer.getvalue()
    # Without top_k a multi-label text's answer is its decided labels, not the best one.
    label_set_answers = label_sets and request.legacy and not request.all_scores_legacy
    answers: list[Any]
    if label_set_answers and media_type == JSONLINES:
        answers = [
            {
                "labels": scheme.label_list(chosen, labels),
                **dict(zip(score_columns(labels), row, strict=True)),
            }
            for row, chosen in zip(prediction.scores, decided, strict=True)
        ]
    elif label_set_answers:
        answers = [
            _decided(row, chosen, labels) for row, chosen in zip(prediction.scores, decided, strict=True)
        ]
    else:
        answers = [_ranked(row, labels, request) for row in prediction.scores]
    if media_type == JSONLINES:
        return "".join(json.dumps(answer, ensure_ascii=False) + "\n" for answer in answers)
    if (
        request.single
        and request.pairs is None
        and not label_set_answers
        and (request.legacy or request.all_scores_legacy)
    ):
        # The pipeline wraps a single text's answer (not a single pair's) in a list when top_k
        # was not given.
        return json.dumps([answers[0]], ensure_ascii=False)
    if request.single:
        return json.dumps(answers[0], ensure_ascii=False)
    return json.dumps(answers, ensure_ascii=False)


def score_columns(labels: Sequence[str]) -> list[str]:
    """The names of the per-label score columns (CSV answers, ``predict`` outputs)."""
    return [f"score_{label}" for label in labels]


def _decided(row: Sequence[float], chosen: Sequence[int], labels: Sequence[str]) -> list[dict[str, Any]]:
    """A multi-label text's decided labels with their scores, best first (ties in label order)."""
    return [{"label": labels[i], "score": row[i]} for i in sorted(chosen, key=lambda i: -row[i])]


def _ranked(row: Sequence[float], labels: Sequence[str], request: Request) -> Any:
    """One text's answer as the pipeline gives it: a dict for top-1, else a ranked list."""
    # sorted() is stable, so equal scores keep label-id order, as in the pipeline.
    ranked = sorted(range(len(row)), key=lambda i: row[i], reverse=True)
    if request.top_k is not None:
        ranked = ranked[: request.top_k]
    items = [{"label": labels[i], "score": row[i]} for i in ranked]
    if request.legacy and not request.all_scores_legacy:
        return items[0]
    return items


def _pad(sequences: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def response_type(accept: str | None) -> str:
    """The first supported type of an Accept header (a list with optional ;q= parameters)."""
    offered = [_media_type(part) for part in (accept or "").split(",")]
    if not any(offered) or "*/*" in offered:
        return JSON
    for media_type in offered:
        if media_type in RESPONSE_TYPES:
            return media_type
        if media_type in JSONLINES_TYPES:
            return JSONLINES
        if media_type == "application/*":
            return JSON
        if media_type == "text/*":
            return CSV
    raise NotAcceptable(f"unsupported Accept {accept!r}; use one of {', '.join(RESPONSE_TYPES)}")


def _loads(text: str, where: str = "") -> Any:
    """``json.loads``, its errors as :class:`RequestError`; ``where`` (a line) starts the message."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"malformed JSON: {error.msg}" + (
            "" if where else f" at line {error.lineno} column {error.colno}"
        )
    except RecursionError:
        reason = 'JSON nested too deeply; send {"inputs": ...} with a string or a list of strings'
    except ValueError as error:
        # json parses integers with int(), which refuses more digits than
        # sys.get_int_max_str_digits() (4300 by default) with a plain ValueError.
        limit = str(error).split(";", 1)[0]
        reason = f"malformed JSON: a number is too long ({limit}); send parameters as short integers"
    raise RequestError(where + reason)


PAIR_KEYS = ("text", "text_pair")
PAIR_SHAPE = '{"text": "...", "text_pair": "..."}'


def _from_json(text: str) -> Request:
    body = _loads(text)
    if not isinstance(body, dict) or "inputs" not in body:
        raise RequestError('JSON body must be an object with "inputs": a string or a list of strings')
    unknown = sorted(set(body) - {"inputs", "parameters"})
    if unknown:
        raise RequestError(f'unknown JSON key(s) {unknown}; expected "inputs" and "parameters"')
    inputs = body["inputs"]
    if isinstance(inputs, str | dict):
        items, single = [inputs], True
    elif isinstance(inputs, list):
        items, single = inputs, False
    else:
        raise RequestError(
            f'"inputs" must be a string, a list of strings or text pairs {PAIR_SHAPE}, '
            f"got {type(inputs).__name__}"
        )
    texts, pairs = _split_pairs(items, '"inputs"', single)
    return _request(texts, body.get("parameters"), single, '"inputs"', pairs)


def _split_pairs(items: list[Any], what: str, single: bool) -> tuple[list[Any], list[str] | None]:
    """The first texts and (when the items are text pairs) the second ones. Items are all
    strings or all pairs (see :func:`_pair`). Items that are neither are left for
    :func:`_request` to name."""
    first_pair = next((i for i, item in enumerate(items) if isinstance(item, dict)), None)
    if first_pair is None:
        return items, None
    texts: list[Any] = []
    pairs: list[str] = []
    for number, item in enumerate(items):
        where = what if single else f"{what} item #{number}"
        if not isinstance(item, dict):
            raise RequestError(
                f"{where} is {type(item).__name__} but item #{first_pair} is a text pair; send every "
                f"item as a pair {PAIR_SHAPE} or every item as a string"
            )
        text, pair = _pair(item, where)
        texts.append(text)
        pairs.append(pair)
    return texts, pairs


def _pair(item: dict[str, Any], where: str) -> tuple[str, str]:
    """A text pair: an object with exactly "text" and "text_pair", both strings."""
    unknown = sorted(set(item) - set(PAIR_KEYS))
    if unknown:
        raise RequestError(
            f"{where}: unknown key(s) {reprlib.repr(unknown)} in a text pair; send {PAIR_SHAPE}"
        )
    missing = [key for key in PAIR_KEYS if key not in item]
    if missing:
        raise RequestError(
            f"{where}: a text pair needs both {' and '.join(map(repr, PAIR_KEYS))}; "
            f"missing {' and '.join(map(repr, missing))}"
        )
    for key in PAIR_KEYS:
        if not isinstance(item[key], str):
            raise RequestError(f'{where}: "{key}" must be a string, got {type(item[key]).__name__}')
    return item["text"], item["text_pair"]


def _check_shape(request: Request, model: Classifier) -> None:
    """Refuse pairs for a one-text model and lone texts for a pair model, saying what to send."""
    columns = model.text_pair_columns
    if columns and request.pairs is None:
        names = " and ".join(repr(column) for column in columns)
        raise RequestError(
            f"this model reads text pairs (trained on columns {names}); send each input as "
            f'{PAIR_SHAPE}: JSON {{"inputs": {PAIR_SHAPE}}} or a list of them, JSON Lines '
            f'{{"inputs": {PAIR_SHAPE}}} per line, CSV with "inputs" and "text_pair" columns'
        )
    if not columns and request.pairs is not None:
        raise RequestError(
            'this model reads one text per input, not text pairs; send {"inputs": "text"} or a '
            'list of strings (CSV: an "inputs" column only)'
        )


def _from_csv(text: str) -> Request:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if not header or "inputs" not in [name.strip() for name in header]:
            raise RequestError(f"CSV body needs a header line with an 'inputs' column; got {header}")
        column = next(name for name in header if name.strip() == "inputs")
        # A "text_pair" column makes every row a text pair.
        pair_column = next((name for name in header if name.strip() == "text_pair"), None)
        rows = [(row[column], None if pair_column is None else row[pair_column]) for row in reader]
    except csv.Error as error:
        raise RequestError(f"malformed CSV at line {reader.line_num}: {error}") from None
    if any(text is None or (pair_column is not None and pair is None) for text, pair in rows):
        raise RequestError("malformed CSV: a row has fewer fields than the header")
    texts = [text for text, _ in rows]
    pairs = None if pair_column is None else [str(pair) for _, pair in rows]
    return _request(texts, None, False, "CSV rows", pairs)


DIFFERENT_PARAMETERS = "parameters differ from earlier lines"


def _from_jsonlines(text: str) -> Request:
    texts: list[Any] = []
    pairs: list[str] = []
    # The line of the first record, and whether it is a text pair: every line must agree.
    first: tuple[int, bool] | None = None
    parameters: Any = None
    # Records end at \n (or \r\n) only: str.splitlines would also split inside texts holding
    # U+2028, U+0085, form feeds and the like, which JSON strings may carry unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        record = _loads(line, f"JSON Lines line {number}: ")
        is_pair = False
        if isinstance(record, dict):
            inputs = record.get("inputs")
            if isinstance(inputs, dict):
                item, pair = _pair(inputs, f'JSON Lines line {number}: "inputs"')
                pairs.append(pair)
                is_pair = True
            elif isinstance(inputs, str):
                item = inputs
            else:
                raise RequestError(
                    f'JSON Lines line {number}: "inputs" must be a string or a text pair {PAIR_SHAPE}'
                )
            line_parameters = record.get("parameters")
            # One forward pass serves all lines, so they must agree on the parameters.
            if texts and line_parameters != parameters:
                raise RequestError(f"JSON Lines line {number}: {DIFFERENT_PARAMETERS}")
            parameters = line_parameters
        elif isinstance(record, str):
            if texts and parameters is not None:
                raise RequestError(f"JSON Lines line {number}: {DIFFERENT_PARAMETERS}")
            item = record
        else:
            raise RequestError(f'JSON Lines line {number}: expected an object with "inputs" or a string')
        if first is None:
            first = (number, is_pair)
        elif first[1] != is_pair:
            kinds = ("a text", "a text pair") if is_pair else ("a text pair", "a text")
            raise RequestError(
                f"JSON Lines line {number}: {kinds[1]}, but line {first[0]} is {kinds[0]}; send "
                f"every line as a pair {PAIR_SHAPE} or every line as a text"
            )
        texts.append(item)
    return _request(texts, parameters, False, "JSON Lines records", pairs if pairs else None)


def _request(
    texts: list[Any], parameters: Any, single: bool, what: str, pairs: list[str] | None = None
) -> Request:
    if not texts:
        raise RequestError(f"{what}: no texts to classify")
    if len(texts) > MAX_TEXTS:
        raise PayloadTooLarge(f"{what}: {len(texts)} texts exceed the limit of {MAX_TEXTS} per request")
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise RequestError(f"{what}: item #{bad} is {type(texts[bad]).__name__}, expected a string")
    bad = next(
        (i for i, text in enumerate(texts) if not _is_unicode(text) or not _is_unicode((pairs or texts)[i])),
        None,
    )
    if bad is not None:
        raise RequestError(
            f"{what}: item #{bad} holds a lone UTF-16 surrogate (an escape like \\ud800 without "
            "its pair), which is not text; encode the string as UTF-8"
        )
    request = Request(list(texts), pairs, single=single)
    # Values in messages go through reprlib.repr: a huge or deeply nested one is shortened.
    if parameters is None:
        return request
    if not isinstance(parameters, dict):
        raise RequestError('"parameters" must be a JSON object')
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise RequestError(f"unknown parameter(s) {unknown}; supported: {', '.join(PARAMETERS)}")
    if "top_k" in parameters:
        top_k = parameters["top_k"]
        if top_k is not None and not _is_int(top_k, 1):
            raise RequestError(
                f"parameters.top_k must be a positive integer or null, got {reprlib.repr(top_k)}"
            )
        request.top_k, request.legacy = top_k, False
    if parameters.get("return_all_scores") is not None:
        flag = parameters["return_all_scores"]
        if not isinstance(flag, bool):
            raise RequestError(
                f"parameters.return_all_scores must be true or false, got {reprlib.repr(flag)}"
            )
        if flag and "top_k" not in parameters:
            request.top_k, request.all_scores_legacy = None, True
    truncation = parameters.get("truncation", True)
    if not isinstance(truncation, bool):
        raise RequestError(f"parameters.truncation must be true or false, got {reprlib.repr(truncation)}")
    request.truncation = truncation
    max_length = parameters.get("max_length")
    if max_length is not None and not _is_int(max_length, 2):
        raise RequestError(f"parameters.max_length must be an integer >= 2, got {reprlib.repr(max_length)}")
    request.max_length = max_length
    return request


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
