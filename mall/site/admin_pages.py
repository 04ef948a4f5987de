"""The platform admin's page: organizations with their users and budget lines, login throttles."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall import accounts, budgets
from mall.core import clock, login_throttle, personal_data
from mall.core.auth import allow
from mall.core.models import ORG_KIND_LABELS, OrgKind
from mall.site.admin_routes import add_budget_line, clear_throttle, create_user
from mall.structs import BudgetLineCreate, UserCreate
from mall.web import forms
from mall.web.deps import DB, Me, UserCall
from mall.web.helpers import AnyRequest, Form, page_no, paging, pop_form, render

PER_PAGE = 30


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/", opt=allow("admin"))
    async def admin_page(
        self, request: AnyRequest, me: Me, db: DB, kind: FromQuery[str] = "", page: FromQuery[str] = "1"
    ) -> Template:
        p = page_no(page)
        kind = kind if kind in ORG_KIND_LABELS else ""  # a bad filter is dropped
        async with db.read() as s:
            total, orgs = await accounts.list_orgs(s, kind or None, p, PER_PAGE)
            users = await accounts.users_of(s, [o.id for o in orgs])
            lines = {o.id: await budgets.lines_of(s, o.id) for o in orgs if o.kind == OrgKind.BUDGET_UNIT}
            now = clock.now()
            throttles = [
                (t, login_throttle.retry_after(t, now)) for t in await login_throttle.in_force(s, now)
            ]
        await personal_data.log_read(
            db,
            me,
            f"/admin?kind={kind}&page={p}",
            f"单位地址、联系电话与用户姓名：{len(orgs)} 家单位；登录限制的网络地址",
            login_throttle.client_of(request),
        )
        return render(
            request,
            "admin.html",
            throttles=throttles,
            orgs=orgs,
            users=users,
            **paging(total, p, PER_PAGE),
            kind=kind,
            kinds=ORG_KIND_LABELS,
            budget_lines=lines,
            year=clock.local_date(clock.now()).year,
            form=pop_form(request),
        )

    @post("/organizations", opt=allow("admin"))
    async def admin_register(self, call: UserCall, data: Form) -> Redirect:
        return await call.act(
            lambda: accounts.register_org(call.db, call.me, forms.decode(accounts.OrganizationCreate, data)),
            lambda org: f"已登记：{org.name}（{org.credit_code}）",
            "/admin",
            keep=data,
        )

    @post("/organizations/{org_id:uuid}/users", opt=allow("admin"))
    async def admin_create_user(self, call: UserCall, org_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: create_user(call.db, call.me, org_id, forms.decode(UserCreate, data)),
            "用户已开设",
            "/admin",
            keep={**data, "org": str(org_id), "target": "users"},
        )

    @post("/login-throttles/{throttle_id:uuid}/clear", opt=allow("admin"))
    async def admin_clear_throttle(self, call: UserCall, throttle_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: clear_throttle(call.request, call.db, call.me, throttle_id),
            "登录限制已解除",
            "/admin",
        )

    @post("/organizations/{org_id:uuid}/budget-lines", opt=allow("admin"))
    async def admin_add_budget_line(
        self, call: UserCall, org_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        return await call.act(
            lambda: add_budget_line(call.db, call.me, org_id, forms.decode(BudgetLineCreate, data)),
            "预算指标已录入",
            "/admin",
            keep={**data, "org": str(org_id), "target": "budget"},
        )


ROUTES = [AdminPages]
