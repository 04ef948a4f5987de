"""Push receivers may not be internal addresses: loopback, private, link-local, CGNAT, cloud metadata,
multicast, reserved, and the IPv6 and numeric spellings of those, refused when the subscription is
registered (after resolving the host) and again when each delivery connects (DNS rebinding), unless
the host is listed in `push_allowed_hosts` (government intranets).

Receivers are real HTTP servers on 127.0.0.1 started here. Only name resolution of the rebinding
test is replaced: a DNS server that changes its answer cannot run here without changing the
machine's resolver, so that test swaps the mall's one resolving function for a table it controls;
the connection itself is real and goes wherever that answer points.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from mall.core.settings import Settings
from mall.ledger import push
from mall.ledger.models import PushSubscription
from tests.conftest import app_for
from tests.factories import World, movable_clock
from tests.mall.test_push import Receiver, publish
from tests.mall.test_supermarket_flow import assert_problem

# A public address literal: registering it resolves nothing over the network, and no test here
# delivers to it.
PUBLIC = "93.184.215.14"

REFUSED = [
    "http://127.0.0.1:8080/hook",
    "http://127.8.9.10/",
    "http://localhost/hook",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.10/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "https://[fe80::1%25eth0]/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://198.51.100.7/",
    "http://203.0.113.9/",
    "http://[2001:db8::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::1]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0/",
]


@contextlib.asynccontextmanager
async def client_with(settings: Settings, **changes: Any) -> AsyncIterator[Any]:
    """A test client of an app built with these settings."""
    from litestar.testing import AsyncTestClient

    application = app_for(replace(settings, **changes))
    try:
        async with AsyncTestClient(app=application) as c:
            yield c
    finally:
        await application.state.db.dispose()


async def subscriptions(world: World) -> int:
    async with world.db.read() as s:
        return await s.scalar(select(func.count()).select_from(PushSubscription)) or 0


def assert_url_problem(r: Any, code: str) -> None:
    assert_problem(r, 400, code)
    assert r.json()["field"] == "url"


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_addresses_are_refused_at_registration(client: Any, world: World, url: str) -> None:
    r = await client.post("/api/subscriptions", json={"name": "接收", "url": url}, headers=world.h("center"))
    assert_url_problem(r, "push_url_forbidden")
    assert await subscriptions(world) == 0


@pytest.mark.parametrize(
    ("url", "code"),
    [
        (f"http://user:pass@{PUBLIC}/hook", "invalid_url"),
        (f"http://token@{PUBLIC}/hook", "invalid_url"),
        (f"http://{PUBLIC}\\@127.0.0.1/hook", "invalid_url"),
        ("http://no-such-host.invalid/hook", "push_host_unresolvable"),
    ],
)
async def test_credentials_in_the_url_and_names_that_do_not_resolve_are_refused(
    client: Any, world: World, url: str, code: str
) -> None:
    r = await client.post("/api/subscriptions", json={"name": "接收", "url": url}, headers=world.h("center"))
    assert_url_problem(r, code)
    assert await subscriptions(world) == 0


async def test_listed_hosts_and_networks_are_allowed_and_nothing_else(
    world: World, settings: Settings
) -> None:
    allowed = "localhost, 10.20.0.0/16, 192.168.7.8, fd00:1::/32"
    async with client_with(settings, push_allowed_hosts=allowed) as c:

        async def register(url: str) -> Any:
            return await c.post(
                "/api/subscriptions", json={"name": "政务内网", "url": url}, headers=world.h("center")
            )

        for url in (
            "http://localhost:9/hook",  # a listed name, whatever it resolves to
            "http://10.20.3.4/hook",
            "http://192.168.7.8:8443/hook",
            "http://[fd00:1::5]/hook",
            "http://[::ffff:10.20.0.9]/hook",
            f"https://{PUBLIC}/hook",  # public addresses need no listing
        ):
            r = await register(url)
            assert r.status_code == 201, (url, r.text)
        for url in (
            "http://127.0.0.1:9/hook",  # the address a listed name resolves to is not itself listed
            "http://10.21.0.1/hook",
            "http://192.168.7.9/hook",
            "http://[fd00:2::5]/hook",
            "http://169.254.169.254/",
        ):
            assert_url_problem(await register(url), "push_url_forbidden")
    assert await subscriptions(world) == 6


async def test_the_page_form_refuses_an_internal_address_and_keeps_the_form(
    client: Any, world: World
) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok, post_form

    await login_ok(client, "center")
    form = {"name": "元数据", "url": "http://169.254.169.254/latest/meta-data/", "mode": "", "start": "new"}
    r = await post_form(client, "/push", form)
    assert r.status_code == 303 and r.headers["location"] == "/push"
    text = assert_page(await client.get("/push", headers=HTML))
    assert "内网" in text and "169.254.169.254/latest/meta-data/" in text  # the message, and the form kept
    assert await subscriptions(world) == 0


async def test_each_delivery_checks_the_address_again(
    world: World, settings: Settings, frozen_clock: Any
) -> None:
    """A receiver registered while its host was listed is refused once the listing is withdrawn:
    nothing reaches it, the attempt is logged as `address_forbidden` and retried with backoff."""
    with Receiver() as receiver:
        local = replace(settings, push_allowed_hosts="127.0.0.1")
        async with client_with(local) as c:
            r = await c.post(
                "/api/subscriptions", json={"name": "内网", "url": receiver.url}, headers=world.h("center")
            )
            assert r.status_code == 201, r.text
            receiver.secret = r.json()["secret"]
        sub_id = uuid.UUID(r.json()["id"])
        await publish(world, ["supermarket"] * 2)

        run = await push.deliver(world.db, settings, sub_id)
        assert run.failed and run.delivered == 0 and run.retry_at is not None
        assert receiver.attempts == 0
        async with client_with(settings) as c:
            body = (await c.get(f"/api/subscriptions/{sub_id}", headers=world.h("center"))).json()
            assert body["state"] == "retrying" and body["cursor"] == 0
            assert body["last_error_kind"] == "address_forbidden" and body["last_status_code"] is None
            assert "受限地址" in body["last_error"]
            log = (await c.get(f"/api/subscriptions/{sub_id}/deliveries", headers=world.h("center"))).json()
            [attempt] = log["items"]
            assert (attempt["seq"], attempt["ok"], attempt["status_code"]) == (1, False, None)
            assert attempt["error_kind"] == "address_forbidden"
            from tests.mall.test_pages import HTML, assert_page, login_ok

            await login_ok(c, "center")
            page = assert_page(await c.get(f"/push/{sub_id}", headers=HTML))
            assert "重试中" in page and "受限地址" in page  # the page says why

        frozen_clock(timedelta(minutes=1))
        run = await push.deliver(world.db, local, sub_id)  # listed again: delivered in order
        assert run.delivered == 2 and receiver.accepted == [1, 2] and receiver.problems == []


class HostRecordingReceiver(Receiver):
    """Also keeps the Host header of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.hosts.append(headers.get("Host", ""))
        super().handle(path, headers, body)


