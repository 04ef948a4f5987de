"""The administrators' API (三员分立): the system administrator's organizations, users and budget lines;
the security administrator's roles, login throttles, API tokens and second factors. The audit
administrator's is in `audit_routes`. Every write, and every read of people's details, is audited."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from mall import accounts, budgets
from mall.budgets.models import BudgetLine
from mall.core import audit, clock, login_throttle, tokens
from mall.core.auth import Principal
from mall.core.clock import rfc3339
from mall.core.db import Database
from mall.core.guards import allow
from mall.core.models import Organization, User
from mall.credit import checks as credit_checks
from mall.structs import (
    AdminUserOut,
    AnyTokenOut,
    BudgetAdjustIn,
    BudgetAdjustmentOut,
    BudgetLineCreate,
    BudgetLineOut,
    LoginThrottleOut,
    OrganizationOut,
    OrganizationPage,
    PasswordResetOut,
    ReasonIn,
    RoleChange,
    UserCreate,
    UserOut,
    UserStateOut,
)
from mall.web.deps import UserCall
from mall.web.helpers import PageNo, PerPage

TAGS = ["系统管理"]
SECURITY_TAGS = ["安全管理"]
SYSADMIN = allow("sysadmin")
SECADMIN = allow("secadmin")


def _org_out(o: Organization) -> OrganizationOut:
    return OrganizationOut(
        o.id, o.kind, o.name, o.credit_code, o.region_code, o.address, o.status, o.is_sole_proprietor
    )


def admin_user_out(u: User) -> AdminUserOut:
    return AdminUserOut(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        admin_role=u.admin_role,
        totp_enabled=u.totp_enabled_at is not None,
        is_active=u.is_active,
        last_login_at=rfc3339(u.last_login_at) if u.last_login_at else None,
    )


# The administrators' writes, as the API and the pages make them (one Struct each).


async def create_user(db: Database, me: Principal, org_id: uuid.UUID, data: UserCreate) -> User:
    return await accounts.create_user(db, me, org_id, data.username, data.display_name, data.password)


async def add_budget_line(
    db: Database, me: Principal, org_id: uuid.UUID, data: BudgetLineCreate
) -> BudgetLine:
    return await budgets.add_budget_line(
        db, me, org_id, data.fiscal_year, data.project_code, data.project_name, data.amount, data.scope
    )


async def clear_throttle(db: Database, me: Principal, throttle_id: uuid.UUID) -> None:
    await login_throttle.clear(db, me, throttle_id)


async def viewed(db: Database, me: Principal, where: str, detail: str) -> None:
    """A read of people's details (names, usernames, addresses, client addresses), into the audit log."""
    await audit.record_now(db, me, "personal_data_viewed", target_kind="page", target=where, detail=detail)


