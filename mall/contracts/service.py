"""Signing (签订) the e-contract, each party with its own key, and publishing the 合同公告.

confirmed → (the supplier and the buyer each sign, in either order) → signed → (the buyer files it,
mall.orders.lifecycle.file_contract) → contracted → …

Signing reads the contract as it stands (made from the order on the first signature), adds the
party's signature outside any transaction (the file store writes in transactions of its own), stores
the result under a new key, and then, in the order's write transaction, moves the order on only if
nobody else changed the contract meanwhile (else the party signs the newer file: one retry).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from mall.contracts import pdf, signing
from mall.contracts.pdf import ContractDoc, Line, Party
from mall.contracts.signing import Verification
from mall.core import clock, regions
from mall.core.auth import Principal
from mall.core.db import Database, Tx
from mall.core.errors import Conflict, Forbidden, InvalidInput
from mall.core.files import FileMissing, FileStore
from mall.core.money import money_str, quantity_str, yuan_uppercase
from mall.core.settings import Settings
from mall.ledger.disclosure import MODE_LABELS
from mall.notices import NoticeKind
from mall.notices import stage as stage_notice
from mall.orders import lifecycle
from mall.orders.events import record_event, supplier_of_record
from mall.orders.models import Order, OrderStatus
from mall.orders.queries import get_order
from mall.sme.rules import is_sme

S = OrderStatus
PDF_TYPE = "application/pdf"
MAX_PDF_BYTES = 20 * 1024 * 1024
SITE_NAME = "阳光卖场"


def planned_payment(is_sme: bool, payment_due_days: int) -> tuple[str, str]:
    """Pure: the payment terms and the planned payment date, as the contract states them."""
    if is_sme:
        return (
            "乙方为中小企业。甲方在货物或服务验收合格后，凭乙方开具并经甲方确认的发票付款；可约定预付款，"
            f"余款于验收合格之日起 {payment_due_days} 日内付清（保障中小企业款项支付条例）。",
            f"验收合格之日起第 {payment_due_days} 日前付清全部价款",
        )
    return (
        "甲方在货物或服务验收合格后，凭乙方开具并经甲方确认的发票付款；可约定预付款，余款按约定期限付清。",
        f"验收合格之日起 {payment_due_days} 日内付清全部价款",
    )


def document_of(order: Order, settings: Settings) -> ContractDoc:
    """Pure: what the contract says, from the order as confirmed."""
    terms, planned = planned_payment(is_sme(order.supplier_scale), settings.payment_due_days)
    services = any(line.category_code.startswith("C") for line in order.lines)
    supplier = supplier_of_record(order.supplier)
    return ContractDoc(
        contract_no=order.contract_no or "",
        order_no=order.order_no,
        mode=order.mode,
        mode_label=MODE_LABELS.get(order.mode, order.mode),
        site_name=SITE_NAME,
        region_name=regions.region_name(order.region_code) or settings.region_name,
        # The parties as organizations: names, credit codes, a company's registered address. No
        # contact phone (usually a person's own) and no sole proprietor's address (a person's home):
        # the signed PDF holds no personal data, so it is stored as it is and published as signed.
        buyer=Party(order.buyer.name, order.buyer.credit_code, order.buyer.address or ""),
        supplier=Party(order.supplier.name, order.supplier.credit_code, supplier.get("address") or ""),
        supplier_is_sme=is_sme(order.supplier_scale),
        lines=[
            Line(
                no=line.line_no,
                category_code=line.category_code,
                item_name=line.item_name,
                brand=line.brand,
                spec_model=line.spec_model,
                quantity=quantity_str(line.quantity),
                unit=line.unit,
                unit_price=money_str(line.unit_price),
                amount=money_str(line.amount),
            )
            for line in order.lines
        ],
        total=money_str(order.total_amount),
        total_upper=yuan_uppercase(order.total_amount),
        # Where to deliver and to whom is written on the order (it may name and reach a person):
        # the contract points at it instead of copying it.
        delivery_place=f"甲方在订单 {order.order_no} 中指定的收货地点（收货人及联系方式见订单，不写入合同文本）",
        delivery_term=(
            f"合同备案之日起 {settings.contract_delivery_days} 日内"
            + ("开始提供服务，按服务约定的周期履行" if services else "交付全部货物")
            + "；可分批交付，每批附发货单、物流单号。"
        ),
        acceptance_plan=(
            "甲方收到货物或服务后组织验收：由甲方指定的验收人员逐项核对品名、品牌、规格型号、数量和质量，"
            "按明细出具验收单（载明验收人员和每项结果）；可分批收货、一次验收。验收不合格的，甲方说明理由，"
            "乙方应在约定期限内重新交付，费用由乙方承担。"
            + ("服务项目验收后发布履约验收公告。" if services else "")
        ),
        payment_terms=terms,
        planned_payment=planned,
    )


def contract_of(order: Order, settings: Settings) -> ContractDoc:
    """What the contract says: as frozen at the first signature, or (before it) as the order stands."""
    if order.contract_document:
        return ContractDoc.from_dict(order.contract_document)
    return document_of(order, settings)


async def current_pdf(store: FileStore, order: Order) -> bytes | None:
    if not order.contract_file_key:
        return None
    try:
        return await store.read(order.contract_file_key, max_bytes=MAX_PDF_BYTES)
    except FileMissing:
        return None


def _side(who: Principal, order: Order) -> str:
    if who.role == "buyer" and who.org_id == order.buyer_org_id:
        return "buyer"
    if who.role == "supplier" and who.org_id == order.supplier_org_id:
        return "supplier"
    raise Forbidden("只有合同的甲方（采购人）或乙方（供应商）可以签署合同", code="not_your_order")


def _check_can_sign(order: Order, side: str) -> None:
    if order.status != S.CONFIRMED:
        lifecycle.expect(order, S.CONFIRMED)
    if order.cancel_requested_by:
        raise Conflict("有待处理的取消申请，请先处理", code="cancel_request_pending")
    if (order.buyer_signed_at if side == "buyer" else order.supplier_signed_at) is not None:
        raise Conflict("贵单位已签署本合同，等待对方签署", code="already_signed")


def notice_due(signed_at: datetime, settings: Settings) -> datetime:
    """The end of the `contract_notice_working_days`-th working day after the day of signing."""
    day = settings.work_calendar.add_working_days(
        clock.local_date(signed_at), settings.contract_notice_working_days
    )
    return datetime.combine(day + timedelta(days=1), time.min, clock.SHANGHAI)


def _stage_contract_notice(
    tx: Tx, order: Order, doc: ContractDoc, key: str, digest: str, settings: Settings
) -> None:
    """The 合同公告: the key terms, and the signed PDF itself (it holds no personal data)."""
    assert order.signed_at is not None
    stage_notice(
        tx,
        kind=NoticeKind.CONTRACT,
        source_key=f"contract:{order.id}",
        title=f"{order.buyer.name} {order.lines[0].item_name if order.lines else ''}等 合同公告"[:300],
        region_code=order.region_code,
        order_id=order.id,
        event_at=order.signed_at,
        due_at=notice_due(order.signed_at, settings),
        body={
            "contract_no": order.contract_no,
            "order_no": order.order_no,
            "mode": order.mode,
            "buyer": {"name": order.buyer.name, "credit_code": order.buyer.credit_code},
            "supplier": supplier_of_record(order.supplier),
            "total_amount": money_str(order.total_amount),
            "signed_date": clock.local_date(order.signed_at).isoformat(),
            "signed_pdf_key": key,
            "signed_pdf_sha256": digest,
            "document": doc.to_dict(),
        },
    )


class _Again(Exception):
    """The contract changed between reading and writing: the other party signed meanwhile."""


async def sign_contract(
    db: Database, settings: Settings, store: FileStore, who: Principal, order_id: uuid.UUID
) -> Order:
    """The acting party signs the contract with its own key. When both have signed, the order is
    `signed` and the 合同公告 is staged."""
    for _ in range(3):
        try:
            # A transient failure (a deadlock, a lost connection) runs the signing again: it re-reads
            # the order, so after a commit it did not see it answers already_signed, never twice.
            return await db.retrying(lambda: _sign_once(db, settings, store, who, order_id))
        except _Again:
            continue
    raise Conflict("合同正在由对方签署，请稍后重试", code="contract_busy")


async def _sign_once(
    db: Database, settings: Settings, store: FileStore, who: Principal, order_id: uuid.UUID
) -> Order:
    signer = signing.signer_for(settings, db)
    async with db.read() as s:
        order = await get_order(s, who, order_id)
        side = _side(who, order)
        _check_can_sign(order, side)
        was_key = order.contract_file_key
        doc = contract_of(order, settings)
        org = order.buyer if side == "buyer" else order.supplier
        before = await current_pdf(store, order)
    if before is None:
        before = await asyncio.to_thread(pdf.render, doc, font_path=settings.contract_font)
    signed = await signer.sign(before, org, signing.FIELDS[side])
    digest = hashlib.sha256(signed).hexdigest()
    key = f"contracts/{order_id}/{uuid.uuid4()}.pdf"
    await store.put(key, signed, content_type=PDF_TYPE)
    async with lifecycle.changing(db, who, order_id, side) as (tx, order):
        _check_can_sign(order, side)
        if order.contract_file_key != was_key:
            raise _Again()
        now = clock.now()
        if order.contract_document is None:
            order.contract_document = doc.to_dict()  # what both parties sign, from now on
        order.contract_file_key = key
        order.contract_sha256 = digest
        if side == "buyer":
            order.buyer_signed_at = now
        else:
            order.supplier_signed_at = now
        both = order.buyer_signed_at is not None and order.supplier_signed_at is not None
        if both:
            order.status = S.SIGNED
            order.signed_at = now
            _stage_contract_notice(tx, order, doc, key, digest, settings)
        label = "采购人" if side == "buyer" else "供应商"
        detail = f"{label}以{signer.label}签署电子合同 {order.contract_no}（SHA-256 {digest[:16]}…）"
        if both:
            detail += "；双方均已签署，合同公告将自动发布"
        record_event(tx.session, order, who, f"{side}_signed", detail)
    return order


@dataclass
class ContractFile:
    order: Order
    data: bytes | None  # None: not signed by anyone yet (the PDF is made on the first signature)
    verification: Verification | None


async def contract_file(
    db: Database, settings: Settings, store: FileStore, who: Principal, order_id: uuid.UUID
) -> ContractFile:
    """The contract PDF as it stands and its verification, for a party or the oversight roles."""
    async with db.read() as s:
        order = await get_order(s, who, order_id)
        if not order.contract_no:
            raise InvalidInput("订单尚未确认，还没有电子合同", code="no_contract")
        data = await current_pdf(store, order)
    if data is None:
        return ContractFile(order, None, None)
    roots = await signing.signer_for(settings, db).trust_roots()
    return ContractFile(order, data, await signing.verify(data, roots))


async def unsigned_pdf(db: Database, settings: Settings, who: Principal, order_id: uuid.UUID) -> bytes:
    """The contract to read before signing: made from the order, not yet signed."""
    async with db.read() as s:
        order = await get_order(s, who, order_id)
        if not order.contract_no:
            raise InvalidInput("订单尚未确认，还没有电子合同", code="no_contract")
    return await asyncio.to_thread(pdf.render, contract_of(order, settings), font_path=settings.contract_font)
