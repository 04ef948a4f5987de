"""product images, parameters, favourites, comparison sheets

`listing_images`: each product photo's three sizes in the file store. `listings.params`: the
规格参数 as [name, value] pairs ('[]' for every listing so far). `favourites`: a buyer's 收藏 /
常购清单. `comparison_sheets`: a 比价单 frozen as it stood when it was made.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listing_images",
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("original_key", sa.String(length=200), nullable=False),
        sa.Column("display_key", sa.String(length=200), nullable=False),
        sa.Column("thumb_key", sa.String(length=200), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"], name=op.f("fk_listing_images_listing_id_listings")),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"], name=op.f("fk_listing_images_uploaded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_images")),
    )
    op.create_index(op.f("ix_listing_images_listing_id"), "listing_images", ["listing_id"], unique=False)
    op.create_table(
        "favourites",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"], name=op.f("fk_favourites_listing_id_listings")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_favourites_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favourites")),
        sa.UniqueConstraint("user_id", "listing_id", name=op.f("uq_favourites_user_id")),
    )
    op.create_index(op.f("ix_favourites_user_id"), "favourites", ["user_id"], unique=False)
    op.create_table(
        "comparison_sheets",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_comparison_sheets_org_id_organizations")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_comparison_sheets_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_sheets")),
        sa.UniqueConstraint("number", name=op.f("uq_comparison_sheets_number")),
    )
    op.create_index(op.f("ix_comparison_sheets_org_id"), "comparison_sheets", ["org_id"], unique=False)
    # a plain ADD COLUMN: listings is a kept table (mall.core.retention), never copied
    op.add_column("listings", sa.Column("params", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("listings", "params")
    op.drop_index(op.f("ix_comparison_sheets_org_id"), table_name="comparison_sheets")
    op.drop_table("comparison_sheets")
    op.drop_index(op.f("ix_favourites_user_id"), table_name="favourites")
    op.drop_table("favourites")
    op.drop_index(op.f("ix_listing_images_listing_id"), table_name="listing_images")
    op.drop_table("listing_images")
