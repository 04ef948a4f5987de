"""Request and response shapes of the JSON API (msgspec Structs). Money travels as decimal strings."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from catalog.models import PRICE_REQUEST_STATUS_LABELS, Listing, PriceRequest
from mall.core import fields
from mall.core.fields import (
    Address,
    Amount,
    AmountText,
    Choice,
    CreditCodeText,
    Description,
    ListingCategoryCode,
    Model,
    Name,
    Note,
    Phone,
    PriceNote,
    ProjectCode,
    QuantityText,
    Reason,
    ReferenceSource,
    RegionCode,
    RequiredShortText,
    ShippingNote,
    ShortText,
    Unit,
)
from mall.core.models import BudgetLine, Order, OrderEvent
from mall.core.money import money_str, quantity_str


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: fields.Username
    password: fields.Password
    name: fields.ShortText = ""


class TokenOut(msgspec.Struct):
    token: str
    token_type: str
    expires_at: str
    role: str


class TokenInfo(msgspec.Struct):
    """A live token as its owner sees it: never the token itself."""

    id: uuid.UUID
    name: str
    created_at: str
    expires_at: str
    last_used_at: str | None
    current: bool  # the token this request came with


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: fields.Password
    new_password: fields.Password


class LoginThrottleOut(msgspec.Struct):
    id: uuid.UUID
    kind: str  # account: one account from one address; address: one address across accounts
    username: str
    ip: str
    failures: int
    last_failure_at: str
    blocked_until: str | None
    retry_after: int  # seconds until the next attempt is allowed (0: the next failure waits)


class Me(msgspec.Struct):
    username: str
    display_name: str
    role: str
    org_name: str
    org_credit_code: str


class BudgetLineOut(msgspec.Struct):
    id: uuid.UUID
    fiscal_year: int
    project_code: str
    project_name: str
    amount: str
    reserved: str
    consumed: str
    available: str

    @classmethod
    def of(cls, b: BudgetLine) -> BudgetLineOut:
        return cls(
            b.id,
            b.fiscal_year,
            b.project_code,
            b.project_name,
            money_str(b.amount),
            money_str(b.reserved),
            money_str(b.consumed),
            money_str(b.available),
        )


class ListingCreate(msgspec.Struct, forbid_unknown_fields=True):
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
    draft: bool = False  # true: keep as a draft instead of submitting for review


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
        from mall.core.clock import rfc3339

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
    # Only in answers to the listing's supplier and to the center: the price change waiting for
    # review, or the latest refusal not yet followed by another price change.
    price_request: PriceRequestOut | None = None

    @classmethod
    def of(cls, x: Listing, request: PriceRequest | None = None) -> ListingOut:
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
            PriceRequestOut.of(request) if request is not None else None,
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
        from mall.core.clock import rfc3339

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


class CartAdd(msgspec.Struct, forbid_unknown_fields=True):
    listing_id: uuid.UUID
    quantity: fields.QuantityOrInt = "1"
    # The price the client showed the buyer: if the listing costs more now, the item is not added.
    unit_price: Amount | None = None


class CartQuantity(msgspec.Struct, forbid_unknown_fields=True):
    quantity: fields.QuantityOrInt


class CartPriceIn(msgspec.Struct, forbid_unknown_fields=True):
    """The buyer accepts the listing's current price (refused if it is no longer that price)."""

    unit_price: Amount


class CartLineOut(msgspec.Struct):
    listing_id: uuid.UUID
    name: str
    supplier_name: str
    quantity: str
    unit_price: str  # the listing's price now
    amount: str  # quantity × the price now
    agreed_unit_price: str = ""  # the price the buyer saw or accepted; checkout charges at most this
    price_risen: bool = False  # the price now is higher: accept it before checkout


class CheckoutItem(msgspec.Struct, forbid_unknown_fields=True):
    listing_id: uuid.UUID
    quantity: fields.QuantityOrInt
    # The unit price the client agreed to. A higher price at checkout is refused (409 price_changed);
    # a lower one is charged. Without it, the price kept in the cart for this listing, if any, else
    # the price at checkout.
    unit_price: Amount | None = None


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    budget_line_id: uuid.UUID
    items: list[CheckoutItem] = []
    delivery_address: Address = ""
    note: Note = ""


class OrderLineOut(msgspec.Struct):
    id: uuid.UUID
    item_name: str
    brand: str
    spec_model: str
    category_code: str
    unit: str
    quantity: str
    listed_unit_price: str
    unit_price: str
    amount: str


class OrderOut(msgspec.Struct):
    id: uuid.UUID
    order_no: str
    mode: str
    status: str
    buyer_name: str
    supplier_name: str
    total_amount: str
    placed_at: str
    confirm_due_at: str
    contract_no: str | None
    lines: list[OrderLineOut]
    disclosure_id: uuid.UUID | None
    cancel_requested_by: str | None
    payment_overdue: bool

    @classmethod
    def of(cls, o: Order) -> OrderOut:
        from mall.core.clock import rfc3339

        return cls(
            o.id,
            o.order_no,
            o.mode,
            o.status,
            o.buyer.name,
            o.supplier.name,
            money_str(o.total_amount),
            rfc3339(o.placed_at),
            rfc3339(o.confirm_due_at),
            o.contract_no,
            [
                OrderLineOut(
                    x.id,
                    x.item_name,
                    x.brand,
                    x.spec_model,
                    x.category_code,
                    x.unit,
                    quantity_str(x.quantity),
                    money_str(x.listed_unit_price),
                    money_str(x.unit_price),
                    money_str(x.amount),
                )
                for x in o.lines
            ],
            o.disclosure_id,
            o.cancel_requested_by,
            o.payment_overdue,
        )


class OrderPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[OrderOut]


class CheckoutOut(msgspec.Struct):
    replayed: bool
    orders: list[OrderOut]
    warnings: list[str] = []


class ConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    # line id -> new (lower) unit price
    prices: Annotated[dict[uuid.UUID, AmountText], fields.AMOUNT_VALUES] = {}


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    agree: bool


class ShipIn(msgspec.Struct, forbid_unknown_fields=True):
    note: ShippingNote = ""


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    score: int
    comment: Note = ""


class PayIn(msgspec.Struct, forbid_unknown_fields=True):
    payment_ref: ShortText


class EventOut(msgspec.Struct):
    at: str
    actor: str
    action: str
    detail: str

    @classmethod
    def of(cls, e: OrderEvent) -> EventOut:
        from mall.core.clock import rfc3339

        return cls(rfc3339(e.at), e.actor_label, e.action, e.detail)


class OrganizationCreate(msgspec.Struct, forbid_unknown_fields=True):
    kind: Choice  # budget_unit | supplier | center | regulator
    name: Name
    credit_code: CreditCodeText  # the service explains what is wrong with it (organization_invalid)
    region_code: RegionCode
    address: Address = ""
    contact_phone: Phone = ""


class OrganizationOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    name: str
    credit_code: str
    region_code: str
    address: str
    status: str


class OrganizationPage(msgspec.Struct):
    total: int
    page: int
    per_page: int
    items: list[OrganizationOut]


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: fields.Username
    display_name: fields.RequiredShortText
    password: fields.Password


class UserOut(msgspec.Struct):
    id: uuid.UUID
    username: str
    display_name: str
    org_id: uuid.UUID | None


class BudgetLineCreate(msgspec.Struct, forbid_unknown_fields=True):
    fiscal_year: int
    project_code: ProjectCode
    project_name: Name
    amount: AmountText