async def test_a_name_that_rebinds_to_loopback_after_registration_is_refused_when_connecting(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch, frozen_clock: Any
) -> None:
    answers: dict[str, list[str]] = {"rebind.test": [PUBLIC], "split.test": [PUBLIC, "127.0.0.1"]}
    asked: list[str] = []

    async def resolve(host: str, port: int, within_seconds: float | None = None) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr("mall.ledger.push_addresses.resolve", resolve)
    with HostRecordingReceiver() as receiver:
        url = f"http://rebind.test:{receiver.port}/hook"
        async with client_with(settings) as c:
            r = await c.post(
                "/api/subscriptions", json={"name": "换绑", "url": url}, headers=world.h("center")
            )
            assert r.status_code == 201, r.text  # a public answer at registration
            receiver.secret = r.json()["secret"]
            # One refused address among the answers is enough to refuse.
            split = {"name": "混合", "url": f"http://split.test:{receiver.port}/hook"}
            assert_url_problem(
                await c.post("/api/subscriptions", json=split, headers=world.h("center")),
                "push_url_forbidden",
            )
        sub_id = uuid.UUID(r.json()["id"])
        await publish(world, ["supermarket"])

        answers["rebind.test"] = ["127.0.0.1"]  # the name now points at the mall's own machine
        asked.clear()
        run = await push.deliver(world.db, settings, sub_id)
        assert run.failed and receiver.attempts == 0 and "rebind.test" in asked
        async with world.db.read() as s:
            sub = await s.get(PushSubscription, sub_id)
            assert sub is not None and sub.last_error_kind == "address_forbidden"

        # Listed by name, the same answer is allowed: the connection goes to the address the check
        # saw, while the request still names the host.
        frozen_clock(timedelta(minutes=1))
        run = await push.deliver(world.db, replace(settings, push_allowed_hosts="rebind.test"), sub_id)
        assert run.delivered == 1 and receiver.accepted == [1] and receiver.problems == []
        assert receiver.hosts == [f"rebind.test:{receiver.port}"]


@pytest.fixture
def frozen_clock() -> Any:
    with movable_clock() as advance:
        yield advance
