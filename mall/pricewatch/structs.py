"""Request and response shapes of the price monitoring API (msgspec Structs). Money travels as
decimal strings."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

from catalog.categories import name_of
from mall.core.clock import rfc3339
from mall.core.fields import Reason
from mall.core.money import money_str
from mall.pricewatch.models import ALERT_KIND_LABELS, ALERT_STATUS_LABELS, PriceStat, PriceWatchSummary
from mall.pricewatch.service import ANSWER_MAX, AlertRow

AnswerText = Annotated[
    str, msgspec.Meta(max_length=ANSWER_MAX, description=f"供应商的说明（2至{ANSWER_MAX}个字符，可换行）")
]


class AskIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Reason = ""  # what the center wants explained (optional; in the notice to the supplier)


class FreezeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason = ""  # required (reason_required)


class CloseIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Reason = ""  # required (note_required)


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    answer: AnswerText = ""  # required (answer_required); control characters refused (text_invalid)


class PriceAlertOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    kind_label: str
    status: str
    status_label: str
    listing_id: uuid.UUID
    listing_name: str
    listing_status: str
    brand: str
    spec_model: str
    supplier_org_id: uuid.UUID
    supplier_name: str
    category_code: str
    category_name: str
    region_code: str
    price: str
    reference: str | None
    detail: dict[str, Any]
    opened_at: str
    last_seen_at: str
    asked_at: str | None
    answer_due_at: str | None
    answer: str
    answered_at: str | None
    closed_at: str | None
    close_note: str

    @classmethod
    def of(cls, r: AlertRow) -> PriceAlertOut:
        a = r.alert

        def at(value: Any) -> str | None:
            return rfc3339(value) if value is not None else None

        return cls(
            a.id,
            a.kind,
            ALERT_KIND_LABELS.get(a.kind, a.kind),
            a.status,
            ALERT_STATUS_LABELS.get(a.status, a.status),
            a.listing_id,
            r.listing_name,
            r.listing_status,
            r.brand,
            r.spec_model,
            a.supplier_org_id,
            r.supplier_name,
            a.category_code,
            name_of(a.category_code),
            a.region_code,
            money_str(a.price),
            money_str(a.reference) if a.reference is not None else None,
            dict(a.detail or {}),
            rfc3339(a.opened_at),
            rfc3339(a.last_seen_at),
            at(a.asked_at),
            at(a.answer_due_at),
            a.answer,
            at(a.answered_at),
            at(a.closed_at),
            a.close_note,
        )


class PriceAlertPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[PriceAlertOut]


class MarketOut(msgspec.Struct):
    """The mall's deal prices of a brand and model over the window (none: no deals)."""

    samples: int
    p25: str
    median: str
    p75: str
    window_days: int
    computed_at: str

    @classmethod
    def of(cls, s: PriceStat) -> MarketOut:
        return cls(
            s.samples,
            money_str(s.p25),
            money_str(s.median),
            money_str(s.p75),
            s.window_days,
            rfc3339(s.computed_at),
        )


class ListingMarketOut(msgspec.Struct):
    listing_id: uuid.UUID
    price: str
    market: MarketOut | None


class ClassOut(msgspec.Struct):
    category_class: str
    category_name: str
    monitored: int
    flagged: int
    flagged_share: str  # percent, one decimal: "3.5"

    @classmethod
    def of(cls, r: PriceWatchSummary) -> ClassOut:
        share = f"{(r.flagged * 100 / r.monitored):.1f}" if r.monitored else "0.0"
        return cls(r.category_class, class_name(r.category_class), r.monitored, r.flagged, share)


def class_name(cls: str) -> str:
    return name_of(cls.ljust(9, "0")) or name_of(cls) or cls


class MonitoringOut(msgspec.Struct):
    last_sweep_at: str | None
    monitored: int
    flagged: int
    classes: list[ClassOut]
