"""Pure functions, no services: 统一社会信用代码, money and quantities, and the ledger's canonical JSON."""

from __future__ import annotations

import hashlib
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mall.core import credit_code
from mall.core.money import (
    MoneyError,
    from_cents,
    money,
    money_str,
    normalize_quantity,
    quantity,
    quantity_str,
    round_money,
    to_cents,
    yuan_display,
)
from mall.ledger import disclosure

D = Decimal
# The suite runs beside other work on shared machines: slow generation is not a failure.
RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large]
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# ---------------------------------------------------------------- 统一社会信用代码 (GB 32100-2015)

REAL_CODES = [
    "91440300708461136T",
    "91110108551385082Q",
    "9144030071526726XG",
    "914403001922038216",
    "91330100716105852F",
]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_are_valid(code: str) -> None:
    assert credit_code.is_valid(code)
    assert credit_code.problem_with(code) is None
    assert credit_code.check_char(code[:17]) == code[17]


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_other_check_character_is_refused(code: str) -> None:
    for c in ALPHABET:
        if c == code[17]:
            continue
        wrong = code[:17] + c
        assert not credit_code.is_valid(wrong)
        assert credit_code.problem_with(wrong) == "统一社会信用代码校验位错误"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "9144030070846113",
        "91440300708461136",
        "91440300708461136TT",
        "91440300708461136T ",
        " 91440300708461136T",
    ],
)
def test_wrong_length_is_refused(code: str) -> None:
    assert not credit_code.is_valid(code)
    assert credit_code.problem_with(code) == "统一社会信用代码应为18位"


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_letters_outside_the_alphabet_are_refused(letter: str) -> None:
    code = "91440300708461136T"
    for pos in (0, 1, 9, 16, 17):
        bad = code[:pos] + letter + code[pos + 1 :]
        problem = credit_code.problem_with(bad)
        assert problem is not None and "非法字符" in problem and letter in problem
    assert letter not in credit_code.ALPHABET


@pytest.mark.parametrize(
    "bad", ["91440300708461136t", "9144030070846113-T", "9144030070846113 T", "9144030070846113６T"]
)
def test_other_illegal_characters_are_refused(bad: str) -> None:
    assert not credit_code.is_valid(bad)


def test_the_region_part_must_be_digits() -> None:
    body = "91A40300708461136"  # a legal character, but positions 3-8 are an administrative region code
    code = body + credit_code.check_char(body)
    assert credit_code.problem_with(code) == "统一社会信用代码第3至8位应为行政区划码"


def test_weights_are_powers_of_three_mod_31() -> None:
    assert credit_code.WEIGHTS[:6] == [1, 3, 9, 27, 19, 26]
    assert len(credit_code.ALPHABET) == 31 and set(credit_code.ALPHABET).isdisjoint("IOSVZ")


def test_make_rebuilds_real_codes_from_their_parts() -> None:
    for code in REAL_CODES:
        assert credit_code.make(code[0], code[1], code[2:8], code[8:16]) == code


ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@settings(deadline=None, suppress_health_check=RELAXED)
@given(
    registrar=st.sampled_from("123456789ANY"),
    org_type=st.sampled_from("123459"),
    region=st.from_regex(r"\A[1-6][0-9]{5}\Z"),
    org8=st.text(alphabet=ORG_CHARS, min_size=8, max_size=8),
    data=st.data(),
)
def test_make_round_trips_and_any_single_change_is_caught(
    registrar: str, org_type: str, region: str, org8: str, data: st.DataObject
) -> None:
    code = credit_code.make(registrar, org_type, region, org8)
    assert len(code) == 18 and code.startswith(f"{registrar}{org_type}{region}{org8}")
    assert credit_code.is_valid(code), code
    # Parts taken back out of the code rebuild it exactly.
    assert credit_code.make(code[0], code[1], code[2:8], code[8:16]) == code
    # The check character catches every single-character substitution (31 is prime).
    pos = data.draw(st.integers(0, 17))
    c = data.draw(st.sampled_from([x for x in ALPHABET if x != code[pos]]))
    assert not credit_code.is_valid(code[:pos] + c + code[pos + 1 :])


# ---------------------------------------------------------------- money


@pytest.mark.parametrize("bad", [1.5, 0.1, float("nan"), float("inf")])
def test_money_refuses_floats(bad: float) -> None:
    with pytest.raises(MoneyError):
        money(bad)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        quantity(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        "NaN",
        "nan",
        "sNaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "",
        " ",
        "abc",
        "1,000.00",
        "¥100",
        "1.005",
        "0.001",
        "12.345",
        "1.2.3",
        "--1",
        "1e9",
        "1E+1",
        "-5.00",
        "+5",
        "1 000",
    ],
)
def test_money_refuses_non_amounts_and_three_decimals(bad: str) -> None:
    with pytest.raises(MoneyError):
        money(bad)


