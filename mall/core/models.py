"""The kernel's tables: organizations and users, sign-in, the outbox, the audit log and the file store.

The business areas keep their own: `mall/budgets/models.py`, `mall/cart/models.py`,
`mall/orders/models.py`, `mall/ledger/models.py`, `catalog/models.py`, `bidding/models.py`."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.core.db import Base, IdMixin, UTCDateTime, new_id
from mall.core.encryption import EncryptedText
from mall.core.labels import Labeled


class OrgKind(Labeled):
    BUDGET_UNIT = "budget_unit", "预算单位"
    SUPPLIER = "supplier", "供应商"
    CENTER = "center", "集中采购机构"
    REGULATOR = "regulator", "财政监管部门"
    PLATFORM = "platform", "平台运营方"


ORG_KIND_LABELS: dict[str, str] = OrgKind.labels()


class OrgStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class JobStatus(enum.StrEnum):
    """An export or an import: queued → running → done | failed; a done export's file expires."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


class Organization(IdMixin, Base):
    """A registered party. Its name and credit code are public by law (they name it in every published
    deal); its address and contact phone are encrypted at rest (docs/privacy.md): a sole proprietor's
    (个体工商户) are a person's, and a phone is usually someone's own."""

    __tablename__ = "organizations"

    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    address: Mapped[str] = mapped_column(EncryptedText, default="")  # at most fields.ADDRESS_MAX
    region_code: Mapped[str] = mapped_column(String(6))
    contact_phone: Mapped[str] = mapped_column(EncryptedText, default="")  # at most fields.PHONE_MAX
    # 个体工商户: a supplier that is a natural person trading under a registration (credit code 92…);
    # its published deals name it and its credit code, never its address (docs/privacy.md).
    is_sole_proprietor: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=OrgStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdminRole(Labeled):
    """The three administrators of the platform (三员分立). A user holds at most one: one column."""

    SYSADMIN = "sysadmin", "系统管理员"
    SECADMIN = "secadmin", "安全管理员"
    AUDITOR = "auditor", "审计管理员"


ADMIN_ROLE_LABELS: dict[str, str] = AdminRole.labels()
# The database refuses any other value (migration 0014 writes the same constraint).
ADMIN_ROLE_CHECK = "admin_role IN ('sysadmin', 'secadmin', 'auditor')"


class User(IdMixin, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(ADMIN_ROLE_CHECK, name="admin_role"),)

    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(EncryptedText)  # a person's name, at most fields.SHORT_MAX
    password_hash: Mapped[str] = mapped_column(String(200))
    # Only for users of the platform operator: one of AdminRole, or None. One column, so no account
    # can hold two of the administrators' roles.
    admin_role: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set by a password reset: until the user sets a password of their own they can do nothing else.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on password change or forced logout: invalidates every session cookie at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The second factor (TOTP): the secret encrypted with a key derived from MALL_SECRET_KEY
    # (mall.core.totp); in force once confirmed with a code (`totp_enabled_at`). The last time step
    # a code was accepted for: a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    org: Mapped[Organization | None] = relationship(lazy="joined")


class ApiToken(IdMixin, Base):
    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most every few minutes per token (see tokens.LAST_USE_EVERY), not on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(IdMixin, Base):
    """Failed logins still remembered: per (account, client address) with kind "account", or per
    client address across all accounts with kind "address" (username empty)."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("kind", "username", "ip"),)

    kind: Mapped[str] = mapped_column(String(10))  # account | address
    username: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # For an address: when its counting window began.
    first_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Outbox(Base):
    """Work that must happen after a commit; written in the same transaction as the business rows."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    topic: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(IdMixin, Base):
    """The security audit log (安全审计): append-only and hash-chained, written only through
    `mall.core.audit.record` in the transaction of the action it records. `seq` runs 1, 2, 3…
    without gaps; `hash` is the SHA-256 of the canonical JSON of the entry with `prev_hash`."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_target", "action", "target", "at"),
        Index("ix_audit_log_actor", "actor_username", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_username: Mapped[str] = mapped_column(String(64), default="")
    actor_role: Mapped[str] = mapped_column(String(20), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40))
    succeeded: Mapped[bool] = mapped_column(Boolean, default=True)
    target_kind: Mapped[str] = mapped_column(String(30), default="")
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    # Canonical JSON of what changed, before and after (never a password, hash, token or secret).
    before_state: Mapped[str | None] = mapped_column(Text)
    after_state: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last audit sequence number and hash. Locked, last of all locks, by each append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class RetentionGuard(Base):
    """One row: whether the retention guard (mall.core.retention) lets this transaction delete or
    rewrite kept records. Opened and closed again inside one transaction, never left open."""

    __tablename__ = "retention_guard"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)


class StoredFile(Base):
    """A file of the database file store (mall.files): visible once `complete`, its content in chunks."""

    __tablename__ = "stored_files"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # e.g. exports/<uuid>.csv
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    complete: Mapped[bool] = mapped_column(Boolean, default=False)  # False while being written
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredFileChunk(Base):
    """One piece (at most mall.core.files.CHUNK_BYTES) of a stored file, numbered from 0."""

    __tablename__ = "stored_file_chunks"

    file_key: Mapped[str] = mapped_column(ForeignKey("stored_files.key"), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
