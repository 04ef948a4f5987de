"""The migrations match the models and run down and up again, on the suite's database."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mall.core.db import Database
from mall.core.models import AuditEntry, User
from mall.core.settings import Settings
from mall.migrate import alembic_config
from mall.schema import metadata


async def test_models_and_migrations_agree(db: Database) -> None:
    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    async with db.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], changes


def test_downgrade_one_step_and_upgrade_again(settings: Settings) -> None:
    cfg = alembic_config(settings.resolved_database_url)
    command.downgrade(cfg, "-1")
    command.upgrade(cfg, "head")


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

    cfg = alembic_config(settings.resolved_database_url)
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
