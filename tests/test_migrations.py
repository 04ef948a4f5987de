"""The migrations match the models and run down and up again, on the suite's database."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mall.core.db import Database
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
