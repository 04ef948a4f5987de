"""Statuses and kinds that carry the Chinese label people read: `PAID = "paid", "已付款"`.

The value stored and sent is the first string; `.label` is the second; `Enum.labels()` is the
value → label table the pages and exports show.
"""

from __future__ import annotations

import enum
from typing import Self


class Labeled(enum.StrEnum):
    label: str

    def __new__(cls, value: str, label: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label or value
        return member

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {m.value: m.label for m in cls}
