"""The order pages: the list, one order with its forms for each step, the e-contract."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall import notices, orders
from mall.contracts import pdf as contract_pdf
from mall.contracts import service as contracts
from mall.contracts import signing
from mall.core import clock, files, login_throttle, personal_data
from mall.core.auth import Principal
from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.ledger import disclosure
from mall.orders import claims, fulfilment, payments
from mall.orders import steps as order_steps
from mall.orders.models import ORDER_STATUS_LABELS, ClaimKind, ClaimOutcome, ClaimStatus, Order, OrderStatus
from mall.site.order_routes import STEP_CALL, STEPS, OrderCall, acceptance_pdf_response, contract_download
from mall.site.order_routes import Call as StepCall
from mall.sme.rules import SIZES as SME_SIZES
from mall.structs import (
    AcceptIn,
    AnswerIn,
    ClaimAnswerIn,
    ClaimCloseIn,
    ClaimIn,
    ConfirmIn,
    CorrectionIn,
    ReceiveIn,
    ShipIn,
)
from mall.web import forms
from mall.web.deps import Call, UserCall
from mall.web.helpers import AnyRequest, Form, act, page_no, paging, pop_form

PER_PAGE = 20


def _confirm_form(data: Mapping[str, str]) -> ConfirmIn:
    """The confirm form names each line's lower price `price_<line id>`; empty ones keep their price."""
    prices = {}
    for k, v in data.items():
        if k.startswith("price_") and v.strip():
            try:
                prices[uuid.UUID(k[6:])] = v.strip()
            except ValueError:
                raise InvalidInput("价格字段无效", code="invalid_price") from None
    return ConfirmIn(prices=prices)


def _correction_form(data: Mapping[str, str]) -> CorrectionIn:
    """The correction form names each line's fields `<field>_<line no>`, filled with what is
    published now; only what differs is a correction (the service refuses a form with none)."""
    by_line: dict[int, dict[str, str]] = {}
    for key, value in data.items():
        name, _, no = key.rpartition("_")
        if name in orders.CORRECTABLE and no.isdigit():
            by_line.setdefault(int(no), {})[name] = value
    body: dict[str, object] = {
        "reason": data.get("reason", ""),
        "lines": [{"line_no": n, **f} for n, f in sorted(by_line.items())],
    }
    return forms.decode(CorrectionIn, body)


def _decoded(step: str) -> Callable[[Mapping[str, str]], msgspec.Struct]:
    return lambda data: forms.decode(STEPS[step].body, data)


def _line_quantities(data: Mapping[str, str], prefix: str, *, keep_zero: bool) -> list[dict[str, str]] | None:
    """The quantities a form names `<prefix><line id>`; None when none was filled in."""
    out = []
    for key, value in data.items():
        if key.startswith(prefix) and value.strip():
            try:
                line_id = str(uuid.UUID(key[len(prefix) :]))
            except ValueError:
                raise InvalidInput("数量字段无效", code="invalid_quantity") from None
            if keep_zero or value.strip() not in ("0", "0.0", "0.00", "0.000"):
                out.append({"line_id": line_id, "quantity": value.strip()})
    return out or None


def _ship_form(data: Mapping[str, str]) -> ShipIn:
    """发货: each line's quantity `qty_<line id>`; all empty ships everything that remains."""
    body: dict[str, object] = {k: data.get(k, "") for k in ("note", "carrier", "tracking_no")}
    lines = _line_quantities(data, "qty_", keep_zero=False)
    if lines is not None:
        body["lines"] = lines
    return forms.decode(ShipIn, body)


def _receive_form(data: Mapping[str, str]) -> ReceiveIn:
    """收货 of one delivery (`delivery_id`), each line's received quantity `got_<line id>`."""
    body: dict[str, object] = {"note": data.get("note", "")}
    if data.get("delivery_id", "").strip():
        body["delivery_id"] = data["delivery_id"].strip()
        lines = _line_quantities(data, "got_", keep_zero=True)
        if lines is not None:
            body["lines"] = lines
    return forms.decode(ReceiveIn, body)


