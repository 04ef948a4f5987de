"""The message centre's tables: one row per notification per user, and each user's preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, UTCDateTime
from mall.core.encryption import EncryptedText
from mall.core.labels import Labeled


class Kind(Labeled):
    """What a notification is about (its label is the message centre's tag)."""

    ORDER_TO_CONFIRM = "order_to_confirm", "待确认订单"
    CONTRACT_TO_SIGN = "contract_to_sign", "待签合同"
    CONTRACT_TO_FILE = "contract_to_file", "待备案合同"
    TO_SHIP = "to_ship", "待发货"
    DELIVERY_TO_ACCEPT = "delivery_to_accept", "待验收"
    REDELIVER = "redeliver", "验收未通过"
    ACCEPTED = "accepted", "已验收"
    INVOICE_TO_CONFIRM = "invoice_to_confirm", "待确认发票"
    INVOICE_ANSWERED = "invoice_answered", "发票确认结果"
    PAYMENT = "payment", "付款"
    PAYMENT_DUE = "payment_due", "付款即将到期"
    CANCEL_REQUESTED = "cancel_requested", "取消申请"
    CANCELLED = "cancelled", "订单取消"
    CLAIM = "claim", "售后"
    LISTING_RETURNED = "listing_returned", "商品退回"
    INVITED = "invited", "报价邀请"
    OUTBID = "outbid", "竞价被超越"
    CASE_OPENED = "case_opened", "监管立案"
    PRICE_ALERT = "price_alert", "价格监测"
    SANCTION_DECIDED = "sanction_decided", "处理决定"


KIND_LABELS: dict[str, str] = Kind.labels()


class MailState(Labeled):
    """Whether a notification goes out by e-mail (and SMS): not at all, at once, in the daily digest,
    already sent (at least once), or refused by the mail server (a bad address)."""

    NONE = "none", "不发送"
    WAITING = "waiting", "待发送"
    DIGEST = "digest", "待汇总发送"
    SENT = "sent", "已发送"
    REFUSED = "refused", "邮件服务器拒收"  # the address was refused: never tried again


class Notification(IdMixin, Base):
    """One notice for one user. `key` makes it one: the same key is never stored twice for a user
    (the worker may turn the same outbox row into notifications any number of times)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_notifications_inbox", "user_id", "read_at", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(30))
    # What it is about ("order:<id>", "procedure:<id>", "listing:<id>"): an unread notice of the same
    # kind about the same thing makes a new one unnecessary where the kind says so (outbid).
    ref: Mapped[str] = mapped_column(String(80), default="")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(500), default="")
    link: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_state: Mapped[str] = mapped_column(String(10), default=MailState.NONE, index=True)
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Preferences(Base):
    """A user's choices: e-mail on or off (to the address given here), one mail per notice or a
    daily digest, and SMS (used only when an SMS adapter is configured). The address and the phone
    are personal data, encrypted at rest (docs/privacy.md)."""

    __tablename__ = "notification_prefs"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[str] = mapped_column(EncryptedText, default="")  # at most prefs.EMAIL_MAX
    email_on: Mapped[bool] = mapped_column(Boolean, default=False)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str] = mapped_column(EncryptedText, default="")  # at most fields.PHONE_MAX
    sms_on: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
