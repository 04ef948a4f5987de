"""The buyer's cart page and its forms: add, change, accept a new price, check out."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from mall import budgets, cart
from mall.core import clock
from mall.core.errors import Conflict, DomainError, InvalidInput
from mall.core.guards import allow
from mall.site.cart_routes import Placed, place
from mall.structs import CartAdd, CartPriceForm, CartQuantityForm, CheckoutForm
from mall.web import forms
from mall.web.deps import UserCall
from mall.web.helpers import Form, came_from, flash, pop_form

# What a refused checkout form keeps (the key is drawn again with the page).
CHECKOUT_KEPT = ("budget_line_id", "delivery_address", "note")


class CartPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/cart", opt=allow("buyer"))
    async def cart_page(self, call: UserCall) -> Template:
        assert call.me.org_id
        async with call.db.read() as s:
            lines = await cart.cart_of(s, call.me.user_id)
            lines_budget = [
                b
                for b in await budgets.lines_of(s, call.me.org_id)
                if b.fiscal_year == clock.local_date(clock.now()).year
            ]
        groups: dict[uuid.UUID, list[cart.CartLine]] = {}
        for line in lines:
            groups.setdefault(line.listing.supplier_org_id, []).append(line)
        totals = {sid: sum((x.amount for x in g), Decimal(0)) for sid, g in groups.items()}
        grand = sum(totals.values(), Decimal(0))
        return call.render(
            "cart.html",
            groups=groups,
            totals=totals,
            grand=grand,
            risen=[x for x in lines if x.price_risen],
            budget_lines=lines_budget,
            checkout_key=secrets.token_urlsafe(16),
            form=pop_form(call.request),
            threshold=call.settings.decentralized_threshold,
        )

    @post("/cart/add", opt=allow("buyer"))
    async def cart_add(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> None:
            form = forms.decode(CartAdd, data)
            await cart.add_to_cart(call.db, call.me, form.listing_id, str(form.quantity), form.unit_price)

        return await call.act(go, "已加入购物车", came_from(call.request, "/cart"))

    @post("/cart/accept-price", opt=allow("buyer"))
    async def cart_accept_price(self, call: UserCall, data: Form) -> Redirect:
        """The buyer accepts the new price of an item whose price rose since it went into the cart."""

        async def go() -> None:
            form = forms.decode(CartPriceForm, data)
            await cart.accept_cart_price(call.db, call.me, form.listing_id, form.unit_price)

        return await call.act(go, "已确认新价格", "/cart")

    @post("/cart/update", opt=allow("buyer"))
    async def cart_update(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> None:
            form = forms.decode(CartQuantityForm, data)
            await cart.set_cart_quantity(call.db, call.me, form.listing_id, str(form.quantity))

        return await call.act(go, "购物车已更新", "/cart")

    @post("/checkout", opt=allow("buyer"))
    async def checkout(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> Placed:
            if not data.get("budget_line_id"):
                raise InvalidInput("请选择预算指标", code="budget_line_required", field="budget_line_id")
            form = forms.decode(CheckoutForm, data)
            try:
                done = await place(call.db, call.settings, call.me, form, form.checkout_key)
            except DomainError as exc:
                if exc.code != "idempotency_key_reused":
                    raise
                # Said in the page's words: the form was sent before with other contents.
                raise Conflict("这张购物车已经提交过，请刷新购物车页面确认后再下单", code=exc.code) from None
            for warning in done.warnings:
                flash(call.request, warning, "warn")
            return done

        return await call.act(
            go,
            lambda done: (
                f"下单成功：共 {len(done.orders)} 张订单，等待供应商确认"
                f"（{call.settings.auto_cancel_days} 天内未确认将自动取消）"
            ),
            "/cart",
            keep={k: data.get(k, "") for k in CHECKOUT_KEPT},
            to=lambda done: f"/orders/{done.orders[0].id}" if len(done.orders) == 1 else "/orders",
        )


ROUTES = [CartPages]
