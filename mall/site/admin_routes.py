"""The platform admin's API: organizations, their users and budget lines, login throttles."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from mall import accounts, budgets
from mall.budgets.models import BudgetLine
from mall.core import clock, login_throttle
from mall.core.auth import Principal, allow
from mall.core.clock import rfc3339
from mall.core.db import Database
from mall.core.models import Organization, User
from mall.structs import (
    BudgetLineCreate,
    BudgetLineOut,
    LoginThrottleOut,
    OrganizationOut,
    OrganizationPage,
    UserCreate,
    UserOut,
)
from mall.web.deps import DB, UserCall
from mall.web.helpers import AnyRequest, PageNo, PerPage

TAGS = ["平台管理"]


def _org_out(o: Organization) -> OrganizationOut:
    return OrganizationOut(
        o.id, o.kind, o.name, o.credit_code, o.region_code, o.address, o.status, o.is_sole_proprietor
    )


# The admin's writes, as the API and the admin page make them (one Struct each).


async def create_user(db: Database, me: Principal, org_id: uuid.UUID, data: UserCreate) -> User:
    return await accounts.create_user(db, me, org_id, data.username, data.display_name, data.password)


async def add_budget_line(
    db: Database, me: Principal, org_id: uuid.UUID, data: BudgetLineCreate
) -> BudgetLine:
    return await budgets.add_budget_line(
        db, me, org_id, data.fiscal_year, data.project_code, data.project_name, data.amount
    )


async def clear_throttle(request: AnyRequest, db: Database, me: Principal, throttle_id: uuid.UUID) -> None:
    await login_throttle.clear(db, me.user_id, throttle_id, login_throttle.client_of(request))


class AdminApi(Controller):
    path = "/api/admin"
    tags = TAGS

    @get("/organizations", opt=allow("admin"), summary="已登记的单位")
    async def list_organizations(
        self, db: DB, page: PageNo = 1, per_page: PerPage = 20, kind: FromQuery[str | None] = None
    ) -> OrganizationPage:
        async with db.read() as s:
            total, rows = await accounts.list_orgs(s, kind, page, per_page)
        return OrganizationPage(total, page, per_page, [_org_out(o) for o in rows])

    @post("/organizations", opt=allow("admin"), status_code=201, summary="登记单位（校验统一社会信用代码）")
    async def register_organization(
        self, call: UserCall, data: JSONBody[accounts.OrganizationCreate]
    ) -> OrganizationOut:
        return _org_out(await accounts.register_org(call.db, call.me, data))

    @post("/organizations/{org_id:uuid}/users", opt=allow("admin"), status_code=201, summary="为单位开设用户")
    async def create_user(
        self, call: UserCall, org_id: FromPath[uuid.UUID], data: JSONBody[UserCreate]
    ) -> UserOut:
        user = await create_user(call.db, call.me, org_id, data)
        return UserOut(user.id, user.username, user.display_name, user.org_id)

    @get("/login-throttles", opt=allow("admin"), summary="生效中的登录限制（账号+地址、地址）")
    async def list_login_throttles(self, db: DB) -> list[LoginThrottleOut]:
        now = clock.now()
        async with db.read() as s:
            rows = await login_throttle.in_force(s, now)
        return [
            LoginThrottleOut(
                id=r.id,
                kind=r.kind,
                username=r.username,
                ip=r.ip,
                failures=r.failures,
                last_failure_at=rfc3339(r.last_failure_at),
                blocked_until=rfc3339(r.blocked_until) if r.blocked_until else None,
                retry_after=login_throttle.retry_after(r, now),
            )
            for r in rows
        ]

    @delete(
        "/login-throttles/{throttle_id:uuid}",
        opt=allow("admin"),
        status_code=204,
        summary="解除一条登录限制（记入审计日志）",
    )
    async def clear_login_throttle(self, call: UserCall, throttle_id: FromPath[uuid.UUID]) -> None:
        await clear_throttle(call.request, call.db, call.me, throttle_id)

    @post(
        "/organizations/{org_id:uuid}/budget-lines",
        opt=allow("admin"),
        status_code=201,
        summary="为预算单位录入预算指标",
    )
    async def add_budget_line(
        self, call: UserCall, org_id: FromPath[uuid.UUID], data: JSONBody[BudgetLineCreate]
    ) -> BudgetLineOut:
        return BudgetLineOut.of(await add_budget_line(call.db, call.me, org_id, data))


ROUTES = [AdminApi]
