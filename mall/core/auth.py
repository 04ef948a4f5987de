"""Who is calling: passwords, session cookies for pages, bearer tokens for the API, and the access guard.

Every route handler declares who may call it with `opt=allow(...)`; the global guard refuses a
handler that declares nothing, so an endpoint can never be open by omission. Password checks go
through `mall.login_throttle`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import or_, select, update

from mall.core import clock, fields, login_throttle
from mall.core.db import Database, Tx, retried
from mall.core.errors import InvalidInput, NotFound, Unauthenticated
from mall.core.models import ApiToken, AuditEntry, OrgKind, User

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
# Defaults; the app passes settings.token_ttl_days and settings.max_live_tokens.
TOKEN_TTL = timedelta(days=7)
MAX_LIVE_TOKENS = 20
# A token's last use is written when the stored one is older than this: one write per token per
# few minutes instead of one per request.
LAST_USE_EVERY = timedelta(minutes=5)


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


# ------------------------------------------------------------------ the password policy

PASSWORD_MIN = 10
COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords, lowercased (see mall/data/README.md for the source)."""
    return frozenset(COMMON_PASSWORDS.read_text(encoding="utf-8").split())


# Passwords printed where anyone can read them: the demo accounts' password (README, demo login
# page). The demo seed sets it; nobody else may choose it.
PUBLISHED_PASSWORDS = frozenset({"sunshine-demo-2026"})


