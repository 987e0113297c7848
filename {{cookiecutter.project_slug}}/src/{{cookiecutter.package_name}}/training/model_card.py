"""The model card: ``README.md`` in a saved model folder, as the Hugging Face Hub reads it.

``huggingface_hub`` renders it: ``ModelCardData`` the front matter (library, pipeline tag, base
model, evaluation results as ``model-index``), ``ModelCard.from_template`` the body from
:data:`TEMPLATE` (Jinja). The template shows every name through ``text`` or ``code``, which
escape it for markdown, so a label such as ``a|b`` or ``부정`` shows as written. Nothing in the
card names a folder of the machine it was trained on: a local base model, or an option holding a
local path, shows only its last component.
"""

from __future__ import annotations

import json
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..baseline import markdown_table
from ..label_schemes import LabelScheme
from .tracking import finite_number

CARD_FILE = "README.md"

TEMPLATE = """\
---
{{ card_data }}
---

# {{ text(project_name) }}

A text classifier fine-tuned from {{ base }}
with this project's {{ code(entry_point, False) }} entry point.
{% if independent -%}
It gives each text any number of its {{ label_names | length }} labels, none included: every label
whose score (a sigmoid per label) reaches that label's threshold, tuned on the validation split.
{%- elif pair -%}
It classifies pairs of texts: each pair, a text from {{ code(pair[0], False) }} and one from
{{ code(pair[1], False) }}, gets one of {{ label_names | length }} labels. The two texts are read
together, as the tokenizer joins a pair.
{%- else -%}
It gives each text one of {{ label_names | length }} labels.
{%- endif %}
The saved tokenizer truncates \
{% if pair %}a pair (the longer text first, `longest_first`){% else %}texts{% endif %} \
at {{ max_length }} tokens, the length the model was trained with.

| model | |
|---|---|
| base model | {{ base | replace("|", "\\|") }} |
| labels | {{ label_names | length }} |
| max length | {{ max_length }} tokens |
| entry point | {{ code(entry_point) }} |
{%- if pair %}
| text columns | {{ code(pair[0]) }}, {{ code(pair[1]) }} (a pair) |
{%- endif %}

## Labels

| id | label |{% for split in label_counts %} {{ text(split) }} examples |{% endfor %}\
{% if thresholds %} threshold |{% endif %}
|---|---|{% for split in label_counts %}---|{% endfor %}{% if thresholds %}---|{% endif %}
{%- for name in label_names %}{% set id = loop.index0 %}
| {{ id }} | {{ text(name) }} |{% for counts in label_counts.values() %} \
{{ count(counts[id]) }} |{% endfor %}{% if thresholds %} {{ metric(thresholds[id]) }} |{% endif %}
{%- endfor %}
{%- if independent %}
| | (no label) |{% for split in label_counts %} \
{{ count(rows_without_label.get(split)) }} |{% endfor %}{% if thresholds %} |{% endif %}
{%- endif %}

## Data

| split | examples |
|---|---|
{%- for split, rows in split_rows.items() %}
| {{ text(split) }} | {{ count(rows) }} |
{%- endfor %}

## Evaluation

{% if metrics -%}
| split | examples |{% for name in metric_names %} {{ metric_titles[name] }} |{% endfor %} loss |
|---|---|{% for name in metric_names %}---|{% endfor %}---|
{%- for split, m in metrics.items() %}
| {{ text(split) }} | {{ count(m.num_examples) }} |{% for name in metric_names %} {{ metric(m[name]) }} |\
{% endfor %} {{ metric(m.loss) }} |
{%- endfor %}
{%- else -%}
No evaluation results.
{%- endif %}
{%- if per_class %}

Per {{ "label" if independent else "class" }}, {{ detail }} split:

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{%- for name, s in per_class %}
| {{ text(name) }} | {{ metric(s.precision) }} | {{ metric(s.recall) }} | {{ metric(s.f1) }} | \
{{ count(s.support) }} |
{%- endfor %}
{%- endif %}
{%- if baseline_table %}

The baseline to beat, {{ baseline_split }} split: {{ baseline_method }}, fitted on the same
training split{% if independent %} (thresholds tuned on the same validation split){% endif %}\
{% if pair %}, reading each pair as one text (the two texts joined by a separator token){% endif %}.

{{ baseline_table | trim }}
{%- endif %}
{%- if confusion %}

Confusion matrix, {{ detail }} split (rows: true label, columns: predicted):

| |{% for name in label_names %} {{ text(name) }} |{% endfor %}
|---|{% for name in label_names %}---|{% endfor %}
{%- for name, row in confusion %}
| {{ text(name) }} |{% for value in row %} {{ count(value) }} |{% endfor %}
{%- endfor %}
{%- endif %}

## How to use
{% if independent %}
Every label whose score reaches its threshold (`label_thresholds` in `config.json`, in label-id
order) is predicted; a text may get none. Texts are cut at {{ max_length }} tokens, the saved
tokenizer's limit:

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")
thresholds = torch.tensor(model.config.label_thresholds)
texts = ["first text", "second text"]
batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
with torch.no_grad():
    chosen = model(**batch).logits.sigmoid() >= thresholds
print([[model.config.id2label[i] for i in row.nonzero().flatten().tolist()] for row in chosen])
```
{% elif pair %}
With the `transformers` pipeline, one pair as `{"text": ..., "text_pair": ...}` (the first text
as in {{ code(pair[0], False) }}, the second as in {{ code(pair[1], False) }}; `truncation=True`
cuts a long pair at the saved tokenizer's limit, {{ max_length }} tokens, longer text first):

```python
from transformers import pipeline

classifier = pipeline("text-classification", model="path/to/this/folder")
print(classifier({"text": "first text", "text_pair": "second text"}, truncation=True))
```

Or with the model and tokenizer, the first texts and the second texts as two lists:

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")
texts, text_pairs = ["first text"], ["second text"]
batch = tokenizer(texts, text_pairs, truncation="longest_first", padding=True, return_tensors="pt")
with torch.no_grad():
    predicted = model(**batch).logits.argmax(dim=-1).tolist()
print([model.config.id2label[i] for i in predicted])
```
{% else %}
With the `transformers` pipeline (`truncation=True` cuts long texts at the saved tokenizer's
limit, {{ max_length }} tokens):

```python
from transformers import pipeline

classifier = pipeline("text-classification", model="path/to/this/folder")
print(classifier(["first text", "second text"], truncation=True))
```

Or with the model and tokenizer:

```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")
texts = ["first text", "second text"]
batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
with torch.no_grad():
    predicted = model(**batch).logits.argmax(dim=-1).tolist()
print([model.config.id2label[i] for i in predicted])
```
{% endif %}
## Training options

{% if options -%}
| option | value |
|---|---|
{%- for key, value in options %}
| {{ code(key) }} | {{ code(shown(value)) }} |
{%- endfor %}
{%- else -%}
Not recorded.
{%- endif %}

## Run

| run | |
|---|---|
| run id | {{ code(run_id) }} |
| fingerprint | {{ code(fingerprint) }} |
| created | {{ text(created) }} |

Framework versions:

| package | version |
|---|---|
{%- for name, version in versions.items() %}
| {{ text(name) }} | {{ text(version) }} |
{%- endfor %}

"""

