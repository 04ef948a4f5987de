"""personal fields encrypted at rest; sole proprietors

Organizations' addresses and contact phones, users' names, what people write on an order (delivery
address, notes, reasons, the evaluation) and the order history's actors and details become
`EncryptedText` (mall.core.encryption): ciphertext, longer than the plain text, so each column is
replaced in three steps that never copy a table (others reference these tables, and SQLite would
copy them for an ALTER of a column's type):

1. expand: a TEXT column beside the old one;
2. backfill: every row's value encrypted into it, in batches of rows by primary key;
3. contract: the old column dropped, the new one renamed to its name.

Organizations get `is_sole_proprietor` (个体工商户), set for the suppliers registered so far whose
统一社会信用代码 says so (92…: registered by the market regulator, as a 个体工商户).

The upgrade needs the data keys (MALL_DATA_KEY, or the key file beside a SQLite database); the
downgrade decrypts with them. Everything runs in the migration's one transaction: a failure leaves
the database as it was.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-06 18:00:00.000000
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from mall.core.encryption import keys_for

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
# table -> (column, its plain type before this revision)
COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine[str]]]] = {
    "organizations": [("address", sa.String(length=300)), ("contact_phone", sa.String(length=40))],
    "users": [("display_name", sa.String(length=100))],
    "orders": [
        ("delivery_address", sa.String(length=300)),
        ("note", sa.String(length=500)),
        ("shipping_note", sa.String(length=300)),
        ("evaluation_comment", sa.String(length=500)),
        ("cancel_reason", sa.String(length=500)),
        ("cancel_request_reason", sa.String(length=500)),
    ],
    "order_events": [("actor_label", sa.String(length=100)), ("detail", sa.Text())],
}
NEW = "{}__new"


def _replace(
    table: str, columns: list[tuple[str, sa.types.TypeEngine[str]]], convert: Callable[[str], str], *, plain: bool
) -> None:
    """Each column replaced by a TEXT one (`plain`: one of its type before this revision) holding
    `convert(value)` of every non-empty value."""
    conn = op.get_bind()
    names = [c for c, _ in columns]
    # expand
    for name, old_type in columns:
        kind = old_type.compile(dialect=conn.dialect) if plain else "TEXT"
        op.execute(f"ALTER TABLE {table} ADD COLUMN {NEW.format(name)} {kind} NOT NULL DEFAULT ''")
    # backfill, BATCH rows at a time in primary-key order
    t = sa.table(table, sa.column("id", sa.Uuid()), *(sa.column(c, sa.Text()) for c in names))
    t_new = sa.table(table, sa.column("id", sa.Uuid()), *(sa.column(NEW.format(c), sa.Text()) for c in names))
    after = None
    while True:
        stmt = sa.select(t.c.id, *(t.c[c] for c in names)).order_by(t.c.id).limit(BATCH)
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        rows = conn.execute(stmt).all()
        changes = [
            {"b_id": row[0], **{NEW.format(c): convert(v) if v else "" for c, v in zip(names, row[1:], strict=True)}}
            for row in rows
        ]
        if changes:
            conn.execute(
                t_new.update()
                .where(t_new.c.id == sa.bindparam("b_id"))
                .values({NEW.format(c): sa.bindparam(NEW.format(c)) for c in names}),
                changes,
            )
        if len(rows) < BATCH:
            break
        after = rows[-1][0]
    # contract
    for name in names:
        op.drop_column(table, name)
        op.execute(f"ALTER TABLE {table} RENAME COLUMN {NEW.format(name)} TO {name}")


def upgrade() -> None:
    dialect = op.get_bind().dialect
    for table, columns in COLUMNS.items():
        # The keys are looked up at the first value: an empty database migrates without any.
        _replace(table, columns, lambda v: keys_for(dialect).encrypt(v), plain=False)

    op.add_column(
        "organizations",
        sa.Column("is_sole_proprietor", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE organizations SET is_sole_proprietor = (kind = 'supplier' AND credit_code LIKE '92%')"
    )


def downgrade() -> None:
    op.drop_column("organizations", "is_sole_proprietor")
    dialect = op.get_bind().dialect
    for table, columns in COLUMNS.items():
        _replace(table, columns, lambda v: keys_for(dialect).decrypt(v), plain=True)
