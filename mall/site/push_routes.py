"""Push subscription API: centers, regulators and the platform register receivers of the ledger."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from mall.core.auth import Principal
from mall.core.clock import rfc3339
from mall.core.db import Database, retried
from mall.core.fields import Choice, RequiredShortText, Url
from mall.core.guards import allow
from mall.core.settings import Settings
from mall.ledger import push
from mall.ledger.models import PushDelivery, PushSubscription
from mall.web.deps import DB, UserCall
from mall.web.helpers import PageNo

MANAGERS = allow(*push.MANAGERS)
TAGS = ["推送订阅"]


class SubscriptionIn(msgspec.Struct, forbid_unknown_fields=True):
    name: RequiredShortText
    url: Url  # http(s); refused when its host resolves to an internal address (unless listed)
    mode: Choice | None = None  # only records of this trading mode; None: all
    from_seq: int | None = None  # deliver records after this seq; default: the current head


async def register(
    db: Database, settings: Settings, me: Principal, data: SubscriptionIn
) -> tuple[PushSubscription, str]:
    """A subscription as the API's body (or the page's form) describes it, with its secret."""
    return await push.create(
        db, settings, me, name=data.name, url=data.url, mode=data.mode, from_seq=data.from_seq
    )


class SubscriptionOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    url: str
    mode: str | None
    status: str  # active | paused
    state: str  # ok | retrying | paused
    cursor: int
    ledger_head: int
    backlog: int
    delivered: int
    consecutive_failures: int
    next_attempt_at: str | None
    last_error_kind: str  # "" or one of timeout, http_status, connect_refused, … (see the README)
    last_status_code: int | None
    last_error: str  # the kind in Chinese, for people
    last_success_at: str | None
    created_at: str
    secret_hint: str
    secret: str | None = None  # only in the answers to creation and rotation


class DeliveryOut(msgspec.Struct):
    seq: int
    record_id: uuid.UUID
    attempt: int
    started_at: str
    status_code: int | None
    ok: bool
    error_kind: str  # "" or one of timeout, http_status, connect_refused, … (see the README)
    error: str  # the kind in Chinese, for people
    duration_ms: int


class DeliveryPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[DeliveryOut]


def _time(at: Any) -> str | None:
    return rfc3339(at) if at is not None else None


@retried  # a read: safe to run again (the write before it has committed)
async def _out(db: DB, sub: PushSubscription, secret: str | None = None) -> SubscriptionOut:
    async with db.read() as s:
        head = await push.ledger_head(s)
        backlog = await push.backlog(s, sub)
    return SubscriptionOut(
        id=sub.id,
        name=sub.name,
        url=sub.url,
        mode=sub.mode,
        status=sub.status,
        state=push.state_of(sub),
        cursor=sub.cursor,
        ledger_head=head,
        backlog=backlog,
        delivered=sub.delivered,
        consecutive_failures=sub.consecutive_failures,
        next_attempt_at=_time(sub.next_attempt_at),
        last_error_kind=sub.last_error_kind,
        last_status_code=sub.last_status_code,
        last_error=push.error_label(sub.last_error_kind, sub.last_status_code),
        last_success_at=_time(sub.last_success_at),
        created_at=rfc3339(sub.created_at),
        secret_hint=push.secret_hint(sub),
        secret=secret,
    )


def _delivery_out(d: PushDelivery) -> DeliveryOut:
    return DeliveryOut(
        seq=d.seq,
        record_id=d.record_id,
        attempt=d.attempt,
        started_at=rfc3339(d.started_at),
        status_code=d.status_code,
        ok=d.ok,
        error_kind=d.error_kind,
        error=push.error_label(d.error_kind, d.status_code),
        duration_ms=d.duration_ms,
    )


class SubscriptionApi(Controller):
    path = "/api/subscriptions"
    opt = MANAGERS
    tags = TAGS

    @post(
        "/",
        status_code=201,
        summary="登记推送订阅：新记录按序号顺序 POST 到接收地址（密钥仅在此返回一次）",
    )
    async def create_subscription(self, call: UserCall, data: JSONBody[SubscriptionIn]) -> SubscriptionOut:
        sub, secret = await register(call.db, call.settings, call.me, data)
        return await _out(call.db, sub, secret)

    @get("/", summary="本单位的推送订阅（平台管理员可见全部）")
    async def list_subscriptions(self, call: UserCall) -> list[SubscriptionOut]:
        async with call.db.read() as s:
            subs = await push.list_of(s, call.me)
        return [await _out(call.db, sub) for sub in subs]

    @get("/{subscription_id:uuid}")
    async def get_subscription(self, call: UserCall, subscription_id: FromPath[uuid.UUID]) -> SubscriptionOut:
        async with call.db.read() as s:
            sub = await push.get(s, call.me, subscription_id)
        return await _out(call.db, sub)

    @get("/{subscription_id:uuid}/deliveries", summary="投递记录（最新在前，分页）")
    async def list_deliveries(
        self,
        call: UserCall,
        subscription_id: FromPath[uuid.UUID],
        page: PageNo = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> DeliveryPage:
        async with call.db.read() as s:
            sub = await push.get(s, call.me, subscription_id)
            total, rows = await push.deliveries(s, sub, page, per_page)
        return DeliveryPage(total, page, per_page, [_delivery_out(d) for d in rows])

    @post("/{subscription_id:uuid}/pause", status_code=200)
    async def pause_subscription(
        self, call: UserCall, subscription_id: FromPath[uuid.UUID]
    ) -> SubscriptionOut:
        return await _out(call.db, await push.pause(call.db, call.me, subscription_id))

    @post("/{subscription_id:uuid}/resume", status_code=200, summary="恢复推送（也用于立即重试）")
    async def resume_subscription(
        self, call: UserCall, subscription_id: FromPath[uuid.UUID]
    ) -> SubscriptionOut:
        return await _out(call.db, await push.resume(call.db, call.me, subscription_id))

    @post(
        "/{subscription_id:uuid}/rotate-secret",
        status_code=200,
        summary="更换签名密钥（新密钥仅在此返回一次，立即生效）",
    )
    async def rotate_subscription_secret(
        self, call: UserCall, subscription_id: FromPath[uuid.UUID]
    ) -> SubscriptionOut:
        sub, secret = await push.rotate_secret(call.db, call.me, subscription_id)
        return await _out(call.db, sub, secret)

    @delete("/{subscription_id:uuid}", status_code=204)
    async def delete_subscription(self, call: UserCall, subscription_id: FromPath[uuid.UUID]) -> None:
        await push.remove(call.db, call.me, subscription_id)


ROUTES = [SubscriptionApi]
