"""Personal data (个人信息保护法): what a deal with a sole proprietor publishes (only what the rules
ask: every public channel, key by key and byte by byte), what the database holds (ciphertext), and
who read it (the audit log). docs/privacy.md says why."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from mall import accounts, orders
from mall.core import auth, encryption, files, tokens
from mall.core.credit_code import make
from mall.core.db import Database
from mall.core.encryption import DataKeyError, DataKeys
from mall.core.models import AuditEntry, Organization, User
from mall.core.personal_data import READ
from mall.core.settings import Settings, SettingsError, load_settings
from mall.ledger import disclosure, exports
from mall.notify import prefs
from mall.orders import claims
from mall.orders.models import Order
from mall.pricewatch import service as pricewatch
from mall.sanctions import reports as sanction_reports
from mall.sanctions import service as sanctions
from mall.schema import metadata
from mall.supervision import cases as supervision_cases
from mall.supervision import engine as supervision_engine
from mall.supervision.models import OversightCase
from tests.factories import PASSWORD, World, sign_and_file
from tests.mall.test_claims import accepted_order
from tests.mall.test_disclosure import ITEM_KEYS, LINE_KEYS, feed
from tests.mall.test_pages import HTML, assert_page, login_ok
from tests.mall.test_payments import digital_invoice_no
from tests.mall.test_pricewatch import open_and_asked_alerts
from tests.mall.test_supervision import split_purchase

# The sole proprietor (个体工商户) registered without a trade name: its name is its operator's.
OWNER = "张建国"
PHONE = "13912345678"
HOME = "郑州市二七区幸福里小区3号楼1单元201室"
# The buyer's clerk, and what people wrote on the order.
CLERK = "王晓梅"
DELIVERY = "甲单位行政楼 收货人王晓梅 13800138000"
NOTE = "请上午送达，电话联系王晓梅"
SHIPPING = "顺丰 SF1234567890 配送员李师傅 13700137000"
VOID = "经核查该订单由王晓梅个人使用"
PERSONAL = [PHONE, HOME, CLERK, "13800138000", "13700137000", "李师傅", DELIVERY, NOTE, SHIPPING, VOID]


@dataclass
class SoleProprietorDeal:
    order: Order
    supplier_code: str


async def a_deal_with_a_sole_proprietor(world: World) -> SoleProprietorDeal:
    """张建国 registered by the admin with his home address and mobile; buyer_a's clerk 王晓梅 orders
    copy paper from him with her name and phone in the delivery address and note; he confirms and
    ships with a note; the regulator voids it with a reason. Both records are published."""
    admin = world.who["sysadmin"]
    code = make("9", "2", "410103", "00000077")
    org = await accounts.register_org(
        world.db,
        admin,
        accounts.OrganizationCreate(
            kind="supplier",
            name=OWNER,
            credit_code=code,
            region_code="410103",
            address=HOME,
            contact_phone=PHONE,
        ),
    )
    assert org.is_sole_proprietor
    for username, org_id, name in (("zhang", org.id, OWNER), ("clerk", world.who["buyer_a"].org_id, CLERK)):
        assert org_id is not None
        user = await accounts.create_user(world.db, admin, org_id, username, name, PASSWORD)
        world.who[username] = auth.principal_of(user)
        world.tokens[username], _ = await tokens.issue_token(world.db, world.who[username], "test")
    await world.listing("paper", "zhang", "138.00", category="A05040101", name="A4复印纸")
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["clerk"],
        orders.CheckoutRequest(
            budget_line_id=world.lines["a1"].id,
            idempotency_key=uuid.uuid4().hex,
            items=((world.listings["paper"].id, "5"),),
            delivery_address=DELIVERY,
            note=NOTE,
        ),
    )
    order_id = placed[0].id
    await orders.confirm(world.db, world.who["zhang"], order_id)
    await sign_and_file(world.db, world.settings, world.who["clerk"], order_id)
    await orders.ship(world.db, world.who["zhang"], order_id, SHIPPING)
    order = await orders.void(world.db, world.who["regulator"], order_id, VOID)
    while await disclosure.publish_pending(world.db):
        pass
    return SoleProprietorDeal(order, code)


def assert_nothing_personal(content: bytes | str, where: str) -> None:
    data = content if isinstance(content, str) else content.decode("utf-8")
    for value in PERSONAL:
        assert value not in data, f"{value!r} in {where}"


# ---------------------------------------------------------------- what is published


async def test_a_sole_proprietors_deal_publishes_only_what_the_rules_ask(client: Any, world: World) -> None:
    deal = await a_deal_with_a_sole_proprietor(world)
    buyer = world.who["buyer_a"]
    r = await client.get("/api/disclosures")
    assert_nothing_personal(r.content, "the feed")
    items = (await feed(client))["items"]
    assert [x["kind"] for x in items] == ["deal", "cancellation"]
    for item in items:
        # The record's keys are the feed's contract, the parties are organizations named by name and
        # credit code (财库〔2017〕86号), and the supplier carries no address: it is a person's.
        assert set(item) == ITEM_KEYS
        assert item["buyer"] == {"name": "甲单位", "credit_code": buyer.org_credit_code}
        assert item["supplier"] == {"name": OWNER, "credit_code": deal.supplier_code}
        assert [set(line) for line in item["lines"]] == [LINE_KEYS]
        single = await client.get(f"/api/disclosures/{item['seq']}")
        assert single.status_code == 200
        assert_nothing_personal(single.content, f"record {item['seq']}")
        assert_nothing_personal(await _stored_body(world, item["seq"]), f"stored body {item['seq']}")
        page = assert_page(await client.get(f"/disclosures/{item['seq']}", headers=HTML))
        assert OWNER in page and "供应商地址" not in page
        assert_nothing_personal(page, f"/disclosures/{item['seq']}")
    assert_nothing_personal(assert_page(await client.get("/disclosures", headers=HTML)), "/disclosures")
    atom = await client.get("/disclosures/feed.atom")
    assert atom.status_code == 200 and OWNER in atom.text
    assert_nothing_personal(atom.content, "the Atom feed")
    # The catalogue's public page of his goods names him, not where he lives.
    goods = assert_page(await client.get(f"/goods/{world.listings['paper'].id}", headers=HTML))
    assert OWNER in goods
    assert_nothing_personal(goods, "the goods page")


async def test_the_exports_of_a_sole_proprietors_deal_carry_only_what_the_rules_ask(
    client: Any, world: World
) -> None:
    deal = await a_deal_with_a_sole_proprietor(world)
    center = world.h("center")

    r = await client.get("/api/exports/disclosures.ocds.json", headers=center)
    assert r.status_code == 200, r.text
    assert_nothing_personal(r.content, "the OCDS export")
    releases = json.loads(r.content)["releases"]
    assert len(releases) == 2
    for release in releases:
        [party] = [p for p in release["parties"] if "supplier" in p["roles"]]
        assert set(party) == {"id", "name", "identifier", "address", "roles"}
        assert party["name"] == OWNER and party["address"] == {"countryName": "中国"}
        assert party["identifier"] == {"scheme": "CN-USCC", "id": deal.supplier_code, "legalName": OWNER}

    r = await client.get("/api/exports/disclosures.csv", headers=center)
    assert r.status_code == 200
    assert_nothing_personal(r.content, "the CSV export")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 2
    for row in rows:
        assert list(row) == exports.HEADERS
        assert row["供应商"] == OWNER and row["供应商统一社会信用代码"] == deal.supplier_code
        assert row["供应商地址"] == "" and row["失败原因"] == ""

    from openpyxl import load_workbook

    r = await client.get("/api/exports/disclosures.xlsx", headers=center)
    assert r.status_code == 200
    cells = [
        str(v) for ws in load_workbook(io.BytesIO(r.content)).worksheets for row in ws.values for v in row
    ]
    assert OWNER in cells
    assert_nothing_personal("\n".join(cells), "the XLSX export")


async def _stored_body(world: World, seq: int) -> str:
    async with world.db.read() as s:
        return str(
            (await s.execute(text("SELECT body FROM disclosure_records WHERE seq = :s"), {"s": seq})).scalar()
        )


# ---------------------------------------------------------------- what the database holds


async def test_personal_fields_are_ciphertext_in_the_database(world: World, settings: Settings) -> None:
    deal = await a_deal_with_a_sole_proprietor(world)
    queries = {
        "organizations": (
            "SELECT address, contact_phone FROM organizations WHERE credit_code = :k",
            deal.supplier_code,
        ),
        "users": ("SELECT display_name FROM users WHERE username = :k", "clerk"),
        "orders": (
            "SELECT delivery_address, note, shipping_note, cancel_reason FROM orders WHERE order_no = :k",
            deal.order.order_no,
        ),
        "order_events": (
            "SELECT actor_label, detail FROM order_events"
            " WHERE order_id = (SELECT id FROM orders WHERE order_no = :k)",
            deal.order.order_no,
        ),
    }
    async with world.db.read() as s:
        for table, (sql, key) in queries.items():
            values = [v for row in (await s.execute(text(sql), {"k": key})).all() for v in row]
            assert values and all(v.startswith(encryption.PREFIX) for v in values), (table, values)
            assert_nothing_personal("\n".join(values), f"the {table} table")
        # Through the ORM, the same rows read as what was written.
        org = (
            await s.execute(select(Organization).where(Organization.credit_code == deal.supplier_code))
        ).scalar_one()
        clerk = (await s.execute(select(User).where(User.username == "clerk"))).scalar_one()
        order = await s.get(Order, deal.order.id)
    assert (org.contact_phone, org.address, clerk.display_name) == (PHONE, HOME, CLERK)
    assert order is not None and (order.note, order.delivery_address, order.shipping_note) == (
        NOTE,
        DELIVERY,
        SHIPPING,
    )


@pytest.mark.slow  # (reads the database file from another process)
async def test_the_database_file_holds_no_personal_value_in_plain_text(world: World) -> None:
    if not world.db.is_sqlite:
        pytest.skip("PostgreSQL's files belong to its server: the embedded run reads the SQLite file")
    deal = await a_deal_with_a_sole_proprietor(world)
    path = Path(str(make_url(world.db.url).database))
    raw = sqlite3.connect(path)
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    content = b"".join(
        bytes_of_live_database_file(f) for f in (path, path.with_name(path.name + "-wal")) if f.exists()
    )
    assert deal.order.order_no.encode() in content  # what is not personal is there in plain text
    assert PHONE.encode() not in content


def bytes_of_live_database_file(path: Path) -> bytes:
    """The bytes of a database file this process has open, read by another process: closing a
    descriptor of the file here would drop every POSIX lock this process holds on it, SQLite's
    included, and the suite's connections would go on as if they still held them (the next
    writer corrupts the file: "file is not a database", many tests later)."""
    import subprocess
    import sys

    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
            str(path),
        ],
        check=True,
        capture_output=True,
    ).stdout


# ---------------------------------------------------------------- who read it


async def _reads(world: World) -> list[tuple[str, str]]:
    names = {p.user_id: n for n, p in world.who.items()}
    async with world.db.read() as s:
        rows = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == READ).order_by(AuditEntry.at))
        ).scalars()
        out = []
        for e in rows:
            assert_nothing_personal(e.detail + e.target, "the read log")
            assert e.actor_user_id is not None
            out.append((names[e.actor_user_id], e.target.split(" ")[0]))
        return out


async def test_reads_of_personal_data_by_others_are_logged(client: Any, world: World) -> None:
    deal = await a_deal_with_a_sole_proprietor(world)
    oid = deal.order.id
    page, contract = f"/orders/{oid}", f"/orders/{oid}/contract"

    await login_ok(client, "sysadmin")
    assert PHONE in assert_page(await client.get("/admin?kind=supplier", headers=HTML))
    await login_ok(client, "regulator")
    text_ = assert_page(await client.get(page, headers=HTML))
    assert DELIVERY in text_ and NOTE in text_
    # the e-contract names the parties as organizations: no phone, no home address, nothing to log
    shown = assert_page(await client.get(contract, headers=HTML))
    assert PHONE not in shown and HOME not in shown and DELIVERY not in shown and NOTE not in shown
    await login_ok(client, "zhang")  # the supplier reads where to deliver, and to whom
    assert DELIVERY in assert_page(await client.get(page, headers=HTML))
    await login_ok(client, "clerk")  # the buyer's own order: not logged
    assert_page(await client.get(page, headers=HTML))
    assert PHONE not in assert_page(await client.get(contract, headers=HTML))
    events = await client.get(f"/api/orders/{oid}/events", headers=world.h("center"))
    assert events.status_code == 200 and CLERK in events.text
    assert (await client.get(f"/api/orders/{oid}/events", headers=world.h("clerk"))).status_code == 200

    assert await _reads(world) == [
        ("sysadmin", "/admin"),
        ("regulator", page),
        ("zhang", page),
        ("center", f"/api/orders/{oid}/events"),
    ]


# ---------------------------------------------------------------- keys: settings, rotation


def test_a_server_database_needs_a_data_key_and_a_key_must_be_32_bytes() -> None:
    pg = {"DATABASE_URL": "postgresql://mall@db.internal/mall"}
    with pytest.raises(SettingsError, match="MALL_DATA_KEY is required"):
        load_settings(pg)
    with pytest.raises(SettingsError, match="32 bytes"):
        load_settings({**pg, "MALL_DATA_KEY": "c2hvcnQ="})
    first, second = encryption.new_key(), encryption.new_key()
    s = load_settings({**pg, "MALL_DATA_KEY": f"{first}, {second}"})
    assert s.resolved_data_keys().fingerprints == DataKeys.parse(f"{first},{second}").fingerprints


def test_sqlite_keeps_its_generated_key_beside_the_database(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "data")
    keys = s.resolved_data_keys()
    key_file = tmp_path / "data" / encryption.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert s.resolved_data_keys().fingerprints == keys.fingerprints  # made once, then read
    # Another process with a data directory of its own, on the same database file, has the same key.
    other = Settings(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'data' / 'mall.db'}")
    assert other.resolved_data_keys().fingerprints == keys.fingerprints
    explicit = encryption.new_key()
    assert (
        Settings(data_dir=tmp_path / "data", data_key=explicit).resolved_data_keys().fingerprints
        != keys.fingerprints
    )


def test_the_first_key_encrypts_and_any_key_decrypts() -> None:
    old, new = encryption.new_key(), encryption.new_key()
    before = DataKeys.parse(old).encrypt(PHONE)
    assert before.startswith(encryption.PREFIX) and PHONE not in before
    both = DataKeys.parse(f"{new},{old}")
    assert both.decrypt(before) == PHONE and not both.is_current(before)
    after = both.rotate(before)
    assert both.is_current(after) and DataKeys.parse(new).decrypt(after) == PHONE
    assert both.rotate(after) == after
    with pytest.raises(DataKeyError):
        DataKeys.parse(old).decrypt(after)
    with pytest.raises(DataKeyError):
        DataKeys.parse(new).decrypt(PHONE)  # a value that was never encrypted is refused, not shown


@pytest.fixture
def current_key(settings: Settings) -> Iterator[str]:
    """The suite's data key as MALL_DATA_KEY writes it."""
    if settings.data_key:
        yield settings.data_key
        return
    path = encryption.sqlite_key_path(settings.resolved_database_url)
    assert path is not None
    yield path.read_text().strip()


