"""Map raw label values (ids or names) to label ids, in the order of the configured names.

Whether a file's label values are ids (``0``, ``"1"``) or names (``"positive"``) is decided for
the file as a whole (:func:`decide_format`), not value by value: with numeric label names such as
``1,2,3,4,5`` the value ``"1"`` is both id 1 and the name of id 0, and reading each value on its
own would silently merge classes. Every label scheme reads its values with these. Standard
library only: the cookiecutter hooks use it, and the inference container runs it beside
``code/inference.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LABEL_FORMATS = ("auto", "ids", "names")
# Values listed in a message; the count is always exact.
MAX_VALUES_SHOWN = 10
# "3.0" is how spreadsheets and JSON floats write the id 3.
_WHOLE_NUMBER_RE = re.compile(r"([0-9]+)\.0+")
FIX_AMBIGUITY = (
    "use label names that are not numbers (e.g. '1star', '2star', ...), or set "
    '[data].label_format = "ids" or "names" in config.toml'
)


class LabelError(ValueError):
    """A label value matches no configured label, or a file's values cannot be read one way."""


class UnknownLabelsError(LabelError):
    """Label values that are neither label ids nor label names (as the format allows)."""

    def __init__(self, message: str, values: Sequence[str], lines: Mapping[str, int]) -> None:
        super().__init__(message)
        self.values = list(values)
        self.lines = dict(lines)

    @property
    def first_line(self) -> int | None:
        """The first line holding an unknown value, where the caller gave line numbers."""
        known = [self.lines[value] for value in self.values if value in self.lines]
        return min(known) if known else None


class MixedLabelsError(LabelError):
    """A file holds label ids in some rows and label names in others."""


class AmbiguousLabelsError(LabelError):
    """Numeric label names: the values read as ids and as names, and the two readings differ."""


def label_key(value: Any) -> str:
    """A raw label value as text: ``3``, ``3.0``, ``"3.0"`` and ``" 3 "`` are all ``"3"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    match = _WHOLE_NUMBER_RE.fullmatch(text)
    return match.group(1) if match else text


def check_label_format(label_format: str) -> str:
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format must be one of {', '.join(LABEL_FORMATS)}, got {label_format!r}")
    return label_format


class LabelMap:
    """Label names in id order; reads ``0``/``"0"`` style ids, the names themselves, or either.

    ``label_format`` is "ids", "names" or "auto". With "auto" each value is read on its own (a
    name first, else an id) and a value that reads both ways with different results is an
    error; decide a whole file's format with :func:`decide_format` and pass it here instead.
    """

    def __init__(self, names: Sequence[str], label_format: str = "auto") -> None:
        self.names = tuple(names)
        self.label_format = check_label_format(label_format)
        self._by_name = {name: index for index, name in enumerate(self.names)}
        self._by_folded = {name.strip().casefold(): index for index, name in enumerate(self.names)}

    def id_of(self, value: Any) -> int | None:
        """``value`` read as a label id, or None."""
        if isinstance(value, bool):
            return None
        key = label_key(value)
        if key.isascii() and key.isdigit() and int(key) < len(self.names):
            return int(key)
        return None

    def name_of(self, value: Any) -> int | None:
        """The id of the label named ``value`` (exact, else ignoring case and spaces), or None."""
        key = label_key(value)
        if key in self._by_name:
            return self._by_name[key]
        return self._by_folded.get(key.casefold())

    def to_id(self, value: Any) -> int:
        """The label id of ``value``; raises :class:`LabelError` naming what is accepted."""
        by_id = None if self.label_format == "names" else self.id_of(value)
        by_name = None if self.label_format == "ids" else self.name_of(value)
        if by_id is not None and by_name is not None and by_id != by_name:
            raise AmbiguousLabelsError(
                f"label {value!r} is both label id {by_id} ({self.names[by_id]!r}) and the name of "
                f"label id {by_name}; {FIX_AMBIGUITY}"
            )
        if by_name is not None:
            return by_name
        if by_id is not None:
            return by_id
        accepted = ", ".join(f"{index}={name!r}" for index, name in enumerate(self.names))
        kind = {"auto": "neither a label id nor a label name", "ids": "not a label id"}.get(
            self.label_format, "not a label name"
        )
        raise LabelError(f"label {value!r} is {kind} (accepted: {accepted})")


def _first_lines(values: Mapping[Any, Any] | Iterable[Any]) -> tuple[list[str], dict[str, int]]:
    """Distinct label keys in order of appearance and, for a mapping, each key's first line."""
    lines: dict[str, int] = {}
    keys: dict[str, None] = {}
    if isinstance(values, Mapping):
        for value, line in values.items():
            key = label_key(value)
            keys.setdefault(key)
            if isinstance(line, int) and not isinstance(line, bool):
                lines[key] = min(line, lines.get(key, line))
    else:
        for value in values:
            keys.setdefault(label_key(value))
    return list(keys), lines


