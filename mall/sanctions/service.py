"""Sanctions with due process. The procurement center decides (with reasons and the rule it
applies): a warning or a suspension of 1–24 months, an emergency suspension effective at once that
the supplier may rebut within one working day, or a permanent ban. Every sanction has an appeal
window (`MALL_SANCTION_APPEAL_WORKING_DAYS`): the supplier appeals once, the regulator decides, and
the outcome stays on the record. An oversight case the regulator escalated may be the ground.

in_force ──(ends_at passes: the periodic tick)──▶ expired
   ├──(emergency: the center lifts it after the rebuttal)──▶ lifted
   ├──(emergency: the center confirms it as a suspension)──▶ in_force (a suspension now)
   └──(the regulator overturns it on appeal)──▶ lifted

A sanction's start and end take effect at once for every path (`standing`); the search index
follows through the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Listing, ListingStatus
from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, retried, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from mall.core.models import Organization, OrgKind
from mall.core.settings import Settings
from mall.core.steps import end_of_day
from mall.notify.models import Kind
from mall.notify.stage import for_org, stage
from mall.orders.place import new_number
from mall.sanctions import rules
from mall.sanctions.models import AppealStatus, Sanction, SanctionKind, SanctionStatus
from mall.sanctions.standing import in_force_clause
from mall.supervision.models import CaseStatus, OversightCase
from search_index import sync as search_sync

REASON_MAX = fields.DECISION_NOTE_MAX
BASIS_MAX = 300
STATEMENT_MAX = fields.EXPLANATION_MAX
REBUT_WORKING_DAYS = 1


def text_of(value: str, label: str, limit: int, field: str, *, required: bool = True) -> str:
    out = fields.text(value, label, limit, multiline=True, field=field)
    if required and not out:
        raise InvalidInput(f"请填写{label}", code=f"{field}_required", field=field)
    return out


async def supplier_of(s: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await s.get(Organization, org_id)
    if org is None or org.kind != OrgKind.SUPPLIER:
        raise NotFound("供应商不存在", code="supplier_not_found")
    return org


async def _reindex_supplier(tx: Tx, org_id: uuid.UUID) -> None:
    """Its live listings leave the index (or come back): the index job reads the standing."""
    ids = (
        await tx.session.execute(
            select(Listing.id).where(Listing.supplier_org_id == org_id, Listing.status == ListingStatus.LIVE)
        )
    ).scalars()
    search_sync.stage(tx, list(ids))


def _notify(s: AsyncSession, x: Sanction, title: str, body: str) -> None:
    stage(
        s,
        [
            for_org(
                x.supplier_org_id,
                Kind.SANCTION_DECIDED,
                title,
                body,
                f"/sanctions/{x.id}",
                ref=f"sanction:{x.id}",
            )
        ],
    )


def _record(tx: Tx, who: Principal, action: str, x: Sanction, detail: str, before: dict[str, str]) -> None:
    audit.record(
        tx,
        who,
        action,
        target_kind="sanction",
        target=x.sanction_no,
        detail=detail,
        before=before,
        after={"kind": x.kind, "status": x.status, "appeal": x.appeal_status},
    )


def _state(x: Sanction) -> dict[str, str]:
    return {"kind": x.kind, "status": x.status, "appeal": x.appeal_status}


@retried_if_rolled_back
async def impose(
    db: Database,
    settings: Settings,
    who: Principal,
    supplier_org_id: uuid.UUID,
    kind: str,
    months: object,
    reason: str,
    basis: str = "",
    case_id: uuid.UUID | None = None,
) -> Sanction:
    """The procurement center sanctions a supplier, with reasons. Effective at once."""
    decision = checked(who, kind, months, reason, basis)
    async with db.write() as tx:
        return await impose_in(tx, settings, who, supplier_org_id, decision, case_id=case_id)


@dataclass(frozen=True)
class Decision:
    kind: str
    months: int
    reason: str
    basis: str


def checked(who: Principal, kind: str, months: object, reason: str, basis: str) -> Decision:
    """A sanction's terms as the center gave them, checked before any transaction."""
    if who.role != "center" or who.org_id is None or who.user_id is None:
        raise Forbidden("只有集中采购机构可以作出处理决定", code="forbidden")
    if kind not in {k.value for k in SanctionKind}:
        raise InvalidInput(
            "处理种类应为警告、暂停交易资格、紧急暂停或永久禁止", code="invalid_kind", field="kind"
        )
    return Decision(
        kind,
        rules.months_of(kind, months),
        text_of(reason, "处理理由", REASON_MAX, "reason"),
        text_of(basis, "处理依据", BASIS_MAX, "basis", required=False),
    )