@pytest.mark.parametrize("bad", ["1e30", "99999999999999999999999999999", "-1e40"])
def test_money_refuses_huge_amounts_with_money_error(bad: str) -> None:
    for parse in (money, quantity):
        try:
            parse(bad)
        except MoneyError:
            continue
        except Exception as exc:
            raise AssertionError(f"{parse.__name__}({bad!r}) raised {type(exc).__name__}") from exc
        raise AssertionError(f"{parse.__name__}({bad!r}) accepted")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.3", "12.30"),
        ("12.30", "12.30"),
        (" 8.10 ", "8.10"),
        ("0", "0.00"),
        ("4599", "4599.00"),
        (5, "5.00"),
        (D("7"), "7.00"),
        (D("0.01"), "0.01"),
        ("999999.99", "999999.99"),
    ],
)
def test_money_parses_to_two_decimals(raw: Any, expected: str) -> None:
    value = money(raw)
    assert isinstance(value, Decimal)
    assert str(value) == expected
    assert value.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (D("4599"), "4599.00"),
        (D("4599.5"), "4599.50"),
        (D("0"), "0.00"),
        (D("1E+3"), "1000.00"),
        (D("123456789012.34"), "123456789012.34"),
        (D("0.10"), "0.10"),
        (D("-3.5"), "-3.50"),
    ],
)
def test_money_str_is_a_plain_two_decimal_string(value: Decimal, wire: str) -> None:
    assert money_str(value) == wire


def test_rounding_is_half_up_to_the_cent() -> None:
    assert round_money(D("0.005")) == D("0.01")
    assert round_money(D("2.675")) == D("2.68")
    assert round_money(D("2.674999")) == D("2.67")
    assert round_money(D("-0.005")) == D("-0.01")
    assert round_money(D("4999.99") * D("0.97")) == D("4849.99")  # 4849.9903


def test_cents_conversions() -> None:
    assert to_cents(D("12.34")) == 1234
    assert to_cents(D("0.01")) == 1
    assert to_cents(D("1000000.00")) == 100_000_000
    assert from_cents(1234) == D("12.34") and str(from_cents(1234)) == "12.34"
    assert str(from_cents(0)) == "0.00"
    assert str(from_cents(-5)) == "-0.05"
    assert yuan_display(D("12345.6")) == "¥12,345.60"


@settings(deadline=None, suppress_health_check=RELAXED)
@given(st.decimals(min_value=D("-1000000000000"), max_value=D("1000000000000"), places=2))
def test_cents_round_trip(x: Decimal) -> None:
    assert from_cents(to_cents(x)) == x
    assert isinstance(to_cents(x), int)
    if x >= 0:  # amounts people type are plain and never negative
        assert money(money_str(x)) == x
    assert money_str(from_cents(to_cents(x))) == money_str(x)


@settings(deadline=None, suppress_health_check=RELAXED)
@given(st.integers(min_value=-(10**17), max_value=10**17))
def test_integer_cents_round_trip(n: int) -> None:
    assert to_cents(from_cents(n)) == n


# ---------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        ("1", "1"),
        ("2.0", "2"),
        ("2.500", "2.5"),
        ("0.001", "0.001"),
        ("10", "10"),
        ("100.00", "100"),
        (" 3 ", "3"),
        (7, "7"),
        (D("1.25"), "1.25"),
    ],
)
def test_quantity_normalizes(raw: Any, wire: str) -> None:
    q = quantity(raw)
    assert quantity_str(q) == wire
    assert quantity(quantity_str(q)) == q


@pytest.mark.parametrize(
    "bad", ["0", "0.000", "-1", "-0.5", "1.2345", "0.0001", "NaN", "Infinity", "", "abc", "1/2"]
)
def test_quantity_refusals(bad: str) -> None:
    with pytest.raises(MoneyError):
        quantity(bad)


def test_quantity_str_never_uses_exponents() -> None:
    assert quantity_str(D("1E+2")) == "100"
    assert quantity_str(D("1.500")) == "1.5"
    assert normalize_quantity(D("5.000")) == D("5")


@settings(deadline=None, suppress_health_check=RELAXED)
@given(st.decimals(min_value=D("0.001"), max_value=D("1000000"), places=3))
def test_quantity_round_trip(x: Decimal) -> None:
    q = quantity(str(x))
    assert q == x
    s = quantity_str(q)
    assert "E" not in s and "e" not in s
    assert quantity(s) == x and quantity_str(quantity(s)) == s


# ---------------------------------------------------------------- canonical JSON and the record hash