# Characters that could start markdown or HTML in a cell (a backslash escape works for any ASCII
# punctuation, so escaping these leaves the text unchanged on screen).
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&$])")


def _text(value: Any) -> str:
    """Plain text for a table cell or a heading: one line, markup characters escaped."""
    return _MARKUP.sub(r"\\\1", " ".join(str(value).split()))


def _code(value: Any, in_table: bool = True) -> str:
    """Inline code, which shows its content literally. A fence longer than any backtick run in
    the text lets backticks through; in a table a pipe still needs ``\\|`` (GFM splits cells
    before it reads code)."""
    text = " ".join(str(value).split())
    if not text:
        return ""
    fence = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    return fence + (text.replace("|", "\\|") if in_table else text) + fence


def _metric(value: Any) -> str:
    number = finite_number(value)
    return "" if number is None else f"{number:.4f}"


def _count(value: Any) -> str:
    return str(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else ""


def is_local_path(text: str) -> bool:
    """Whether ``text`` names a place on this machine rather than a hub id or a remote URI."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if text.startswith("file:"):
        return True
    if "://" in text:
        return False  # s3://..., https://...
    try:
        validate_repo_id(text)
    except HFValidationError:
        return True  # /abs, ./rel, ~/home, C:\win and the like
    return Path(text).exists()


def is_hub_id(text: str) -> bool:
    """Whether ``text`` reads as a Hugging Face Hub model id (``name`` or ``owner/name``)."""
    return "://" not in text and not is_local_path(text)


def _local_name(text: str) -> str:
    return re.split(r"[\\/]", text.removeprefix("file:").rstrip("\\/"))[-1] or "."


def _shown(value: Any) -> str:
    """An option's value as the card shows it: JSON but for strings; an absolute local path
    cut to its last component."""
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, default=str)
    if not (value.startswith(("/", "~", "file:")) or re.match(r"[A-Za-z]:[\\/]|\\\\", value)):
        return value
    place = Path(value.removeprefix("file:")).expanduser()
    kind = "folder" if place.is_dir() else "file" if place.is_file() else "path"
    return f"local {kind} {_local_name(value)}"


# Per metric name of any label scheme: (model-index metric type, title, metric args).
METRIC_KINDS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "accuracy": ("accuracy", "Accuracy", None),
    "macro_f1": ("f1", "Macro F1", {"average": "macro"}),
    "micro_f1": ("f1", "Micro F1", {"average": "micro"}),
    "micro_precision": ("precision", "Micro precision", {"average": "micro"}),
    "micro_recall": ("recall", "Micro recall", {"average": "micro"}),
    "hamming_loss": ("hamming_loss", "Hamming loss", None),
    "exact_match": ("exact_match", "Exact match", None),
    "loss": ("loss", "Loss", None),
}


def _kind(name: str) -> tuple[str, str, dict[str, Any] | None]:
    """A metric's model-index type, title and args; a name not listed stands for itself."""
    return METRIC_KINDS.get(name, (name, name.replace("_", " "), None))


def _eval_results(
    project_name: str, metrics: Mapping[str, Mapping[str, Any]], metric_names: Sequence[str]
) -> list[Any]:
    from huggingface_hub import EvalResult

    kinds = [(key, *_kind(key)) for key in (*metric_names, "loss")]
    return [
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
        for split, values in metrics.items()
        for key, metric_type, name, args in kinds
        if (number := finite_number(values.get(key))) is not None
    ]


def write_model_card(
    model_dir: str | Path,
    *,
    project_name: str,
    run_id: str,
    fingerprint: str,
    entry_point: str,
    base_model: str,
    label_names: Sequence[str],
    scheme: LabelScheme,
    label_counts: Mapping[str, Sequence[int]],
    split_rows: Mapping[str, int],
    rows_without_label: Mapping[str, int],
    metrics: Mapping[str, Mapping[str, Any]],
    options: Mapping[str, Any],
    max_length: int,
    baseline: Mapping[str, Any] | None = None,
    versions: Mapping[str, str],
    created: str,
    text_pair_columns: Sequence[str] | None = None,
) -> Path:
    """Write ``README.md`` (front matter + model card) into ``model_dir``; return its path.

    ``label_counts``: per split, the rows holding each label; ``split_rows`` the split's rows
    (for multi-label not the counts' sum); ``rows_without_label`` the rows holding none. The
    ``scheme`` (tuned) decides the scores shown and the thresholds recorded. ``baseline``: the
    TF-IDF baseline's metrics on one split (its ``split``), shown beside the model's.
    ``text_pair_columns``: the two text columns of a model that classifies text pairs."""
    from huggingface_hub import ModelCard, ModelCardData

    if is_local_path(base_model):
        base = f"a local folder ({_code(_local_name(base_model), False)})"
    elif is_hub_id(base_model):
        base = f"[{_code(base_model, False)}](https://huggingface.co/{base_model})"
    else:  # s3://... and other remote places
        base = _code(base_model, False)
    # Per class and confusion matrix: for the test split, else the validation split.
    detail = next((split for split in ("test", "validation") if split in metrics), "")
    scores = (metrics[detail].get("per_class") or {}) if detail else {}
    per_class = [(name, scores[name]) for name in label_names if isinstance(scores.get(name), Mapping)]
    matrix = metrics[detail].get("confusion_matrix") if detail else None
    if not isinstance(matrix, Sequence) or len(matrix) != len(label_names):
        matrix = []
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        base_model=base_model if is_hub_id(base_model) else None,
        model_name=project_name,
        eval_results=_eval_results(project_name, metrics, scheme.metric_names) or None,
        tags=["text-classification"],
    )
    card = ModelCard.from_template(
        data,
        template_str=TEMPLATE,
        text=_text,
        code=_code,
        metric=_metric,
        count=_count,
        shown=_shown,
        project_name=project_name,
        base=base,
        entry_point=entry_point,
        label_names=label_names,
        max_length=max_length,
        label_counts=label_counts,
        split_rows=split_rows,
        rows_without_label=rows_without_label,
        # Labels decided each on its own (multi-label) rather than one of them per text.
        independent=scheme.problem_type == "multi_label_classification",
        pair=list(text_pair_columns or []),
        thresholds=scheme.model_config().get("label_thresholds") or [],
        metric_names=scheme.metric_names,
        # Column titles as the metric names read ("macro F1"), not the model-index titles.
        metric_titles={name: name.replace("_", " ").replace("f1", "F1") for name in scheme.metric_names},
        metrics=metrics,
        detail=_text(detail),
        per_class=per_class,
        confusion=list(zip(label_names, matrix, strict=False)),
        baseline_split=_text(baseline["split"]) if baseline else "",
        baseline_method=baseline.get("method", "") if baseline else "",
        baseline_table=(
            markdown_table(
                dict(metrics[baseline["split"]]), dict(baseline), scheme.metric_names, scheme.lower_is_better
            )
            if baseline and baseline["split"] in metrics
            else ""
        ),
        options=sorted(options.items()),
        run_id=run_id,
        fingerprint=fingerprint,
        created=created,
        versions=versions,
    )
    path = Path(model_dir) / CARD_FILE
    card.save(path)
    return path
