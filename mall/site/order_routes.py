"""The orders API: lists, one order and its events, and each step of an order's life.

Each step is one entry of `STEPS`: the body it takes (the API's Struct, which the order page's form
decodes into too) and the service call. The API answers with the order as it is after the step."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from mall import orders
from mall.contracts import service as contracts
from mall.core import files, login_throttle, personal_data
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.core.money import money_str, quantity_str
from mall.core.settings import Settings
from mall.orders import claims, fulfilment, payments
from mall.orders.acceptance_pdf import report_pdf
from mall.orders.models import OrderStatus
from mall.structs import (
    AcceptanceReportOut,
    AcceptIn,
    AnswerIn,
    ClaimAnswerIn,
    ClaimCloseIn,
    ClaimIn,
    ClaimOut,
    ConfirmIn,
    ContractVerificationOut,
    CorrectionIn,
    DeliveryOut,
    EventOut,
    FulfilmentOut,
    InvoiceDecisionIn,
    InvoiceIn,
    InvoiceOut,
    LineProgressOut,
    LineQuantityIn,
    OrderOut,
    OrderPage,
    PayIn,
    PaymentOut,
    ReasonIn,
    ReceiveIn,
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


def _quantities(lines: list[LineQuantityIn] | None) -> dict[uuid.UUID, str] | None:
    if lines is None:
        return None
    out: dict[uuid.UUID, str] = {}
    for x in lines:
        if x.line_id in out:
            raise InvalidInput("同一商品不能填写两次", code="duplicate_line", field="lines")
        out[x.line_id] = x.quantity
    return out


async def _ship(c: Call, b: ShipIn) -> Any:
    return await orders.ship(
        c.db,
        c.me,
        c.order_id,
        b.note,
        carrier=b.carrier,
        tracking_no=b.tracking_no,
        lines=_quantities(b.lines),
    )


async def _receive(c: Call, b: ReceiveIn) -> Any:
    return await orders.receive(
        c.db, c.me, c.order_id, delivery_id=b.delivery_id, lines=_quantities(b.lines), note=b.note
    )


async def _accept(c: Call, b: AcceptIn) -> Any:
    verdicts: dict[uuid.UUID, fulfilment.LineVerdict] = {}
    for x in b.lines or []:
        if x.line_id in verdicts:
            raise InvalidInput("同一商品不能填写两次", code="duplicate_line", field="lines")
        refused = fulfilment.quantity_of(x.refused_quantity, "lines") if x.refused_quantity.strip() else None
        verdicts[x.line_id] = fulfilment.LineVerdict(x.passed, x.note, refused)
    return await orders.accept(
        c.db,
        c.settings,
        c.me,
        c.order_id,
        inspectors=b.inspectors,
        score=b.score,
        comment=b.comment,
        inspected_on=b.inspected_on,
        lines=verdicts,
    )


STEPS: dict[str, Step] = {
    "confirm": Step(
        ConfirmIn, lambda c, b: orders.confirm(c.db, c.me, c.order_id, dict(b.prices) if b else None)
    ),
    "decline": Step(ReasonIn, lambda c, b: orders.decline(c.db, c.me, c.order_id, b.reason)),
    "cancel": Step(ReasonIn, lambda c, b: orders.cancel(c.db, c.me, c.order_id, b.reason)),
    "cancel-request": Step(ReasonIn, lambda c, b: orders.request_cancel(c.db, c.me, c.order_id, b.reason)),
    "cancel-answer": Step(AnswerIn, lambda c, b: orders.answer_cancel(c.db, c.me, c.order_id, b.agree)),
    "sign": Step(
        NoBody,
        lambda c, b: contracts.sign_contract(
            c.db, c.settings, files.store_for(c.settings, c.db), c.me, c.order_id
        ),
    ),
    "contract": Step(NoBody, lambda c, b: orders.file_contract(c.db, c.me, c.order_id)),
    "ship": Step(ShipIn, lambda c, b: _ship(c, b or ShipIn())),
    "receive": Step(ReceiveIn, lambda c, b: _receive(c, b or ReceiveIn())),
    "accept": Step(AcceptIn, lambda c, b: _accept(c, b)),
    "invoice": Step(
        InvoiceIn,
        lambda c, b: orders.record_invoice(
            c.db,
            c.me,
            c.order_id,
            invoice_no=b.invoice_no,
            amount=b.amount,
            issued_on=b.issued_on,
            invoice_code=b.invoice_code,
        ),
    ),
    "invoice-confirm": Step(
        InvoiceDecisionIn, lambda c, b: orders.confirm_invoice(c.db, c.me, c.order_id, b.invoice_id)
    ),
    "invoice-reject": Step(
        InvoiceDecisionIn, lambda c, b: orders.reject_invoice(c.db, c.me, c.order_id, b.invoice_id, b.reason)
    ),
    "pay": Step(
        PayIn,
        lambda c, b: orders.pay(
            c.db, c.settings, c.me, c.order_id, voucher_no=b.voucher_no, amount=b.amount, paid_on=b.paid_on
        ),
    ),
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


async def contract_download(
    request: AnyRequest, me: Principal, db: Database, settings: Settings, order_id: uuid.UUID
) -> Response[bytes]:
    """The contract PDF (the API and the page serve the same), its read logged like the contract page's."""
    found = await contracts.contract_file(db, settings, files.store_for(settings, db), me, order_id)
    order = found.order
    data = found.data
    if data is None:
        data = await contracts.unsigned_pdf(db, settings, me, order_id)
    shown = orders.personal_data_shown(me, order, contract=True)
    if shown is not None:
        await personal_data.log_read(
            db,
            me,
            f"/orders/{order_id}/contract.pdf {order.order_no}",
            shown,
            login_throttle.client_of(request),
            kind="order",
        )
    name = f"{order.contract_no}.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )


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
        "/{order_id:uuid}/sign",
        opt=allow("buyer", "supplier"),
        status_code=200,
        summary="合同一方以本单位证书签署电子合同（PAdES 防篡改签名）",
        description=(
            "采购人、供应商各以本单位的证书签署合同 PDF（先后不限）；双方均签署后订单进入「合同已签订，待备案」，"
            "合同公告自动发布。已签署的一方再次签署返回 409 already_signed。"
        ),
    )
    async def sign_contract(self, call: OrderCall) -> OrderOut:
        return await take_step("sign", call, None)

    @post(
        "/{order_id:uuid}/contract",
        opt=allow("buyer"),
        status_code=200,
        summary="采购人备案双方已签署的电子合同（合同备案）",
    )
    async def file_contract(self, call: OrderCall) -> OrderOut:
        return await take_step("contract", call, None)

    @get(
        "/{order_id:uuid}/contract/verification",
        opt=allow("user"),
        summary="核验电子合同 PDF 的签名（每个签名的签署单位、完整性与证书信任）",
    )
    async def contract_verification(
        self, me: Me, db: DB, settings: Config, order_id: FromPath[uuid.UUID]
    ) -> ContractVerificationOut:
        found = await contracts.contract_file(db, settings, files.store_for(settings, db), me, order_id)
        return ContractVerificationOut.of(found.order, found.verification)

    @get(
        "/{order_id:uuid}/contract.pdf",
        opt=allow("user"),
        summary="下载电子合同 PDF（已签署的版本；未签署时为待签署文本）",
        media_type="application/pdf",
    )
    async def contract_pdf(
        self, request: AnyRequest, me: Me, db: DB, settings: Config, order_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        return await contract_download(request, me, db, settings, order_id)

    @post("/{order_id:uuid}/ship", opt=allow("supplier"), status_code=200)
    async def ship_order(self, call: OrderCall, data: JSONBody[ShipIn | None] = None) -> OrderOut:
        return await take_step("ship", call, data)

    @post(
        "/{order_id:uuid}/receive",
        opt=allow("buyer"),
        status_code=200,
        summary="采购人收货（可按发货单部分收货，短收部分由供应商补发）",
    )
    async def receive_order(self, call: OrderCall, data: JSONBody[ReceiveIn | None] = None) -> OrderOut:
        return await take_step("receive", call, data)

    @post(
        "/{order_id:uuid}/accept",
        opt=allow("buyer"),
        status_code=200,
        summary="验收（验收单：验收人员、逐项结果、评价；有不合格项则退回重新交付）",
    )
    async def accept_order(self, call: OrderCall, data: JSONBody[AcceptIn]) -> OrderOut:
        return await take_step("accept", call, data)

    @post(
        "/{order_id:uuid}/invoices",
        opt=allow("supplier"),
        status_code=200,
        summary="供应商登记发票（全电发票20位号码，或旧版发票代码+号码）",
    )
    async def record_invoice(self, call: OrderCall, data: JSONBody[InvoiceIn]) -> OrderOut:
        return await take_step("invoice", call, data)

    @post("/{order_id:uuid}/invoices/confirm", opt=allow("buyer"), status_code=200, summary="采购人确认发票")
    async def confirm_invoice(self, call: OrderCall, data: JSONBody[InvoiceDecisionIn]) -> OrderOut:
        return await take_step("invoice-confirm", call, data)

    @post(
        "/{order_id:uuid}/invoices/reject",
        opt=allow("buyer"),
        status_code=200,
        summary="采购人退回发票（须说明原因）",
    )
    async def reject_invoice(self, call: OrderCall, data: JSONBody[InvoiceDecisionIn]) -> OrderOut:
        return await take_step("invoice-reject", call, data)

    @post(
        "/{order_id:uuid}/pay",
        opt=allow("buyer"),
        status_code=200,
        summary="登记付款（须有已确认的发票；可分次付款，合计不超过合同金额）",
    )
    async def pay_order(self, call: OrderCall, data: JSONBody[PayIn]) -> OrderOut:
        return await take_step("pay", call, data)

    @get(
        "/{order_id:uuid}/fulfilment",
        opt=allow("user"),
        summary="履约情况：各商品发货与收货数量、发货单、验收单、发票与付款（监管、采购中心查阅记入审计日志）",
    )
    async def order_fulfilment(
        self, request: AnyRequest, me: Me, order_id: FromPath[uuid.UUID], db: DB
    ) -> FulfilmentOut:
        view, order = await fulfilment_view(db, me, order_id)
        if me.role in personal_data.OVERSIGHT:  # inspectors' names and what the parties wrote
            await personal_data.log_read(
                db,
                me,
                f"/api/orders/{order_id}/fulfilment {order.order_no}",
                "履约记录：验收人员姓名与说明",
                login_throttle.client_of(request),
                kind="order",
            )
        return view

    @get(
        "/{order_id:uuid}/acceptance-reports/{report_id:uuid}/pdf",
        opt=allow("user"),
        summary="验收单 PDF",
        media_type="application/pdf",
    )
    async def acceptance_pdf(
        self,
        request: AnyRequest,
        me: Me,
        db: DB,
        settings: Config,
        order_id: FromPath[uuid.UUID],
        report_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        return await acceptance_pdf_response(request, db, settings, me, order_id, report_id)

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


@retried  # a read: safe to run again
async def fulfilment_view(db: Database, me: Principal, order_id: uuid.UUID) -> tuple[FulfilmentOut, Any]:
    """The order's fulfilment record as the caller may see it, and the order."""
    async with db.read() as s:
        order = await orders.get_order(s, me, order_id)
        deliveries = await fulfilment.deliveries_of(s, order.id)
        reports = await fulfilment.reports_of(s, order.id)
        invoices = await payments.invoices_of(s, order.id)
        made = await payments.payments_of(s, order.id)
    progress = fulfilment.progress_of(order, deliveries, reports)
    invoiced, confirmed, paid = payments.totals(invoices, made)
    view = FulfilmentOut(
        order.id,
        order.status,
        money_str(order.total_amount),
        money_str(invoiced),
        money_str(confirmed),
        money_str(paid),
        [
            LineProgressOut(
                lid,
                x.line_no,
                quantity_str(x.ordered),
                quantity_str(x.in_transit),
                quantity_str(x.kept),
                quantity_str(x.remaining),
            )
            for lid, x in progress.lines.items()
        ],
        [DeliveryOut.of(d) for d in deliveries],
        [AcceptanceReportOut.of(r) for r in reports],
        [InvoiceOut.of(i) for i in invoices],
        [PaymentOut.of(p) for p in made],
    )
    return view, order


async def acceptance_pdf_response(
    request: AnyRequest,
    db: Database,
    settings: Settings,
    me: Principal,
    order_id: uuid.UUID,
    report_id: uuid.UUID,
) -> Response[bytes]:
    """The 验收单 as a PDF: made once, from the report, and kept in the file store."""
    async with db.read() as s:
        order = await orders.get_order(s, me, order_id)
        report = await fulfilment.report_of(s, me, order, report_id)
    if me.role in personal_data.OVERSIGHT:  # the inspectors' names are on it
        await personal_data.log_read(
            db,
            me,
            f"/api/orders/{order_id}/acceptance-reports/{report_id}/pdf {order.order_no}",
            "验收单：验收人员姓名与验收意见",
            login_throttle.client_of(request),
            kind="order",
        )
    store = files.store_for(settings, db)
    key = f"acceptance-reports/{report.id}.pdf"
    if await store.stat(key) is None:
        data = await asyncio.to_thread(report_pdf, order, report, settings.contract_font)
        await store.put(key, data, content_type="application/pdf")
    body = await store.read(key, max_bytes=contracts.MAX_PDF_BYTES)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "content-disposition": f'attachment; filename="acceptance-{order.order_no}-{report.seq}.pdf"'
        },
    )


ROUTES = [OrderApi, ClaimApi]
