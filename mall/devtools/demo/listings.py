"""The demo's listings: a few hundred office goods offered by the demo suppliers, most approved by
the center, some left in its review queue."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from catalog import service as catalog_service
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.money import round_money
from mall.core.settings import Settings

# (category code, item noun, unit, [(brand, [model stems]), ...], base price range)
PRODUCTS = [
    (
        "A02010105",
        "台式计算机",
        "台",
        [
            ("联想", ["启天M437", "启天M455", "扬天M4000q", "开天M740J"]),
            ("惠普", ["ProDesk 400 G9", "EliteDesk 800 G9", "战99 G4"]),
            ("戴尔", ["OptiPlex 7010", "成就3710", "OptiPlex 5000"]),
            ("华为", ["擎云B730E", "擎云W585x"]),
            ("清华同方", ["超越E500", "超翔TL630"]),
            ("长城", ["世恒TD120A2", "UF712"]),
        ],
        (3800, 8900),
    ),
    (
        "A02010108",
        "便携式计算机",
        "台",
        [
            ("联想", ["ThinkPad E14", "ThinkPad T14", "昭阳K4e"]),
            ("华为", ["MateBook D14", "MateBook 14"]),
            ("惠普", ["战66 六代", "EliteBook 640"]),
            ("戴尔", ["Latitude 5440", "Vostro 3430"]),
        ],
        (4200, 11800),
    ),
    (
        "A02010104",
        "服务器",
        "台",
        [
            ("华为", ["FusionServer 2288H V6", "FusionServer 1288H V6"]),
            ("浪潮", ["NF5280M6", "NF5270M6"]),
            ("新华三", ["UniServer R4900 G5"]),
            ("联想", ["ThinkSystem SR658"]),
        ],
        (28000, 86000),
    ),
    (
        "A02021003",
        "A4黑白激光打印机",
        "台",
        [
            ("惠普", ["LaserJet Pro 4004dn", "LaserJet M208dw"]),
            ("兄弟", ["HL-2595DW", "HL-L5100DN"]),
            ("联想", ["LJ2405D", "GM337DN"]),
            ("奔图", ["P3305DN", "BP5100DN"]),
        ],
        (990, 3200),
    ),
    (
        "A02021004",
        "A4彩色激光打印机",
        "台",
        [
            ("惠普", ["Color LaserJet Pro 4203dn"]),
            ("佳能", ["LBP664Cx", "LBP623Cdw"]),
            ("奔图", ["CP2500DN"]),
        ],
        (2300, 5800),
    ),
    (
        "A02020400",
        "多功能一体机",
        "台",
        [
            ("惠普", ["LaserJet MFP M437nda", "M233sdw"]),
            ("佳能", ["iR 2425", "MF643Cdw"]),
            ("兄弟", ["MFC-L2750DW"]),
            ("理光", ["M 2701"]),
        ],
        (1800, 12800),
    ),
    (
        "A02020100",
        "复印机",
        "台",
        [
            ("理光", ["IM 2702", "IM C3000"]),
            ("柯尼卡美能达", ["bizhub 367", "bizhub C300i"]),
            ("夏普", ["BP-M2522R"]),
            ("京瓷", ["TASKalfa 2321"]),
        ],
        (9800, 32000),
    ),
    (
        "A02020200",
        "投影仪",
        "台",
        [("爱普生", ["CB-X49", "CB-FH52", "CB-L510U"]), ("明基", ["E540", "MX560"]), ("索尼", ["VPL-EX435"])],
        (2900, 16800),
    ),
    (
        "A02021104",
        "液晶显示器",
        "台",
        [
            ("戴尔", ["P2422H", "U2723QE"]),
            ("飞利浦", ["242E2F", "275B1"]),
            ("AOC", ["24B2XH", "Q27P2C"]),
            ("联想", ["ThinkVision T24i-30"]),
        ],
        (699, 3600),
    ),
    ("A02021301", "碎纸机", "台", [("得力", ["9953", "14401"]), ("科密", ["C-838", "V9"])], (380, 1980)),
    (
        "A02061804",
        "空调机",
        "台",
        [
            ("格力", ["KFR-35GW 云佳", "KFR-72LW 悦雅"]),
            ("美的", ["KFR-35GW/N8XHA1", "KFR-72LW 锐静"]),
            ("海尔", ["KFR-35GW/B1KBB81U1", "KFR-72LW/81@U1"]),
        ],
        (2600, 9800),
    ),
    (
        "A05010201",
        "办公桌",
        "张",
        [
            ("天成", ["TC-BZ1400", "TC-BZ1600", "TC-BZ1800"]),
            ("震旦", ["AD-1406", "AD-1608"]),
            ("圣奥", ["SA-ZD1400"]),
        ],
        (680, 3600),
    ),
    (
        "A05010301",
        "办公椅",
        "把",
        [("天成", ["TC-YZ01 网布", "TC-YZ08 皮质"]), ("圣奥", ["SA-Y302"]), ("震旦", ["AD-C88"])],
        (260, 1680),
    ),
    (
        "A05010502",
        "文件柜",
        "组",
        [("天成", ["TC-WJ900 钢制", "TC-WJ1850 木质"]), ("震旦", ["AD-G4"])],
        (680, 2600),
    ),
    ("A05010504", "保密柜", "台", [("天成", ["TC-BM1000 电子密码"]), ("得力", ["33118"])], (1800, 4800)),
    (
        "A05040101",
        "A4复印纸",
        "箱",
        [("得力", ["70g 5包/箱", "80g 5包/箱"]), ("晨光", ["70g 8包/箱"]), ("亚太森博", ["百旺 70g 5包/箱"])],
        (120, 260),
    ),
]

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
