"""The supermarket's API for buyers: the cart and the checkout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody

from mall import cart, orders, oversight
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.guards import allow
from mall.core.money import money_str, quantity_str
from mall.core.settings import Settings
from mall.orders.models import Order
from mall.structs import CartAdd, CartLineOut, CartPriceIn, CartQuantity, CheckoutIn, CheckoutOut, OrderOut
from mall.web.deps import UserCall
from mall.web.helpers import IdemKey

TAGS = ["网上超市"]


@dataclass(frozen=True)
class Placed:
    orders: list[Order]  # read again after the commit, with their lines and parties
    replayed: bool  # the same key was used before: these are the orders it made then
    warnings: list[str]  # split purchases the buyer is told about


async def place(db: Database, settings: Settings, me: Principal, data: CheckoutIn, key: str) -> Placed:
    """Checkout, as the API and the cart page do it: one order per supplier."""
    req = orders.CheckoutRequest(
        budget_line_id=data.budget_line_id,
        idempotency_key=key,
        items=tuple((i.listing_id, str(i.quantity)) for i in data.items),
        delivery_address=data.delivery_address,
        note=data.note,
        agreed_prices=tuple((i.listing_id, i.unit_price) for i in data.items if i.unit_price is not None),
    )
    placed, replayed = await orders.checkout(db, settings, me, req)
    return await _placed_view(db, settings, me, [o.id for o in placed], replayed)


@retried  # a read: safe to run again (the orders have committed)
async def _placed_view(
    db: Database, settings: Settings, me: Principal, order_ids: list[uuid.UUID], replayed: bool
) -> Placed:
    async with db.read() as s:
        fresh = [await orders.get_order(s, me, oid) for oid in order_ids]
        warnings = await oversight.split_purchase_warnings(s, settings, fresh)
    return Placed(fresh, replayed, warnings)


class CartApi(Controller):
    path = "/api"
    tags = TAGS

    @get(
        "/cart",
        opt=allow("buyer"),
        summary="购物车：unit_price 为现价，agreed_unit_price 为加入（或确认）时的价格",
        description="price_risen=true 表示现价高于加入购物车时的价格：须先确认新价格（POST /api/cart/items/{id}/price），否则下单返回 409 price_changed。",
    )
    async def get_cart(self, call: UserCall) -> list[CartLineOut]:
        async with call.db.read() as s:
            return [
                CartLineOut(
                    c.listing.id,
                    c.listing.name,
                    c.listing.supplier.name,
                    quantity_str(c.item.quantity),
                    money_str(c.listing.price),
                    money_str(c.amount),
                    money_str(c.item.unit_price),
                    c.price_risen,
                )
                for c in await cart.cart_of(s, call.me.user_id)
            ]

    @post(
        "/cart/items",
        opt=allow("buyer"),
        status_code=204,
        summary="加入购物车（按现价；unit_price 为页面显示的价格，现价更高时 409 price_changed）",
    )
    async def cart_add(self, call: UserCall, data: JSONBody[CartAdd]) -> None:
        await cart.add_to_cart(call.db, call.me, data.listing_id, str(data.quantity), data.unit_price)

    @put("/cart/items/{listing_id:uuid}", opt=allow("buyer"), status_code=204)
    async def cart_set(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[CartQuantity]
    ) -> None:
        await cart.set_cart_quantity(call.db, call.me, listing_id, str(data.quantity))

    @post(
        "/cart/items/{listing_id:uuid}/price",
        opt=allow("buyer"),
        status_code=204,
        summary="确认购物车中商品的新价格（须等于现价，否则 409 price_changed）",
    )
    async def cart_accept_price(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: JSONBody[CartPriceIn]
    ) -> None:
        await cart.accept_cart_price(call.db, call.me, listing_id, data.unit_price)

    @delete("/cart/items/{listing_id:uuid}", opt=allow("buyer"), status_code=204)
    async def cart_remove(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> None:
        await cart.set_cart_quantity(call.db, call.me, listing_id, "0")

    @post(
        "/checkout",
        opt=allow("buyer"),
        summary="下单：每个供应商一张订单；需 Idempotency-Key 请求头",
        description=(
            "items 为空时结算购物车。items[].unit_price 为客户端确认的单价：现价更高时整单拒绝（409 price_changed，"
            "changes 列出每种商品的 old_price 与 new_price），现价更低时按现价成交；未给出时以购物车中保存的价格为准。"
            "同一商品（品目、品牌、型号相同）不论来自几家供应商，合计须低于分散采购限额（422 purchase_above_threshold，"
            "含 total 与 limit）。以同一 Idempotency-Key 重试时返回首次下单的订单（200，replayed=true）。"
        ),
    )
    async def checkout(
        self, call: UserCall, data: JSONBody[CheckoutIn], idempotency_key: IdemKey
    ) -> Response[CheckoutOut]:
        done = await place(call.db, call.settings, call.me, data, idempotency_key)
        body = CheckoutOut(
            replayed=done.replayed, orders=[OrderOut.of(o) for o in done.orders], warnings=done.warnings
        )
        return Response(body, status_code=200 if done.replayed else 201)


ROUTES = [CartApi]
