"""Jinja filters of this template (cookiecutter loads this file through ``_extensions``)."""

from __future__ import annotations

import json

from cookiecutter.utils import simple_filter


@simple_filter
def toml(value: object) -> str:
    """A TOML value (string, number, bool or list of them) for any answer.

    Jinja's ``tojson`` writes non-ASCII characters outside the Basic Multilingual Plane (emoji) as
    UTF-16 surrogate pairs, which TOML rejects. JSON without ASCII escaping is valid TOML once DEL,
    the one control character JSON leaves raw, is escaped too.
    """
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


# Hangul Jamo, CJK symbols to ideographs, Hangul syllables, compatibility ideographs, full-width.
_CJK_RANGES = ((0x1100, 0x11FF), (0x3000, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF))


@simple_filter
def needs_cjk_font(value: object) -> bool:
    """Whether text holds characters that matplotlib's default font cannot draw (Korean, ...)."""
    return any(low <= ord(char) <= high for char in str(value) for low, high in _CJK_RANGES)
