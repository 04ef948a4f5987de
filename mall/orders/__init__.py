"""The online supermarket (网上超市): checkout, and the order's life from placed to paid (the cart is
`mall.cart`).

An order only moves through the named transitions of `lifecycle`; each checks who is acting and the
state it starts from, in a write transaction that also keeps the budget and the outbox. `place`
opens orders (every way of ordering shares its start), `queries` reads them, `events` keeps their
history.
"""

from mall.orders.events import deal_payload, events_of, record_event
from mall.orders.fulfilment import accept, receive, ship
from mall.orders.lifecycle import (
    CORRECTABLE,
    answer_cancel,
    cancel,
    cancel_overdue,
    confirm,
    correct,
    decline,
    file_contract,
    request_cancel,
    void,
)
from mall.orders.payments import confirm_invoice, pay, record_invoice, reject_invoice
from mall.orders.place import (
    MAX_ITEMS,
    ORDER_PREFIX,
    CheckoutRequest,
    LineDraft,
    begin,
    check_purchases,
    checkout,
    idempotent,
    new_number,
    open_confirmed_order,
    open_order,
    request_digest,
    require_active_suppliers,
)
from mall.orders.queries import can_see, get_order, list_orders, payment_state, personal_data_shown

__all__ = [
    "CORRECTABLE",
    "MAX_ITEMS",
    "ORDER_PREFIX",
    "CheckoutRequest",
    "LineDraft",
    "accept",
    "answer_cancel",
    "begin",
    "can_see",
    "cancel",
    "cancel_overdue",
    "check_purchases",
    "checkout",
    "confirm",
    "confirm_invoice",
    "correct",
    "deal_payload",
    "decline",
    "events_of",
    "file_contract",
    "get_order",
    "idempotent",
    "list_orders",
    "new_number",
    "open_confirmed_order",
    "open_order",
    "pay",
    "payment_state",
    "personal_data_shown",
    "receive",
    "record_event",
    "record_invoice",
    "reject_invoice",
    "request_cancel",
    "request_digest",
    "require_active_suppliers",
    "ship",
    "void",
]
