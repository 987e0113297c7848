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
