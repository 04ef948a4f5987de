"""Who is calling: the roles, the caller (`Principal`), logging in with a password and the second
factor, changing the password, and ending sessions.

Password checks go through `mall.core.login_throttle`; every sign-in, failure and sign-out is in the
audit log (`mall.core.audit`), a failure even though the login fails. Hashing and the password
policy are in `mall.core.passwords`, API tokens in `mall.core.tokens`, and the middleware and the
access guard in `mall.core.guards`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock, fields, login_throttle, passwords, totp
from mall.core.db import Database, Tx
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from mall.core.models import ADMIN_ROLE_LABELS, AdminRole, ApiToken, OrgKind, User

ROLE_OF_KIND = {
    OrgKind.BUDGET_UNIT: "buyer",
    OrgKind.SUPPLIER: "supplier",
    OrgKind.CENTER: "center",
    OrgKind.REGULATOR: "regulator",
}
# The platform operator's users have a role only through their `admin_role` (三员分立): the system
# administrator (organizations, users, budget lines, settings), the security administrator (roles,
# login throttles, API tokens, the password and second-factor policy) and the audit administrator
# (reads the audit log, changes nothing).
ADMIN_ROLES = tuple(r.value for r in AdminRole)
ROLE_LABELS = {
    "buyer": "采购人",
    "supplier": "供应商",
    "center": "集中采购机构",
    "regulator": "财政监管",
    **ADMIN_ROLE_LABELS,
}
ALL_ROLES = ("buyer", "supplier", "center", "regulator", *ADMIN_ROLES)


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
    totp_enrolled: bool = False  # the user signs in with a second factor
    # MALL_REQUIRE_TOTP obliges this user's role and it has not enrolled: nothing but enrolment
    # (and logging out) until it does.
    must_enrol: bool = False
    # a password reset by the system administrator: nothing but changing it until it is changed
    must_change_password: bool = False

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    @property
    def may_enrol(self) -> bool:
        return self.role in totp.ROLES


def role_of(user: User) -> str:
    """Fail closed: a platform user has the administrator's role its `admin_role` names, and nothing
    without one; anyone else has the role of their organization's kind; no organization, no role."""
    org = user.org
    if org is None:
        return "none"
    if org.kind == OrgKind.PLATFORM:
        return user.admin_role if user.admin_role in ADMIN_ROLES else "none"
    if user.admin_role is not None:
        return "none"  # an administrator's role outside the platform operator is never honoured
    return ROLE_OF_KIND.get(OrgKind(org.kind), "none")


def principal_of(user: User, *, via_token: bool = False, token_id: uuid.UUID | None = None) -> Principal:
    org = user.org
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=role_of(user),
        org_id=org.id if org else None,
        org_name=org.name if org else "平台",
        org_credit_code=org.credit_code if org else "",
        via_token=via_token,
        token_id=token_id,
        totp_enrolled=user.totp_enabled_at is not None,
        must_change_password=user.must_change_password,
    )


# ------------------------------------------------------------------ checking passwords


def login_name(username: str) -> str:
    """Usernames are stored lower-case; the throttle counts "Buyer1" and "buyer1" as one account."""
    return username.strip().lower()[: fields.USERNAME_MAX]


@dataclass
class _Check:
    user: User | None = None  # the account named, if it exists
    ok: bool = False
    wait: login_throttle.Wait | None = None


async def _check_password(tx: Tx, username: str, password: str, ip: str, exempt: bool) -> _Check:
    """One throttled password check inside a write transaction: refused unchecked while a wait is in
    force; otherwise the same work whether or not the user exists (timing reveals no usernames),
    and the failure or success recorded in the same transaction. For a user with a second factor
    a right password leaves the failures standing: only the right code forgets them (otherwise
    guessing codes between right passwords would never be throttled)."""
    s = tx.session
    now = clock.now()
    if not exempt:
        await login_throttle.serialize(s, username, ip)
        wait = await login_throttle.wait_for(s, username, ip, now)
        if wait is not None:
            return _Check(wait=wait)
    # Locked: the second factor's last accepted step is read and moved on in this transaction.
    user = (
        (
            await s.execute(
                select(User).where(User.username == username).with_for_update(key_share=True, of=User)
            )
        )
        .scalars()
        .first()
    )
    stored = user.password_hash if user is not None else passwords.dummy_hash()
    # Off the event loop: argon2 is deliberately slow.
    ok = await asyncio.to_thread(passwords.verify_password, stored, password)
    ok = ok and user is not None and user.is_active
    if not exempt:
        if not ok:
            await login_throttle.record_failure(s, username, ip, now)
        elif user is not None and user.totp_enabled_at is None:
            await login_throttle.record_success(s, username, ip)
    return _Check(user=user, ok=ok)