def _sort_key(key: str) -> tuple[bool, int, str]:
    numeric = key.isascii() and key.isdigit()
    return (not numeric, int(key) if numeric else 0, key)


def _listed(keys: Sequence[str], lines: Mapping[str, int] | None = None) -> str:
    def one(key: str) -> str:
        return f"{key!r} (line {lines[key]})" if lines and key in lines else repr(key)

    shown = ", ".join(one(key) for key in keys[:MAX_VALUES_SHOWN])
    more = f" and {len(keys) - MAX_VALUES_SHOWN} more" if len(keys) > MAX_VALUES_SHOWN else ""
    return shown + more


def _accepted(names: Sequence[str]) -> str:
    return ", ".join(f"{index} or {name!r}" for index, name in enumerate(names))


def decide_format(
    values: Mapping[Any, Any] | Iterable[Any], names: Sequence[str], label_format: str = "auto"
) -> str:
    """Whether a whole file's label values are label ids or label names: "ids" or "names".

    ``values`` are the file's raw label values, or a mapping from each value to the line it
    first appears on (messages then name lines). With ``label_format`` "ids" or "names" only that
    reading is allowed; with "auto" the file decides, and must be readable one way throughout.
    """
    check_label_format(label_format)
    labels = LabelMap(names)
    keys, lines = _first_lines(values)
    as_ids = {key: labels.id_of(key) for key in keys}
    as_names = {key: labels.name_of(key) for key in keys}
    # The readings the format allows; a value none of them reads is unknown.
    readings = {"ids": [as_ids], "names": [as_names], "auto": [as_ids, as_names]}[label_format]
    unknown = [key for key in keys if all(reading[key] is None for reading in readings)]
    if unknown:
        what = {"ids": f"not label ids (0 to {len(names) - 1})", "names": "not label names"}.get(
            label_format, "neither label ids nor label names"
        )
        unknown.sort(key=lambda key: (lines.get(key, 0), _sort_key(key)))
        found = sorted(keys, key=_sort_key)
        setting = "" if label_format == "auto" else f' (label_format = "{label_format}")'
        raise UnknownLabelsError(
            f"{len(unknown)} label value(s) {what}{setting}: {_listed(unknown, lines)}. "
            f"Labels found: {_listed(found)}. Accepted: {_accepted(names)}",
            unknown,
            lines,
        )
    if label_format != "auto":
        return label_format
    all_ids = all(as_ids[key] is not None for key in keys)
    all_names = all(as_names[key] is not None for key in keys)
    if all_ids and all_names:
        differing = [key for key in keys if as_ids[key] != as_names[key]]
        if differing:
            differing.sort(key=_sort_key)
            example = differing[0]
            raise AmbiguousLabelsError(
                f"the label names are numbers ({', '.join(names)}), so the label values "
                f"{_listed(sorted(keys, key=_sort_key))} can be read either as label ids or as label "
                f"names, and the readings differ (e.g. {example!r} is label id {as_ids[example]} "
                f"but also the name of label id {as_names[example]}); {FIX_AMBIGUITY}"
            )
        return "ids"
    if all_ids:
        return "ids"
    if all_names:
        return "names"
    only_ids = sorted((key for key in keys if as_names[key] is None), key=_sort_key)
    only_names = sorted((key for key in keys if as_ids[key] is None), key=_sort_key)
    raise MixedLabelsError(
        f"the label values mix label ids ({_listed(only_ids, lines)}) and label names "
        f"({_listed(only_names, lines)}); write every label the same way, as an id or as a name "
        f"(accepted: {_accepted(names)})"
    )