async def impose_in(
    tx: Tx,
    settings: Settings,
    who: Principal,
    supplier_org_id: uuid.UUID,
    d: Decision,
    *,
    case_id: uuid.UUID | None = None,
    report_id: uuid.UUID | None = None,
) -> Sanction:
    """`impose` in the caller's transaction (a report decided together with its sanction)."""
    assert who.org_id is not None and who.user_id is not None
    now = clock.now()
    today = clock.local_date(now)
    cal = settings.work_calendar
    s = tx.session
    org = await supplier_of(s, supplier_org_id)
    if case_id is not None:
        case = await s.get(OversightCase, case_id)
        if case is None or case.status != CaseStatus.ESCALATED or case.supplier_org_id != org.id:
            raise InvalidInput(
                "所引监管事项须为已移送处理的、涉及该供应商的事项",
                code="case_not_escalated",
                field="case_id",
            )
    x = Sanction(
        id=uuid.uuid4(),
        sanction_no=new_number("CF"),
        supplier_org_id=org.id,
        kind=d.kind,
        months=d.months,
        status=SanctionStatus.IN_FORCE,
        reason=d.reason,
        basis=d.basis,
        case_id=case_id,
        report_id=report_id,
        decided_by=who.user_id,
        decided_by_org_id=who.org_id,
        decided_at=now,
        starts_at=now,
        ends_at=rules.ends_at(d.kind, now, d.months),
        appeal_due_at=end_of_day(cal.add_working_days(today, settings.sanction_appeal_working_days)),
        rebut_due_at=(
            end_of_day(cal.add_working_days(today, REBUT_WORKING_DAYS))
            if d.kind == SanctionKind.EMERGENCY
            else None
        ),
        appeal_status=AppealStatus.NONE,
    )
    s.add(x)
    await s.flush()
    label = SanctionKind(d.kind).label
    term = f"{d.months} 个月" if d.months else ("永久" if d.kind == SanctionKind.BAN else "至复核决定")
    _record(tx, who, "sanction_imposed", x, f"{org.name}：{label}（{term}）。{d.reason}", {})
    tail = "；可在 1 个工作日内提出陈述申辩" if d.kind == SanctionKind.EMERGENCY else ""
    _notify(
        s,
        x,
        f"处理决定：{label}（{term}）",
        f"理由：{d.reason}。可于 {clock.local_date(x.appeal_due_at).isoformat()} 前提出申诉{tail}。",
    )
    await _reindex_supplier(tx, org.id)
    return x


async def _locked(s: AsyncSession, sanction_id: uuid.UUID) -> Sanction:
    x = await s.get(Sanction, sanction_id, with_for_update=True)
    if x is None:
        raise NotFound("处理决定不存在", code="sanction_not_found")
    return x


def _own(who: Principal, x: Sanction) -> None:
    if who.role != "supplier" or who.org_id != x.supplier_org_id:
        raise NotFound("处理决定不存在", code="sanction_not_found")


@retried
async def rebut(db: Database, who: Principal, sanction_id: uuid.UUID, statement: str) -> Sanction:
    """The supplier's rebuttal of an emergency suspension, once, within one working day."""
    body = text_of(statement, "陈述申辩", STATEMENT_MAX, "statement")
    now = clock.now()
    async with db.write() as tx:
        x = await _locked(tx.session, sanction_id)
        _own(who, x)
        if x.kind != SanctionKind.EMERGENCY or x.status != SanctionStatus.IN_FORCE:
            raise Conflict("只有执行中的紧急暂停可以陈述申辩", code="not_rebuttable")
        if x.rebutted_at is not None:
            raise Conflict("已提交陈述申辩", code="already_rebutted")
        assert x.rebut_due_at is not None
        if now > x.rebut_due_at:
            raise Conflict("已超过陈述申辩期限（1 个工作日）", code="rebuttal_late")
        before = _state(x)
        x.rebuttal, x.rebutted_at = body, now
        _record(tx, who, "sanction_rebutted", x, body[:200], before)
        return x


