"""Statistics and dashboards: spend, SME share, savings, cases and alerts, times; the API and the charts (mall.stats)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
PAGES: list[Any] = []
