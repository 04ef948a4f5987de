"""Who is calling: passwords, session cookies for pages, bearer tokens for the API, and the access guard.

Every route handler declares who may call it with `opt=allow(...)`; the global guard refuses a
handler that declares nothing, so an endpoint can never be open by omission.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import func, select

from mall import clock
from mall.db import Database
from mall.errors import TooManyAttempts, Unauthenticated
from mall.models import ApiToken, AuditEntry, OrgKind, User

# Cheap enough for a 2-core machine under a checkout benchmark, still memory-hard.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

ROLE_OF_KIND = {
    OrgKind.BUDGET_UNIT: "buyer",
    OrgKind.SUPPLIER: "supplier",
    OrgKind.CENTER: "center",
    OrgKind.REGULATOR: "regulator",
    OrgKind.PLATFORM: "admin",
}
ROLE_LABELS = {
    "buyer": "采购人",
    "supplier": "供应商",
    "center": "集中采购机构",
    "regulator": "财政监管",
    "admin": "平台管理员",
}
ALL_ROLES = ("buyer", "supplier", "center", "regulator", "admin")
TOKEN_TTL = timedelta(days=30)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    username: str
    display_name: str
    role: str
    org_id: uuid.UUID | None
    org_name: str
    org_credit_code: str
    via_token: bool = False

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def principal_of(user: User, *, via_token: bool = False) -> Principal:
    org = user.org
    # Fail closed: only the admin flag makes an admin; a user without an organization has no role.
    role = "admin" if user.is_admin else ROLE_OF_KIND[OrgKind(org.kind)] if org else "none"
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=role,
        org_id=org.id if org else None,
        org_name=org.name if org else "平台",
        org_credit_code=org.credit_code if org else "",
        via_token=via_token,
    )


LOGIN_FAILURES_ALLOWED = 5
LOGIN_LOCKOUT = timedelta(minutes=15)


async def authenticate(db: Database, username: str, password: str, ip: str = "") -> Principal:
    """Check a password. Attempts on one account are serialized (the user row is locked on
    PostgreSQL; SQLite has one writer), so the failure count cannot be raced past."""
    username = username[:64]
    locked = failed = False
    principal: Principal | None = None
    async with db.write() as tx:
        s = tx.session
        user = (
            (await s.execute(select(User).where(User.username == username).with_for_update(of=User)))
            .scalars()
            .first()
        )
        recent = await s.scalar(
            select(func.count()).where(
                AuditEntry.action == "login_failed",
                AuditEntry.target == username,
                AuditEntry.at > clock.now() - LOGIN_LOCKOUT,
            )
        )
        if (recent or 0) >= LOGIN_FAILURES_ALLOWED:
            locked = True  # the password is not even checked
        else:
            # The same work whether or not the user exists, so timing does not reveal usernames;
            # off the event loop, because argon2 is deliberately slow.
            stored = user.password_hash if user is not None else _dummy_hash()
            ok = await asyncio.to_thread(verify_password, stored, password)
            ok = ok and user is not None and user.is_active
            s.add(
                AuditEntry(
                    at=clock.now(),
                    actor_user_id=user.id if user else None,
                    action="login" if ok else "login_failed",
                    target=username,
                    ip=ip[:64],
                )
            )
            if ok and user is not None:
                user.last_login_at = clock.now()
                principal = principal_of(user)
            else:
                failed = True
    if locked:
        raise TooManyAttempts("登录失败次数过多，请15分钟后再试", code="too_many_attempts")
    if failed or principal is None:
        raise Unauthenticated("用户名或密码错误", code="bad_credentials")
    return principal


async def end_sessions(db: Database, user_id: uuid.UUID) -> None:
    async with db.write() as tx:
        user = await tx.session.get(User, user_id)
        if user is not None:
            user.session_epoch += 1
            tx.session.add(AuditEntry(at=clock.now(), actor_user_id=user_id, action="logout"))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(db: Database, principal: Principal, name: str = "") -> tuple[str, ApiToken]:
    token = "mall_" + secrets.token_urlsafe(32)
    now = clock.now()
    row = ApiToken(
        user_id=principal.user_id,
        token_hash=_token_digest(token),
        name=name[:100],
        created_at=now,
        expires_at=now + TOKEN_TTL,
    )
    async with db.write() as tx:
        tx.session.add(row)
        tx.session.add(
            AuditEntry(at=now, actor_user_id=principal.user_id, action="token_issued", target=name[:100])
        )
    return token, row


async def principal_from_token(db: Database, token: str) -> Principal | None:
    async with db.read() as s:
        row = (
            await s.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == _token_digest(token))
            )
        ).first()
        if row is None:
            return None
        tok, user = row
        if tok.revoked_at is not None or tok.expires_at <= clock.now() or not user.is_active:
            return None
        return principal_of(user, via_token=True)


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
    """Puts the caller (or None) in scope["user"]: bearer tokens on /api, the session cookie elsewhere."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        db: Database = scope["litestar_app"].state.db
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
        scope["user"] = user
        if user is None or scope["type"] != ScopeType.HTTP:
            await next_app(scope, receive, send)
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


def allow(*roles: str) -> dict[str, Any]:
    """Route option naming who may call: 'public', 'user' (anyone logged in) or role names."""
    unknown = set(roles) - {"public", "user", *ALL_ROLES}
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    return {"roles": tuple(roles)}


PUBLIC = allow("public")


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
    if "user" in roles or user.role in roles:
        return
    raise PermissionDeniedException("role not allowed")