def _accept_form(data: Mapping[str, str]) -> AcceptIn:
    """验收单: the inspectors one a line (or separated by 、), each line's `result_<line id>` (pass |
    fail), `note_<line id>` and `refused_<line id>`."""
    lines = []
    for key, value in data.items():
        if key.startswith("result_"):
            lid = key[len("result_") :]
            lines.append(
                {
                    "line_id": lid,
                    "passed": value != "fail",
                    "note": data.get(f"note_{lid}", ""),
                    "refused_quantity": data.get(f"refused_{lid}", ""),
                }
            )
    names = [x for x in re.split(r"[\r\n、，,；;]", data.get("inspectors", "")) if x.strip()]
    body: dict[str, object] = {
        "inspectors": names or [""],
        "comment": data.get("comment", ""),
        "inspected_on": data.get("inspected_on", ""),
        "lines": lines,
    }
    if data.get("score", "").strip():
        body["score"] = data["score"]
    return forms.decode(AcceptIn, body)


# The order page's forms: action in the URL → (the step, its body from the form, what is said after).
FORMS: dict[str, tuple[str, Callable[[Mapping[str, str]], msgspec.Struct | None], str]] = {
    "confirm": ("confirm", _confirm_form, "订单已确认，电子合同已生成，成交记录将自动公开"),
    "decline": ("decline", _decoded("decline"), "已拒绝接单，预算已释放"),
    "cancel": ("cancel", _decoded("cancel"), "订单已取消，预算已释放"),
    "cancel-request": ("cancel-request", _decoded("cancel-request"), "取消申请已提交，等待对方处理"),
    "cancel-agree": ("cancel-answer", lambda data: AnswerIn(agree=True), "已同意取消，订单已取消"),
    "cancel-refuse": ("cancel-answer", lambda data: AnswerIn(agree=False), "已拒绝取消申请"),
    "sign": ("sign", lambda data: None, "已以本单位证书签署电子合同"),
    "file-contract": ("contract", lambda data: None, "电子合同已备案"),
    "ship": ("ship", _ship_form, "已发货，发货单已生成"),
    "receive": ("receive", _receive_form, "已确认收货"),
    "accept": ("accept", _accept_form, "验收单已提交"),
    "invoice": ("invoice", _decoded("invoice"), "发票已登记，等待采购人确认"),
    "invoice-confirm": ("invoice-confirm", _decoded("invoice-confirm"), "发票已确认"),
    "invoice-reject": ("invoice-reject", _decoded("invoice-reject"), "发票已退回"),
    "pay": ("pay", _decoded("pay"), "付款已登记"),
    "void": ("void", _decoded("void"), "合同已作废，将公开取消公告"),
    "correct": ("correct", _correction_form, "已更正，更正公告将自动公开"),
}


def _claim_choices(order: Order) -> dict[str, Any]:
    """The after-sales forms' options and the labels the claims are shown with."""
    return {
        "kinds": [(k.value, k.label) for k in ClaimKind],
        "outcomes": [(o.value, o.label) for o in ClaimOutcome],
        "unanswered": [(ClaimOutcome.UNRESOLVED.value, ClaimOutcome.UNRESOLVED.label)],
        "lines": [(x.line_no, f"第 {x.line_no} 项 {x.item_name}") for x in order.lines],
        "kind_labels": ClaimKind.labels(),
        "outcome_labels": ClaimOutcome.labels(),
        "status_labels": ClaimStatus.labels(),
    }


def payments_summary(
    order: Order, invoiced: Decimal, confirmed: Decimal, paid: Decimal
) -> dict[str, Decimal]:
    """The sums the invoice and payment forms show: what may still be invoiced and paid."""
    return {
        "invoiced": invoiced,
        "confirmed": confirmed,
        "paid": paid,
        "may_invoice": order.total_amount - invoiced,
        "may_pay": payments.payment_room(order.total_amount, confirmed, paid),
    }


