"""Request handlers for the Hugging Face inference container, also used by local serving.

This file is copied as ``code/inference.py`` into ``model.tar.gz``; the container's inference
toolkit imports it on its own, so it must stay standalone (standard library, torch and
transformers only) and work with the container's transformers 4.51 as well as 5.x.

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
Parameters: ``top_k`` (int, or null for all labels), ``return_all_scores`` (legacy pipeline
flag), ``truncation`` (default true) and ``max_length`` (tokens).
Responses (Accept): application/json in the shape of the transformers text-classification
pipeline; application/jsonlines with one answer per input line; text/csv with ``label``,
``score`` and one ``score_<label>`` column per label.
Limits (environment variables): INFERENCE_MAX_TEXTS (texts per request, default 4096),
INFERENCE_MAX_BODY_BYTES (default 6 MiB, SageMaker's real-time payload limit),
INFERENCE_BATCH_SIZE (texts per forward pass, default 32), INFERENCE_MAX_LENGTH (default token
limit; otherwise the tokenizer's, capped by the model's position embeddings).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

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


class UnsupportedContentType(RequestError):
    status = 415


class NotAcceptable(RequestError):
    status = 406


class PayloadTooLarge(RequestError):
    status = 413


@dataclass
class Classifier:
    """What ``model_fn`` returns: the model with everything needed to run and label it."""

    model: Any
    tokenizer: Any
    labels: list[str]
    device: torch.device
    max_length: int
    # Texts per forward pass; local batch runs may change it.
    batch_size: int
    # Sigmoid for multi-label or single-logit heads, softmax otherwise (as the pipeline does).
    multi_label: bool


@dataclass
class Request:
    """A decoded request: texts plus the options that shape the prediction and the answer."""

    texts: list[str]
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


def model_fn(model_dir: str) -> Classifier:
    """Load the fine-tuned model and tokenizer from a folder (weights must be safetensors)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = _load_tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, use_safetensors=True, trust_remote_code=False
    )
    model.to(device)
    model.eval()
    config = model.config
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and config.model_type in ("roberta", "xlm-roberta"):
        positions -= 2  # RoBERTa-style position ids start after the padding index
    limits = [positions, tokenizer.model_max_length]
    # Tokenizers without a known limit report a huge sentinel value; positions are the hard cap.
    model_limit = min(value for value in limits if isinstance(value, int) and 0 < value < 1_000_000)
    max_length = min(_env_int("INFERENCE_MAX_LENGTH", model_limit), model_limit)
    multi_label = config.problem_type == "multi_label_classification" or config.num_labels == 1
    logger.info("loaded %s on %s: labels %s, max_length %d", model_dir, device, labels, max_length)
    return Classifier(model, tokenizer, labels, device, max_length, BATCH_SIZE, multi_label)


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
        text = input_data
    if media_type == JSON:
        return _from_json(text)
    if media_type == CSV:
        return _from_csv(text)
    if media_type == JSONLINES:
        return _from_jsonlines(text)
    if not text.strip():
        raise RequestError("text/plain request body is empty")
    return Request([text.rstrip("\r\n")], single=True)


def predict_fn(data: Request, model: Classifier) -> Prediction:
    """Score all texts: longest first in sub-batches, each padded only to its own longest text."""
    texts = data.texts
    max_length = data.max_length or model.max_length
    if max_length > model.max_length:
        raise RequestError(
            f"parameters.max_length={max_length} exceeds the model's limit of {model.max_length} tokens"
        )
    encoded = model.tokenizer(
        texts,
        truncation=data.truncation,
        max_length=max_length if data.truncation else None,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )["input_ids"]
    if not data.truncation:
        too_long = [i for i, ids in enumerate(encoded) if len(ids) > max_length]
        if too_long:
            first = too_long[0]
            raise RequestError(
                f"text #{first} has {len(encoded[first])} tokens, more than the limit of "
                f"{max_length} ({len(too_long)} such text(s)); send truncation=true or shorter "
                "texts"
            )
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]), reverse=True)
    scores: list[list[float]] = [[] for _ in texts]
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    left = model.tokenizer.padding_side == "left"
    with torch.inference_mode():
        for start in range(0, len(order), model.batch_size):
            chunk = order[start : start + model.batch_size]
            ids, mask = _pad([encoded[i] for i in chunk], pad_id, left)
            logits = model.model(
                input_ids=ids.to(model.device), attention_mask=mask.to(model.device)
            ).logits.float()
            probs = logits.sigmoid() if model.multi_label else logits.softmax(dim=-1)
            for index, row in zip(chunk, probs.cpu().tolist(), strict=True):
                scores[index] = row
            if data.progress is not None:
                data.progress(len(chunk))
    return Prediction(data, model.labels, scores)


