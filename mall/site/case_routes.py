"""Oversight cases: the regulator's case list and decisions, the parties' explanations (mall.supervision)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from mall.core import clock, fields
from mall.core.errors import InvalidInput
from mall.core.guards import allow
from mall.core.regions import region_name
from mall.supervision import cases
from mall.supervision.models import CASE_STATUS_LABELS, CaseEvent, CaseStatus, OversightCase
from mall.supervision.rules import RULE_NAMES, Params, catalogue
from mall.web import forms
from mall.web.deps import UserCall
from mall.web.helpers import Form, PageNo, PerPage, page_no, paging, pop_form

TAGS = ["监管"]
PER_PAGE = 20


class CaseEventOut(msgspec.Struct):
    at: datetime
    actor: str
    action: str
    detail: str

    @classmethod
    def of(cls, e: CaseEvent) -> CaseEventOut:
        return cls(e.at, e.actor_label, e.action, e.detail)


class CaseOut(msgspec.Struct):
    id: uuid.UUID
    case_no: str
    rule: str
    rule_name: str
    subject_key: str
    status: str
    status_label: str
    region_code: str
    buyer_org_id: uuid.UUID | None
    supplier_org_id: uuid.UUID | None
    party_org_id: uuid.UUID
    summary: str
    evidence: dict[str, Any]
    hits: int
    still_hit: bool
    opened_at: datetime
    last_hit_at: datetime
    explain_due_at: datetime
    explanation: str
    explained_at: datetime | None
    explained_late: bool
    decided_at: datetime | None
    decision_note: str
    history: list[CaseEventOut] | None = None

    @classmethod
    def of(cls, c: OversightCase, events: list[CaseEvent] | None = None) -> CaseOut:
        return cls(
            c.id,
            c.case_no,
            c.rule,
            RULE_NAMES.get(c.rule, c.rule),
            c.subject_key,
            c.status,
            CASE_STATUS_LABELS.get(c.status, c.status),
            c.region_code,
            c.buyer_org_id,
            c.supplier_org_id,
            c.party_org_id,
            c.summary,
            dict(c.evidence or {}),
            c.hits,
            c.still_hit,
            c.opened_at,
            c.last_hit_at,
            c.explain_due_at,
            c.explanation,
            c.explained_at,
            cases.is_late(c),
            c.decided_at,
            c.decision_note,
            None if events is None else [CaseEventOut.of(e) for e in events],
        )


class CasePage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[CaseOut]


class RuleOut(msgspec.Struct):
    code: str
    name: str
    source: str
    party: str
    definition: str


class ExplanationIn(msgspec.Struct, forbid_unknown_fields=True):
    explanation: fields.Explanation = ""


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: fields.Choice  # justified | violation | escalate (anything else: 400 invalid_decision)
    note: fields.DecisionNote = ""


def _day(raw: str, field: str) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("日期格式应为 YYYY-MM-DD", code="invalid_date", field=field) from None


def _filters(
    rule: str, status: str, region: str, party: str, opened_from: str, opened_to: str
) -> cases.Filters:
    party_id = None
    if party.strip():
        try:
            party_id = uuid.UUID(party.strip())
        except ValueError:
            raise InvalidInput("当事单位编号无效", code="invalid_party", field="party") from None
    start, end = _day(opened_from, "opened_from"), _day(opened_to, "opened_to")
    return cases.Filters(
        rule=rule.strip(),
        status=status.strip(),
        region=region.strip(),
        party_org_id=party_id,
        opened_from=datetime.combine(start, time.min, clock.SHANGHAI) if start else None,
        opened_to=datetime.combine(end + timedelta(days=1), time.min, clock.SHANGHAI) if end else None,
    )


async def _page(call: Any, f: cases.Filters, page: int, per_page: int) -> CasePage:
    async with call.db.read() as s:
        total, rows = await cases.list_cases(s, call.me, f, page, per_page)
    return CasePage(total, page, per_page, [CaseOut.of(c) for c in rows])


async def _detail(call: Any, case_id: uuid.UUID) -> CaseOut:
    async with call.db.read() as s:
        case = await cases.get_case(s, call.me, case_id)
        return CaseOut.of(case, await cases.history(s, case.id))


class OversightCaseApi(Controller):
    path = "/api/oversight"
    tags = TAGS

    @get(
        "/cases",
        opt=allow("regulator", "center"),
        summary="监管案件列表（本辖区；可按规则、状态、区划、当事单位、立案日期筛选）",
    )
    async def oversight_cases(
        self,
        call: UserCall,
        rule: FromQuery[str] = "",
        status: FromQuery[str] = "",
        region: FromQuery[str] = "",
        party: FromQuery[str] = "",
        opened_from: FromQuery[str] = "",
        opened_to: FromQuery[str] = "",
        page: PageNo = 1,
        per_page: PerPage = 20,
    ) -> CasePage:
        return await _page(
            call, _filters(rule, status, region, party, opened_from, opened_to), page, per_page
        )

    @get("/cases/{case_id:uuid}", opt=allow("regulator", "center"), summary="监管案件详情（证据与处理记录）")
    async def oversight_case(self, call: UserCall, case_id: FromPath[uuid.UUID]) -> CaseOut:
        return await _detail(call, case_id)

    @post(
        "/cases/{case_id:uuid}/decision",
        opt=allow("regulator"),
        status_code=200,
        summary="监管部门处理：理由成立、认定违规（附意见）或移送处理（附意见）",
    )
    async def decide_case(
        self, call: UserCall, case_id: FromPath[uuid.UUID], data: JSONBody[DecisionIn]
    ) -> CaseOut:
        await cases.decide(call.db, call.me, case_id, data.decision, data.note)
        return await _detail(call, case_id)

    @get("/rules", opt=allow("regulator", "center"), summary="风险预警规则目录（来源与参数）")
    async def risk_rules(self, call: UserCall) -> list[RuleOut]:
        return [RuleOut(r.code, r.name, r.source, r.party, r.definition) for r in catalogue(_params(call))]


def _params(call: Any) -> Params:
    st = call.settings
    return Params(
        open_tender_threshold=st.open_tender_threshold,
        decentralized_threshold=st.decentralized_threshold,
        min_participants=st.min_participants,
        payment_due_days=st.payment_due_days,
    )


class PartyCaseApi(Controller):
    path = "/api/cases"
    tags = TAGS

    @get("/", opt=allow("buyer", "supplier", "center"), summary="本单位需作出说明的监管事项")
    async def my_cases(
        self,
        call: UserCall,
        rule: FromQuery[str] = "",
        status: FromQuery[str] = "",
        page: PageNo = 1,
        per_page: PerPage = 20,
    ) -> CasePage:
        return await _page(call, cases.Filters(rule=rule.strip(), status=status.strip()), page, per_page)

    @get("/{case_id:uuid}", opt=allow("buyer", "supplier", "center"), summary="监管事项详情")
    async def my_case(self, call: UserCall, case_id: FromPath[uuid.UUID]) -> CaseOut:
        return await _detail(call, case_id)

    @post(
        "/{case_id:uuid}/explanation",
        opt=allow("buyer", "supplier", "center"),
        status_code=200,
        summary="当事单位作出说明（限待说明的事项；逾期说明会被标注）",
    )
    async def explain_case(
        self, call: UserCall, case_id: FromPath[uuid.UUID], data: JSONBody[ExplanationIn]
    ) -> CaseOut:
        await cases.explain(call.db, call.me, case_id, data.explanation)
        return await _detail(call, case_id)


# ---------------------------------------------------------------- pages


def _page_ctx(call: Any) -> dict[str, Any]:
    return {
        "rule_names": RULE_NAMES,
        "case_statuses": CASE_STATUS_LABELS,
        "region_of": region_name,
        "now": clock.now(),
        "is_late": cases.is_late,
        "evidence_rows": cases.evidence_rows,
    }


class OversightCasePages(Controller):
    path = "/oversight/cases"
    include_in_schema = False

    @get("/", opt=allow("regulator", "center"))
    async def oversight_cases_page(
        self,
        call: UserCall,
        rule: FromQuery[str] = "",
        status: FromQuery[str] = "",
        region: FromQuery[str] = "",
        page: FromQuery[str] = "1",
    ) -> Template:
        p = page_no(page)
        f = cases.Filters(
            rule=rule if rule in RULE_NAMES else "",
            status=status if status in CASE_STATUS_LABELS else "",
            region=region if len(region) == 6 and region.isdigit() else "",
        )
        async with call.db.read() as s:
            total, rows = await cases.list_cases(s, call.me, f, p, PER_PAGE)
            scope = await cases.scope_of(s, call.me)
        qs = "&".join(
            f"{k}={v}" for k, v in (("rule", f.rule), ("status", f.status), ("region", f.region)) if v
        )
        return call.render(
            "cases.html",
            rows=rows,
            **paging(total, p, PER_PAGE),
            filters=f,
            qs=qs,
            base="/oversight/cases",
            overseer=True,
            scope=scope,
            **_page_ctx(call),
        )

    @get("/{case_id:uuid}", opt=allow("regulator", "center"))
    async def oversight_case_page(self, call: UserCall, case_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            case = await cases.get_case(s, call.me, case_id)
            events = await cases.history(s, case.id)
        return call.render(
            "case.html",
            case=case,
            events=events,
            overseer=True,
            may_decide=call.me.role == "regulator" and case.status in cases.OPEN_STATUSES_FOR_DECISION,
            may_explain=False,
            form=pop_form(call.request),
            **_page_ctx(call),
        )

    @post("/{case_id:uuid}/decision", opt=allow("regulator"))
    async def decide_case_form(self, call: UserCall, case_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            body = forms.decode(DecisionIn, data)
            return await cases.decide(call.db, call.me, case_id, body.decision, body.note)

        back = f"/oversight/cases/{case_id}"
        return await call.act(go, "已登记处理结论", back, keep={**data, "action": "decision"})


class PartyCasePages(Controller):
    path = "/cases"
    include_in_schema = False

    @get("/", opt=allow("buyer", "supplier", "center"))
    async def cases_page(
        self, call: UserCall, status: FromQuery[str] = "", page: FromQuery[str] = "1"
    ) -> Template:
        p = page_no(page)
        f = cases.Filters(status=status if status in CASE_STATUS_LABELS else "")
        async with call.db.read() as s:
            total, rows = await cases.list_cases(s, call.me, f, p, PER_PAGE)
        return call.render(
            "cases.html",
            rows=rows,
            **paging(total, p, PER_PAGE),
            filters=f,
            qs=f"status={f.status}" if f.status else "",
            base="/cases",
            overseer=False,
            scope="",
            **_page_ctx(call),
        )

    @get("/{case_id:uuid}", opt=allow("buyer", "supplier", "center"))
    async def case_page(self, call: UserCall, case_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            case = await cases.get_case(s, call.me, case_id)
            events = await cases.history(s, case.id)
        return call.render(
            "case.html",
            case=case,
            events=events,
            overseer=False,
            may_decide=False,
            may_explain=case.status == CaseStatus.OPEN and case.party_org_id == call.me.org_id,
            form=pop_form(call.request),
            **_page_ctx(call),
        )

    @post("/{case_id:uuid}/explanation", opt=allow("buyer", "supplier", "center"))
    async def explain_case_form(self, call: UserCall, case_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            body = forms.decode(ExplanationIn, data)
            return await cases.explain(call.db, call.me, case_id, body.explanation)

        back = f"/cases/{case_id}"
        return await call.act(
            go, "说明已提交，等待财政监管部门认定", back, keep={**data, "action": "explain"}
        )


ROUTES = [OversightCaseApi, PartyCaseApi]
PAGES = [OversightCasePages, PartyCasePages]
