"""Registering organizations (一地登记、全区通用) and their users (the system administrator), and the
administrators' roles and second factors (the security administrator). Every change is audited."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Iterable

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, auth, clock, fields, passwords
from mall.core.auth import Principal
from mall.core.credit_code import kind_problem, problem_with
from mall.core.db import Database, Tx
from mall.core.encryption import DataKeys
from mall.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from mall.core.fields import Address, Choice, CreditCodeText, Name, Phone, RegionCode
from mall.core.models import ADMIN_ROLE_LABELS, Organization, OrgKind, User
from mall.credit import checks as credit_checks
from mall.credit.checks import Checker

USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")


class OrganizationCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An organization to register: the API's body, the admin page's form, the demo data."""

    kind: Choice  # budget_unit | supplier | center | regulator
    name: Name
    credit_code: CreditCodeText  # the service explains what is wrong with it (organization_invalid)
    region_code: RegionCode
    address: Address = ""
    contact_phone: Phone = ""
    # 个体工商户: a natural person trading under a registration. A supplier whose credit code says so
    # (92…) is one whether or not this is set; its published deals never carry its address.
    is_sole_proprietor: bool = False


OrgDraft = OrganizationCreate  # the name the demo tools build it by


async def register_org(
    db: Database, who: Principal | None, draft: OrganizationCreate, *, checker: Checker | None = None
) -> Organization:
    """A new organization. A supplier is checked first (mall.credit.checks): against the blacklist,
    and by `checker` (the national service, where configured); a listed one is refused (422
    `supplier_blacklisted`) and the refused check is kept."""
    name = fields.text(draft.name, "单位名称", fields.NAME_MAX, field="name")
    code = fields.text(draft.credit_code, "统一社会信用代码", fields.CREDIT_CODE_LENGTH, field="credit_code")
    code = code.upper()
    region = fields.text(draft.region_code, "行政区划代码", fields.REGION_CODE_LENGTH, field="region_code")
    address = fields.text(draft.address, "地址", fields.ADDRESS_MAX, field="address")
    phone = fields.text(draft.contact_phone, "联系电话", fields.PHONE_MAX, field="contact_phone")
    errors = []
    if draft.kind not in {k.value for k in OrgKind} or draft.kind == OrgKind.PLATFORM:
        errors.append("单位类型应为预算单位、供应商、集中采购机构或财政监管部门")
    if len(name) < 2:
        errors.append("单位名称应为2至200个字符")
    reason = problem_with(code)
    if reason:
        errors.append(reason)
    if not re.fullmatch(r"[1-9][0-9]{5}", region):
        errors.append("行政区划代码应为6位数字")
    sole = draft.is_sole_proprietor or (not reason and is_sole_proprietor_code(code))
    if sole and draft.kind != OrgKind.SUPPLIER:
        errors.append("个体工商户只能登记为供应商")
    elif sole and not reason and not is_sole_proprietor_code(code):
        errors.append("个体工商户的统一社会信用代码以 92 开头，请核对")
    elif not reason and (misfit := kind_problem(draft.kind, code)):
        errors.append(misfit)
    if errors:
        raise InvalidInput("；".join(errors), code="organization_invalid")
    outcomes = await _credit_checked(db, who, draft.kind, code, name, checker)
    async with db.write() as tx:
        if await tx.session.scalar(select(Organization.id).where(Organization.credit_code == code)):
            raise Conflict("该统一社会信用代码已登记", code="credit_code_taken")
        org = Organization(
            id=uuid.uuid4(),
            kind=draft.kind,
            name=name,
            credit_code=code,
            region_code=region,
            address=address,
            contact_phone=phone,
            is_sole_proprietor=sole,
            created_at=clock.now(),
        )
        tx.session.add(org)
        await tx.session.flush()
        for outcome in outcomes:
            tx.session.add(
                credit_checks.check_row(
                    org.id, code, name, "registration", outcome, who=who.user_id if who else None
                )
            )
        audit.record(
            tx,
            who,
            "org_registered",
            target_kind="organization",
            target=code,
            detail=org.name,
            after=_org_state(org),
        )
    return org


