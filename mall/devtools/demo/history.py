"""The demo's trading history: supermarket orders through their whole life, inquiries and auctions
that ran their course (two deals, two failures), an open inquiry and a live auction, a framework
agreement and designated services with a deal each."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from bidding import award, offers, publish
from bidding import close as bidding_close
from bidding.models import Procedure
from catalog import agreement_orders
from catalog import agreement_setup as ag
from catalog import designated as dd
from catalog import service as catalog_service
from catalog.models import AgreementProduct, Designation, Listing, ServicePriceItem
from mall import budgets, notices, orders
from mall.budgets import scope as budget_scope
from mall.budgets.models import BudgetLine
from mall.contracts import service as contracts
from mall.core import clock, files
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import DomainError
from mall.core.models import Organization
from mall.core.money import round_money
from mall.core.settings import Settings
from mall.devtools.demo import after_sales
from mall.ledger import disclosure
from mall.sme.rules import is_sme


async def _line_for(db: Database, org_id: uuid.UUID | None, codes: list[str]) -> BudgetLine | None:
    """The unit's budget line whose scope covers every one of `codes` with the most left, if any."""
    assert org_id is not None
    async with db.read() as s:
        fit = [
            b
            for b in await budgets.lines_of(s, org_id)
            if all(budget_scope.covers(b.scope, c) for c in codes)
        ]
    return max(fit, key=lambda b: b.available, default=None)


async def _publish(
    db: Database,
    settings: Settings,
    buyer: Principal,
    line_id: uuid.UUID,
    kind: str,
    title: str,
    ceiling: str,
    item: tuple[str, str, str, str, str],
    invited: list[uuid.UUID],
    starts_at: datetime,
    ends_at: datetime,
    decrement: str,
) -> Procedure:
    """One procedure of one item published by `buyer` through the service (`decrement`: auctions only)."""
    return await publish.create(
        db,
        buyer,
        publish.ProcedureIn(
            kind=kind,
            title=title,
            budget_line_id=line_id,
            ceiling=ceiling,
            starts_at=starts_at,
            ends_at=ends_at,
            items=[publish.ItemIn(*item)],
            decrement=decrement if kind == "auction" else "0",
            invited=invited,
        ),
        open_tender_threshold=settings.open_tender_threshold,
        region_code=settings.region_code,
    )


async def make_procedures(db: Database, settings: Settings, principals: dict[str, Principal]) -> int:
    """An open inquiry and a live auction to look at: buyer1 publishes, the suppliers quote and bid."""
    buyer = principals["buyer1"]
    assert buyer.org_id
    line = await _line_for(db, buyer.org_id, ["A02020200", "A02010105"])
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
        line = await _line_for(db, buyer.org_id, [item[0]]) or line  # the most left when it is published
        p = await _publish(
            db,
            settings,
            buyer,
            line.id,
            kind,
            title,
            ceiling,
            item,
            invited,
            now,
            now + timedelta(days=days),
            "200",
        )
        made += 1
        if kind == "inquiry":
            await offers.quote(db, suppliers[0], p.id, "45800.00")
        else:
            await offers.bid(db, suppliers[0], p.id, "93500.00")
            await offers.bid(db, suppliers[1], p.id, "92800.00")
    return made


