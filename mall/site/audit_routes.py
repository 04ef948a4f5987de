"""The audit administrator's API and page: the audit log, filtered and paged, and its chain checked.
The audit administrator reads; nothing here changes anything but the log's own record of the read."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, get
from litestar.params import FromQuery
from litestar.response import Template

from mall.core import audit, audit_search
from mall.core.auth import Principal
from mall.core.clock import rfc3339
from mall.core.db import Database
from mall.core.errors import DomainError
from mall.core.guards import allow
from mall.core.models import AuditEntry
from mall.structs import AuditActor, AuditEntryOut, AuditPage, AuditVerifyOut
from mall.web.deps import UserCall
from mall.web.helpers import PageNo, PerPage, page_no, paging

TAGS = ["审计"]
AUDITOR = allow("auditor")
PER_PAGE = 50


def entry_out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        seq=e.seq,
        at=rfc3339(e.at),
        actor=AuditActor(e.actor_user_id, e.actor_username, e.actor_role),
        ip=e.ip,
        action=e.action,
        action_label=audit.ACTIONS.get(e.action, e.action),
        succeeded=e.succeeded,
        target_kind=e.target_kind,
        target=e.target,
        detail=e.detail,
        before=audit_search.parsed_state(e.before_state),
        after=audit_search.parsed_state(e.after_state),
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


async def read_log(
    db: Database, me: Principal, f: audit_search.Filter, page: int, per_page: int, where: str
) -> tuple[int, list[AuditEntry]]:
    """A page of the log; the read itself is recorded (who read which part of the log, and when)."""
    async with db.read() as s:
        total, rows = await audit_search.search(s, f, page, per_page)
    shown = "，".join(f"{k}={v}" for k, v in f.params().items()) or "全部"
    await audit.record_now(
        db,
        me,
        "audit_log_viewed",
        target_kind="audit_log",
        target=where,
        detail=f"筛选：{shown}；第 {page} 页",
    )
    return total, rows


FILTER_DOC = (
    "筛选：actor（用户名，含登录失败所指的账号）、action（操作代码）、target（对象，部分匹配）、ip、"
    "outcome（ok | failed）、from、to（YYYY-MM-DD，北京时间）。最新的在前。"
)


class AuditApi(Controller):
    path = "/api/audit"
    tags = TAGS
    opt = AUDITOR

    @get("/", summary="审计日志（审计管理员）", description=FILTER_DOC)
    async def list_entries(self, call: UserCall, page: PageNo = 1, per_page: PerPage = 50) -> AuditPage:
        f = audit_search.parse_filter(dict(call.request.query_params))
        total, rows = await read_log(call.db, call.me, f, page, per_page, "/api/audit")
        return AuditPage(total, page, per_page, call.settings.audit_online_days, [entry_out(e) for e in rows])

    @get("/verify", summary="重新计算审计日志的哈希链并校验")
    async def verify(self, call: UserCall) -> AuditVerifyOut:
        result = await audit.verify(call.db)
        await audit.record_now(
            call.db,
            call.me,
            "audit_verified",
            target_kind="audit_log",
            target="chain",
            ok=result.ok,
            detail=f"校验 {result.checked} 条"
            + ("，哈希链完整" if result.ok else f"，第 {result.seq} 条：{result.problem}"),
        )
        return AuditVerifyOut(result.ok, result.checked, result.seq, result.problem)


class AuditPages(Controller):
    path = "/audit"
    include_in_schema = False
    opt = AUDITOR

    @get("/")
    async def audit_page(self, call: UserCall, page: FromQuery[str] = "1") -> Template:
        params = {k: v for k, v in call.request.query_params.items() if k != "page"}
        p = page_no(page)
        error = ""
        try:
            f = audit_search.parse_filter(params)
        except DomainError as exc:  # a bad filter is shown, and the whole log listed
            f, error = audit_search.Filter(), exc.detail
        total, rows = await read_log(call.db, call.me, f, p, PER_PAGE, "/audit")
        query = urlencode(f.params())
        ctx: dict[str, Any] = {
            "entries": rows,
            "filters": f.params(),
            "error": error,
            "actions": audit.ACTIONS,
            "target_kinds": audit.TARGET_KINDS,
            "state_labels": audit.STATE_LABELS,
            "online_days": call.settings.audit_online_days,
            "state": audit_search.parsed_state,
            "filtered": bool(f.params()),
        }
        return call.render("audit.html", **ctx, **paging(total, p, PER_PAGE), query=query)


ROUTES = [AuditApi]
PAGES = [AuditPages]
