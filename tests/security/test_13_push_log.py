"""The push delivery log keeps the HTTP status code and one of a fixed set of error kinds, never what
the receiver sent: not its body, not its headers, not the text of an exception built from its answer.
Shown through the API, on the pages and in the database. Rows written before this rule are scrubbed
by the migration.

Every receiver is a real server on 127.0.0.1 started here (listed in `push_allowed_hosts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from mall.core import clock
from mall.core.settings import Settings
from mall.ledger import push
from mall.ledger.models import PushDelivery, PushSubscription
from mall.migrate import alembic_config
from tests.conftest import app_for
from tests.factories import World
from tests.mall.test_push import publish

SECRET = "sk_live_RECEIVER_SECRET_4f9a"


class CannedServer:
    """Answers every connection with the same bytes after reading the request head (or, with
    `answer=None`, reads and never answers)."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            data = b""
            # the whole request head, or the first bytes of a TLS handshake (answered at once)
            while b"\r\n\r\n" not in data and not data.startswith(b"\x16"):
                part = conn.recv(65536)
                if not part:
                    return
                data += part
            if self.answer is not None:
                conn.sendall(self.answer)
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone does not on Linux
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for conn in self._open:
            conn.close()
        self._thread.join(10)


def http_answer(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
def local(settings: Settings) -> Settings:
    return replace(settings, push_allowed_hosts="127.0.0.1")


@pytest.fixture
async def app(local: Settings) -> AsyncIterator[Any]:
    """The app of this module lists 127.0.0.1, where its receivers listen."""
    application = app_for(local)
    yield application
    await application.state.db.dispose()


@pytest.fixture
def canned() -> Iterator[list[CannedServer]]:
    servers: list[CannedServer] = []
    try:
        yield servers
    finally:
        for s in servers:
            s.close()


async def register(client: Any, world: World, url: str) -> uuid.UUID:
    r = await client.post("/api/subscriptions", json={"name": "接收", "url": url}, headers=world.h("center"))
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


async def everything_stored(world: World) -> str:
    """Every column of every push row, as text."""
    async with world.db.read() as s:
        rows = []
        for table in ("push_subscriptions", "push_deliveries"):
            rows += [tuple(r) for r in (await s.execute(sa.text(f"SELECT * FROM {table}"))).all()]  # noqa: S608
    return repr(rows)


async def everything_shown(client: Any, world: World, sub_id: uuid.UUID) -> str:
    """What the subscriber can read: the API and both pages."""
    from tests.mall.test_pages import HTML, assert_page, login_ok

    h = world.h("center")
    parts = [
        (await client.get("/api/subscriptions", headers=h)).text,
        (await client.get(f"/api/subscriptions/{sub_id}", headers=h)).text,
        (await client.get(f"/api/subscriptions/{sub_id}/deliveries", headers=h)).text,
    ]
    await login_ok(client, "center")
    parts.append(assert_page(await client.get("/push", headers=HTML)))
    parts.append(assert_page(await client.get(f"/push/{sub_id}", headers=HTML)))
    return "\n".join(parts)


async def test_a_failing_receivers_answer_is_never_echoed(
    client: Any, world: World, local: Settings, canned: list[CannedServer]
) -> None:
    server = CannedServer(
        http_answer(
            "500 Internal Server Error",
            f"Traceback: db password={SECRET} at 10.0.0.5".encode(),
            f"X-Debug: {SECRET}",
            "Content-Type: text/plain",
        )
    )
    canned.append(server)
    sub_id = await register(client, world, f"http://127.0.0.1:{server.port}/hook")
    await publish(world, ["supermarket"] * 2)
    run = await push.deliver(world.db, local, sub_id)
    assert run.failed and server.connections == 1

    shown = await everything_shown(client, world, sub_id)
    assert SECRET not in shown and SECRET not in await everything_stored(world)
    assert "10.0.0.5" not in shown
    # What is kept: the status code and the kind, in Chinese on the page and as codes in the API.
    assert "接收方返回 HTTP 500" in shown
    body = (await client.get(f"/api/subscriptions/{sub_id}", headers=world.h("center"))).json()
    assert (body["last_error_kind"], body["last_status_code"]) == ("http_status", 500)
    assert body["last_error"] == "接收方返回 HTTP 500"
    [attempt] = (
        await client.get(f"/api/subscriptions/{sub_id}/deliveries", headers=world.h("center"))
    ).json()["items"]
    assert (attempt["status_code"], attempt["error_kind"], attempt["error"]) == (
        500,
        "http_status",
        "接收方返回 HTTP 500",
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("kind", "scheme", "answer"),
    [
        # An answer that is not HTTP: the parser's complaint quotes it, and must not be kept.
        ("protocol_error", "http", f"{SECRET} is not a status line\r\n\r\n".encode()),
        # A plain-HTTP server behind an https URL: the TLS handshake fails on its answer.
        ("tls_error", "https", http_answer("400 Bad Request", SECRET.encode())),
        # Accepted, never answered.
        ("timeout", "http", None),
        # A redirect is a failure and is not followed; where it points is the receiver's text.
        ("http_status", "http", http_answer("302 Found", b"", f"Location: http://10.0.0.5/{SECRET}")),
        ("connect_refused", "http", b""),
        ("dns_failed", "http", b""),
    ],
)
async def test_every_failure_is_one_fixed_kind_with_a_fixed_message(
    client: Any,
    world: World,
    local: Settings,
    canned: list[CannedServer],
    kind: str,
    scheme: str,
    answer: bytes | None,
) -> None:
    if answer == b"":  # nothing listens
        url = f"http://127.0.0.1:{closed_port()}/hook"
    else:
        server = CannedServer(answer)
        canned.append(server)
        url = f"{scheme}://127.0.0.1:{server.port}/hook"
    sub_id = await register(client, world, url)
    if kind == "dns_failed":  # a name that stopped resolving after registration
        async with world.db.write() as tx:
            await tx.session.execute(
                sa.update(PushSubscription)
                .where(PushSubscription.id == sub_id)
                .values(url="http://gone.invalid/hook")
            )
    await publish(world, ["supermarket"])
    run = await push.deliver(world.db, replace(local, push_timeout_seconds=0.3), sub_id)
    assert run.failed and run.delivered == 0

    h = world.h("center")
    [attempt] = (await client.get(f"/api/subscriptions/{sub_id}/deliveries", headers=h)).json()["items"]
    body = (await client.get(f"/api/subscriptions/{sub_id}", headers=h)).json()
    assert attempt["error_kind"] == body["last_error_kind"] == kind
    expected_code = 302 if kind == "http_status" else None
    assert attempt["status_code"] == body["last_status_code"] == expected_code
    # The message is the kind's own, the same for every receiver that fails this way.
    assert attempt["error"] == body["last_error"] == push.error_label(kind, expected_code)
    shown = await everything_shown(client, world, sub_id)
    assert SECRET not in shown and SECRET not in await everything_stored(world)
    assert "Errno" not in shown and "Error" not in attempt["error"]


async def test_the_migration_scrubs_what_older_versions_kept(world: World, settings: Settings) -> None:
    """Rows written before the rule kept the receiver's answer in `error` and `last_error`: after
    the migration only the kind is left."""
    cfg = alembic_config(settings.resolved_database_url, settings.resolved_data_keys())
    sub_id, now = uuid.uuid4(), clock.now()
    subs = sa.table(
        "push_subscriptions",
        *(
            sa.column(c, t)
            for c, t in [
                ("id", sa.Uuid()),
                ("org_id", sa.Uuid()),
                ("created_by", sa.Uuid()),
                ("name", sa.String()),
                ("url", sa.String()),
                ("secret", sa.String()),
                ("status", sa.String()),
                ("cursor", sa.BigInteger()),
                ("delivered", sa.BigInteger()),
                ("consecutive_failures", sa.Integer()),
                ("last_error", sa.Text()),
                ("created_at", PushSubscription.__table__.c.created_at.type),
            ]
        ),
    )
    deliveries = sa.table(
        "push_deliveries",
        *(
            sa.column(c, t)
            for c, t in [
                ("id", sa.Uuid()),
                ("subscription_id", sa.Uuid()),
                ("seq", sa.BigInteger()),
                ("record_id", sa.Uuid()),
                ("attempt", sa.Integer()),
                ("started_at", PushDelivery.__table__.c.started_at.type),
                ("status_code", sa.Integer()),
                ("ok", sa.Boolean()),
                ("error", sa.Text()),
                ("duration_ms", sa.Integer()),
            ]
        ),
    )
    old_errors = [
        (200, True, ""),
        (500, False, f"接收方返回 HTTP 500：{SECRET}"),
        (None, False, "请求超时，未收到接收方完整答复"),
        (None, False, f"无法连接接收方（RemoteProtocolError：illegal status line: {SECRET}）"),
    ]
    await asyncio.to_thread(command.downgrade, cfg, "0010")
    try:
        async with world.db.write() as tx:
            await tx.session.execute(
                sa.insert(subs).values(
                    id=sub_id,
                    org_id=world.who["center"].org_id,
                    created_by=world.who["center"].user_id,
                    name="旧订阅",
                    url="https://example.org/hook",
                    secret="whsec_old",
                    status="active",
                    cursor=0,
                    delivered=0,
                    consecutive_failures=3,
                    last_error=f"接收方返回 HTTP 500：{SECRET}",
                    created_at=now,
                )
            )
            for i, (code, ok, error) in enumerate(old_errors, start=1):
                await tx.session.execute(
                    sa.insert(deliveries).values(
                        id=uuid.uuid4(),
                        subscription_id=sub_id,
                        seq=i,
                        record_id=uuid.uuid4(),
                        attempt=1,
                        started_at=now + timedelta(seconds=i),
                        status_code=code,
                        ok=ok,
                        error=error,
                        duration_ms=5,
                    )
                )
    finally:
        await asyncio.to_thread(command.upgrade, cfg, "head")
        await world.db.engine.dispose()  # no connection keeps statements prepared on the old tables
    assert SECRET not in await everything_stored(world)
    async with world.db.read() as s:
        sub = await s.get(PushSubscription, sub_id)
        assert sub is not None
        assert (sub.last_error_kind, sub.last_status_code) == ("http_status", 500)
        kinds = (
            await s.execute(
                sa.select(PushDelivery.seq, PushDelivery.status_code, PushDelivery.error_kind).where(
                    PushDelivery.subscription_id == sub_id
                )
            )
        ).all()
    assert sorted(tuple(k) for k in kinds) == [
        (1, 200, ""),
        (2, 500, "http_status"),
        (3, None, "timeout"),
        (4, None, "connect_failed"),
    ]
