"""The certificates contracts are signed with: the mall's own certificate authority and one
certificate per organization. Never one key signing for two parties."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, UTCDateTime
from mall.core.encryption import EncryptedText

CA_HOLDER = "ca"


class SigningCertificate(IdMixin, Base):
    """A certificate and its private key (encrypted at rest). `holder` is "ca" for the mall's
    certificate authority, otherwise the organization's id: one per holder. Kept: a signed contract
    is checked against them for fifteen years."""

    __tablename__ = "signing_certificates"

    holder: Mapped[str] = mapped_column(String(40), unique=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    subject: Mapped[str] = mapped_column(String(400))
    serial: Mapped[str] = mapped_column(String(64))
    cert_pem: Mapped[str] = mapped_column(Text)
    key_pem: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
