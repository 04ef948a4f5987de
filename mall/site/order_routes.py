"""The orders API: lists, one order and its events, and each step of an order's life.

Each step is one entry of `STEPS`: the body it takes (the API's Struct, which the order page's form
decodes into too) and the service call. The API answers with the order as it is after the step."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from mall import orders
from mall.core import login_throttle, personal_data
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.core.settings import Settings
from mall.orders import claims
from mall.orders.models import OrderStatus
from mall.structs import (
    AcceptIn,
    AnswerIn,
    ClaimAnswerIn,
    ClaimCloseIn,
    ClaimIn,
    ClaimOut,
    ConfirmIn,
    CorrectionIn,
    EventOut,
    OrderOut,
    OrderPage,
    PayIn,
    ReasonIn,
    ShipIn,
)
from mall.web.deps import DB, Config, Me
from mall.web.helpers import AnyRequest, PageNo, PerPage

TAGS = ["订单"]


@dataclass(frozen=True)
class Call:
    """Who takes a step on which order."""

    db: Database
    settings: Settings
    me: Principal
    order_id: uuid.UUID


class NoBody(msgspec.Struct, forbid_unknown_fields=True):
    """A step that takes nothing but the order."""


@dataclass(frozen=True)
class Step:
    body: type[msgspec.Struct]
    run: Callable[[Call, Any], Awaitable[Any]]


STEPS: dict[str, Step] = {
    "confirm": Step(
        ConfirmIn, lambda c, b: orders.confirm(c.db, c.me, c.order_id, dict(b.prices) if b else None)
    ),
    "decline": Step(ReasonIn, lambda c, b: orders.decline(c.db, c.me, c.order_id, b.reason)),
    "cancel": Step(ReasonIn, lambda c, b: orders.cancel(c.db, c.me, c.order_id, b.reason)),
    "cancel-request": Step(ReasonIn, lambda c, b: orders.request_cancel(c.db, c.me, c.order_id, b.reason)),
    "cancel-answer": Step(AnswerIn, lambda c, b: orders.answer_cancel(c.db, c.me, c.order_id, b.agree)),
    "contract": Step(NoBody, lambda c, b: orders.file_contract(c.db, c.me, c.order_id)),
    "ship": Step(ShipIn, lambda c, b: orders.ship(c.db, c.me, c.order_id, b.note if b else "")),
    "receive": Step(NoBody, lambda c, b: orders.receive(c.db, c.me, c.order_id)),
    "accept": Step(AcceptIn, lambda c, b: orders.accept(c.db, c.me, c.order_id, b.score, b.comment)),
    "pay": Step(PayIn, lambda c, b: orders.pay(c.db, c.settings, c.me, c.order_id, b.payment_ref)),
    "void": Step(ReasonIn, lambda c, b: orders.void(c.db, c.me, c.order_id, b.reason)),
    "correct": Step(
        CorrectionIn,
        lambda c, b: orders.correct(
            c.db, c.me, c.order_id, [msgspec.structs.asdict(x) for x in b.lines], b.reason
        ),
    ),
}


def step_call(db: DB, settings: Config, me: Me, order_id: FromPath[uuid.UUID]) -> Call:
    return Call(db, settings, me, order_id)


# Each step's handler (API and page) takes its caller and order as `call: OrderCall`.
OrderCall = NamedDependency[Call]
STEP_CALL = {"call": Provide(step_call, sync_to_thread=False)}


async def take_step(step: str, call: OrderCall, body: msgspec.Struct | None) -> OrderOut:
    """Take one step of the order's life; the order as the caller now sees it."""
    await STEPS[step].run(call, body)
    return await order_view(call.db, call.me, call.order_id)


@retried  # a read: safe to run again (the step before it has committed)
async def order_view(db: Database, me: Principal, order_id: uuid.UUID) -> OrderOut:
    async with db.read() as s:
        return OrderOut.of(await orders.get_order(s, me, order_id))


