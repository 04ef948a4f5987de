"""Push subscriptions (推送订阅): every new ledger record is POSTed to a registered URL, in ledger order.

A subscription's `cursor` is the last seq its receiver acknowledged with a 2xx (or that its mode
filter passed over). The deliverer runs as a job under a per-subscription Redis lock, posts the record
after the cursor, and moves the cursor only after a 2xx; on any failure it stops, logs the attempt
and waits with exponential backoff before trying the same record again. Nothing is ever skipped, so a
receiver that was down gets everything it missed, in order, once it is back. Delivery is
at-least-once: a receiver that answered 2xx too late (after our timeout) sees that record again,
and dedupes it by the `Idempotency-Key` header (the record id).

Receivers on internal addresses are refused at registration and at every connection (see
mall.ledger.push_addresses). The log keeps the status code and one of ERROR_KINDS, never what the receiver
answered: a subscriber must not be able to read an internal service through the mall's log.

`subscriptions` registers and manages receivers; `delivery` posts the records and keeps the log.
"""

from mall.ledger.push.delivery import (
    ERROR_KINDS,
    SEQ_HEADER,
    SIGNATURE_HEADER,
    DeliveryRun,
    backoff_seconds,
    deliver,
    due,
    error_label,
    kick,
    ledger_head,
    prune_log,
    sign,
    ssl_context,
)
from mall.ledger.push.subscriptions import (
    MANAGERS,
    SEES_ALL,
    STATE_LABELS,
    backlog,
    check_receiver,
    create,
    deliveries,
    get,
    list_of,
    new_secret,
    pause,
    remove,
    resume,
    rotate_secret,
    secret_hint,
    state_of,
    validate_url,
)

__all__ = [
    "ERROR_KINDS",
    "MANAGERS",
    "SEES_ALL",
    "SEQ_HEADER",
    "SIGNATURE_HEADER",
    "STATE_LABELS",
    "DeliveryRun",
    "backlog",
    "backoff_seconds",
    "check_receiver",
    "create",
    "deliver",
    "deliveries",
    "due",
    "error_label",
    "get",
    "kick",
    "ledger_head",
    "list_of",
    "new_secret",
    "pause",
    "prune_log",
    "remove",
    "resume",
    "rotate_secret",
    "secret_hint",
    "sign",
    "ssl_context",
    "state_of",
    "validate_url",
]
