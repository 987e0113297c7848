"""Pictures of the metrics, with fonts that have the label names' glyphs: the confusion matrix
(one label per text) or per-label precision, recall and F1 (multi-label, where an N x N matrix
says nothing: a text's labels are not confused with each other).

The metrics themselves are the label scheme's (``label_schemes``): training and evaluation ask
the same scheme, so a metrics JSON written during training compares directly with a later one.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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


def save_metrics_png(metrics: Mapping[str, Any], folder: str | os.PathLike[str], split: str) -> Path:
    """The picture of one split's metrics (a label scheme's ``compute_metrics``): the confusion
    matrix where there is one (``confusion_matrix_<split>.png``), else per-label figures
    (``per_label_<split>.png``)."""
    if "confusion_matrix" in metrics:
        return save_confusion_matrix_png(
            metrics["confusion_matrix"], metrics["labels"], Path(folder) / f"confusion_matrix_{split}.png"
        )
    return save_per_label_png(
        metrics["per_class"], metrics["labels"], Path(folder) / f"per_label_{split}.png"
    )


# Inches of figure height per label: three bars and a readable tick label each.
_INCHES_PER_LABEL = 0.45


def save_per_label_png(
    per_class: Mapping[str, Mapping[str, Any]], label_names: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """Precision, recall and F1 per label as horizontal bars, one group per label (support in
    its name), in label-id order from the top. Grows with the label count so 20+ labels stay
    readable; wide enough for long names."""
    import matplotlib
    from matplotlib.figure import Figure

    names = list(label_names)
    shown = [f"{name} (n={int(per_class.get(name, {}).get('support', 0))})" for name in names]
    series = [
        (key, [float(per_class.get(name, {}).get(key, 0.0)) for name in names])
        for key in ("precision", "recall", "f1")
    ]
    longest = max((len(text) for text in shown), default=0)
    width = min(18.0, 7.0 + 0.08 * longest)
    height = max(3.0, _INCHES_PER_LABEL * len(names) + 1.5)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), matplotlib.rc_context({"font.family": label_fonts(names)}):
        warnings.filterwarnings("ignore", message=".*[Gg]lyph.*missing.*")
        figure = Figure(figsize=(width, height))
        axes = figure.subplots()
        bar = 0.27
        for offset, (key, values) in enumerate(series):
            positions = [index + (offset - 1) * bar for index in range(len(names))]
            axes.barh(positions, values, height=bar, label=key)
        axes.set_yticks(range(len(names)), labels=shown)
        axes.invert_yaxis()  # label id 0 at the top, as in the tables
        axes.set_xlim(0.0, 1.0)
        axes.set_xlabel("score")
        axes.set_title("Per-label precision, recall and F1")
        axes.grid(axis="x", alpha=0.3)
        axes.legend(loc="lower right")
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
