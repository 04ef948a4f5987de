"""reviewed prices and cart prices

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listing_price_requests",
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("price", mall.core.db.Money(), nullable=False),
        sa.Column("reference_price", mall.core.db.Money(), nullable=False),
        sa.Column("reference_source", sa.String(length=300), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("requested_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_listing_price_requests_listing_id_listings")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_listing_price_requests_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_listing_price_requests_decided_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_price_requests")),
    )
    with op.batch_alter_table("listing_price_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_listing_price_requests_listing_id"), ["listing_id"], unique=False
        )
        batch_op.create_index(
            "ix_listing_price_requests_status_requested_at", ["status", "requested_at"], unique=False
        )

    # Items already in a cart keep the price they are listed at now: the buyer saw no other.
    with op.batch_alter_table("cart_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_price", mall.core.db.Money(), nullable=True))
    op.execute(
        "UPDATE cart_items SET unit_price = (SELECT listings.price FROM listings"
        " WHERE listings.id = cart_items.listing_id)"
    )
    with op.batch_alter_table("cart_items", schema=None) as batch_op:
        batch_op.alter_column("unit_price", existing_type=mall.core.db.Money(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("cart_items", schema=None) as batch_op:
        batch_op.drop_column("unit_price")
    with op.batch_alter_table("listing_price_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_listing_price_requests_status_requested_at")
        batch_op.drop_index(batch_op.f("ix_listing_price_requests_listing_id"))
    op.drop_table("listing_price_requests")
