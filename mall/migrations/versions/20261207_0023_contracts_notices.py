"""signed e-contracts and public notices

`orders` gains the contract file (its key in the file store and SHA-256), what the contract says
(frozen at the first signature) and when each party signed it; the new state `signed` lies between `confirmed` and `contracted`. `signing_certificates`: the
mall's certificate authority and one certificate per organization (private keys encrypted at rest).
`notices` and `notice_head`: the public, append-only list of notices (合同公告, 履约验收公告).
All three are kept tables (mall.core.retention); notices are never updated either.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("signing_certificates", "notices", "notice_head")


def upgrade() -> None:
    when = mall.core.db.UTCDateTime(timezone=True)
    op.add_column("orders", sa.Column("contract_file_key", sa.String(length=200), nullable=True))
    op.add_column("orders", sa.Column("contract_sha256", sa.String(length=64), nullable=True))
    op.add_column("orders", sa.Column("contract_document", sa.JSON(), nullable=True))
    op.add_column("orders", sa.Column("supplier_signed_at", when, nullable=True))
    op.add_column("orders", sa.Column("buyer_signed_at", when, nullable=True))
    op.add_column("orders", sa.Column("signed_at", when, nullable=True))
    op.create_table(
        "signing_certificates",
        sa.Column("holder", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(length=400), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("not_after", when, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_signing_certificates_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_certificates")),
        sa.UniqueConstraint("holder", name=op.f("uq_signing_certificates_holder")),
    )
    op.create_table(
        "notices",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("event_at", when, nullable=False),
        sa.Column("due_at", when, nullable=False),
        sa.Column("published_at", when, nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("corrects_seq", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notices")),
        sa.UniqueConstraint("id", name=op.f("uq_notices_id")),
        sa.UniqueConstraint("source_key", name=op.f("uq_notices_source_key")),
    )
    for column in ("kind", "order_id", "region_code", "published_at"):
        op.create_index(op.f(f"ix_notices_{column}"), "notices", [column], unique=False)
    op.create_table(
        "notice_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_head")),
    )
    head = sa.table("notice_head", sa.column("id"), sa.column("last_seq"))
    op.bulk_insert(head, [{"id": 1, "last_seq": 0}])
    for sql in retention.create_statements(op.get_bind().dialect.name, TABLES):
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        for name in retention.trigger_names(table):
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))
    op.drop_table("notice_head")
    for column in ("published_at", "region_code", "order_id", "kind"):
        op.drop_index(op.f(f"ix_notices_{column}"), table_name="notices")
    op.drop_table("notices")
    op.drop_table("signing_certificates")
    for column in ("signed_at", "buyer_signed_at", "supplier_signed_at", "contract_document", "contract_sha256", "contract_file_key"):
        op.drop_column("orders", column)
