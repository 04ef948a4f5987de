"""Credit checks (mall.credit.checks, mall.credit.blacklist): the administrator's blacklist from CSV,
the national service's HTTP checker (against a real HTTP server on this machine), and the refusal of
a listed supplier at registration and at each order, with the evidence kept either way."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from mall import accounts, orders
from mall.core import clock
from mall.core.credit_code import make
from mall.core.errors import Forbidden, InvalidInput, RuleViolation, Unavailable
from mall.core.models import Organization
from mall.credit import blacklist, checks
from mall.credit.models import BlacklistEntry, CreditCheck
from mall.orders.models import Order
from tests.factories import World
from tests.security.login_helpers import assert_problem

HEADER = "统一社会信用代码,名称,列入原因,列入日期,移出日期\n"


def code(n: int) -> str:
    return make("9", "1", "410100", f"{n:08d}")


def csv_of(*rows: tuple[str, str, str, str, str]) -> bytes:
    return (HEADER + "".join(",".join(r) + "\n" for r in rows)).encode()


async def supplier_code(world: World, name: str = "supplier_x") -> str:
    async with world.db.read() as s:
        org = await s.get(Organization, world.who[name].org_id)
        assert org is not None
        return org.credit_code


def today() -> str:
    return clock.local_date(clock.now()).isoformat()


def test_a_bad_file_is_refused_whole_with_its_rows_named() -> None:
    with pytest.raises(InvalidInput) as e:
        blacklist.parse(b"code,name\n")
    assert e.value.code == "blacklist_header"
    bad = csv_of(
        (code(1), "甲公司", "重大税收违法", "2026-01-05", ""),
        ("91410100MA0000000X", "乙公司", "失信", "2026-01-05", ""),  # a wrong check character
        (code(3), "", "失信", "2026-01-05", ""),
        (code(4), "丁公司", "失信", "2026/01/05", ""),
        (code(5), "戊公司", "失信", "2026-03-01", "2026-02-01"),
        (code(1), "甲公司", "重复", "2026-01-05", ""),
    )
    with pytest.raises(InvalidInput) as e:
        blacklist.parse(bad)
    assert e.value.code == "blacklist_invalid"
    for n in (3, 4, 5, 6, 7):
        assert f"第 {n} 行" in e.value.detail, e.value.detail
    assert "第 2 行" not in e.value.detail
    with pytest.raises(InvalidInput) as e:
        blacklist.parse(HEADER.encode())
    assert e.value.code == "blacklist_empty"
    # as Excel saves it: GB18030, a trailing empty row
    rows = blacklist.parse((HEADER + f"{code(1)},甲公司,重大税收违法,2026-01-05,\n,,,,\n").encode("gb18030"))
    assert rows[0][:3] == (code(1), "甲公司", "重大税收违法") and rows[0][4] is None


async def test_a_newer_import_of_a_source_replaces_its_entries_and_names_registered_suppliers(
    world: World,
) -> None:
    admin = world.who["sysadmin"]
    x = await supplier_code(world)
    with pytest.raises(Forbidden):
        await blacklist.import_list(world.db, world.who["center"], "信用中国", today(), "a.csv", csv_of())
    first = csv_of(
        (code(1), "甲公司", "重大税收违法", "2026-01-05", ""), (code(2), "乙公司", "失信", "2026-01-05", "")
    )
    await blacklist.import_list(world.db, admin, "信用中国·重大税收违法失信主体", today(), "a.csv", first)
    await blacklist.import_list(
        world.db,
        admin,
        "省政府采购严重违法失信名单",
        today(),
        "b.csv",
        csv_of((code(2), "乙公司", "提供虚假材料", "2026-02-01", "")),
    )
    second = csv_of(
        (code(1), "甲公司", "重大税收违法", "2026-01-05", ""),
        (x, "甲供应商有限公司", "拒不履行法院判决", "2026-06-01", ""),
    )
    await blacklist.import_list(world.db, admin, "信用中国·重大税收违法失信主体", today(), "c.csv", second)
    async with world.db.read() as s:
        total, rows = await blacklist.entries(s)
        kept = await s.scalar(select(func.count()).select_from(BlacklistEntry))
        named = (await s.execute(select(CreditCheck).where(CreditCheck.purpose == "import"))).scalars().all()
    assert total == 3 and kept == 5  # the first file's entries are superseded, not deleted
    assert sorted((r.credit_code, r.source) for r in rows) == sorted(
        [
            (code(1), "信用中国·重大税收违法失信主体"),
            (code(2), "省政府采购严重违法失信名单"),
            (x, "信用中国·重大税收违法失信主体"),
        ]
    )
    assert [(c.org_id, c.result, c.ref) for c in named] == [
        (world.who["supplier_x"].org_id, "listed", "信用中国·重大税收违法失信主体")
    ]
    with pytest.raises(InvalidInput):
        await blacklist.import_list(world.db, admin, "来源", "2099-01-01", "a.csv", first)  # a future date


async def test_a_listed_supplier_is_refused_at_registration_and_the_check_is_kept(world: World) -> None:
    admin = world.who["sysadmin"]
    ended = (clock.local_date(clock.now()) - timedelta(days=1)).isoformat()
    await blacklist.import_list(
        world.db,
        admin,
        "信用中国",
        today(),
        "a.csv",
        csv_of(
            (code(7), "失信公司", "重大税收违法", "2026-01-05", ""),
            (code(8), "已移出公司", "失信", "2025-01-05", ended),
        ),
    )
    draft = accounts.OrganizationCreate(
        kind="supplier", name="失信公司", credit_code=code(7), region_code="410100"
    )
    with pytest.raises(RuleViolation) as e:
        await accounts.register_org(world.db, admin, draft)
    assert (
        e.value.code == "supplier_blacklisted"
        and "信用中国" in e.value.detail
        and "重大税收违法" in e.value.detail
    )
    ok = await accounts.register_org(
        world.db,
        admin,
        accounts.OrganizationCreate(
            kind="supplier", name="已移出公司", credit_code=code(8), region_code="410100"
        ),
    )
    async with world.db.read() as s:
        refused = (
            await s.execute(select(CreditCheck).where(CreditCheck.credit_code == code(7)))
        ).scalar_one()
        passed = (await s.execute(select(CreditCheck).where(CreditCheck.org_id == ok.id))).scalar_one()
        registered = await s.scalar(select(func.count()).where(Organization.credit_code == code(7)))
    assert refused.org_id is None and refused.result == "listed" and refused.purpose == "registration"
    assert refused.evidence["records"][0]["reason"] == "重大税收违法"
    assert registered == 0
    assert passed.result == "clear" and passed.checker == "blacklist"


async def test_each_order_is_checked_and_a_listed_supplier_refused(world: World) -> None:
    def checkout(key: str) -> Any:
        return orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(world.lines["a1"].id, key, ((world.listings["laptop"].id, "1"),)),
        )

    placed, _ = await checkout("credit-check-1")
    async with world.db.read() as s:
        kept = (await s.execute(select(CreditCheck).where(CreditCheck.purpose == "order"))).scalar_one()
    assert (kept.ref, kept.result, kept.org_id) == (
        placed[0].order_no,
        "clear",
        world.who["supplier_x"].org_id,
    )

    x = await supplier_code(world)
    await blacklist.import_list(
        world.db,
        world.who["sysadmin"],
        "信用中国",
        today(),
        "a.csv",
        csv_of((x, "甲供应商有限公司", "拒不履行法院判决", "2026-06-01", "")),
    )
    async with world.db.read() as s:
        before = await s.scalar(select(func.count()).select_from(Order))
    with pytest.raises(RuleViolation) as e:
        await checkout("credit-check-2")
    assert e.value.code == "supplier_blacklisted" and "拒不履行法院判决" in e.value.detail
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == before  # nothing written
    # another supplier's goods still sell
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(world.lines["a1"].id, "credit-check-3", ((world.listings["desk"].id, "1"),)),
    )
    assert placed


class _Service(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlparse

        asked = parse_qs(urlparse(self.path).query).get("credit_code", [""])[0]
        self.seen.append((asked, self.headers.get("Authorization", "")))
        status, body = self.answers.get(asked, (200, json.dumps({"listed": False, "records": []}).encode()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Service.answers, _Service.seen = {}, []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/credit/check"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_national_service_is_asked_at_registration_and_its_answer_binds_orders(
    world: World, service: str
) -> None:
    admin = world.who["sysadmin"]
    checker = checks.HttpChecker(service, "token-1", timeout=2)
    listed = {
        "listed": True,
        "records": [{"source": "信用中国", "reason": "严重失信主体", "listed_on": "2026-03-01"}],
    }
    _Service.answers = {
        code(11): (200, json.dumps(listed).encode()),
        code(12): (500, b"{}"),
        code(13): (200, b"not json"),
    }

    def draft(n: int) -> Any:
        return accounts.OrganizationCreate(
            kind="supplier", name=f"公司{n}", credit_code=code(n), region_code="410100"
        )

    with pytest.raises(RuleViolation) as e:
        await accounts.register_org(world.db, admin, draft(11), checker=checker)
    assert "严重失信主体" in e.value.detail
    for n in (12, 13):
        with pytest.raises(Unavailable) as down:
            await accounts.register_org(world.db, admin, draft(n), checker=checker)
        assert down.value.code == "credit_check_unavailable"
    org = await accounts.register_org(world.db, admin, draft(14), checker=checker)
    assert (code(14), "Bearer token-1") in _Service.seen
    async with world.db.read() as s:
        kept = {
            (c.checker, c.result)
            for c in (await s.execute(select(CreditCheck).where(CreditCheck.org_id == org.id))).scalars()
        }
        refused = await s.scalar(
            select(func.count()).where(CreditCheck.credit_code == code(11), CreditCheck.org_id.is_(None))
        )
        unregistered = await s.scalar(
            select(func.count()).where(Organization.credit_code.in_([code(12), code(13)]))
        )
    assert kept == {("blacklist", "clear"), ("http", "clear")}
    assert refused == 2 and unregistered == 0  # both checks of the refused registration are kept

    # an order reads the service's latest answer: it found supplier_x listed since
    async with world.db.write() as tx:
        tx.session.add(
            checks.check_row(
                world.who["supplier_x"].org_id,
                await supplier_code(world),
                "甲供应商有限公司",
                "registration",
                checks.Outcome("http", True, listed["records"]),
            )
        )
    with pytest.raises(RuleViolation) as e:
        await orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(
                world.lines["a1"].id, "credit-http", ((world.listings["laptop"].id, "1"),)
            ),
        )
    assert e.value.code == "supplier_blacklisted"


async def test_the_api_and_pages(client: Any, world: World) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok

    x = await supplier_code(world)
    body = csv_of((x, "甲供应商有限公司", "拒不履行法院判决", "2026-06-01", ""))
    form = {"source": "信用中国", "data_date": today()}
    r = await client.post(
        "/api/credit/blacklist",
        data=form,
        files={"file": ("名单.csv", body, "text/csv")},
        headers=world.h("sysadmin"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 1
    bad = await client.post(
        "/api/credit/blacklist",
        data=form,
        files={"file": ("x.csv", b"a,b\n", "text/csv")},
        headers=world.h("sysadmin"),
    )
    assert_problem(bad, 400, "blacklist_header")
    assert_problem(
        await client.post(
            "/api/credit/blacklist",
            data=form,
            files={"file": ("名单.csv", body, "text/csv")},
            headers=world.h("center"),
        ),
        403,
        "forbidden",
    )
    r = await client.get(f"/api/credit/blacklist?code={x}", headers=world.h("regulator"))
    assert r.status_code == 200 and r.json()["items"][0]["reason"] == "拒不履行法院判决"
    r = await client.get("/api/credit/checks?result=listed", headers=world.h("center"))
    assert r.status_code == 200 and r.json()["items"][0]["purpose"] == "import"
    assert_problem(
        await client.get("/api/credit/checks?result=maybe", headers=world.h("center")), 400, "invalid_result"
    )
    assert_problem(
        await client.get("/api/credit/checks?org_id=x", headers=world.h("center")), 400, "invalid_org_id"
    )
    assert_problem(await client.get("/api/credit/checks", headers=world.h("buyer_a")), 403, "forbidden")
    # the refusal at checkout, through the API
    r = await client.post(
        "/api/checkout",
        json={
            "budget_line_id": str(world.lines["a1"].id),
            "items": [{"listing_id": str(world.listings["laptop"].id), "quantity": "1"}],
        },
        headers={**world.h("buyer_a"), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(r, 422, "supplier_blacklisted")

    await login_ok(client, "sysadmin")
    page = assert_page(await client.get("/credit/blacklist", headers=HTML))
    assert "拒不履行法院判决" in page and "导入名单" in page
    page = assert_page(await client.get("/credit/checks", headers=HTML))
    assert "列入失信名单" in page and "名单导入" in page
