"""The model card: ``README.md`` in a saved model folder, as the Hugging Face Hub reads it.

The front matter (library, pipeline tag, base model, evaluation results as ``model-index``) is
rendered by ``huggingface_hub.ModelCardData``, so it is valid YAML whatever the project's names
hold. The body says what the model is, what it was trained on, how well it does and how to load
it. Every name and value is escaped for its table cell, so a label such as ``a|b`` or ``부정``
shows as written. Nothing in it names a folder of the machine it was trained on: a local base
model, or any option holding a local path, shows only its last component.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
# Characters that could start markdown or HTML inside a cell (a backslash escape works for any
# ASCII punctuation, so escaping these leaves the text unchanged on screen).
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&$])")
_WINDOWS_PATH = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")
_METRIC_KEYS, _METRIC_TITLES = ("accuracy", "macro_f1", "loss"), ("accuracy", "macro F1", "loss")


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _text(value: Any) -> str:
    """Plain text for a table cell or a heading: one line, markup characters escaped."""
    return _MARKUP.sub(r"\\\1", _one_line(value))


def _code(value: Any, in_table: bool = True) -> str:
    """Inline code, which shows its content literally. A fence longer than any backtick run in
    the text lets backticks through; in a table a pipe still needs ``\\|`` (GFM splits cells
    before it reads code)."""
    text = _one_line(value)
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _metric(value: Any) -> str:
    number = _number(value)
    return "" if number is None else f"{number:.4f}"


def _count(value: Any) -> str:
    return str(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else ""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table from cells that are already escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def is_local_path(text: str) -> bool:
    """Whether ``text`` names a place on this machine rather than a hub id or a remote URI."""
    if text.startswith(("/", "~", ".", "file:")) or _WINDOWS_PATH.match(text):
        return True
    if "://" in text:
        return False  # s3://..., https://...
    return not _HUB_ID.match(text) or Path(text).exists()


def is_hub_id(text: str) -> bool:
    """Whether ``text`` reads as a Hugging Face Hub model id (``name`` or ``owner/name``)."""
    return bool(_HUB_ID.match(text)) and not is_local_path(text)


def _local_name(text: str) -> str:
    name = re.split(r"[\\/]", text.removeprefix("file:").rstrip("\\/"))[-1]
    return name or "."


def _scrub(value: Any) -> Any:
    """``value`` with absolute local paths cut to their last component."""
    if isinstance(value, str):
        if not (value.startswith(("/", "~", "file:")) or _WINDOWS_PATH.match(value)):
            return value
        place = Path(value.removeprefix("file:")).expanduser()
        kind = "folder" if place.is_dir() else "file" if place.is_file() else "path"
        return f"local {kind} {_local_name(value)}"
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _option_value(value: Any) -> str:
    value = _scrub(value)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _eval_results(project_name: str, metrics: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    from huggingface_hub import EvalResult

    results = []
    for split, values in metrics.items():
        for key, metric_type, name, args in (
            ("accuracy", "accuracy", "Accuracy", None),
            ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
            ("loss", "loss", "Loss", None),
        ):
            number = _number(values.get(key))
            if number is None:
                continue
            results.append(
                EvalResult(
                    task_type="text-classification",
                    task_name="Text Classification",
                    dataset_type="custom",
                    dataset_name=f"{project_name} data",
                    dataset_split=str(split),
                    metric_type=metric_type,
                    metric_name=name,
                    metric_value=number,
                    metric_args=args,
                )
            )
    return results


def write_model_card(
    model_dir: str | Path,
    *,
    project_name: str,
    run_id: str,
    fingerprint: str,
    entry_point: str,
    base_model: str,
    label_names: Sequence[str],
    label_counts: Mapping[str, Sequence[int]],
    metrics: Mapping[str, Mapping[str, Any]],
    options: Mapping[str, Any],
    max_length: int,
    versions: Mapping[str, str],
    created: str,
) -> Path:
    """Write ``README.md`` (front matter + model card) into ``model_dir``; return its path."""
    from huggingface_hub import ModelCard, ModelCardData

    local_base, hub_base = is_local_path(base_model), is_hub_id(base_model)
    results = _eval_results(project_name, metrics)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        base_model=base_model if hub_base else None,
        model_name=project_name,
        eval_results=results or None,
        tags=["text-classification"],
    )
    if local_base:
        base_text = f"a local folder ({_code(_local_name(base_model), in_table=False)})"
        base_cell = f"local folder {_code(_local_name(base_model))}"
    elif hub_base:
        base_text = f"[{_code(base_model, in_table=False)}](https://huggingface.co/{base_model})"
        base_cell = f"[{_code(base_model)}](https://huggingface.co/{base_model})"
    else:  # s3://... and other remote places
        base_text, base_cell = _code(base_model, in_table=False), _code(base_model)

    splits = list(label_counts)

    def count(split: str, index: int) -> str:
        values = label_counts[split]
        return _count(values[index]) if index < len(values) else ""

    label_rows = [
        [str(index), _text(name), *[count(split, index) for split in splits]]
        for index, name in enumerate(label_names)
    ]
    size_rows = [[_text(split), str(sum(int(v) for v in values))] for split, values in label_counts.items()]
    result_rows = [
        [_text(split), _count(values.get("num_examples")), *[_metric(values.get(k)) for k in _METRIC_KEYS]]
        for split, values in metrics.items()
    ]

    body = [
        f"# {_text(project_name)}",
        "",
        f"A text classifier fine-tuned from {base_text} with this project's "
        f"{_code(entry_point, in_table=False)} entry point. It gives each text one of "
        f"{len(label_names)} labels. The saved tokenizer truncates texts at {max_length} tokens, "
        "the length the model was trained with.",
        "",
        _table(
            ["model", ""],
            [
                ["base model", base_cell],
                ["labels", str(len(label_names))],
                ["max length", f"{max_length} tokens"],
                ["entry point", _code(entry_point)],
            ],
        ),
        "",
        "## Labels",
        "",
        _table(["id", "label", *[f"{_text(split)} examples" for split in splits]], label_rows),
        "",
        "## Data",
        "",
        _table(["split", "examples"], size_rows),
        "",
        "## Evaluation",
        "",
        _table(["split", "examples", *_METRIC_TITLES], result_rows)
        if result_rows
        else "No evaluation results.",
    ]
    detail = "test" if "test" in metrics else ("validation" if "validation" in metrics else None)
    if detail is not None:
        per_class = metrics[detail].get("per_class") or {}
        class_rows = [
            [_text(name), *[_metric(scores.get(k)) for k in ("precision", "recall", "f1")],
             _count(scores.get("support"))]
            for name in label_names
            if isinstance(scores := per_class.get(name), Mapping)
        ]  # fmt: skip
        if class_rows:
            body += [
                "",
                f"Per class, {_text(detail)} split:",
                "",
                _table(["label", "precision", "recall", "F1", "support"], class_rows),
            ]
        matrix = metrics[detail].get("confusion_matrix")
        if isinstance(matrix, Sequence) and len(matrix) == len(label_names):
            body += [
                "",
                f"Confusion matrix, {_text(detail)} split (rows: true label, columns: predicted):",
                "",
                _table(
                    ["", *[_text(name) for name in label_names]],
                    [
                        [_text(name), *[_count(v) for v in row]]
                        for name, row in zip(label_names, matrix, strict=False)
                    ],
                ),  # fmt: skip
            ]
    body += [
        "",
        "## How to use",
        "",
        "With the `transformers` pipeline (`truncation=True` cuts long texts at the saved "
        f"tokenizer's limit, {max_length} tokens):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'classifier = pipeline("text-classification", model="path/to/this/folder")',
        'print(classifier(["first text", "second text"], truncation=True))',
        "```",
        "",
        "Or with the model and tokenizer:",
        "",
        "```python",
        "import torch",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        'model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")',
        'texts = ["first text", "second text"]',
        'batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")',
        "with torch.no_grad():",
        "    predicted = model(**batch).logits.argmax(dim=-1).tolist()",
        "print([model.config.id2label[i] for i in predicted])",
        "```",
        "",
        "## Training options",
        "",
        _table(
            ["option", "value"],
            [[_code(key), _code(_option_value(value))] for key, value in sorted(options.items())],
        )
        if options
        else "Not recorded.",
        "",
        "## Run",
        "",
        _table(
            ["run", ""],
            [["run id", _code(run_id)], ["fingerprint", _code(fingerprint)], ["created", _text(created)]],
        ),
        "",
        "Framework versions:",
        "",
        _table(["package", "version"], [[_text(name), _text(version)] for name, version in versions.items()]),
        "",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    path = Path(model_dir) / CARD_FILE
    card.save(path)
    return path
