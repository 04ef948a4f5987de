"""Push subscriptions (推送订阅): every new ledger record is POSTed to a registered URL, in ledger order.

A subscription's `cursor` is the last seq its receiver acknowledged with a 2xx (or that its mode
filter passed over). The deliverer runs as a job under a per-subscription Redis lock, posts the record
after the cursor, and moves the cursor only after a 2xx; on any failure it stops, logs the attempt
and waits with exponential backoff before trying the same record again. Nothing is ever skipped, so a
receiver that was down gets everything it missed, in order, once it is back. Delivery is
at-least-once: a receiver that answered 2xx too late (after our timeout) sees that record again,
and dedupes it by the `Idempotency-Key` header (the record id).

Receivers on internal addresses are refused at registration and at every connection (see
mall.push_addresses). The log keeps the status code and one of ERROR_KINDS, never what the receiver
answered: a subscriber must not be able to read an internal service through the mall's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import random
import secrets
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, fields, outbox
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import Forbidden, InvalidInput, NotFound
from mall.core.models import DisclosureRecord, LedgerHead, PushDelivery, PushStatus, PushSubscription
from mall.core.settings import Settings
from mall.ledger import push_addresses
from mall.ledger.disclosure import MODES

log = logging.getLogger("mall.push")

STATE_LABELS = {"ok": "正常", "retrying": "重试中", "paused": "已暂停"}
SIGNATURE_HEADER = "X-Mall-Signature"
SEQ_HEADER = "X-Mall-Seq"
READ_CHUNK = 100

# Why a delivery failed: the only thing kept about it besides the HTTP status code.
ERROR_KINDS = {
    "http_status": "接收方返回了非 2xx 的 HTTP 状态码",
    "timeout": "请求超时，未收到接收方完整答复",
    "connect_refused": "无法连接接收方：连接被拒绝（端口未在监听）",
    "connect_failed": "无法连接接收方：网络不通或连接中断",
    "dns_failed": "接收地址的主机名无法解析",
    "tls_error": "无法与接收方建立安全连接：TLS 握手失败或证书无效",
    "address_forbidden": (
        "接收地址解析到内网、本机或其他受限地址，已拒绝连接（政务内网的接收方请联系平台管理员加入推送允许列表）"
    ),
    "protocol_error": "接收方的答复不符合 HTTP 协议",
}


def error_label(kind: str, status_code: int | None) -> str:
    """What a person reads about a failed attempt (empty for a success)."""
    if not kind:
        return ""
    if kind == "http_status" and status_code is not None:
        redirect = "（不跟随重定向）" if 300 <= status_code < 400 else ""
        return f"接收方返回 HTTP {status_code}{redirect}"
    return ERROR_KINDS.get(kind, "投递失败")


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process (loading the CA bundle takes ~0.1 s; the worker makes it once,
    before forking its work horses, see workers.worker)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def sign(secret: str, body: bytes) -> str:
    """The value of the X-Mall-Signature header: HMAC-SHA256 of the raw request body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def state_of(sub: PushSubscription) -> str:
    if sub.status == PushStatus.PAUSED:
        return "paused"
    return "retrying" if sub.consecutive_failures else "ok"


def secret_hint(sub: PushSubscription) -> str:
    return "whsec_…" + sub.secret[-4:]


