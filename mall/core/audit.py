"""The security audit log (安全审计, GB/T 22239-2019 level 3): append-only and hash-chained.

Every entry says when (UTC), who (user id, username and role at that moment), from where (the
client address as `netaddr.client_ip` derives it, trusted proxies respected), what (a stable action
code of `ACTIONS`), whether it succeeded, on what (target kind and target), and what changed
(canonical JSON before and after; passwords, hashes, tokens and secrets are never kept).

`record` is called inside the transaction of the action. It only queues the entry; the queue is
appended just before that transaction commits (`Database.write` runs it last), under the lock of
the one `audit_head` row — the last lock of the global lock order (docs/decisions.md) — so entries
get gap-free sequence numbers in commit order, and an action commits with its entries or not at
all. The chain: `hash` = SHA-256 of the canonical JSON of the entry's fields with `prev_hash`, the
previous entry's `hash` (64 zeros for the first). `verify` recomputes it (`mall audit verify`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, attributes

from mall.core import clock, fields
from mall.core.db import WRITE, Database, Tx, before_commit
from mall.core.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1
ONLINE_DAYS_MIN = 180  # GB/T 22239 and the Cybersecurity Law: logs kept at least six months

# Every action code, with what a person reads on the audit page. Codes are stable: filters, tests
# and outside tools name them.
ACTIONS: dict[str, str] = {
    # signing in and out
    "login": "登录成功",
    "login_failed": "登录失败",
    "login_throttled": "登录被限制（等待中）",
    "login_password_ok": "密码正确，待验证动态口令",
    "login_totp_failed": "动态口令错误",
    "logout": "退出登录",
    "logout_all": "在所有设备上退出",
    "password_changed": "修改密码",
    "password_change_failed": "修改密码失败",
    "token_issued": "签发 API 令牌",
    "token_revoked": "吊销 API 令牌",
    "totp_enrolment_started": "开始绑定动态口令",
    "totp_enabled": "绑定动态口令",
    "totp_enrolment_failed": "绑定动态口令失败",
    "totp_reset": "重置动态口令",
    # the security administrator
    "login_throttle_cleared": "解除登录限制",
    "role_changed": "变更管理角色",
    # the system administrator
    "org_registered": "登记单位",
    "user_created": "开设用户",
    "budget_line_added": "录入预算指标",
    "budget_line_adjusted": "调整预算指标（追加/调减）",
    "user_disabled": "停用用户",
    "user_enabled": "启用用户",
    "password_reset": "重置用户密码",
    # reads of personal data and of this log
    "personal_data_viewed": "查看个人信息",
    "audit_log_viewed": "查阅审计日志",
    "audit_verified": "校验审计日志",
    # exports of the ledger
    "export_started": "创建导出任务",
    "export_downloaded": "下载导出数据",
    # the catalogue: listings, their reviews and moderation, price reviews
    "listing_created": "新建商品",
    "listing_edited": "修改商品",
    "listing_submitted": "提交商品审核",
    "listing_approved": "商品审核通过",
    "listing_rejected": "商品审核不通过",
    "listing_live": "商品重新上架（供应商）",
    "listing_delisted": "商品下架（供应商）",
    "listing_freeze": "冻结商品",
    "listing_unfreeze": "解冻商品",
    "listing_delist": "下架商品（监管）",
    "listing_relist": "恢复上架商品（监管）",
    "listing_price_requested": "申请调价",
    "listing_price_changed": "调价",
    "listing_price_approved": "调价审核通过",
    "listing_price_rejected": "调价审核不通过",
    "listing_price_withdrawn": "撤回调价",
    # framework agreements and designated services
    "agreement_created": "新建框架协议",
    "agreement_supplier_added": "协议增加入围供应商",
    "agreement_product_added": "协议增加产品",
    "agreement_activated": "协议生效",
    "agreement_terminated": "终止协议",
    "designation_applied": "申请定点",
    "designation_designated": "直接确定定点供应商",
    "designation_approved": "定点申请审核通过",
    "designation_rejected": "定点申请审核不通过",
    "designation_revoked": "撤销定点",
    # orders and push subscriptions
    "order_voided": "作废合同",
    "order_corrected": "更正成交记录（监管）",
    "subscription_created": "新建推送订阅",
    "subscription_paused": "暂停推送订阅",
    "subscription_resumed": "恢复推送订阅",
    "subscription_deleted": "删除推送订阅",
    "subscription_secret_rotated": "更换推送签名密钥",
    # operations: a year's partition of the kept logs moved to archive storage (mall archive)
    "partition_archived": "分区移入归档存储",
    # price monitoring (mall.pricewatch)
    "price_alert_asked": "价格预警：要求供应商说明",
    "price_alert_answered": "价格预警：供应商说明",
    "price_alert_frozen": "价格预警：冻结商品",
    "price_alert_closed": "价格预警：关闭",
    # oversight cases (mall.supervision)
    "case_explained": "监管事项作出说明",
    "sanction_imposed": "作出处理决定",
    "sanction_rebutted": "紧急暂停陈述申辩",
    "sanction_reviewed": "复核紧急暂停",
    "sanction_appealed": "处理决定申诉",
    "sanction_appeal_decided": "处理申诉",
    "report_filed": "举报供应商违规",
    "report_upheld": "举报查证属实",
    "report_dismissed": "举报不予支持",
    "sme_declared": "出具中小企业声明函",
    "credit_blacklist_imported": "导入失信名单",
    "case_justified": "监管事项认定理由成立",
    "case_violation": "监管事项认定违规",
    "case_escalated": "监管事项移送处理",
    # the demo data (its marker tells the login page to list the demo accounts)
    "demo_seeded": "载入演示数据",
}

# Entries that record a read, not a change: what a page or an answer showed (the tests that check a
# refused request wrote nothing leave them out).
READS = frozenset({"personal_data_viewed", "audit_log_viewed", "audit_verified", "export_downloaded"})

TARGET_KINDS: dict[str, str] = {
    "price_alert": "价格预警",
    "case": "监管事项",
    "sanction": "处理决定",
    "report": "违规举报",
    "user": "用户",
    "organization": "单位",
    "budget_line": "预算指标",
    "token": "API 令牌",
    "login_throttle": "登录限制",
    "listing": "商品",
    "price_request": "调价申请",
    "agreement": "框架协议",
    "designation": "定点",
    "order": "订单",
    "subscription": "推送订阅",
    "export": "导出",
    "page": "页面",
    "audit_log": "审计日志",
    "system": "系统",
}

# What the audit page calls the keys of before/after (the API keeps the keys).
STATE_LABELS: dict[str, str] = {
    "status": "状态",
    "reason": "原因",
    "note": "意见",
    "by": "处理方",
    "price": "售价",
    "reference_price": "参考价",
    "requested_price": "申请价格",
    "request": "调价申请",
    "decision": "结果",
    "admin_role": "管理角色",
    "totp": "动态口令",
    "kind": "类型",
    "name": "名称",
    "title": "名称",
    "username": "用户名",
    "display_name": "姓名",
    "organization": "单位",
    "owner": "所属用户",
    "credit_code": "统一社会信用代码",
    "region_code": "行政区划代码",
    "address": "地址",
    "contact_phone": "联系电话",
    "ip": "网络地址",
    "failures": "失败次数",
    "blocked_until": "限制至",
    "fiscal_year": "年度",
    "project_code": "项目编码",
    "project_name": "项目名称",
    "amount": "金额",
    "token_id": "令牌编号",
    "expires_at": "到期时间",
    "format": "格式",
    "filters": "筛选条件",
    "supplier": "供应商",
    "supplier_org_id": "供应商单位",
    "supplementary": "补充入围",
    "category_code": "品目编码",
    "starts_on": "开始日期",
    "ends_on": "截止日期",
    "direct_limit": "直接选定限额",
    "brand": "品牌",
    "spec_model": "规格型号",
    "list_price": "产品报价",
    "discount_rate": "折扣率",
    "url": "接收地址",
    "mode": "采购方式",
    "from_seq": "起始序号",
}

# Keys never written into before/after, at any depth: whatever a caller passes.
SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "current_password",
        "new_password",
        "new_password2",
        "token",
        "token_hash",
        "secret",
        "totp_secret",
        "totp_code",
        "code_hash",
    }
)


# Personal fields (docs/privacy.md): encrypted at rest, so never copied in clear into the log; the
# entry says the field was set or changed, not to what.
PERSONAL_KEYS = frozenset(
    {
        "address",
        "contact_phone",
        "display_name",
        "delivery_address",
        "shipping_note",
        "evaluation_comment",
    }
)
PERSONAL_MARK = "（个人信息，不记录原值）"


class Who(Protocol):
    """Whoever acts: a `mall.core.auth.Principal` (the kernel's audit knows no more of it)."""

    @property
    def user_id(self) -> uuid.UUID | None: ...

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class Actor:
    """Someone acting who is not (yet) a signed-in caller: the account named at a failed login."""

    user_id: uuid.UUID | None
    username: str
    role: str = ""


# The caller and the client address of the request being handled, set by the authentication
# middleware (`request_context`): what `record` falls back on.
_CALLER: ContextVar[Who | None] = ContextVar("mall_audit_caller", default=None)
_ADDRESS: ContextVar[str] = ContextVar("mall_audit_address", default="")


@contextlib.contextmanager
def request_context(caller: Who | None, address: str) -> Iterator[None]:
    """While a request is handled: who calls (None: anonymous) and from which client address."""
    t1, t2 = _CALLER.set(caller), _ADDRESS.set(address)
    try:
        yield
    finally:
        _CALLER.reset(t1)
        _ADDRESS.reset(t2)


def current_caller() -> Who | None:
    return _CALLER.get()


def current_address() -> str:
    return _ADDRESS.get()


# ------------------------------------------------------------------ what an entry may hold


def clean(value: Any) -> Any:
    """A value as JSON can hold it, secrets dropped: Decimal, UUID and enums as text, times RFC 3339."""
    if isinstance(value, Mapping):
        return {
            str(k): (PERSONAL_MARK if v and str(k).lower() in PERSONAL_KEYS else clean(v))
            for k, v in value.items()
            if str(k).lower() not in SECRET_KEYS
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [clean(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, enum.Enum):
        return clean(value.value)
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, (Decimal, uuid.UUID, date)):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def canonical(value: Any) -> str:
    """Keys sorted, no spaces, UTF-8 as is: the one encoding the chain is computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def state_json(state: Mapping[str, Any] | None) -> str | None:
    return None if state is None else canonical(clean(state))


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def chain_fields(
    *,
    seq: int,
    entry_id: uuid.UUID,
    at: datetime,
    actor_user_id: uuid.UUID | None,
    actor_username: str,
    actor_role: str,
    ip: str,
    action: str,
    succeeded: bool,
    target_kind: str,
    target: str,
    detail: str,
    before_state: str | None,
    after_state: str | None,
    prev_hash: str,
) -> dict[str, Any]:
    """What an entry's hash covers: every field but the hash itself."""
    return {
        "seq": seq,
        "id": str(entry_id),
        "at": stamp(at),
        "actor_user_id": str(actor_user_id) if actor_user_id else None,
        "actor_username": actor_username,
        "actor_role": actor_role,
        "ip": ip,
        "action": action,
        "succeeded": succeeded,
        "target_kind": target_kind,
        "target": target,
        "detail": detail,
        "before": before_state,
        "after": after_state,
        "prev_hash": prev_hash,
    }


def chain_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(dict(values)).encode("utf-8")).hexdigest()


def fields_of(e: AuditEntry) -> dict[str, Any]:
    return chain_fields(
        seq=e.seq,
        entry_id=e.id,
        at=e.at,
        actor_user_id=e.actor_user_id,
        actor_username=e.actor_username,
        actor_role=e.actor_role,
        ip=e.ip,
        action=e.action,
        succeeded=e.succeeded,
        target_kind=e.target_kind,
        target=e.target,
        detail=e.detail,
        before_state=e.before_state,
        after_state=e.after_state,
        prev_hash=e.prev_hash,
    )


# ------------------------------------------------------------------ writing


PENDING = "mall_audit_pending"


class _Caller:
    """The default of `record`'s `who`: the caller of the request being handled."""


CALLER = _Caller()


def record(
    where: Tx | AsyncSession | Session,
    who: Who | _Caller | None,
    action: str,
    *,
    target_kind: str = "",
    target: str = "",
    detail: str = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    ok: bool = True,
    ip: str | None = None,
    at: datetime | None = None,
) -> None:
    """Queue one entry in this write transaction; it is appended just before the commit. `who`:
    the acting user, None for the system (a job, the demo seed), or `CALLER` for whoever makes the
    request being handled. `ip` defaults to that request's client address."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: name it in mall.core.audit.ACTIONS")
    if target_kind and target_kind not in TARGET_KINDS:
        raise ValueError(f"unknown audit target kind {target_kind!r}")
    session = where.session if isinstance(where, Tx) else where
    actor = current_caller() if isinstance(who, _Caller) else who
    entry = AuditEntry(
        at=(at or clock.now()).astimezone(UTC),
        actor_user_id=actor.user_id if actor else None,
        actor_username=(actor.username if actor else "")[: fields.USERNAME_MAX],
        actor_role=(actor.role if actor else "")[:20],
        ip=(current_address() if ip is None else ip)[:64],
        action=action,
        succeeded=ok,
        target_kind=target_kind,
        target=target[:200],
        detail=detail,
        before_state=state_json(before),
        after_state=state_json(after),
    )
    session.info.setdefault(PENDING, []).append(entry)
    before_commit(session, "audit", _append)


async def _append(session: AsyncSession) -> None:
    """The queued entries, numbered and chained under the head's row lock. What the transaction
    changed is flushed first: waiting for a row another transaction holds must happen before the
    head is taken, never while holding it (the head is the last lock of the lock order)."""
    await session.flush()
    while pending := session.info.pop(PENDING, None):
        head = (
            await session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
        ).scalar_one()
        for entry in pending:
            entry.id = uuid.uuid4()
            entry.seq = head.last_seq + 1
            entry.prev_hash = head.last_hash
            entry.hash = chain_hash(fields_of(entry))
            session.add(entry)
            head.last_seq, head.last_hash = entry.seq, entry.hash
        await session.flush()


async def record_now(
    db: Database,
    who: Who | _Caller | None,
    action: str,
    **kwargs: Any,
) -> None:
    """An entry in a transaction of its own: for reads (a page that shows personal data, a
    download) that write nothing else."""
    async with db.write() as tx:
        record(tx, who, action, **kwargs)


# ------------------------------------------------------------------ changes seen at the flush

Change = dict[str, Any]  # record()'s keyword arguments, plus "action"
Describe = Callable[[Any, bool, Callable[[str], tuple[Any, Any]]], Change | None]
_WATCHED: dict[type, Describe] = {}


def watch(model: type, describe: Describe) -> None:
    """Record changes of `model` rows whatever code made them: at each flush, `describe(row, is_new,
    old_and_new)` says which entry a new or changed row makes (or None), `old_and_new(attribute)`
    giving the attribute's value before and after. The actor is the request's caller."""
    _WATCHED[model] = describe


@event.listens_for(Session, "before_flush")
def _changes_of_watched(session: Session, _context: Any, _instances: Any) -> None:
    if not _WATCHED or not session.info.get(WRITE):
        return
    for row, is_new in [*((r, True) for r in session.new), *((r, False) for r in session.dirty)]:
        describe = _WATCHED.get(type(row))
        if describe is None:
            continue

        def old_and_new(name: str, row: Any = row) -> tuple[Any, Any]:
            history = attributes.get_history(row, name)
            old = history.deleted[0] if history.deleted else (history.unchanged or [None])[0]
            return old, getattr(row, name)

        change = describe(row, is_new, old_and_new)
        if change is not None:
            action = change.pop("action")
            record(session, CALLER, action, **change)


# ------------------------------------------------------------------ checking the chain


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    checked: int
    ok: bool
    problem: str = ""
    seq: int | None = None  # the first bad sequence number


async def _entries(db: Database, upto: int, batch: int = 1000) -> AsyncIterator[AuditEntry]:
    after = 0
    while True:
        async with db.read() as s:
            rows = list(
                (
                    await s.execute(
                        select(AuditEntry)
                        .where(AuditEntry.seq > after, AuditEntry.seq <= upto)
                        .order_by(AuditEntry.seq)
                        .limit(batch)
                    )
                ).scalars()
            )
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq


async def verify(db: Database) -> VerifyResult:
    """Recompute the chain up to the head as it was when verification began (so a live log can be
    verified), and name the first sequence number that is missing, out of place or altered."""
    async with db.read() as s:
        head = await s.get(AuditHead, HEAD_ID)
        upto, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    expected, prev, checked = 1, GENESIS, 0
    async for e in _entries(db, upto):
        if e.seq != expected:
            return VerifyResult(checked, False, f"序号不连续：缺少第 {expected} 条", expected)
        if e.prev_hash != prev:
            return VerifyResult(
                checked, False, "prev_hash 与上一条的 hash 不一致（记录被删除、插入或调换）", e.seq
            )
        if chain_hash(fields_of(e)) != e.hash:
            return VerifyResult(checked, False, "hash 与记录内容不符（记录被修改）", e.seq)
        prev = e.hash
        expected += 1
        checked += 1
    if checked != upto:
        return VerifyResult(checked, False, f"序号不连续：缺少第 {expected} 条", expected)
    if prev != head_hash:
        return VerifyResult(checked, False, "日志头与最后一条记录不一致（末尾的记录被删除或修改）", upto)
    return VerifyResult(checked, True)


def verify_command(database_url: str) -> int:
    """`mall audit verify`: 0 when the chain is whole; 1, naming the first bad sequence number, if not."""
    import asyncio
    import sys

    async def go() -> VerifyResult:
        db = Database(database_url, pool_size=2)
        try:
            return await verify(db)
        finally:
            await db.dispose()

    result = asyncio.run(go())
    if result.ok:
        print(f"审计日志校验通过：共 {result.checked} 条记录，哈希链完整")
        return 0
    print(
        f"审计日志校验失败：第 {result.seq} 条 — {result.problem}（此前 {result.checked} 条正常）",
        file=sys.stderr,
    )
    return 1
