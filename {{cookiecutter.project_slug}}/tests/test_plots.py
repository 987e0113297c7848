"""Pictures people look at: label names must be readable, whatever script they are in."""

from __future__ import annotations

import logging
import warnings

import pytest

from nsmc_sentiment_classifier import metrics

KOREAN = ["부정", "중립", "긍정"]


def draw(names, path):
    matrix = [[index + row for index in range(len(names))] for row in range(len(names))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.save_confusion_matrix_png(matrix, names, path)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("kind", ["project", "korean"])
def test_label_names_get_a_font_with_their_glyphs(kind, config, tmp_path, caplog):
    names = list(config.data.label_names) if kind == "project" else KOREAN
    fonts = metrics.label_fonts(names)
    if fonts == ["sans-serif"] and any(ord(c) > 0x2FF for name in names for c in name):
        # No installed font has the glyphs: the user must have been told how to fix it.
        assert metrics.FONT_HELP in caplog.text
        return
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family=[fonts[0]]))
    assert metrics._covers(path, {c for name in names for c in name if not c.isspace()})
    # matplotlib warns "Glyph ... missing from font(s)" for every box it would draw.
    with caplog.at_level(logging.WARNING):
        assert not [m for m in draw(names, tmp_path / "cm.png") if "missing" in m]
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_without_a_covering_font_the_user_is_told_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(metrics, "_covers", lambda path, characters: not characters - set("abc"))
    monkeypatch.setattr(metrics, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=metrics.__name__):
        draw(["부정", "긍정"], tmp_path / "a.png")
        draw(["부정", "긍정"], tmp_path / "b.png")
    told = [r.getMessage() for r in caplog.records if "no installed font" in r.getMessage()]
    assert len(told) == 1 and "fonts-nanum" in told[0] and "koreanize-matplotlib" in told[0]
    assert (tmp_path / "b.png").stat().st_size > 0


@pytest.mark.parametrize("count", [3, 25])
def test_the_per_label_figure_stays_readable_for_many_labels(count, tmp_path):
    """Multi-label splits get bars per label (no N x N matrix); the figure grows with the labels."""
    from PIL import Image

    names = [f"label number {index}" for index in range(count)]
    scores = {name: {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "support": 4} for name in names}
    path = metrics.save_metrics_png({"per_class": scores, "labels": names}, tmp_path, "test")
    assert path == tmp_path / "per_label_test.png"
    width, height = Image.open(path).size
    assert height >= 120 * min(3.0, 0.45 * count + 1.5) and width >= 120 * 7
