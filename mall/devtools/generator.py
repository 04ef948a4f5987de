"""Realistic Chinese product listings for seeding and benchmarks, generated deterministically.

`generate(n, seed=..., suppliers=...)` lazily yields `(supplier_index, GeneratedListing)` pairs. The
output depends only on its arguments (one `random.Random(seed)` stream, consumed in order), so the
first k items of `generate(n)` are the items of `generate(k)`.

The sequence is a series of *products* (brand + model + configuration). About 30% of the products
are offered by 2–4 different suppliers (same brand and model, each supplier with its own discount,
stock and wording of the title), the rest by one. Every product's model ends with a five-character
code (`K7Q2X`) that is unique for the whole sequence, so (supplier, brand, model) stays unique even
after the listing table's normalization (spaces, `-`, `_`, `/` removed, upper-cased).

Every category code is a 2022 goods code from catalog/data/categories-2022.csv.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from math import prod

from mall.devtools.kinds import Kind, Option, load_kinds


@dataclass(frozen=True)
class GeneratedListing:
    name: str  # Chinese product title
    brand: str
    spec_model: str
    category_code: str  # 2022 品目 code, type goods
    unit: str
    price: Decimal  # two decimal places, 0–8% below reference_price
    reference_price: Decimal  # two decimal places
    reference_source: str
    stock: int  # 0..500
    description: str  # one Chinese sentence of specs


# The order of the kinds is part of the sequence: a new kind goes at the end of kinds.csv.
_KINDS: tuple[Kind, ...] = load_kinds()

_REFERENCE_SOURCES = (
    "京东自营 2026-11",
    "京东自营 2026-10",
    "天猫官方旗舰店 2026-11",
    "苏宁易购 2026-10",
    "厂商官网",
    "厂商官网 2026-11",
    "品牌授权店 2026-09",
)
# How a supplier dresses up its title; mostly plain.
_TITLE_EXTRAS = ("", "", "", "", "", " 含税含运费", " 原厂正品", " 全国联保", "（政府采购专供）")
_DRESSINGS = tuple((extra, source) for extra in _TITLE_EXTRAS for source in _REFERENCE_SOURCES)

_SHARED_SHARE = 0.30  # share of products offered by 2–4 suppliers
_ZERO_STOCK_SHARE = 0.05
_MAX_STOCK = 500
_MAX_DISCOUNT_PERCENT = 8
# A product's reference price: its kind's range, placed by series level and options, moved by one of
# these steps (in the same units as the tier: 0 = low end of the range, 1 = high end).
_PRICE_NOISE = (-0.06, -0.02, 0.02, 0.06)
_TAIL_STRIDE = 7919  # spreads a kind's closing clauses of the description over its product numbers

# The model code: one letter and four base-36 characters, a permutation of the product counter.
_CODE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CODE_PAIRS = tuple(a + b for a in "0123456789" + _CODE_LETTERS for b in "0123456789" + _CODE_LETTERS)
_CODE_SPACE = 26 * 36**4  # distinct codes
_CODE_MULTIPLIER = 27_644_437  # prime, coprime with _CODE_SPACE (= 2^9 · 3^8 · 13)

# A sequence has at most as many products as listings, and every product needs its own code.
MAX_ITEMS = _CODE_SPACE

# Cents 0..99 as Decimals; `fraction + yuan` keeps two decimal places.
_FRACTIONS = tuple(Decimal(c).scaleb(-2) for c in range(100))
_REFERENCE_DECIMALS: dict[int, Decimal] = {}  # reference prices in cents → Decimal (few distinct values)


def _round_reference(yuan: float, low: int, high: int) -> int:
    """A shop-like reference price in cents (4599.00, 389.00, 24.50), within [low, high] yuan."""
    if yuan >= 1000:
        whole = int(yuan) // 100 * 100 + 99
        if whole > high:
            whole -= 100
        return max(whole, low) * 100
    if yuan >= 100:
        whole = int(yuan) // 10 * 10 + 9
        if whole > high:
            whole -= 10
        return max(whole, low) * 100
    return min(max(int(yuan * 10) * 10, low * 100), high * 100)


def _reference(yuan: float, low: int, high: int) -> tuple[int, Decimal]:
    cents = _round_reference(yuan, low, high)
    found = _REFERENCE_DECIMALS.get(cents)
    if found is None:
        found = _REFERENCE_DECIMALS[cents] = _FRACTIONS[cents % 100] + cents // 100
    return cents, found


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


# A product of a kind: brand, title, model template with its fragments filled in, description, reference
# prices (one per _PRICE_NOISE) in cents and as Decimal, category code, unit.
_Product = tuple[str, str, str, str, tuple[tuple[int, Decimal], ...], str, str]


class _KindTable:
    """The products of one kind, numbered 0..size-1 (series × one option per axis), each built on first use.

    The table holds at most `size` products whatever the length of the sequence."""

    __slots__ = ("axes", "factors", "kind", "lines", "products", "size")

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        # Per series: brand, start of the title, start of the description, model template, price level.
        self.lines = tuple(
            (
                brand,
                f"{brand} {series} {kind.noun} ",
                f"{brand}{series}{' ' if _latin(series[-1]) and _latin(kind.noun[0]) else ''}{kind.noun}，",
                template,
                level,
            )
            for brand, lines in kind.brands
            for series, template, level in lines
        )
        # Tiers scaled so that the best options of all axes sum to 1.
        total = sum(max(o[2] for o in axis) for axis in kind.axes) or 1.0
        self.axes = tuple(tuple((t, d, tier / total, f) for t, d, tier, f in axis) for axis in kind.axes)
        self.size = len(self.lines) * prod(len(axis) for axis in self.axes)
        # The price at tier t is low · (high / low) ** t; a noise step multiplies it by (high / low) ** noise.
        self.factors = tuple((kind.high / kind.low) ** noise for noise in _PRICE_NOISE)
        self.products: dict[int, _Product] = {}

    def build(self, number: int) -> _Product:
        kind = self.kind
        rest = number
        chosen: list[Option] = []
        for axis in reversed(self.axes):
            rest, i = divmod(rest, len(axis))
            chosen.append(axis[i])
        chosen.reverse()
        brand, title, description, template, level = self.lines[rest]
        if "#" in template:
            template = template.replace("#", "".join([o[3] for o in chosen]))
        title += kind.sep.join([o[0] for o in chosen if o[0]])
        tail = kind.tails[number * _TAIL_STRIDE % len(kind.tails)]
        description += f"{'，'.join([o[1] for o in chosen])}，{tail}。"
        low, high = kind.low, kind.high
        base = low * (high / low) ** (0.35 * level + 0.65 * sum([o[2] for o in chosen]))
        references = tuple([_reference(min(max(base * f, low), high), low, high) for f in self.factors])
        product = (brand, title, template, description, references, kind.code, kind.unit)
        self.products[number] = product
        return product


_TABLES = tuple(_KindTable(k) for k in _KINDS)
_CUMULATIVE_WEIGHTS = tuple(accumulate(k.weight for k in _KINDS))


def category_codes() -> frozenset[str]:
    """Every category code the generator can produce."""
    return frozenset(k.code for k in _KINDS)


def generate(n: int, *, seed: int = 1, suppliers: int = 4) -> Iterator[tuple[int, GeneratedListing]]:
    """Yield n listings as (supplier_index in range(suppliers), listing). Deterministic for (n, seed, suppliers):
    the first k items of generate(n) equal generate(k) for k <= n. Lazy: constant memory whatever n (at most
    MAX_ITEMS), well over 100,000 items/s."""
    if n < 0:
        raise ValueError("n must not be negative")
    if n > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} listings per sequence")
    if suppliers < 1:
        raise ValueError("suppliers must be at least 1")
    return _generate(n, seed, suppliers)


def _generate(n: int, seed: int, suppliers: int) -> Iterator[tuple[int, GeneratedListing]]:
    # The hot loop. Everything about a product comes from its kind table's cache; one RNG stream, consumed
    # in order, so a shorter sequence is a prefix of a longer one.
    rng = random.Random(seed)
    rand = rng.random
    offset = rng.randrange(_CODE_SPACE)
    sizes = tuple(t.size for t in _TABLES)
    lookups = tuple(t.products.get for t in _TABLES)
    builders = tuple(t.build for t in _TABLES)
    weights = _CUMULATIVE_WEIGHTS
    weight_total = weights[-1]
    dressings = _DRESSINGS
    dressing_count = len(dressings)
    noise_count = len(_PRICE_NOISE)
    fractions = _FRACTIONS
    letters = _CODE_LETTERS
    pairs = _CODE_PAIRS
    space = _CODE_SPACE
    multiplier = _CODE_MULTIPLIER
    share = _SHARED_SHARE if suppliers > 1 else 0.0
    max_sharing = min(4, suppliers)
    zero_stock = _ZERO_STOCK_SHARE
    stock_scale = _MAX_STOCK / (1 - zero_stock) ** 2
    # The dataclass's generated __init__ (ten object.__setattr__ calls, as it is frozen) would be the
    # largest single cost per item; setting the instance dict in one step gives an equal object.
    new = object.__new__
    set_attribute = object.__setattr__
    cls = GeneratedListing

    produced = 0
    counter = 0
    while produced < n:
        k = bisect(weights, rand() * weight_total)
        number = int(rand() * sizes[k])
        product = lookups[k](number) or builders[k](number)
        brand, title, template, description, references, code, unit = product

        high, low = divmod((counter * multiplier + offset) % space, 1296)
        counter += 1
        letter, middle = divmod(high, 1296)
        spec_model = f"{template}-{letters[letter]}{pairs[middle]}{pairs[low]}"
        reference, reference_price = references[int(rand() * noise_count)]
        max_discount = reference * _MAX_DISCOUNT_PERCENT // 100
        whole_yuan = reference >= 10000

        # Who offers it: usually one supplier, sometimes the same model from several.
        if rand() < share:
            count = min(2 + int(rand() * 3), max_sharing)
            offering = [int(rand() * suppliers)]
            while len(offering) < count:
                other = int(rand() * suppliers)
                if other not in offering:
                    offering.append(other)
            if produced + count > n:
                del offering[n - produced :]
        else:
            offering = [int(rand() * suppliers)]

        for supplier in offering:
            price = reference - int(max_discount * rand())
            if whole_yuan and supplier % 3:
                # Two suppliers in three price in whole yuan when the discount allows it.
                rounded = price - price % 100
                if reference - rounded <= max_discount:
                    price = rounded
            r = rand() - zero_stock
            stock = 1 + int(r * r * stock_scale) if r >= 0 else 0  # skewed to small stocks, at most 500
            extra, source = dressings[int(rand() * dressing_count)]
            item = new(cls)
            set_attribute(
                item,
                "__dict__",
                {
                    "name": title + extra,
                    "brand": brand,
                    "spec_model": spec_model,
                    "category_code": code,
                    "unit": unit,
                    "price": fractions[price % 100] + price // 100,
                    "reference_price": reference_price,
                    "reference_source": source,
                    "stock": stock,
                    "description": description,
                },
            )
            yield supplier, item
        produced += len(offering)
