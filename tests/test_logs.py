"""Log lines as operators read them: one JSON object a line with MALL_LOG_FORMAT=json, and the id of
the request that caused them, in the web process and in the jobs the request enqueued."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from mall.core import logs
from mall.core.settings import Settings
from tests.factories import World
from tests.mall.test_supermarket_flow import checkout


class Kept(logging.Handler):
    """The records the root logger passes on, after the request-id filter, as the real handler sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(logs.RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_request_ids_from_outside_are_plain_tokens_or_replaced() -> None:
    assert logs.accept_request_id("edge-7f3a.01_b") == "edge-7f3a.01_b"
    for bad in (None, "", "a\nb", "x" * 65, '{"level":"ERROR"}', "名字"):
        fresh = logs.accept_request_id(bad)
        assert fresh != bad and len(fresh) == 32 and fresh.isalnum()


def test_json_lines_carry_level_logger_message_request_id_and_traceback() -> None:
    handler = Kept()
    log = logging.getLogger("mall.test")
    log.addHandler(handler)
    token = logs.REQUEST_ID.set("req-42")
    try:
        log.warning("预算 %s 不足", "A-1")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        logs.REQUEST_ID.reset(token)
        log.removeHandler(handler)
    first, second = (json.loads(logs.JsonFormatter().format(r)) for r in handler.records)
    assert first["level"] == "WARNING" and first["logger"] == "mall.test"
    assert first["message"] == "预算 A-1 不足" and first["request_id"] == "req-42"
    assert second["request_id"] == "req-42" and "ValueError: boom" in second["exc"]
    assert first["ts"].endswith("+00:00")


async def test_a_request_id_follows_the_request_into_its_jobs(
    client: Any, world: World, settings: Settings
) -> None:
    r = await checkout(client, world, [("laptop", "1")])
    assert r.status_code == 201, r.text
    assert len(r.headers["x-request-id"]) == 32  # none was sent: the mall made one
    order_id = r.json()["orders"][0]["id"]
    r = await client.post(
        f"/api/orders/{order_id}/confirm", headers={**world.h("supplier_x"), "X-Request-ID": "confirm-0001"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "confirm-0001"
    refused = await client.get("/api/orders", headers={**world.h("buyer_a"), "X-Request-ID": "bad\tid"})
    assert refused.headers["x-request-id"] != "bad\tid"

    conn = Redis.from_url(settings.resolved_redis_url)
    try:
        queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
        [publish] = [j for j in queue.jobs if j.func_name == "workers.jobs.publish"]
        assert publish.meta["request_id"] == "confirm-0001"
        # The job, performed as RQ's work horse performs it, logs under the confirmation's id.
        handler = Kept()
        logging.getLogger().addHandler(handler)
        try:  # in a thread of its own: the job runs its own event loop
            assert await asyncio.to_thread(publish.perform) == 1
        finally:
            logging.getLogger().removeHandler(handler)
    finally:
        conn.close()
    published = [r for r in handler.records if r.name == "mall.jobs" and "published" in r.getMessage()]
    assert published and published[0].request_id == "confirm-0001"