async def _credit_checked(
    db: Database, who: Principal | None, kind: str, code: str, name: str, checker: Checker | None
) -> list[credit_checks.Outcome]:
    """A supplier's checks before it is registered; a listed one is kept and refused."""
    if kind != OrgKind.SUPPLIER:
        return []
    today = clock.local_date(clock.now())
    async with db.read() as s:
        outcomes = [await credit_checks.BlacklistChecker().check(s, code, today)]
        if checker is not None:
            outcomes.append(await checker.check(s, code, today))  # 503 if the service fails
    listed = [o for o in outcomes if o.listed]
    if listed:
        async with db.write() as tx:
            for o in outcomes:
                tx.session.add(
                    credit_checks.check_row(
                        None, code, name, "registration", o, who=who.user_id if who else None
                    )
                )
        raise credit_checks.refusal(name, [r for o in listed for r in o.records])
    return outcomes


def _org_state(org: Organization) -> dict[str, object]:
    return {
        "kind": org.kind,
        "name": org.name,
        "credit_code": org.credit_code,
        "region_code": org.region_code,
        "address": org.address,
        "contact_phone": org.contact_phone,
    }


def is_sole_proprietor_code(code: str) -> bool:
    """A 统一社会信用代码 of a 个体工商户: registered by the market regulator (9), type 2 (GB 32100-2015)."""
    return code.upper().startswith("92")