async def test_rotation_encrypts_everything_with_the_new_key_and_the_old_one_can_go(
    world: World, settings: Settings, current_key: str
) -> None:
    await a_deal_with_a_sole_proprietor(world)
    accepted = await accepted_order(world)  # and an after-sales claim, whose reason is encrypted too
    await claims.open_claim(
        world.db, settings, world.who["buyer_a"], accepted, "repair", "联系王晓梅 13800000000"
    )
    invoice = await orders.record_invoice(
        world.db,
        world.who["supplier_x"],
        accepted,
        invoice_no=digital_invoice_no(),
        amount="1.00",
        issued_on=None,
    )
    await orders.reject_invoice(world.db, world.who["buyer_a"], accepted, invoice.id, "请联系王晓梅重开")
    # a person's e-mail address and mobile number for notifications (the signed contract above made
    # the organizations' signing keys, encrypted too)
    await prefs.save(
        world.db,
        world.who["buyer_a"].user_id,
        prefs.PrefsForm(email="wang@example.gov.cn", phone="13800000000", email_on="on"),
    )
    # a supplier's answer to a price alert, a buyer's explanation of an oversight case and the
    # regulator's decision on it (each may name a person)
    _, asked = await open_and_asked_alerts(world)
    await pricewatch.answer(world.db, world.who["supplier_x"], asked, "报价含王晓梅上门安装")
    await split_purchase(world)
    await supervision_engine.run_full(world.db, world.settings)
    async with world.db.read() as s:
        case_id = (
            await s.execute(select(OversightCase.id).where(OversightCase.rule == "split_purchase"))
        ).scalar_one()
    await supervision_cases.explain(world.db, world.who["buyer_a"], case_id, "经办人王晓梅：分批到货")
    await supervision_cases.decide(world.db, world.who["regulator"], case_id, "justified", "理由成立")
    # a sanction's rebuttal and appeal name people too
    emergency = await sanctions.impose(
        world.db,
        world.settings,
        world.who["center"],
        world.who["supplier_x"].org_id,
        "emergency",
        0,
        "拒不供货",
    )
    await sanctions.rebut(world.db, world.who["supplier_x"], emergency.id, "经办人王晓梅已补发")
    await sanctions.appeal(world.db, world.who["supplier_x"], emergency.id, "联系人王晓梅，电话见附件")
    await sanction_reports.file_report(
        world.db,
        world.settings,
        files.store_for(world.settings, world.db),
        world.who["buyer_a"],
        world.who["supplier_x"].org_id,
        "other",
        "经办人王晓梅多次催告未果",
        [],
    )
    new = encryption.new_key()
    url = settings.resolved_database_url
    rotating = Database(url, data_keys=DataKeys.parse(f"{new},{current_key}"))
    only_new = Database(url, data_keys=DataKeys.parse(new))
    try:
        done = await encryption.rotate(rotating, metadata, batch=3)
        assert set(done) == {
            "organizations",
            "users",
            "orders",
            "order_events",
            "order_claims",
            # deliveries' notes, inspectors' names and verdicts, an invoice's rejection reason
            "order_deliveries",
            "acceptance_reports",
            "acceptance_report_lines",
            "order_invoices",
            "notification_prefs",
            "signing_certificates",
            "price_alerts",
            "oversight_cases",
            "oversight_case_events",
            "sanctions",
            "violation_reports",
        }
        fulfilment = ("order_deliveries", "acceptance_reports", "acceptance_report_lines", "order_invoices")
        assert [(done[t].values > 0, done[t].rewritten == done[t].values) for t in fulfilment] == [
            (True, True)
        ] * 4
        assert all(d.values > 0 and d.rewritten == d.values for d in done.values())
        again = await encryption.rotate(rotating, metadata)
        assert sum(d.rewritten for d in again.values()) == 0
        async with only_new.read() as s:
            org = (await s.execute(select(Organization).where(Organization.name == OWNER))).scalar_one()
            assert org.contact_phone == PHONE
        with pytest.raises(DataKeyError):  # the old key alone reads nothing any more
            async with world.db.read() as s:
                await s.execute(select(Organization.contact_phone).where(Organization.name == OWNER))
    finally:
        # Back under the suite's key: tests that start from the database as it is can read it.
        back = Database(url, data_keys=DataKeys.parse(f"{current_key},{new}"))
        await encryption.rotate(back, metadata)
        for db in (rotating, only_new, back):
            await db.dispose()