async def make_agreements_and_services(
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
    # the printer applied three weeks ago and the center has not reviewed it: past the 7 working days,
    # on the regulator's list of overdue reviews
    clock.clock.freeze(clock.now() - timedelta(days=21))
    try:
        await _printing_application(db, settings, principals)
    finally:
        clock.clock.unfreeze()
    return {"agreements": 1, "designations": 3}


async def _printing_application(db: Database, settings: Settings, principals: dict[str, Principal]) -> None:
    await dd.apply(
        db,
        settings,
        principals["supplier6"],
        "C23090100",
        "410100",
        [dd.PriceItemDraft("A4 黑白印刷", "页", "0.15"), dd.PriceItemDraft("彩色海报 A2", "张", "12.00")],
        "郑州市金水区丰产路21号",
    )


async def make_closed_procedures(db: Database, settings: Settings, principals: dict[str, Principal]) -> int:
    """Procedures that ran their course in the past, from the clock's instant on: an inquiry and an
    auction awarded and confirmed (a deal of each mode in the feed), and one of each that failed for
    want of offers (failure notices). Returns the records published."""
    buyer = principals["buyer2"]
    assert buyer.org_id
    line = await _line_for(db, buyer.org_id, [p[0] for p in (DESKTOPS, LAPTOPS, PROJECTORS, SHREDDERS)])
    assert line is not None
    suppliers = [principals[f"supplier{i}"] for i in (1, 2, 4)]
    by_org = {p.org_id: p for p in suppliers}
    plans: list[tuple[str, str, str, tuple[str, str, str, str, str], list[str]]] = [
        ("inquiry", "实验室台式计算机询价采购", "52000.00", DESKTOPS, ["49800.00", "48600.00", "50200.00"]),
        ("auction", "科研用笔记本电脑竞价采购", "78000.00", LAPTOPS, ["76500.00", "75750.00", "74850.00"]),
        ("inquiry", "会议室投影仪询价采购", "16000.00", PROJECTORS, ["15200.00"]),
        ("auction", "档案室碎纸机竞价采购", "9000.00", SHREDDERS, ["8600.00", "8300.00"]),
        # an abnormally low bid (below 45% of the ceiling) that wins; its supplier then declines and
        # the award passes to the next: the regulator's low-offer and decliner lists
        (
            "auction",
            "图书馆笔记本电脑竞价采购",
            "60000.00",
            LAPTOPS_SMALL,
            ["57000.00", "56400.00", "24000.00"],
        ),
    ]
    published = 0
    for kind, title, ceiling, item, amounts in plans:
        start = clock.now()
        invited = [x.org_id for x in suppliers if x.org_id]
        line = await _line_for(db, buyer.org_id, [item[0]]) or line  # the most left when it is published
        p = await _publish(
            db,
            settings,
            buyer,
            line.id,
            kind,
            title,
            ceiling,
            item,
            invited,
            start,
            start + timedelta(hours=4),
            "100",
        )
        for i, amount in enumerate(amounts):
            clock.clock.freeze(start + timedelta(minutes=30 * (i + 1)))
            act = offers.quote if kind == "inquiry" else offers.bid
            await act(db, suppliers[i], p.id, amount)
        clock.clock.freeze(start + timedelta(hours=4, minutes=1))
        p = await bidding_close.close(db, p.id)
        published += await disclosure.publish_pending(db)
        if p.awarded_supplier_id is not None and title.startswith("图书馆"):
            clock.clock.freeze(start + timedelta(hours=5))
            p = await award.decline_award(db, by_org[p.awarded_supplier_id], p.id)
        if p.awarded_supplier_id is not None:
            clock.clock.freeze(start + timedelta(hours=6))
            await award.confirm_award(db, by_org[p.awarded_supplier_id], p.id)
            published += await disclosure.publish_pending(db)
        clock.clock.freeze(start + timedelta(hours=7))
    return published


DESKTOPS = ("A02010105", "台式计算机", "12", "台", "i5/16G/512G SSD/23.8 英寸")
LAPTOPS = ("A02010108", "便携式计算机", "15", "台", "i7/16G/1T SSD/14 英寸")
PROJECTORS = ("A02020200", "投影仪", "4", "台", "4000 流明，1080P")
SHREDDERS = ("A02021301", "碎纸机", "6", "台", "4 级保密，连续碎纸 30 分钟")
LAPTOPS_SMALL = ("A02010108", "便携式计算机", "12", "台", "i5/16G/512G SSD/14 英寸")


async def make_agreement_and_service_deals(
    db: Database, settings: Settings, principals: dict[str, Principal]
) -> int:
    """Two vehicles bought under the agreement from two of its suppliers and a meeting booked with the
    designated hotel, all confirmed: deals of the agreement and designated modes in the feed, and an
    agreement summary with more than one supplier in it."""
    buyer = principals["buyer3"]
    assert buyer.org_id
    async with db.read() as s:
        car = (
            await s.execute(select(AgreementProduct).where(AgreementProduct.brand == "比亚迪").limit(1))
        ).scalar_one()
        hotel = (
            await s.execute(
                select(Designation).where(Designation.supplier_org_id == principals["supplier7"].org_id)
            )
        ).scalar_one()
        meeting = {
            i.name: i.id
            for i in (
                await s.execute(select(ServicePriceItem).where(ServicePriceItem.designation_id == hotel.id))
            ).scalars()
        }
    cars = await _line_for(db, buyer.org_id, [car.category_code])
    meetings = await _line_for(db, buyer.org_id, [hotel.category_code])
    assert cars is not None and meetings is not None
    order, _ = await agreement_orders.place_order(
        db,
        settings,
        buyer,
        agreement_orders.AgreementOrderRequest(
            product_id=car.id,
            quantity="1",
            budget_line_id=cars.id,
            note="医院公务用车更新",
            idempotency_key="seed-agreement-car",
        ),
    )
    await orders.confirm(db, principals["supplier5"], order.id)
    async with db.read() as s:
        van = (
            await s.execute(select(AgreementProduct).where(AgreementProduct.brand == "别克").limit(1))
        ).scalar_one()
    second, _ = await agreement_orders.place_order(
        db,
        settings,
        buyer,
        agreement_orders.AgreementOrderRequest(
            product_id=van.id,
            quantity="1",
            budget_line_id=cars.id,
            note="医院急救转运保障用车",
            idempotency_key="seed-agreement-van",
        ),
    )
    await orders.confirm(db, principals["supplier2"], second.id)
    service, _ = await dd.place_order(
        db,
        settings,
        buyer,
        dd.ServiceOrderRequest(
            hotel.id,
            ((meeting["中型会议室（半天）"], "1"), (meeting["会议茶歇"], "40"), (meeting["工作餐"], "40")),
            meetings.id,
            "seed-designated-meeting",
            note="医院年度护理质量培训会",
        ),
    )
    await orders.confirm(db, principals["supplier7"], service.id)
    return await disclosure.publish_pending(db)


async def make_history(
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
    waiting = 0  # contracts left unfiled so far
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
        if n == count // 2:  # halfway through the months: procedures that ran their course
            made["published"] += await make_closed_procedures(db, settings, principals)
            t = clock.now()
        if n == count // 3:  # a third of the way: a split purchase, and a deal corrected
            made["published"] += await make_split_purchase(db, settings, principals)
            t = clock.now()
        buyer = buyers[n % len(buyers)]
        assert buyer.org_id
        picks = rng.sample(listing_ids, k=rng.choice([1, 1, 2]))
        line = await _line_for(db, buyer.org_id, [listings[lid].category_code for lid in picks])
        if line is None:  # no one line of this unit may buy both: the first alone, if one may
            picks = picks[:1]
            line = await _line_for(db, buyer.org_id, [listings[picks[0]].category_code])
        if line is None:  # none may: another unit's purchase
            continue
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
            # Each party signs with its own certificate (the supplier first here; either may). Of the
            # contracts left unfiled, the first waits for both signatures, the second for the buyer's,
            # the rest for filing.
            unfiled = stage < 0.1
            waiting += int(unfiled)
            if unfiled and waiting == 1:
                continue
            store = files.store_for(settings, db)
            advance(timedelta(hours=2))  # (no draw from rng: the history's other choices stay as they were)
            await contracts.sign_contract(db, settings, store, supplier, order.id)
            if unfiled and waiting == 2:
                continue
            advance(timedelta(hours=3))
            await contracts.sign_contract(db, settings, store, buyer, order.id)
            made["notices"] = made.get("notices", 0) + await notices.publish_pending(db)
            if unfiled:
                continue
            advance(timedelta(hours=rng.randint(1, 24)))
            await orders.file_contract(db, buyer, order.id)
            if n >= 5 and not made.get("voided"):  # one filed contract the regulator voids
                made["voided"] = 1
                advance(timedelta(days=1))
                await orders.void(
                    db, regulator, order.id, "经核查，该合同采购需求与预算项目用途不符，予以作废"
                )
                made["published"] += await disclosure.publish_pending(db)
                continue
            if stage < 0.2:
                continue
            advance(timedelta(days=rng.randint(1, 4)))
            await orders.ship(
                db,
                supplier,
                order.id,
                "送货上门，请提前联系收货人",
                carrier="顺丰速运",
                tracking_no=f"SF{rng.randint(10**11, 10**12 - 1)}",
            )
            advance(timedelta(days=rng.randint(1, 3)))
            await orders.receive(db, buyer, order.id)
            if stage < 0.3:
                continue
            advance(timedelta(days=rng.randint(0, 3)))
            await orders.accept(
                db,
                settings,
                buyer,
                order.id,
                inspectors=rng.choice([["王建国", "李华"], ["张伟"], ["刘洋", "陈静", "杨帆"]]),
                score=rng.choice([5, 5, 4, 4, 3]),
                comment=rng.choice(["到货及时，安装规范", "质量良好", "", "服务态度好"]),
            )
            if made.setdefault("claims", 0) < 1 or (n >= count - 6 and made["claims"] < 2):
                await after_sales.claim(
                    db, settings, buyer, supplier, order.id, resolved=made["claims"] == 0, advance=advance
                )
                made["claims"] += 1
            if stage < 0.45:
                continue
            # two SME orders paid late (the payment rule protects small and medium suppliers only)
            late = made.setdefault("paid_late", 0) < 2 and is_sme(order.supplier_scale)
            advance(timedelta(days=36 if late else rng.choice([3, 7, 12, 20, 28])))
            made["paid_late"] += int(late)
            day = clock.local_date(clock.now())
            async with db.read() as s:
                total = (await orders.get_order(s, buyer, order.id)).total_amount  # as confirmed
            invoice = await orders.record_invoice(
                db,
                supplier,
                order.id,
                invoice_no=f"{day.year % 100:02d}41{rng.randint(10**15, 10**16 - 1)}",
                amount=total,
                issued_on=day,
            )
            await orders.confirm_invoice(db, buyer, order.id, invoice.id)
            await orders.pay(
                db,
                settings,
                buyer,
                order.id,
                voucher_no=f"GK{day.year}-{rng.randint(10**9, 10**10 - 1)}",
                amount=total,
            )
    return made


async def _reviewed_listing(
    db: Database,
    settings: Settings,
    principals: dict[str, Principal],
    supplier: Principal,
    draft: catalog_service.ListingDraft,
) -> Listing:
    """A listing of `supplier`, submitted and approved by the center: on sale."""
    listing = await catalog_service.create_listing(db, supplier, draft, margin=settings.price_margin)
    return await catalog_service.review_listing(
        db, principals["center1"], listing.id, approve=True, reason="", margin=settings.price_margin
    )


async def make_split_purchase(db: Database, settings: Settings, principals: dict[str, Principal]) -> int:
    """开封市中心医院 buys desktops for the whole hospital in three orders, each below the
    decentralized threshold, together above the open-tender threshold: the regulator's split-purchase
    list. Then the buyer corrects the model published for the first of them (更正公告)."""
    buyer, supplier = principals["buyer3"], principals["supplier2"]
    draft = catalog_service.ListingDraft(
        name="联想 启天 M450 商用台式计算机",
        brand="联想",
        spec_model="启天 M450 i5-13500/16G/512G",
        category_code="A02010105",
        unit="台",
        price="6500.00",
        reference_price="6599.00",
        stock="600",
        reference_source="https://www.lenovo.com.cn/",
        description="含 23.8 英寸显示器，三年上门保修。",
    )
    listing = await _reviewed_listing(db, settings, principals, supplier, draft)
    line = await _line_for(db, buyer.org_id, ["A02010105"])
    assert line is not None and line.project_code == "YY-2026-025"
    published = 0
    first: uuid.UUID | None = None
    for i, ward in enumerate(("门诊楼", "住院部", "医技楼")):
        clock.clock.freeze(clock.now() + timedelta(hours=2))
        placed, _ = await orders.checkout(
            db,
            settings,
            buyer,
            orders.CheckoutRequest(
                budget_line_id=line.id,
                idempotency_key=f"seed-split-{i}",
                items=((listing.id, "140"),),
                delivery_address=f"开封市中心医院 {ward}",
                note="",
            ),
        )
        await orders.confirm(db, supplier, placed[0].id)
        first = first or placed[0].id
        published += await disclosure.publish_pending(db)
    assert first is not None
    clock.clock.freeze(clock.now() + timedelta(days=1))
    await orders.correct(
        db,
        buyer,
        first,
        [{"line_no": 1, "spec_model": "启天 M450 i5-13500/16G/512G/23.8英寸"}],
        "合同约定含显示器，成交记录的规格型号漏写显示器尺寸",
    )
    return published + await disclosure.publish_pending(db)


async def make_sole_proprietor_deal(
    db: Database, settings: Settings, principals: dict[str, Principal]
) -> int:
    """The sole proprietor's shop: copy paper reviewed by the center, and one deal with buyer1 whose
    order carries a person's name and phone in its address and note. Its published record names the
    supplier by name and credit code only; the address, phone and note stay out (docs/privacy.md)."""
    shop, buyer = principals["supplier8"], principals["buyer1"]
    draft = catalog_service.ListingDraft(
        name="得力 A4复印纸 70g（500张/包，8包/箱）",
        brand="得力",
        spec_model="7401 A4 70g",
        category_code="A05040101",
        unit="箱",
        price="138.00",
        reference_price="142.00",
        stock="60",
        reference_source="京东自营",
        description="个体经营文具店供货，郑州市区当天送达。",
    )
    listing = await _reviewed_listing(db, settings, principals, shop, draft)
    assert buyer.org_id
    async with db.read() as s:
        line = next(b for b in await budgets.lines_of(s, buyer.org_id) if b.project_code == "JY-2026-003")
    placed, _ = await orders.checkout(
        db,
        settings,
        buyer,
        orders.CheckoutRequest(
            budget_line_id=line.id,
            idempotency_key="seed-sole-proprietor",
            items=((listing.id, "5"),),
            delivery_address="郑州市中原区建设西路 郑州市第一中学教务处 收货人王老师 13903710001",
            note="请上午送达，到校门口联系王老师",
        ),
    )
    await orders.confirm(db, shop, placed[0].id)
    return await disclosure.publish_pending(db)