async def names_of(session: AsyncSession, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of these organizations, by id (an unknown id is left out)."""
    wanted = set(org_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(wanted))
    )
    return {org_id: name for org_id, name in rows.all()}


async def create_user(
    db: Database, who: Principal | None, org_id: uuid.UUID, username: str, display_name: str, password: str
) -> User:
    username = fields.text(username, "用户名", fields.USERNAME_MAX, field="username").lower()
    display_name = fields.text(display_name, "姓名", fields.SHORT_MAX, min_length=1, field="display_name")
    errors = []
    if not USERNAME.fullmatch(username):
        errors.append("用户名应为3至64位小写字母、数字或 _ . -，以字母开头")
    weak = passwords.password_problem(password, username, published_ok=who is None)  # None: the demo seed
    if weak is not None:
        errors.append(weak[1])
    if errors:
        raise InvalidInput("；".join(errors), code="user_invalid")
    password_hash = passwords.hash_password(password)
    async with db.write() as tx:
        org = await organization(tx, org_id)
        if await tx.session.scalar(select(User.id).where(User.username == username)):
            raise Conflict("用户名已被使用", code="username_taken")
        user = User(
            id=uuid.uuid4(),
            org_id=org.id,
            username=username,
            display_name=display_name,
            password_hash=password_hash,
            created_at=clock.now(),
        )
        user.org = org
        tx.session.add(user)
        audit.record(
            tx,
            who,
            "user_created",
            target_kind="user",
            target=username,
            detail=org.name,
            after={"username": username, "display_name": display_name, "organization": org.credit_code},
        )
    return user


async def list_orgs(
    session: AsyncSession, kind: str | None, page: int, per_page: int, q: str = ""
) -> tuple[int, list[Organization]]:
    """A page of organizations, of one kind or all; `q` finds those whose name or credit code holds
    it, or that have a user of that username (names and credit codes are not encrypted; people's
    names are, and are not searched)."""
    if kind and kind not in {k.value for k in OrgKind}:
        raise InvalidInput("参数 kind 不是有效的单位类型", code="invalid_parameter", parameter="kind")
    stmt = select(Organization)
    if kind:
        stmt = stmt.where(Organization.kind == kind)
    q = fields.text(q, "搜索词", fields.SEARCH_MAX, field="q")
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        users = select(User.org_id).where(User.username.ilike(like, escape="\\"))
        stmt = stmt.where(
            or_(
                Organization.name.ilike(like, escape="\\"),
                Organization.credit_code.ilike(like, escape="\\"),
                Organization.id.in_(users),
            )
        )
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Organization.kind, Organization.name).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


async def users_of(session: AsyncSession, org_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[User]]:
    out: dict[uuid.UUID, list[User]] = {}
    if org_ids:
        for u in (
            await session.execute(select(User).where(User.org_id.in_(org_ids)).order_by(User.username))
        ).scalars():
            assert u.org_id
            out.setdefault(u.org_id, []).append(u)
    return out


async def organization(tx: Tx, org_id: uuid.UUID) -> Organization:
    org = await tx.session.get(Organization, org_id)
    if org is None:
        raise NotFound("单位不存在", code="organization_not_found")
    return org


# ------------------------------------------------------------------ the system administrator: accounts of business users

# A temporary password: 16 characters from this alphabet (no 0/O, 1/l/I to misread over the phone).
_TEMPORARY = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


async def _business_user(tx: Tx, who: Principal, user_id: uuid.UUID) -> User:
    """A user of a registered organization that is not the platform operator: the system
    administrator manages those accounts; the administrators' own are the security administrator's."""
    user = await tx.session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在", code="user_not_found")
    if user.id == who.user_id or user.org is None or user.org.kind == OrgKind.PLATFORM:
        raise Forbidden("平台管理员的账号由安全管理员管理，不能在此停用或重置", code="forbidden")
    return user


async def set_active(db: Database, who: Principal, user_id: uuid.UUID, active: bool, reason: str) -> User:
    """停用 or 启用 a user. A disabled user's sessions and API tokens stop working at once (every
    request checks the account) and logging in is refused; nothing they made is touched."""
    why = fields.text(reason, "原因", fields.REASON_MAX, min_length=0 if active else 1, field="reason")
    async with db.write() as tx:
        user = await _business_user(tx, who, user_id)
        if user.is_active != active:
            user.is_active = active
            if not active:
                user.session_epoch += 1
                await auth.revoke_all_tokens(tx, user.id, clock.now())
            audit.record(
                tx,
                who,
                "user_enabled" if active else "user_disabled",
                target_kind="user",
                target=user.username,
                detail=why,
                before={"is_active": not active},
                after={"is_active": active},
            )
    return user


async def reset_password(db: Database, who: Principal, user_id: uuid.UUID) -> tuple[User, str]:
    """A new temporary password for a user who lost theirs, shown once to the administrator (who passes
    it on); every session and token of the user ends, and the user must set a password of their own
    at the next login before anything else."""
    temporary = "".join(secrets.choice(_TEMPORARY) for _ in range(16))
    password_hash = await asyncio.to_thread(passwords.hash_password, temporary)
    async with db.write() as tx:
        user = await _business_user(tx, who, user_id)
        user.password_hash = password_hash
        user.must_change_password = True
        user.session_epoch += 1
        await auth.revoke_all_tokens(tx, user.id, clock.now())
        audit.record(
            tx,
            who,
            "password_reset",
            target_kind="user",
            target=user.username,
            detail="临时密码已生成（仅向管理员显示一次），下次登录须修改密码；会话与 API 令牌已全部结束",
        )
    return user, temporary


# ------------------------------------------------------------------ the administrators (security administrator)


async def platform_users(session: AsyncSession) -> list[User]:
    """The platform operator's users: those who may hold an administrator's role."""
    rows = await session.execute(
        select(User)
        .join(Organization, Organization.id == User.org_id)
        .where(Organization.kind == OrgKind.PLATFORM)
        .order_by(User.username)
    )
    return list(rows.scalars())


def _check_role(role: str | None) -> None:
    if role is not None and role not in ADMIN_ROLE_LABELS:
        raise InvalidInput(
            "角色应为系统管理员、安全管理员或审计管理员之一", code="invalid_role", field="role"
        )


async def _set_role(tx: Tx, who: Principal | None, user: User, role: str | None, detail: str = "") -> None:
    if user.org is None or user.org.kind != OrgKind.PLATFORM:
        raise Forbidden("只有平台运营方的用户可以担任管理员", code="not_platform_user")
    before = user.admin_role
    if before == role:
        return
    user.admin_role = role
    user.session_epoch += 1
    await auth.revoke_all_tokens(tx, user.id, clock.now())
    change = f"{ADMIN_ROLE_LABELS.get(before or '', '无')} → {ADMIN_ROLE_LABELS.get(role or '', '无')}"
    audit.record(
        tx,
        who,
        "role_changed",
        target_kind="user",
        target=user.username,
        detail=f"{change}{detail}",
        before={"admin_role": before},
        after={"admin_role": role},
    )


async def set_admin_role(db: Database, who: Principal, user_id: uuid.UUID, role: str | None) -> User:
    """The security administrator gives a platform user one of the three administrators' roles, or
    takes it away. One column holds it, so nobody ever holds two; nobody changes their own role
    (an administrator cannot widen or keep their own powers), and only the platform operator's
    users can be administrators. Every session and token of the user ends: its powers changed."""
    _check_role(role)
    if user_id == who.user_id:
        raise Forbidden("不能变更自己的角色", code="own_role")
    async with db.write() as tx:
        user = await auth.locked_user(tx.session, user_id)
        await _set_role(tx, who, user, role)
    return user


async def grant_role_on_host(db: Database, username: str, role: str | None) -> User:
    """`mall grant-role`: the operator, on the server, gives a platform user an administrator's role —
    how the first security administrator comes to be (after that, the security administrator does
    it). Audited, with no acting user: the system."""
    _check_role(role)
    async with db.write() as tx:
        user = (
            await tx.session.execute(
                select(User)
                .where(User.username == username.strip().lower())
                .with_for_update(key_share=True, of=User)
            )
        ).scalar_one_or_none()
        if user is None:
            raise NotFound("用户不存在", code="user_not_found")
        await _set_role(tx, None, user, role, "（运维人员在服务器上执行 mall grant-role）")
    return user


async def reset_second_factor(db: Database, who: Principal, user_id: uuid.UUID) -> User:
    """The security administrator resets a user's second factor (a lost phone): the user enrols
    again at the next login (before anything else where MALL_REQUIRE_TOTP applies)."""
    if user_id == who.user_id:
        raise Forbidden("不能重置自己的动态口令", code="own_second_factor")
    async with db.write() as tx:
        user = await auth.locked_user(tx.session, user_id)
        if user.totp_secret is None and user.totp_enabled_at is None:
            raise Conflict("该用户未绑定动态口令", code="totp_not_enabled")
        enabled = user.totp_enabled_at is not None
        user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
        user.session_epoch += 1
        audit.record(
            tx,
            who,
            "totp_reset",
            target_kind="user",
            target=user.username,
            before={"totp": enabled},
            after={"totp": False},
        )
    return user


async def users_with_second_factor(session: AsyncSession) -> list[User]:
    rows = await session.execute(
        select(User).where(User.totp_secret.is_not(None)).order_by(User.username).limit(500)
    )
    return list(rows.scalars())


def grant_role_command(database_url: str, username: str, role: str, data_keys: DataKeys | None = None) -> int:
    """`mall grant-role USERNAME sysadmin|secadmin|auditor|none`: exit 0, or 1 with the reason."""
    import sys

    async def go() -> User:
        db = Database(database_url, pool_size=2, data_keys=data_keys)
        try:
            return await grant_role_on_host(db, username, None if role == "none" else role)
        finally:
            await db.dispose()

    try:
        user = asyncio.run(go())
    except DomainError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print(f"{user.username} 的管理角色：{ADMIN_ROLE_LABELS.get(user.admin_role or '', '无')}")
    return 0
