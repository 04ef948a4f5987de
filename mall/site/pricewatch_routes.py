"""Price monitoring: the center's alert list and actions, the supplier's answers, the public 价格监测 page (mall.pricewatch)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
PAGES: list[Any] = []
