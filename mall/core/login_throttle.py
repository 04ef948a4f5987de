"""Throttling password guesses, without letting anyone lock an account for its owner.

Two measures, both per client address (`netaddr.client_ip`: X-Forwarded-For only from a trusted
proxy), and neither applied to `rate_limit_exempt` networks:

- Failed password checks, kept in the database (`login_throttles`): per (account, address) the
  first three failures are free, then each further attempt from that address on that account waits
  2, 4, 8 … seconds (at most 15 minutes) and is refused with 429 and `Retry-After` without the
  password being checked; per address, 30 failures within 15 minutes across all accounts (password
  spraying) make that address wait 15 minutes. The right password from another address is never
  refused because of failures elsewhere. The security administrator lists and clears them.
- A request rate on the two login endpoints (Litestar's rate-limit middleware, counted in Redis so
  that every web process shares the window), which bounds how fast one address can make the server
  hash passwords at all.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar, Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.types import Receive, Scope, Send
from redis.exceptions import RedisError
from sqlalchemy import delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, netaddr
from mall.core.db import Database
from mall.core.errors import NotFound, TooManyAttempts
from mall.core.models import LoginThrottle
from mall.core.settings import Settings

log = logging.getLogger("mall.login_throttle")

FREE_FAILURES = 3  # per (account, address) before waits begin
MAX_WAIT = timedelta(minutes=15)
ADDRESS_FAILURES = 30  # per address, across accounts, within ADDRESS_WINDOW
ADDRESS_WINDOW = timedelta(minutes=15)  # also how long a sprayed-from address then waits
MEMORY = timedelta(hours=24)  # failures older than this (and no wait in force) are forgotten
REQUESTS_PER_MINUTE = 60  # login requests per address, both login endpoints together
_LOCK_SPACE = 0x10617  # the first key of the PostgreSQL advisory locks taken here

ACCOUNT, ADDRESS = "account", "address"


@dataclass(frozen=True)
class Wait:
    scope: str  # account | address
    seconds: int


class LoginThrottled(TooManyAttempts):
    """429 with Retry-After: this address must wait before trying (this account) again."""

    def __init__(self, wait: Wait) -> None:
        where = "此网络地址" if wait.scope == ADDRESS else ""
        super().__init__(
            f"{where}登录失败次数过多，请 {_human(wait.seconds)}后再试",
            code="too_many_attempts",
            retry_after=wait.seconds,
            scope=wait.scope,
        )
        self.headers = {"Retry-After": str(wait.seconds)}


def _human(seconds: int) -> str:
    return f"{seconds} 秒" if seconds < 60 else f"{math.ceil(seconds / 60)} 分钟"


def account_wait(failures: int) -> timedelta:
    """How long the next attempt on an (account, address) waits after this many failures."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    exponent = min(failures - FREE_FAILURES + 1, 20)
    return min(timedelta(seconds=2**exponent), MAX_WAIT)


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    if moment is None or moment <= now:
        return 0
    return math.ceil((moment - now).total_seconds())


def retry_after(row: LoginThrottle, now: datetime) -> int:
    return _seconds_until(row.blocked_until, now)


def _postgres(s: AsyncSession) -> bool:
    return s.get_bind().dialect.name == "postgresql"


async def _rows(s: AsyncSession, username: str, ip: str) -> tuple[LoginThrottle | None, LoginThrottle | None]:
    """The (account, address) row and the address row, locked for this transaction."""
    stmt = select(LoginThrottle).where(
        LoginThrottle.ip == ip,
        or_(
            (LoginThrottle.kind == ACCOUNT) & (LoginThrottle.username == username),
            (LoginThrottle.kind == ADDRESS) & (LoginThrottle.username == ""),
        ),
    )
    pair = addr = None
    for row in (await s.execute(stmt.with_for_update())).scalars():
        if row.kind == ACCOUNT:
            pair = row
        else:
            addr = row
    return pair, addr


async def serialize(s: AsyncSession, username: str, ip: str) -> None:
    """Attempts from one address, and on one (account, address), run one at a time, so that parallel
    guesses cannot all be checked before any failure is counted. SQLite has one writer at a time
    anyway; PostgreSQL takes transaction-scoped advisory locks (the rows may not exist yet)."""
    if not _postgres(s):
        return
    for key in (f"{ADDRESS}:{ip}", f"{ACCOUNT}:{username}:{ip}"):  # always in this order
        await s.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"), {"space": _LOCK_SPACE, "key": key}
        )


async def wait_for(s: AsyncSession, username: str, ip: str, now: datetime) -> Wait | None:
    """The wait in force for an attempt on `username` from `ip`, if any."""
    pair, addr = await _rows(s, username, ip)
    waits = [
        Wait(scope, seconds)
        for scope, row in ((ADDRESS, addr), (ACCOUNT, pair))
        if row is not None and (seconds := _seconds_until(row.blocked_until, now)) > 0
    ]
    return max(waits, key=lambda w: w.seconds) if waits else None


async def record_failure(s: AsyncSession, username: str, ip: str, now: datetime) -> None:
    pair, addr = await _rows(s, username, ip)
    if pair is None or pair.last_failure_at < now - MEMORY:
        if pair is None:
            pair = LoginThrottle(id=uuid.uuid4(), kind=ACCOUNT, username=username, ip=ip)
            s.add(pair)
        pair.failures, pair.first_failure_at = 0, now
    pair.failures += 1
    pair.last_failure_at = now
    wait = account_wait(pair.failures)
    pair.blocked_until = now + wait if wait else None

    if addr is None or now - addr.first_failure_at >= ADDRESS_WINDOW:
        if addr is None:
            addr = LoginThrottle(id=uuid.uuid4(), kind=ADDRESS, username="", ip=ip)
            s.add(addr)
        addr.failures, addr.first_failure_at, addr.blocked_until = 0, now, None
    addr.failures += 1
    addr.last_failure_at = now
    if addr.failures >= ADDRESS_FAILURES and addr.blocked_until is None:
        addr.blocked_until = now + ADDRESS_WINDOW
    await _prune(s, now)


