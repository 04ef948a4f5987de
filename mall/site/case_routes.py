"""Oversight cases: the regulator's case list and decisions, the parties' explanations (mall.supervision)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
PAGES: list[Any] = []