class AdminApi(Controller):
    """The system administrator: organizations, their users and budget lines."""

    path = "/api/admin"
    tags = TAGS

    @get("/organizations", opt=SYSADMIN, summary="已登记的单位（查阅记入审计日志）")
    async def list_organizations(
        self,
        call: UserCall,
        page: PageNo = 1,
        per_page: PerPage = 20,
        kind: FromQuery[str | None] = None,
        q: FromQuery[str] = "",
    ) -> OrganizationPage:
        """`q` finds organizations whose name or credit code holds it, or with a user of that username."""
        async with call.db.read() as s:
            total, rows = await accounts.list_orgs(s, kind, page, per_page, q)
        await viewed(
            call.db, call.me, "/api/admin/organizations", f"单位名单与地址：第 {page} 页，{len(rows)} 家"
        )
        return OrganizationPage(total, page, per_page, [_org_out(o) for o in rows])

    @post("/organizations", opt=SYSADMIN, status_code=201, summary="登记单位（校验统一社会信用代码）")
    async def register_organization(
        self, call: UserCall, data: JSONBody[accounts.OrganizationCreate]
    ) -> OrganizationOut:
        return _org_out(
            await accounts.register_org(
                call.db, call.me, data, checker=credit_checks.checker_for(call.settings)
            )
        )

    @post("/organizations/{org_id:uuid}/users", opt=SYSADMIN, status_code=201, summary="为单位开设用户")
    async def create_user(
        self, call: UserCall, org_id: FromPath[uuid.UUID], data: JSONBody[UserCreate]
    ) -> UserOut:
        user = await create_user(call.db, call.me, org_id, data)
        return UserOut(user.id, user.username, user.display_name, user.org_id)

    @post(
        "/organizations/{org_id:uuid}/budget-lines",
        opt=SYSADMIN,
        status_code=201,
        summary="为预算单位录入预算指标",
    )
    async def add_budget_line(
        self, call: UserCall, org_id: FromPath[uuid.UUID], data: JSONBody[BudgetLineCreate]
    ) -> BudgetLineOut:
        return BudgetLineOut.of(await add_budget_line(call.db, call.me, org_id, data))

    @post(
        "/users/{user_id:uuid}/disable",
        opt=SYSADMIN,
        status_code=200,
        summary="停用业务用户（其登录、会话与 API 令牌立即失效；须填写原因）",
    )
    async def disable_user(
        self, call: UserCall, user_id: FromPath[uuid.UUID], data: JSONBody[ReasonIn]
    ) -> UserStateOut:
        return UserStateOut.of(await accounts.set_active(call.db, call.me, user_id, False, data.reason))

    @post("/users/{user_id:uuid}/enable", opt=SYSADMIN, status_code=200, summary="重新启用业务用户")
    async def enable_user(self, call: UserCall, user_id: FromPath[uuid.UUID]) -> UserStateOut:
        return UserStateOut.of(await accounts.set_active(call.db, call.me, user_id, True, ""))

    @post(
        "/users/{user_id:uuid}/password-reset",
        opt=SYSADMIN,
        status_code=200,
        summary="重置业务用户的密码：返回一次性显示的临时密码，用户下次登录须先修改密码",
    )
    async def reset_password(self, call: UserCall, user_id: FromPath[uuid.UUID]) -> PasswordResetOut:
        user, temporary = await accounts.reset_password(call.db, call.me, user_id)
        return PasswordResetOut(user.username, temporary)

    @post(
        "/budget-lines/{line_id:uuid}/adjustments",
        opt=SYSADMIN,
        status_code=201,
        summary="调整预算指标：追加（increase）或调减（decrease），调减后不得低于已冻结与已支付合计",
    )
    async def adjust_budget_line(
        self, call: UserCall, line_id: FromPath[uuid.UUID], data: JSONBody[BudgetAdjustIn]
    ) -> BudgetLineOut:
        return BudgetLineOut.of(
            await budgets.adjust_budget_line(call.db, call.me, line_id, data.kind, data.amount, data.reason)
        )

    @get(
        "/budget-lines/{line_id:uuid}/adjustments", opt=SYSADMIN, summary="预算指标的调整记录（先调整的在前）"
    )
    async def budget_adjustments(
        self, call: UserCall, line_id: FromPath[uuid.UUID]
    ) -> list[BudgetAdjustmentOut]:
        async with call.db.read() as s:
            found = await budgets.adjustments_of(s, [line_id])
        return [BudgetAdjustmentOut.of(a) for a in found[line_id]]

    @get(
        "/login-throttles",
        opt=SECADMIN,
        tags=SECURITY_TAGS,
        summary="生效中的登录限制（账号+地址、地址；安全管理员；查阅记入审计日志）",
    )
    async def list_login_throttles(self, call: UserCall) -> list[LoginThrottleOut]:
        now = clock.now()
        async with call.db.read() as s:
            rows = await login_throttle.in_force(s, now)
        await viewed(
            call.db, call.me, "/api/admin/login-throttles", f"登录限制：{len(rows)} 条（含用户名、网络地址）"
        )
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
        opt=SECADMIN,
        tags=SECURITY_TAGS,
        status_code=204,
        summary="解除一条登录限制（安全管理员；记入审计日志）",
    )
    async def clear_login_throttle(self, call: UserCall, throttle_id: FromPath[uuid.UUID]) -> None:
        await clear_throttle(call.db, call.me, throttle_id)


class SecurityApi(Controller):
    """The security administrator: who holds which administrator's role, second factors, API tokens."""

    path = "/api/security"
    tags = SECURITY_TAGS
    opt = SECADMIN

    @get("/users", summary="平台运营方的用户、其管理角色与动态口令（查阅记入审计日志）")
    async def list_platform_users(self, call: UserCall) -> list[AdminUserOut]:
        async with call.db.read() as s:
            users = await accounts.platform_users(s)
        await viewed(call.db, call.me, "/api/security/users", f"平台用户：{len(users)} 个")
        return [admin_user_out(u) for u in users]

    @put(
        "/users/{user_id:uuid}/role",
        summary="授予或收回管理角色（sysadmin | secadmin | auditor | null）",
        description="一个账号至多担任一种管理角色；不能变更自己的角色。变更后该用户的登录与令牌全部失效。",
    )
    async def set_role(
        self, call: UserCall, user_id: FromPath[uuid.UUID], data: JSONBody[RoleChange]
    ) -> AdminUserOut:
        return admin_user_out(await accounts.set_admin_role(call.db, call.me, user_id, data.role))

    @delete("/users/{user_id:uuid}/totp", status_code=204, summary="重置用户的动态口令（如手机丢失）")
    async def reset_totp(self, call: UserCall, user_id: FromPath[uuid.UUID]) -> None:
        await accounts.reset_second_factor(call.db, call.me, user_id)

    @get("/tokens", summary="所有用户的有效 API 令牌（不含令牌本身）")
    async def list_tokens(self, call: UserCall) -> list[AnyTokenOut]:
        rows = await tokens.live_tokens(call.db)
        await viewed(call.db, call.me, "/api/security/tokens", f"有效 API 令牌：{len(rows)} 个（含用户名）")
        return [
            AnyTokenOut(
                id=t.id,
                username=owner,
                name=t.name,
                created_at=rfc3339(t.created_at),
                expires_at=rfc3339(t.expires_at),
                last_used_at=rfc3339(t.last_used_at) if t.last_used_at else None,
            )
            for t, owner in rows
        ]

    @delete("/tokens/{token_id:uuid}", status_code=204, summary="吊销任一用户的 API 令牌（如令牌泄露）")
    async def revoke_token(self, call: UserCall, token_id: FromPath[uuid.UUID]) -> None:
        await tokens.revoke_token(call.db, call.me, token_id, anyones=True)


ROUTES = [AdminApi, SecurityApi]
