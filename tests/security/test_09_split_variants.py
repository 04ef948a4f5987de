"""A supplier cannot take one purchase apart by spelling (point 9, continued): the brand and model of
the same goods typed with punctuation, look-alike letters of other scripts, the brand's other name in
brackets, or listed under another 品目, still count together against the 分散采购限额. The same
keys keep a supplier from listing one item twice.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from catalog.goods import brand_key, model_key
from tests.factories import World
from tests.security.test_09_split_limit import server, ten_of_each


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("NF5280M6", "NF5280.M6"),
        ("NF5280M6", "NF-5280 (M6)"),
        ("NF5280M6", "NF5280·M6"),
        ("NF5280M6", "ΝF5280Μ6"),  # Greek capital Nu and Mu
        ("TP-1000", "ТР-1000"),  # Cyrillic Te and Er
        ("NF5280M6", "nf5280m６"),
    ],
)
def test_model_spellings_of_one_model_share_a_key(a: str, b: str) -> None:
    assert model_key(a) == model_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("华为", "华为（HUAWEI）"),
        ("华为", "HUAWEI"),
        ("华为", "HUAWEI 华为"),
        ("华为", "【华为】"),
        ("联想", "Lenovo/联想"),
        ("浪潮", "浪潮(INSPUR)"),
        ("Dell", "DELL"),
        ("M&G", "晨光"),
    ],
)
def test_names_of_one_brand_share_a_key(a: str, b: str) -> None:
    assert brand_key(a) == brand_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("NF5280M6", "NF5466M6"), ("X1", "X11"), ("A4", "A3")],
)
def test_different_models_keep_different_keys(a: str, b: str) -> None:
    assert model_key(a) != model_key(b)


def test_different_brands_keep_different_keys() -> None:
    assert brand_key("华为") != brand_key("联想")
    assert brand_key("浪潮") != brand_key("曙光")


@pytest.mark.parametrize(
    ("brand", "model", "category"),
    [
        # Cyrillic Н and Greek Μ, a dot, and the brand's Latin name in brackets.
        ("浪潮（INSPUR）", "NF5280.Μ6", "A02010104"),
        # 其他计算机设备: the same server under another 品目
        ("浪潮", "NF5280M6", "A02010199"),
    ],
    ids=["look-alike-spelling", "another-category"],
)
async def test_the_same_server_spelled_or_filed_otherwise_does_not_split_a_purchase(
    client: Any, world: World, brand: str, model: str, category: str
) -> None:
    r = await ten_of_each(client, world, brand, model, category)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "purchase_above_threshold"


async def test_one_supplier_cannot_list_one_model_twice_by_spelling(client: Any, world: World) -> None:
    await server(world, "x", "supplier_x", "浪潮", "NF5280M6", "91093.07")
    r = await client.post(
        "/api/listings",
        json={
            "name": "浪潮服务器",
            "brand": "INSPUR 浪潮",
            "spec_model": "NF 5280-M6",
            "category_code": "A02010104",
            "unit": "台",
            "price": "91000.00",
            "reference_price": "91093.07",
            "stock": "5",
        },
        headers={**world.h("supplier_x"), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "duplicate_listing"
