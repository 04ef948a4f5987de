"""price watch oversight cases

Price monitoring: the supplier's declared e-commerce price on listings; price alerts (kept: the
evidence of what the center asked and decided), market statistics per brand and model, the per-品目
summary and the sweeps. Oversight cases and their history (kept, never deleted).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 13:12:31.393249
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
import mall.core.encryption
from mall.core import retention

KEPT = ("price_alerts", "oversight_cases", "oversight_case_events")

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_stats",
        sa.Column("brand_key", sa.String(length=100), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("p25", mall.core.db.Money(), nullable=False),
        sa.Column("median", mall.core.db.Money(), nullable=False),
        sa.Column("p75", mall.core.db.Money(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("computed_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("brand_key", "model_key", name=op.f("pk_price_stats")),
    )
    op.create_table(
        "price_sweeps",
        sa.Column("started_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("listings", sa.Integer(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("refreshed", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_sweeps")),
    )
    with op.batch_alter_table("price_sweeps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_price_sweeps_started_at"), ["started_at"], unique=False)

    op.create_table(
        "price_watch_summary",
        sa.Column("category_class", sa.String(length=16), nullable=False),
        sa.Column("monitored", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("computed_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("category_class", name=op.f("pk_price_watch_summary")),
    )
    op.create_table(
        "oversight_cases",
        sa.Column("case_no", sa.String(length=24), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("buyer_org_id", sa.Uuid(), nullable=True),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=True),
        sa.Column("party_org_id", sa.Uuid(), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("still_hit", sa.Boolean(), nullable=False),
        sa.Column("opened_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_hit_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("explain_due_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("explanation", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("explained_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("explained_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decision_note", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["buyer_org_id"], ["organizations.id"], name=op.f("fk_oversight_cases_buyer_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["party_org_id"], ["organizations.id"], name=op.f("fk_oversight_cases_party_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_org_id"],
            ["organizations.id"],
            name=op.f("fk_oversight_cases_supplier_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oversight_cases")),
        sa.UniqueConstraint("case_no", name=op.f("uq_oversight_cases_case_no")),
        sa.UniqueConstraint("rule", "subject_key", name=op.f("uq_oversight_cases_rule")),
    )
    with op.batch_alter_table("oversight_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oversight_cases_buyer_org_id"), ["buyer_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oversight_cases_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_oversight_cases_party_org_id"), ["party_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oversight_cases_rule"), ["rule"], unique=False)
        batch_op.create_index("ix_oversight_cases_status_region", ["status", "region_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_oversight_cases_supplier_org_id"), ["supplier_org_id"], unique=False
        )

    op.create_table(
        "oversight_case_events",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_label", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("detail", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_oversight_case_events_actor_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["oversight_cases.id"], name=op.f("fk_oversight_case_events_case_id_oversight_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oversight_case_events")),
    )
    with op.batch_alter_table("oversight_case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oversight_case_events_case_id"), ["case_id"], unique=False)

    op.create_table(
        "price_alerts",
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("category_code", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("price", mall.core.db.Money(), nullable=False),
        sa.Column("reference", mall.core.db.Money(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("opened_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("asked_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("asked_by", sa.Uuid(), nullable=True),
        sa.Column("answer_due_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("answered_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Uuid(), nullable=True),
        sa.Column("closed_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Uuid(), nullable=True),
        sa.Column("close_note", sa.String(length=300), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_price_alerts_listing_id_listings")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_org_id"],
            ["organizations.id"],
            name=op.f("fk_price_alerts_supplier_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_alerts")),
    )
    with op.batch_alter_table("price_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_price_alerts_listing_id"), ["listing_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_price_alerts_region_code"), ["region_code"], unique=False)
        batch_op.create_index("ix_price_alerts_status_opened", ["status", "opened_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_price_alerts_supplier_org_id"), ["supplier_org_id"], unique=False
        )
        batch_op.create_index(
            "uq_price_alerts_live",
            ["listing_id", "kind"],
            unique=True,
            sqlite_where=sa.text("status <> 'closed'"),
            postgresql_where=sa.text("status <> 'closed'"),
        )

    # Plain ADD COLUMN (SQLite's batch mode would copy the table other tables point at).
    op.add_column("listings", sa.Column("ecommerce_price", mall.core.db.Money(), nullable=True))
    op.add_column(
        "listings", sa.Column("ecommerce_url", sa.String(length=500), nullable=False, server_default="")
    )
    op.add_column("listings", sa.Column("ecommerce_captured_on", sa.Date(), nullable=True))

    for sql in retention.create_statements(op.get_bind().dialect.name, KEPT):
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in KEPT:
        for name in retention.trigger_names(table):  # (the guard's function stays: other tables use it)
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))
    for column in ("ecommerce_captured_on", "ecommerce_url", "ecommerce_price"):
        op.drop_column("listings", column)

    with op.batch_alter_table("price_alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_price_alerts_live",
            sqlite_where=sa.text("status <> 'closed'"),
            postgresql_where=sa.text("status <> 'closed'"),
        )
        batch_op.drop_index(batch_op.f("ix_price_alerts_supplier_org_id"))
        batch_op.drop_index("ix_price_alerts_status_opened")
        batch_op.drop_index(batch_op.f("ix_price_alerts_region_code"))
        batch_op.drop_index(batch_op.f("ix_price_alerts_listing_id"))

    op.drop_table("price_alerts")
    with op.batch_alter_table("oversight_case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oversight_case_events_case_id"))

    op.drop_table("oversight_case_events")
    with op.batch_alter_table("oversight_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oversight_cases_supplier_org_id"))
        batch_op.drop_index("ix_oversight_cases_status_region")
        batch_op.drop_index(batch_op.f("ix_oversight_cases_rule"))
        batch_op.drop_index(batch_op.f("ix_oversight_cases_party_org_id"))
        batch_op.drop_index(batch_op.f("ix_oversight_cases_opened_at"))
        batch_op.drop_index(batch_op.f("ix_oversight_cases_buyer_org_id"))

    op.drop_table("oversight_cases")
    op.drop_table("price_watch_summary")
    with op.batch_alter_table("price_sweeps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_sweeps_started_at"))

    op.drop_table("price_sweeps")
    op.drop_table("price_stats")
