"""What people may type, defined once: names, text, money, quantities and codes.

Each limit is a constant here. The API's Structs use the `Annotated` types (so OpenAPI documents
them and msgspec refuses a bad value before any handler runs); the services call `text()` with the
same constants, which is what page forms go through. Text is refused — never silently cut — when it
is too long or carries characters that have no business in a record:

- C0 control characters (NUL included: PostgreSQL cannot store it), DEL and C1 controls;
- bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make a name display
  as something else than it is;
- lone surrogates (they cannot be encoded as UTF-8);
- characters that show nothing yet make two strings differ (zero-width space and joiners, soft
  hyphen, word joiner, byte-order mark, Hangul fillers…): "NF5280M6" with a zero-width space inside
  would otherwise be another model to the duplicate and split rules, and another word to search.

Multi-line fields (descriptions, specifications, reasons, notes) also accept line feeds, carriage
returns (stored as line feeds) and tabs; single-line fields accept none of them.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from mall.core.errors import InvalidInput

# ------------------------------------------------------------------ limits (characters)

USERNAME_MAX = 64
PASSWORD_MAX = 128
NAME_MAX = 200  # organization, product, item and project names, titles
SHORT_MAX = 100  # brands, display names, payment references, token names
MODEL_MAX = 200  # 规格型号
UNIT_MAX = 20
ADDRESS_MAX = 300
PHONE_MAX = 40
URL_MAX = 500
REASON_MAX = 300  # reasons for refusals, rejections, cancellations, freezes
NOTE_MAX = 500  # order notes, evaluation comments
# An agreement order's note follows "框架协议 <18-character number>；" in the same 500 characters.
AGREEMENT_NOTE_MAX = NOTE_MAX - 24
SHIPPING_NOTE_MAX = 300  # a shipment's courier and tracking number
SPEC_MAX = 1000  # a requirement's specification
DESCRIPTION_MAX = 2000  # a listing's description
EXPLANATION_MAX = 2000  # a party's explanation of an oversight case
DECISION_NOTE_MAX = 1000  # the regulator's note on deciding a case
PARAMS_MAX = 4000  # a listing's 规格参数, one "name：value" per line
SEARCH_MAX = 100  # a search query
SOURCE_MAX = 300  # where a reference price comes from (a page, a quote)
PRICE_NOTE_MAX = 200  # a price change's note
CATEGORY_CODE_MAX = 16  # 2022版品目编码
CREDIT_CODE_LENGTH = 18  # 统一社会信用代码
REGION_CODE_LENGTH = 6  # 行政区划代码
BUDGET_SCOPE_MAX = 300  # a budget line's 品目 scope: about thirty codes
PROJECT_CODE_MAX = 40  # a budget line's project code
CHOICE_MAX = 20  # one of a fixed set of words (kind, decision, action, mode, format)
DATE_MAX = 10  # YYYY-MM-DD
BID_TEXT_MAX = 40  # a quote or bid as typed (kept as typed in the bid log)
RATE_MAX = 10  # a discount rate such as 0.9350
FILTER_MAX = 40  # one filter of an export
AMOUNT_MAX = 20  # "9999999999999.99"
QUANTITY_MAX = 20
TOTP_CODE_MAX = 10  # a second factor's code: six digits, perhaps with a space
IDEMPOTENCY_KEY_MIN, IDEMPOTENCY_KEY_MAX = 8, 100

# ------------------------------------------------------------------ characters

# Refused everywhere: C0 controls except TAB/LF/CR, DEL, C1 controls, bidi overrides and isolates,
# surrogates. Single-line fields refuse TAB, LF and CR as well. Written as regex escapes, not the
# characters themselves: the patterns go into the OpenAPI document, and JSON cannot carry a surrogate.
# Control characters (C0, DEL, C1), bidi controls, lone surrogates, and the characters that show
# nothing yet make two strings differ: soft hyphen, Arabic letter mark, Hangul fillers, Mongolian
# vowel separator, zero-width space/joiners and direction marks, line/paragraph separators, word
# joiner and invisible operators, byte-order mark, interlinear annotation marks.
_BAD_ANYWHERE = (
    r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
    r"\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\ud800-\udfff"
)
_BAD_SINGLE = _BAD_ANYWHERE + r"\t\n\r"
SINGLE_LINE_PATTERN = f"^[^{_BAD_SINGLE}]*$"
MULTI_LINE_PATTERN = f"^[^{_BAD_ANYWHERE}]*$"
_BAD_SINGLE_RE = re.compile(f"[{_BAD_SINGLE}]")
_BAD_MULTI_RE = re.compile(f"[{_BAD_ANYWHERE}]")

AMOUNT_PATTERN = r"^[0-9]{1,16}(\.[0-9]{1,2})?$"
OPTIONAL_AMOUNT_PATTERN = r"^([0-9]{1,16}(\.[0-9]{1,2})?)?$"
QUANTITY_PATTERN = r"^[0-9]{1,16}(\.[0-9]{1,3})?$"
CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
CATEGORY_CODE_PATTERN = r"^[A-Ca-c][0-9]{0,15}$"
OPTIONAL_CATEGORY_CODE_PATTERN = r"^([A-Ca-c][0-9]{0,15})?$"
REGION_CODE_PATTERN = r"^[0-9]{6}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{8,100}$"

# Patterns are anchored with ^ and $ (not \A and \Z): they go into the OpenAPI document, whose
# patterns are ECMA-262. msgspec applies them with re.search, where $ also matches before one final
# newline; the services strip text, so such a newline is never stored.

# Chinese messages for the patterns, used by the error handler to explain a msgspec refusal.
PATTERN_MESSAGES = {
    SINGLE_LINE_PATTERN: "含有不允许的字符（换行、控制字符、文字方向控制字符或不可见字符）",
    MULTI_LINE_PATTERN: "含有不允许的字符（控制字符、文字方向控制字符或不可见字符）",
    AMOUNT_PATTERN: "应为最多两位小数的金额，如 4599.00",
    QUANTITY_PATTERN: "应为数量，如 10",
    CREDIT_CODE_PATTERN: "应为18位统一社会信用代码",
    CATEGORY_CODE_PATTERN: "应为品目编码，如 A02010104",
    OPTIONAL_CATEGORY_CODE_PATTERN: "应为品目编码，如 A02010104",
    OPTIONAL_AMOUNT_PATTERN: "应为最多两位小数的金额，如 4599.00，或留空",
    REGION_CODE_PATTERN: "应为6位行政区划代码",
    IDEMPOTENCY_KEY_PATTERN: "应为8至100个可见ASCII字符",
}


def _single(max_length: int, min_length: int = 0, description: str = "") -> msgspec.Meta:
    return msgspec.Meta(
        min_length=min_length,
        max_length=max_length,
        pattern=SINGLE_LINE_PATTERN,
        description=f"{description}（单行，至多 {max_length} 个字符）" if description else None,
    )


def _multi(max_length: int, description: str = "") -> msgspec.Meta:
    return msgspec.Meta(
        max_length=max_length,
        pattern=MULTI_LINE_PATTERN,
        description=f"{description}（可多行，至多 {max_length} 个字符）" if description else None,
    )


def _formed(max_length: int, description: str, pattern: str | None = None, example: str = "") -> msgspec.Meta:
    """A value of a set form (an amount, a quantity, a code, a date) within `max_length` characters;
    with `pattern`, msgspec refuses any other form."""
    return msgspec.Meta(
        max_length=max_length,
        pattern=pattern,
        description=description,
        examples=[example] if example else None,
    )


# ------------------------------------------------------------------ types for Structs

Username = Annotated[str, _single(USERNAME_MAX, 1, "用户名")]
TotpCode = Annotated[str, _single(TOTP_CODE_MAX, 0, "动态口令（验证器显示的 6 位数字）")]
Password = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=PASSWORD_MAX,
        pattern=SINGLE_LINE_PATTERN,
        description=f"密码（单行，至多 {PASSWORD_MAX} 个字符）",
    ),
]
Name = Annotated[str, _single(NAME_MAX, 1, "名称")]
OptionalName = Annotated[str, _single(NAME_MAX, 0, "名称")]
ShortText = Annotated[str, _single(SHORT_MAX, 0, "短文本")]
RequiredShortText = Annotated[str, _single(SHORT_MAX, 1, "短文本")]
Model = Annotated[str, _single(MODEL_MAX, 0, "规格型号")]
Unit = Annotated[str, _single(UNIT_MAX, 1, "计量单位")]
Address = Annotated[str, _single(ADDRESS_MAX, 0, "地址")]
Phone = Annotated[str, _single(PHONE_MAX, 0, "电话")]
Url = Annotated[str, _single(URL_MAX, 0, "网址")]
Reason = Annotated[str, _multi(REASON_MAX, "原因")]
Note = Annotated[str, _multi(NOTE_MAX, "备注")]
AgreementNote = Annotated[str, _multi(AGREEMENT_NOTE_MAX, "备注")]
ShippingNote = Annotated[str, _single(SHIPPING_NOTE_MAX, 0, "发货说明（物流公司、运单号）")]
Spec = Annotated[str, _multi(SPEC_MAX, "技术规格")]
Description = Annotated[str, _multi(DESCRIPTION_MAX, "说明")]
Explanation = Annotated[str, _multi(EXPLANATION_MAX, "说明")]
DecisionNote = Annotated[str, _multi(DECISION_NOTE_MAX, "处理意见")]
Params = Annotated[str, _multi(PARAMS_MAX, "规格参数：每行“参数名：参数值”")]
SearchText = Annotated[str, _single(SEARCH_MAX, 0, "搜索词")]
ReferenceSource = Annotated[str, _single(SOURCE_MAX, 0, "参考价来源")]
PriceNote = Annotated[str, _single(PRICE_NOTE_MAX, 0, "调价说明")]
BidText = Annotated[
    str, _single(BID_TEXT_MAX, 0, "报价金额（元），按输入原样记入出价日志，格式由竞价规则检查")
]
Amount = Annotated[
    str, _formed(AMOUNT_MAX, "金额（元），最多两位小数的十进制字符串", AMOUNT_PATTERN, "4599.00")
]
OptionalAmount = Annotated[str, _formed(AMOUNT_MAX, "金额（元），可为空", OPTIONAL_AMOUNT_PATTERN, "4599.00")]
Quantity = Annotated[str, _formed(QUANTITY_MAX, "数量（十进制字符串）", QUANTITY_PATTERN, "1")]
CreditCode = Annotated[str, _formed(CREDIT_CODE_LENGTH, "18位统一社会信用代码", CREDIT_CODE_PATTERN)]
CategoryCode = Annotated[
    str, _formed(CATEGORY_CODE_MAX, "2022版品目编码", CATEGORY_CODE_PATTERN, "A02010104")
]
RegionCode = Annotated[str, _formed(REGION_CODE_LENGTH, "6位行政区划代码", REGION_CODE_PATTERN)]

# Fields whose malformed values the service refuses with a code of its own that the API has promised
# (listing_invalid, price_invalid, invalid_quantity, organization_invalid…): only their length is
# bounded here, so the API and the page forms answer a malformed value alike (docs/decisions.md).
AmountText = Annotated[str, _formed(AMOUNT_MAX, "金额（元），最多两位小数的十进制字符串", example="4599.00")]
QuantityText = Annotated[str, _formed(QUANTITY_MAX, "数量（十进制字符串）", example="1")]
CreditCodeText = Annotated[str, _formed(CREDIT_CODE_LENGTH, "18位统一社会信用代码")]
ListingCategoryCode = Annotated[
    str, _formed(CATEGORY_CODE_MAX, "2022版品目编码（货物类）", OPTIONAL_CATEGORY_CODE_PATTERN, "A02010105")
]
ProjectCode = Annotated[str, _formed(PROJECT_CODE_MAX, "项目编码：2至40位字母、数字或 - _ .")]
BudgetScope = Annotated[
    str,
    _single(
        BUDGET_SCOPE_MAX,
        0,
        "品目范围：2022版品目编码，以空格或逗号分隔，如 A02010000 A02020000；留空不限品目",
    ),
]
Choice = Annotated[str, _formed(CHOICE_MAX, "取值见说明")]

# Litestar's OpenAPI generator keeps the constraints of a plain or optional field, but drops those of
# a union with another type and of a map's values; msgspec enforces them all the same. These put the
# limits back into the document.


def _documented(**keywords: object) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"extra": keywords})


# A quantity the API also takes as a JSON integer.
QuantityOrInt = Annotated[QuantityText | int, _documented(maxLength=QUANTITY_MAX)]
AMOUNT_VALUES = _documented(
    additionalProperties={"type": "string", "maxLength": AMOUNT_MAX, "description": "金额（元）"}
)
FILTER_VALUES = _documented(additionalProperties={"type": "string", "maxLength": FILTER_MAX})
DateText = Annotated[str, _formed(DATE_MAX, "日期，YYYY-MM-DD", example="2026-12-31")]
Rate = Annotated[str, _formed(RATE_MAX, "折扣率：大于0且不超过1，最多四位小数", example="0.92")]


# ------------------------------------------------------------------ checks for services and forms


def bad_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character a field of this kind refuses, or None."""
    m = (_BAD_MULTI_RE if multiline else _BAD_SINGLE_RE).search(value)
    return m.group(0) if m else None