def output_fn(prediction: Prediction, accept: str | None) -> str:
    """Encode predictions for the Accept type (missing or ``*/*`` means JSON)."""
    media_type = response_type(accept)
    request = prediction.request
    if media_type == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["label", "score", *(f"score_{label}" for label in prediction.labels)])
        for row in prediction.scores:
            best = max(range(len(row)), key=row.__getitem__)
            writer.writerow([prediction.labels[best], row[best], *row])
        return buffer.getvalue()
    answers = [_ranked(row, prediction.labels, request) for row in prediction.scores]
    if media_type == JSONLINES:
        return "".join(json.dumps(answer, ensure_ascii=False) + "\n" for answer in answers)
    if request.single and (request.legacy or request.all_scores_legacy):
        # The pipeline wraps a single text's answer in a list when top_k was not given.
        return json.dumps([answers[0]], ensure_ascii=False)
    if request.single:
        return json.dumps(answers[0], ensure_ascii=False)
    return json.dumps(answers, ensure_ascii=False)


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


def _from_json(text: str) -> Request:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(body, dict) or "inputs" not in body:
        raise RequestError('JSON body must be an object with "inputs": a string or a list of strings')
    unknown = sorted(set(body) - {"inputs", "parameters"})
    if unknown:
        raise RequestError(f'unknown JSON key(s) {unknown}; expected "inputs" and "parameters"')
    inputs = body["inputs"]
    if isinstance(inputs, str):
        texts, single = [inputs], True
    elif isinstance(inputs, list):
        texts, single = inputs, False
    else:
        raise RequestError(f'"inputs" must be a string or a list of strings, got {type(inputs).__name__}')
    return _request(texts, body.get("parameters"), single, '"inputs"')


def _from_csv(text: str) -> Request:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if not header or "inputs" not in [name.strip() for name in header]:
            raise RequestError(f"CSV body needs a header line with an 'inputs' column; got {header}")
        column = next(name for name in header if name.strip() == "inputs")
        texts = [row[column] for row in reader]
    except csv.Error as error:
        raise RequestError(f"malformed CSV at line {reader.line_num}: {error}") from None
    if any(text is None for text in texts):
        raise RequestError("malformed CSV: a row has fewer fields than the header")
    return _request(texts, None, False, "CSV rows")


DIFFERENT_PARAMETERS = "parameters differ from earlier lines"


def _from_jsonlines(text: str) -> Request:
    texts: list[Any] = []
    parameters: Any = None
    # Records end at \n (or \r\n) only: str.splitlines would also split inside texts holding
    # U+2028, U+0085, form feeds and the like, which JSON strings may carry unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RequestError(f"JSON Lines line {number}: malformed JSON: {error.msg}") from None
        if isinstance(record, dict):
            if not isinstance(record.get("inputs"), str):
                raise RequestError(f'JSON Lines line {number}: "inputs" must be a string')
            line_parameters = record.get("parameters")
            # One forward pass serves all lines, so they must agree on the parameters.
            if texts and line_parameters != parameters:
                raise RequestError(f"JSON Lines line {number}: {DIFFERENT_PARAMETERS}")
            parameters = line_parameters
            texts.append(record["inputs"])
        elif isinstance(record, str):
            if texts and parameters is not None:
                raise RequestError(f"JSON Lines line {number}: {DIFFERENT_PARAMETERS}")
            texts.append(record)
        else:
            raise RequestError(f'JSON Lines line {number}: expected an object with "inputs" or a string')
    return _request(texts, parameters, False, "JSON Lines records")


def _request(texts: list[Any], parameters: Any, single: bool, what: str) -> Request:
    if not texts:
        raise RequestError(f"{what}: no texts to classify")
    if len(texts) > MAX_TEXTS:
        raise PayloadTooLarge(f"{what}: {len(texts)} texts exceed the limit of {MAX_TEXTS} per request")
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise RequestError(f"{what}: item #{bad} is {type(texts[bad]).__name__}, expected a string")
    request = Request(list(texts), single=single)
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
            raise RequestError(f"parameters.top_k must be a positive integer or null, got {top_k!r}")
        request.top_k, request.legacy = top_k, False
    if parameters.get("return_all_scores") is not None:
        flag = parameters["return_all_scores"]
        if not isinstance(flag, bool):
            raise RequestError(f"parameters.return_all_scores must be true or false, got {flag!r}")
        if flag and "top_k" not in parameters:
            request.top_k, request.all_scores_legacy = None, True
    truncation = parameters.get("truncation", True)
    if not isinstance(truncation, bool):
        raise RequestError(f"parameters.truncation must be true or false, got {truncation!r}")
    request.truncation = truncation
    max_length = parameters.get("max_length")
    if max_length is not None and not _is_int(max_length, 2):
        raise RequestError(f"parameters.max_length must be an integer >= 2, got {max_length!r}")
    request.max_length = max_length
    return request


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
