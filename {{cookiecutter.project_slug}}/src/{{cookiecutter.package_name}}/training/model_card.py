"""The model card: ``README.md`` in a saved model folder, as the Hugging Face Hub reads it.

Front matter (library, pipeline tag, base model, evaluation results as ``model-index``) is
rendered by ``huggingface_hub.ModelCardData`` so it is valid YAML whatever the project's names
hold; the body says what the model is, what it was trained on, how well it does and how to load
it. Nothing in it names a folder of the machine it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"


def _cell(value: Any) -> str:
    """A markdown table cell: pipes, backticks and line breaks would break the table."""
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _is_local(base_model: str) -> bool:
    path = Path(base_model)
    return path.is_absolute() or path.exists() or base_model.startswith((".", "~"))


def _base_model_text(base_model: str) -> str:
    if _is_local(base_model):
        return f"a local model folder (`{_cell(Path(base_model).name)}`)"
    return f"[`{base_model}`](https://huggingface.co/{base_model})"


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
    """Write ``README.md`` into ``model_dir`` and return its path."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = [
        EvalResult(
            task_type="text-classification",
            dataset_type="custom",
            dataset_name=project_name,
            dataset_split=split,
            metric_type=metric,
            metric_name=name,
            metric_value=float(values[key]),
        )
        for split, values in metrics.items()
        for key, metric, name in (("accuracy", "accuracy", "Accuracy"), ("macro_f1", "f1", "Macro F1"))
        if key in values
    ]
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        base_model=None if _is_local(base_model) else base_model,
        model_name=project_name,
        eval_results=results or None,
        tags=["text-classification"],
    )

    counts = {split: list(values) for split, values in label_counts.items()}
    label_rows = [
        [index, name, *[counts[split][index] for split in counts]] for index, name in enumerate(label_names)
    ]
    sizes = [[split, sum(values)] for split, values in counts.items()]
    result_rows = [
        [split, values.get("num_examples", ""), values.get("accuracy", ""), values.get("macro_f1", ""),
         values.get("loss", "")]
        for split, values in metrics.items()
    ]  # fmt: skip
    detail_split = "test" if "test" in metrics else next(iter(metrics), None)
    per_class = metrics[detail_split].get("per_class", {}) if detail_split else {}
    class_rows = [
        [name, per_class[name]["precision"], per_class[name]["recall"], per_class[name]["f1"],
         per_class[name]["support"]]
        for name in label_names
        if name in per_class
    ]  # fmt: skip
    option_rows = [
        [
            key,
            f"local folder {Path(value).name}" if key == "model_name_or_path" and _is_local(value) else value,
        ]
        for key, value in sorted(options.items())
    ]

    body = [
        f"# {_cell(project_name)}",
        "",
        f"A text classifier fine-tuned from {_base_model_text(base_model)} with this project's "
        f"`{entry_point}` entry point. It assigns one of {len(label_names)} labels to a text; "
        f"texts are truncated to {max_length} tokens, as in training.",
        "",
        "## Labels and data",
        "",
        _table(["id", "label", *[f"{split} examples" for split in counts]], label_rows),
        "",
        _table(["split", "examples"], sizes),
        "",
        "## Evaluation",
        "",
        _table(["split", "examples", "accuracy", "macro F1", "loss"], result_rows)
        if result_rows
        else "None.",
    ]
    if class_rows:
        body += [
            "",
            f"Per class ({detail_split}):",
            "",
            _table(["label", "precision", "recall", "F1", "support"], class_rows),
        ]
    body += [
        "",
        "## How to use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'classifier = pipeline("text-classification", model="path/to/this/folder")',
        'classifier(["first text", "second text"], truncation=True)',
        "```",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        'model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")',
        "```",
        "",
        "In the project: `predict FILE --model FOLDER`, `evaluate`, `serve` and `package` "
        "(SageMaker's Hugging Face inference container).",
        "",
        "## Training",
        "",
        _table(["option", "value"], option_rows),
        "",
        _table(
            ["run", "value"],
            [
                ["run id", run_id],
                ["fingerprint", fingerprint],
                ["created", created],
                *[[f"{name} version", version] for name, version in versions.items()],
            ],
        ),  # fmt: skip
        "",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    path = Path(model_dir) / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path
