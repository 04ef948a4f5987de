"""The online supermarket (网上超市): checkout, and the order's life from placed to paid (the cart is
`mall.cart`).

An order only moves through the named transitions below; each checks who is acting and the
state it starts from, in a write transaction that also keeps the budget and the outbox.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from sqlalchemy import BigInteger, Table, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Listing, ListingStatus
from mall import budgets
from mall.cart import PriceRise, cart_of, price_changed, quantity_of, unit_price_of
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.fields import ADDRESS_MAX, NOTE_MAX, text
from mall.core.models import (
    ORDER_STATUS_LABELS,
    BudgetLine,
    CartItem,
    Checkout,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Organization,
    OrgStatus,
)
from mall.core.money import MoneyError, money, money_str, round_money
from mall.core.settings import Settings
from mall.ledger import disclosure

S = OrderStatus
_LISTINGS = cast(Table, Listing.__table__)
MAX_ITEMS = 100


# ---------------------------------------------------------------- checkout


@dataclass(frozen=True)
class CheckoutRequest:
    budget_line_id: uuid.UUID
    idempotency_key: str
    items: tuple[tuple[uuid.UUID, str], ...] = ()  # empty: the cart
    delivery_address: str = ""
    note: str = ""
    # (listing id, unit price) the client agreed to, for some of `items`: a higher price at checkout
    # is refused. Items without one are held to the price kept in the buyer's cart, if they are there.
    agreed_prices: tuple[tuple[uuid.UUID, str], ...] = ()


def _digest(req: CheckoutRequest, items: list[tuple[uuid.UUID, Decimal]]) -> str:
    body: dict[str, object] = {
        "budget_line_id": str(req.budget_line_id),
        # A checkout of the cart is fingerprinted as such: the cart is empty after the first one,
        # and its retry must still be recognized as the same request.
        "items": sorted([str(i), str(q)] for i, q in items) if req.items else "cart",
        "delivery_address": req.delivery_address,
        "note": req.note,
    }
    if req.agreed_prices:
        body["prices"] = sorted([str(i), str(unit_price_of(p))] for i, p in req.agreed_prices)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _new_number(prefix: str) -> str:
    """WS/HT + date + 12 random digits: unguessable, and a clash (about 1 in 10^4 days at 10,000
    numbers a day) only makes the unique index refuse; the caller then tries again."""
    return f"{prefix}{clock.local_date(clock.now()):%Y%m%d}{secrets.randbelow(10**12):012d}"


async def checkout(
    db: Database, settings: Settings, who: Principal, req: CheckoutRequest
) -> tuple[list[Order], bool]:
    """Place one order per supplier. Returns (orders, replayed). All or nothing.

    The buyer pays at most the price it saw: an item whose price rose since it went into the cart
    (or above the price the client agreed to) refuses the whole checkout with 409 `price_changed`;
    one that went down is charged lower. The lines that are the same item (品目, brand and model)
    are one purchase, whichever suppliers sell them: together they must stay below the
    decentralized threshold, as every single order must."""
    digest = None if not req.items else _digest(req, [(lid, quantity_of(q)) for lid, q in req.items])

    async def attempt(key: str) -> list[Order]:
        return await _checkout(db, settings, who, req, key)

    return await idempotent(db, who, req.idempotency_key, attempt, digest)


async def idempotent(
    db: Database,
    who: Principal,
    raw_key: str,
    attempt: Callable[[str], Awaitable[list[Order]]],
    digest: str | None,
) -> tuple[list[Order], bool]:
    """Run an ordering transaction at most once per (buyer user, idempotency key): a retry with the
    same key answers with the orders the first one made. Shared by every way of ordering."""
    key = raw_key.strip()
    if not re.fullmatch(fields.IDEMPOTENCY_KEY_PATTERN, key):
        raise InvalidInput(
            "幂等键（Idempotency-Key）应为8至100个可见ASCII字符",
            code="idempotency_key_invalid",
            field="Idempotency-Key",
        )
    assert who.org_id is not None
    for n in range(3):
        try:
            return await attempt(key), False
        except _Replay as replay:
            return await _replay(db, who, key, replay.digest), True
        except IntegrityError:
            async with db.read() as s:
                twin = await s.scalar(
                    select(Checkout.id).where(
                        Checkout.user_id == who.user_id, Checkout.idempotency_key == key
                    )
                )
            if twin is None and n < 2:
                continue  # not a twin: an order number clashed; try again with new numbers
            if twin is None:
                raise
            break
    # Another request with the same key committed first: answer with its orders, if it was the
    # same request (a checkout from the cart cannot be compared: the twin emptied the cart).
    return await _replay(db, who, key, digest), True


async def _replay(db: Database, who: Principal, key: str, digest: str | None) -> list[Order]:
    async with db.read() as s:
        ck = (
            await s.execute(
                select(Checkout).where(Checkout.user_id == who.user_id, Checkout.idempotency_key == key)
            )
        ).scalar_one()
        if digest is not None and ck.request_digest != digest:
            raise Conflict("该幂等键已用于另一笔不同的下单请求", code="idempotency_key_reused")
        rows = await s.execute(select(Order).where(Order.checkout_id == ck.id).order_by(Order.order_no))
        return list(rows.scalars().unique())


class _Replay(Exception):
    def __init__(self, digest: str) -> None:
        self.digest = digest


@dataclass(frozen=True)
class LineDraft:
    """One line of a new order, whatever the way of ordering."""

    item_name: str
    brand: str
    spec_model: str
    category_code: str
    category_version: str
    unit: str
    quantity: Decimal
    listed_unit_price: Decimal  # the listed, agreement or price-list price
    unit_price: Decimal  # what the buyer orders at (never above the listed price)
    listing_id: uuid.UUID | None = None
    line_no: int | None = None  # numbered in order when None


async def begin(
    s: AsyncSession, who: Principal, key: str, digest: str, budget_line_id: uuid.UUID, delivery_address: str
) -> tuple[BudgetLine, Checkout, str]:
    """The start every way of ordering shares: a replayed key is answered with its orders; the budget
    line must be the buyer's own, of this fiscal year; the delivery address defaults to the unit's."""
    assert who.org_id is not None
    existing = await s.scalar(
        select(Checkout.request_digest).where(
            Checkout.user_id == who.user_id, Checkout.idempotency_key == key
        )
    )
    if existing is not None:
        raise _Replay(digest)
    line = await budgets.get_line(s, budget_line_id, who.org_id)
    buyer_org = await s.get(Organization, who.org_id)
    address = text(delivery_address, "收货地址", ADDRESS_MAX, field="delivery_address") or (
        buyer_org.address if buyer_org else ""
    )
    if not address:
        raise InvalidInput("请填写收货地址", code="delivery_address_required")
    now = clock.now()
    fiscal_year = clock.local_date(now).year
    if line.fiscal_year != fiscal_year:
        raise RuleViolation(f"只能使用{fiscal_year}年度的预算指标", code="budget_wrong_year")
    ck = Checkout(user_id=who.user_id, idempotency_key=key, request_digest=digest, created_at=now)
    s.add(ck)
    await s.flush()  # the unique (user, key) index stops a concurrent twin here
    return line, ck, address


ORDER_PREFIX = {"supermarket": "WS", "agreement": "XY", "designated": "DD"}


async def open_order(
    s: AsyncSession,
    settings: Settings,
    who: Principal,
    line: BudgetLine,
    ck: Checkout,
    supplier_id: uuid.UUID,
    drafts: list[LineDraft],
    *,
    mode: str,
    address: str,
    note: str,
    source_id: uuid.UUID | None = None,
    note_prefix: str = "",
    note_max: int = NOTE_MAX,
) -> Order:
    """A placed order reserving its amount on the budget line. From here on every mode runs the same
    flow: the supplier confirms (may only lower prices), contract, delivery, acceptance, payment.
    `note` is the buyer's, checked against `note_max`; `note_prefix` is the mall's own, put before it
    (a framework agreement's number): `note_max` leaves the room for it in the column."""
    note = text(note, "备注", note_max, multiline=True, field="note")
    if note_prefix:
        note = f"{note_prefix}；{note}" if note else note_prefix
    assert who.org_id is not None
    now = clock.now()
    total = sum((round_money(d.unit_price * d.quantity) for d in drafts), Decimal(0))
    if total >= settings.decentralized_threshold:
        label = disclosure.MODE_LABELS.get(mode, mode)
        raise RuleViolation(
            f"单笔订单金额 {total:,.2f} 元达到或超过分散采购限额标准"
            f" {settings.decentralized_threshold:,.0f} 元，不能通过{label}采购，请依法采用其他采购方式",
            code="order_above_threshold",
        )
    order = Order(
        id=uuid.uuid4(),
        order_no=_new_number(ORDER_PREFIX[mode]),
        mode=mode,
        status=S.PLACED,
        buyer_org_id=who.org_id,
        buyer_user_id=who.user_id,
        supplier_org_id=supplier_id,
        budget_line_id=line.id,
        checkout_id=ck.id,
        source_id=source_id,
        region_code=settings.region_code,
        total_amount=total,
        reserved_amount=total,
        delivery_address=address,
        note=note,
        placed_at=now,
        confirm_due_at=now + timedelta(days=settings.auto_cancel_days),
    )
    for n, d in enumerate(drafts, start=1):
        order.lines.append(
            OrderLine(
                line_no=n,
                listing_id=d.listing_id,
                item_name=d.item_name,
                brand=d.brand,
                spec_model=d.spec_model,
                category_code=d.category_code,
                category_version=d.category_version,
                unit=d.unit,
                quantity=d.quantity,
                listed_unit_price=d.listed_unit_price,
                unit_price=d.unit_price,
                amount=round_money(d.unit_price * d.quantity),
            )
        )
    s.add(order)
    await s.flush()
    await budgets.reserve(s, line.id, total, order.id)
    record_event(s, order, who, "placed", f"下单，金额 {total:,.2f} 元，占用预算 {line.project_code}")
    return order


async def open_confirmed_order(
    s: AsyncSession,
    *,
    mode: str,
    number_prefix: str,
    buyer_org_id: uuid.UUID,
    buyer_user_id: uuid.UUID,
    supplier_id: uuid.UUID,
    budget_line_id: uuid.UUID,
    idempotency_key: str,
    region_code: str,
    total: Decimal,
    note: str,
    drafts: list[LineDraft],
    at: datetime,
    source_id: uuid.UUID | None = None,
) -> Order:
    """An order made by a confirmed award (inquiry, auction): it starts confirmed, with its contract
    number, and holds the reservation the procedure passes on (the caller moves it); from here on it
    runs the supermarket's flow. The caller records the confirmation event once the deal is staged."""
    checkout = Checkout(
        user_id=buyer_user_id, idempotency_key=idempotency_key, request_digest="-", created_at=at
    )
    s.add(checkout)
    await s.flush()
    order = Order(
        order_no=_new_number(number_prefix),
        mode=mode,
        status=S.CONFIRMED,
        buyer_org_id=buyer_org_id,
        buyer_user_id=buyer_user_id,
        supplier_org_id=supplier_id,
        budget_line_id=budget_line_id,
        checkout_id=checkout.id,
        source_id=source_id,
        region_code=region_code,
        total_amount=total,
        reserved_amount=total,
        note=note,
        placed_at=at,
        confirm_due_at=at,
        confirmed_at=at,
        contract_no=_new_number("HT"),
    )
    s.add(order)
    await s.flush()
    for n, d in enumerate(drafts, start=1):
        s.add(
            OrderLine(
                order_id=order.id,
                line_no=d.line_no if d.line_no is not None else n,
                listing_id=d.listing_id,
                item_name=d.item_name,
                brand=d.brand,
                spec_model=d.spec_model,
                category_code=d.category_code,
                category_version=d.category_version,
                unit=d.unit,
                quantity=d.quantity,
                listed_unit_price=d.listed_unit_price,
                unit_price=d.unit_price,
                amount=round_money(d.unit_price * d.quantity),
            )
        )
    return order


async def _checkout(
    db: Database, settings: Settings, who: Principal, req: CheckoutRequest, key: str
) -> list[Order]:
    assert who.org_id is not None
    agreed = {lid: unit_price_of(p) for lid, p in req.agreed_prices}
    async with db.write() as tx:
        s = tx.session
        if req.items:
            wanted = [(lid, quantity_of(q)) for lid, q in req.items]
            kept = await s.execute(
                select(CartItem.listing_id, CartItem.unit_price).where(
                    CartItem.user_id == who.user_id,
                    CartItem.listing_id.in_([lid for lid, _ in wanted if lid not in agreed]),
                )
            )
            agreed = {**{lid: price for lid, price in kept.all()}, **agreed}
        else:
            cart = await cart_of(s, who.user_id)
            wanted = [(c.item.listing_id, c.item.quantity) for c in cart]
            agreed = {c.item.listing_id: c.item.unit_price for c in cart}
        digest = _digest(req, wanted)
        if not wanted:
            existing = await s.scalar(
                select(Checkout.id).where(Checkout.user_id == who.user_id, Checkout.idempotency_key == key)
            )
            if existing is not None:  # the cart was emptied by the first request with this key
                raise _Replay(digest)
            raise InvalidInput("购物车是空的", code="cart_empty")
        if len(wanted) > MAX_ITEMS:
            raise InvalidInput(f"一次最多结算 {MAX_ITEMS} 种商品", code="too_many_items")
        if len({lid for lid, _ in wanted}) != len(wanted):
            raise InvalidInput("同一商品不能重复出现", code="duplicate_item")
        line, ck, address = await begin(s, who, key, digest, req.budget_line_id, req.delivery_address)

        listings = {
            x.id: x
            for x in (
                await s.execute(select(Listing).where(Listing.id.in_([lid for lid, _ in wanted])))
            ).scalars()
        }
        by_supplier: dict[uuid.UUID, list[tuple[Listing, Decimal]]] = defaultdict(list)
        for lid, q in wanted:
            listing = listings.get(lid)
            if listing is None or listing.status != ListingStatus.LIVE:
                raise RuleViolation("购物车中有商品已下架，请移除后再下单", code="listing_not_live")
            by_supplier[listing.supplier_org_id].append((listing, q))
        await require_active_suppliers(s, by_supplier)

        # Lock order, the same on every path that touches both: the budget line, then listings
        # by id. Checkouts against one line queue here instead of deadlocking on stock.
        await budgets.lock_line(s, line.id)
        for lst, q in sorted(((listings[lid], q) for lid, q in wanted), key=lambda x: x[0].id):
            await _take_stock(s, lst, q)
            # The price and state under the row's lock: a change committed since the read above
            # is seen here, and none can commit before this transaction ends.
            await s.refresh(lst)
            if lst.status != ListingStatus.LIVE:
                raise RuleViolation("购物车中有商品已下架，请移除后再下单", code="listing_not_live")
        rises = [
            PriceRise(lid, listings[lid].name, agreed[lid], listings[lid].price)
            for lid, _ in wanted
            if lid in agreed and listings[lid].price > agreed[lid]
        ]
        if rises:
            raise price_changed(rises)
        check_purchases(settings, [(listings[lid], q) for lid, q in wanted])

        orders: list[Order] = []
        for sid, items in by_supplier.items():
            drafts = [
                LineDraft(
                    lst.name,
                    lst.brand,
                    lst.spec_model,
                    lst.category_code,
                    lst.category_version,
                    lst.unit,
                    q,
                    lst.price,
                    lst.price,
                    lst.id,
                )
                for lst, q in items
            ]
            orders.append(
                await open_order(
                    s,
                    settings,
                    who,
                    line,
                    ck,
                    sid,
                    drafts,
                    mode="supermarket",
                    address=address,
                    note=req.note,
                )
            )
        bought = [lid for lid, _ in wanted]
        await s.execute(
            delete(CartItem).where(CartItem.user_id == who.user_id, CartItem.listing_id.in_(bought))
        )
    return orders


def check_purchases(settings: Settings, lines: list[tuple[Listing, Decimal]]) -> None:
    """The decentralized threshold is per purchase: lines of one checkout that are the same item
    (brand and model folded by `catalog.goods`), from one supplier or several, add up. The 品目 is
    not part of the key: the same server listed under two 品目 codes is still one purchase.
    A single line is one order's business (`open_order` checks every order)."""
    groups: dict[tuple[str, str], list[tuple[Listing, Decimal]]] = defaultdict(list)
    for lst, q in lines:
        groups[(lst.brand_key, lst.model_key)].append((lst, q))
    limit = settings.decentralized_threshold
    for same in groups.values():
        if len(same) < 2:
            continue
        total = sum((round_money(lst.price * q) for lst, q in same), Decimal(0))
        if total >= limit:
            first = same[0][0]
            raise RuleViolation(
                f"「{first.brand} {first.spec_model}」（品目 {first.category_code}）在本次下单中"
                f"共 {len(same)} 行、合计 {total:,.2f} 元，达到或超过分散采购限额标准 {limit:,.0f} 元。"
                "同一商品从多家供应商购买仍是一次采购，不能拆分下单，请依法采用其他采购方式",
                code="purchase_above_threshold",
                total=money_str(total),
                limit=money_str(limit),
                listing_ids=[str(lst.id) for lst, _ in same],
            )


async def require_active_suppliers(s: AsyncSession, supplier_ids: Iterable[uuid.UUID]) -> None:
    for o in (await s.execute(select(Organization).where(Organization.id.in_(list(supplier_ids))))).scalars():
        if o.status != OrgStatus.ACTIVE:
            raise RuleViolation(f"供应商 {o.name} 已被冻结，不能下单", code="supplier_frozen")


async def _take_stock(s: AsyncSession, listing: Listing, q: Decimal) -> None:
    t = _LISTINGS
    milli = literal(int(q * 1000), BigInteger())
    result = await s.execute(
        update(t).where(t.c.id == listing.id, t.c.stock >= milli).values(stock=t.c.stock - milli)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RuleViolation(f"商品「{listing.name}」库存不足", code="out_of_stock")


async def _count_sale(s: AsyncSession, order: Order, delta: int) -> None:
    t = _LISTINGS
    for line in sorted(order.lines, key=lambda x: x.listing_id or uuid.UUID(int=0)):
        if line.listing_id:
            await s.execute(
                update(t).where(t.c.id == line.listing_id).values(sales_count=t.c.sales_count + delta)
            )


async def _return_stock(s: AsyncSession, order: Order) -> None:
    t = _LISTINGS
    for line in sorted(order.lines, key=lambda x: x.listing_id or uuid.UUID(int=0)):
        if line.listing_id:
            milli = literal(int(line.quantity * 1000), BigInteger())
            await s.execute(update(t).where(t.c.id == line.listing_id).values(stock=t.c.stock + milli))


# ---------------------------------------------------------------- reading


def can_see(who: Principal, order: Order) -> bool:
    if who.role in ("center", "regulator", "admin"):
        return True
    return who.org_id in (order.buyer_org_id, order.supplier_org_id)


async def get_order(session: AsyncSession, who: Principal, order_id: uuid.UUID) -> Order:
    order = await session.get(Order, order_id)
    # Someone else's order is "not found", not "forbidden": its existence is not disclosed.
    if order is None or not can_see(who, order):
        raise NotFound("订单不存在", code="order_not_found")
    return order


async def list_orders(
    session: AsyncSession, who: Principal, status: str | None, page: int, per_page: int
) -> tuple[int, list[Order]]:
    stmt = select(Order)
    if who.role == "buyer":
        stmt = stmt.where(Order.buyer_org_id == who.org_id)
    elif who.role == "supplier":
        stmt = stmt.where(Order.supplier_org_id == who.org_id)
    if status:
        stmt = stmt.where(Order.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Order.placed_at.desc(), Order.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars().unique())


async def events_of(session: AsyncSession, order_id: uuid.UUID) -> list[OrderEvent]:
    rows = await session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.at)
    )
    return list(rows.scalars())


