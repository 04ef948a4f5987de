"""Delivering the ledger to a subscription's receiver: one job per subscription under a Redis lock,
records posted in seq order, the cursor moved by compare-and-set after each 2xx, backoff on failure,
and the delivery log (the status code and one of ERROR_KINDS, never what the receiver answered)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import random
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, outbox
from mall.core.db import Database
from mall.core.settings import Settings
from mall.ledger import push_addresses
from mall.ledger.disclosure import records_after
from mall.ledger.models import DisclosureRecord, LedgerHead, PushDelivery, PushStatus, PushSubscription

log = logging.getLogger("mall.push")

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


def backoff_seconds(settings: Settings, failures: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base * 2^(failures-1), capped, then between half and all of it
    (so receivers coming back do not get every subscriber's retry in the same second)."""
    exp = min(max(failures - 1, 0), 30)
    cap = min(settings.push_backoff_max_seconds, settings.push_backoff_base_seconds * float(2**exp))
    jitter: float = (rng or random).random()
    return cap / 2 + jitter * cap / 2


async def ledger_head(s: AsyncSession) -> int:
    return await s.scalar(select(LedgerHead.last_seq).where(LedgerHead.id == 1)) or 0


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
        await asyncio.to_thread(soon, subscription_id)
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
        columns = (DisclosureRecord.seq, DisclosureRecord.id, DisclosureRecord.mode, DisclosureRecord.body)
        rows = await records_after(db, progress.passed, READ_CHUNK, *columns)
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
        await asyncio.to_thread(soon, subscription_id)
    return len(ids)


def soon(subscription_id: uuid.UUID) -> None:
    """Enqueue the subscription's delivery job now (through the outbox topic the roots register)."""
    outbox.kick(outbox.PUSH, subscription_id)


def _schedule(subscription_id: uuid.UUID, at: datetime) -> None:
    outbox.kick(outbox.PUSH_RETRY, subscription_id, at)
