"""hash-chained audit log, three administrators' roles, second factor

The audit log becomes append-only and hash-chained: every entry gets a gap-free `seq`, the actor's
username and role, whether it succeeded, a target kind, what changed before and after, and
`prev_hash` / `hash`; `audit_head` holds the last seq and hash. Existing entries are numbered in
the order they were made (time, then id) and chained here, with the actor's username from the
users table and no role (who held what role before this release is not recorded).

The single `is_admin` flag becomes `users.admin_role`, one of sysadmin | secadmin | auditor
(三员分立): one column, so no account can hold two, and a CHECK constraint refuses anything else.
Every user of the platform operator had the administrator's powers; they become system
administrators, and the security and audit administrators are granted afterwards (`mall
grant-role`, then by the security administrator). Users get the columns of the second factor.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db

# The chain of this release. A later change of what an entry's hash covers comes with a migration
# of its own that chains the log again with the functions of its release.
from mall.core.audit import GENESIS, chain_fields, chain_hash

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE_CHECK = "admin_role IN ('sysadmin', 'secadmin', 'auditor')"
FAILED = ("login_failed", "password_change_failed")
TARGET_KINDS = {
    "org_registered": "organization",
    "user_created": "user",
    "budget_line_added": "budget_line",
    "login_throttle_cleared": "login_throttle",
    "demo_seeded": "system",
}


def _target_kind(action: str) -> str:
    if action in TARGET_KINDS:
        return TARGET_KINDS[action]
    if action.startswith("listing_"):
        return "listing"
    if action.startswith("token_"):
        return "token"
    if action.startswith(("login", "logout", "password")):
        return "user"
    return ""


def _chain_existing() -> tuple[int, str]:
    conn = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Uuid()),
        sa.column("at", mall.core.db.UTCDateTime()),
        sa.column("actor_user_id", sa.Uuid()),
        sa.column("action", sa.String()),
        sa.column("target", sa.String()),
        sa.column("detail", sa.Text()),
        sa.column("ip", sa.String()),
        sa.column("seq", sa.BigInteger()),
        sa.column("actor_username", sa.String()),
        sa.column("succeeded", sa.Boolean()),
        sa.column("target_kind", sa.String()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("username", sa.String()))
    names = {uid: name for uid, name in conn.execute(sa.select(users.c.id, users.c.username))}
    rows = conn.execute(
        sa.select(
            log.c.id, log.c.at, log.c.actor_user_id, log.c.action, log.c.target, log.c.detail, log.c.ip
        ).order_by(log.c.at, log.c.id)
    ).all()
    prev, seq, changes = GENESIS, 0, []
    for entry_id, at, actor, action, target, detail, ip in rows:
        seq += 1
        values = {
            "seq": seq,
            "actor_username": (names.get(actor, "") if actor else "")[:64],
            "succeeded": action not in FAILED,
            "target_kind": _target_kind(action),
            "prev_hash": prev,
        }
        fields = chain_fields(
            entry_id=entry_id,
            at=at,
            actor_user_id=actor,
            actor_role="",
            ip=ip or "",
            action=action,
            target=target or "",
            detail=detail or "",
            before_state=None,
            after_state=None,
            **values,
        )
        prev = values["hash"] = chain_hash(fields)
        changes.append({"b_id": entry_id, **values})
    if changes:
        conn.execute(
            log.update()
            .where(log.c.id == sa.bindparam("b_id"))
            .values(
                seq=sa.bindparam("seq"),
                actor_username=sa.bindparam("actor_username"),
                succeeded=sa.bindparam("succeeded"),
                target_kind=sa.bindparam("target_kind"),
                prev_hash=sa.bindparam("prev_hash"),
                hash=sa.bindparam("hash"),
            ),
            changes,
        )
    return seq, prev


def upgrade() -> None:
    # Users: one administrator's role instead of the flag (inline CHECK: SQLite adds it with the
    # column, and drops it with the column, without copying a table that others reference).
    op.execute(f"ALTER TABLE users ADD COLUMN admin_role VARCHAR(20) CONSTRAINT ck_users_admin_role CHECK ({ROLE_CHECK})")
    op.execute(
        "UPDATE users SET admin_role = 'sysadmin' "
        "WHERE org_id IN (SELECT id FROM organizations WHERE kind = 'platform')"
    )
    op.drop_column("users", "is_admin")
    op.add_column("users", sa.Column("totp_secret", sa.String(length=200), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", mall.core.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))

    # The audit log: new columns, the existing entries chained, then the constraints.
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("actor_username", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("actor_role", sa.String(length=20), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("succeeded", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("target_kind", sa.String(length=30), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("before_state", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("after_state", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    last_seq, last_hash = _chain_existing()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        for name, kind in (
            ("actor_username", sa.String(length=64)),
            ("actor_role", sa.String(length=20)),
            ("succeeded", sa.Boolean()),
            ("target_kind", sa.String(length=30)),
        ):
            batch_op.alter_column(name, existing_type=kind, server_default=None)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_log_seq"), ["seq"])
        batch_op.create_index("ix_audit_log_actor", ["actor_username", "seq"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    head = sa.table("audit_head", sa.column("id"), sa.column("last_seq"), sa.column("last_hash"))
    op.bulk_insert(head, [{"id": 1, "last_seq": last_seq, "last_hash": last_hash}])


def downgrade() -> None:
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_actor")
        batch_op.drop_constraint(batch_op.f("uq_audit_log_seq"), type_="unique")
        for name in (
            "hash",
            "prev_hash",
            "after_state",
            "before_state",
            "target_kind",
            "succeeded",
            "actor_role",
            "actor_username",
            "seq",
        ):
            batch_op.drop_column(name)

    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "totp_enabled_at")
    op.drop_column("users", "totp_secret")
    op.add_column("users", sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE users SET is_admin = (admin_role IS NOT NULL)")
    op.drop_column("users", "admin_role")  # its CHECK constraint goes with it