def text(
    value: str | None,
    label: str,
    max_length: int,
    *,
    min_length: int = 0,
    multiline: bool = False,
    field: str = "",
) -> str:
    """Check one text field as typed: trimmed, line ends normalized, refused (400 `text_invalid`,
    naming the field) when it carries a refused character or is longer than its limit."""
    raw = "" if value is None else str(value)
    if multiline:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = raw.strip()
    bad = bad_character(cleaned, multiline=multiline)
    if bad is not None:
        raise InvalidInput(
            f"{label}含有不允许的字符（U+{ord(bad):04X}）："
            + (
                "不能含控制字符、文字方向控制字符或不可见字符"
                if multiline
                else "不能含换行、控制字符、文字方向控制字符或不可见字符"
            ),
            code="text_invalid",
            field=field or label,
        )
    if len(cleaned) > max_length:
        raise InvalidInput(
            f"{label}不能超过 {max_length} 个字符（现为 {len(cleaned)} 个）",
            code="text_too_long",
            field=field or label,
            max_length=max_length,
        )
    if len(cleaned) < min_length:
        raise InvalidInput(
            f"请填写{label}" if min_length == 1 else f"{label}至少 {min_length} 个字符",
            code="text_required",
            field=field or label,
        )
    return cleaned


# ------------------------------------------------------------------ spreadsheets

