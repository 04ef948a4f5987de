"""Who may call what: the middleware that finds the caller (a bearer token on /api, the session
cookie elsewhere) and the global guard that checks every handler's `opt=allow(...)`.

The guard refuses a handler that declares nothing, so an endpoint can never be open by omission."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from mall.core import audit, netaddr
from mall.core.auth import ALL_ROLES, Principal, principal_of
from mall.core.db import Database, retried
from mall.core.errors import Forbidden
from mall.core.models import User
from mall.core.tokens import principal_from_token


@retried
async def principal_from_session(db: Database, session: dict[str, Any]) -> Principal | None:
    raw = session.get("uid")
    if not raw:
        return None
    try:
        uid = uuid.UUID(str(raw))
    except ValueError:
        return None
    async with db.read() as s:
        user = await s.get(User, uid)
        if user is None or not user.is_active or user.session_epoch != session.get("epoch"):
            return None
        return principal_of(user)


class AuthMiddleware(ASGIMiddleware):
    """Puts the caller (or None) in scope["user"]: bearer tokens on /api, the session cookie
    elsewhere; and, for the audit log, the caller and the client address for the request's time."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        state = scope["litestar_app"].state
        db: Database = state.db
        user: Principal | None = None
        path: str = scope["path"]
        if path.startswith("/api"):
            for key, value in scope["headers"]:
                if key == b"authorization":
                    kind, _, token = value.decode("latin-1").partition(" ")
                    if kind.lower() == "bearer" and token:
                        user = await principal_from_token(db, token.strip())
                        if user is None:
                            # A wrong token is an error, not an anonymous call.
                            scope["user"] = None
                            scope["state"] = {**scope.get("state", {}), "bad_token": True}
                    break
        else:
            session = scope.get("session")
            if isinstance(session, dict):
                user = await principal_from_session(db, session)
        settings = state.settings
        if user is not None and not user.totp_enrolled and user.role in settings.totp_required_roles:
            user = replace(user, must_enrol=True)
        scope["user"] = user
        with audit.request_context(user, netaddr.client_ip(scope, settings.trusted_proxies)):
            if user is None or scope["type"] != ScopeType.HTTP or scope["path"].startswith("/static/"):
                await next_app(scope, receive, send)  # (static files: the same for everyone, cached)
                return

            async def send_private(message: Message) -> None:
                # What a logged-in user sees must not be kept by the browser or a proxy: after logout
                # the back button must not show the last person's orders on a shared office PC.
                if message["type"] == "http.response.start":
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (b"cache-control", b"no-store")],
                    }
                await send(message)

            await next_app(scope, receive, send_private)


def allow(*roles: str, enrolling: bool = False, changing_password: bool = False) -> dict[str, Any]:
    """Route option naming who may call: 'public', 'user' (anyone logged in) or role names.
    `enrolling`: also open to a user that MALL_REQUIRE_TOTP sends to enrol first (the enrolment
    pages, logging out); `changing_password`: also open to a user whose password was reset and who
    must change it first (the account page, the password change, logging out). Every other route
    refuses such users."""
    unknown = set(roles) - {"public", "user", *ALL_ROLES}
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    return {"roles": tuple(roles), "enrolling": enrolling, "changing_password": changing_password}


PUBLIC = allow("public")


ENROL_PAGE = "/account/totp"


PASSWORD_PAGE = "/account"  # noqa: S105 (a page, not a password)


class PasswordChangeRequired(Forbidden):
    """403 for a user whose password the system administrator reset; a page goes to the account page."""

    code = "password_change_required"

    def __init__(self) -> None:
        super().__init__(
            "管理员已重置您的密码：请先修改密码，再使用其他功能",
            code=self.code,
            change_password=PASSWORD_PAGE,
        )


class EnrolmentRequired(Forbidden):
    """403 for a user who must enrol a second factor first; a page is redirected to the enrolment."""

    code = "totp_enrolment_required"

    def __init__(self) -> None:
        super().__init__(
            "本账号须使用动态口令（第二重身份鉴别）：请先绑定动态口令，再使用其他功能",
            code=self.code,
            enrol=ENROL_PAGE,
        )


def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    roles = handler.opt.get("roles")
    if not roles:
        raise PermissionDeniedException("endpoint declares no access rule")
    if connection.scope.get("state", {}).get("bad_token"):
        raise NotAuthorizedException("invalid token")
    if "public" in roles:
        return
    user: Principal | None = connection.scope.get("user")
    if user is None:
        raise NotAuthorizedException("login required")
    if user.must_change_password and not handler.opt.get("changing_password"):
        raise PasswordChangeRequired()
    if user.must_enrol and not handler.opt.get("enrolling"):
        raise EnrolmentRequired()
    if "user" in roles or user.role in roles:
        return
    raise PermissionDeniedException("role not allowed")