def independent_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reorder(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every object's keys in a different insertion order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: reorder(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value


json_scalars = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
records = st.dictionaries(st.text(max_size=10), json_values, min_size=1, max_size=8)


@settings(deadline=None, suppress_health_check=RELAXED)
@given(records, st.randoms(use_true_random=False))
def test_record_hash_ignores_key_order(record: dict[str, Any], rnd: random.Random) -> None:
    shuffled = reorder(record, rnd)
    assert shuffled == record
    assert disclosure.canonical(shuffled) == disclosure.canonical(record)
    assert disclosure.record_hash(shuffled) == disclosure.record_hash(record) == independent_hash(record)


@settings(deadline=None, suppress_health_check=RELAXED)
@given(records, st.text(max_size=64))
def test_record_hash_leaves_out_the_hash_key(record: dict[str, Any], stored: str) -> None:
    without = {k: v for k, v in record.items() if k != "hash"}
    assert disclosure.record_hash({**record, "hash": stored}) == disclosure.record_hash(without)


def test_canonical_form_by_example() -> None:
    record = {"b": "供应商", "a": [1, {"z": None, "y": True}], "hash": "ignored"}
    text = disclosure.canonical({k: v for k, v in record.items() if k != "hash"})
    assert text == '{"a":[1,{"y":true,"z":null}],"b":"供应商"}'  # sorted, no spaces, UTF-8 not escaped
    assert disclosure.record_hash(record) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert disclosure.record_hash(record) == (
        hashlib.sha256('{"a":[1,{"y":true,"z":null}],"b":"供应商"}'.encode()).hexdigest()
    )
    assert disclosure.GENESIS == "0" * 64


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("9800.00", "玖仟捌佰元整"),
        ("9800.50", "玖仟捌佰元伍角整"),
        ("1001.01", "壹仟零壹元零壹分"),
        ("100010.00", "壹拾万零壹拾元整"),
        ("20000000.00", "贰仟万元整"),
        ("123456789.12", "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分"),
        ("0.00", "零元整"),
    ],
)
def test_amounts_in_chinese_capitals(amount: str, words: str) -> None:
    from mall.core.money import yuan_uppercase

    assert yuan_uppercase(D(amount)) == words


def test_settings_that_cannot_work_are_refused_at_start() -> None:
    from mall.core.settings import SettingsError, load_settings

    for env, fragment in [
        ({"MALL_FILE_STORE": "s3"}, "MALL_S3_BUCKET"),
        ({"MALL_FILE_STORE": "ftp"}, "database or s3"),
        ({"MALL_TRUSTED_PROXIES": "10.0.0.0/33"}, "MALL_TRUSTED_PROXIES"),
        ({"MALL_RATE_LIMIT_EXEMPT": "loopback"}, "MALL_RATE_LIMIT_EXEMPT"),
    ]:
        with pytest.raises(SettingsError, match=fragment):
            load_settings(env)
    assert load_settings({"MALL_FILE_STORE": "s3", "MALL_S3_BUCKET": "mall"}).file_store == "s3"


@pytest.mark.slow
def test_the_cli_says_what_is_wrong_instead_of_a_traceback(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MALL_FILE_STORE": "s3", "MALL_DATA_DIR": str(tmp_path)}
    env.pop("MALL_S3_BUCKET", None)
    run = subprocess.run(
        [sys.executable, "-m", "mall.cli", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 2
    assert "MALL_S3_BUCKET" in run.stderr and "Traceback" not in run.stderr


def test_the_public_address_follows_the_served_one_unless_set() -> None:
    from mall.core.settings import load_settings

    assert load_settings({}).public_base_url == "http://127.0.0.1:8000"
    assert load_settings({"MALL_PORT": "8123"}).public_base_url == "http://127.0.0.1:8123"
    assert load_settings({"MALL_HOST": "0.0.0.0", "MALL_PORT": "80"}).public_base_url == "http://127.0.0.1:80"  # noqa: S104
    assert (
        load_settings({"MALL_HOST": "mall.example.gov.cn"}).public_base_url
        == "http://mall.example.gov.cn:8000"
    )
    assert load_settings({"MALL_HOST": "::"}).public_base_url == "http://[::1]:8000"
    assert load_settings({"MALL_HOST": "fd00::5"}).public_base_url == "http://[fd00::5]:8000"
    given = {"MALL_PUBLICATION_BASE_URL": "https://mall.example.gov.cn/", "MALL_PORT": "8123"}
    assert load_settings(given).public_base_url == "https://mall.example.gov.cn"


def test_region_codes_are_named_as_far_as_they_are_known() -> None:
    from mall.core.regions import region_name

    assert region_name("410000") == "河南省"
    assert region_name("410100") == "河南省郑州市"
    assert region_name("410105") == "河南省郑州市金水区"
    assert region_name("419001") == "河南省济源市"
    assert region_name("410199") == "河南省郑州市"  # a county not listed: as far as known
    assert region_name("110105") == "北京市"
    assert region_name("990000") == "" and region_name("41a100") == "" and region_name("") == ""