def _comparable(text: str) -> str:
    """A password or name as the rules compare it: width folded (ＰＡＳＳ = PASS), trimmed, caseless."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def password_problem(password: str, username: str, *, published_ok: bool = False) -> tuple[str, str] | None:
    """(rule, Chinese message) of the first rule a new password breaks, or None. The one policy for
    every password that is set: accounts the admin opens, password changes, the demo seed (the only
    caller with `published_ok`). Spaces around a password do not count towards its length, and
    full-width letters and digits count as their ASCII forms when it is compared with the username
    and the common list."""
    if len(password) > fields.PASSWORD_MAX:
        return "too_long", f"密码不能超过 {fields.PASSWORD_MAX} 个字符"
    if fields.bad_character(password) is not None:
        return "bad_character", "密码不能含换行、控制字符、文字方向控制字符或不可见字符"
    if not password.strip():
        return "blank", "密码不能只由空白字符组成"
    length = len(password.strip())
    if length < PASSWORD_MIN:
        return "too_short", f"密码至少 {PASSWORD_MIN} 个字符，首尾空格不计（现为 {length} 个）"
    plain = _comparable(password)
    if plain == _comparable(username):
        return "same_as_username", "密码不能与用户名相同"
    if plain in common_passwords():
        return "too_common", "密码过于常见（属于最常用的 10,000 个密码），请换一个不易猜到的密码"
    if plain in PUBLISHED_PASSWORDS and not published_ok:
        return "published", "该密码是公开的演示密码，任何人都知道，请换一个"
    return None


def require_sound_password(password: str, username: str, *, published_ok: bool = False) -> None:
    problem = password_problem(password, username, published_ok=published_ok)
    if problem is not None:
        rule, message = problem
        raise InvalidInput(message, code="password_invalid", rule=rule)


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
    token_id: uuid.UUID | None = None  # the API token this call came with

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def principal_of(user: User, *, via_token: bool = False, token_id: uuid.UUID | None = None) -> Principal:
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
        token_id=token_id,
    )


# ------------------------------------------------------------------ checking passwords


def login_name(username: str) -> str:
    """Usernames are stored lower-case; the throttle counts "Admin" and "admin" as one account."""
    return username.strip().lower()[: fields.USERNAME_MAX]


@dataclass
class _Check:
    user: User | None = None  # the account named, if it exists
    ok: bool = False
    wait: login_throttle.Wait | None = None


async def _check_password(tx: Tx, username: str, password: str, ip: str, exempt: bool) -> _Check:
    """One throttled password check inside a write transaction: refused unchecked while a wait is in
    force; otherwise the same work whether or not the user exists (timing reveals no usernames),
    and the failure or success recorded in the same transaction."""
    s = tx.session
    now = clock.now()
    if not exempt:
        await login_throttle.serialize(s, username, ip)
        wait = await login_throttle.wait_for(s, username, ip, now)
        if wait is not None:
            return _Check(wait=wait)
    user = (await s.execute(select(User).where(User.username == username))).scalars().first()
    stored = user.password_hash if user is not None else _dummy_hash()
    # Off the event loop: argon2 is deliberately slow.
    ok = await asyncio.to_thread(verify_password, stored, password)
    ok = ok and user is not None and user.is_active
    if not exempt:
        if ok:
            await login_throttle.record_success(s, username, ip)
        else:
            await login_throttle.record_failure(s, username, ip, now)
    return _Check(user=user, ok=ok)


async def authenticate(
    db: Database, username: str, password: str, ip: str = "", *, exempt: bool = False
) -> Principal:
    """Check a password for a login. `ip` is the client address (`netaddr.client_ip`); `exempt`
    skips the throttle (`netaddr.exempt`: the benchmarks' loopback)."""
    username = login_name(username)
    principal: Principal | None = None
    async with db.write() as tx:
        check = await _check_password(tx, username, password, ip, exempt)
        if check.wait is None:
            tx.session.add(
                AuditEntry(
                    at=clock.now(),
                    actor_user_id=check.user.id if check.user else None,
                    action="login" if check.ok else "login_failed",
                    target=username,
                    ip=ip[:64],
                )
            )
            if check.ok and check.user is not None:
                check.user.last_login_at = clock.now()
                principal = principal_of(check.user)
    if check.wait is not None:
        raise login_throttle.LoginThrottled(check.wait)
    if principal is None:
        raise Unauthenticated("用户名或密码错误", code="bad_credentials")
    return principal


async def _end_everything(tx: Tx, user: User, now: datetime) -> int:
    """Every page session (the cookie carries the epoch) and every API token of the user end."""
    user.session_epoch += 1
    await tx.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return user.session_epoch


async def change_password(
    db: Database, who: Principal, current: str, new: str, ip: str = "", *, exempt: bool = False
) -> int:
    """The user changes their own password: the current one is checked (throttled like a login), the
    policy applies, every session ends and every token is revoked — the caller's own included.
    Returns the new session epoch (the page keeps the browser that made the change logged in)."""
    require_sound_password(new, who.username)
    new_hash = await asyncio.to_thread(hash_password, new)
    epoch: int | None = None
    async with db.write() as tx:
        check = await _check_password(tx, who.username, current, ip, exempt)
        if check.wait is None:
            now = clock.now()
            ok = check.ok and check.user is not None and check.user.id == who.user_id
            tx.session.add(
                AuditEntry(
                    at=now,
                    actor_user_id=who.user_id,
                    action="password_changed" if ok else "password_change_failed",
                    target=who.username,
                    ip=ip[:64],
                )
            )
            if ok and check.user is not None:
                check.user.password_hash = new_hash
                epoch = await _end_everything(tx, check.user, now)
    if check.wait is not None:
        raise login_throttle.LoginThrottled(check.wait)
    if epoch is None:
        raise Unauthenticated("当前密码错误", code="bad_credentials")
    return epoch


async def end_sessions(db: Database, user_id: uuid.UUID) -> None:
    async with db.write() as tx:
        user = await tx.session.get(User, user_id)
        if user is not None:
            user.session_epoch += 1
            tx.session.add(AuditEntry(at=clock.now(), actor_user_id=user_id, action="logout"))


async def end_everywhere(db: Database, user_id: uuid.UUID, ip: str = "") -> None:
    """Log out everywhere: every session and every API token of the user end."""
    async with db.write() as tx:
        user = await tx.session.get(User, user_id)
        if user is not None:
            now = clock.now()
            await _end_everything(tx, user, now)
            tx.session.add(AuditEntry(at=now, actor_user_id=user_id, action="logout_all", ip=ip[:64]))


# ------------------------------------------------------------------ API tokens


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    db: Database,
    principal: Principal,
    name: str = "",
    *,
    ttl: timedelta = TOKEN_TTL,
    max_live: int = MAX_LIVE_TOKENS,
) -> tuple[str, ApiToken]:
    """A new token. Beyond `max_live` live tokens the oldest are revoked (audited): whoever asks has
    just proven the password, and scripts that log in on every run keep working; with a fixed
    lifetime the oldest token is also the one closest to expiring anyway."""
    name = fields.text(name, "令牌名称", fields.SHORT_MAX, field="name")
    token = "mall_" + secrets.token_urlsafe(32)
    now = clock.now()
    row = ApiToken(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        token_hash=_token_digest(token),
        name=name,
        created_at=now,
        expires_at=now + ttl,
    )
    async with db.write() as tx:
        s = tx.session
        # One issue at a time per user, so two logins at once cannot both take the last free place.
        await s.execute(select(User.id).where(User.id == principal.user_id).with_for_update())
        live = list(
            (
                await s.execute(
                    select(ApiToken)
                    .where(*_live(principal.user_id, now))
                    .order_by(ApiToken.created_at, ApiToken.id)
                )
            ).scalars()
        )
        for old in live[: max(0, len(live) - max_live + 1)]:
            old.revoked_at = now
            s.add(
                AuditEntry(
                    at=now,
                    actor_user_id=principal.user_id,
                    action="token_revoked",
                    target=old.name,
                    detail=f"有效令牌已达上限（{max_live} 个），自动吊销最早签发的令牌",
                )
            )
        s.add(row)
        s.add(AuditEntry(at=now, actor_user_id=principal.user_id, action="token_issued", target=name))
    return token, row


def _live(user_id: uuid.UUID, now: datetime) -> tuple[Any, ...]:
    return (ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)


async def tokens_of(db: Database, user_id: uuid.UUID) -> list[ApiToken]:
    """The user's live tokens, newest first."""
    async with db.read() as s:
        rows = await s.execute(
            select(ApiToken)
            .where(*_live(user_id, clock.now()))
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
        )
        return list(rows.scalars())


async def revoke_token(db: Database, who: Principal, token_id: uuid.UUID) -> None:
    """The owner revokes one of their tokens; anyone else's is "not found"."""
    async with db.write() as tx:
        row = (
            await tx.session.execute(
                select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == who.user_id)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("令牌不存在", code="token_not_found")
        if row.revoked_at is None:
            row.revoked_at = clock.now()
            tx.session.add(
                AuditEntry(at=clock.now(), actor_user_id=who.user_id, action="token_revoked", target=row.name)
            )


@retried
async def principal_from_token(db: Database, token: str) -> Principal | None:
    now = clock.now()
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
        if tok.revoked_at is not None or tok.expires_at <= now or not user.is_active:
            return None
        principal = principal_of(user, via_token=True, token_id=tok.id)
    if tok.last_used_at is None or tok.last_used_at <= now - LAST_USE_EVERY:
        async with db.write() as tx:
            await tx.session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == tok.id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USE_EVERY),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
    return principal


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
