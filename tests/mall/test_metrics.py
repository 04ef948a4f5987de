"""/metrics: what it exposes, and who it answers (loopback not forwarded by an untrusted proxy, or
the metrics token)."""

from __future__ import annotations

from typing import Any

from mall.core import metrics
from mall.core.settings import Settings
from tests.factories import World
from tests.mall.test_supermarket_flow import assert_problem
from tests.security.login_helpers import client_from, served
from workers import queues

EXPECTED = [
    "mall_http_requests_total",
    "mall_http_request_duration_seconds",
    "mall_db_retries_total",
    "mall_outbox_backlog",
    "mall_outbox_oldest_age_seconds",
    "mall_publication_lag_seconds",
    "mall_ledger_head_seq",
    "mall_queue_jobs",
    "mall_push_backlog",
    "mall_room_connections",
    "mall_job_duration_seconds",
]


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


async def test_loopback_sees_every_family_with_route_templates(world: World, settings: Settings) -> None:
    queues.configure(settings)
    metrics.record_job(queues.redis_conn(settings), settings.queue_name, "publish", 0.2, True)
    async with served(settings) as app, client_from(app, "127.0.0.1") as c:
        assert (await c.get(f"/api/disclosures/{10**6}")).status_code == 404
        r = await c.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
    missing = [name for name in EXPECTED if name not in families(text)]
    assert not missing, missing
    # The route's template, never the raw path: ids make no new series.
    assert 'route="/api/disclosures/{seq}",status="404"' in text
    assert "/api/disclosures/1000000" not in text
    assert 'mall_queue_jobs{queue="' in text and 'state="queued"' in text
    assert 'mall_job_duration_seconds_count{job="publish"}' in text
    assert 'mall_job_duration_seconds_bucket{job="publish",le="0.25"}' in text


async def test_others_are_refused_unless_they_hold_the_token(world: World, settings: Settings) -> None:
    async with (
        served(settings, metrics_token="scrape-token-0123456789") as app,
        client_from(app, "203.0.113.9") as remote,
        client_from(app, "127.0.0.1") as local_proxy,
    ):
        assert_problem(await remote.get("/metrics"), 403, "metrics_forbidden")
        wrong = {"Authorization": "Bearer not-the-token"}
        assert_problem(await remote.get("/metrics", headers=wrong), 403, "metrics_forbidden")
        right = {"Authorization": "Bearer scrape-token-0123456789"}
        assert (await remote.get("/metrics", headers=right)).status_code == 200
        # Behind a local reverse proxy everyone arrives from loopback: a forwarded request is not local.
        forwarded = {"X-Forwarded-For": "198.51.100.7"}
        assert_problem(await local_proxy.get("/metrics", headers=forwarded), 403, "metrics_forbidden")
        assert_problem(
            await local_proxy.get("/metrics", headers={"Forwarded": "for=198.51.100.7"}),
            403,
            "metrics_forbidden",
        )


async def test_a_trusted_proxy_forwards_its_own_host_only(world: World, settings: Settings) -> None:
    async with served(settings, trusted_proxies="127.0.0.1") as app, client_from(app, "127.0.0.1") as proxy:
        assert_problem(
            await proxy.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}), 403, "metrics_forbidden"
        )
        r: Any = await proxy.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
        assert r.status_code == 200
