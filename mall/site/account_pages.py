"""Logging in (password, then the second factor where enrolled) and out, and the account page (password,
API tokens, the second factor's enrolment, logging out everywhere)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mall.core import auth, fields, login_throttle, passwords, tokens, totp
from mall.core.auth import Principal
from mall.core.errors import DomainError, InvalidInput
from mall.core.guards import ENROL_PAGE, PUBLIC, allow
from mall.devtools import seed
from mall.notify import prefs as notify_prefs
from mall.site.account_routes import end_everywhere, set_password
from mall.structs import PasswordForm, TotpCodeIn
from mall.web import forms
from mall.web.deps import DB, Config, Me, UserCall
from mall.web.helpers import AnyRequest, Form, flash, render

# Where a login without a page to return to lands, by role: the business roles' 工作台, the
# platform's administrators their one page of work.
LANDING = {
    "buyer": "/workbench",
    "supplier": "/workbench",
    "regulator": "/workbench",
    "center": "/workbench",
    "sysadmin": "/admin",
    "secadmin": "/security",
    "auditor": "/audit",
}
# How long the code may follow a right password (the page login's second step).
SECOND_STEP_SECONDS = 300


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


def _signed_in(request: AnyRequest, who: Principal, epoch: int, target: str, settings: Config) -> Redirect:
    _start_session(request, who.user_id, epoch)
    flash(request, f"欢迎，{who.display_name}（{who.org_name}）")
    if not who.totp_enrolled and who.role in settings.totp_required_roles:
        flash(request, "本账号须使用动态口令：请先绑定动态口令，再使用其他功能", "warn")
        return Redirect(ENROL_PAGE, status_code=303)
    return Redirect(LANDING.get(who.role, "/") if target == "/" else target, status_code=303)


def _totp_key(settings: Config) -> bytes:
    return totp.key_for(settings.resolved_secret())


def _pending(request: AnyRequest) -> dict[str, Any] | None:
    """The page login waiting for its second factor, if it has not expired."""
    pending = request.session.get("pending") if request.session else None
    if not isinstance(pending, dict) or float(pending.get("until", 0)) < time.time():
        return None
    return pending


class LoginPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/login", opt=PUBLIC)
    async def login_page(self, request: AnyRequest, db: DB, next: FromQuery[str] = "/") -> Template:
        return await _login_page(request, db, next=_local(next))

    @post("/login", opt=PUBLIC, middleware=[login_throttle.LOGIN_REQUEST_LIMIT.middleware])
    async def login(self, request: AnyRequest, db: DB, settings: Config, data: Form) -> Response[Any]:
        # A refusal shows the login page again (with its status: 401, 429 and Retry-After), not a redirect.
        username, password = data.get("username", "").strip(), data.get("password", "")
        target = _local(data.get("next", "/"))
        try:
            username = fields.text(username, "用户名", fields.USERNAME_MAX, field="username")
            login = await auth.check_login(
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
        if login.needs_code:
            request.clear_session()
            request.set_session(
                {
                    "pending": {
                        "uid": str(login.principal.user_id),
                        "epoch": login.epoch,
                        "until": time.time() + SECOND_STEP_SECONDS,
                        "next": target,
                    }
                }
            )
            return Redirect("/login/totp", status_code=303)
        return _signed_in(request, login.principal, login.epoch, target, settings)

    @get("/login/totp", opt=PUBLIC)
    async def second_step_page(self, request: AnyRequest) -> Response[Any]:
        if _pending(request) is None:
            return Redirect("/login", status_code=303)
        return render(request, "login_totp.html")

    @post("/login/totp", opt=PUBLIC, middleware=[login_throttle.LOGIN_REQUEST_LIMIT.middleware])
    async def second_step(self, request: AnyRequest, db: DB, settings: Config, data: Form) -> Response[Any]:
        pending = _pending(request)
        if pending is None:
            flash(request, "登录已超时，请重新输入用户名和密码", "error")
            return Redirect("/login", status_code=303)
        try:
            code = forms.decode(TotpCodeIn, data).code
            login = await auth.complete_login(
                db,
                uuid.UUID(str(pending["uid"])),
                int(pending["epoch"]),
                code,
                login_throttle.client_of(request),
                totp_key=_totp_key(settings),
                exempt=login_throttle.is_exempt(request),
            )
        except DomainError as exc:
            if exc.code == "login_expired":
                request.clear_session()
            page = render(request, "login_totp.html", status_code=exc.status, error=exc.detail)
            page.headers.update(getattr(exc, "headers", None) or {})
            return page
        return _signed_in(
            request, login.principal, login.epoch, _local(str(pending.get("next", "/"))), settings
        )

    @post("/logout", opt=allow("user", enrolling=True, changing_password=True))
    async def logout(self, call: UserCall) -> Redirect:
        """Ends every session of the user: the cookie is client-side, so its epoch is what can be revoked."""
        await auth.end_sessions(call.db, call.me)
        call.request.set_session(
            {"flash": [["ok", "已退出登录"]]}
        )  # a fresh session holding only the message
        return Redirect("/", status_code=303)


class AccountPages(Controller):
    path = "/account"
    include_in_schema = False

    @get("/", opt=allow("user", changing_password=True))
    async def account_page(self, call: UserCall) -> Template:
        return call.render(
            "account.html",
            tokens=await tokens.tokens_of(call.db, call.me.user_id),
            password_min=passwords.PASSWORD_MIN,
            settings=call.settings,
            notify_prefs=await notify_prefs.of(call.db, call.me.user_id),
            email_max=notify_prefs.EMAIL_MAX,
        )

    @post("/notifications", opt=allow("user"))
    async def account_notifications(self, call: UserCall, data: Form) -> Redirect:
        """The notification preferences: e-mail, the daily digest, SMS."""

        async def go() -> None:
            await notify_prefs.save(call.db, call.me.user_id, forms.decode(notify_prefs.PrefsForm, data))

        return await call.act(go, "消息提醒设置已保存", "/account#notifications")

    @post("/password", opt=allow("user", changing_password=True))
    async def account_password(self, call: UserCall, data: Form) -> Redirect:
        """Every other session ends and every token is revoked; this browser stays logged in (its user
        just proved the password) with the new epoch."""

        async def go() -> None:
            form = forms.decode(PasswordForm, data)
            if form.new_password != form.new_password2:
                raise InvalidInput("两次输入的新密码不一致", code="password_mismatch")
            _start_session(
                call.request, call.me.user_id, await set_password(call.request, call.db, call.me, form)
            )

        return await call.act(go, "密码已修改：其他设备上的登录已退出，所有 API 令牌已吊销", "/account")

    @get("/totp", opt=allow("user", enrolling=True))
    async def totp_page(self, request: AnyRequest, me: Me) -> Template:
        """Enrolment of the second factor: the new secret is shown here once, right after it is made."""
        shown = request.session.pop("totp_new", None) if request.session else None
        return render(request, "account_totp.html", shown=shown if isinstance(shown, dict) else None)

    @post("/totp/begin", opt=allow("user", enrolling=True))
    async def totp_begin(self, call: UserCall) -> Redirect:
        async def go() -> None:
            secret, uri = await auth.begin_enrolment(call.db, call.me, _totp_key(call.settings))
            call.request.session["totp_new"] = {"secret": secret, "uri": uri}

        return await call.act(go, "已生成新的动态口令密钥：请用验证器添加，并输入显示的 6 位数字", ENROL_PAGE)

    @post("/totp/confirm", opt=allow("user", enrolling=True))
    async def totp_confirm(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> None:
            code = forms.decode(TotpCodeIn, data).code
            await auth.confirm_enrolment(
                call.db,
                call.me,
                _totp_key(call.settings),
                code,
                login_throttle.client_of(call.request),
                exempt=login_throttle.is_exempt(call.request),
            )

        return await call.act(
            go,
            "动态口令已绑定：今后登录时，输入密码后还须输入验证器显示的 6 位数字",
            ENROL_PAGE,
            to=lambda _: LANDING.get(call.me.role, "/account"),
        )

    @post("/logout-all", opt=allow("user"))
    async def account_logout_all(self, call: UserCall) -> Redirect:
        await end_everywhere(call.request, call.db, call.me)
        call.request.set_session({"flash": [["ok", "已在所有设备上退出登录，所有 API 令牌已吊销"]]})
        return Redirect("/login", status_code=303)

    @post("/tokens/{token_id:uuid}/revoke", opt=allow("user"))
    async def account_revoke_token(self, call: UserCall, token_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: tokens.revoke_token(call.db, call.me, token_id), "令牌已吊销", "/account"
        )


ROUTES = [LoginPages, AccountPages]