async def test_mall_rotate_data_key_new_key_on_an_embedded_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mall import cli
    from mall.migrate import upgrade

    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    await asyncio.to_thread(upgrade, settings)
    db = Database(settings.resolved_database_url, data_keys=settings.resolved_data_keys())
    try:
        draft = accounts.OrganizationCreate(
            kind="supplier",
            name=OWNER,
            credit_code=make("9", "2", "410103", "00000078"),
            region_code="410103",
            contact_phone=PHONE,
        )
        await accounts.register_org(db, None, draft)
    finally:
        await db.dispose()
    for name in ("DATABASE_URL", "MALL_DATA_KEY", "MALL_SETTINGS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALL_DATA_DIR", str(data))

    def run(*args: str) -> Any:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["rotate-data-key", *args])
        return exit_info.value.code

    assert await asyncio.to_thread(run, "--new-key") == 0
    keys = (data / encryption.KEY_FILE).read_text().split()
    assert len(keys) == 2
    with sqlite3.connect(data / "mall.db") as raw:
        [(stored,)] = raw.execute("SELECT contact_phone FROM organizations").fetchall()
    assert DataKeys.parse(keys[0]).decrypt(stored) == PHONE
    monkeypatch.setenv("MALL_DATA_KEY", keys[0])
    assert await asyncio.to_thread(run, "--new-key") == 2  # MALL_DATA_KEY is changed by the operator
