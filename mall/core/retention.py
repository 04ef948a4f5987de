"""The records kept fifteen years, guarded by the database itself (docs/operations.md, "Retention").

政府采购法 第四十二条 keeps the procurement files at least fifteen years. The mall has no code path
that deletes them; the guard makes the database refuse it too, from any client: a `DELETE` (and a
`TRUNCATE` on PostgreSQL) on a kept table, and an `UPDATE` of the two hash-chained logs, fail
unless the one row of `retention_guard` says `maintenance` in the same transaction.

Opening the guard is for what the law itself orders (a court, a records-destruction decision at the
end of the period) and for the test suite's saved states; it is done in one transaction that closes
it again before COMMIT (`opened`), so no other session ever sees it open. A person who owns the
schema can still drop a trigger: the guard stops mistakes and every code path, and the hash chains
with their witness (`mall ledger verify --witness`, `mall audit verify`) show what anyone did around it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# Never deleted (the first table of docs/operations.md, "Retention").
KEPT = (
    "disclosure_records",
    "ledger_head",
    "orders",
    "order_lines",
    "order_events",
    "order_claims",
    "order_deliveries",
    "order_delivery_lines",
    "acceptance_reports",
    "acceptance_report_lines",
    "order_invoices",
    "order_payments",
    "checkouts",
    "budget_lines",
    "budget_movements",
    "budget_adjustments",
    "procedures",
    "procedure_items",
    "procedure_participants",
    "procedure_invites",
    "offers",
    "agreements",
    "agreement_suppliers",
    "agreement_products",
    "designations",
    "service_price_items",
    "listings",
    "listing_price_changes",
    "listing_price_requests",
    "listing_imports",
    "organizations",
    "users",
    "audit_log",
    "audit_head",
    "outbox",
    "signing_certificates",
    "notices",
    "notice_head",
    "price_alerts",
    "oversight_cases",
    "oversight_case_events",
    "sanctions",
    "violation_reports",
    "credit_events",
    "credit_blacklist_imports",
    "credit_blacklist",
    "credit_checks",
    "sme_declarations",
)
# Never changed either: each row is hashed into the next (the logs), or published as it stands
# (notices: a correction is a new notice; a credit event: the fact behind a score, as it happened).
APPEND_ONLY = (
    "disclosure_records",
    "audit_log",
    "notices",
    "credit_events",
    "credit_checks",
    "sme_declarations",
)

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION mall_retention_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF COALESCE((SELECT maintenance FROM retention_guard WHERE id = 1), false) THEN
        IF TG_LEVEL = 'ROW' THEN  -- the partitioned tables' guard (mall.core.partitions)
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END IF;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '依法保存的记录不可删除或改写：% %（政府采购法第四十二条，保存十五年）', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'P0001', HINT = 'mall retention guard (docs/operations.md)';
END
$$"""


def trigger_names(table: str) -> list[str]:
    """The guard's triggers on `table`, as named in the database."""
    names = [f"keep_{table}_delete"]
    if table in APPEND_ONLY:
        names.append(f"keep_{table}_update")
    return names


def create_statements(
    dialect: str, tables: tuple[str, ...] = KEPT, *, partitioned: tuple[str, ...] = ()
) -> list[str]:
    """DDL for the guard's triggers on `tables` (the `retention_guard` table exists already).

    PostgreSQL: statement triggers, one check per statement (BEFORE TRUNCATE too); on a partitioned
    table (`partitioned`) row triggers, which its partitions inherit (a statement on a partition
    itself does not fire its parent's statement triggers), and a TRUNCATE guard of its own on the
    parent and on each partition (mall.core.partitions). SQLite has only row triggers; the check
    is one primary-key read per row."""
    out: list[str] = []
    if dialect == "postgresql":
        out.append(PG_FUNCTION)
    for table in tables:
        ops = ["DELETE", *(["UPDATE"] if table in APPEND_ONLY else [])]
        for op, name in zip(ops, trigger_names(table), strict=True):
            if dialect == "postgresql" and table in partitioned:
                out.append(
                    f'CREATE TRIGGER "{name}" BEFORE {op} ON "{table}"'
                    " FOR EACH ROW EXECUTE FUNCTION mall_retention_guard()"
                )
                if op == "DELETE":
                    out.append(
                        f'CREATE TRIGGER "keep_{table}_truncate" BEFORE TRUNCATE ON "{table}"'
                        " FOR EACH STATEMENT EXECUTE FUNCTION mall_retention_guard()"
                    )
            elif dialect == "postgresql":
                events = "DELETE OR TRUNCATE" if op == "DELETE" else op
                out.append(
                    f'CREATE TRIGGER "{name}" BEFORE {events} ON "{table}"'
                    " FOR EACH STATEMENT EXECUTE FUNCTION mall_retention_guard()"
                )
            else:
                message = f"依法保存的记录不可删除或改写：{op} {table}（政府采购法第四十二条，保存十五年）"
                out.append(
                    f'CREATE TRIGGER "{name}" BEFORE {op} ON "{table}" FOR EACH ROW'  # noqa: S608
                    " WHEN (SELECT maintenance FROM retention_guard WHERE id = 1) IS NOT 1"
                    f" BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
    return out


def drop_statements(dialect: str, tables: tuple[str, ...] = KEPT) -> list[str]:
    out = [
        f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if dialect == "postgresql" else "")
        for table in tables
        for name in trigger_names(table)
    ]
    if dialect == "postgresql":
        out.append("DROP FUNCTION IF EXISTS mall_retention_guard()")
    return out


OPEN = "UPDATE retention_guard SET maintenance = true WHERE id = 1"
CLOSE = "UPDATE retention_guard SET maintenance = false WHERE id = 1"


@asynccontextmanager
async def opened(conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """The guard open inside the transaction of `conn` (begun already), closed again before it ends:
    other sessions never see it open (an error rolls the whole transaction back, the opening too)."""
    await conn.execute(text(OPEN))
    yield conn
    await conn.execute(text(CLOSE))


async def missing(conn: AsyncConnection) -> dict[str, list[str]]:
    """The guard's triggers missing from the database, by table (empty when all are there)."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    have = set((await conn.execute(text(sql))).scalars())
    missing = {t: [n for n in trigger_names(t) if n not in have] for t in KEPT}
    return {t: names for t, names in missing.items() if names}