def _named(user: User | None, username: str) -> audit.Actor:
    """The account a login attempt names (the acting person is not known until it succeeds)."""
    return audit.Actor(user.id if user else None, username)


@dataclass(frozen=True)
class Login:
    principal: Principal
    needs_code: bool  # the password was right; the second factor (a TOTP code) is still to come
    epoch: int  # the user's session epoch, for the page session


async def _second_factor(
    tx: Tx, user: User, code: str, ip: str, key: bytes, exempt: bool, now: datetime
) -> bool:
    """Check a code for a user with a second factor, throttled and counted like a password: a
    success forgets the (account, address) failures, a failure adds one."""
    secret = totp.unseal(key, user.totp_secret or "")
    step = totp.matching_step(secret, code, now, user.totp_last_step) if secret else None
    if step is not None:
        user.totp_last_step = step
    if not exempt:
        if step is not None:
            await login_throttle.record_success(tx.session, user.username, ip)
        else:
            await login_throttle.record_failure(tx.session, user.username, ip, now)
    return step is not None


async def check_login(
    db: Database,
    username: str,
    password: str,
    ip: str = "",
    *,
    exempt: bool = False,
    code: str | None = None,
    totp_key: bytes = b"",
    enrolment_roles: frozenset[str] = frozenset(),
) -> Login:
    """Check a login. `ip` is the client address (`netaddr.client_ip`); `exempt` skips the throttle
    (`netaddr.exempt`: the benchmarks' loopback).

    For a user with a second factor, `code` None (a page: the code is asked next) answers with
    `needs_code` and the password step is audited as such; a code (the API sends both at once) is
    checked in the same transaction. `enrolment_roles` (MALL_REQUIRE_TOTP) refuses an API login of
    such a role that has not enrolled. Every outcome is audited, failures too."""
    username = login_name(username)
    result: Login | None = None
    refusal: Exception | None = None
    async with db.write() as tx:
        check = await _check_password(tx, username, password, ip, exempt)
        now = clock.now()
        user = check.user
        if check.wait is not None:
            audit.record(
                tx,
                _named(user, username),
                "login_throttled",
                target_kind="user",
                target=username,
                ok=False,
                ip=ip,
                detail=f"须等待 {check.wait.seconds} 秒（{'网络地址' if check.wait.scope == 'address' else '账号 + 地址'}）",
            )
            refusal = login_throttle.LoginThrottled(check.wait)
        elif not check.ok or user is None:
            audit.record(
                tx,
                _named(user, username),
                "login_failed",
                target_kind="user",
                target=username,
                ok=False,
                ip=ip,
            )
            refusal = Unauthenticated("用户名或密码错误", code="bad_credentials")
        else:
            principal = principal_of(user)
            has_factor = principal.totp_enrolled
            if has_factor and code is None:
                audit.record(tx, principal, "login_password_ok", target_kind="user", target=username, ip=ip)
                result = Login(principal, True, user.session_epoch)
            elif has_factor and not await _second_factor(tx, user, code or "", ip, totp_key, exempt, now):
                audit.record(
                    tx,
                    principal,
                    "login_totp_failed",
                    target_kind="user",
                    target=username,
                    ok=False,
                    ip=ip,
                    detail="未提供动态口令" if not code else "",
                )
                refusal = (
                    Unauthenticated("该账号已启用动态口令，请同时提交 totp_code", code="totp_required")
                    if not code
                    else Unauthenticated("动态口令错误或已使用过", code="totp_invalid")
                )
            elif not has_factor and code is not None and principal.role in enrolment_roles:
                audit.record(
                    tx,
                    principal,
                    "login_failed",
                    target_kind="user",
                    target=username,
                    ok=False,
                    ip=ip,
                    detail="须先在网页上绑定动态口令",
                )
                refusal = Forbidden(
                    "本账号须使用动态口令登录：请先在网页上登录并绑定动态口令，再获取 API 令牌",
                    code="totp_enrolment_required",
                )
            else:
                user.last_login_at = now
                audit.record(tx, principal, "login", target_kind="user", target=username, ip=ip)
                result = Login(principal, False, user.session_epoch)
    if refusal is not None:
        raise refusal
    assert result is not None
    return result