async def record_success(s: AsyncSession, username: str, ip: str) -> None:
    """The owner got in from this address: its failures on this account are forgotten. The address's
    own count stays, or an attacker could reset it by logging in to an account of their own."""
    pair, _ = await _rows(s, username, ip)
    if pair is not None:
        await s.delete(pair)


async def _prune(s: AsyncSession, now: datetime) -> None:
    """Forget old failures. Rows another transaction holds are skipped (they are being used)."""
    stale = (
        select(LoginThrottle.id)
        .where(
            LoginThrottle.last_failure_at < now - MEMORY,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now),
        )
        .limit(100)
    )
    if _postgres(s):
        stale = stale.with_for_update(skip_locked=True)
    await s.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.id.in_(stale.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )


async def in_force(s: AsyncSession, now: datetime) -> list[LoginThrottle]:
    """What the security administrator sees: addresses waiting now, and accounts past their free failures from an address."""
    rows = await s.execute(
        select(LoginThrottle)
        .where(
            LoginThrottle.last_failure_at > now - MEMORY,
            or_(
                LoginThrottle.blocked_until > now,
                (LoginThrottle.kind == ACCOUNT) & (LoginThrottle.failures >= FREE_FAILURES),
            ),
        )
        .order_by(LoginThrottle.last_failure_at.desc(), LoginThrottle.id)
        .limit(500)
    )
    return list(rows.scalars())


async def clear(db: Database, who: audit.Who, throttle_id: uuid.UUID, ip: str | None = None) -> LoginThrottle:
    """The security administrator lifts a throttle: its failures are forgotten. Audited."""
    async with db.write() as tx:
        s = tx.session
        row = (
            await s.execute(select(LoginThrottle).where(LoginThrottle.id == throttle_id).with_for_update())
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("该登录限制不存在或已解除", code="login_throttle_not_found")
        await s.delete(row)
        audit.record(
            tx,
            who,
            "login_throttle_cleared",
            target_kind="login_throttle",
            target=f"{row.username}@{row.ip}" if row.kind == ACCOUNT else row.ip,
            detail=f"失败 {row.failures} 次",
            ip=ip,
            before={
                "kind": row.kind,
                "username": row.username,
                "ip": row.ip,
                "failures": row.failures,
                "blocked_until": row.blocked_until,
            },
            after=None,
        )
    return row


# ------------------------------------------------------------------ the request rate (Redis)


def client_of(request: Request[Any, Any, Any]) -> str:
    settings: Settings = request.app.state.settings
    return netaddr.client_ip(request.scope, settings.trusted_proxies)


def is_exempt(request: Request[Any, Any, Any]) -> bool:
    settings: Settings = request.app.state.settings
    return netaddr.exempt(client_of(request), settings.rate_limit_exempt)


def _not_exempt(request: Request[Any, Any, Any]) -> bool:
    return not is_exempt(request)


def request_count_namespace(settings: Settings) -> str:
    return f"mall:{settings.queue_name}:login-rate"


def forget_request_counts(settings: Settings) -> None:
    """Empties every request-rate window (the test suite starts each test with fresh ones)."""
    from redis import Redis

    conn = Redis.from_url(settings.resolved_redis_url)
    try:
        keys = list(conn.scan_iter(f"{request_count_namespace(settings)}:*"))
        if keys:
            conn.delete(*keys)
    finally:
        conn.close()


class _FailOpenStore(Store):
    """Redis unreachable: the request rate is not counted, and logins go on (the password throttle in
    the database still holds). Logging in must not depend on Redis (see docs/decisions.md)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await self.inner.set(key, value, expires_in)
        except (RedisError, OSError) as exc:
            log.warning("login request rate not counted: %s", exc)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            return await self.inner.get(key, renew_for)
        except (RedisError, OSError) as exc:
            log.warning("login request rate not read: %s", exc)
            return None

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def delete_all(self) -> None:
        await self.inner.delete_all()

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def expires_in(self, key: str) -> int | None:
        return await self.inner.expires_in(key)


class _RateLimitMiddleware(RateLimitMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            # Litestar names the reset in its RateLimit-* headers; clients and proxies know Retry-After.
            reset = (exc.headers or {}).get(self.config.rate_limit_reset_header_key)
            if reset is not None:
                exc.headers = {**(exc.headers or {}), "Retry-After": str(max(1, int(reset)))}
            raise


class _SharedRateLimitConfig(RateLimitConfig):
    def get_store_from_app(self, app: Litestar) -> Store:
        store: Store | None = app.state.get("login_rate_store")
        if store is None:
            store = _FailOpenStore(
                RedisStore(app.state.room_redis, namespace=request_count_namespace(app.state.settings))
            )
            app.state.login_rate_store = store
        return store


LOGIN_REQUEST_LIMIT = _SharedRateLimitConfig(
    rate_limit=("minute", REQUESTS_PER_MINUTE),
    identifier_for_request=client_of,
    check_throttle_handler=_not_exempt,
    middleware_class=_RateLimitMiddleware,
)