class OrderApi(Controller):
    path = "/api/orders"
    tags = TAGS
    dependencies = STEP_CALL

    @get("/", opt=allow("user"), summary="订单列表（采购人、供应商只见本单位订单）")
    async def list_orders(
        self,
        me: Me,
        db: DB,
        page: PageNo = 1,
        per_page: PerPage = 20,
        status: FromQuery[str | None] = None,
    ) -> OrderPage:
        if status is not None and status not in {s.value for s in OrderStatus}:
            raise InvalidInput("参数 status 不是有效的订单状态", code="invalid_parameter")
        async with db.read() as s:
            total, rows = await orders.list_orders(s, me, status, page, per_page)
            return OrderPage(total, page, per_page, [OrderOut.of(o) for o in rows])

    @get("/{order_id:uuid}", opt=allow("user"))
    async def get_order(self, me: Me, order_id: FromPath[uuid.UUID], db: DB) -> OrderOut:
        async with db.read() as s:
            return OrderOut.of(await orders.get_order(s, me, order_id))

    @get(
        "/{order_id:uuid}/events",
        opt=allow("user"),
        summary="订单操作记录（监管、采购中心、平台查阅记入审计日志）",
    )
    async def order_events(
        self, request: AnyRequest, me: Me, order_id: FromPath[uuid.UUID], db: DB
    ) -> list[EventOut]:
        async with db.read() as s:
            order = await orders.get_order(s, me, order_id)
            events = [EventOut.of(e) for e in await orders.events_of(s, order_id)]
        if me.role in personal_data.OVERSIGHT:  # people's names and what they wrote
            await personal_data.log_read(
                db,
                me,
                f"/api/orders/{order_id}/events {order.order_no}",
                "订单操作记录：经办人姓名与说明",
                login_throttle.client_of(request),
                kind="order",
            )
        return events

    @post(
        "/{order_id:uuid}/confirm",
        opt=allow("supplier"),
        status_code=200,
        summary="供应商确认订单（可降价，不可涨价）",
    )
    async def confirm_order(self, call: OrderCall, data: JSONBody[ConfirmIn | None] = None) -> OrderOut:
        return await take_step("confirm", call, data)

    @post("/{order_id:uuid}/decline", opt=allow("supplier"), status_code=200)
    async def decline_order(self, call: OrderCall, data: JSONBody[ReasonIn]) -> OrderOut:
        return await take_step("decline", call, data)

    @post("/{order_id:uuid}/cancel", opt=allow("buyer"), status_code=200, summary="采购人取消未确认的订单")
    async def cancel_order(self, call: OrderCall, data: JSONBody[ReasonIn]) -> OrderOut:
        return await take_step("cancel", call, data)

    @post("/{order_id:uuid}/cancel-request", opt=allow("buyer", "supplier"), status_code=200)
    async def request_cancel(self, call: OrderCall, data: JSONBody[ReasonIn]) -> OrderOut:
        return await take_step("cancel-request", call, data)

    @post("/{order_id:uuid}/cancel-answer", opt=allow("buyer", "supplier"), status_code=200)
    async def answer_cancel(self, call: OrderCall, data: JSONBody[AnswerIn]) -> OrderOut:
        return await take_step("cancel-answer", call, data)

    @post(
        "/{order_id:uuid}/contract", opt=allow("buyer"), status_code=200, summary="采购人签订并备案电子合同"
    )
    async def file_contract(self, call: OrderCall) -> OrderOut:
        return await take_step("contract", call, None)

    @post("/{order_id:uuid}/ship", opt=allow("supplier"), status_code=200)
    async def ship_order(self, call: OrderCall, data: JSONBody[ShipIn | None] = None) -> OrderOut:
        return await take_step("ship", call, data)

    @post("/{order_id:uuid}/receive", opt=allow("buyer"), status_code=200)
    async def receive_order(self, call: OrderCall) -> OrderOut:
        return await take_step("receive", call, None)

    @post("/{order_id:uuid}/accept", opt=allow("buyer"), status_code=200, summary="验收并评价供应商")
    async def accept_order(self, call: OrderCall, data: JSONBody[AcceptIn]) -> OrderOut:
        return await take_step("accept", call, data)

    @post("/{order_id:uuid}/pay", opt=allow("buyer"), status_code=200, summary="登记付款")
    async def pay_order(self, call: OrderCall, data: JSONBody[PayIn]) -> OrderOut:
        return await take_step("pay", call, data)

    @post("/{order_id:uuid}/void", opt=allow("regulator"), status_code=200, summary="监管部门作废已备案合同")
    async def void_order(self, call: OrderCall, data: JSONBody[ReasonIn]) -> OrderOut:
        return await take_step("void", call, data)

    @post(
        "/{order_id:uuid}/correction",
        opt=allow("buyer", "center", "regulator"),
        status_code=200,
        summary="更正已公开的成交记录（品名、品牌、规格型号、计量单位）",
        description=(
            "采购人（本单位订单）、集中采购机构或财政监管部门更正成交记录中描述货物的字段；金额、数量与交易双方不可更正"
            "（错误的成交应取消）。订单明细随之更正，并公开一条更正记录（kind=correction，amends 指向原成交记录，"
            "corrections 列出每项更正的原值与新值）；更正原因只记入订单操作记录，不公开。"
        ),
    )
    async def correct_order(self, call: OrderCall, data: JSONBody[CorrectionIn]) -> OrderOut:
        return await take_step("correct", call, data)


