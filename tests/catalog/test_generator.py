"""The listing generator (mall/devtools/generator.py): deterministic, unique per supplier, real 2022 goods codes."""

from __future__ import annotations

import csv
import dataclasses
import random
import re
from collections import defaultdict
from decimal import Decimal
from functools import cache
from itertools import islice, pairwise
from pathlib import Path

import pytest

from mall.devtools.generator import MAX_ITEMS, GeneratedListing, category_codes, generate
from search_index.text import BRAND_ALIASES

TABLE = Path(__file__).resolve().parents[2] / "catalog" / "data" / "categories-2022.csv"
CJK = re.compile(r"[\u4e00-\u9fff]")

Item = tuple[int, GeneratedListing]


@cache
def catalogue() -> dict[str, dict[str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as fh:
        return {row["code"]: row for row in csv.DictReader(fh)}


@cache
def sample(n: int, seed: int = 1, suppliers: int = 4) -> tuple[Item, ...]:
    return tuple(generate(n, seed=seed, suppliers=suppliers))


def key(text: str) -> str:
    """The listing table's normalization of brand and model: no blanks, '-', '_' or '/', upper case."""
    return re.sub(r"[\s\-_/]+", "", text).upper()


# --- determinism ----------------------------------------------------------------------------------


def test_same_arguments_give_the_same_sequence() -> None:
    first = list(generate(3000, seed=7, suppliers=5))
    second = list(generate(3000, seed=7, suppliers=5))
    assert len(first) == 3000
    assert first == second


def test_other_seed_gives_another_sequence() -> None:
    a = list(generate(200, seed=1))
    b = list(generate(200, seed=2))
    assert a != b
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 10


def test_shorter_sequence_is_a_prefix_of_a_longer_one() -> None:
    full = sample(3000, seed=5)
    # Every cut in the first 80 items (several cut through a product offered by several suppliers),
    # and some further on.
    for k in [*range(81), 511, 1234, 2999, 3000]:
        assert list(generate(k, seed=5)) == list(full[:k]), k


def test_prefix_cuts_do_split_shared_products() -> None:
    """The prefix test above is meaningful: consecutive items of one shared product exist in its range."""
    full = sample(3000, seed=5)[:81]
    assert any(a[1].spec_model == b[1].spec_model and a[0] != b[0] for a, b in pairwise(full))


def test_global_random_module_is_neither_used_nor_consulted() -> None:
    state = random.getstate()
    try:
        random.seed(12345)
        expected = random.random()
        random.seed(12345)
        a = list(generate(500, seed=3))
        assert random.random() == expected  # the global stream was not advanced
        random.seed(999)
        assert list(generate(500, seed=3)) == a  # nor does its state matter
    finally:
        random.setstate(state)


def test_generation_is_lazy() -> None:
    first = list(islice(generate(MAX_ITEMS, seed=9), 25))
    assert first == list(generate(25, seed=9))


# --- uniqueness and sharing -------------------------------------------------------------------------


def test_supplier_brand_model_unique_after_normalization() -> None:
    items = sample(20_000)
    keys = {(s, key(listing.brand), key(listing.spec_model)) for s, listing in items}
    assert len(keys) == len(items) == 20_000


def test_unique_with_few_suppliers() -> None:
    for suppliers in (1, 2, 3):
        items = sample(5000, seed=11, suppliers=suppliers)
        assert {s for s, _ in items} == set(range(suppliers))
        keys = {(s, key(x.brand), key(x.spec_model)) for s, x in items}
        assert len(keys) == len(items)


def test_supplier_indexes_in_range() -> None:
    items = sample(5000, seed=4, suppliers=7)
    assert {s for s, _ in items} == set(range(7))


def test_same_model_offered_by_several_suppliers() -> None:
    suppliers_of: dict[tuple[str, str], set[int]] = defaultdict(set)
    prices_of: dict[tuple[str, str], set[Decimal]] = defaultdict(set)
    for s, x in sample(20_000):
        suppliers_of[key(x.brand), key(x.spec_model)].add(s)
        prices_of[key(x.brand), key(x.spec_model)].add(x.price)
    shared = [m for m, who in suppliers_of.items() if len(who) >= 2]
    assert len(shared) >= 0.15 * len(suppliers_of)
    assert len(shared) <= 0.5 * len(suppliers_of)
    assert max(len(who) for who in suppliers_of.values()) == 4
    # Offered at slightly different prices.
    assert sum(len(prices_of[m]) >= 2 for m in shared) >= 0.8 * len(shared)


def test_shared_model_keeps_brand_model_and_category() -> None:
    seen: dict[tuple[str, str], GeneratedListing] = {}
    for _, x in sample(20_000):
        first = seen.setdefault((x.brand, x.spec_model), x)
        assert (first.category_code, first.unit, first.reference_price) == (
            x.category_code,
            x.unit,
            x.reference_price,
        )


def test_no_sharing_with_one_supplier() -> None:
    items = sample(5000, seed=11, suppliers=1)
    assert len({(x.brand, x.spec_model) for _, x in items}) == len(items)


# --- categories ---------------------------------------------------------------------------------------


def test_every_category_code_is_a_2022_goods_code() -> None:
    table = catalogue()
    generated = {x.category_code for _, x in sample(20_000)}
    for code in generated | category_codes():
        assert code in table, code
        assert table[code]["type"] == "goods", code
        assert table[code]["version"] == "2022", code
        assert int(table[code]["level"]) >= 3, code


def test_at_least_15_product_families() -> None:
    prefixes = {x.category_code[:9] for _, x in sample(5000)}
    assert len(prefixes) >= 15


@pytest.mark.parametrize(
    ("code", "name_part"),
    [
        ("A02010105", "台式计算机"),
        ("A02010108", "便携式计算机"),
        ("A02010104", "服务器"),
        ("A02010109", "平板"),
        ("A02021003", "打印机"),
        ("A02020400", "一体机"),
        ("A02020100", "复印机"),
        ("A02020200", "投影仪"),
        ("A02021104", "显示器"),
        ("A02021118", "扫描仪"),
        ("A02061804", "空调"),
        ("A02091001", "电视"),
        ("A05010201", "办公桌"),
        ("A05010301", "办公椅"),
        ("A05010502", "文件柜"),
        ("A05040101", "复印纸"),
        ("A05040201", "硒鼓"),
        ("A02010201", "路由器"),
        ("A02010202", "交换机"),
        ("A02021301", "碎纸机"),
        ("A02020501", "相机"),
        ("A02061504", "不间断电源"),
    ],
)
def test_family_has_its_code_and_a_matching_title(code: str, name_part: str) -> None:
    titles = [x.name for _, x in sample(20_000) if x.category_code == code]
    assert titles, code
    assert all(name_part in t for t in titles), code


# --- prices, stock, text --------------------------------------------------------------------------


def test_prices_two_places_within_bounds_and_below_reference() -> None:
    for _, x in sample(20_000):
        assert isinstance(x.price, Decimal)
        assert isinstance(x.reference_price, Decimal)
        assert x.price.as_tuple().exponent == -2, x.price
        assert x.reference_price.as_tuple().exponent == -2, x.reference_price
        assert Decimal(0) < x.price <= x.reference_price < Decimal(1_000_000)
        assert x.price >= x.reference_price * Decimal("0.92"), (x.price, x.reference_price)


def test_prices_are_not_all_at_reference() -> None:
    items = sample(20_000)
    below = sum(x.price < x.reference_price for _, x in items)
    assert below >= 0.8 * len(items)


@pytest.mark.parametrize(
    ("code", "unit", "low", "high"),
    [
        ("A02010105", "台", 3500, 9000),
        ("A02010104", "台", 15_000, 90_000),
        ("A02061804", "台", 2500, 8000),
        ("A05040101", "包", 20, 40),
        ("A02010108", "台", 4000, 12_000),
    ],
)
def test_reference_prices_realistic_per_family(code: str, unit: str, low: int, high: int) -> None:
    refs = [x.reference_price for _, x in sample(20_000) if x.category_code == code and x.unit == unit]
    assert len(refs) >= 20
    assert all(Decimal(low) <= r <= Decimal(high) for r in refs), (min(refs), max(refs))
    # Spread over the range, not one price.
    assert len(set(refs)) >= 10


def test_stock_range_with_some_out_of_stock() -> None:
    stocks = [x.stock for _, x in sample(20_000)]
    assert all(isinstance(s, int) and 0 <= s <= 500 for s in stocks)
    zero = stocks.count(0) / len(stocks)
    assert 0.02 <= zero <= 0.09
    assert max(stocks) > 400


def test_titles_and_descriptions_are_chinese() -> None:
    for _, x in sample(20_000):
        assert CJK.search(x.name), x.name
        assert CJK.search(x.description), x.description
        assert x.description.endswith("。")
        assert x.name.startswith(x.brand + " ")
        assert 2 <= len(x.name) <= 200
        assert 1 <= len(x.spec_model) <= 200
        assert x.unit in {"台", "件", "个", "套", "包", "箱", "张", "把", "组", "支"}
        assert x.reference_source


def test_titles_mix_in_latin_specs() -> None:
    names = [x.name for _, x in sample(5000)]
    assert sum(bool(re.search(r"[A-Za-z0-9]", n)) for n in names) >= 0.9 * len(names)
    joined = "\n".join(names)
    for fragment in ("i5-", "英寸", "匹", "A4", "页/分钟"):
        assert fragment in joined, fragment


def test_brands_with_search_aliases_all_appear() -> None:
    brands = {x.brand for _, x in sample(20_000)}
    assert set(BRAND_ALIASES) <= brands
    assert len(brands) >= 30


# --- the dataclass and arguments ---------------------------------------------------------------------


def test_items_are_ordinary_frozen_listings() -> None:
    _, x = sample(10)[0]
    assert isinstance(x, GeneratedListing)
    same = GeneratedListing(**dataclasses.asdict(x))
    assert same == x
    assert hash(same) == hash(x)
    assert repr(same) == repr(x)
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.price = Decimal("1.00")  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"n": 5, "suppliers": 0}, {"n": MAX_ITEMS + 1}])
def test_bad_arguments_refused_at_call(kwargs: dict[str, int]) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ValueError):
        generate(n, **kwargs)


def test_zero_items() -> None:
    assert list(generate(0)) == []