@retried
async def review_emergency(
    db: Database, who: Principal, sanction_id: uuid.UUID, decision: str, months: object, reason: str
) -> Sanction:
    """The center ends an emergency suspension: lifted, or confirmed as a suspension of 1–24 months
    counted from the emergency's start."""
    if who.role != "center":
        raise Forbidden("只有集中采购机构可以复核紧急暂停", code="forbidden")
    if decision not in ("lift", "confirm"):
        raise InvalidInput(
            "复核结论应为撤销（lift）或转为暂停（confirm）", code="invalid_decision", field="decision"
        )
    why = text_of(reason, "复核意见", REASON_MAX, "reason")
    n = rules.months_of(SanctionKind.SUSPENSION, months) if decision == "confirm" else 0
    now = clock.now()
    async with db.write() as tx:
        x = await _locked(tx.session, sanction_id)
        if x.kind != SanctionKind.EMERGENCY or x.status != SanctionStatus.IN_FORCE:
            raise Conflict("只有执行中的紧急暂停可以复核", code="not_emergency")
        before = _state(x)
        if decision == "lift":
            x.status, x.ended_at, x.end_reason = SanctionStatus.LIFTED, now, why
            _notify(tx.session, x, "紧急暂停已撤销", f"复核意见：{why}")
        else:
            x.kind, x.months = SanctionKind.SUSPENSION, n
            x.ends_at = rules.ends_at(SanctionKind.SUSPENSION, x.starts_at, n)
            x.end_reason = why
            _notify(tx.session, x, f"紧急暂停已转为暂停交易资格 {n} 个月", f"复核意见：{why}")
        _record(tx, who, "sanction_reviewed", x, why[:200], before)
        await _reindex_supplier(tx, x.supplier_org_id)
        return x


@retried
async def appeal(db: Database, who: Principal, sanction_id: uuid.UUID, statement: str) -> Sanction:
    """The supplier appeals, once, within the window; the regulator decides."""
    body = text_of(statement, "申诉理由", STATEMENT_MAX, "statement")
    now = clock.now()
    async with db.write() as tx:
        x = await _locked(tx.session, sanction_id)
        _own(who, x)
        if x.appeal_status != AppealStatus.NONE:
            raise Conflict("该处理决定已申诉", code="already_appealed")
        if now > x.appeal_due_at:
            raise Conflict(
                f"申诉期限已于 {clock.local_date(x.appeal_due_at).isoformat()} 届满",
                code="appeal_window_closed",
            )
        before = _state(x)
        x.appeal_status, x.appeal_text, x.appeal_filed_at = AppealStatus.FILED, body, now
        _record(tx, who, "sanction_appealed", x, body[:200], before)
        return x


@retried
async def decide_appeal(
    db: Database, who: Principal, sanction_id: uuid.UUID, outcome: str, reason: str
) -> Sanction:
    """The regulator decides the appeal: upheld (the sanction stands) or overturned (lifted at once)."""
    if who.role != "regulator" or who.user_id is None:
        raise Forbidden("只有财政监管部门可以处理申诉", code="forbidden")
    if outcome not in (AppealStatus.UPHELD, AppealStatus.OVERTURNED):
        raise InvalidInput(
            "申诉结论应为维持（upheld）或撤销（overturned）", code="invalid_outcome", field="outcome"
        )
    why = text_of(reason, "申诉处理意见", REASON_MAX, "reason")
    now = clock.now()
    async with db.write() as tx:
        x = await _locked(tx.session, sanction_id)
        if x.appeal_status != AppealStatus.FILED:
            raise Conflict("该处理决定没有待处理的申诉", code="no_appeal")
        before = _state(x)
        x.appeal_status = outcome
        x.appeal_decided_at, x.appeal_decided_by, x.appeal_reason = now, who.user_id, why
        if outcome == AppealStatus.OVERTURNED and x.status == SanctionStatus.IN_FORCE:
            x.status, x.ended_at, x.end_reason = SanctionStatus.LIFTED, now, f"申诉成立：{why}"
            await _reindex_supplier(tx, x.supplier_org_id)
        label = AppealStatus(outcome).label
        _notify(tx.session, x, f"申诉结果：{label}", f"处理意见：{why}")
        _record(tx, who, "sanction_appeal_decided", x, why[:200], before)
        return x


