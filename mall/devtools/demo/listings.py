"""The demo's listings: a few hundred office goods offered by the demo suppliers, most approved by
the center, some left in its review queue."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from catalog import service as catalog_service
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.money import round_money
from mall.core.settings import Settings
from mall.devtools.kinds import rows

HERE = Path(__file__).parent
# (category code, item noun, unit, [(brand, [model stems]), ...], base price range)
Product = tuple[str, str, str, list[tuple[str, list[str]]], tuple[int, int]]


def load_products(folder: Path = HERE) -> list[Product]:
    """The demo's goods, from products.csv (one row a category code, with its noun, unit and base
    price range) and product_models.csv (the model stems of each brand, by category code), in order."""
    brands: dict[str, dict[str, list[str]]] = {}
    for r in rows(folder / "product_models.csv"):
        brands.setdefault(r["code"], {}).setdefault(r["brand"], []).append(r["model"])
    return [
        (r["code"], r["noun"], r["unit"], list(brands[r["code"]].items()), (int(r["low"]), int(r["high"])))
        for r in rows(folder / "products.csv")
    ]


PRODUCTS = load_products()

VARIANTS = {
    "台式计算机": [
        "i5-13500/16G/512G SSD/23.8英寸",
        "i7-13700/16G/1T SSD/27英寸",
        "i3-13100/8G/512G SSD/21.5英寸",
        "兆芯KX-6640MA/8G/512G/国产操作系统",
    ],
    "便携式计算机": ["i5-1335U/16G/512G/14英寸", "i7-1355U/16G/1T/14英寸", "R5-7530U/16G/512G/14英寸"],
    "服务器": ["2×银牌4310/64G/2×960G SSD/2U", "2×金牌5318Y/128G/4×1.92T SSD/2U"],
}

SUPPLIER_FOR = {
    "A0201": ["郑州联创科技有限公司", "河南中原数码商贸有限公司", "河南华信办公设备有限公司"],
    "A0202": ["河南华信办公设备有限公司", "河南中原数码商贸有限公司", "郑州联创科技有限公司"],
    "A0206": ["河南中原数码商贸有限公司", "河南华信办公设备有限公司"],
    "A0501": ["洛阳天成家具制造有限公司", "河南华信办公设备有限公司"],
    "A0504": ["河南华信办公设备有限公司", "河南中原数码商贸有限公司"],
}


async def make_listings(
    db: Database, settings: Settings, rng: random.Random, principals: dict[str, Principal]
) -> list[uuid.UUID]:
    by_org = {p.org_name: p for p in principals.values() if p.role == "supplier"}
    center = principals["center1"]
    ids: list[uuid.UUID] = []
    pending: list[uuid.UUID] = []
    made = 0
    for code, noun, unit, brands, (lo, hi) in PRODUCTS:
        suppliers = SUPPLIER_FOR[code[:5]]
        for brand, models in brands:
            for model in models:
                variants = VARIANTS.get(noun, [""])
                for variant in variants:
                    # one market price per model; each supplier declares it within a few percent
                    market = Decimal(rng.randrange(lo, hi)) + Decimal(rng.choice(["0", "0.00", "0.90"]))
                    if "i7" in variant or "金牌" in variant or "1T" in variant:
                        market = round_money(market * Decimal("1.35"))
                    for supplier_name in rng.sample(
                        suppliers, k=min(len(suppliers), rng.choice([1, 2, 2, 3]))
                    ):
                        reference = round_money(
                            market * Decimal(rng.choice(["0.98", "1.00", "1.00", "1.02"]))
                        )
                        price = round_money(
                            reference * Decimal(rng.choice(["0.92", "0.95", "0.97", "0.99", "1.00", "1.03"]))
                        )
                        spec = f"{model} {variant}".strip()
                        draft = catalog_service.ListingDraft(
                            name=f"{brand} {noun} {model}"
                            + (f"（{variant.split('/')[0]}）" if variant else ""),
                            brand=brand,
                            spec_model=spec,
                            category_code=code,
                            unit=unit,
                            price=str(price),
                            reference_price=str(reference),
                            stock=str(rng.choice([20, 50, 100, 200, 500])),
                            reference_source=rng.choice(
                                ["品牌官网", "京东自营", "天猫官方旗舰店", "苏宁易购自营"]
                            ),
                            description=f"{brand}{noun}，型号 {spec}。原厂正品，含税含运费，三年上门保修。",
                        )
                        listing = await catalog_service.create_listing(
                            db, by_org[supplier_name], draft, margin=settings.price_margin
                        )
                        made += 1
                        if made % 12 == 0:  # left in the center's review queue
                            pending.append(listing.id)
                        else:
                            await catalog_service.review_listing(
                                db, center, listing.id, approve=True, reason="", margin=settings.price_margin
                            )
                            ids.append(listing.id)
                        clock.clock.freeze(clock.now() + timedelta(seconds=rng.randint(5, 90)))
    return ids
