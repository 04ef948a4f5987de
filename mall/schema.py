"""Every table of the mall in one metadata, for the migrations and the test suite.

Each area defines its own tables (`<area>/models.py`); importing this module imports them all, so
`Base.metadata` is complete and every foreign key between areas resolves.
"""

from __future__ import annotations

import bidding.models
import catalog.models
import mall.budgets.models
import mall.cart.models
import mall.contracts.models
import mall.core.models
import mall.credit.models
import mall.ledger.models
import mall.notices.models
import mall.notify.models
import mall.orders.models
import mall.pricewatch.models
import mall.sanctions.models
import mall.sme.models
import mall.supervision.models
from mall.core.db import Base

MODULES = (
    mall.core.models,
    mall.budgets.models,
    mall.cart.models,
    mall.orders.models,
    mall.contracts.models,
    mall.ledger.models,
    mall.notices.models,
    mall.notify.models,
    mall.pricewatch.models,
    mall.supervision.models,
    mall.sanctions.models,
    mall.credit.models,
    mall.sme.models,
    catalog.models,
    bidding.models,
)
metadata = Base.metadata
