"""The cart table: what a buyer has put aside, at the price it saw."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mall.core.db import Base, IdMixin, Money, Quantity, UTCDateTime


class CartItem(IdMixin, Base):
    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("user_id", "listing_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    # The unit price the buyer saw when it put the item in the cart (or accepted since): a higher
    # price at checkout needs the buyer's consent.
    unit_price: Mapped[Decimal] = mapped_column(Money)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
