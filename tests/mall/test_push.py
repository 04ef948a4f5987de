"""Push subscriptions: every new ledger record POSTed to a real HTTP receiver started here, in order,
signed, retried with backoff while the receiver fails, and nothing lost while it is down.

The receiver is a stdlib ThreadingHTTPServer on 127.0.0.1 that checks the HMAC signature, the
headers and the record's own hash (with the independent verifier of test_disclosure), and records
the seqs it accepted in arrival order. The mall refuses receivers on loopback unless listed, so the
app and the deliverer here list 127.0.0.1 in `push_allowed_hosts` (tests/security/test_13_* check
the refusal). Time is moved with the project's clock, never slept.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest
from sqlalchemy import select

from mall.core import clock
from mall.core.settings import Settings
from mall.ledger import disclosure, push
from mall.ledger.models import PushDelivery, PushSubscription
from tests.conftest import RedisServer, app_for
from tests.factories import World, movable_clock
from tests.mall.test_disclosure import expected_hash, verify_items
from tests.mall.test_publication_faults import worker_env
from tests.mall.test_supermarket_flow import assert_problem

# A public address literal: registering it resolves nothing over the network; nothing is sent to it.
PUBLIC_URL = "https://93.184.215.14/hook"


def loopback_allowed(settings: Settings) -> Settings:
    """The receivers here listen on 127.0.0.1, which the mall refuses unless it is listed."""
    return replace(settings, push_allowed_hosts="127.0.0.1")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = app_for(loopback_allowed(settings))
    yield application
    await application.state.db.dispose()


class Receiver:
    """A real HTTP receiver. `status` is what it answers; `stop()` closes its port. As a context
    manager it is started on entry and stopped on exit."""

    def __init__(self) -> None:
        self.secret = ""
        self.status = 200
        self.slow_once = 0.0  # seconds to wait before answering the next request (after accepting it)
        self.location = ""  # sent as the Location header when set
        self.accepted: list[int] = []  # seqs answered 2xx, in arrival order
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.problems: list[str] = []
        self.port = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.handle(self.path, dict(self.headers.items()), body)
                with receiver._lock:
                    status = receiver.status
                    slow, receiver.slow_once = receiver.slow_once, 0.0
                if slow:
                    time.sleep(slow)  # processed, but answers after the sender gave up
                payload = b"ok" if status < 300 else b"receiver unavailable"
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        # a short poll interval: shutdown() waits up to one interval (the default is half a second)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(10)
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.attempts += 1
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(headers.get("X-Mall-Signature", ""), expected):
                self.problems.append("bad signature")
            record = json.loads(body)
            if headers.get("Content-Type") != "application/json":
                self.problems.append("content type")
            if headers.get("Idempotency-Key") != record["id"]:
                self.problems.append("idempotency key")
            if headers.get("X-Mall-Seq") != str(record["seq"]):
                self.problems.append("seq header")
            if expected_hash(record) != record["hash"]:
                self.problems.append("record hash")
            if path != "/hook":
                self.problems.append(f"path {path}")
            if self.status < 300:
                self.accepted.append(record["seq"])
                self.bodies.append(record)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def frozen() -> Iterator[Any]:
    """Freeze the project's clock now; `frozen(delta)` moves it forward."""
    with movable_clock() as advance:
        yield advance


def payload(i: int, mode: str = "supermarket") -> dict[str, Any]:
    return {
        "kind": "deal",
        "amends": None,
        "mode": mode,
        "order_no": f"TEST-{i:06d}",
        "region_code": "410100",
        "deal_date": "2026-11-29",
        "buyer": {"name": "甲单位", "credit_code": "11410100MB0000001X"},
        "supplier": {"name": "甲供应商有限公司", "credit_code": "91410100MA0000002X", "address": "郑州"},
        "total_amount": f"{100 + i}.00",
        "currency": "CNY",
        "lines": [],
    }


async def publish(world: World, modes: list[str]) -> None:
    """Records through the real path: staged in the outbox, then published into the ledger."""
    async with world.db.write() as tx:
        for i, mode in enumerate(modes):
            disclosure.stage(tx, payload(i, mode))
    assert await disclosure.publish_pending(world.db, limit=500) == len(modes)


