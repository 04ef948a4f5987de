"""credit

Supplier credit: the events behind a score (kept: never deleted nor changed) and each supplier's
current score. Events count from this revision on; buyers' evaluations count from the orders
themselves, back to the start of the window.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 19:19:53.987741
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

KEPT = ("credit_events",)

revision: str = '0028'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credit_events',
    sa.Column('supplier_org_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('at', mall.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source_kind', sa.String(length=12), nullable=False),
    sa.Column('source_id', sa.Uuid(), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['supplier_org_id'], ['organizations.id'], name=op.f('fk_credit_events_supplier_org_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_events')),
    sa.UniqueConstraint('supplier_org_id', 'kind', 'source_id', name=op.f('uq_credit_events_supplier_org_id'))
    )
    with op.batch_alter_table('credit_events', schema=None) as batch_op:
        batch_op.create_index('ix_credit_events_supplier_at', ['supplier_org_id', 'at'], unique=False)
        batch_op.create_index('ix_credit_events_kind_source', ['kind', 'source_id'], unique=False)

    op.create_table('supplier_credit',
    sa.Column('supplier_org_id', sa.Uuid(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('grade', sa.String(length=2), nullable=False),
    sa.Column('version', sa.String(length=16), nullable=False),
    sa.Column('evaluations', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('computed_at', mall.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supplier_org_id'], ['organizations.id'], name=op.f('fk_supplier_credit_supplier_org_id_organizations')),
    sa.PrimaryKeyConstraint('supplier_org_id', name=op.f('pk_supplier_credit'))
    )
    for sql in retention.create_statements(op.get_bind().dialect.name, KEPT):
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in KEPT:
        for name in retention.trigger_names(table):  # (the guard's function stays: other tables use it)
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))
    op.drop_table('supplier_credit')
    with op.batch_alter_table('credit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_events_kind_source')
        batch_op.drop_index('ix_credit_events_supplier_at')

    op.drop_table('credit_events')
