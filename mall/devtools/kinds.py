"""The shape of the generator's product tables: a kind of goods (one 品目) with its brands, series and
spec axes, written with the short constructors `o` (an option) and `s` (a series)."""

from __future__ import annotations

from dataclasses import dataclass

# An option of one spec axis: (text in the title, text in the description, price tier, model fragment).
# The title text may be empty (description only). The model fragment replaces `#` in a model template.
Option = tuple[str, str, float, str]
# A product line: (series shown in the title, model template, price level 0..1).
Series = tuple[str, str, float]


def o(title: str, desc: str = "", tier: float = 0.0, frag: str = "") -> Option:
    return (title, desc or title, tier, frag)


def s(title: str, model: str = "", level: float = 0.5) -> Series:
    return (title, model or title, level)


@dataclass(frozen=True)
class Kind:
    code: str
    noun: str
    unit: str
    low: int  # reference price range in yuan
    high: int
    weight: float
    brands: tuple[tuple[str, tuple[Series, ...]], ...]
    axes: tuple[tuple[Option, ...], ...]
    tails: tuple[str, ...]  # closing clause of the description (service, accessories)
    sep: str = "/"  # between the spec texts of the title


DESKTOP_TAILS = (
    "预装正版Windows 11专业版，三年上门保修",
    "预装统信UOS操作系统，三年原厂上门保修",
    "预装银河麒麟操作系统，五年上门保修",
    "含原装键盘鼠标，三年原厂保修",
)
LAPTOP_TAILS = (
    "预装正版Windows 11家庭中文版，一年上门保修",
    "预装统信UOS操作系统，三年原厂保修",
    "含原装电源适配器及电脑包，两年原厂保修",
)
PRINT_TAILS = (
    "随机附带原装硒鼓，一年上门保修",
    "支持统信UOS及银河麒麟驱动，三年原厂保修",
    "含USB数据线，全国联保",
)
