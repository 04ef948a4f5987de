"""credit checks

The blacklist the system administrator imports (its imports and entries, kept) and the evidence of
every credit check at registration, at each order and at an import (kept, never changed).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 19:34:35.871959
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

KEPT = ("credit_blacklist_imports", "credit_blacklist", "credit_checks")


revision: str = '0029'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credit_checks',
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.String(length=12), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('checker', sa.String(length=20), nullable=False),
    sa.Column('result', sa.String(length=8), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('checked_at', mall.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('checked_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_credit_checks_org_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_checks'))
    )
    with op.batch_alter_table('credit_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_checks_credit_code'), ['credit_code'], unique=False)
        batch_op.create_index('ix_credit_checks_org_at', ['org_id', 'checked_at'], unique=False)
        batch_op.create_index('ix_credit_checks_org_checker_at', ['org_id', 'checker', 'checked_at'], unique=False)

    op.create_table('credit_blacklist_imports',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('data_date', sa.Date(), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('imported_at', mall.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['imported_by'], ['users.id'], name=op.f('fk_credit_blacklist_imports_imported_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_blacklist_imports'))
    )
    op.create_table('credit_blacklist',
    sa.Column('import_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('listed_on', sa.Date(), nullable=False),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('superseded_at', mall.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['credit_blacklist_imports.id'], name=op.f('fk_credit_blacklist_import_id_credit_blacklist_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_blacklist'))
    )
    with op.batch_alter_table('credit_blacklist', schema=None) as batch_op:
        batch_op.create_index('ix_credit_blacklist_code_superseded', ['credit_code', 'superseded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_blacklist_import_id'), ['import_id'], unique=False)

    for sql in retention.create_statements(op.get_bind().dialect.name, KEPT):
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in KEPT:
        for name in retention.trigger_names(table):  # (the guard's function stays: other tables use it)
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))
    with op.batch_alter_table('credit_blacklist', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_blacklist_import_id'))
        batch_op.drop_index('ix_credit_blacklist_code_superseded')

    op.drop_table('credit_blacklist')
    op.drop_table('credit_blacklist_imports')
    with op.batch_alter_table('credit_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_checks_org_checker_at')
        batch_op.drop_index('ix_credit_checks_org_at')
        batch_op.drop_index(batch_op.f('ix_credit_checks_credit_code'))

    op.drop_table('credit_checks')
