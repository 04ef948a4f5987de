"""file store

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 08:00:00.000000

The database file store (`stored_files`, `stored_file_chunks`). Uploads of imports that are still
waiting move into it from `listing_imports.content` (finished imports no longer keep their upload);
export jobs name their file by its store key. Files of finished export jobs were on one host's disk
(`data/exports/`), where no other host reaches them: those jobs become `expired` (文件已清理), and
the files can be made again.
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

import mall.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK_BYTES = 1024 * 1024  # mall.core.files.CHUNK_BYTES

files_t = sa.table(
    "stored_files",
    sa.column("key", sa.String()),
    sa.column("content_type", sa.String()),
    sa.column("size", sa.BigInteger()),
    sa.column("chunks", sa.Integer()),
    sa.column("sha256", sa.String()),
    sa.column("complete", sa.Boolean()),
    sa.column("created_at", mall.core.db.UTCDateTime()),
)
chunks_t = sa.table(
    "stored_file_chunks",
    sa.column("file_key", sa.String()),
    sa.column("n", sa.Integer()),
    sa.column("data", sa.LargeBinary()),
)
imports_t = sa.table(
    "listing_imports",
    sa.column("id", sa.Uuid()),
    sa.column("filename", sa.String()),
    sa.column("status", sa.String()),
    sa.column("content", sa.LargeBinary()),
    sa.column("file_key", sa.String()),
)
exports_t = sa.table(
    "export_jobs",
    sa.column("status", sa.String()),
    sa.column("file_key", sa.String()),
    sa.column("file_path", sa.String()),
)


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_stored_files")),
    )
    op.create_table(
        "stored_file_chunks",
        sa.Column("file_key", sa.String(length=300), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_key"], ["stored_files.key"], name=op.f("fk_stored_file_chunks_file_key_stored_files")
        ),
        sa.PrimaryKeyConstraint("file_key", "n", name=op.f("pk_stored_file_chunks")),
    )

    with op.batch_alter_table("listing_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_key", sa.String(length=300), nullable=False, server_default=""))
    conn = op.get_bind()
    waiting = conn.execute(
        sa.select(imports_t.c.id, imports_t.c.filename).where(imports_t.c.status.in_(("queued", "running")))
    ).all()
    for import_id, filename in waiting:
        content = conn.execute(sa.select(imports_t.c.content).where(imports_t.c.id == import_id)).scalar_one()
        suffix = PurePosixPath(filename or "").suffix.lower()
        key = f"imports/{import_id}{suffix if suffix in ('.csv', '.xlsx') else ''}"
        pieces = [content[i : i + CHUNK_BYTES] for i in range(0, len(content), CHUNK_BYTES)]
        conn.execute(
            files_t.insert().values(
                key=key,
                content_type="application/octet-stream",
                size=len(content),
                chunks=len(pieces),
                sha256=hashlib.sha256(content).hexdigest(),
                complete=True,
                created_at=datetime.now(UTC),
            )
        )
        for n, piece in enumerate(pieces):
            conn.execute(chunks_t.insert().values(file_key=key, n=n, data=piece))
        conn.execute(imports_t.update().where(imports_t.c.id == import_id).values(file_key=key))
    with op.batch_alter_table("listing_imports", schema=None) as batch_op:
        batch_op.alter_column("file_key", server_default=None)
        batch_op.drop_column("content")

    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.alter_column("file_path", new_column_name="file_key")
    conn.execute(exports_t.update().where(exports_t.c.status == "done").values(status="expired", file_key=""))


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.alter_column("file_key", new_column_name="file_path")
    # The files are in the store, which the previous version does not read.
    conn.execute(exports_t.update().where(exports_t.c.status == "done").values(status="expired", file_path=""))

    with op.batch_alter_table("listing_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
    rows = conn.execute(sa.select(imports_t.c.id, imports_t.c.file_key)).all()
    for import_id, key in rows:
        pieces = (
            conn.execute(sa.select(chunks_t.c.data).where(chunks_t.c.file_key == key).order_by(chunks_t.c.n))
            .scalars()
            .all()
            if key
            else []
        )
        conn.execute(imports_t.update().where(imports_t.c.id == import_id).values(content=b"".join(pieces)))
    with op.batch_alter_table("listing_imports", schema=None) as batch_op:
        batch_op.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("file_key")

    op.drop_table("stored_file_chunks")
    op.drop_table("stored_files")
