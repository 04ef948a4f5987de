"""Demo data, made through the real code paths: organizations, budgets, listings and a history of deals.

Deterministic for a given seed. The clock is moved back in time while the history is made, so deal
dates and publication times spread over the past weeks as they would have happened.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import offers, publish
from catalog import agreement_setup as ag
from catalog import designated as dd
from catalog import service as catalog_service
from catalog.models import Listing
from mall import accounts, budgets, orders
from mall.core import auth, clock
from mall.core.auth import ROLE_LABELS, ROLE_OF_KIND, Principal
from mall.core.credit_code import make as make_credit_code
from mall.core.db import Database
from mall.core.errors import DomainError
from mall.core.models import AuditEntry, BudgetLine, Organization, OrgKind, User
from mall.core.money import round_money
from mall.core.settings import Settings
from mall.ledger import disclosure

# Published in the README and, on a database the demo was seeded into, on the login page.
DEMO_PASSWORD = "Sunshine-demo-2026"  # noqa: S105
DEMO_MARKER = "demo_seeded"  # the audit action the seed writes: this database holds the demo data


@dataclass(frozen=True)
class DemoOrg:
    kind: OrgKind
    name: str
    region: str
    address: str
    users: tuple[tuple[str, str], ...]  # (username, display name)


ORGS = [
    DemoOrg(
        OrgKind.BUDGET_UNIT,
        "郑州市第一中学",
        "410102",
        "河南省郑州市中原区建设西路 ",
        (("buyer1", "王老师"),),
    ),
    DemoOrg(
        OrgKind.BUDGET_UNIT,
        "河南省农业科学院",
        "410105",
        "河南省郑州市金水区花园路116号",
        (("buyer2", "李工"),),
    ),
    DemoOrg(
        OrgKind.BUDGET_UNIT,
        "开封市中心医院",
        "410205",
        "河南省开封市禹王台区河道街85号",
        (("buyer3", "赵主任"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "河南华信办公设备有限公司",
        "410105",
        "郑州市金水区经三路北段68号",
        (("supplier1", "刘经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "郑州联创科技有限公司",
        "410173",
        "郑州市高新区科学大道100号",
        (("supplier2", "陈经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "洛阳天成家具制造有限公司",
        "410311",
        "洛阳市洛龙区开元大道218号",
        (("supplier3", "孙经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "河南中原数码商贸有限公司",
        "410103",
        "郑州市二七区大学路40号",
        (("supplier4", "周经理"),),
    ),
    DemoOrg(
        OrgKind.CENTER,
        "河南省政府采购中心",
        "410105",
        "郑州市金水区纬二路12号",
        (("center1", "采购中心审核员"),),
    ),
    DemoOrg(
        OrgKind.REGULATOR,
        "河南省财政厅政府采购监督管理处",
        "410105",
        "郑州市金水区纬二路8号",
        (("regulator1", "监管员"),),
    ),
    DemoOrg(OrgKind.PLATFORM, "阳光卖场运营中心", "410105", "郑州市郑东新区", (("admin", "平台管理员"),)),
    DemoOrg(
        OrgKind.SUPPLIER,
        "河南裕华汽车销售服务有限公司",
        "410122",
        "郑州市管城回族区紫荆山南路199号",
        (("supplier5", "吴经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "郑州金水印务有限公司",
        "410105",
        "郑州市金水区丰产路21号",
        (("supplier6", "郑经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "郑州中州国际饭店有限公司",
        "410105",
        "郑州市金水区花园路115号",
        (("supplier7", "冯经理"),),
    ),
]

BUDGETS = {
    "郑州市第一中学": [
        ("JY-2026-001", "教学信息化设备购置", "600000"),
        ("JY-2026-002", "办公家具更新", "150000"),
        ("JY-2026-003", "日常办公用品", "40000"),
    ],
    "河南省农业科学院": [
        ("NK-2026-011", "科研办公设备购置", "800000"),
        ("NK-2026-012", "实验室家具", "300000"),
    ],
    "开封市中心医院": [
        ("YY-2026-021", "信息系统终端设备", "900000"),
        ("YY-2026-022", "行政办公用品", "80000"),
    ],
}

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


def _credit_code(rng: random.Random, kind: OrgKind, region: str) -> str:
    registrar, org_type = {
        "supplier": ("9", "1"),
        "budget_unit": ("1", "2"),
        "center": ("1", "1"),
        "regulator": ("1", "1"),
        "platform": ("9", "1"),
    }[kind.value]
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "".join(rng.choice(alphabet[:10] if i else "0123456789M") for i in range(8))
    return make_credit_code(registrar, org_type, region, body)


async def is_seeded(db: Database) -> bool:
    async with db.read() as s:
        return bool(await s.scalar(select(func.count()).select_from(Organization)))


async def demo_loaded(session: AsyncSession) -> bool:
    """Whether the demo data was seeded into this database (never the case in production)."""
    return (
        await session.scalar(select(AuditEntry.id).where(AuditEntry.action == DEMO_MARKER).limit(1))
    ) is not None


def demo_accounts() -> list[tuple[str, str, str]]:
    """(username, organization, role) of every demo account, for the login page."""
    return [
        (username, spec.name, ROLE_LABELS[ROLE_OF_KIND[spec.kind]])
        for spec in ORGS
        for username, _ in spec.users
    ]


async def seed_demo(
    db: Database, settings: Settings, *, seed: int = 2026, history: int = 24
) -> dict[str, int]:
    rng = random.Random(seed)
    now = clock.now()
    start = now - timedelta(days=75)
    clock.clock.freeze(start)
    try:
        principals = await _organizations(db, rng)
        await _budgets(db, principals)
        listings = await _listings(db, settings, rng, principals)
        made = await _history(db, settings, rng, principals, listings, history, start, now)
    finally:
        clock.clock.unfreeze()
    made["procedures"] = await _procedures(db, settings, principals)
    made |= await _agreements_and_services(db, settings, principals)
    async with db.write() as tx:
        tx.session.add(
            AuditEntry(at=clock.now(), action=DEMO_MARKER, detail=f"seed={seed} history={history}")
        )
    return {"organizations": len(ORGS), "listings": len(listings), **made}


async def _procedures(db: Database, settings: Settings, principals: dict[str, Principal]) -> int:
    """An open inquiry and a live auction to look at: buyer1 publishes, the suppliers quote and bid."""
    buyer = principals["buyer1"]
    assert buyer.org_id
    async with db.read() as s:
        line = (
            (
                await s.execute(
                    select(BudgetLine)
                    .where(BudgetLine.org_id == buyer.org_id)
                    .order_by(BudgetLine.project_code)
                )
            )
            .scalars()
            .first()
        )
    if line is None:
        return 0
    suppliers = [principals[f"supplier{i}"] for i in (1, 2, 4)]
    invited = [p.org_id for p in suppliers if p.org_id]
    now = clock.now()
    made = 0
    for kind, title, ceiling, days, item in (
        (
            "inquiry",
            "教学楼多媒体投影机采购",
            "48000.00",
            3,
            ("A02020200", "投影仪", "8", "台", "4000 流明，1080P，含吊装"),
        ),
        (
            "auction",
            "办公用台式计算机竞价采购",
            "96000.00",
            2,
            ("A02010105", "台式计算机", "20", "台", "i5/16G/512G SSD/23.8 英寸"),
        ),
    ):
        p = await publish.create(
            db,
            buyer,
            publish.ProcedureIn(
                kind=kind,
                title=title,
                budget_line_id=line.id,
                ceiling=ceiling,
                starts_at=now,
                ends_at=now + timedelta(days=days),
                items=[publish.ItemIn(*item)],
                decrement="200" if kind == "auction" else "0",
                invited=invited,
            ),
            open_tender_threshold=settings.open_tender_threshold,
            region_code=settings.region_code,
        )
        made += 1
        if kind == "inquiry":
            await offers.quote(db, suppliers[0], p.id, "45800.00")
        else:
            await offers.bid(db, suppliers[0], p.id, "93500.00")
            await offers.bid(db, suppliers[1], p.id, "92800.00")
    return made


async def _agreements_and_services(
    db: Database, settings: Settings, principals: dict[str, Principal]
) -> dict[str, int]:
    """A vehicles framework agreement in force, designated vehicle-repair and conference suppliers,
    and a printing company's application waiting for the center's review."""
    center = principals["center1"]
    today = clock.local_date(clock.now())
    a = await ag.create(
        db,
        settings,
        center,
        ag.AgreementDraft(
            f"{today.year}年度公务用车协议供货",
            "goods",
            "A02030000",
            today.replace(month=1, day=1).isoformat(),
            today.replace(month=12, day=31).isoformat(),
            "400000.00",
        ),
    )
    cars = {
        "supplier5": [
            ("轿车", "大众", "帕萨特 2024款 330TSI 精英版", "189900.00", "", ""),
            ("轿车", "丰田", "凯美瑞 2024款 2.0E 精英版", "", "179800.00", "0.95"),
            ("新能源轿车", "比亚迪", "汉 EV 2024款 荣耀版 506km", "169800.00", "", ""),
        ],
        "supplier2": [
            ("多用途乘用车", "别克", "GL8 陆上公务舱 2.0T", "", "239900.00", "0.93"),
        ],
    }
    async with db.read() as s:
        codes = {
            name: (await s.get(Organization, principals[name].org_id)).credit_code  # type: ignore[union-attr]
            for name in cars
        }
    for name, products in cars.items():
        await ag.add_supplier(db, center, a.id, codes[name])
        org_id = principals[name].org_id
        assert org_id
        for product, brand, model, price, list_price, rate in products:
            await ag.add_product(
                db,
                center,
                a.id,
                ag.ProductDraft(org_id, product, brand, model, "A02030500", "辆", price, list_price, rate),
            )
    await ag.activate(db, center, a.id)

    repair = principals["supplier5"]
    await dd.apply(
        db,
        settings,
        repair,
        "C23120301",
        "410100",
        [
            dd.PriceItemDraft("小保养", "次", "380.00", "更换机油、机滤，含工时"),
            dd.PriceItemDraft("大保养", "次", "980.00", "机油、三滤、火花塞，含工时"),
            dd.PriceItemDraft("维修工时", "小时", "120.00"),
            dd.PriceItemDraft("四轮定位", "次", "150.00"),
        ],
        "郑州市管城回族区紫荆山南路199号",
    )
    async with db.read() as s:
        [pending] = await dd.find(s, status=dd.DesignationStatus.APPLIED)
    await dd.review(db, center, pending.designation.id, True, "资质齐全，维修资质一类")
    async with db.read() as s:
        hotel_code = (await s.get(Organization, principals["supplier7"].org_id)).credit_code  # type: ignore[union-attr]
    await dd.designate(
        db,
        center,
        hotel_code,
        "C22010200",
        "410100",
        [
            dd.PriceItemDraft("中型会议室（半天）", "场", "1500.00", "50人以内，含音响投影"),
            dd.PriceItemDraft("会议茶歇", "人次", "35.00"),
            dd.PriceItemDraft("工作餐", "人次", "60.00"),
        ],
        "郑州市金水区花园路115号",
    )
    await dd.apply(
        db,
        settings,
        principals["supplier6"],
        "C23090100",
        "410100",
        [dd.PriceItemDraft("A4 黑白印刷", "页", "0.15"), dd.PriceItemDraft("彩色海报 A2", "张", "12.00")],
        "郑州市金水区丰产路21号",
    )
    return {"agreements": 1, "designations": 3}


async def _organizations(db: Database, rng: random.Random) -> dict[str, Principal]:
    """Registered the way the platform admin registers them (credit codes checked, passwords hashed)."""
    out: dict[str, Principal] = {}
    for spec in ORGS:
        if spec.kind == OrgKind.PLATFORM:
            # The operator itself is not a registrable party: it is set up directly, once.
            async with db.write() as tx:
                org = Organization(
                    id=uuid.uuid4(),
                    kind=spec.kind.value,
                    name=spec.name,
                    credit_code=_credit_code(rng, spec.kind, spec.region),
                    address=spec.address,
                    region_code=spec.region,
                    created_at=clock.now(),
                )
                tx.session.add(org)
                for username, display in spec.users:
                    auth.require_sound_password(DEMO_PASSWORD, username, published_ok=True)
                    user = User(
                        id=uuid.uuid4(),
                        org_id=org.id,
                        username=username,
                        display_name=display,
                        password_hash=auth.hash_password(DEMO_PASSWORD),
                        is_admin=True,
                        created_at=clock.now(),
                    )
                    user.org = org
                    tx.session.add(user)
                    out[username] = auth.principal_of(user)
            continue
        draft = accounts.OrgDraft(
            kind=spec.kind.value,
            name=spec.name,
            credit_code=_credit_code(rng, spec.kind, spec.region),
            region_code=spec.region,
            address=spec.address.strip(),
            contact_phone=f"0371-{rng.randint(60000000, 69999999)}",
        )
        org = await accounts.register_org(db, None, draft)
        for username, display in spec.users:
            user = await accounts.create_user(db, None, org.id, username, display, DEMO_PASSWORD)
            out[username] = auth.principal_of(user)
    return out


async def _budgets(db: Database, principals: dict[str, Principal]) -> None:
    year = clock.local_date(clock.now()).year
    async with db.write() as tx:
        for p in principals.values():
            for code, name, amount in BUDGETS.get(p.org_name, []):
                assert p.org_id
                tx.session.add(
                    BudgetLine(
                        org_id=p.org_id,
                        fiscal_year=year,
                        project_code=code,
                        project_name=name,
                        amount=Decimal(amount),
                        reserved=Decimal(0),
                        consumed=Decimal(0),
                        created_at=clock.now(),
                    )
                )


async def _listings(
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


async def _history(
    db: Database,
    settings: Settings,
    rng: random.Random,
    principals: dict[str, Principal],
    listing_ids: list[uuid.UUID],
    count: int,
    start: datetime,
    end: datetime,
) -> dict[str, int]:
    buyers = [p for p in principals.values() if p.role == "buyer"]
    suppliers = {p.org_id: p for p in principals.values() if p.role == "supplier"}
    regulator = principals["regulator1"]
    made = {"orders": 0, "published": 0}
    t = clock.now()
    latest = end - timedelta(minutes=5)

    def advance(delta: timedelta) -> None:
        clock.clock.freeze(min(clock.now() + delta, latest))

    step = timedelta(hours=(70 * 24) / max(count, 1))
    async with db.read() as s:
        listings = {
            x.id: x for x in (await s.execute(select(Listing).where(Listing.id.in_(listing_ids)))).scalars()
        }
    for n in range(count):
        t = min(t + step, latest)
        clock.clock.freeze(t)
        buyer = buyers[n % len(buyers)]
        assert buyer.org_id
        async with db.read() as s:
            line = rng.choice([b for b in await budgets.lines_of(s, buyer.org_id)])
        picks = rng.sample(listing_ids, k=rng.choice([1, 1, 2]))
        items = tuple(
            (lid, str(rng.choice([1, 2, 3, 5, 10]) if listings[lid].price < 5000 else rng.choice([1, 2])))
            for lid in picks
        )
        try:
            placed, _ = await orders.checkout(
                db,
                settings,
                buyer,
                orders.CheckoutRequest(
                    budget_line_id=line.id,
                    idempotency_key=f"seed-{n:04d}-{rng.random():.8f}",
                    items=items,
                    delivery_address=f"{buyer.org_name} 行政楼",
                    note="",
                ),
            )
        except DomainError:
            continue  # e.g. the chosen budget line is spent: this customer simply buys nothing today
        for order in placed:
            clock.clock.freeze(t)  # each order of the checkout runs its own course from the same moment
            made["orders"] += 1
            supplier = suppliers[order.supplier_org_id]
            stage = rng.random()
            if n >= count - 2:
                continue  # the newest orders wait for the supplier, for the demo
            advance(timedelta(hours=rng.randint(2, 30)))
            discount = {}
            if rng.random() < 0.4:
                discount = {ln.id: str(round_money(ln.unit_price * Decimal("0.97"))) for ln in order.lines}
            await orders.confirm(db, supplier, order.id, discount)
            made["published"] += await disclosure.publish_pending(db)
            if stage < 0.1:
                continue
            advance(timedelta(hours=rng.randint(1, 24)))
            await orders.file_contract(db, buyer, order.id)
            if n == 5:
                advance(timedelta(days=1))
                await orders.void(
                    db, regulator, order.id, "经核查，该合同采购需求与预算项目用途不符，予以作废"
                )
                made["published"] += await disclosure.publish_pending(db)
                continue
            if stage < 0.2:
                continue
            advance(timedelta(days=rng.randint(1, 4)))
            await orders.ship(db, supplier, order.id, f"顺丰 SF{rng.randint(10**11, 10**12 - 1)}")
            advance(timedelta(days=rng.randint(1, 3)))
            await orders.receive(db, buyer, order.id)
            if stage < 0.3:
                continue
            advance(timedelta(days=rng.randint(0, 3)))
            await orders.accept(
                db,
                buyer,
                order.id,
                rng.choice([5, 5, 4, 4, 3]),
                rng.choice(["到货及时，安装规范", "质量良好", "", "服务态度好"]),
            )
            if stage < 0.45:
                continue
            advance(timedelta(days=rng.choice([3, 7, 12, 20, 33])))
            await orders.pay(db, settings, buyer, order.id, f"国库集中支付 {rng.randint(10**9, 10**10 - 1)}")
    return made