# Full-width ＝＋－＠ as well: spreadsheet programs in Chinese take them for their ASCII forms.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def spreadsheet_safe(value: str) -> str:
    """A text cell a spreadsheet program would run as a formula (= + - @ in ASCII or full width, or a
    leading tab or CR that hides one) gets a leading apostrophe, so it is shown as text (OWASP: CSV injection)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


# An idempotency key as a page form sends it: only bounded here (as the API's header is); its form is
# checked by `mall.orders.idempotent`, which answers with the code the API promised.
IdempotencyKeyText = Annotated[str, _formed(200, "幂等键：8至100个可见ASCII字符", example="order-0001")]
# A 品目 code as typed into a page form: one line within the code's length; its shape and whether it
# is in the catalogue are the service's to check, with the rest of the form.
CategoryCodeText = Annotated[str, _single(CATEGORY_CODE_MAX, 0, "品目编码")]
# ------------------------------------------------------------------ bounds of numbers and lists

ORDER_ITEMS_MAX = 200  # goods in one checkout, lines whose prices one confirmation lowers
FISCAL_YEAR_MIN, FISCAL_YEAR_MAX = 2000, 2100
SCORE_MIN, SCORE_MAX = 1, 5  # an acceptance's evaluation of the supplier

FiscalYear = Annotated[
    int, msgspec.Meta(ge=FISCAL_YEAR_MIN, le=FISCAL_YEAR_MAX, description="预算年度", examples=[2026])
]
Score = Annotated[int, msgspec.Meta(ge=SCORE_MIN, le=SCORE_MAX, description="评价分数，1至5分")]