def backoff_seconds(settings: Settings, failures: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base * 2^(failures-1), capped, then between half and all of it
    (so receivers coming back do not get every subscriber's retry in the same second)."""
    exp = min(max(failures - 1, 0), 30)
    cap = min(settings.push_backoff_max_seconds, settings.push_backoff_base_seconds * float(2**exp))
    jitter: float = (rng or random).random()
    return cap / 2 + jitter * cap / 2


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


async def ledger_head(s: AsyncSession) -> int:
    return await s.scalar(select(LedgerHead.last_seq).where(LedgerHead.id == 1)) or 0


# ---------------------------------------------------------------- managing subscriptions


def _owner(who: Principal | None) -> Principal:
    if who is None or who.role not in ("center", "regulator", "admin"):
        raise Forbidden("只有集中采购机构、财政监管部门和平台管理员可以管理推送订阅", code="forbidden")
    return who


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
        if from_seq < head:
            tx.after_commit(lambda: _soon(sub.id))
    return sub, secret


async def list_of(s: AsyncSession, who: Principal | None) -> list[PushSubscription]:
    owner = _owner(who)
    stmt = select(PushSubscription).where(PushSubscription.status != PushStatus.DELETED)
    if owner.role != "admin":
        stmt = stmt.where(PushSubscription.org_id == owner.org_id)
    return list((await s.execute(stmt.order_by(PushSubscription.created_at))).scalars())


async def get(s: AsyncSession, who: Principal | None, subscription_id: uuid.UUID) -> PushSubscription:
    owner = _owner(who)
    sub = await s.get(PushSubscription, subscription_id)
    # Another organization's subscription does not exist, as far as the caller can tell.
    if (
        sub is None
        or sub.status == PushStatus.DELETED
        or (owner.role != "admin" and sub.org_id != owner.org_id)
    ):
        raise NotFound("推送订阅不存在", code="subscription_not_found")
    return sub


async def backlog(s: AsyncSession, sub: PushSubscription) -> int:
    """Records after the cursor that the receiver has yet to get (by its filter)."""
    stmt = select(func.count()).where(DisclosureRecord.seq > sub.cursor)
    if sub.mode:
        stmt = stmt.where(DisclosureRecord.mode == sub.mode)
    return await s.scalar(stmt) or 0


async def _change(
    db: Database, who: Principal | None, subscription_id: uuid.UUID, fn: Any
) -> PushSubscription:
    async with db.write() as tx:
        sub = await get(tx.session, who, subscription_id)
        fn(sub, tx)
    return sub


async def pause(db: Database, who: Principal | None, subscription_id: uuid.UUID) -> PushSubscription:
    def go(sub: PushSubscription, tx: Any) -> None:
        sub.status = PushStatus.PAUSED

    return await _change(db, who, subscription_id, go)


async def resume(db: Database, who: Principal | None, subscription_id: uuid.UUID) -> PushSubscription:
    """Active again, and the next attempt is now (resuming is also how a person says "retry now")."""

    def go(sub: PushSubscription, tx: Any) -> None:
        sub.status = PushStatus.ACTIVE
        sub.next_attempt_at = None
        tx.after_commit(lambda: _soon(sub.id))

    return await _change(db, who, subscription_id, go)


async def rotate_secret(
    db: Database, who: Principal | None, subscription_id: uuid.UUID
) -> tuple[PushSubscription, str]:
    secret = new_secret()

    def go(sub: PushSubscription, tx: Any) -> None:
        sub.secret = secret

    return await _change(db, who, subscription_id, go), secret


async def remove(db: Database, who: Principal | None, subscription_id: uuid.UUID) -> None:
    """Stop for good; the row and its delivery log stay for the record."""

    def go(sub: PushSubscription, tx: Any) -> None:
        sub.status = PushStatus.DELETED

    await _change(db, who, subscription_id, go)


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


# ---------------------------------------------------------------- delivery


@dataclass
class DeliveryRun:
    delivered: int = 0
    skipped: int = 0  # passed over by the mode filter
    failed: bool = False
    busy: bool = False  # another deliverer holds the subscription's lock
    waiting: bool = False  # backing off: the next attempt is not due yet
    more: bool = False  # the batch limit was reached with records left
    retry_at: datetime | None = None


@dataclass
class _Outcome:
    ok: bool
    status_code: int | None
    error_kind: str  # "" or one of ERROR_KINDS
    duration_ms: int


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    at: BaseException | None = exc
    while at is not None and at not in chain:
        chain.append(at)
        at = at.__cause__ or at.__context__
    return chain


def _error_kind(exc: BaseException) -> str:
    """The kind of a failed request, from the exception alone (its text is never kept: it can
    quote what the receiver sent)."""
    chain = _causes(exc)

    def caused_by(*types: type[BaseException]) -> bool:
        return any(isinstance(e, types) for e in chain)

    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if caused_by(push_addresses.AddressForbidden):
        return "address_forbidden"
    if caused_by(push_addresses.HostUnresolvable, socket.gaierror):
        return "dns_failed"
    if caused_by(ssl.SSLError, ssl.CertificateError):
        return "tls_error"
    if caused_by(ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, httpx.ProtocolError | httpx.DecodingError):
        return "protocol_error"
    return "connect_failed"


async def _post(
    client: httpx.AsyncClient,
    deadline_seconds: float,
    url: str,
    secret: str,
    seq: int,
    record_id: uuid.UUID,
    body: bytes,
) -> _Outcome:
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        "Idempotency-Key": str(record_id),
        SEQ_HEADER: str(seq),
        "User-Agent": "SunshineMall-Push/1",
    }
    t0 = time.perf_counter()
    code: int | None = None
    kind = ""
    try:
        # A whole-request deadline (httpx's timeout is per read), and at most 64 KiB of any answer
        # read (and dropped): a receiver that drips or floods cannot hold a deliverer.
        async with (
            asyncio.timeout(deadline_seconds),
            client.stream("POST", url, content=body, headers=headers) as r,
        ):
            code = r.status_code
            read = 0
            async for part in r.aiter_bytes():
                read += len(part)
                if read >= 65536:
                    break
        if not 200 <= code < 300:
            kind = "http_status"
    except (httpx.HTTPError, TimeoutError) as exc:
        code, kind = None, _error_kind(exc)
    duration = int((time.perf_counter() - t0) * 1000)
    return _Outcome(code is not None and not kind, code, kind, duration)


async def deliver(
    db: Database, settings: Settings, subscription_id: uuid.UUID, *, limit: int | None = None
) -> DeliveryRun:
    """Deliver up to `limit` records after the cursor, in order, stopping at the first failure.
    One deliverer per subscription at a time (Redis lock); the cursor itself moves by compare-and-set,
    so even an expired lock cannot make two deliverers move it past each other."""
    import redis.asyncio as aioredis
    from redis.exceptions import LockError

    run = DeliveryRun()
    limit = limit or settings.push_batch
    conn = aioredis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        lock = conn.lock(
            f"mall:{settings.queue_name}:push:{subscription_id}",
            timeout=settings.push_timeout_seconds * 2 + 30,
            blocking_timeout=5,
        )
        if not await lock.acquire():
            run.busy = True
            return run
        try:
            # Every connection goes through the address check (the transport resolves and connects).
            async with httpx.AsyncClient(
                timeout=settings.push_timeout_seconds,
                follow_redirects=False,
                trust_env=False,
                transport=push_addresses.GuardedTransport(settings.push_allowed_hosts, ssl_context()),
            ) as client:
                await _deliver_locked(db, settings, subscription_id, client, lock, run, limit)
        finally:
            with contextlib.suppress(LockError):
                await lock.release()
    finally:
        await conn.aclose()
    if run.more:
        await asyncio.to_thread(_soon, subscription_id)
    elif run.retry_at is not None:
        await asyncio.to_thread(_schedule, subscription_id, run.retry_at)
    return run


async def _deliver_locked(
    db: Database,
    settings: Settings,
    subscription_id: uuid.UUID,
    client: httpx.AsyncClient,
    lock: Any,
    run: DeliveryRun,
    limit: int,
) -> None:
    async with db.read() as s:
        sub = await s.get(PushSubscription, subscription_id)
    if sub is None or sub.status != PushStatus.ACTIVE:
        return
    if sub.next_attempt_at is not None and sub.next_attempt_at > clock.now():
        run.waiting = True
        return
    progress = _Progress(subscription_id, sub.cursor, sub.consecutive_failures)
    url, secret, mode = sub.url, sub.secret, sub.mode
    while not run.more:
        async with db.read() as s:
            rows = (
                await s.execute(
                    select(
                        DisclosureRecord.seq,
                        DisclosureRecord.id,
                        DisclosureRecord.mode,
                        DisclosureRecord.body,
                    )
                    .where(DisclosureRecord.seq > progress.passed)
                    .order_by(DisclosureRecord.seq)
                    .limit(READ_CHUNK)
                )
            ).all()
        if not rows:
            break
        for seq, record_id, record_mode, body in rows:
            if mode and record_mode != mode:
                progress.passed = seq
                run.skipped += 1
                continue
            if run.delivered >= limit:
                run.more = True
                break
            await lock.reacquire()  # the lock lives for one more record's worth of time
            outcome = await _post(
                client, settings.push_timeout_seconds, url, secret, seq, record_id, body.encode("utf-8")
            )
            now = clock.now()
            progress.log.append(
                PushDelivery(
                    id=uuid.uuid4(),
                    subscription_id=subscription_id,
                    seq=seq,
                    record_id=record_id,
                    attempt=progress.failures + 1,
                    started_at=now,
                    status_code=outcome.status_code,
                    ok=outcome.ok,
                    error_kind=outcome.error_kind,
                    duration_ms=outcome.duration_ms,
                )
            )
            if not outcome.ok:
                progress.failures += 1
                run.failed = True
                run.retry_at = now + timedelta(seconds=backoff_seconds(settings, progress.failures))
                await progress.flush(
                    db,
                    now,
                    failure=outcome.error_kind,
                    status_code=outcome.status_code,
                    retry_at=run.retry_at,
                )
                log.info(
                    "push %s: seq %d failed (%s %s)",
                    subscription_id,
                    seq,
                    outcome.error_kind,
                    outcome.status_code,
                )
                return
            progress.passed = seq
            progress.failures = 0
            run.delivered += 1
            if len(progress.log) >= FLUSH_EVERY and not await progress.flush(db, now):
                run.retry_at = None
                return
    await progress.flush(db, clock.now())


FLUSH_EVERY = 50


class _Progress:
    """What this run delivered but has not saved yet. The cursor and the log are saved every
    FLUSH_EVERY records (a crash in between re-sends at most that many: delivery is at-least-once)."""

    def __init__(self, subscription_id: uuid.UUID, cursor: int, failures: int) -> None:
        self.subscription_id = subscription_id
        self.cursor = cursor  # as saved
        self.passed = cursor  # delivered or passed over by the filter
        self.failures = failures
        self.log: list[PushDelivery] = []

    async def flush(
        self,
        db: Database,
        now: datetime,
        *,
        failure: str = "",
        status_code: int | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Save the log and move the cursor by compare-and-set. False: another deliverer moved it
        (or the subscription is no longer active): stop."""
        delivered = sum(1 for d in self.log if d.ok)
        if not self.log and self.passed == self.cursor:
            return True
        values: dict[str, Any] = {"cursor": self.passed}
        if delivered:
            values.update(
                delivered=PushSubscription.delivered + delivered,
                consecutive_failures=0,
                next_attempt_at=None,
                last_error_kind="",
                last_status_code=None,
                last_success_at=now,
            )
        if retry_at is not None:
            values.update(
                consecutive_failures=self.failures,
                next_attempt_at=retry_at,
                last_error_kind=failure,
                last_status_code=status_code,
            )
        async with db.write() as tx:
            tx.session.add_all(self.log)  # what was sent is logged, whatever happens to the cursor
            status = (
                await tx.session.execute(
                    update(PushSubscription)
                    .where(
                        PushSubscription.id == self.subscription_id, PushSubscription.cursor == self.cursor
                    )
                    .values(**values)
                    .returning(PushSubscription.status)
                )
            ).scalar_one_or_none()
        self.log = []
        if status is None:
            log.warning("push %s: cursor moved under this deliverer; stopping", self.subscription_id)
            return False
        self.cursor = self.passed
        return status == PushStatus.ACTIVE


async def prune_log(db: Database, settings: Settings) -> int:
    """Delete delivery-log rows older than `push_log_keep_days` (the ledger itself is never pruned)."""
    from sqlalchemy import delete

    before = clock.now() - timedelta(days=settings.push_log_keep_days)
    async with db.write() as tx:
        result = await tx.session.execute(delete(PushDelivery).where(PushDelivery.started_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def due(db: Database) -> list[uuid.UUID]:
    """Active subscriptions behind the ledger head whose next attempt is due."""
    async with db.read() as s:
        head = await ledger_head(s)
        rows = await s.execute(
            select(PushSubscription.id).where(
                PushSubscription.status == PushStatus.ACTIVE,
                PushSubscription.cursor < head,
                or_(
                    PushSubscription.next_attempt_at.is_(None),
                    PushSubscription.next_attempt_at <= clock.now(),
                ),
            )
        )
        return list(rows.scalars())


async def kick(db: Database) -> int:
    """Make sure a delivery job runs soon for every subscription that is due (publisher and cron)."""
    ids = await due(db)
    for subscription_id in ids:
        await asyncio.to_thread(_soon, subscription_id)
    return len(ids)


def _soon(subscription_id: uuid.UUID) -> None:
    outbox.kick(outbox.PUSH, subscription_id)


def _schedule(subscription_id: uuid.UUID, at: datetime) -> None:
    outbox.kick(outbox.PUSH_RETRY, subscription_id, at)
