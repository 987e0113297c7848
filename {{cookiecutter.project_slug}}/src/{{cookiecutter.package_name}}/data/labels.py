"""Map raw label values (ids or names) to label ids, in the order of the configured names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LabelError(ValueError):
    """A label value matches no configured label."""


class LabelMap:
    """Label names in id order; accepts ``0``/``"0"`` style ids or the names themselves."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._by_name = {name: index for index, name in enumerate(self.names)}
        self._by_folded = {name.strip().casefold(): index for index, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return dict(self._by_name)

    def to_id(self, value: Any) -> int:
        """The label id of ``value``; raises :class:`LabelError` naming what is accepted."""
        if isinstance(value, bool):
            raise LabelError(self._message(value))
        if isinstance(value, int):
            if 0 <= value < len(self.names):
                return value
            raise LabelError(self._message(value))
        if isinstance(value, float) and value.is_integer():
            return self.to_id(int(value))
        text = str(value).strip()
        if text in self._by_name:
            return self._by_name[text]
        folded = text.casefold()
        if folded in self._by_folded:
            return self._by_folded[folded]
        if text.isdigit() and int(text) < len(self.names):
            return int(text)
        raise LabelError(self._message(value))

    def _message(self, value: Any) -> str:
        accepted = ", ".join(f"{index}={name!r}" for index, name in enumerate(self.names))
        return f"label {value!r} is neither a label id nor a label name (accepted: {accepted})"
