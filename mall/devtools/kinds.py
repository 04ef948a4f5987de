"""The generator's product tables: a kind of goods (one 品目) with its brands, series and spec axes.

The tables are data, kept next to this module as three CSV files, each row of the latter two naming its
kind by code and unit (a code may be sold in two units, like 复印纸 by 包 and by 箱):

- kinds.csv: code, noun, unit, the reference price range in yuan (low, high), the kind's weight in the
  sequence, the separator between the spec texts of the title, and up to four closing clauses of the
  description (tail_1..tail_4: service, accessories).
- kind_series.csv: the product lines of each brand, in order: brand, series (shown in the title), model
  template and price level 0..1.
- kind_options.csv: the options of each spec axis (axis 1, 2, ...), in order: text in the title (may be
  empty), text in the description, price tier and the model fragment that replaces `#` in the template.

The order of the rows is part of the generated sequence: a new kind goes at the end.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent

# An option of one spec axis: (text in the title, text in the description, price tier, model fragment).
Option = tuple[str, str, float, str]
# A product line: (series shown in the title, model template, price level 0..1).
Series = tuple[str, str, float]


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


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_kinds(folder: Path = HERE) -> tuple[Kind, ...]:
    brands: dict[tuple[str, str], dict[str, list[Series]]] = {}
    for r in rows(folder / "kind_series.csv"):
        lines = brands.setdefault((r["code"], r["unit"]), {}).setdefault(r["brand"], [])
        lines.append((r["series"], r["model"], float(r["level"])))
    axes: dict[tuple[str, str], dict[str, list[Option]]] = {}
    for r in rows(folder / "kind_options.csv"):
        options = axes.setdefault((r["code"], r["unit"]), {}).setdefault(r["axis"], [])
        options.append((r["title"], r["text"], float(r["tier"]), r["fragment"]))
    kinds = []
    for r in rows(folder / "kinds.csv"):
        key = (r["code"], r["unit"])
        kinds.append(
            Kind(
                code=r["code"],
                noun=r["noun"],
                unit=r["unit"],
                low=int(r["low"]),
                high=int(r["high"]),
                weight=float(r["weight"]),
                brands=tuple((brand, tuple(lines)) for brand, lines in brands[key].items()),
                axes=tuple(
                    tuple(options) for _, options in sorted(axes[key].items(), key=lambda a: int(a[0]))
                ),
                tails=tuple(r[f"tail_{i}"] for i in range(1, 5) if r[f"tail_{i}"]),
                sep=r["title_separator"],
            )
        )
    return tuple(kinds)
