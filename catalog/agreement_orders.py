"""协议供货, ordering: a direct selection (直接选定) of one agreement product at or below its agreement
price; the supplier may lower it when confirming (议价), and from there the order runs the
supermarket's fulfilment flow (`mall.orders`). A call-off at or above the agreement's direct-order
limit goes to a second-stage competition (二次竞价): an inquiry or auction open only to the entered
suppliers, with the agreement prices as the ceiling (`bidding.service`, through `second_stage_ceiling`).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.agreement_queries import entered, get
from catalog.agreement_setup import check_call_off, in_force, parse_amount
from catalog.categories import CATALOG_VERSION
from catalog.models import AGREEMENT_STATUS_LABELS, Agreement, AgreementProduct
from mall import orders
from mall.cart import quantity_of
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import Forbidden, NotFound, RuleViolation
from mall.core.money import money_str, round_money
from mall.core.settings import Settings
from mall.orders.models import Order


class AgreementOrderIn(msgspec.Struct, forbid_unknown_fields=True):
    """An order under an agreement as the buyer asks for it (the API's body)."""

    product_id: uuid.UUID
    quantity: fields.QuantityText  # a malformed one: invalid_quantity, as on every way of ordering
    budget_line_id: uuid.UUID
    unit_price: fields.OptionalAmount = ""  # empty: the agreement price; lower is allowed, higher never
    delivery_address: fields.Address = ""
    note: fields.AgreementNote = ""  # "框架协议 <number>；" is put before it

    def keyed(self, idempotency_key: str) -> AgreementOrderRequest:
        """The order with the key that makes it idempotent."""
        return AgreementOrderRequest(**msgspec.structs.asdict(self), idempotency_key=idempotency_key)


class AgreementOrderRequest(AgreementOrderIn, forbid_unknown_fields=True, kw_only=True):
    """The order with the key that makes it idempotent (the API's header, the page's hidden field)."""

    idempotency_key: fields.IdempotencyKeyText


def _digest(req: AgreementOrderRequest) -> str:
    body = {k: str(v) for k, v in msgspec.structs.asdict(req).items() if k != "idempotency_key"}
    return orders.request_digest(body)


async def place_order(
    db: Database, settings: Settings, who: Principal, req: AgreementOrderRequest
) -> tuple[Order, bool]:
    """Direct selection (直接选定): one agreement product, at or below its agreement price."""
    if who.role != "buyer" or who.org_id is None:
        raise Forbidden("只有采购人可以下协议供货订单", code="forbidden")
    quantity = quantity_of(req.quantity)
    wanted = parse_amount(req.unit_price, "成交单价", "unit_price") if req.unit_price.strip() else None
    digest = _digest(req)

    async def attempt(key: str) -> list[Order]:
        async with db.write() as tx:
            s = tx.session
            # a retry of an order already made is answered with it, whatever changed since
            line, ck, address = await orders.begin(
                s, who, key, digest, req.budget_line_id, req.delivery_address
            )
            product = await s.get(AgreementProduct, req.product_id)
            if product is None or not product.active:
                raise NotFound("协议产品不存在或已停供", code="agreement_product_not_found")
            # a shared lock: a termination or expiry waits for this order (or this order sees it)
            a = await s.get(Agreement, product.agreement_id, with_for_update={"read": True})
            assert a is not None
            if not in_force(a, clock.local_date(clock.now())):
                raise RuleViolation(
                    f"框架协议 {a.number} 不在有效期内（{AGREEMENT_STATUS_LABELS[a.status]}），不能下单",
                    code="agreement_not_in_force",
                )
            price = product.price if wanted is None else wanted
            if price > product.price:
                raise RuleViolation(
                    f"成交单价 {price:,.2f} 元高于协议价 {product.price:,.2f} 元",
                    code="above_agreement_price",
                    max_allowed=money_str(product.price),
                )
            check_call_off(a, round_money(price * quantity))
            await orders.require_active_suppliers(s, [product.supplier_org_id])
            draft = orders.LineDraft(
                product.name,
                product.brand,
                product.spec_model,
                product.category_code,
                CATALOG_VERSION,
                product.unit,
                quantity,
                product.price,
                price,
            )
            order = await orders.open_order(
                s,
                settings,
                who,
                line,
                ck,
                product.supplier_org_id,
                [draft],
                mode="agreement",
                address=address,
                note=req.note,
                note_prefix=f"框架协议 {a.number}",
                note_max=fields.AGREEMENT_NOTE_MAX,
                source_id=a.id,
            )
            return [order]

    placed, replayed = await orders.idempotent(db, who, req.idempotency_key, attempt, digest)
    return placed[0], replayed


async def second_stage_ceiling(
    s: AsyncSession, agreement_id: uuid.UUID, items: list[tuple[str, Decimal]]
) -> tuple[Agreement, Decimal, list[uuid.UUID]]:
    """For a second-stage competition (二次竞价) under an agreement: the agreement in force, the
    highest ceiling it allows (per item, the highest agreement price in that 品目 times the
    quantity), and the entered suppliers, who alone may take part."""
    a = await get(s, agreement_id)
    if not in_force(a, clock.local_date(clock.now())):
        raise RuleViolation("该框架协议不在有效期内，不能发起二次竞价", code="agreement_not_in_force")
    total = Decimal(0)
    for code, quantity in items:
        highest = await s.scalar(
            select(func.max(AgreementProduct.price)).where(
                AgreementProduct.agreement_id == a.id,
                AgreementProduct.active.is_(True),
                AgreementProduct.category_code == code,
            )
        )
        if highest is None:
            raise RuleViolation(f"本协议没有品目 {code} 的协议产品", code="category_outside_agreement")
        total += round_money(Decimal(str(highest)) * quantity)
    suppliers = [e.supplier_org_id for e, _ in await entered(s, a.id)]
    return a, total, suppliers
