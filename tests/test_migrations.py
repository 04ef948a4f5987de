"""The migrations match the models and run down and up again, on the suite's database."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mall.core import partitions, retention
from mall.core.db import Database
from mall.core.models import AuditEntry, User
from mall.core.settings import Settings
from mall.migrate import alembic_config
from mall.schema import metadata
from tests.factories import World


async def test_models_and_migrations_agree(db: Database) -> None:
    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": partitions.include_name}
        )
        # PostgreSQL holds the partitioned tables' unique keys with the partition column added
        # (mall.core.partitions); every other difference counts.
        return partitions.without_widened_keys(list(compare_metadata(ctx, metadata)))

    async with db.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], changes


async def test_every_kept_table_has_its_retention_guard_at_head(db: Database) -> None:
    """A later migration that rebuilds a kept table (SQLite copies it for a batch ALTER) must create
    its guard triggers again: none is missing at head."""
    async with db.engine.connect() as conn:
        assert await retention.missing(conn) == {}


async def test_downgrade_one_step_and_upgrade_again(settings: Settings, db: Database) -> None:
    import asyncio

    cfg = alembic_config(settings.resolved_database_url, settings.resolved_data_keys())
    await asyncio.to_thread(command.downgrade, cfg, "-1")
    await asyncio.to_thread(command.upgrade, cfg, "head")
    # PostgreSQL: statements the pooled connections prepared before the columns changed are stale.
    await db.dispose()


async def test_0014_chains_the_audit_log_it_finds_and_makes_platform_users_system_administrators(
    settings: Settings, clean: None, db: Database
) -> None:
    """An audit log of 0013 (no chain) and a platform user with the old flag: the upgrade numbers the
    entries in the order they were made, chains them so that `verify` passes, and new entries
    continue the chain."""
    import asyncio
    import uuid
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from mall.core import audit
    from mall.core.db import UTCDateTime

    cfg = alembic_config(settings.resolved_database_url, settings.resolved_data_keys())
    await asyncio.to_thread(command.downgrade, cfg, "0013")
    orgs = sa.table(
        "organizations",
        *(sa.column(c) for c in ("kind", "name", "credit_code", "address", "region_code", "contact_phone")),
        *(sa.column(c) for c in ("is_sme", "status")),
        sa.column("created_at", UTCDateTime()),
        sa.column("id", sa.Uuid()),
    )
    users = sa.table(
        "users",
        *(sa.column(c) for c in ("username", "display_name", "password_hash", "is_admin", "is_active")),
        sa.column("session_epoch"),
        sa.column("created_at", UTCDateTime()),
        sa.column("org_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
    )
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Uuid()),
        sa.column("at", UTCDateTime()),
        sa.column("actor_user_id", sa.Uuid()),
        *(sa.column(c) for c in ("action", "target", "detail", "ip")),
    )
    now = datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
    platform, buyer_org, op_user, clerk = (uuid.uuid4() for _ in range(4))
    try:
        async with db.engine.begin() as conn:
            common = {
                "address": "",
                "contact_phone": "",
                "is_sme": False,
                "status": "active",
                "created_at": now,
            }
            await conn.execute(
                orgs.insert(),
                [
                    {
                        "kind": "platform",
                        "name": "运营方",
                        "credit_code": "91410100MA00000001",
                        "region_code": "410100",
                        "id": platform,
                        **common,
                    },
                    {
                        "kind": "budget_unit",
                        "name": "某单位",
                        "credit_code": "11410100MB00000002",
                        "region_code": "410100",
                        "id": buyer_org,
                        **common,
                    },
                ],
            )
            person = {
                "display_name": "某人",
                "password_hash": "x",
                "is_active": True,
                "session_epoch": 0,
                "created_at": now,
            }
            await conn.execute(
                users.insert(),
                [
                    {"username": "oldadmin", "is_admin": True, "org_id": platform, "id": op_user, **person},
                    {"username": "oldclerk", "is_admin": False, "org_id": buyer_org, "id": clerk, **person},
                ],
            )
            ids = sorted(uuid.uuid4() for _ in range(3))
            await conn.execute(
                log.insert(),
                [  # made out of order of their ids, two at the same instant
                    {
                        "id": ids[2],
                        "at": now,
                        "actor_user_id": op_user,
                        "action": "org_registered",
                        "target": "91410100MB00000002",
                        "detail": "某单位",
                        "ip": "",
                    },
                    {
                        "id": ids[0],
                        "at": now + timedelta(seconds=5),
                        "actor_user_id": clerk,
                        "action": "login_failed",
                        "target": "oldclerk",
                        "detail": "",
                        "ip": "203.0.113.5",
                    },
                    {
                        "id": ids[1],
                        "at": now,
                        "actor_user_id": None,
                        "action": "demo_seeded",
                        "target": "",
                        "detail": "",
                        "ip": "",
                    },
                ],
            )
    finally:
        await asyncio.to_thread(command.upgrade, cfg, "head")

    result = await audit.verify(db)
    assert result.ok and result.checked == 3, result
    async with db.read() as s:
        rows = list((await s.execute(sa.select(AuditEntry).order_by(AuditEntry.seq))).scalars())
        roles = {u: r for u, r in (await s.execute(sa.select(User.username, User.admin_role))).all()}
    assert [(e.seq, e.action, e.actor_username, e.succeeded, e.target_kind) for e in rows] == [
        (1, "demo_seeded", "", True, "system"),
        (2, "org_registered", "oldadmin", True, "organization"),
        (3, "login_failed", "oldclerk", False, "user"),
    ]
    assert rows[0].prev_hash == audit.GENESIS and rows[2].ip == "203.0.113.5"
    assert roles == {"oldadmin": "sysadmin", "oldclerk": None}
    await audit.record_now(db, None, "audit_verified", target="chain")
    assert (await audit.verify(db)).checked == 4


async def test_0015_encrypts_the_personal_fields_it_finds_in_batches_and_0013_gets_them_back(
    settings: Settings, world: World
) -> None:
    """Rows of 0013 — the world, a published deal whose order carries a note, a sole proprietor (92…)
    and enough organizations for several batches — are plain text there; after the upgrade every
    personal field is ciphertext that reads back as it was, and the sole proprietor is one."""
    import asyncio
    import uuid
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from mall import orders
    from mall.core.credit_code import make
    from mall.core.db import UTCDateTime
    from mall.core.encryption import PREFIX
    from mall.core.models import Organization
    from mall.orders.models import Order, OrderEvent

    placed, _ = await orders.checkout(
        world.db,
        settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(
            budget_line_id=world.lines["a1"].id,
            idempotency_key=uuid.uuid4().hex,
            items=((world.listings["laptop"].id, "1"),),
            delivery_address="行政楼 收货人王晓梅 13800138000",
            note="上午送达",
        ),
    )
    await orders.confirm(world.db, world.who["supplier_x"], placed[0].id)
    cfg = alembic_config(settings.resolved_database_url, settings.resolved_data_keys())
    personal = {
        "organizations": ("address", "contact_phone"),
        "users": ("display_name",),
        "orders": ("delivery_address", "note"),
        "order_events": ("actor_label", "detail"),
    }

    async def stored(table: str) -> list[str]:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.text(f"SELECT {', '.join(personal[table])} FROM {table}"))).all()  # noqa: S608
        return [v for row in rows for v in row if v]

    db = world.db
    await asyncio.to_thread(command.downgrade, cfg, "0013")
    await db.dispose()  # PostgreSQL: statements prepared before the columns changed are stale
    try:
        assert "行政楼 收货人王晓梅 13800138000" in await stored("orders")
        assert "甲单位地址" in await stored("organizations") and "buyer_a" in await stored("users")
        orgs = sa.table(
            "organizations",
            *(
                sa.column(c)
                for c in ("kind", "name", "credit_code", "address", "region_code", "contact_phone")
            ),
            sa.column("is_sme"),
            sa.column("status"),
            sa.column("created_at", UTCDateTime()),
            sa.column("id", sa.Uuid()),
        )
        at = datetime(2026, 12, 1, tzinfo=UTC)
        many = [
            {
                "id": uuid.uuid4(),
                "kind": "supplier",
                "name": f"供应商{n}",
                "credit_code": make("9", "2" if n == 0 else "1", "410100", f"{700000 + n:08d}"),
                "address": f"地址{n}",
                "region_code": "410100",
                "contact_phone": f"1390000{n:04d}",
                "is_sme": True,
                "status": "active",
                "created_at": at,
            }
            for n in range(1100)  # three batches
        ]
        async with db.engine.begin() as conn:
            await conn.execute(orgs.insert(), many)
    finally:
        await asyncio.to_thread(command.upgrade, cfg, "head")
        await db.dispose()

    for table in personal:
        values = await stored(table)
        assert values and all(v.startswith(PREFIX) for v in values), table
    async with db.read() as s:
        got = {
            o.credit_code: (o.address, o.contact_phone, o.is_sole_proprietor)
            for o in (await s.execute(sa.select(Organization))).scalars()
        }
        order = await s.get(Order, placed[0].id)
        details = list((await s.execute(sa.select(OrderEvent.detail))).scalars())
    assert len(got) == 1100 + 7
    assert got[many[0]["credit_code"]] == ("地址0", "13900000000", True)
    assert got[many[1099]["credit_code"]] == ("地址1099", "13900001099", False)
    assert not got[world.who["supplier_x"].org_credit_code][2]
    assert order is not None and (order.delivery_address, order.note) == (
        "行政楼 收货人王晓梅 13800138000",
        "上午送达",
    )
    assert any("成交" in d or "确认" in d for d in details)
