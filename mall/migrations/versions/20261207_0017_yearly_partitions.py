"""yearly partitions of the ledger, the offer log and the audit log (PostgreSQL)

Each of `disclosure_records` (by `published_at`), `offers` and `audit_log` (by `at`) becomes a table
partitioned by range, one partition per calendar year in China from 2020 to next year and a default
partition (mall.core.partitions). Its rows are copied over in the migration's transaction, which
locks the table meanwhile: on a large deployment this migration runs in a maintenance window
(docs/operations.md). Primary keys and unique constraints take the partition column as PostgreSQL
asks; the retention guard becomes row triggers, which the partitions inherit.

SQLite: nothing (no partitions; an embedded mall does not hold fifteen years).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:30:00.000000
"""

from collections.abc import Sequence
from datetime import datetime

from alembic import op

from mall.core import partitions, retention

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (partition column, primary key, unique constraints, indexes, foreign keys), as at 0016
TABLES: dict[str, tuple[str, list[str], dict[str, list[str]], dict[str, str], dict[str, str]]] = {
    "disclosure_records": (
        "published_at",
        ["seq"],
        {"uq_disclosure_records_id": ["id"], "uq_disclosure_records_source_id": ["source_id"]},
        {
            "ix_disclosure_buyer": "buyer_credit_code, seq",
            "ix_disclosure_date": "deal_date, seq",
            "ix_disclosure_mode": "mode, seq",
            "ix_disclosure_records_order_no": "order_no",
            "ix_disclosure_supplier": "supplier_credit_code, seq",
        },
        {},
    ),
    "offers": (
        "at",
        ["id"],
        {},
        {
            "ix_offers_procedure_seq": "procedure_id, seq",
            "ix_offers_procedure_supplier": "procedure_id, supplier_org_id",
        },
        {
            "fk_offers_procedure_id_procedures": "(procedure_id) REFERENCES procedures (id)",
            "fk_offers_supplier_org_id_organizations": "(supplier_org_id) REFERENCES organizations (id)",
            "fk_offers_user_id_users": "(user_id) REFERENCES users (id)",
        },
    ),
    "audit_log": (
        "at",
        ["id"],
        {"uq_audit_log_seq": ["seq"]},
        {
            "ix_audit_log_at": "at",
            "ix_audit_log_action_target": "action, target, at",
            "ix_audit_log_actor": "actor_username, seq",
        },
        {},
    ),
}


def _rebuild(table: str, *, partitioned: bool) -> None:
    column, pk, uniques, indexes, fks = TABLES[table]
    new = f"{table}_rebuilt"
    by = f" PARTITION BY RANGE ({column})" if partitioned else ""
    op.execute(f'CREATE TABLE "{new}" (LIKE "{table}" INCLUDING DEFAULTS){by}')
    if partitioned:
        last = datetime.now(partitions.CHINA).year + 1
        for year in range(partitions.FIRST_YEAR, last + 1):
            op.execute(
                f'CREATE TABLE "{partitions.partition_name(table, year)}" PARTITION OF "{new}"'
                f" FOR VALUES FROM ('{partitions.year_start(year)}') TO ('{partitions.year_start(year + 1)}')"
            )
        op.execute(f'CREATE TABLE "{partitions.partition_name(table, partitions.DEFAULT)}" PARTITION OF "{new}" DEFAULT')
    op.execute(f'INSERT INTO "{new}" SELECT * FROM "{table}"')  # noqa: S608
    op.execute(f'DROP TABLE "{table}"')
    op.execute(f'ALTER TABLE "{new}" RENAME TO "{table}"')
    extra = [column] if partitioned else []
    op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY ({", ".join(pk + extra)})')
    for name, cols in uniques.items():
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" UNIQUE ({", ".join(cols + extra)})')
    for name, cols in indexes.items():
        op.execute(f'CREATE INDEX "{name}" ON "{table}" ({cols})')
    for name, ref in fks.items():
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY {ref}')
    guarded = (table,) if partitioned else ()
    for sql in retention.create_statements("postgresql", (table,), partitioned=guarded):
        op.execute(sql)
    if partitioned:
        for year in range(partitions.FIRST_YEAR, last + 1):
            op.execute(partitions.create_partition_sql(table, year)[1])
        op.execute(partitions.create_default_sql(table)[1])


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _rebuild(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _rebuild(table, partitioned=False)