async def authenticate(
    db: Database, username: str, password: str, ip: str = "", *, exempt: bool = False
) -> Principal:
    """A password login of a user without a second factor (the code is refused as missing)."""
    return (await check_login(db, username, password, ip, exempt=exempt, code="")).principal


async def complete_login(
    db: Database, user_id: uuid.UUID, epoch: int, code: str, ip: str, *, totp_key: bytes, exempt: bool = False
) -> Login:
    """The second step of a page login: the code of the user whose password was just right (its
    session epoch unchanged since). Throttled and audited like the password."""
    refusal: Exception | None = None
    result: Login | None = None
    async with db.write() as tx:
        s = tx.session
        user = (
            (await s.execute(select(User).where(User.id == user_id).with_for_update(key_share=True, of=User)))
            .scalars()
            .first()
        )
        if user is None or not user.is_active or user.session_epoch != epoch or user.totp_enabled_at is None:
            raise Unauthenticated("登录已失效，请重新输入用户名和密码", code="login_expired")
        principal = principal_of(user)
        now = clock.now()
        wait = None
        if not exempt:
            await login_throttle.serialize(s, user.username, ip)
            wait = await login_throttle.wait_for(s, user.username, ip, now)
        if wait is not None:
            audit.record(
                tx,
                principal,
                "login_throttled",
                target_kind="user",
                target=user.username,
                ok=False,
                ip=ip,
                detail=f"须等待 {wait.seconds} 秒",
            )
            refusal = login_throttle.LoginThrottled(wait)
        elif await _second_factor(tx, user, code, ip, totp_key, exempt, now):
            user.last_login_at = now
            audit.record(
                tx,
                principal,
                "login",
                target_kind="user",
                target=user.username,
                ip=ip,
                detail="密码 + 动态口令",
            )
            result = Login(principal, False, user.session_epoch)
        else:
            audit.record(
                tx, principal, "login_totp_failed", target_kind="user", target=user.username, ok=False, ip=ip
            )
            refusal = Unauthenticated("动态口令错误或已使用过", code="totp_invalid")
    if refusal is not None:
        raise refusal
    assert result is not None
    return result


async def revoke_all_tokens(tx: Tx, user_id: uuid.UUID, now: datetime) -> None:
    await tx.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def _end_everything(tx: Tx, user: User, now: datetime) -> int:
    """Every page session (the cookie carries the epoch) and every API token of the user end."""
    user.session_epoch += 1
    await revoke_all_tokens(tx, user.id, now)
    return user.session_epoch


async def change_password(
    db: Database, who: Principal, current: str, new: str, ip: str = "", *, exempt: bool = False
) -> int:
    """The user changes their own password: the current one is checked (throttled like a login), the
    policy applies, every session ends and every token is revoked — the caller's own included.
    Returns the new session epoch (the page keeps the browser that made the change logged in)."""
    passwords.require_sound_password(new, who.username)
    new_hash = await asyncio.to_thread(passwords.hash_password, new)
    epoch: int | None = None
    async with db.write() as tx:
        check = await _check_password(tx, who.username, current, ip, exempt)
        if check.wait is None:
            now = clock.now()
            ok = check.ok and check.user is not None and check.user.id == who.user_id
            audit.record(
                tx,
                who,
                "password_changed" if ok else "password_change_failed",
                target_kind="user",
                target=who.username,
                ok=ok,
                ip=ip,
                detail="所有会话已结束，所有 API 令牌已吊销" if ok else "当前密码错误",
            )
            if ok and check.user is not None:
                check.user.password_hash = new_hash
                check.user.must_change_password = False
                epoch = await _end_everything(tx, check.user, now)
    if check.wait is not None:
        raise login_throttle.LoginThrottled(check.wait)
    if epoch is None:
        raise Unauthenticated("当前密码错误", code="bad_credentials")
    return epoch


