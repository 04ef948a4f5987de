"""Logging in and out, and the account page (password, API tokens, logging out everywhere)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall.core import auth, fields, login_throttle
from mall.core.auth import PUBLIC, allow
from mall.core.errors import DomainError, InvalidInput
from mall.core.models import User
from mall.devtools import seed
from mall.site.account_routes import end_everywhere, set_password
from mall.structs import PasswordForm
from mall.web import forms
from mall.web.deps import DB, UserCall
from mall.web.helpers import AnyRequest, Form, flash, render

# Where a login without a page to return to lands, by role.
LANDING = {"buyer": "/goods", "supplier": "/orders", "regulator": "/oversight", "center": "/oversight"}


async def _login_page(request: AnyRequest, db: DB, status_code: int = 200, **ctx: Any) -> Template:
    async with db.read() as s:
        demo = await seed.demo_loaded(s)
    return render(
        request,
        "login.html",
        status_code=status_code,
        demo_accounts=seed.demo_accounts() if demo else [],
        demo_password=seed.DEMO_PASSWORD if demo else "",
        **ctx,
    )


def _local(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _start_session(request: AnyRequest, user_id: uuid.UUID, epoch: int) -> None:
    """A fresh session for the user at its current epoch (ending a session bumps the epoch)."""
    request.clear_session()
    request.set_session({"uid": str(user_id), "epoch": epoch})


class LoginPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/login", opt=PUBLIC)
    async def login_page(self, request: AnyRequest, db: DB, next: FromQuery[str] = "/") -> Template:
        return await _login_page(request, db, next=_local(next))

    @post("/login", opt=PUBLIC, middleware=[login_throttle.LOGIN_REQUEST_LIMIT.middleware])
    async def login(self, request: AnyRequest, db: DB, data: Form) -> Response[Any]:
        # A refusal shows the login page again (with its status: 401, 429 and Retry-After), not a redirect.
        username, password = data.get("username", "").strip(), data.get("password", "")
        target = _local(data.get("next", "/"))
        try:
            username = fields.text(username, "用户名", fields.USERNAME_MAX, field="username")
            who = await auth.authenticate(
                db,
                username,
                password[: fields.PASSWORD_MAX + 1],
                login_throttle.client_of(request),
                exempt=login_throttle.is_exempt(request),
            )
        except DomainError as exc:
            page = await _login_page(
                request, db, status_code=exc.status, error=exc.detail, next=target, username=username
            )
            page.headers.update(getattr(exc, "headers", None) or {})
            return page

        async with db.read() as s:
            user = await s.get(User, who.user_id)
            assert user is not None
            epoch = user.session_epoch
        _start_session(request, who.user_id, epoch)
        flash(request, f"欢迎，{who.display_name}（{who.org_name}）")
        return Redirect(LANDING.get(who.role, "/") if target == "/" else target, status_code=303)

    @post("/logout", opt=allow("user"))
    async def logout(self, call: UserCall) -> Redirect:
        """Ends every session of the user: the cookie is client-side, so its epoch is what can be revoked."""
        await auth.end_sessions(call.db, call.me.user_id)
        call.request.set_session(
            {"flash": [["ok", "已退出登录"]]}
        )  # a fresh session holding only the message
        return Redirect("/", status_code=303)


class AccountPages(Controller):
    path = "/account"
    include_in_schema = False

    @get("/", opt=allow("user"))
    async def account_page(self, call: UserCall) -> Template:
        return call.render(
            "account.html",
            tokens=await auth.tokens_of(call.db, call.me.user_id),
            password_min=auth.PASSWORD_MIN,
            settings=call.settings,
        )

    @post("/password", opt=allow("user"))
    async def account_password(self, call: UserCall, data: Form) -> Redirect:
        """Every other session ends and every token is revoked; this browser stays logged in (its user
        just proved the password) with the new epoch."""

        async def go() -> None:
            form = forms.decode(PasswordForm, data)
            if form.new_password != form.new_password2:
                raise InvalidInput("两次输入的新密码不一致", code="password_mismatch")
            _start_session(call.request, call.me.user_id, await set_password(call, form))

        return await call.act(go, "密码已修改：其他设备上的登录已退出，所有 API 令牌已吊销", "/account")

    @post("/logout-all", opt=allow("user"))
    async def account_logout_all(self, call: UserCall) -> Redirect:
        await end_everywhere(call)
        call.request.set_session({"flash": [["ok", "已在所有设备上退出登录，所有 API 令牌已吊销"]]})
        return Redirect("/login", status_code=303)

    @post("/tokens/{token_id:uuid}/revoke", opt=allow("user"))
    async def account_revoke_token(self, call: UserCall, token_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(lambda: auth.revoke_token(call.db, call.me, token_id), "令牌已吊销", "/account")


ROUTES = [LoginPages, AccountPages]
