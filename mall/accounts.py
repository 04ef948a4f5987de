"""Registering organizations (一地登记、全区通用) and their users. Only the platform admin does this."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import auth, clock, fields
from mall.core.auth import Principal
from mall.core.credit_code import problem_with
from mall.core.db import Database, Tx
from mall.core.errors import Conflict, InvalidInput, NotFound
from mall.core.fields import Address, Choice, CreditCodeText, Name, Phone, RegionCode
from mall.core.models import AuditEntry, Organization, OrgKind, User

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


async def register_org(db: Database, who: Principal | None, draft: OrganizationCreate) -> Organization:
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
    if errors:
        raise InvalidInput("；".join(errors), code="organization_invalid")
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
        audit(tx, who, "org_registered", code, org.name)
    return org


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
    weak = auth.password_problem(password, username, published_ok=who is None)  # None: the demo seed
    if weak is not None:
        errors.append(weak[1])
    if errors:
        raise InvalidInput("；".join(errors), code="user_invalid")
    password_hash = auth.hash_password(password)
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
        audit(tx, who, "user_created", username, org.name)
    return user


async def list_orgs(
    session: AsyncSession, kind: str | None, page: int, per_page: int
) -> tuple[int, list[Organization]]:
    if kind and kind not in {k.value for k in OrgKind}:
        raise InvalidInput("参数 kind 不是有效的单位类型", code="invalid_parameter", parameter="kind")
    stmt = select(Organization)
    if kind:
        stmt = stmt.where(Organization.kind == kind)
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


def audit(tx: Tx, who: Principal | None, action: str, target: str, detail: str) -> None:
    """The audit log's line for a registration or a budget line (who: None for the demo data)."""
    actor = who.user_id if who else None
    tx.session.add(
        AuditEntry(at=clock.now(), actor_user_id=actor, action=action, target=target, detail=detail)
    )
