"""The account API: API tokens, one's password, logging out everywhere, who one is."""

from __future__ import annotations

import uuid
from datetime import timedelta

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from mall import structs
from mall.core import auth, login_throttle, tokens, totp
from mall.core.clock import rfc3339
from mall.core.guards import PUBLIC, allow
from mall.structs import PasswordChange, TokenInfo, TokenOut, TokenRequest
from mall.web.deps import DB, Config, Me, UserCall
from mall.web.helpers import AnyRequest

TAGS = ["账户"]


async def set_password(request: AnyRequest, db: DB, me: Me, data: PasswordChange) -> int:
    """Check the current password and set the new one (the API's and the account page's one way):
    every page session ends and every token is revoked. Returns the user's new session epoch."""
    return await auth.change_password(
        db,
        me,
        data.current_password,
        data.new_password,
        login_throttle.client_of(request),
        exempt=login_throttle.is_exempt(request),
    )


async def end_everywhere(request: AnyRequest, db: DB, me: Me) -> None:
    await auth.end_everywhere(db, me, login_throttle.client_of(request))


class AccountApi(Controller):
    path = "/api"
    tags = TAGS

    @post(
        "/auth/token",
        opt=PUBLIC,
        status_code=201,
        summary="用户名密码换取 API 令牌",
        description=(
            "令牌有效期 token_ttl_days 天（默认 7 天）；每个用户至多 max_live_tokens 个有效令牌（默认 20 个），"
            "超出时自动吊销最早签发的令牌。已绑定动态口令的账号须同时提交 totp_code（验证器当前显示的 6 位数字，"
            "每个只能用一次）。登录失败过多时返回 429 与 Retry-After。"
        ),
        middleware=[login_throttle.LOGIN_REQUEST_LIMIT.middleware],
    )
    async def create_token(
        self, request: AnyRequest, data: JSONBody[TokenRequest], db: DB, settings: Config
    ) -> TokenOut:
        login = await auth.check_login(
            db,
            data.username,
            data.password,
            login_throttle.client_of(request),
            exempt=login_throttle.is_exempt(request),
            code=data.totp_code,
            totp_key=totp.key_for(settings.resolved_secret()),
            enrolment_roles=settings.totp_required_roles,
        )
        who = login.principal
        token, row = await tokens.issue_token(
            db,
            who,
            data.name or "api",
            ttl=timedelta(days=settings.token_ttl_days),
            max_live=settings.max_live_tokens,
        )
        return TokenOut(
            token=token,
            token_type="Bearer",  # noqa: S106
            expires_at=rfc3339(row.expires_at),
            role=who.role,
        )

    @get("/auth/tokens", opt=allow("user"), summary="本人的有效 API 令牌（不含令牌本身）")
    async def list_tokens(self, call: UserCall) -> list[TokenInfo]:
        return [
            TokenInfo(
                id=t.id,
                name=t.name,
                created_at=rfc3339(t.created_at),
                expires_at=rfc3339(t.expires_at),
                last_used_at=rfc3339(t.last_used_at) if t.last_used_at else None,
                current=t.id == call.me.token_id,
            )
            for t in await tokens.tokens_of(call.db, call.me.user_id)
        ]

    @delete("/auth/tokens/{token_id:uuid}", opt=allow("user"), status_code=204, summary="吊销本人的令牌")
    async def revoke_token(self, call: UserCall, token_id: FromPath[uuid.UUID]) -> None:
        await tokens.revoke_token(call.db, call.me, token_id)

    @post(
        "/auth/password",
        opt=allow("user", changing_password=True),
        status_code=204,
        summary="修改本人密码",
        description="校验当前密码后设置新密码；本人所有页面登录随即失效，所有 API 令牌（包括本次请求所用的）均被吊销，需重新获取令牌。",
    )
    async def change_password(self, call: UserCall, data: JSONBody[PasswordChange]) -> None:
        await set_password(call.request, call.db, call.me, data)

    @post(
        "/auth/logout-all",
        opt=allow("user"),
        status_code=204,
        summary="在所有设备上退出：结束本人所有页面登录并吊销所有 API 令牌（包括本次请求所用的）",
    )
    async def logout_all(self, call: UserCall) -> None:
        await end_everywhere(call.request, call.db, call.me)

    @get("/me", opt=allow("user", changing_password=True))
    async def me(self, me: Me) -> structs.Me:
        return structs.Me(me.username, me.display_name, me.role, me.org_name, me.org_credit_code)


ROUTES = [AccountApi]
