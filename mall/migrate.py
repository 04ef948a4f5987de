"""Schema migrations (Alembic) and the reference data that comes with them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from catalog import categories
from mall.contracts import keys
from mall.core.db import Database
from mall.core.encryption import DataKeys
from mall.core.settings import Settings

HERE = Path(__file__).parent / "migrations"


def alembic_config(url: str, data_keys: DataKeys | None = None) -> Config:
    """The migrations' configuration; `data_keys` encrypt and decrypt personal data in the
    migrations that move it (without them: as `Database` does, the key file beside a SQLite file)."""
    cfg = Config()
    cfg.attributes["data_keys"] = data_keys
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def upgrade(settings: Settings) -> None:
    if settings.sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url, settings.resolved_data_keys()), "head")
    asyncio.run(_load_reference_data(settings))


async def _load_reference_data(settings: Settings) -> None:
    db = Database(settings.resolved_database_url, pool_size=1, data_keys=settings.resolved_data_keys())
    try:
        async with db.write() as tx:
            await categories.load(tx.session)
        if settings.contract_signer in ("", "local"):
            await keys.authority(db)  # the contract signer's certificate authority, made on first start
    finally:
        await db.dispose()