async def expire_due(db: Database, at: datetime | None = None) -> int:
    """The periodic tick: sanctions whose end has passed are marked expired, and their suppliers'
    listings return to the index. (Their end bound every path already: `standing` reads the time.)"""
    now = at or clock.now()
    async with db.write() as tx:
        rows = (
            await tx.session.execute(
                select(Sanction.id, Sanction.supplier_org_id)
                .where(Sanction.status == SanctionStatus.IN_FORCE, Sanction.ends_at <= now)
                .with_for_update()
            )
        ).all()
        if not rows:
            return 0
        await tx.session.execute(
            update(Sanction)
            .where(Sanction.id.in_([r[0] for r in rows]))
            .values(status=SanctionStatus.EXPIRED, ended_at=Sanction.ends_at, end_reason="期满")
        )
        for org_id in sorted({r[1] for r in rows}):
            await _reindex_supplier(tx, org_id)
        return len(rows)


async def public_list(
    s: AsyncSession, page: int = 1, per_page: int = 20, at: datetime | None = None
) -> tuple[int, list[tuple[Sanction, str]]]:
    """不良行为记录: every sanction in force, the newest first, with the supplier's name."""
    return await _listed(s, in_force_clause(at or clock.now()), Sanction.starts_at, page, per_page)


async def _listed(
    s: AsyncSession, where: Any, newest: Any, page: int, per_page: int
) -> tuple[int, list[tuple[Sanction, str]]]:
    """A page of sanctions with their suppliers' names, the newest (by `newest`) first."""
    total = await s.scalar(select(func.count()).select_from(Sanction).where(where)) or 0
    rows = (
        await s.execute(
            select(Sanction, Organization.name)
            .join(Organization, Organization.id == Sanction.supplier_org_id)
            .where(where)
            .order_by(newest.desc(), Sanction.sanction_no)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).all()
    return int(total), [(r[0], r[1]) for r in rows]


async def supplier_sanctions(
    s: AsyncSession, org_id: uuid.UUID, page: int = 1, per_page: int = 20
) -> tuple[int, list[tuple[Sanction, str]]]:
    """Every sanction against one supplier, in force or not, the newest first (its own page)."""
    return await _listed(s, Sanction.supplier_org_id == org_id, Sanction.decided_at, page, per_page)


async def get_visible(s: AsyncSession, who: Principal | None, sanction_id: uuid.UUID) -> Sanction:
    """A sanction in force is public; the rest (and the statements) is seen by the supplier itself,
    the center and the regulator."""
    x = await s.get(Sanction, sanction_id)
    if x is None:
        raise NotFound("处理决定不存在", code="sanction_not_found")
    overseer = who is not None and who.role in ("center", "regulator")
    own = who is not None and who.role == "supplier" and who.org_id == x.supplier_org_id
    if not (overseer or own or rules.in_force(x.status, x.starts_at, x.ends_at, clock.now())):
        raise NotFound("处理决定不存在", code="sanction_not_found")
    return x


def can_read_statements(who: Principal | None, x: Sanction) -> bool:
    return who is not None and (
        who.role in ("center", "regulator") or (who.role == "supplier" and who.org_id == x.supplier_org_id)
    )


__all__ = [
    "appeal",
    "decide_appeal",
    "expire_due",
    "impose",
    "public_list",
    "rebut",
    "review_emergency",
]
