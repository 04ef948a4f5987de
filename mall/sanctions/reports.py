"""Violation reports: a buyer reports a supplier with evidence; the procurement center decides within
`MALL_REPORT_DECISION_WORKING_DAYS` working days: upheld (with a sanction, in the same transaction)
or dismissed, with reasons. The reporter, the supplier reported, the center and the regulator read a
report and its evidence; nobody else learns of it. Evidence files (PDF, JPEG, PNG; at most
`EVIDENCE_FILES` of `EVIDENCE_BYTES` each) go to the mall's file store (the database, or an
S3-compatible store by setting) and are served back only to those readers, with their SHA-256.

submitted ──decide (the center)──▶ upheld (a sanction) | dismissed"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock, fields, files
from mall.core.auth import Principal
from mall.core.db import Database, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from mall.core.models import Organization
from mall.core.settings import Settings
from mall.core.steps import end_of_day
from mall.orders.models import Order
from mall.orders.place import new_number
from mall.sanctions.models import ReportReason, ReportStatus, Sanction, ViolationReport
from mall.sanctions.service import Decision, impose_in, supplier_of, text_of

DESCRIPTION_MAX = fields.EXPLANATION_MAX
EVIDENCE_FILES = 5
EVIDENCE_BYTES = 10 * 1024 * 1024
# What an evidence file may be, by its first bytes (never by its name): a document or a photo.
EVIDENCE_TYPES = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)
READERS = ("center", "regulator")


def evidence_type(content: bytes) -> tuple[str, str]:
    for magic, mime, ext in EVIDENCE_TYPES:
        if content.startswith(magic):
            return mime, ext
    raise InvalidInput("证据材料只能是 PDF、JPEG 或 PNG 文件", code="evidence_type", field="evidence")


def _visible(who: Principal) -> ColumnElement[bool]:
    if who.role in READERS:
        return true()
    if who.role == "buyer" and who.org_id is not None:
        return ViolationReport.reporter_org_id == who.org_id
    if who.role == "supplier" and who.org_id is not None:
        return ViolationReport.supplier_org_id == who.org_id
    raise Forbidden("无权查看违规举报", code="forbidden")


async def file_report(
    db: Database,
    settings: Settings,
    store: files.FileStore,
    who: Principal,
    supplier_org_id: uuid.UUID,
    reason: str,
    description: str,
    evidence: list[tuple[str, bytes]],
    order_id: uuid.UUID | None = None,
) -> ViolationReport:
    """A buyer reports a supplier. Everything is checked before anything is stored: the text, the
    evidence whole, the supplier and the order. The files are stored before the report commits (a
    report never names a file that is not there); a report that then fails to commit takes its
    files away again, so a refusal leaves nothing behind."""
    if who.role != "buyer" or who.org_id is None or who.user_id is None:
        raise Forbidden("只有采购人可以举报供应商违规", code="forbidden")
    if reason not in ReportReason.labels():
        raise InvalidInput("请选择举报事由", code="invalid_reason", field="reason")
    body = text_of(description, "事实与经过", DESCRIPTION_MAX, "description")
    if len(evidence) > EVIDENCE_FILES:
        raise InvalidInput(f"证据材料最多 {EVIDENCE_FILES} 个文件", code="too_many_files", field="evidence")
    checked_files = []
    for name, content in evidence:
        shown = fields.text(name, "文件名", fields.NAME_MAX, field="evidence") or "证据"
        if not content:
            raise InvalidInput(f"文件「{shown}」是空的", code="evidence_empty", field="evidence")
        if len(content) > EVIDENCE_BYTES:
            raise InvalidInput(
                f"文件「{shown}」超过 {EVIDENCE_BYTES // 1024 // 1024} MB",
                code="evidence_too_large",
                field="evidence",
            )
        checked_files.append((shown, content, *evidence_type(content)))
    async with db.read() as s:
        await _check_parties(s, who, supplier_org_id, order_id)
    report_id = uuid.uuid4()
    stored: list[dict[str, Any]] = []
    try:
        for n, (shown, content, mime, ext) in enumerate(checked_files, start=1):
            key = f"evidence/{report_id}/{n}.{ext}"
            size = await store.put(key, content, content_type=mime)
            stored.append(
                {
                    "name": shown,
                    "key": key,
                    "size": size,
                    "type": mime,
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            )
        return await db.retrying(
            lambda: _insert(db, settings, who, report_id, supplier_org_id, order_id, reason, body, stored),
            unseen_commit=False,
        )
    except BaseException:
        async with db.read() as s:  # a commit that happened unseen keeps its files
            committed = await s.get(ViolationReport, report_id) is not None
        if not committed:
            for item in stored:
                await store.delete(str(item["key"]))
        raise


async def _check_parties(
    s: AsyncSession, who: Principal, supplier_org_id: uuid.UUID, order_id: uuid.UUID | None
) -> Organization:
    supplier = await supplier_of(s, supplier_org_id)
    if order_id is not None:
        order = await s.get(Order, order_id)
        if order is None or order.buyer_org_id != who.org_id or order.supplier_org_id != supplier.id:
            raise InvalidInput("所引订单须为本单位向该供应商下的订单", code="invalid_order", field="order_id")
    return supplier


async def _insert(
    db: Database,
    settings: Settings,
    who: Principal,
    report_id: uuid.UUID,
    supplier_org_id: uuid.UUID,
    order_id: uuid.UUID | None,
    reason: str,
    body: str,
    stored: list[dict[str, Any]],
) -> ViolationReport:
    assert who.org_id is not None and who.user_id is not None
    now = clock.now()
    due = end_of_day(
        settings.work_calendar.add_working_days(clock.local_date(now), settings.report_decision_working_days)
    )
    async with db.write() as tx:
        s = tx.session
        supplier = await _check_parties(s, who, supplier_org_id, order_id)
        report = ViolationReport(
            id=report_id,
            report_no=new_number("JB"),
            reporter_org_id=who.org_id,
            reporter_user_id=who.user_id,
            supplier_org_id=supplier.id,
            order_id=order_id,
            reason=reason,
            description=body,
            evidence=stored,
            status=ReportStatus.SUBMITTED,
            filed_at=now,
            decide_due_at=due,
        )
        s.add(report)
        audit.record(
            tx,
            who,
            "report_filed",
            target_kind="report",
            target=report.report_no,
            detail=f"{supplier.name}：{ReportReason(reason).label}",
            after={"status": ReportStatus.SUBMITTED.value, "files": len(stored)},
        )
        return report


async def list_reports(
    s: AsyncSession, who: Principal, status: str = "", page: int = 1, per_page: int = 20
) -> tuple[int, list[ViolationReport]]:
    if status and status not in ReportStatus.labels():
        raise InvalidInput("未知的举报状态", code="unknown_status", field="status")
    where = [_visible(who)] + ([ViolationReport.status == status] if status else [])
    total = await s.scalar(select(func.count()).select_from(ViolationReport).where(*where)) or 0
    rows = (
        await s.execute(
            select(ViolationReport)
            .where(*where)
            .order_by(ViolationReport.filed_at.desc(), ViolationReport.report_no.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).scalars()
    return int(total), list(rows)


async def get_report(s: AsyncSession, who: Principal, report_id: uuid.UUID) -> ViolationReport:
    found = await s.scalar(select(ViolationReport).where(ViolationReport.id == report_id, _visible(who)))
    if found is None:
        raise NotFound("举报不存在", code="report_not_found")
    return found


def is_overdue(r: ViolationReport, at: datetime | None = None) -> bool:
    return r.status == ReportStatus.SUBMITTED and (at or clock.now()) > r.decide_due_at


@retried_if_rolled_back
async def decide(
    db: Database,
    settings: Settings,
    who: Principal,
    report_id: uuid.UUID,
    outcome: str,
    reason: str,
    sanction: Decision | None = None,
) -> ViolationReport:
    """The center decides: upheld, with the sanction it imposes (a warning at least), or dismissed."""
    if who.role != "center" or who.user_id is None:
        raise Forbidden("只有集中采购机构可以处理违规举报", code="forbidden")
    if outcome not in (ReportStatus.UPHELD, ReportStatus.DISMISSED):
        raise InvalidInput(
            "处理结论应为查证属实（upheld）或不予支持（dismissed）", code="invalid_outcome", field="outcome"
        )
    why = text_of(reason, "处理理由", fields.DECISION_NOTE_MAX, "reason")
    if outcome == ReportStatus.UPHELD and sanction is None:
        raise InvalidInput("查证属实的举报须作出处理决定（至少警告）", code="sanction_required", field="kind")
    now = clock.now()
    async with db.write() as tx:
        s = tx.session
        report = await s.get(ViolationReport, report_id, with_for_update=True)
        if report is None:
            raise NotFound("举报不存在", code="report_not_found")
        if report.status != ReportStatus.SUBMITTED:
            raise Conflict("该举报已处理", code="report_decided")
        late = now > report.decide_due_at
        if outcome == ReportStatus.UPHELD:
            assert sanction is not None
            x = await impose_in(tx, settings, who, report.supplier_org_id, sanction, report_id=report.id)
            report.sanction_id = x.id
        report.status, report.decided_at, report.decided_by = outcome, now, who.user_id
        report.decision_reason = why
        audit.record(
            tx,
            who,
            f"report_{outcome}",
            target_kind="report",
            target=report.report_no,
            detail=why[:200],
            before={"status": ReportStatus.SUBMITTED.value},
            after={"status": outcome, "late": late},
        )
        return report


async def evidence_file(
    db: Database, store: files.FileStore, who: Principal, report_id: uuid.UUID, n: int
) -> tuple[dict[str, object], AsyncIterator[bytes]]:
    """The n-th evidence file (1-based) of a report `who` may read, and its content."""
    async with db.read() as s:
        report = await get_report(s, who, report_id)
    if not 1 <= n <= len(report.evidence):
        raise NotFound("证据材料不存在", code="evidence_not_found")
    item = report.evidence[n - 1]
    return item, store.chunks(str(item["key"]))


async def sanction_of(s: AsyncSession, report: ViolationReport) -> Sanction | None:
    return None if report.sanction_id is None else await s.get(Sanction, report.sanction_id)


__all__ = ["decide", "evidence_file", "file_report", "get_report", "list_reports"]