async def end_sessions(db: Database, who: Principal) -> None:
    """Logging out: every page session of the user ends (its epoch moves on)."""
    async with db.write() as tx:
        user = await tx.session.get(User, who.user_id)
        if user is not None:
            user.session_epoch += 1
            audit.record(tx, who, "logout", target_kind="user", target=who.username)


async def end_everywhere(db: Database, who: Principal, ip: str | None = None) -> None:
    """Log out everywhere: every session and every API token of the user end."""
    async with db.write() as tx:
        user = await tx.session.get(User, who.user_id)
        if user is not None:
            now = clock.now()
            await _end_everything(tx, user, now)
            audit.record(tx, who, "logout_all", target_kind="user", target=who.username, ip=ip)


# ------------------------------------------------------------------ the second factor


async def locked_user(session: AsyncSession, user_id: uuid.UUID | None) -> User:
    """The user's row, locked for this write (its organization not: `OF users`); 404 if there is none."""
    user: User | None = await session.get(User, user_id, with_for_update={"of": User, "key_share": True})
    if user is None:
        raise NotFound("用户不存在", code="user_not_found")
    return user


async def begin_enrolment(db: Database, who: Principal, totp_key: bytes) -> tuple[str, str]:
    """A new TOTP secret for the caller, kept (encrypted) until a code confirms it: (secret, otpauth
    URI), to be shown once. Starting again replaces an unconfirmed secret; an enrolled user must
    have it reset by the security administrator first."""
    if not who.may_enrol:
        raise Forbidden("只有管理员、集中采购机构和财政监管用户可以绑定动态口令", code="totp_not_for_role")
    secret = totp.new_secret()
    async with db.write() as tx:
        user = await locked_user(tx.session, who.user_id)
        if user.totp_enabled_at is not None:
            raise Conflict("已绑定动态口令；如需更换，请联系安全管理员重置", code="totp_already_enabled")
        user.totp_secret, user.totp_last_step = totp.seal(totp_key, secret), None
        audit.record(tx, who, "totp_enrolment_started", target_kind="user", target=who.username)
    return secret, totp.uri(secret, who.username)


async def confirm_enrolment(
    db: Database, who: Principal, totp_key: bytes, code: str, ip: str = "", *, exempt: bool = False
) -> None:
    """The first code from the app confirms the secret: from now on the user signs in with both.
    A wrong code is throttled and counted like a wrong password."""
    refusal: Exception | None = None
    async with db.write() as tx:
        s = tx.session
        now = clock.now()
        if not exempt:
            await login_throttle.serialize(s, who.username, ip)
            wait = await login_throttle.wait_for(s, who.username, ip, now)
            if wait is not None:
                raise login_throttle.LoginThrottled(wait)
        user = await s.get(User, who.user_id, with_for_update={"of": User, "key_share": True})
        if user is None or user.totp_secret is None:
            raise Conflict("请先开始绑定，获取密钥后再输入验证码", code="totp_not_started")
        if user.totp_enabled_at is not None:
            raise Conflict("已绑定动态口令", code="totp_already_enabled")
        secret = totp.unseal(totp_key, user.totp_secret)
        step = totp.matching_step(secret, code, now, user.totp_last_step) if secret else None
        if step is None:
            if not exempt:
                await login_throttle.record_failure(s, who.username, ip, now)
            audit.record(
                tx, who, "totp_enrolment_failed", target_kind="user", target=who.username, ok=False, ip=ip
            )
            refusal = InvalidInput(
                "验证码不正确，请输入验证器当前显示的 6 位数字", code="totp_invalid", field="code"
            )
        else:
            user.totp_enabled_at, user.totp_last_step = now, step
            audit.record(
                tx,
                who,
                "totp_enabled",
                target_kind="user",
                target=who.username,
                ip=ip,
                before={"totp": False},
                after={"totp": True},
            )
    if refusal is not None:
        raise refusal