# ---------------------------------------------------------------- transitions


def record_event(s: AsyncSession, order: Order, who: Principal | None, action: str, detail: str = "") -> None:
    """One line of an order's history, by a person or (`who` None) by the mall itself."""
    label = f"{who.org_name}·{who.display_name}" if who else "系统"
    s.add(
        OrderEvent(
            order_id=order.id,
            at=clock.now(),
            actor_user_id=who.user_id if who else None,
            actor_label=label,
            action=action,
            detail=detail,
        )
    )


async def _load_for_change(tx: Tx, who: Principal, order_id: uuid.UUID, side: str) -> Order:
    order = (
        (await tx.session.execute(select(Order).where(Order.id == order_id).with_for_update(of=Order)))
        .scalars()
        .first()
    )
    if order is None or not can_see(who, order):
        raise NotFound("订单不存在", code="order_not_found")
    party = {"buyer": order.buyer_org_id, "supplier": order.supplier_org_id}.get(side)
    if side in ("buyer", "supplier") and (who.role != side or who.org_id != party):
        raise Forbidden(
            "只有本订单的{}可以执行此操作".format("采购人" if side == "buyer" else "供应商"),
            code="not_your_order",
        )
    if side == "regulator" and who.role != "regulator":
        raise Forbidden("只有财政监管部门可以执行此操作", code="regulator_only")
    order.version += 1
    return order


def _expect(order: Order, *states: str) -> None:
    if order.status not in states:
        raise Conflict(
            f"订单当前状态为「{ORDER_STATUS_LABELS[OrderStatus(order.status)]}」，不能执行此操作",
            code="invalid_state",
            current_status=order.status,
        )


async def confirm(
    db: Database, who: Principal, order_id: uuid.UUID, prices: dict[uuid.UUID, str] | None = None
) -> Order:
    try:
        return await _confirm(db, who, order_id, prices)
    except IntegrityError:
        return await _confirm(db, who, order_id, prices)  # a contract number clashed: new number


async def _confirm(
    db: Database, who: Principal, order_id: uuid.UUID, prices: dict[uuid.UUID, str] | None
) -> Order:
    """The supplier accepts the order, optionally at lower unit prices (never higher). The deal is made:
    the e-contract is numbered and the transaction record is staged for publication."""
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "supplier")
        _expect(order, S.PLACED)
        now = clock.now()
        if order.confirm_due_at <= now:
            raise Conflict("订单已超过确认期限，将被自动取消", code="confirm_deadline_passed")
        prices = prices or {}
        unknown = set(prices) - {line.id for line in order.lines}
        if unknown:
            raise InvalidInput("价格调整中含有不属于本订单的明细", code="unknown_line")
        changed = []
        for line in order.lines:
            if line.id not in prices or str(prices[line.id]).strip() == "":
                continue
            try:
                p = money(prices[line.id])
            except MoneyError:
                raise InvalidInput(
                    "单价格式不正确，应为最多两位小数的金额", code="invalid_price", field="prices"
                ) from None
            if p <= 0:
                raise InvalidInput("单价必须大于0", code="invalid_price", field="prices")
            if p > line.unit_price:
                raise RuleViolation(
                    f"确认时只能降价：「{line.item_name}」原单价 {line.unit_price:,.2f} 元，不能改为 {p:,.2f} 元",
                    code="price_increase_refused",
                )
            if p != line.unit_price:
                changed.append(f"{line.item_name} {line.unit_price:,.2f}→{p:,.2f}")
                line.unit_price = p
                line.amount = round_money(p * line.quantity)
        new_total = sum((line.amount for line in order.lines), Decimal(0))
        if new_total < order.reserved_amount:
            await budgets.shrink(
                tx.session, order.budget_line_id, order.reserved_amount - new_total, order.id
            )
            order.reserved_amount = new_total
        order.total_amount = new_total
        order.status = S.CONFIRMED
        order.confirmed_at = now
        order.contract_no = _new_number("HT")
        await tx.session.flush()
        await _count_sale(tx.session, order, +1)
        order.disclosure_id = disclosure.stage(tx, disclosure.deal_payload(order))
        detail = f"确认订单，成交金额 {new_total:,.2f} 元，生成电子合同 {order.contract_no}"
        if changed:
            detail += "；议价：" + "，".join(changed)
        record_event(tx.session, order, who, "confirmed", detail)
    return order


async def decline(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    reason = _reason(reason)
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "supplier")
        _expect(order, S.PLACED)
        await _cancel(tx, order, who, f"供应商拒绝接单：{reason}", publish=False)
    return order


async def cancel(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    """The buyer withdraws an order the supplier has not confirmed yet."""
    reason = _reason(reason)
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "buyer")
        if order.status != S.PLACED:
            if order.status == S.CONFIRMED:
                raise Conflict("供应商已确认订单，取消需经对方同意，请提出取消申请", code="consent_required")
            _expect(order, S.PLACED)
        await _cancel(tx, order, who, f"采购人取消订单：{reason}", publish=False)
    return order


async def request_cancel(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    reason = _reason(reason)
    async with db.write() as tx:
        order = await _load_for_change(
            tx, who, order_id, who.role if who.role in ("buyer", "supplier") else "buyer"
        )
        if order.status in (S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED, S.PAID):
            raise Conflict("合同已备案，只能由财政监管部门作废", code="contract_filed")
        _expect(order, S.CONFIRMED)
        if order.cancel_requested_by:
            raise Conflict("已有待处理的取消申请", code="cancel_request_pending")
        order.cancel_requested_by = who.role
        order.cancel_request_reason = reason
        record_event(tx.session, order, who, "cancel_requested", f"申请取消：{reason}")
    return order


async def answer_cancel(db: Database, who: Principal, order_id: uuid.UUID, agree: bool) -> Order:
    async with db.write() as tx:
        order = await _load_for_change(
            tx, who, order_id, who.role if who.role in ("buyer", "supplier") else "buyer"
        )
        _expect(order, S.CONFIRMED)
        if not order.cancel_requested_by:
            raise Conflict("没有待处理的取消申请", code="no_cancel_request")
        if order.cancel_requested_by == who.role:
            raise Forbidden("取消申请须由对方处理", code="other_party_must_answer")
        if agree:
            reason = f"双方协商取消：{order.cancel_request_reason}"
            await _cancel(tx, order, who, reason, publish=True)
        else:
            record_event(tx.session, order, who, "cancel_refused", "不同意取消")
            order.cancel_requested_by = None
            order.cancel_request_reason = ""
    return order


async def void(db: Database, who: Principal, order_id: uuid.UUID, reason: str) -> Order:
    """Only the regulator can void an order whose contract has been filed."""
    reason = _reason(reason)
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "regulator")
        _expect(order, S.CONFIRMED, S.CONTRACTED, S.SHIPPED, S.RECEIVED, S.ACCEPTED)
        await _cancel(tx, order, who, f"财政监管部门作废合同：{reason}", publish=True)
    return order


async def _cancel(tx: Tx, order: Order, who: Principal | None, reason: str, *, publish: bool) -> None:
    was = order.status
    order.status = S.CANCELLED
    order.cancelled_at = clock.now()
    order.cancel_reason = reason  # a fixed prefix and a reason of at most REASON_MAX: the column holds both
    if order.reserved_amount > 0:
        await budgets.release(tx.session, order.budget_line_id, order.reserved_amount, order.id)
        order.reserved_amount = Decimal(0)
    if was in (S.PLACED, S.CONFIRMED, S.CONTRACTED):
        await _return_stock(tx.session, order)  # goods that left the supplier do not come back on sale
    if was != S.PLACED:
        await _count_sale(tx.session, order, -1)  # the deal is undone
    record_event(tx.session, order, who, "cancelled", reason)
    if publish and was != S.PLACED and order.disclosure_id:
        # The deal was published (or is about to be): a cancellation record amends it, never a deletion.
        disclosure.stage(tx, disclosure.deal_payload(order, kind="cancellation", amends=order.disclosure_id))


async def file_contract(db: Database, who: Principal, order_id: uuid.UUID) -> Order:
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "buyer")
        _expect(order, S.CONFIRMED)
        if order.cancel_requested_by:
            raise Conflict("有待处理的取消申请，请先处理", code="cancel_request_pending")
        order.status = S.CONTRACTED
        order.contract_filed_at = clock.now()
        record_event(tx.session, order, who, "contract_filed", f"签订并备案电子合同 {order.contract_no}")
    return order


