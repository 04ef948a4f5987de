"""What the rules read, loaded for a scope: everything (the nightly run), or some buyers,
procedures and designation applications (the incremental run after their events).

The full run streams: orders come in batches of whole checkouts, procedures in batches by id, so
memory is bounded by the batch, not by the ledger. Aggregates (split purchases, a buyer's yearly
spend per supplier) are computed by the database.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, func, literal, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.models import Offer, Procedure, ProcedureStatus
from bidding.oversight import OPENED
from bidding.views import ranked_with_flags
from catalog.goods import brand_key, model_key
from catalog.models import Designation, DesignationStatus
from mall.budgets.models import BudgetLine
from mall.core.models import Organization, OrgKind
from mall.core.money import from_cents, to_cents
from mall.core.regions import scope_prefix, within
from mall.orders.models import Order, OrderLine, OrderStatus
from mall.oversight import CLASS_LENGTH
from mall.pricewatch.models import PriceStat
from mall.sme.rules import is_sme
from mall.supervision import rules as R

CHECKOUT_BATCH = 2000
PROCEDURE_BATCH = 500


@dataclass(frozen=True)
class Scope:
    """What an incremental run looks at; `None` (in the engine) is everything."""

    buyers: frozenset[uuid.UUID] = field(default_factory=frozenset)
    procedures: frozenset[uuid.UUID] = field(default_factory=frozenset)
    designations: frozenset[uuid.UUID] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.buyers or self.procedures or self.designations)

    def __or__(self, other: Scope) -> Scope:
        return Scope(
            self.buyers | other.buyers,
            self.procedures | other.procedures,
            self.designations | other.designations,
        )


@functools.lru_cache(maxsize=65536)
def _bkey(brand: str) -> str:
    return brand_key(brand)


@functools.lru_cache(maxsize=65536)
def _mkey(spec: str) -> str:
    return model_key(spec)


def _chunks(ids: list[uuid.UUID], n: int = 500) -> list[list[uuid.UUID]]:
    return [ids[i : i + n] for i in range(0, len(ids), n)]


# ---------------------------------------------------------------- orders


async def _orders_of(s: AsyncSession, checkouts: list[uuid.UUID]) -> list[R.OrderFact]:
    rows = (
        await s.execute(
            select(
                Order.id,
                Order.order_no,
                Order.checkout_id,
                Order.buyer_org_id,
                Order.supplier_org_id,
                Order.status,
                Order.total_amount,
                Order.confirmed_at,
                Order.signed_at,
                Order.received_at,
                Order.accepted_at,
                Order.supplier_scale,
            ).where(Order.checkout_id.in_(checkouts))
        )
    ).all()
    if not rows:
        return []
    order_ids = [r[0] for r in rows]
    lines: dict[uuid.UUID, list[R.LineFact]] = {i: [] for i in order_ids}
    for chunk in _chunks(order_ids):
        for oid, no, name, brand, spec, code, price, amount in (
            await s.execute(
                select(
                    OrderLine.order_id,
                    OrderLine.line_no,
                    OrderLine.item_name,
                    OrderLine.brand,
                    OrderLine.spec_model,
                    OrderLine.category_code,
                    OrderLine.unit_price,
                    OrderLine.amount,
                ).where(OrderLine.order_id.in_(chunk))
            )
        ).all():
            lines[oid].append(R.LineFact(no, name, code, _bkey(brand), _mkey(spec), price, amount))
    orgs = {r[3] for r in rows} | {r[4] for r in rows}
    info: dict[uuid.UUID, str] = {}
    for chunk in _chunks(list(orgs)):
        for oid, region in (
            await s.execute(
                select(Organization.id, Organization.region_code).where(Organization.id.in_(chunk))
            )
        ).all():
            info[oid] = region
    return [
        R.OrderFact(
            order_id=r[0],
            order_no=r[1],
            checkout_id=r[2],
            buyer_org_id=r[3],
            supplier_org_id=r[4],
            region_code=info.get(r[3], ""),
            status=str(r[5]),
            total=r[6],
            supplier_is_sme=is_sme(r[11]),
            confirmed_at=r[7],
            signed_at=r[8],
            received_at=r[9],
            accepted_at=r[10],
            lines=tuple(sorted(lines[r[0]], key=lambda ln: ln.line_no)),
        )
        for r in rows
    ]


async def order_batches(
    s: AsyncSession, buyers: Collection[uuid.UUID] | None, *, batch: int = CHECKOUT_BATCH
) -> AsyncIterator[list[R.OrderFact]]:
    """The orders (with lines) of `buyers` (None: every buyer), whole checkouts at a time."""
    last: uuid.UUID | None = None
    while True:
        stmt = select(Order.checkout_id).distinct().order_by(Order.checkout_id).limit(batch)
        if buyers is not None:
            stmt = stmt.where(Order.buyer_org_id.in_(list(buyers)))
        if last is not None:
            stmt = stmt.where(Order.checkout_id > last)
        checkouts = list((await s.execute(stmt)).scalars())
        if not checkouts:
            return
        last = checkouts[-1]
        yield await _orders_of(s, checkouts)
        if len(checkouts) < batch:
            return


async def market_for(s: AsyncSession, orders: list[R.OrderFact]) -> dict[tuple[str, str], R.MarketPrice]:
    """The monitored market price of the goods these orders' lines name."""
    brands = sorted({ln.brand_key for o in orders for ln in o.lines if ln.brand_key})
    wanted = {(ln.brand_key, ln.model_key) for o in orders for ln in o.lines}
    out: dict[tuple[str, str], R.MarketPrice] = {}
    for i in range(0, len(brands), 500):
        rows = await s.execute(
            select(PriceStat.brand_key, PriceStat.model_key, PriceStat.median, PriceStat.samples).where(
                PriceStat.brand_key.in_(brands[i : i + 500])
            )
        )
        for b, m, median, samples in rows.all():
            if (b, m) in wanted:
                out[(b, m)] = R.MarketPrice(median, int(samples))
    return out


