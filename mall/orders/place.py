"""Placing orders: the supermarket's checkout, the start every way of ordering shares (idempotency,
the budget line, the decentralized threshold) and the orders a confirmed award opens.

Each checkout runs in one write transaction that reserves the budget, takes the stock and stages the
outbox; it is all or nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from sqlalchemy import BigInteger, Table, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import policy
from catalog.models import Listing, ListingStatus
from mall import budgets
from mall.budgets import scope as budget_scope
from mall.budgets.models import BudgetLine
from mall.cart import PriceRise, cart_of, price_changed, quantity_of, unit_price_of
from mall.cart.models import CartItem
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import Conflict, InvalidInput, RuleViolation
from mall.core.fields import ADDRESS_MAX, NOTE_MAX, text
from mall.core.models import Organization, OrgStatus
from mall.core.money import money_str, round_money
from mall.core.settings import Settings
from mall.credit import checks as credit_checks
from mall.ledger import disclosure
from mall.orders.events import record_event
from mall.orders.models import Checkout, Order, OrderLine, OrderStatus
from mall.sanctions import standing
from mall.sme.current import size_on as sme_size_on

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
    return request_digest(body)


def request_digest(body: Mapping[str, object]) -> str:
    """The fingerprint of an order request, kept with its checkout: a retry under the same key must
    be the same request. `body` holds the request's fields as JSON values."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def new_number(prefix: str) -> str:
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
            return await db.retrying(lambda: attempt(key)), False
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


@retried  # a read: safe to run again
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
    """A key already used: answer with the orders it made (caught by `idempotent`)."""

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
    green: str = ""  # the listing's certificates in force (catalog.policy.green_of)
    origin: str = ""  # the listing's declared origin; "" for what is not a listing

    def line(self, line_no: int) -> OrderLine:
        return OrderLine(
            line_no=line_no,
            listing_id=self.listing_id,
            item_name=self.item_name,
            brand=self.brand,
            spec_model=self.spec_model,
            category_code=self.category_code,
            category_version=self.category_version,
            unit=self.unit,
            quantity=self.quantity,
            listed_unit_price=self.listed_unit_price,
            unit_price=self.unit_price,
            amount=round_money(self.unit_price * self.quantity),
            green=self.green,
            origin=self.origin,
        )


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


def _new_order(
    ck: Checkout,
    mode: str,
    prefix: str,
    status: OrderStatus,
    buyer: tuple[uuid.UUID, uuid.UUID],
    supplier_id: uuid.UUID,
    budget_line_id: uuid.UUID,
    total: Decimal,
    at: datetime,
) -> Order:
    """The row every way of ordering starts from: numbered, between the buyer (unit, user) and the
    supplier, reserving `total` on the budget line, placed `at`."""
    return Order(
        order_no=new_number(prefix),
        mode=mode,
        status=status,
        buyer_org_id=buyer[0],
        buyer_user_id=buyer[1],
        supplier_org_id=supplier_id,
        budget_line_id=budget_line_id,
        checkout_id=ck.id,
        total_amount=total,
        reserved_amount=total,
        placed_at=at,
    )


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
    budget_scope.check(line.project_code, line.project_name, line.scope, (d.category_code for d in drafts))
    order = _new_order(
        ck, mode, ORDER_PREFIX[mode], S.PLACED, (who.org_id, who.user_id), supplier_id, line.id, total, now
    )
    order.id = uuid.uuid4()
    order.source_id = source_id
    # The buyer's region (a city regulator oversees its city's orders); the platform's if it has none.
    order.region_code = (
        await s.scalar(select(Organization.region_code).where(Organization.id == who.org_id))
    ) or settings.region_code
    order.delivery_address = address
    order.note = note
    order.confirm_due_at = now + timedelta(days=settings.auto_cancel_days)
    order.lines.extend(d.line(n) for n, d in enumerate(drafts, start=1))
    order.supplier_scale = await sme_size_on(s, supplier_id, clock.local_date(now))
    s.add(order)
    await credit_checks.at_order(s, supplier_id, order.order_no)  # 422 supplier_blacklisted
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
    buyer = (buyer_org_id, buyer_user_id)
    order = _new_order(
        checkout, mode, number_prefix, S.CONFIRMED, buyer, supplier_id, budget_line_id, total, at
    )
    order.source_id = source_id
    order.region_code = region_code
    order.note = note
    order.confirm_due_at = at
    order.confirmed_at = at
    order.contract_no = new_number("HT")
    order.supplier_scale = await sme_size_on(s, supplier_id, clock.local_date(at))
    s.add(order)
    await credit_checks.at_order(s, supplier_id, order.order_no)  # 422 supplier_blacklisted
    await s.flush()
    for n, d in enumerate(drafts, start=1):
        row = d.line(d.line_no if d.line_no is not None else n)
        row.order_id = order.id
        s.add(row)
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
        await require_energy_certified(s, [listings[lid] for lid, _ in wanted])

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
        today = clock.local_date(clock.now())
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
                    green=policy.green_of(
                        lst.energy_cert_no, lst.energy_cert_until, lst.eco_cert_no, lst.eco_cert_until, today
                    ),
                    origin=lst.origin,
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


async def require_energy_certified(s: AsyncSession, listings: list[Listing]) -> None:
    """财库〔2019〕9号 and 19号: in a 品目 where energy-saving products are mandatory, a listing without
    an energy certificate in force is refused while a certified listing of the same 品目 is live."""
    today = clock.local_date(clock.now())
    for lst in listings:
        item = policy.mandatory().get(lst.category_code)
        if item is None or policy.in_force(lst.energy_cert_no, lst.energy_cert_until, today):
            continue
        certified = await s.scalar(
            select(func.count())
            .select_from(Listing)
            .where(
                Listing.category_code == lst.category_code,
                Listing.status == ListingStatus.LIVE,
                Listing.energy_cert_no != "",
                Listing.energy_cert_until >= today,
            )
        )
        if certified:
            raise RuleViolation(
                f"「{lst.name}」属于政府强制采购节能产品品目「{item.name}」（{policy.MANDATORY_SOURCE}），"
                f"本商品无有效的节能产品认证证书；卖场中该品目已有 {certified} 件认证商品在售，请改选认证商品",
                code="energy_certificate_required",
            )


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
    """Every way of ordering asks: the suppliers are active and no sanction bars them."""
    supplier_ids = list(supplier_ids)
    for o in (await s.execute(select(Organization).where(Organization.id.in_(supplier_ids)))).scalars():
        if o.status != OrgStatus.ACTIVE:
            raise RuleViolation(f"供应商 {o.name} 已被冻结，不能下单", code="supplier_frozen")
    await standing.require_good_standing(s, supplier_ids, "向其下单")


async def _take_stock(s: AsyncSession, listing: Listing, q: Decimal) -> None:
    t = _LISTINGS
    milli = literal(int(q * 1000), BigInteger())
    result = await s.execute(
        update(t).where(t.c.id == listing.id, t.c.stock >= milli).values(stock=t.c.stock - milli)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RuleViolation(f"商品「{listing.name}」库存不足", code="out_of_stock")