async def ship(db: Database, who: Principal, order_id: uuid.UUID, note: str) -> Order:
    note = text(note, "发货说明", fields.SHIPPING_NOTE_MAX, field="note")
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "supplier")
        _expect(order, S.CONTRACTED)
        order.status = S.SHIPPED
        order.shipped_at = clock.now()
        order.shipping_note = note
        record_event(
            tx.session,
            order,
            who,
            "shipped",
            f"发货：{order.shipping_note}" if order.shipping_note else "发货",
        )
    return order


async def receive(db: Database, who: Principal, order_id: uuid.UUID) -> Order:
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "buyer")
        _expect(order, S.SHIPPED)
        order.status = S.RECEIVED
        order.received_at = clock.now()
        record_event(tx.session, order, who, "received", "确认收货")
    return order


async def accept(db: Database, who: Principal, order_id: uuid.UUID, score: int, comment: str) -> Order:
    if not 1 <= score <= 5:
        raise InvalidInput("评价分数应为1至5分", code="invalid_score", field="score")
    comment = text(comment, "验收评价", NOTE_MAX, multiline=True, field="comment")
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "buyer")
        _expect(order, S.RECEIVED)
        order.status = S.ACCEPTED
        order.accepted_at = clock.now()
        order.evaluation_score = score
        order.evaluation_comment = comment
        record_event(
            tx.session,
            order,
            who,
            "accepted",
            f"验收合格，评价 {score} 分" + (f"：{order.evaluation_comment}" if comment else ""),
        )
    return order


