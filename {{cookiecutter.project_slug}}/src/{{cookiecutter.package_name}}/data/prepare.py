"""Write deterministic, stratified train/validation/test splits as SageMaker channel folders.

Layout: ``<out>/<split>/<split>.jsonl`` plus ``<out>/manifest.json``; each folder uploads as the
channel of the same name, and the training scripts read them with the same readers.

No text is in two splits: a text that occurs several times goes to one split with all its
copies, and the source's own evaluation splits stay as they are while the training (or
validation) rows whose text they also hold are dropped; ``manifest.json`` records how many under
``"dropped_duplicates"``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import DataSection
from ..errors import DataFormatError
from .download import sha256_of
from .examples import Example, load_examples
from .io import write_jsonl
from .sources import SPLITS, resolve_source
from .stratify import iterative_split

log = logging.getLogger(__name__)


def _carve(examples: list[Example], fraction: float, seed: int, name: str) -> tuple[list, list]:
    """Split off a stratified ``fraction``, deterministic for a seed and input order. Identical
    texts stay or go together, so no text is both training data and held out."""
    groups: dict[tuple[str, ...], list[Example]] = {}
    for example in examples:
        groups.setdefault(example.texts, []).append(example)
    members = list(groups.values())
    # A text's most frequent label (or label set) stands for its copies in the stratification;
    # without duplicates this is the plain per-row split.
    labels = [Counter(example.label for example in group).most_common(1)[0][0] for group in members]
    if any(isinstance(label, tuple) for label in labels):
        carved_members = _carve_label_sets(members, labels, fraction, seed, name)
        kept = [group for group, carved in zip(members, carved_members, strict=True) if not carved]
        carved_groups = [group for group, carved in zip(members, carved_members, strict=True) if carved]
    else:
        kept, carved_groups = _carve_classes(members, labels, fraction, seed, name)
    kept_examples = [example for group in kept for example in group]
    return kept_examples, [example for group in carved_groups for example in group]


def _carve_classes(members: list, labels: list, fraction: float, seed: int, name: str) -> tuple[list, list]:
    """One label per text: scikit-learn's stratified split."""
    from sklearn.model_selection import train_test_split

    try:
        kept, carved = train_test_split(members, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as error:
        raise DataFormatError(
            f"cannot carve a stratified {name} split of {fraction:.0%} from {len(members)} distinct "
            f"texts ({dict(sorted(Counter(labels).items()))} per label id): {error}. Add data for "
            "rare labels, change the fraction in config.toml, or provide the split as its own file"
        ) from None
    return kept, carved


def _carve_label_sets(members: list, labels: list, fraction: float, seed: int, name: str) -> list[bool]:
    """Label sets per text: iterative stratification (see :mod:`.stratify`); whether each
    member is carved off."""
    carved = iterative_split(labels, fraction, seed)
    if not 0 < len(carved) < len(members):
        raise DataFormatError(
            f"cannot carve a {name} split of {fraction:.0%} from {len(members)} distinct texts: it "
            f"would hold {len(carved)} of them. Add data, change the fraction in config.toml, or "
            "provide the split as its own file"
        )
    chosen = set(carved)
    return [index in chosen for index in range(len(members))]


def _drop_held_out(loaded: dict[str, list[Example]]) -> dict[str, dict[str, int]]:
    """Drop the rows of a split whose text a later split also holds (test before validation
    before train); returns {split: {held-out split: rows dropped}}. Held-out splits stay whole,
    so scores stay comparable with others' on a benchmark's published test set."""
    dropped: dict[str, dict[str, int]] = {}
    for held_out in ("test", "validation"):
        if held_out not in loaded:
            continue
        texts = {example.texts for example in loaded[held_out]}
        for split in SPLITS[: SPLITS.index(held_out)]:
            if split not in loaded:
                continue
            kept = [example for example in loaded[split] if example.texts not in texts]
            if len(kept) < len(loaded[split]):
                dropped.setdefault(split, {})[held_out] = len(loaded[split]) - len(kept)
                loaded[split] = kept
    return dropped


def _record(config: DataSection, example: Example) -> dict[str, Any]:
    """A prepared row: the label id; for a label set, a JSON list of ids (layout "column") or a
    0/1 per label name (layout "columns"), as the source held it."""
    label = example.label
    texts = dict(zip(config.text_columns, example.texts, strict=True))
    if not isinstance(label, tuple):
        return {**texts, config.label_column: label}
    if config.label_layout == "columns":
        flags = {name: int(index in label) for index, name in enumerate(config.label_names)}
        return {**texts, **flags}
    return {**texts, config.label_column: list(label)}


def prepare(config: DataSection, out_dir: str | Path, source: str | None = None) -> dict[str, Any]:
    """Read the source, split what it lacks, write the channel folders; returns the manifest."""
    out_dir = Path(out_dir)
    scheme = config.label_scheme
    multi = config.task == "multi_label"
    files = resolve_source(source or config.source)
    loaded = {
        split: load_examples(
            path,
            config.text_column,
            config.label_column,
            config.label_names,
            label_format=config.label_format,
            scheme=scheme,
            label_layout=config.label_layout,
            text_pair_column=config.pair_column,
        )
        for split, path in files.items()
    }
    dropped = _drop_held_out(loaded)
    pool = loaded["train"]
    if "test" not in loaded and config.test_fraction > 0:
        pool, loaded["test"] = _carve(pool, config.test_fraction, config.seed, "test")
    if "validation" not in loaded and config.validation_fraction > 0:
        fraction = config.validation_fraction / (1.0 - (0 if "test" in files else config.test_fraction))
        pool, loaded["validation"] = _carve(pool, fraction, config.seed, "validation")
    loaded["train"] = pool

    manifest: dict[str, Any] = {
        "source": source or config.source,
        "source_files": {
            split: {"path": str(path), "sha256": sha256_of(path)} for split, path in files.items()
        },
        "seed": config.seed,
        "text_column": config.text_column,
        "label_column": config.label_column,
        "label_names": list(config.label_names),
        **({"task": config.task, "label_layout": config.label_layout} if multi else {}),
        **({"task": config.task, "text_pair_column": config.pair_column} if config.pair_column else {}),
        "splits": {},
        "dropped_duplicates": dropped,
    }
    for split in SPLITS:
        if split not in loaded:
            continue
        # Source order is kept inside each split: it is deterministic and easy to trace back.
        examples = sorted(loaded[split], key=lambda example: example.line)
        path = out_dir / split / f"{split}.jsonl"
        write_jsonl(path, (_record(config, example) for example in examples))
        counts = scheme.label_counts((example.label for example in examples), len(config.label_names))
        manifest["splits"][split] = {
            "path": str(path.relative_to(out_dir)),
            "rows": len(examples),
            "labels": dict(zip(config.label_names, counts, strict=True)),
        }
        if multi:
            manifest["splits"][split]["rows_without_label"] = scheme.empty_rows(e.label for e in examples)
        log.info("%s: %d rows -> %s", split, len(examples), path)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest
