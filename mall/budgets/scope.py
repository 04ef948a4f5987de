"""What a budget line may buy: its scope, a list of 品目 codes of the official catalogue. A line
covers a code that falls under one of them (A02010000 信息化设备 covers A02010105 台式计算机); a
line with no scope covers every 品目 (a general line, as the finance system may hand over).

Pure rules: parsing what an administrator types, and the refusal that names the line's scope."""

from __future__ import annotations

import re
from collections.abc import Iterable

from catalog.categories import name_of, prefix_of
from mall.core.errors import InvalidInput, RuleViolation
from mall.core.fields import BUDGET_SCOPE_MAX as SCOPE_MAX

_SEPARATORS = re.compile(r"[\s,，、;；]+")
_CODE = re.compile(r"[ABC][0-9]{2,15}")


def parse(raw: str) -> str:
    """The scope as stored: the codes in the order typed, once each, separated by spaces. Every
    code must be one of the catalogue's; '' (no scope) covers every 品目."""
    if len(raw) > SCOPE_MAX:
        raise InvalidInput(f"品目范围不能超过 {SCOPE_MAX} 个字符", code="budget_scope_invalid", field="scope")
    codes: list[str] = []
    bad: list[str] = []
    for part in _SEPARATORS.split(raw.strip().upper()):
        if not part:
            continue
        if not _CODE.fullmatch(part) or not name_of(part):
            bad.append(part)
        elif part not in codes:
            codes.append(part)
    if bad:
        raise InvalidInput(
            f"品目范围中的 {'、'.join(bad[:5])} 不是《政府采购品目分类目录》中的品目编码，如 A02010000（信息化设备）",
            code="budget_scope_invalid",
            field="scope",
        )
    return " ".join(codes)


def codes_of(scope: str) -> tuple[str, ...]:
    return tuple(scope.split())


def covers(scope: str, category_code: str) -> bool:
    codes = codes_of(scope)
    return not codes or any(category_code.startswith(prefix_of(c)) for c in codes)


def describe(scope: str) -> str:
    """The scope as people read it: "A02010000 信息化设备、A02020000 办公设备", or "不限品目"."""
    codes = codes_of(scope)
    return "、".join(f"{c} {name_of(c)}" for c in codes) if codes else "不限品目"


def short(scope: str) -> str:
    """The scope in a few words, for a select option: "限 信息化设备、办公设备", or "不限品目"."""
    codes = codes_of(scope)
    return "限 " + "、".join(name_of(c) for c in codes) if codes else "不限品目"


def check(project_code: str, project_name: str, scope: str, category_codes: Iterable[str]) -> None:
    """Refuse (422 budget_scope_mismatch) what the line's scope does not cover, naming the scope."""
    outside = [c for c in dict.fromkeys(category_codes) if not covers(scope, c)]
    if outside:
        shown = "、".join(f"{c}（{name_of(c) or '未知品目'}）" for c in outside[:3])
        raise RuleViolation(
            f"预算指标「{project_code} {project_name}」只能用于品目 {describe(scope)}；"
            f"本单的 {shown} 不在其范围内，请选择相应的预算指标",
            code="budget_scope_mismatch",
        )
