"""`/metrics` for Prometheus: requests and latency per route, database retries, the outbox, the
publication lag, the job queues, push backlogs, open auction-room connections and job durations.

Only loopback callers that no proxy forwarded, or callers presenting `metrics_token`, are answered:
behind a local reverse proxy every request comes from loopback, so a forwarded request counts as
its real client (as `trusted_proxies` resolves it) and is refused without the token.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from mall.core import clock, metrics, netaddr
from mall.core.errors import Forbidden
from mall.core.guards import allow
from mall.core.models import Outbox, OutboxStatus
from mall.core.settings import Settings
from mall.ledger import push
from mall.ledger.models import DisclosureRecord, PushStatus, PushSubscription
from mall.orders.models import Order
from mall.web.deps import DB, Config
from mall.web.helpers import AnyRequest
from workers import queues

HTTP_REQUESTS = Counter(
    "mall_http_requests_total", "HTTP requests answered, per route", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mall_http_request_duration_seconds",
    "Time to answer an HTTP request, per route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_BACKLOG = Gauge("mall_outbox_backlog", "Outbox rows waiting to be processed")
OUTBOX_OLDEST = Gauge("mall_outbox_oldest_age_seconds", "Age of the oldest waiting outbox row")
PUBLICATION_LAG = Gauge(
    "mall_publication_lag_seconds",
    "How long the oldest confirmed order not yet in the disclosure feed has waited (0: none waits)",
)
LEDGER_HEAD = Gauge("mall_ledger_head_seq", "Sequence number of the newest disclosure record")
QUEUE_DEPTH = Gauge("mall_queue_jobs", "Jobs per queue and state", ["queue", "state"])
PUSH_BACKLOG = Gauge("mall_push_backlog", "Records a push subscription has yet to deliver", ["subscription"])

_FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


class RequestMetrics:
    """ASGI middleware: counts each answered request by its route template (never the raw path, so
    ids do not make new series) and observes its duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method, route, str(status[0])).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def metrics_allowed(scope: Any, headers: Any, settings: Settings) -> bool:
    token = settings.metrics_token
    auth = headers.get("authorization", "")
    if token and hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()):
        return True
    peer = scope.get("client")
    peer_ip = str(peer[0]) if peer else ""
    forwarded = any(key in _FORWARDING_HEADERS for key, _ in scope.get("headers", []))
    if forwarded and not (settings.trusted_proxies and netaddr.within(peer_ip, settings.trusted_proxies)):
        return False  # forwarded by a proxy we do not trust: the real client is unknown
    ip = netaddr.client_ip(scope, settings.trusted_proxies)
    address = netaddr.address(ip)
    return address is not None and address.is_loopback


class JobDurations(Collector):
    """Job durations the workers keep in Redis (mall.core.metrics.record_job), read at scrape time."""

    def __init__(self) -> None:
        self.snapshot: dict[str, dict[str, float]] = {}

    def collect(self) -> Any:
        family = HistogramMetricFamily(
            "mall_job_duration_seconds", "Duration of finished jobs, per job", labels=["job"]
        )
        for job, stats in sorted(self.snapshot.items()):
            buckets = [(b, stats.get(f"le|{b}", 0.0)) for b in metrics.bucket_bounds()]
            family.add_metric([job], buckets, stats.get("sum", 0.0))
        yield family


JOBS = JobDurations()
REGISTRY.register(JOBS)


def _redis_figures(settings: Settings) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    conn = queues.redis_conn(settings)
    q = Queue(settings.queue_name, connection=conn)
    depth = {
        "queued": q.count,
        "started": StartedJobRegistry(queue=q).count,
        "scheduled": ScheduledJobRegistry(queue=q).count,  # type: ignore[no-untyped-call]
        "failed": FailedJobRegistry(queue=q).count,
    }
    return depth, metrics.read_jobs(conn.hgetall(metrics.job_stats_key(settings.queue_name)))


async def _database_figures(db: Any) -> None:
    now = clock.now()
    async with db.read() as s:
        pending, oldest = (
            await s.execute(
                select(func.count(), func.min(Outbox.created_at)).where(Outbox.status == OutboxStatus.PENDING)
            )
        ).one()
        OUTBOX_BACKLOG.set(pending or 0)
        OUTBOX_OLDEST.set((now - oldest).total_seconds() if oldest else 0)
        waiting = await s.scalar(
            select(func.min(Order.confirmed_at)).where(
                Order.confirmed_at.is_not(None), Order.disclosure_id.is_(None)
            )
        )
        PUBLICATION_LAG.set(max(0.0, (now - waiting).total_seconds()) if waiting else 0)
        LEDGER_HEAD.set(await s.scalar(select(func.max(DisclosureRecord.seq))) or 0)
        subs = (
            await s.execute(select(PushSubscription).where(PushSubscription.status != PushStatus.DELETED))
        ).scalars()
        PUSH_BACKLOG.clear()
        for sub in subs:
            PUSH_BACKLOG.labels(str(sub.id)).set(await push.backlog(s, sub))


@get("/metrics", opt=allow("public"), include_in_schema=False)
async def metrics_endpoint(request: AnyRequest, db: DB, settings: Config) -> Response[bytes]:
    if not metrics_allowed(request.scope, request.headers, settings):
        raise Forbidden("指标接口仅对本机或持有指标令牌的调用方开放", code="metrics_forbidden")
    await _database_figures(db)
    try:
        depth, jobs = await asyncio.wait_for(asyncio.to_thread(_redis_figures, settings), 5.0)
        for state, n in depth.items():
            QUEUE_DEPTH.labels(settings.queue_name, state).set(n)
        JOBS.snapshot = jobs
    except Exception:  # Redis down: the queue figures are absent, the rest is still served
        QUEUE_DEPTH.clear()
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics_endpoint]
