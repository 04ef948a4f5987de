"""Demo oversight cases: records that make every risk rule hit once, then the full run.

The records are written as the ledger holds them (orders with their lines, closed procedures with
their offers, a designation application past its review deadline), not through the flows: each
stands for a pattern the flows would take weeks of demo clicks to produce."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bidding.models import Offer, OfferStatus, Procedure, ProcedureStatus
from catalog.models import Designation, DesignationStatus
from mall.budgets.models import BudgetLine
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.models import Organization
from mall.core.settings import Settings
from mall.orders.models import Checkout, Order, OrderLine, OrderStatus
from mall.pricewatch.models import PriceStat
from mall.sme.current import declarations_on
from mall.supervision import engine

Roles = dict[str, str]
DEMO_ROLES: Roles = {
    "buyer": "buyer1",
    "buyer2": "buyer2",
    "supplier": "supplier1",
    "supplier2": "supplier2",
    "supplier3": "supplier3",
}


async def _line(db: Database, org_id: uuid.UUID) -> BudgetLine:
    async with db.read() as s:
        line = await s.scalar(
            select(BudgetLine).where(BudgetLine.org_id == org_id).order_by(BudgetLine.amount.desc()).limit(1)
        )
    assert line is not None, "the buyer has no budget line"
    return line


def _order(
    buyer: Principal, supplier: uuid.UUID, line: BudgetLine, amount: str, at: datetime, n: int, **kw: Any
) -> tuple[Checkout, Order]:
    assert buyer.org_id is not None
    value = Decimal(amount)
    ck = Checkout(
        id=uuid.uuid4(),
        user_id=buyer.user_id,
        idempotency_key=f"demo-risk-{n}",
        request_digest="-",
        created_at=at,
    )
    unit_price = Decimal(kw.pop("unit_price", amount))
    model = kw.pop("model", f"DEMO-{n}")
    o = Order(
        id=uuid.uuid4(),
        order_no=f"JGDEMO{n:06d}",
        mode="supermarket",
        status=kw.pop("status", OrderStatus.PAID),
        buyer_org_id=buyer.org_id,
        buyer_user_id=buyer.user_id,
        supplier_org_id=supplier,
        budget_line_id=line.id,
        checkout_id=ck.id,
        region_code=kw.pop("region_code", "410100"),
        total_amount=value,
        reserved_amount=value,
        placed_at=at,
        confirm_due_at=at,
        confirmed_at=at,
        **kw,
    )
    o.lines.append(
        OrderLine(
            id=uuid.uuid4(),
            line_no=1,
            item_name="台式计算机",
            brand="联想",
            spec_model=model,
            category_code="A02010105",
            category_version="2022",
            unit="台",
            quantity=(value / unit_price).quantize(Decimal("0.0001")),
            listed_unit_price=unit_price,
            unit_price=unit_price,
            amount=value,
        )
    )
    return ck, o


def _procedure(
    buyer: Principal, line: BudgetLine, n: int, at: datetime, offers: list[tuple[uuid.UUID, str]], **kw: Any
) -> tuple[Procedure, list[Offer]]:
    assert buyer.org_id is not None
    p = Procedure(
        id=uuid.uuid4(),
        number=f"XJDEMO{n:04d}",
        kind="inquiry",
        status=kw.pop("status", ProcedureStatus.CONFIRMED),
        title=f"演示询价项目 {n}",
        buyer_org_id=buyer.org_id,
        buyer_user_id=buyer.user_id,
        budget_line_id=line.id,
        region_code="410100",
        ceiling=Decimal("10000.00"),
        starts_at=at - timedelta(hours=2),
        scheduled_end=at,
        ends_at=at,
        created_at=at - timedelta(hours=3),
        published_at=at - timedelta(hours=2),
        closed_at=at,
        awarded_at=at,
        **kw,
    )
    rows = [
        Offer(
            id=uuid.uuid4(),
            procedure_id=p.id,
            supplier_org_id=s,
            user_id=buyer.user_id,
            seq=i,
            amount=Decimal(a),
            typed=a,
            status=OfferStatus.ACCEPTED,
            at=at - timedelta(minutes=30 - i),
        )
        for i, (s, a) in enumerate(offers, start=1)
    ]
    return p, rows


async def make_cases(
    db: Database, settings: Settings, principals: dict[str, Principal], roles: Roles | None = None
) -> dict[str, int]:
    """At least one case of every rule; returns the cases the full run opened per rule."""
    r = roles or DEMO_ROLES
    buyer, buyer2 = principals[r["buyer"]], principals[r["buyer2"]]
    s1, s2, s3 = (principals[r[k]].org_id for k in ("supplier", "supplier2", "supplier3"))
    assert s1 and s2 and s3 and buyer.org_id and buyer2.org_id
    now = clock.now()
    line, line2 = await _line(db, buyer.org_id), await _line(db, buyer2.org_id)
    rows: list[Any] = []
    n = 0
    # each order records the size its supplier declared (mall.sme), as checkout does
    async with db.read() as s:
        declared = await declarations_on(s, [s1, s2, s3], clock.local_date(now))
    scales = {k: d.size for k, d in declared.items()}

    def order(b: Principal, sup: uuid.UUID, ln: BudgetLine, amount: str, days: int, **kw: Any) -> None:
        nonlocal n
        n += 1
        kw.setdefault("supplier_scale", scales.get(sup, ""))
        rows.extend(_order(b, sup, ln, amount, now - timedelta(days=days), n, **kw))

    # split purchase and concentration (three 700,000 orders of one class, one supplier)
    for _ in range(3):
        order(buyer, s1, line, "700000.00", 20)
    # just below the decentralized limit
    order(buyer2, s2, line2, "980000.00", 3)
    # above the monitored market (median 5,000 for 联想 DEMO-MKT, ten samples)
    order(buyer2, s3, line2, "6000.00", 4, model="DEMO-MKT")
    # late payment to a small supplier, contract not filed, acceptance late
    order(buyer2, s2, line2, "3000.00", 50, status=OrderStatus.ACCEPTED, accepted_at=now - timedelta(days=40))
    order(buyer2, s3, line2, "2000.00", 30, status=OrderStatus.CONFIRMED)
    order(buyer2, s2, line2, "1500.00", 40, status=OrderStatus.RECEIVED, received_at=now - timedelta(days=25))
    # procedures: two participants (few), identical offers, winner close to the runner-up,
    # an abnormally low offer, a declined award; four won by two suppliers in turns (rotation)
    procs = [
        _procedure(
            buyer2,
            line2,
            1,
            now - timedelta(days=60),
            [(s1, "9000"), (s2, "9000")],
            awarded_supplier_id=s1,
            awarded_amount=Decimal("9000"),
        ),
        _procedure(
            buyer2,
            line2,
            2,
            now - timedelta(days=50),
            [(s2, "9900"), (s1, "9950"), (s3, "10000")],
            awarded_supplier_id=s2,
            awarded_amount=Decimal("9900"),
        ),
        _procedure(
            buyer2,
            line2,
            3,
            now - timedelta(days=40),
            [(s1, "4000"), (s2, "9000"), (s3, "9500")],
            awarded_supplier_id=s1,
            awarded_amount=Decimal("4000"),
        ),
        _procedure(
            buyer2,
            line2,
            4,
            now - timedelta(days=30),
            [(s2, "8000"), (s1, "8800"), (s3, "9600")],
            awarded_supplier_id=s2,
            awarded_amount=Decimal("8000"),
            passed_over=[str(s3)],
        ),
    ]
    for p, offers in procs:
        rows.append(p)
        rows.extend(offers)
    async with db.read() as s:
        center = await s.scalar(select(Organization.id).where(Organization.kind == "center").limit(1))
    rows.append(
        Designation(
            id=uuid.uuid4(),
            supplier_org_id=s3,
            category_code="C22010200",
            region_code="410100",
            status=DesignationStatus.APPLIED,
            by_application=True,
            applied_at=now - timedelta(days=20),
            review_due_at=now - timedelta(days=5),
        )
    )
    async with db.write() as tx:
        await tx.session.merge(
            PriceStat(
                brand_key="联想",
                model_key="demomkt",
                samples=10,
                p25=Decimal("4800"),
                median=Decimal("5000"),
                p75=Decimal("5200"),
                window_days=90,
                computed_at=now,
            )
        )
        for row in rows:
            tx.session.add(row)
            if isinstance(row, (Checkout, Procedure)):
                await tx.session.flush()
    assert center is not None, "the demo needs a procurement center"
    result = await engine.run_full(db, settings, now)
    return dict(result.per_rule)