async def pay(
    db: Database, settings: Settings, who: Principal, order_id: uuid.UUID, payment_ref: str
) -> Order:
    ref = text(payment_ref, "支付凭证号", fields.SHORT_MAX, field="payment_ref")
    if not ref:
        raise InvalidInput("请填写支付凭证号", code="payment_ref_required", field="payment_ref")
    async with db.write() as tx:
        order = await _load_for_change(tx, who, order_id, "buyer")
        _expect(order, S.ACCEPTED)
        now = clock.now()
        assert order.accepted_at is not None
        await budgets.consume(
            tx.session, order.budget_line_id, order.reserved_amount, order.total_amount, order.id
        )
        order.reserved_amount = Decimal(0)
        order.status = S.PAID
        order.paid_at = now
        order.payment_ref = ref
        order.payment_days = (now - order.accepted_at).days
        # The 30-day rule protects small and medium suppliers (保障中小企业款项支付条例).
        order.payment_overdue = order.supplier.is_sme and order.payment_days > settings.payment_due_days
        detail = f"付款 {order.total_amount:,.2f} 元，凭证 {ref}，验收后第 {order.payment_days} 天"
        if order.payment_overdue:
            detail += f"（超过 {settings.payment_due_days} 天付款期限）"
        record_event(tx.session, order, who, "paid", detail)
    return order


