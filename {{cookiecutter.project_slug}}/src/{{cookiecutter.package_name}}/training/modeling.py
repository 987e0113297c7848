"""Load the tokenizer and a sequence-classification model for this project's labels."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import label_schemes
from ..errors import OptionError

log = logging.getLogger(__name__)

_FIX = "set [model].base_model in config.toml or pass --model_name_or_path"


def _reason(error: Exception) -> str:
    """An error's first line, short enough for a one-line message."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def looks_like_path(name_or_path: str) -> bool:
    """Whether a base model is meant as a local folder rather than a hub id."""
    return (
        Path(name_or_path).expanduser().is_absolute()
        or name_or_path.startswith((".", "~"))
        or "\\" in name_or_path
        or name_or_path.count("/") > 1
        or Path(name_or_path).exists()
    )


def load_model_config(name_or_path: str, trust_remote_code: bool = False) -> Any:
    """The base model's config.json: a cheap check that the model is reachable, made before any
    data is tokenised or weights load, and failing in one line that says what to fix."""
    from transformers import AutoConfig

    if looks_like_path(name_or_path):
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise OptionError(f"base model folder {folder} does not exist; {_FIX}")
        if not (folder / "config.json").is_file():
            raise OptionError(f"base model folder {folder} has no config.json (not a saved model); {_FIX}")
    try:
        return AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as error:  # hub, network and parsing errors come in many types
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        hint = (
            "HF_HUB_OFFLINE is set, so only models already in the Hugging Face cache load"
            if offline
            else "check the id, the network, and HF_TOKEN for gated models; offline, set "
            "HF_HUB_OFFLINE=1 and use a cached model or a local folder"
        )
        raise OptionError(
            f"base model {name_or_path!r} is not a local folder, and the Hugging Face hub could "
            f"not provide it ({_reason(error)}); {hint}; {_FIX}"
        ) from None


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise OptionError(
            f"base model {name_or_path!r}: no tokenizer could be loaded ({_reason(error)}); {_FIX}"
        ) from None
    if tokenizer.pad_token is None:
        # Decoder-style tokenizers ship without one; dynamic padding needs some id.
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError(f"{name_or_path}: the tokenizer has no pad, eos or unk token")
        tokenizer.pad_token = fallback
    return tokenizer


def load_model(
    name_or_path: str,
    label_names: Sequence[str],
    trust_remote_code: bool = False,
    *,
    scheme: label_schemes.LabelScheme | None = None,
    pad_token_id: int | None = None,
) -> Any:
    """Any ``AutoModelForSequenceClassification`` model with ``id2label``/``label2id`` set and
    the label ``scheme`` (default: the project's) recorded in its config, for whatever serves it;
    ``pad_token_id`` (the tokenizer's) where the model's config has none.

    Weights load from safetensors; a model that only has a pickled ``pytorch_model.bin`` falls
    back to transformers' restricted (``weights_only``) loader with a warning. A classification
    head of a different size (a model fine-tuned on other labels) is replaced.
    """
    from transformers import AutoModelForSequenceClassification

    names = list(label_names)
    scheme = scheme or label_schemes.get()
    # dict[str, Any]: a dict(...) call would infer dict[str, object], which transformers 5.25's
    # typed from_pretrained rejects for each keyword it declares.
    kwargs: dict[str, Any] = {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {name: index for index, name in enumerate(names)},
        "problem_type": scheme.problem_type,
        "trust_remote_code": trust_remote_code,
        "ignore_mismatched_sizes": True,
        "output_loading_info": True,
    }

    def load(use_safetensors: bool) -> tuple[Any, dict[str, Any]]:
        with _transformers_quiet():
            return AutoModelForSequenceClassification.from_pretrained(
                name_or_path, use_safetensors=use_safetensors, **kwargs
            )

    try:
        model, info = load(use_safetensors=True)
    except OSError as safetensors_error:
        try:
            model, info = load(use_safetensors=False)
        except OSError:
            raise safetensors_error from None
        log.warning("%s has no safetensors weights; loaded pytorch_model.bin instead", name_or_path)
    _log_loading(name_or_path, model, info)
    # Not a from_pretrained keyword (the model would be handed it); config.json keeps it.
    model.config.label_scheme = scheme.name
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return model


@contextmanager
def _transformers_quiet() -> Iterator[None]:
    """transformers' warnings off while a model loads: its report of new and unused weights
    (transformers 5: a table with terminal colour codes, raw escapes in a log file) becomes
    one plain line (:func:`_log_loading`). Loading errors still raise."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _shown(keys: Sequence[str], limit: int = 4) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _log_loading(name_or_path: str, model: Any, info: dict[str, Any]) -> None:
    """One line on the weights the checkpoint lacked (initialised anew) or held in excess."""
    mismatched = {str(entry[0]) for entry in info.get("mismatched_keys") or ()}
    new = sorted({*map(str, info.get("missing_keys") or ()), *mismatched})
    unused = sorted(map(str, info.get("unexpected_keys") or ()))
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    # The classification head lies outside the base model: new there is what fine-tuning
    # expects; new weights inside the base model mean the checkpoint does not fit the model.
    body = [key for key in new if key.startswith(prefix)]
    parts = []
    if new:
        parts.append(f"{len(new)} weight(s) initialised anew ({_shown(new)})")
    if unused:
        parts.append(f"{len(unused)} checkpoint weight(s) unused ({_shown(unused)})")
    if body:
        log.warning(
            "%s: %s; the base model's own weights among them are untrained", name_or_path, "; ".join(parts)
        )
    elif parts:
        log.info("%s: %s, as usual for a new classification head", name_or_path, "; ".join(parts))
