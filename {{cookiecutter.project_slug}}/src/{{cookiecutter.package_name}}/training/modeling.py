"""Load the tokenizer and a sequence-classification model for this project's labels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        # Decoder-style tokenizers ship without one; dynamic padding needs some id.
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError(f"{name_or_path}: the tokenizer has no pad, eos or unk token")
        tokenizer.pad_token = fallback
    return tokenizer


def load_model(name_or_path: str, label_names: Sequence[str], trust_remote_code: bool = False) -> Any:
    """Any ``AutoModelForSequenceClassification`` model with ``id2label``/``label2id`` set.

    Weights load from safetensors; a model that only has a pickled ``pytorch_model.bin`` falls
    back to transformers' restricted (``weights_only``) loader with a warning. A classification
    head of a different size (a model fine-tuned on other labels) is replaced.
    """
    from transformers import AutoModelForSequenceClassification

    names = list(label_names)
    kwargs = dict(
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: index for index, name in enumerate(names)},
        trust_remote_code=trust_remote_code,
        ignore_mismatched_sizes=True,
    )
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, use_safetensors=True, **kwargs
        )
    except OSError as safetensors_error:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                name_or_path, use_safetensors=False, **kwargs
            )
        except OSError:
            raise safetensors_error from None
        log.warning("%s has no safetensors weights; loaded pytorch_model.bin instead", name_or_path)
    return model


def load_tokenizer_and_model(
    name_or_path: str, label_names: Sequence[str], trust_remote_code: bool = False
) -> tuple[Any, Any]:
    tokenizer = load_tokenizer(name_or_path, trust_remote_code)
    model = load_model(name_or_path, label_names, trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model
