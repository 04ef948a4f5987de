"""Notifications (消息中心): what waits for someone, told to every user it concerns, in the mall and
by e-mail (and SMS through an adapter, when one is configured).

Business code stages them in its own transaction as an outbox row (`stage`); the worker turns the
row into one notification per recipient (`deliver.deliver_pending`), keyed so that running it again
adds nothing; another pass mails them (`mail`). Notifications are a convenience copy of what the
order's history, the procedures and the listings record: they are not part of any legal record and
are deleted after `notification_keep_days` (docs/decisions.md, 2026-12-07)."""

from __future__ import annotations

from mall.notify.stage import TOPIC, Item, stage

__all__ = ["TOPIC", "Item", "stage"]