def _party(who: Principal, order: Order) -> str:
    if who.role == "buyer" and who.org_id == order.buyer_org_id:
        return "buyer"
    if who.role == "supplier" and who.org_id == order.supplier_org_id:
        return "supplier"
    return who.role


async def _log_read(call: Call, order: Order, *, contract: bool) -> None:
    """The read log's entry when the page shows the caller others' personal data."""
    shown = orders.personal_data_shown(call.me, order, contract=contract)
    if shown is not None:
        page = f"/orders/{order.id}/contract" if contract else f"/orders/{order.id}"
        await personal_data.log_read(
            call.db,
            call.me,
            f"{page} {order.order_no}",
            shown,
            login_throttle.client_of(call.request),
            kind="order",
        )


class OrderPages(Controller):
    path = "/orders"
    include_in_schema = False

    @get("/", opt=allow("user"))
    async def orders_page(
        self, call: UserCall, status: FromQuery[str] = "", page: FromQuery[str] = "1"
    ) -> Template:
        st = status if status in {x.value for x in OrderStatus} else None
        p = page_no(page)
        async with call.db.read() as s:
            total, rows = await orders.list_orders(s, call.me, st, p, PER_PAGE)
        return call.render(
            "orders.html",
            rows=rows,
            **paging(total, p, PER_PAGE),
            status_filter=st or "",
            statuses=ORDER_STATUS_LABELS,
        )

    @get("/{order_id:uuid}", opt=allow("user"))
    async def order_page(self, call: UserCall, order_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            order = await orders.get_order(s, call.me, order_id)
            events = await orders.events_of(s, order_id)
            records = await disclosure.records_of_order(s, order.order_no)
            order_claims = await claims.claims_of(s, call.me, order)
            after_sales = await claims.record_of(s, order.supplier_org_id)
            deliveries = await fulfilment.deliveries_of(s, order.id)
            reports = await fulfilment.reports_of(s, order.id)
            invoices = await payments.invoices_of(s, order.id)
            made = await payments.payments_of(s, order.id)
        await _log_read(call, order, contract=False)
        invoiced, confirmed, paid = payments.totals(invoices, made)
        step = order_steps.next_step(order, call.settings.work_calendar, call.settings.payment_due_days)
        party = _party(call.me, order)
        return call.render(
            "order.html",
            order=order,
            sme_sizes=SME_SIZES,
            step=step,
            stance=step.stance(party, own=party in ("buyer", "supplier")),
            events=events,
            records=records,
            party=party,
            pay_state=orders.payment_state(order, call.settings),
            settings=call.settings,
            form=pop_form(call.request),
            claims=order_claims,
            may_claim=claims.may_open(call.me, order, order_claims),
            after_sales=after_sales,
            claim_choices=_claim_choices(order),
            claim_status=ClaimStatus,
            now=clock.now(),
            deliveries=deliveries,
            reports=reports,
            invoices=invoices,
            payments=made,
            progress=fulfilment.progress_of(order, deliveries, reports),
            money=payments_summary(order, invoiced, confirmed, paid),
            line_of={x.id: x for x in order.lines},
            today=clock.local_date(clock.now()).isoformat(),
        )

    @get("/{order_id:uuid}/acceptance-reports/{report_id:uuid}", opt=allow("user"))
    async def acceptance_report_page(
        self, call: UserCall, order_id: FromPath[uuid.UUID], report_id: FromPath[uuid.UUID]
    ) -> Template:
        """验收单, printable."""
        async with call.db.read() as s:
            order = await orders.get_order(s, call.me, order_id)
            report = await fulfilment.report_of(s, call.me, order, report_id)
        await _log_read(call, order, contract=False)
        return call.render(
            "acceptance_report.html", order=order, report=report, line_of={x.id: x for x in order.lines}
        )

    @get("/{order_id:uuid}/acceptance-reports/{report_id:uuid}/pdf", opt=allow("user"))
    async def acceptance_report_pdf(
        self, call: UserCall, order_id: FromPath[uuid.UUID], report_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        return await acceptance_pdf_response(
            call.request, call.db, call.settings, call.me, order_id, report_id
        )

    @get("/{order_id:uuid}/contract", opt=allow("user"))
    async def contract_page(self, call: UserCall, order_id: FromPath[uuid.UUID]) -> Template:
        store = files.store_for(call.settings, call.db)
        found = await contracts.contract_file(call.db, call.settings, store, call.me, order_id)
        order = found.order
        await _log_read(call, order, contract=True)
        async with call.db.read() as s:
            order_notices = await notices.of_order(s, order.id)
        signer = signing.signer_for(call.settings, call.db)
        return call.render(
            "contract.html",
            order=order,
            doc=contracts.contract_of(order, call.settings),
            verification=found.verification,
            signature_label=signer.label,
            party=_party(call.me, order),
            notices=order_notices,
            mode_basis=contract_pdf.MODE_BASIS.get(order.mode, ""),
            disputes=contract_pdf.DISPUTES,
        )

    @get("/{order_id:uuid}/contract.pdf", opt=allow("user"))
    async def contract_pdf(self, call: UserCall, order_id: FromPath[uuid.UUID]) -> Response[bytes]:
        return await contract_download(call.request, call.me, call.db, call.settings, order_id)

    @post("/{order_id:uuid}/claims", opt=allow("buyer"))
    async def open_claim(self, call: UserCall, order_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            body = forms.decode(ClaimIn, data)
            return await claims.open_claim(
                call.db, call.settings, call.me, order_id, body.kind, body.reason, body.line_no
            )

        return await call.act(
            go, "售后申请已提交，等待供应商答复", f"/orders/{order_id}", keep={**data, "action": "claim"}
        )

    @post("/{order_id:uuid}/claims/{claim_id:uuid}/answer", opt=allow("supplier"))
    async def answer_claim(
        self, call: UserCall, order_id: FromPath[uuid.UUID], claim_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        async def go() -> Any:
            body = forms.decode(ClaimAnswerIn, data)
            return await claims.answer_claim(call.db, call.me, order_id, claim_id, body.answer)

        return await call.act(
            go, "已答复售后申请", f"/orders/{order_id}", keep={**data, "action": "claim-answer"}
        )

    @post("/{order_id:uuid}/claims/{claim_id:uuid}/close", opt=allow("buyer"))
    async def close_claim(
        self, call: UserCall, order_id: FromPath[uuid.UUID], claim_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        async def go() -> Any:
            body = forms.decode(ClaimCloseIn, data)
            return await claims.close_claim(call.db, call.me, order_id, claim_id, body.outcome, body.note)

        return await call.act(
            go, "售后结果已登记", f"/orders/{order_id}", keep={**data, "action": "claim-close"}
        )

    @post("/{order_id:uuid}/correct", opt=allow("buyer", "center", "regulator"), dependencies=STEP_CALL)
    async def correct_action(self, request: AnyRequest, call: OrderCall, data: Form) -> Redirect:
        """更正成交记录: the one order form the procurement center may send."""
        return await _form_step(request, call, "correct", data)

    @post(
        "/{order_id:uuid}/{action:str}", opt=allow("buyer", "supplier", "regulator"), dependencies=STEP_CALL
    )
    async def order_action(
        self, request: AnyRequest, call: OrderCall, action: FromPath[str], data: Form
    ) -> Redirect:
        return await _form_step(request, call, action, data)


async def _form_step(request: AnyRequest, call: StepCall, action: str, data: Mapping[str, str]) -> Redirect:
    """One of the order page's forms (`FORMS`): the step taken, then back to the order with what it said."""
    if action not in FORMS:
        raise InvalidInput("不支持的操作", code="unknown_action")
    step, body_of, ok = FORMS[action]
    return await act(
        request,
        lambda: STEPS[step].run(call, body_of(data)),
        ok,
        f"/orders/{call.order_id}",
        keep={**data, "action": action},
    )


ROUTES = [OrderPages]
