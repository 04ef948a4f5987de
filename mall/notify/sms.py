"""SMS behind an adapter: no provider is built in.

A deployment that wants SMS writes a module with a factory that takes the mall's settings and
returns an object with `send(phone, text)`, and names it in MALL_SMS_ADAPTER
("package.module:factory"). `send` raises on failure: the notice is then tried again by a later run
(at least once, so a provider should drop repeats where it can). The text is the notice's title and
link, nothing more (README, "Notifications (消息中心)")."""

from __future__ import annotations

import importlib
from typing import Any, Protocol


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Send `text` (Chinese, at most about 70 characters) to the mobile number `phone`; raise on failure."""


def load(settings: Any) -> SmsSender | None:
    """The configured adapter, or None when MALL_SMS_ADAPTER is empty."""
    spec = str(getattr(settings, "sms_adapter", "") or "")
    if not spec:
        return None
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name)
    sender: SmsSender = factory(settings)
    return sender
