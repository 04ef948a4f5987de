"""Request and response shapes of the catalogue API (msgspec Structs). Money travels as decimal strings."""

from __future__ import annotations

import enum
import uuid

import msgspec

from catalog import policy
from catalog.models import PRICE_REQUEST_STATUS_LABELS, Category, Listing, PriceChange, PriceRequest
from mall.core import clock
from mall.core.clock import rfc3339
from mall.core.errors import InvalidInput
from mall.core.fields import (
    Amount,
    AmountText,
    Choice,
    DateText,
    Description,
    ListingCategoryCode,
    Model,
    Name,
    Params,
    PriceNote,
    QuantityText,
    Reason,
    ReferenceSource,
    RequiredShortText,
    ShortText,
    Unit,
    Url,
)
from mall.core.money import money_str, quantity_str


class ListingDraft(msgspec.Struct, forbid_unknown_fields=True):
    """A listing as a supplier writes it: the API's body, the page's form, a spreadsheet's row, and
    what the service checks (catalog.service.check_draft) before anything is stored."""

    name: Name
    brand: RequiredShortText
    spec_model: Model
    category_code: ListingCategoryCode
    unit: Unit
    # Checked by the service with the rest of the form (one message, code listing_invalid).
    price: AmountText
    reference_price: AmountText
    stock: QuantityText
    reference_source: ReferenceSource = ""
    description: Description = ""
    # 规格参数, one "名称：值" per line (catalog.media.parse_params); stored as pairs
    params: Params = ""
    # 电商比价 (optional): the price of the same product in an open e-commerce shop, the page (http or
    # https) and the day it was read (not in the future; required with the price). Checked by the service.
    ecommerce_price: AmountText = ""
    ecommerce_url: Url = ""
    ecommerce_captured_on: DateText = ""


class EcommerceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A live listing's declared e-commerce price, changed without a review (it is not the price it
    sells at): all three empty clear it."""

    ecommerce_price: AmountText = ""
    ecommerce_url: Url = ""
    ecommerce_captured_on: DateText = ""


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    """A listing's policy attributes (catalog.policy), changed without a review but audited: the
    节能产品 and 环境标志产品 certificates (number and expiry; both empty: none), and the origin with
    the import approval's reference for an imported product."""

    energy_cert_no: ShortText = ""
    energy_cert_until: DateText = ""
    eco_cert_no: ShortText = ""
    eco_cert_until: DateText = ""
    origin: Choice = "domestic"  # domestic | imported
    import_approval_ref: ShortText = ""


class ListingCreate(ListingDraft, forbid_unknown_fields=True):
    draft: bool = False  # true: keep as a draft instead of submitting for review


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: Choice  # approve | reject (anything else: 400 invalid_parameter, as the API promised)
    reason: Reason = ""  # required to reject (reason_required)
    # The price and reference the reviewer looked at (listing review only): approving is refused
    # with 409 listing_changed if the supplier changed them since.
    price: Amount | None = None
    reference_price: Amount | None = None

    def approves(self) -> bool:
        """True to approve, False to reject; any other decision is refused (400 invalid_parameter)."""
        if self.decision not in tuple(Decision):
            raise InvalidInput("decision 应为 approve 或 reject", code="invalid_parameter")
        return self.decision == Decision.APPROVE


class ModerationIn(msgspec.Struct, forbid_unknown_fields=True):
    action: Choice  # freeze | unfreeze | delist | relist (anything else: 400 invalid_action)
    reason: Reason = ""  # required to freeze or delist (reason_required)


class CategoryOut(msgspec.Struct):
    code: str
    name: str
    parent_code: str | None
    level: int
    type: str
    version: str

    @classmethod
    def of(cls, c: Category) -> CategoryOut:
        return cls(c.code, c.name, c.parent_code, c.level, c.type, c.version)


class PriceChangeOut(msgspec.Struct):
    at: str
    price: str
    reference_price: str
    previous_price: str | None
    note: str

    @classmethod
    def of(cls, r: PriceChange) -> PriceChangeOut:
        previous = None if r.previous_price is None else money_str(r.previous_price)
        return cls(r.at.isoformat(), money_str(r.price), money_str(r.reference_price), previous, r.note)


