"""The case workflow: the regulator's list and decisions (scoped to its region), the party's
explanation. Every step is a line of the case's history and an entry of the audit log.

open ──explain (the party)──▶ explained ──decide (the regulator)──▶ justified | violation | escalated
  └────────────────decide (the regulator, without waiting)─────────────────▲

An explanation after the deadline is taken and marked late. An escalated case is what the
sanctions work reads (its decision note is the reason)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from mall.core.regions import in_scope, org_region, scope_prefix
from mall.credit import record as credit
from mall.supervision.models import CLOSED_STATUSES, CaseEvent, CaseStatus, OversightCase
from mall.supervision.rules import RULE_NAMES

EXPLANATION_MAX = fields.EXPLANATION_MAX
NOTE_MAX = fields.DECISION_NOTE_MAX
OVERSEERS = ("regulator", "center")  # read every case of their region; only the regulator decides
PARTIES = ("buyer", "supplier", "center")  # the users of a case's party organization explain


_REGION = cast(ColumnElement[str], OversightCase.region_code)

OPEN_STATUSES_FOR_DECISION = (CaseStatus.OPEN, CaseStatus.EXPLAINED)

DECISIONS = {
    "justified": CaseStatus.JUSTIFIED,
    "violation": CaseStatus.VIOLATION,
    "escalate": CaseStatus.ESCALATED,
    "escalated": CaseStatus.ESCALATED,
}


@dataclass(frozen=True)
class Filters:
    rule: str = ""
    status: str = ""
    region: str = ""  # within the caller's scope
    party_org_id: uuid.UUID | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None


async def scope_of(s: AsyncSession, who: Principal) -> str:
    """The region an overseer sees: its organization's. An overseer without one sees nothing."""
    return await org_region(s, who.org_id) or "-"


async def _visible(s: AsyncSession, who: Principal) -> ColumnElement[bool]:
    if who.role in OVERSEERS:
        return in_scope(_REGION, await scope_of(s, who))
    if who.role in PARTIES and who.org_id is not None:
        return OversightCase.party_org_id == who.org_id
    raise Forbidden("无权查看监管事项", code="forbidden")