class ClaimApi(Controller):
    """After-sales claims (售后) on an accepted order: the buyer opens one, the supplier answers, the
    buyer records the outcome. Reasons, answers and notes are the parties' own and never published."""

    path = "/api/orders/{order_id:uuid}/claims"
    tags = TAGS

    @get(
        "/",
        opt=allow("user"),
        summary="订单的售后申请（订单双方与监管、采购中心可见，先提出的在前；监管、采购中心查阅记入审计日志）",
    )
    async def list_claims(
        self, request: AnyRequest, me: Me, db: DB, order_id: FromPath[uuid.UUID]
    ) -> list[ClaimOut]:
        async with db.read() as s:
            order = await orders.get_order(s, me, order_id)
            found = [ClaimOut.of(c) for c in await claims.claims_of(s, me, order)]
        if me.role in personal_data.OVERSIGHT:  # what the parties wrote to each other
            await personal_data.log_read(
                db,
                me,
                f"/api/orders/{order_id}/claims {order.order_no}",
                "售后申请：原因、答复与结果说明",
                login_throttle.client_of(request),
                kind="order",
            )
        return found

    @post(
        "/",
        opt=allow("buyer"),
        status_code=201,
        summary="提出售后申请（退货、换货或维修；验收后可提，同一订单同时只有一项未结束的申请）",
    )
    async def open_claim(
        self, me: Me, db: DB, settings: Config, order_id: FromPath[uuid.UUID], data: JSONBody[ClaimIn]
    ) -> ClaimOut:
        claim = await claims.open_claim(db, settings, me, order_id, data.kind, data.reason, data.line_no)
        return ClaimOut.of(claim)

    @post(
        "/{claim_id:uuid}/answer",
        opt=allow("supplier"),
        status_code=200,
        summary="供应商答复售后申请（须在答复期限内，逾期答复计入售后记录）",
    )
    async def answer_claim(
        self,
        me: Me,
        db: DB,
        order_id: FromPath[uuid.UUID],
        claim_id: FromPath[uuid.UUID],
        data: JSONBody[ClaimAnswerIn],
    ) -> ClaimOut:
        return ClaimOut.of(await claims.answer_claim(db, me, order_id, claim_id, data.answer))

    @post(
        "/{claim_id:uuid}/close",
        opt=allow("buyer"),
        status_code=200,
        summary="采购人登记售后结果（供应商答复后；逾期未答复的只能以“未解决”结束）",
    )
    async def close_claim(
        self,
        me: Me,
        db: DB,
        order_id: FromPath[uuid.UUID],
        claim_id: FromPath[uuid.UUID],
        data: JSONBody[ClaimCloseIn],
    ) -> ClaimOut:
        return ClaimOut.of(await claims.close_claim(db, me, order_id, claim_id, data.outcome, data.note))


ROUTES = [OrderApi, ClaimApi]