class PriceRequestOut(msgspec.Struct):
    """A price change waiting for the center (pending), or the center's refusal (rejected, with its
    reason); shown to the listing's supplier and to the center, never to the public."""

    id: uuid.UUID
    status: str  # pending | approved | rejected | withdrawn | superseded
    status_label: str
    price: str
    reference_price: str
    reference_source: str
    note: str
    requested_at: str
    decided_at: str | None
    reason: str

    @classmethod
    def of(cls, r: PriceRequest) -> PriceRequestOut:
        return cls(
            r.id,
            r.status,
            PRICE_REQUEST_STATUS_LABELS.get(r.status, r.status),
            money_str(r.price),
            money_str(r.reference_price),
            r.reference_source,
            r.note,
            rfc3339(r.requested_at),
            rfc3339(r.decided_at) if r.decided_at else None,
            r.reason,
        )


class ListingOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    brand: str
    spec_model: str
    category_code: str
    category_version: str
    unit: str
    price: str  # the price in force (the reviewed one while a change waits for the center)
    reference_price: str
    stock: str
    status: str
    supplier_id: uuid.UUID
    supplier_name: str
    sales_count: int
    status_reason: str = ""
    params: list[list[str]] = msgspec.field(default_factory=list)  # 规格参数 [name, value] (2026-12-07)
    # Only in answers to the listing's supplier and to the center: the price change waiting for
    # review, or the latest refusal not yet followed by another price change.
    price_request: PriceRequestOut | None = None
    # The supplier's declared e-commerce price (电商比价), its page and capture day (2026-12-07)
    ecommerce_price: str | None = None
    ecommerce_url: str = ""
    ecommerce_captured_on: str | None = None
    # Policy attributes (catalog.policy, 2026-12-07): certificates with their expiry, whether they are in
    # force today ("energy", "eco", "energy,eco" or ""), the origin and the import approval
    energy_cert_no: str = ""
    energy_cert_until: str | None = None
    eco_cert_no: str = ""
    eco_cert_until: str | None = None
    green: str = ""
    origin: str = "domestic"
    import_approval_ref: str = ""
    # the supplier's size by its 中小企业声明函 in force today (mall.sme; the single listing's answer):
    # micro, small, medium, sme, large, or "" (none in force)
    supplier_scale: str = ""

    @classmethod
    def of(cls, x: Listing, request: PriceRequest | None = None, supplier_scale: str = "") -> ListingOut:
        return cls(
            x.id,
            x.name,
            x.brand,
            x.spec_model,
            x.category_code,
            x.category_version,
            x.unit,
            money_str(x.price),
            money_str(x.reference_price),
            quantity_str(x.stock),
            x.status,
            x.supplier_org_id,
            x.supplier.name,
            x.sales_count,
            x.status_reason,
            list(x.params or []),
            PriceRequestOut.of(request) if request is not None else None,
            money_str(x.ecommerce_price) if x.ecommerce_price is not None else None,
            x.ecommerce_url or "",
            x.ecommerce_captured_on.isoformat() if x.ecommerce_captured_on else None,
            x.energy_cert_no,
            x.energy_cert_until.isoformat() if x.energy_cert_until else None,
            x.eco_cert_no,
            x.eco_cert_until.isoformat() if x.eco_cert_until else None,
            policy.green_of(
                x.energy_cert_no,
                x.energy_cert_until,
                x.eco_cert_no,
                x.eco_cert_until,
                clock.local_date(clock.now()),
            ),
            x.origin,
            x.import_approval_ref,
            supplier_scale,
        )


class ListingPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[ListingOut]


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A supplier's new price and reference price (checked against the price rule by the service)."""

    price: AmountText  # 售价; a malformed one is the service's price_invalid
    reference_price: AmountText  # 参考市场价
    note: PriceNote = ""
    # Where the new reference price comes from (a page, a quote); omitted: unchanged.
    reference_source: ReferenceSource | None = None


class PriceReviewItem(msgspec.Struct):
    """A pending price change in the center's queue, next to the listing as it is in force."""

    id: uuid.UUID
    price: str
    reference_price: str
    reference_source: str
    note: str
    requested_at: str
    listing: ListingOut

    @classmethod
    def of(cls, r: PriceRequest) -> PriceReviewItem:
        return cls(
            r.id,
            money_str(r.price),
            money_str(r.reference_price),
            r.reference_source,
            r.note,
            rfc3339(r.requested_at),
            ListingOut.of(r.listing),
        )


class PriceReviewPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[PriceReviewItem]