def _filtered(f: Filters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [true()]
    if f.rule:
        out.append(OversightCase.rule == f.rule)
    if f.status:
        out.append(OversightCase.status == f.status)
    if f.region:
        out.append(in_scope(_REGION, f.region))
    if f.party_org_id is not None:
        out.append(OversightCase.party_org_id == f.party_org_id)
    if f.opened_from is not None:
        out.append(OversightCase.opened_at >= f.opened_from)
    if f.opened_to is not None:
        out.append(OversightCase.opened_at < f.opened_to)
    return out


def check_filters(f: Filters) -> None:
    if f.rule and f.rule not in RULE_NAMES:
        raise InvalidInput("未知的预警规则", code="unknown_rule", field="rule")
    if f.status and f.status not in {s.value for s in CaseStatus}:
        raise InvalidInput("未知的事项状态", code="unknown_status", field="status")
    if f.region and (len(f.region) != 6 or not f.region.isdigit()):
        raise InvalidInput("行政区划代码应为6位数字", code="invalid_region", field="region")


async def list_cases(
    s: AsyncSession, who: Principal, f: Filters, page: int = 1, per_page: int = 20
) -> tuple[int, list[OversightCase]]:
    """The cases `who` may see that match `f`, the most recently opened first."""
    check_filters(f)
    where = [await _visible(s, who), *_filtered(f)]
    total = await s.scalar(select(func.count()).select_from(OversightCase).where(*where)) or 0
    rows = (
        await s.execute(
            select(OversightCase)
            .where(*where)
            .order_by(OversightCase.opened_at.desc(), OversightCase.case_no.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).scalars()
    return int(total), list(rows)


async def get_case(s: AsyncSession, who: Principal, case_id: uuid.UUID) -> OversightCase:
    """The case, if `who` may see it; 404 otherwise (another region's, another party's)."""
    case = await s.scalar(select(OversightCase).where(OversightCase.id == case_id, await _visible(s, who)))
    if case is None:
        raise NotFound("监管事项不存在", code="case_not_found")
    return case


async def history(s: AsyncSession, case_id: uuid.UUID) -> list[CaseEvent]:
    rows = await s.execute(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.at, CaseEvent.id)
    )
    return list(rows.scalars())


def _label(who: Principal) -> str:
    return f"{who.org_name}·{who.display_name}"


async def _locked(s: AsyncSession, case_id: uuid.UUID) -> OversightCase:
    case = await s.get(OversightCase, case_id, with_for_update=True)
    if case is None:
        raise NotFound("监管事项不存在", code="case_not_found")
    return case


def is_late(case: OversightCase, at: datetime | None = None) -> bool:
    when = at or case.explained_at
    return when is not None and when > case.explain_due_at


@retried
async def explain(db: Database, who: Principal, case_id: uuid.UUID, text: str) -> OversightCase:
    """The party's explanation: once, while the case is open; after the deadline it is marked late."""
    if who.role not in PARTIES or who.org_id is None:
        raise Forbidden("只有被监管的当事单位可以作出说明", code="forbidden")
    body = fields.text(text, "说明", EXPLANATION_MAX, multiline=True, field="explanation")
    if not body:
        raise InvalidInput("请填写说明", code="explanation_required", field="explanation")
    now = clock.now()
    async with db.write() as tx:
        s = tx.session
        case = await _locked(s, case_id)
        if case.party_org_id != who.org_id:
            raise NotFound("监管事项不存在", code="case_not_found")
        if case.status != CaseStatus.OPEN:
            raise Conflict("该事项已说明或已处理，不能再作说明", code="case_not_open")
        late = now > case.explain_due_at
        case.explanation = body
        case.explained_at = now
        case.explained_by = who.user_id
        case.status = CaseStatus.EXPLAINED
        s.add(
            CaseEvent(
                id=uuid.uuid4(),
                case_id=case.id,
                at=now,
                actor_user_id=who.user_id,
                actor_label=_label(who),
                action="explained",
                detail=("（逾期说明）" if late else "") + body,
            )
        )
        audit.record(
            tx,
            who,
            "case_explained",
            target_kind="case",
            target=case.case_no,
            before={"status": CaseStatus.OPEN.value},
            after={"status": CaseStatus.EXPLAINED.value, "late": late},
        )
        return case


@retried
async def decide(db: Database, who: Principal, case_id: uuid.UUID, decision: str, note: str) -> OversightCase:
    """The regulator of the case's region closes it (justified, violation) or escalates it."""
    if who.role != "regulator":
        raise Forbidden("只有财政监管部门可以处理监管事项", code="forbidden")
    status = DECISIONS.get((decision or "").strip())
    if status is None:
        raise InvalidInput(
            "处理结论应为理由成立、认定违规或移送处理", code="invalid_decision", field="decision"
        )
    text = fields.text(note, "处理意见", NOTE_MAX, multiline=True, field="note")
    if status != CaseStatus.JUSTIFIED and not text:
        raise InvalidInput("认定违规或移送处理须填写处理意见", code="note_required", field="note")
    now = clock.now()
    async with db.write() as tx:
        s = tx.session
        scope = await scope_of(s, who)
        case = await _locked(s, case_id)
        if not case.region_code.startswith(scope_prefix(scope)):
            raise NotFound("监管事项不存在", code="case_not_found")
        if case.status in CLOSED_STATUSES:
            raise Conflict("该事项已处理", code="case_closed")
        before = case.status
        case.status = status
        case.decided_at = now
        case.decided_by = who.user_id
        case.decision_note = text
        if (
            status == CaseStatus.VIOLATION
            and case.supplier_org_id
            and case.party_org_id == case.supplier_org_id
        ):
            # a supplier's own violation counts against its credit (mall.credit)
            await credit.record(
                s,
                case.supplier_org_id,
                "violation_case",
                source_kind="case",
                source_id=case.id,
                ref=case.case_no,
                at=now,
            )
        s.add(
            CaseEvent(
                id=uuid.uuid4(),
                case_id=case.id,
                at=now,
                actor_user_id=who.user_id,
                actor_label=_label(who),
                action=status.value,
                detail=text,
            )
        )
        audit.record(
            tx,
            who,
            f"case_{status.value}",
            target_kind="case",
            target=case.case_no,
            before={"status": before},
            after={"status": status.value, "note": text},
        )
        return case


def evidence_rows(case: OversightCase) -> list[tuple[str, Any]]:
    """The evidence as (label, value) for pages."""
    return [(EVIDENCE_LABELS.get(k, k), v) for k, v in (case.evidence or {}).items()]


EVIDENCE_LABELS = {
    "project_code": "预算项目",
    "fiscal_year": "财政年度",
    "category_class": "品目类",
    "category_code": "品目编码",
    "orders": "订单笔数",
    "total": "金额",
    "threshold": "标准",
    "order_no": "订单号",
    "item_name": "商品",
    "line_no": "行号",
    "unit_price": "成交单价",
    "median": "市场中位价",
    "samples": "样本数",
    "limit": "预警线",
    "accepted_at": "验收时间",
    "days": "天数",
    "since": "起算时间",
    "status": "状态",
    "received_at": "到货时间",
    "year": "年度",
    "buyer_total": "采购总额",
    "supplier_total": "该供应商金额",
    "share": "份额",
    "number": "项目编号",
    "kind": "方式",
    "participants": "有效参与家数",
    "minimum": "最少家数",
    "amount": "报价",
    "suppliers": "供应商",
    "winner_amount": "成交价",
    "runner_up_amount": "第二名报价",
    "ceiling": "最高限价",
    "reasons": "触发条件",
    "won": "是否成交",
    "procedures": "项目",
    "winners": "成交供应商",
    "sequence": "成交顺序",
    "review_due_at": "审核期限",
}