async def cancel_overdue(db: Database, limit: int = 200) -> int:
    """Cancel placed orders whose confirmation deadline passed, releasing their budget."""
    cancelled = 0
    async with db.read() as s:
        ids = list(
            (
                await s.execute(
                    select(Order.id)
                    .where(Order.status == S.PLACED, Order.confirm_due_at <= clock.now())
                    .limit(limit)
                )
            ).scalars()
        )
    for order_id in ids:
        async with db.write() as tx:
            order = (
                (
                    await tx.session.execute(
                        select(Order).where(Order.id == order_id).with_for_update(of=Order)
                    )
                )
                .scalars()
                .first()
            )
            if order is None or order.status != S.PLACED or order.confirm_due_at > clock.now():
                continue
            days = (order.confirm_due_at - order.placed_at).days
            await _cancel(tx, order, None, f"供应商超过{days}天未确认，系统自动取消", publish=False)
            cancelled += 1
    return cancelled


def _reason(reason: str) -> str:
    reason = text(reason, "原因", fields.REASON_MAX, multiline=True, field="reason")
    if len(reason) < 2:
        raise InvalidInput(
            f"请填写原因（2至{fields.REASON_MAX}个字符）", code="reason_required", field="reason"
        )
    return reason


def payment_state(order: Order, settings: Settings) -> str:
    """'', 'due_soon' (warned at 25 days), 'overdue' (flagged at 30) for an accepted, unpaid order."""
    if order.status != S.ACCEPTED or order.accepted_at is None or not order.supplier.is_sme:
        return ""
    days = (clock.now() - order.accepted_at).days
    if days > settings.payment_due_days:
        return "overdue"
    if days >= settings.payment_warn_days:
        return "due_soon"
    return ""
