"""Policy attributes of listings and the rules on them (pure, with the data they read).

- Green products (财库〔2019〕9号): a listing carries its 节能产品 and 环境标志产品 certificate numbers,
  each with its expiry date; a certificate counts while not expired.
- The mandatory list: the 品目 of 《节能产品政府采购品目清单》 (财库〔2019〕19号) marked for 强制采购
  (★), mapped to the 2022 catalogue in `data/energy-mandatory.csv`. In such a 品目 a listing without an
  energy certificate in force is refused at checkout while a certified listing of the same 品目 is live.
- Origin: 本国产品 or 进口产品. Buying imported products needs the finance department's approval
  (《政府采购进口产品管理办法》, 财库〔2007〕119号, 第四条): an imported listing carries its approval's
  reference, and without one it cannot be declared imported.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

MANDATORY_SOURCE = "财库〔2019〕19号《节能产品政府采购品目清单》（★为政府强制采购）"
ORIGINS = {"domestic": "本国产品", "imported": "进口产品"}
GREEN_LABELS = {"energy": "节能产品", "eco": "环境标志产品"}
CERT_MAX = 60
APPROVAL_MAX = 100
_CERT = re.compile(r"[0-9A-Za-z][0-9A-Za-z\-/.()（）]{3,59}")


@dataclass(frozen=True)
class MandatoryItem:
    category_code: str
    name: str  # in the 2022 catalogue
    name_in_list: str  # as the 2019 list names it
    note: str


@cache
def mandatory() -> dict[str, MandatoryItem]:
    """The 品目 where energy-saving products are mandatory, by 2022 code."""
    path = Path(__file__).parent / "data" / "energy-mandatory.csv"
    with path.open(encoding="utf-8") as f:
        return {
            r["category_code"]: MandatoryItem(
                r["category_code"], r["name_2022"], r["name_in_list"], r["note"]
            )
            for r in csv.DictReader(f)
        }


def in_force(number: str, until: date | None, today: date) -> bool:
    return bool(number) and until is not None and until >= today


def green_of(
    energy_no: str, energy_until: date | None, eco_no: str, eco_until: date | None, today: date
) -> str:
    """ "energy", "eco", "energy,eco" or "": the certificates in force."""
    kinds = [
        k
        for k, ok in (
            ("energy", in_force(energy_no, energy_until, today)),
            ("eco", in_force(eco_no, eco_until, today)),
        )
        if ok
    ]
    return ",".join(kinds)


def needs_energy_certificate(category_code: str) -> bool:
    return category_code in mandatory()


def cert_problems(number: str, until: str, label: str) -> tuple[str, date | None, list[str]]:
    """A certificate as typed: (number, expiry, problems). Both empty: no certificate."""
    number, until = number.strip(), until.strip()
    if not number and not until:
        return "", None, []
    errors: list[str] = []
    if not _CERT.fullmatch(number):
        errors.append(f"{label}证书编号应为4至60位字母、数字或 - / . ( )")
    expiry: date | None = None
    try:
        expiry = date.fromisoformat(until)
    except ValueError:
        errors.append(f"请填写{label}证书的有效期至（YYYY-MM-DD）")
    return number, expiry, errors


def origin_problems(origin: str, approval: str) -> list[str]:
    if origin not in ORIGINS:
        return ["产地应为本国产品（domestic）或进口产品（imported）"]
    if origin == "imported" and len(approval.strip()) < 4:
        return ["进口产品须填写财政部门的进口产品采购审核批复文号（财库〔2007〕119号）"]
    return []