async def subscribe(client: Any, world: World, receiver: Receiver, who: str = "center", **extra: Any) -> str:
    r = await client.post(
        "/api/subscriptions", json={"name": "全国平台", "url": receiver.url, **extra}, headers=world.h(who)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["secret"].startswith("whsec_") and body["secret_hint"].endswith(body["secret"][-4:])
    receiver.secret = body["secret"]
    return str(body["id"])


async def deliver(world: World, settings: Settings, sub_id: str, **kw: Any) -> push.DeliveryRun:
    return await push.deliver(world.db, loopback_allowed(settings), uuid.UUID(sub_id), **kw)


async def log_of(world: World, sub_id: str) -> list[PushDelivery]:
    async with world.db.read() as s:
        rows = await s.execute(
            select(PushDelivery)
            .where(PushDelivery.subscription_id == uuid.UUID(sub_id))
            .order_by(PushDelivery.started_at, PushDelivery.seq, PushDelivery.attempt)
        )
        return list(rows.scalars())


async def sub_row(world: World, sub_id: str) -> PushSubscription:
    async with world.db.read() as s:
        row = await s.get(PushSubscription, uuid.UUID(sub_id))
        assert row is not None
        return row


# ---------------------------------------------------------------- delivery


async def test_records_arrive_in_ledger_order_signed_with_the_stored_body(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    await publish(world, ["supermarket"] * 2)  # before the subscription: not sent by default
    sub_id = await subscribe(client, world, receiver)
    await publish(world, ["supermarket"] * 5)

    run = await deliver(world, settings, sub_id, limit=3)
    assert (run.delivered, run.more) == (3, True)
    run = await deliver(world, settings, sub_id)
    assert (run.delivered, run.more, run.failed) == (2, False, False)

    assert receiver.accepted == [3, 4, 5, 6, 7] and receiver.problems == []
    # The body is the stored canonical JSON: the receiver can check the hash chain from it.
    verify_items(receiver.bodies, first_seq=3, prev=receiver.bodies[0]["prev_hash"])
    r = await client.get(f"/api/subscriptions/{sub_id}", headers=world.h("center"))
    body = r.json()
    assert (body["cursor"], body["ledger_head"], body["backlog"], body["state"]) == (7, 7, 0, "ok")
    assert body["secret"] is None and body["delivered"] == 5
    r = await client.get(f"/api/subscriptions/{sub_id}/deliveries", headers=world.h("center"))
    log = r.json()
    assert log["total"] == 5
    assert sorted(d["seq"] for d in log["items"]) == [3, 4, 5, 6, 7]
    assert all(d["ok"] and d["status_code"] == 200 and d["attempt"] == 1 for d in log["items"])

    assert (await deliver(world, settings, sub_id)).delivered == 0  # nothing new: nothing sent
    assert receiver.attempts == 5


async def test_replay_from_zero_sends_the_whole_ledger(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    await publish(world, ["supermarket"] * 4)
    sub_id = await subscribe(client, world, receiver, from_seq=0)
    await deliver(world, settings, sub_id)
    assert receiver.accepted == [1, 2, 3, 4]
    verify_items(receiver.bodies)


async def test_a_failing_receiver_is_retried_with_backoff_then_gets_everything_in_order(
    client: Any, world: World, settings: Settings, receiver: Receiver, frozen: Any
) -> None:
    sub_id = await subscribe(client, world, receiver)
    receiver.status = 500
    await publish(world, ["supermarket"] * 3)

    waits = []
    for attempt in (1, 2, 3):
        run = await deliver(world, settings, sub_id)
        assert run.failed and run.delivered == 0 and run.retry_at is not None
        wait = (run.retry_at - clock.now()).total_seconds()
        cap = settings.push_backoff_base_seconds * 2 ** (attempt - 1)
        assert cap / 2 <= wait <= cap  # exponential, jittered within the upper half
        waits.append(wait)
        row = await sub_row(world, sub_id)
        assert row.consecutive_failures == attempt and row.cursor == 0
        assert push.state_of(row) == "retrying"
        assert (row.last_error_kind, row.last_status_code) == ("http_status", 500)
        # Not due yet: a second run (another job, the cron) sends nothing.
        assert (await deliver(world, settings, sub_id)).waiting
        assert uuid.UUID(sub_id) not in await push.due(world.db)
        frozen(timedelta(seconds=wait + 0.001))
        assert uuid.UUID(sub_id) in await push.due(world.db)  # the cron's safety net picks it up

    receiver.status = 200
    run = await deliver(world, settings, sub_id)
    assert run.delivered == 3 and not run.failed
    assert receiver.accepted == [1, 2, 3] and receiver.problems == []
    log = [(d.seq, d.attempt, d.ok, d.status_code) for d in await log_of(world, sub_id)]
    assert log == [
        (1, 1, False, 500),
        (1, 2, False, 500),
        (1, 3, False, 500),
        (1, 4, True, 200),
        (2, 1, True, 200),
        (3, 1, True, 200),
    ]
    row = await sub_row(world, sub_id)
    assert (row.consecutive_failures, row.next_attempt_at, row.cursor) == (0, None, 3)
    assert (row.last_error_kind, row.last_status_code) == ("", None)


async def test_a_receiver_down_for_an_hour_gets_everything_it_missed_in_order_once(
    client: Any, world: World, settings: Settings, receiver: Receiver, frozen: Any
) -> None:
    sub_id = await subscribe(client, world, receiver)
    await publish(world, ["supermarket"] * 2)
    await deliver(world, settings, sub_id)
    assert receiver.accepted == [1, 2]

    receiver.stop()  # the port is closed: connection refused
    attempts = 0
    for _ in range(12):  # an hour, five minutes at a time, while deals keep being published
        await publish(world, ["supermarket"] * 3)
        frozen(timedelta(minutes=5))
        run = await deliver(world, settings, sub_id)
        if not run.waiting:
            attempts += 1
            assert run.failed and run.delivered == 0 and run.retry_at is not None
            assert (run.retry_at - clock.now()).total_seconds() <= settings.push_backoff_max_seconds
    row = await sub_row(world, sub_id)
    assert row.cursor == 2 and row.consecutive_failures == attempts >= 6
    failures = [d for d in await log_of(world, sub_id) if not d.ok]
    assert len(failures) == attempts and {d.seq for d in failures} == {3}
    assert all(d.status_code is None and d.error_kind == "connect_refused" for d in failures)

    receiver.start()  # back, on the same port
    frozen(timedelta(minutes=10))
    run = await deliver(world, settings, sub_id)
    assert run.delivered == 36 and not run.failed
    assert receiver.accepted == list(range(1, 39))  # in order, no gaps, no duplicates
    assert receiver.problems == []
    verify_items(receiver.bodies)


async def test_a_timeout_is_retried_and_the_receiver_dedupes_by_idempotency_key(
    client: Any, world: World, settings: Settings, receiver: Receiver, frozen: Any
) -> None:
    # At-least-once: the receiver took seq 1 but answered after our timeout, so it gets seq 1 again.
    quick = replace(settings, push_timeout_seconds=0.3)
    sub_id = await subscribe(client, world, receiver)
    await publish(world, ["supermarket"] * 3)
    receiver.slow_once = 4.0
    run = await deliver(world, quick, sub_id)
    assert run.failed and run.delivered == 0
    [attempt] = await log_of(world, sub_id)
    assert (attempt.seq, attempt.ok, attempt.status_code, attempt.error_kind) == (1, False, None, "timeout")
    frozen(timedelta(minutes=1))
    assert (await deliver(world, quick, sub_id)).delivered == 3
    assert receiver.accepted == [1, 1, 2, 3]  # one duplicate, never a reordering or a gap
    keys = [b["id"] for b in receiver.bodies]
    deduped = list(dict.fromkeys(keys))
    assert len(deduped) == 3 and [receiver.bodies[keys.index(k)]["seq"] for k in deduped] == [1, 2, 3]


async def test_a_redirect_is_a_failure_and_is_not_followed(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    with Receiver() as other:
        sub_id = await subscribe(client, world, receiver)
        other.secret = receiver.secret
        receiver.status, receiver.location = 307, other.url
        await publish(world, ["supermarket"])
        run = await deliver(world, settings, sub_id)
        assert run.failed and receiver.attempts == 1 and other.attempts == 0
        [attempt] = await log_of(world, sub_id)
        assert (attempt.status_code, attempt.error_kind) == (307, "http_status")
        assert (
            push.error_label(attempt.error_kind, attempt.status_code) == "接收方返回 HTTP 307（不跟随重定向）"
        )


async def test_racing_deliverers_never_send_out_of_order_or_twice(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    sub_id = await subscribe(client, world, receiver)

    async def publisher() -> None:
        for _ in range(6):
            await publish(world, ["supermarket"] * 5)
            await asyncio.sleep(0)

    async def deliverer() -> None:
        for _ in range(8):
            await deliver(world, settings, sub_id, limit=4)
            await asyncio.sleep(0)

    await asyncio.gather(publisher(), deliverer(), deliverer(), deliverer())
    while (await deliver(world, settings, sub_id)).delivered:
        pass
    assert receiver.accepted == list(range(1, 31)) and receiver.problems == []
    assert receiver.attempts == 30


async def test_mode_filter_sends_only_that_mode_and_passes_over_the_rest(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    sub_id = await subscribe(client, world, receiver, mode="inquiry")
    await publish(world, ["supermarket", "inquiry", "auction", "inquiry", "supermarket", "supermarket"])
    r = await client.get(f"/api/subscriptions/{sub_id}", headers=world.h("center"))
    assert r.json()["backlog"] == 2
    run = await deliver(world, settings, sub_id)
    assert (run.delivered, run.skipped) == (2, 4)
    assert receiver.accepted == [2, 4]
    assert {b["mode"] for b in receiver.bodies} == {"inquiry"}
    row = await sub_row(world, sub_id)
    assert row.cursor == 6  # passed over the trailing records it does not want
    assert uuid.UUID(sub_id) not in await push.due(world.db)


async def test_pause_resume_and_rotate_secret(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    sub_id = await subscribe(client, world, receiver, who="regulator")
    h = world.h("regulator")
    r = await client.post(f"/api/subscriptions/{sub_id}/pause", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "paused"
    await publish(world, ["supermarket"] * 2)
    assert (await deliver(world, settings, sub_id)).delivered == 0 and receiver.attempts == 0
    assert uuid.UUID(sub_id) not in await push.due(world.db)

    old = receiver.secret
    r = await client.post(f"/api/subscriptions/{sub_id}/rotate-secret", headers=h)
    assert r.status_code == 200
    receiver.secret = r.json()["secret"]
    assert receiver.secret != old
    r = await client.post(f"/api/subscriptions/{sub_id}/resume", headers=h)
    assert r.json()["state"] == "ok" and r.json()["backlog"] == 2
    await deliver(world, settings, sub_id)
    assert receiver.accepted == [1, 2] and receiver.problems == []  # signed with the new secret

    r = await client.delete(f"/api/subscriptions/{sub_id}", headers=h)
    assert r.status_code == 204
    assert_problem(await client.get(f"/api/subscriptions/{sub_id}", headers=h), 404, "subscription_not_found")
    await publish(world, ["supermarket"])
    assert (await deliver(world, settings, sub_id)).delivered == 0


# ---------------------------------------------------------------- who may, and what is refused


async def test_only_centers_regulators_and_the_system_administrator_may_subscribe(
    client: Any, world: World
) -> None:
    body = {"name": "接收", "url": PUBLIC_URL}
    for who in ("buyer_a", "supplier_x", "secadmin", "auditor"):
        assert_problem(
            await client.post("/api/subscriptions", json=body, headers=world.h(who)), 403, "forbidden"
        )
        assert_problem(await client.get("/api/subscriptions", headers=world.h(who)), 403, "forbidden")
    assert_problem(await client.post("/api/subscriptions", json=body), 401, "unauthenticated")
    for who in ("center", "regulator", "sysadmin"):
        r = await client.post("/api/subscriptions", json=body, headers=world.h(who))
        assert r.status_code == 201, r.text
    mine = (await client.get("/api/subscriptions", headers=world.h("center"))).json()
    assert len(mine) == 1
    everyone = (await client.get("/api/subscriptions", headers=world.h("sysadmin"))).json()
    assert len(everyone) == 3
    # Another organization's subscription does not exist for the caller.
    theirs = mine[0]["id"]
    for path in ("", "/deliveries"):
        r = await client.get(f"/api/subscriptions/{theirs}{path}", headers=world.h("regulator"))
        assert_problem(r, 404, "subscription_not_found")
    r = await client.post(f"/api/subscriptions/{theirs}/pause", headers=world.h("regulator"))
    assert_problem(r, 404, "subscription_not_found")
    r = await client.get(f"/api/subscriptions/{theirs}", headers=world.h("sysadmin"))
    assert r.status_code == 200 and r.json()["secret"] is None


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"url": "ftp://example.org/hook"}, "invalid_url"),
        ({"url": "file:///etc/passwd"}, "invalid_url"),
        ({"url": "javascript:alert(1)"}, "invalid_url"),
        ({"url": "example.org/hook"}, "invalid_url"),
        ({"url": "http://"}, "invalid_url"),
        ({"url": "http://example.org:99999/"}, "invalid_url"),
        ({"url": "http://exa mple.org/"}, "invalid_url"),
        ({"url": "https://example.org/" + "a" * 500}, "invalid_input"),  # the shared URL type's limit
        ({"name": "  "}, "invalid_name"),
        ({"mode": "lottery"}, "invalid_mode"),
        ({"from_seq": 5}, "invalid_from_seq"),
        ({"from_seq": -1}, "invalid_from_seq"),
    ],
)
async def test_bad_subscriptions_are_400_problems(
    client: Any, world: World, extra: dict[str, Any], code: str
) -> None:
    body = {"name": "接收", "url": PUBLIC_URL, **extra}
    assert_problem(await client.post("/api/subscriptions", json=body, headers=world.h("center")), 400, code)


# ---------------------------------------------------------------- through a real worker


@pytest.mark.slow
async def test_publishing_through_a_real_worker_pushes_to_the_receiver(
    world: World,
    settings: Settings,
    private_redis: RedisServer,
    receiver: Receiver,
) -> None:
    local = loopback_allowed(settings)
    sub, secret = await push.create(world.db, local, world.who["center"], name="全国平台", url=receiver.url)
    receiver.secret = secret
    async with world.db.write() as tx:  # after the commit the publisher job is enqueued
        for i in range(3):
            disclosure.stage(tx, payload(i))
    burst = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mall.cli", "worker", "--burst"],
        env=worker_env(settings, private_redis.url, MALL_PUSH_ALLOWED_HOSTS=local.push_allowed_hosts),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert burst.returncode == 0, burst.stdout.decode()[-2000:]
    # The publisher enqueued the subscription's delivery job; the same burst ran it.
    assert receiver.accepted == [1, 2, 3] and receiver.problems == []
    row = await sub_row(world, str(sub.id))
    assert row.cursor == 3 and row.delivered == 3


# ---------------------------------------------------------------- pages


async def test_pages_list_detail_and_actions_in_chinese(
    client: Any, world: World, settings: Settings, receiver: Receiver
) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok, post_form

    async def page(path: str) -> str:
        return assert_page(await client.get(path, headers=HTML))

    await login_ok(client, "center")
    text = await page("/push")
    assert "还没有推送订阅" in text and "登记接收地址" in text and 'href="/push"' in text
    form = {"name": "省中心接收", "url": "ftp://nope", "mode": "", "start": "new"}
    r = await post_form(client, "/push", form)
    assert r.status_code == 303
    text = await page("/push")
    assert "只能以 http:// 或 https:// 开头" in text and "ftp://nope" in text  # the form is kept
    r = await post_form(client, "/push", {**form, "url": receiver.url})
    assert r.status_code == 303
    detail = r.headers["location"]
    text = await page(detail)
    assert "只显示这一次" in text and "还没有投递记录" in text
    secret = text.split('id="push-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith("whsec_")
    text = await page(detail)
    assert "只显示这一次" not in text and secret not in text  # shown once

    receiver.secret = secret
    receiver.status = 503
    await publish(world, ["supermarket"] * 2)
    sub_id = detail.rsplit("/", 1)[1]
    await deliver(world, settings, sub_id)
    text = await page("/push")
    assert "重试中" in text and "积压 2 条" in text and "0 / 2" in text
    text = await page(detail)
    assert "HTTP 503" in text and "失败" in text and "立即重试" in text

    assert (await post_form(client, f"{detail}/pause", {})).status_code == 303
    text = await page(detail)
    assert "已暂停" in text and "恢复推送" in text
    receiver.status = 200
    assert (await post_form(client, f"{detail}/resume", {})).status_code == 303
    await deliver(world, settings, sub_id)
    text = await page("/push")
    assert "正常" in text and "2 / 2" in text
    assert receiver.accepted == [1, 2]
    await post_form(client, f"{detail}/rotate-secret", {})
    assert "只显示这一次" in await page(detail)
    assert "所属单位" not in await page("/push")  # a center sees its own
    await login_ok(client, "sysadmin")
    text = await page("/push")
    assert (
        "所属单位" in text and "采购中心" in text and "省中心接收" in text
    )  # the system administrator sees whose
    await post_form(client, f"{detail}/delete", {})
    assert "还没有推送订阅" in await page("/push")

    await login_ok(client, "buyer_a")
    r = await client.get("/push", headers=HTML)
    assert r.status_code == 403
    assert 'href="/push"' not in await page("/")
