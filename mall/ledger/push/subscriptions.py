"""Managing push subscriptions: centers, regulators and the platform register receivers of the
ledger, pause, resume, rotate the secret and read the delivery log."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried, retried_if_rolled_back
from mall.core.errors import Forbidden, InvalidInput, NotFound
from mall.core.settings import Settings
from mall.ledger import push_addresses
from mall.ledger.disclosure import MODES
from mall.ledger.models import DisclosureRecord, PushDelivery, PushStatus, PushSubscription
from mall.ledger.push.delivery import ledger_head, soon

STATE_LABELS = {"ok": "正常", "retrying": "重试中", "paused": "已暂停"}


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def state_of(sub: PushSubscription) -> str:
    if sub.status == PushStatus.PAUSED:
        return "paused"
    return "retrying" if sub.consecutive_failures else "ok"


def secret_hint(sub: PushSubscription) -> str:
    return "whsec_…" + sub.secret[-4:]


def validate_url(raw: str) -> str:
    """The syntax of a receiver URL (its addresses are checked by push_addresses.check_url)."""
    url = fields.text(raw, "接收地址", fields.URL_MAX, field="url")

    def bad(detail: str) -> InvalidInput:
        return InvalidInput(detail, code="invalid_url", field="url")

    if not url:
        raise bad("请填写接收地址")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise bad("接收地址格式不正确") from None
    if parts.scheme not in ("http", "https"):
        raise bad("接收地址只能以 http:// 或 https:// 开头")
    if not parts.hostname or any(ch.isspace() for ch in url):
        raise bad("接收地址格式不正确")
    # Credentials would be stored and shown with the URL; and a backslash is read as a path
    # separator by some URL parsers and as part of the user name by others.
    if "@" in parts.netloc or "\\" in url:
        raise bad("接收地址不能包含用户名、密码（user:pass@）或反斜杠")
    if port == 0:
        raise bad("接收地址的端口不正确")
    if parts.fragment:
        raise bad("接收地址不能包含 # 片段")
    return url


async def check_receiver(settings: Settings, raw: str) -> str:
    """A receiver URL that may be registered: well-formed, and resolving to no refused address
    unless its host is listed in `push_allowed_hosts`."""
    url = validate_url(raw)
    await push_addresses.check_url(url, settings.push_allowed_hosts, settings.push_timeout_seconds)
    return url


def _validate_name(raw: str) -> str:
    name = fields.text(raw, "订阅名称", fields.SHORT_MAX, field="name")
    if not name:
        raise InvalidInput("请填写订阅名称", code="invalid_name")
    return name


def _validate_mode(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw not in MODES:
        raise InvalidInput(f"交易方式应为 {' | '.join(MODES)} 之一", code="invalid_mode")
    return raw


# Who manages subscriptions: centers and regulators their organization's, the system administrator
# every one (the national platform's exchange is platform configuration).
MANAGERS = ("center", "regulator", "sysadmin")
SEES_ALL = "sysadmin"


def _owner(who: Principal | None) -> Principal:
    if who is None or who.role not in MANAGERS:
        raise Forbidden("只有集中采购机构、财政监管部门和系统管理员可以管理推送订阅", code="forbidden")
    return who


@retried_if_rolled_back
async def create(
    db: Database,
    settings: Settings,
    who: Principal | None,
    *,
    name: str,
    url: str,
    mode: str | None = None,
    from_seq: int | None = None,
) -> tuple[PushSubscription, str]:
    """Register a receiver. It gets records after `from_seq` (default: the current head, so only new
    records; 0 replays the whole ledger). Returns the subscription and its secret (shown this once)."""
    owner = _owner(who)
    if owner.org_id is None:
        raise Forbidden("当前账户不属于任何单位，不能登记推送订阅", code="forbidden")
    name = _validate_name(name)
    mode = _validate_mode(mode)
    url = await check_receiver(settings, url)
    secret = new_secret()
    async with db.write() as tx:
        head = await ledger_head(tx.session)
        if from_seq is None:
            from_seq = head
        if not 0 <= from_seq <= head:
            raise InvalidInput(f"起始序号应在 0 到 {head} 之间", code="invalid_from_seq")
        sub = PushSubscription(
            id=uuid.uuid4(),
            org_id=owner.org_id,
            created_by=owner.user_id,
            name=name,
            url=url,
            secret=secret,
            mode=mode,
            status=PushStatus.ACTIVE,
            cursor=from_seq,
            delivered=0,
            consecutive_failures=0,
            last_error_kind="",
            created_at=clock.now(),
        )
        tx.session.add(sub)
        audit.record(
            tx,
            owner,
            "subscription_created",
            target_kind="subscription",
            target=str(sub.id),
            detail=name,
            after={"name": name, "url": url, "mode": mode, "from_seq": from_seq},
        )
        if from_seq < head:
            tx.after_commit(lambda: soon(sub.id))
    return sub, secret


async def list_of(s: AsyncSession, who: Principal | None) -> list[PushSubscription]:
    owner = _owner(who)
    stmt = select(PushSubscription).where(PushSubscription.status != PushStatus.DELETED)
    if owner.role != SEES_ALL:
        stmt = stmt.where(PushSubscription.org_id == owner.org_id)
    return list((await s.execute(stmt.order_by(PushSubscription.created_at))).scalars())


async def get(s: AsyncSession, who: Principal | None, subscription_id: uuid.UUID) -> PushSubscription:
    owner = _owner(who)
    sub = await s.get(PushSubscription, subscription_id)
    # Another organization's subscription does not exist, as far as the caller can tell.
    if (
        sub is None
        or sub.status == PushStatus.DELETED
        or (owner.role != SEES_ALL and sub.org_id != owner.org_id)
    ):
        raise NotFound("推送订阅不存在", code="subscription_not_found")
    return sub


async def backlog(s: AsyncSession, sub: PushSubscription) -> int:
    """Records after the cursor that the receiver has yet to get (by its filter)."""
    stmt = select(func.count()).where(DisclosureRecord.seq > sub.cursor)
    if sub.mode:
        stmt = stmt.where(DisclosureRecord.mode == sub.mode)
    return await s.scalar(stmt) or 0


@retried
async def _change(
    db: Database, who: Principal | None, subscription_id: uuid.UUID, fn: Any, action: str
) -> PushSubscription:
    async with db.write() as tx:
        sub = await get(tx.session, who, subscription_id)
        before = {"status": sub.status}
        fn(sub, tx)
        audit.record(
            tx,
            who,
            action,
            target_kind="subscription",
            target=str(sub.id),
            detail=sub.name,
            before=before,
            after={"status": sub.status},
        )
    return sub


async def pause(db: Database, who: Principal | None, subscription_id: uuid.UUID) -> PushSubscription:
    def go(sub: PushSubscription, tx: Any) -> None:
        sub.status = PushStatus.PAUSED

    return await _change(db, who, subscription_id, go, "subscription_paused")


async def resume(db: Database, who: Principal | None, subscription_id: uuid.UUID) -> PushSubscription:
    """Active again, and the next attempt is now (resuming is also how a person says "retry now")."""

    def go(sub: PushSubscription, tx: Any) -> None:
        sub.status = PushStatus.ACTIVE
        sub.next_attempt_at = None
        tx.after_commit(lambda: soon(sub.id))

    return await _change(db, who, subscription_id, go, "subscription_resumed")


async def rotate_secret(
    db: Database, who: Principal | None, subscription_id: uuid.UUID
) -> tuple[PushSubscription, str]:
    secret = new_secret()

    def go(sub: PushSubscription, tx: Any) -> None:
        sub.secret = secret

    return await _change(db, who, subscription_id, go, "subscription_secret_rotated"), secret


async def remove(db: Database, who: Principal | None, subscription_id: uuid.UUID) -> None:
    """Stop for good; the row and its delivery log stay for the record."""

    def go(sub: PushSubscription, tx: Any) -> None:
        sub.status = PushStatus.DELETED

    await _change(db, who, subscription_id, go, "subscription_deleted")


async def deliveries(
    s: AsyncSession, sub: PushSubscription, page: int, per_page: int
) -> tuple[int, list[PushDelivery]]:
    """The delivery log, newest first."""
    where = PushDelivery.subscription_id == sub.id
    total = await s.scalar(select(func.count()).where(where)) or 0
    rows = await s.execute(
        select(PushDelivery)
        .where(where)
        .order_by(PushDelivery.started_at.desc(), PushDelivery.seq.desc(), PushDelivery.attempt.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return total, list(rows.scalars())
