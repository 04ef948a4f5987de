"""The one money type: Decimal CNY at 分 precision. Never floats."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
_PLAIN_AMOUNT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
_PLAIN_QUANTITY = re.compile(r"[0-9]{1,16}(\.[0-9]{1,3})?")
MAX_AMOUNT = Decimal(10) ** 13  # 10 trillion yuan: far above any purchase, well inside BIGINT 分


class MoneyError(ValueError):
    pass


def _plain(value: Decimal | str | int, form: re.Pattern[str], what: str, whats: str) -> Decimal:
    """`value` as a Decimal if it is written in `form`: only plain decimals, no exponents ("1e9"),
    signs, separators or spaces inside; floats are refused (`what`, `whats`: the refusal's words)."""
    if isinstance(value, float):
        raise MoneyError(f"float {whats} are refused")
    if not form.fullmatch(str(value).strip()):
        raise MoneyError(f"not a plain {what}: {value!r}")
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a plain {what}: {value!r}") from exc


def money(value: Decimal | str | int) -> Decimal:
    """Parse an amount; refuses floats, NaN, infinities and more than two decimals."""
    d = _plain(value, _PLAIN_AMOUNT, "amount", "amounts")
    if not d.is_finite() or abs(d) >= MAX_AMOUNT:
        raise MoneyError(f"not an amount: {value!r}")
    if d != d.quantize(CENT):
        raise MoneyError(f"more than two decimals: {value!r}")
    return d.quantize(CENT)


def typed_negative(raw: str) -> bool:
    """An amount typed with a minus sign (refused by `money`): told "must be more than 0", not "not
    an amount"."""
    text = raw.strip()
    return text.startswith("-") and _PLAIN_AMOUNT.fullmatch(text[1:].strip()) is not None


def round_money(d: Decimal) -> Decimal:
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(d: Decimal) -> int:
    return int((Decimal(d) * 100).to_integral_exact(rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def money_str(d: Decimal) -> str:
    """The wire form: plain decimal string with two decimals, e.g. '4599.00'."""
    return f"{Decimal(d).quantize(CENT):f}"


def quantity(value: Decimal | str | int) -> Decimal:
    d = _plain(value, _PLAIN_QUANTITY, "quantity", "quantities")
    if not d.is_finite() or d <= 0 or d >= MAX_AMOUNT or d != d.quantize(Decimal("0.001")):
        raise MoneyError(f"not a quantity: {value!r}")
    return normalize_quantity(d)


def whole_quantity(value: Decimal | str | int) -> Decimal:
    """Goods are sold in whole units (台, 把, 箱…): 1, 2, 3…"""
    d = quantity(value)
    if d != d.to_integral_value():
        raise MoneyError(f"not a whole quantity: {value!r}")
    return d


def normalize_quantity(d: Decimal) -> Decimal:
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def quantity_str(d: Decimal) -> str:
    return f"{normalize_quantity(d):f}"


def yuan_display(d: Decimal | str) -> str:
    """For pages: ¥12,345.60 (a Decimal, or a decimal string as the API shapes carry them)."""
    return f"¥{Decimal(d).quantize(CENT):,.2f}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ["", "拾", "佰", "仟"]
_BIG_UNITS = ["", "万", "亿", "万亿"]


def yuan_uppercase(d: Decimal) -> str:
    """The amount in Chinese financial capitals, as contracts write it: 9800.50 → 玖仟捌佰元伍角整."""
    cents = to_cents(d)
    if cents < 0:
        return "负" + yuan_uppercase(-d)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out = ""
    if yuan:
        groups = []
        while yuan:
            groups.append(yuan % 10000)
            yuan //= 10000
        pending_zero = False
        for i in range(len(groups) - 1, -1, -1):
            g = groups[i]
            if g == 0:
                pending_zero = bool(out)
                continue
            if out and (pending_zero or g < 1000):
                out += "零"
            pending_zero = False
            text, zero = "", False
            for pos in range(3, -1, -1):
                digit = g // 10**pos % 10
                if digit == 0:
                    zero = bool(text)
                    continue
                if zero:
                    text += "零"
                    zero = False
                text += _DIGITS[digit] + _SMALL_UNITS[pos]
            out += text + _BIG_UNITS[i]
        out += "元"
    if jiao == 0 and fen == 0:
        return (out or "零元") + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif out:
        out += "零"
    if fen:
        out += _DIGITS[fen] + "分"
    else:
        out += "整"
    return out