# ---------------------------------------------------------------- aggregates


def _class() -> object:
    from sqlalchemy import literal_column

    return func.substr(OrderLine.category_code, literal_column("1"), literal_column(str(CLASS_LENGTH)))


async def split_groups(
    s: AsyncSession, threshold: Decimal, buyers: Collection[uuid.UUID] | None
) -> list[R.SplitGroup]:
    """Budget projects' class totals above `threshold` (the definition of mall.oversight)."""
    cls = _class()
    cents = func.sum(type_coerce(OrderLine.amount, BigInteger))
    stmt = (
        select(
            Order.buyer_org_id,
            Organization.region_code,
            Order.budget_line_id,
            BudgetLine.project_code,
            BudgetLine.fiscal_year,
            cls.label("cls"),  # type: ignore[attr-defined]
            func.count(func.distinct(Order.id)),
            cents.label("cents"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .join(BudgetLine, BudgetLine.id == Order.budget_line_id)
        .join(Organization, Organization.id == Order.buyer_org_id)
        .where(Order.status != OrderStatus.CANCELLED)
        .group_by(
            Order.buyer_org_id,
            Organization.region_code,
            Order.budget_line_id,
            BudgetLine.project_code,
            BudgetLine.fiscal_year,
            cls,  # type: ignore[arg-type]
        )
        .having(cents > literal(to_cents(threshold), BigInteger()))
    )
    if buyers is not None:
        stmt = stmt.where(Order.buyer_org_id.in_(list(buyers)))
    return [
        R.SplitGroup(b, str(region), line, str(project), int(year), str(c), int(n), from_cents(int(total)))
        for b, region, line, project, year, c, n, total in (await s.execute(stmt)).all()
    ]


async def spend_batches(
    s: AsyncSession, now: datetime, buyers: Collection[uuid.UUID] | None, *, batch: int = 20000
) -> AsyncIterator[list[R.SpendRow]]:
    """Per buyer, supplier and calendar year (of the order), this year's and last year's orders that
    became deals (confirmed or later, not cancelled); streamed, whole buyers at a time."""
    year = func.extract("year", Order.placed_at)
    since = now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    since = since.replace(year=since.year - 1)
    cents = func.sum(type_coerce(Order.total_amount, BigInteger))
    stmt = (
        select(Order.buyer_org_id, Organization.region_code, Order.supplier_org_id, year, cents)
        .join(Organization, Organization.id == Order.buyer_org_id)
        .where(
            Order.status.not_in((OrderStatus.CANCELLED, OrderStatus.PLACED)),
            Order.placed_at >= since,
        )
        .group_by(Order.buyer_org_id, Organization.region_code, Order.supplier_org_id, year)
        .order_by(Order.buyer_org_id)
    )
    if buyers is not None:
        stmt = stmt.where(Order.buyer_org_id.in_(list(buyers)))
    out: list[R.SpendRow] = []
    result = await s.stream(stmt.execution_options(yield_per=5000))
    async for b, region, sup, y, total in result:
        if len(out) >= batch and out[-1].buyer_org_id != b:
            yield out
            out = []
        out.append(R.SpendRow(b, str(region), sup, int(y), from_cents(int(total))))
    if out:
        yield out


# ---------------------------------------------------------------- procedures


async def _facts_of(s: AsyncSession, procs: list[Procedure]) -> list[R.ProcedureFact]:
    ids = [p.id for p in procs]
    offers: dict[uuid.UUID, list[Offer]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        for o in (
            await s.execute(select(Offer).where(Offer.procedure_id.in_(chunk)).order_by(Offer.at))
        ).scalars():
            offers[o.procedure_id].append(o)
    regions = await _regions(s, {p.buyer_org_id for p in procs})
    out = []
    for p in procs:
        ranked, _ = ranked_with_flags(p, offers[p.id])
        out.append(
            R.ProcedureFact(
                procedure_id=p.id,
                number=p.number,
                kind=p.kind,
                status=p.status,
                buyer_org_id=p.buyer_org_id,
                region_code=regions.get(p.buyer_org_id, p.region_code),
                ceiling=p.ceiling,
                closed_at=p.closed_at,
                ranked=tuple(R.Offer(uuid.UUID(o.supplier), o.amount, int(o.seq)) for o in ranked),
                awarded_supplier_id=p.awarded_supplier_id,
                passed_over=tuple(uuid.UUID(x) for x in (p.passed_over or [])),
            )
        )
    return out


async def _regions(s: AsyncSession, orgs: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    out: dict[uuid.UUID, str] = {}
    for chunk in _chunks(list(orgs)):
        rows = await s.execute(
            select(Organization.id, Organization.region_code).where(Organization.id.in_(chunk))
        )
        out.update({i: str(r) for i, r in rows.all()})
    return out


async def procedure_batches(
    s: AsyncSession, procedures: Collection[uuid.UUID] | None, *, batch: int = PROCEDURE_BATCH
) -> AsyncIterator[list[R.ProcedureFact]]:
    """Procedures whose offers are open (closed, awarded, confirmed, failed), in batches by id."""
    last: uuid.UUID | None = None
    while True:
        stmt = select(Procedure).where(Procedure.status.in_(OPENED)).order_by(Procedure.id).limit(batch)
        if procedures is not None:
            stmt = stmt.where(Procedure.id.in_(list(procedures)))
        if last is not None:
            stmt = stmt.where(Procedure.id > last)
        procs = list((await s.execute(stmt)).scalars())
        if not procs:
            return
        last = procs[-1].id
        yield await _facts_of(s, procs)
        if len(procs) < batch:
            return


async def buyers_of_procedures(s: AsyncSession, procedures: Collection[uuid.UUID]) -> set[uuid.UUID]:
    out: set[uuid.UUID] = set()
    for chunk in _chunks(list(procedures)):
        out |= set((await s.execute(select(Procedure.buyer_org_id).where(Procedure.id.in_(chunk)))).scalars())
    return out


async def wins(
    s: AsyncSession, now: datetime, months: int, buyers: Collection[uuid.UUID] | None
) -> list[R.WinFact]:
    """Procedures with a winner (awarded or confirmed) in the window, for the rotation rule."""
    since = now - timedelta(days=30 * months)
    at = func.coalesce(Procedure.awarded_at, Procedure.closed_at)
    stmt = (
        select(
            Procedure.id,
            Procedure.number,
            Procedure.buyer_org_id,
            Organization.region_code,
            Procedure.awarded_supplier_id,
            at,
        )
        .join(Organization, Organization.id == Procedure.buyer_org_id)
        .where(
            Procedure.status.in_((ProcedureStatus.AWARDED, ProcedureStatus.CONFIRMED)),
            Procedure.awarded_supplier_id.is_not(None),
            at >= since,
        )
    )
    if buyers is not None:
        stmt = stmt.where(Procedure.buyer_org_id.in_(list(buyers)))
    return [
        R.WinFact(pid, str(no), b, str(region), w, when)
        for pid, no, b, region, w, when in (await s.execute(stmt)).all()
        if w is not None and when is not None
    ]


# ---------------------------------------------------------------- designations


async def centers(s: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """Every procurement center with its region: there may be several (a province's, a city's)."""
    rows = await s.execute(
        select(Organization.id, Organization.region_code)
        .where(Organization.kind == OrgKind.CENTER.value)
        .order_by(Organization.created_at, Organization.id)
    )
    return [(i, str(r)) for i, r in rows.all()]


def reviewing_center(region: str, found: list[tuple[uuid.UUID, str]]) -> uuid.UUID | None:
    """The center that reviews an application for `region`: the most local one covering it."""
    covering = [(len(scope_prefix(c_region)), c_id) for c_id, c_region in found if within(region, c_region)]
    if not covering:
        return found[0][0] if len(found) == 1 else None
    return max(covering, key=lambda x: x[0])[1]


async def applications(
    s: AsyncSession, now: datetime, designations: Collection[uuid.UUID] | None
) -> list[R.DesignationFact]:
    """Designation applications still waiting for review."""
    stmt = select(Designation).where(Designation.status == DesignationStatus.APPLIED)
    if designations is not None:
        stmt = stmt.where(Designation.id.in_(list(designations)))
    found = await centers(s)
    return [
        R.DesignationFact(
            d.id,
            d.supplier_org_id,
            d.region_code,
            d.category_code,
            d.review_due_at,
            reviewing_center(d.region_code, found),
        )
        for d in (await s.execute(stmt)).scalars()
    ]
