"""Classification metrics shared by training, evaluation and the inference helpers.

Every caller reports the same keys, so a metrics JSON written during training can be compared
directly with one written by a later evaluation run.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def compute_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    ``per_class`` is keyed by label name; the confusion matrix is a nested list with rows = true
    labels and columns = predicted labels, both in label-id order (so classes absent from a small
    split still get a row and column instead of silently shifting the others).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = [int(value) for value in y_true]
    y_pred = [int(value) for value in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    names = list(label_names)
    label_ids = list(range(len(names)))
    out_of_range = sorted({v for v in (*y_true, *y_pred) if not 0 <= v < len(names)})
    if out_of_range:
        raise ValueError(f"label id(s) {out_of_range} outside 0..{len(names) - 1} ({', '.join(names)})")
    if not y_true:
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return {
            "num_examples": 0,
            "accuracy": 0.0,
            "macro_f1": 0.0,
            "per_class": {name: dict(zero) for name in names},
            "confusion_matrix": [[0] * len(names) for _ in names],
            "labels": names,
        }
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average=None, zero_division=0
    )
    _, _, macro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average="macro", zero_division=0
    )
    matrix = confusion_matrix(y_true, y_pred, labels=label_ids)
    return {
        "num_examples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(macro_f1),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": [[int(cell) for cell in row] for row in matrix.tolist()],
        "labels": names,
    }


def save_confusion_matrix_png(
    matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """Draw the confusion matrix (counts, true labels down, predictions across) as a PNG."""
    import matplotlib
    from matplotlib.figure import Figure

    names = list(label_names)
    cells = [[int(cell) for cell in row] for row in matrix]
    size = max(4.0, 0.6 * len(names) + 2.5)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Default fonts lack Hangul glyphs; matplotlib would draw boxes. Use an installed font that
    # has every glyph of the label names; without one, say so once and how to fix it.
    with warnings.catch_warnings(), matplotlib.rc_context({"font.family": label_fonts(names)}):
        warnings.filterwarnings("ignore", message=".*[Gg]lyph.*missing.*")
        # A bare Figure renders with Agg and leaves pyplot's global backend alone (headless jobs,
        # notebooks).
        figure = Figure(figsize=(size, size))
        axes = figure.subplots()
        image = axes.imshow(cells, cmap="Blues")
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        axes.set_xticks(range(len(names)), labels=names, rotation=45, ha="right")
        axes.set_yticks(range(len(names)), labels=names)
        axes.set_xlabel("predicted label")
        axes.set_ylabel("true label")
        axes.set_title("Confusion matrix")
        peak = max((max(row) for row in cells if row), default=0)
        for i, row in enumerate(cells):
            for j, count in enumerate(row):
                colour = "white" if peak and count > peak / 2 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=colour)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    return path


# Fonts with Hangul (and other CJK) glyphs commonly found on Linux, macOS and Windows; tried
# first, then every other installed font.
CJK_FONTS = ("NanumGothic", "Noto Sans CJK KR", "Noto Sans KR", "AppleGothic", "Malgun Gothic")
FONT_HELP = (
    "install a font that has them (Debian/Ubuntu: apt-get install fonts-nanum; any system: "
    "pip install koreanize-matplotlib)"
)
_warned: set[str] = set()


@functools.cache
def _register_packaged_fonts() -> None:
    """Make fonts shipped inside Python packages (koreanize-matplotlib's Nanum) findable; once."""
    import importlib.util

    from matplotlib import font_manager

    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder, "fonts").glob("*.ttf")):
            font_manager.fontManager.addfont(str(path))


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for (read once per file: every plot asks)."""
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _covers(path: str, characters: set[str]) -> bool:
    return all(ord(character) in _charmap(path) for character in characters)


def label_fonts(label_names: Sequence[str]) -> list[str]:
    """Font families for a plot of these labels: one that has all their glyphs first (when the
    default font lacks some), then matplotlib's default. Logs a warning, once per set of missing
    characters, when no installed font has them."""
    from matplotlib import font_manager

    needed = {character for name in label_names for character in name if not character.isspace()}
    default = font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]))
    if _covers(default, needed):
        return ["sans-serif"]
    _register_packaged_fonts()
    fonts = sorted(
        font_manager.fontManager.ttflist,
        key=lambda font: CJK_FONTS.index(font.name) if font.name in CJK_FONTS else len(CJK_FONTS),
    )
    for font in fonts:
        if _covers(font.fname, needed):
            return [font.name, "sans-serif"]
    missing = "".join(sorted(c for c in needed if not _covers(default, {c})))
    if missing not in _warned:
        _warned.add(missing)
        log.warning(
            "no installed font has glyphs for %r of the label names: the PNG shows them as boxes; %s",
            missing[:20],
            FONT_HELP,
        )
    return ["sans-serif"]
