"""统一社会信用代码 (GB 32100-2015): 18 characters, the last one a check character."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, ...


def check_char(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem_with(code: str) -> str | None:
    """None if the code is valid, else the reason in Chinese."""
    if len(code) != 18:
        return "统一社会信用代码应为18位"
    bad = [c for c in code if c not in ALPHABET]
    if bad:
        return f"统一社会信用代码含有非法字符：{''.join(sorted(set(bad)))}"
    if not code[2:8].isdigit():
        return "统一社会信用代码第3至8位应为行政区划码"
    if check_char(code[:17]) != code[17]:
        return "统一社会信用代码校验位错误"
    return None


def is_valid(code: str) -> bool:
    return problem_with(code) is None


def make(registrar: str, org_type: str, region: str, org_code8: str) -> str:
    """Build a valid code from its parts (used for demo data and tests)."""
    body = f"{registrar}{org_type}{region}{org_code8}"
    # The 9-character organization code carries its own GB 11714 check digit.
    oc_weights = [3, 7, 9, 10, 5, 8, 4, 2]
    oc_alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    s = sum(oc_alphabet.index(c) * w for c, w in zip(org_code8, oc_weights, strict=True))
    c9 = 11 - s % 11
    oc_check = "0" if c9 == 11 else ("X" if c9 == 10 else str(c9))
    body = f"{registrar}{org_type}{region}{org_code8}{oc_check}"
    return body + check_char(body)


# What the first two characters (登记管理部门码, 机构类别码; GB 32100-2015) must be for each kind of
# organization the mall registers: (allowed, what to say otherwise). Suppliers may be anything
# that can sign a contract (an enterprise, a public institution, a sole proprietor…).
KIND_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "budget_unit": (
        ("1", "2", "3", "4", "5", "6", "7", "8", "A", "Y"),
        "预算单位（国家机关、事业单位、团体组织）的统一社会信用代码不能以 9 开头"
        "（9 为市场监管部门登记的企业、个体工商户或农民专业合作社），也不能以 N 开头",
    ),
    "center": (("11", "12"), "集中采购机构为机关或事业单位，统一社会信用代码以 11 或 12 开头"),
    "regulator": (("11",), "财政监管部门为国家机关，统一社会信用代码以 11 开头"),
}


def kind_problem(kind: str, code: str) -> str | None:
    """Why a valid code cannot belong to an organization of `kind` (None when it can)."""
    rule = KIND_RULES.get(kind)
    if rule is None or code.startswith(rule[0]):
        return None
    return rule[1]
