"""The administrators' pages (三员分立): the system administrator's 单位与用户 (organizations with their
users and budget lines) and 系统设置; the security administrator's 安全管理 (roles, login throttles,
API tokens, second factors, the password policy). The audit administrator's page is in audit_routes."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall import accounts, budgets
from mall.core import clock, fields, login_throttle, passwords, tokens
from mall.core.models import ADMIN_ROLE_LABELS, ORG_KIND_LABELS, OrgKind
from mall.credit import checks as credit_checks
from mall.site.admin_routes import SECADMIN, SYSADMIN, add_budget_line, clear_throttle, create_user, viewed
from mall.structs import BudgetLineCreate, UserCreate
from mall.web import forms
from mall.web.deps import Config, UserCall
from mall.web.helpers import AnyRequest, Form, page_no, paging, pop_form, render

PER_PAGE = 30

# What the system administrator's settings page shows: (setting, environment variable, label).
# Secrets (keys, passwords, tokens, connection strings) are never shown.
SHOWN_SETTINGS = [
    ("region_code", "MALL_REGION_CODE", "行政区划代码"),
    ("region_name", "MALL_REGION_NAME", "区域名称"),
    ("public_base_url", "MALL_PUBLICATION_BASE_URL", "公开访问地址"),
    ("decentralized_threshold", "MALL_DECENTRALIZED_THRESHOLD", "分散采购限额（元）"),
    ("open_tender_threshold", "MALL_OPEN_TENDER_THRESHOLD", "公开招标数额标准（元）"),
    ("price_margin", "MALL_PRICE_MARGIN", "售价可高于参考价的比例"),
    ("auto_cancel_days", "MALL_AUTO_CANCEL_DAYS", "未确认订单自动取消（天）"),
    ("payment_due_days", "MALL_PAYMENT_DUE_DAYS", "付款期限（天）"),
    ("min_participants", "MALL_MIN_PARTICIPANTS", "询价竞价最少参与供应商数"),
    ("holidays", "MALL_HOLIDAYS", "法定节假日"),
    ("file_store", "MALL_FILE_STORE", "文件存储"),
    ("export_keep_days", "MALL_EXPORT_KEEP_DAYS", "导出文件保留（天）"),
    ("push_log_keep_days", "MALL_PUSH_LOG_KEEP_DAYS", "推送日志保留（天）"),
    ("audit_online_days", "MALL_AUDIT_ONLINE_DAYS", "审计日志在线保存（天，不少于 180）"),
    ("db_retries", "MALL_DB_RETRIES", "数据库瞬时故障重试次数"),
]


class AdminPages(Controller):
    """The system administrator: organizations, their users and budget lines; the settings."""

    path = "/admin"
    include_in_schema = False
    opt = SYSADMIN

    @get("/")
    async def admin_page(
        self, call: UserCall, kind: FromQuery[str] = "", page: FromQuery[str] = "1", q: FromQuery[str] = ""
    ) -> Template:
        p = page_no(page)
        kind = kind if kind in ORG_KIND_LABELS else ""  # a bad filter is dropped
        q = q.strip()[: fields.SEARCH_MAX]
        async with call.db.read() as s:
            total, orgs = await accounts.list_orgs(s, kind or None, p, PER_PAGE, q)
            users = await accounts.users_of(s, [o.id for o in orgs])
            lines = {o.id: await budgets.lines_of(s, o.id) for o in orgs if o.kind == OrgKind.BUDGET_UNIT}
            adjustments = await budgets.adjustments_of(s, [b.id for ls in lines.values() for b in ls])
        shown = sum(len(u) for u in users.values())
        await viewed(
            call.db,
            call.me,
            "/admin",
            f"单位与用户：第 {p} 页，{len(orgs)} 家单位、{shown} 个用户（单位地址、联系电话、用户姓名）",
        )
        return call.render(
            "admin.html",
            orgs=orgs,
            users=users,
            **paging(total, p, PER_PAGE),
            kind=kind,
            q=q,
            kinds=ORG_KIND_LABELS,
            budget_lines=lines,
            adjustments=adjustments,
            year=clock.local_date(clock.now()).year,
            form=pop_form(call.request),
            admin_roles=ADMIN_ROLE_LABELS,
        )

    @get("/settings")
    async def settings_page(self, request: AnyRequest, settings: Config) -> Template:
        rows = [(env, label, getattr(settings, name)) for name, env, label in SHOWN_SETTINGS]
        return render(request, "admin_settings.html", rows=rows)

    @post("/organizations")
    async def admin_register(self, call: UserCall, data: Form) -> Redirect:
        return await call.act(
            lambda: accounts.register_org(
                call.db,
                call.me,
                forms.decode(accounts.OrganizationCreate, data),
                checker=credit_checks.checker_for(call.settings),
            ),
            lambda org: f"已登记：{org.name}（{org.credit_code}）",
            "/admin",
            keep=data,
        )

    @post("/organizations/{org_id:uuid}/users")
    async def admin_create_user(self, call: UserCall, org_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: create_user(call.db, call.me, org_id, forms.decode(UserCreate, data)),
            "用户已开设",
            "/admin",
            keep={**data, "org": str(org_id), "target": "users"},
        )

    @post("/organizations/{org_id:uuid}/budget-lines")
    async def admin_add_budget_line(
        self, call: UserCall, org_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        return await call.act(
            lambda: add_budget_line(call.db, call.me, org_id, forms.decode(BudgetLineCreate, data)),
            "预算指标已录入",
            "/admin",
            keep={**data, "org": str(org_id), "target": "budget"},
        )

    @post("/users/{user_id:uuid}/disable")
    async def admin_disable_user(self, call: UserCall, user_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        return await call.act(
            lambda: accounts.set_active(call.db, call.me, user_id, False, data.get("reason", "")),
            lambda u: f"用户 {u.username} 已停用：其登录、会话与 API 令牌立即失效",
            "/admin",
        )

    @post("/users/{user_id:uuid}/enable")
    async def admin_enable_user(self, call: UserCall, user_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: accounts.set_active(call.db, call.me, user_id, True, ""),
            lambda u: f"用户 {u.username} 已重新启用",
            "/admin",
        )

    @post("/users/{user_id:uuid}/password-reset")
    async def admin_reset_password(self, call: UserCall, user_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: accounts.reset_password(call.db, call.me, user_id),
            lambda r: (
                f"用户 {r[0].username} 的临时密码（仅显示这一次，请当面或电话告知本人）：{r[1]}；"
                "其下次登录须先修改密码"
            ),
            "/admin",
        )

    @post("/budget-lines/{line_id:uuid}/adjust")
    async def admin_adjust_budget_line(
        self, call: UserCall, line_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        return await call.act(
            lambda: budgets.adjust_budget_line(
                call.db,
                call.me,
                line_id,
                data.get("kind", ""),
                data.get("amount", ""),
                data.get("reason", ""),
            ),
            lambda b: f"预算指标 {b.project_code} 已调整，指标金额现为 {b.amount:,.2f} 元",
            "/admin",
        )


class SecurityPages(Controller):
    """The security administrator: administrators' roles, login throttles, API tokens, second factors."""

    path = "/security"
    include_in_schema = False
    opt = SECADMIN

    @get("/")
    async def security_page(self, call: UserCall) -> Template:
        now = clock.now()
        async with call.db.read() as s:
            throttles = [
                (t, login_throttle.retry_after(t, now)) for t in await login_throttle.in_force(s, now)
            ]
            platform = await accounts.platform_users(s)
            enrolled = await accounts.users_with_second_factor(s)
        live = await tokens.live_tokens(call.db, limit=200)
        await viewed(
            call.db,
            call.me,
            "/security",
            f"平台用户 {len(platform)} 个、登录限制 {len(throttles)} 条、API 令牌 {len(live)} 个、"
            f"动态口令用户 {len(enrolled)} 个（用户名、网络地址）",
        )
        return call.render(
            "security.html",
            throttles=throttles,
            platform=platform,
            enrolled=enrolled,
            tokens=live,
            admin_roles=ADMIN_ROLE_LABELS,
            required=sorted(call.settings.totp_required_roles),
            password_min=passwords.PASSWORD_MIN,
            settings=call.settings,
        )

    @post("/users/{user_id:uuid}/role")
    async def set_role(self, call: UserCall, user_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        role = data.get("role", "") or None
        return await call.act(
            lambda: accounts.set_admin_role(call.db, call.me, user_id, role),
            lambda u: f"{u.username} 的管理角色已变更为：{ADMIN_ROLE_LABELS.get(u.admin_role or '', '无')}",
            "/security",
        )

    @post("/users/{user_id:uuid}/totp/reset")
    async def reset_totp(self, call: UserCall, user_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: accounts.reset_second_factor(call.db, call.me, user_id),
            lambda u: f"{u.username} 的动态口令已重置，下次登录时重新绑定",
            "/security",
        )

    @post("/tokens/{token_id:uuid}/revoke")
    async def revoke_token(self, call: UserCall, token_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: tokens.revoke_token(call.db, call.me, token_id, anyones=True), "令牌已吊销", "/security"
        )

    @post("/login-throttles/{throttle_id:uuid}/clear")
    async def clear_throttle(self, call: UserCall, throttle_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: clear_throttle(call.db, call.me, throttle_id), "登录限制已解除", "/security"
        )


ROUTES = [AdminPages, SecurityPages]
