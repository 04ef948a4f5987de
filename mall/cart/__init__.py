"""The buyer's cart: goods kept at the price the buyer saw, so a price that rose since needs its
consent before checkout (`mall.orders`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Listing, ListingStatus
from mall.cart.models import CartItem
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database, retried, retried_if_rolled_back
from mall.core.errors import Conflict, InvalidInput, NotFound, RuleViolation
from mall.core.money import MoneyError, money, money_str, round_money, typed_negative, whole_quantity
from mall.sanctions import standing


@dataclass(frozen=True)
class CartLine:
    item: CartItem
    listing: Listing

    @property
    def amount(self) -> Decimal:
        return round_money(self.listing.price * self.item.quantity)

    @property
    def price_risen(self) -> bool:
        """The listing costs more now than the buyer saw: checkout needs its consent first."""
        return self.listing.price > self.item.unit_price


async def cart_of(session: AsyncSession, user_id: uuid.UUID) -> list[CartLine]:
    rows = await session.execute(
        select(CartItem, Listing)
        .join(Listing, Listing.id == CartItem.listing_id)
        .where(CartItem.user_id == user_id)
        .order_by(Listing.supplier_org_id, CartItem.added_at)
    )
    return [CartLine(item, listing) for item, listing in rows.all()]


@dataclass(frozen=True)
class PriceRise:
    listing_id: uuid.UUID
    name: str
    old: Decimal  # what the buyer saw or agreed to
    new: Decimal  # the price now

    def as_dict(self) -> dict[str, str]:
        return {
            "listing_id": str(self.listing_id),
            "name": self.name,
            "old_price": money_str(self.old),
            "new_price": money_str(self.new),
        }


def price_changed(rises: list[PriceRise], then: str = "请确认新价格后再下单") -> Conflict:
    """409 `price_changed`: the price rose since the buyer saw it; `changes` names old and new prices."""
    listed = "；".join(f"「{r.name}」由 {r.old:,.2f} 元上涨为 {r.new:,.2f} 元" for r in rises[:5])
    more = f"等 {len(rises)} 种商品" if len(rises) > 5 else ""
    return Conflict(
        f"商品价格已变动：{listed}{more}。{then}",
        code="price_changed",
        changes=[r.as_dict() for r in rises],
    )


def unit_price_of(raw: str) -> Decimal:
    """A unit price as typed (the price the buyer saw or agreed to)."""
    try:
        value = money(raw)
    except MoneyError:
        if typed_negative(raw):
            raise InvalidInput("单价须大于 0", code="invalid_price", field="unit_price") from None
        raise InvalidInput(
            "单价格式不正确，应为最多两位小数的金额", code="invalid_price", field="unit_price"
        ) from None
    if value <= 0:
        raise InvalidInput("单价须大于 0", code="invalid_price", field="unit_price")
    return value


@retried_if_rolled_back
async def add_to_cart(
    db: Database, who: Principal, listing_id: uuid.UUID, qty: str, seen_price: str | None = None
) -> None:
    """Put goods in the cart at the price they cost now, which is what the buyer sees. `seen_price`
    is the price the page (or client) showed: if the listing costs more now, nothing is added."""
    q = quantity_of(qty)
    seen = None if seen_price in (None, "") else unit_price_of(str(seen_price))
    async with db.write() as tx:
        listing = await _live_listing(tx.session, listing_id)
        if seen is not None and listing.price > seen:
            raise price_changed(
                [PriceRise(listing.id, listing.name, seen, listing.price)],
                "请刷新页面，确认新价格后再加入购物车",
            )
        item = await _item_of(tx.session, who, listing_id)
        total = q + (item.quantity if item else 0)
        if total > listing.stock:
            raise RuleViolation(f"库存不足：当前库存 {listing.stock} {listing.unit}", code="out_of_stock")
        if item:
            item.quantity = total
            if seen is not None:  # added again at the price shown now: that price is agreed
                item.unit_price = listing.price
        else:
            tx.session.add(
                CartItem(
                    user_id=who.user_id,
                    listing_id=listing_id,
                    quantity=q,
                    unit_price=listing.price,
                    added_at=clock.now(),
                )
            )


@retried
async def accept_cart_price(db: Database, who: Principal, listing_id: uuid.UUID, price_raw: str) -> None:
    """The buyer accepts the price an item in its cart costs now. The price it names must be that
    price: one that moved again meanwhile is refused with the newest price."""
    accepted = unit_price_of(price_raw)
    async with db.write() as tx:
        item = await _item_of(tx.session, who, listing_id)
        if item is None:
            raise NotFound("购物车中没有该商品", code="cart_item_not_found")
        listing = await _live_listing(tx.session, listing_id)
        if listing.price != accepted:
            raise Conflict(
                f"「{listing.name}」现价为 {listing.price:,.2f} 元，不是 {accepted:,.2f} 元，请刷新后再确认",
                code="price_changed",
                changes=[PriceRise(listing.id, listing.name, accepted, listing.price).as_dict()],
            )
        item.unit_price = listing.price


@retried
async def set_cart_quantity(db: Database, who: Principal, listing_id: uuid.UUID, qty: str) -> None:
    async with db.write() as tx:
        item = await _item_of(tx.session, who, listing_id)
        if item is None:
            raise NotFound("购物车中没有该商品", code="cart_item_not_found")
        if str(qty).strip() in ("0", ""):
            await tx.session.delete(item)
            return
        q = quantity_of(qty)
        listing = await tx.session.get(Listing, listing_id)
        if listing is not None and q > listing.stock:
            raise RuleViolation(f"库存不足：当前库存 {listing.stock} {listing.unit}", code="out_of_stock")
        item.quantity = q


async def _live_listing(session: AsyncSession, listing_id: uuid.UUID) -> Listing:
    listing = await session.get(Listing, listing_id)
    if listing is None or listing.status != ListingStatus.LIVE:
        raise NotFound("商品不存在或已下架", code="listing_not_found")
    await standing.require_good_standing(session, [listing.supplier_org_id], "加入购物车或下单")
    return listing


async def _item_of(session: AsyncSession, who: Principal, listing_id: uuid.UUID) -> CartItem | None:
    stmt = select(CartItem).where(CartItem.user_id == who.user_id, CartItem.listing_id == listing_id)
    return (await session.execute(stmt)).scalar_one_or_none()


def quantity_of(raw: str) -> Decimal:
    """A quantity as typed: goods are bought in whole units."""
    try:
        return whole_quantity(raw)
    except MoneyError:
        raise InvalidInput(
            "数量应为正整数（1 到 9999999）", code="invalid_quantity", field="quantity"
        ) from None
