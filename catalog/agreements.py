"""协议供货: framework agreements a procurement center signs per category with the suppliers that won
entry (入围), their products and prices, and the orders placed under them.

The code is in three modules along an agreement's life: `agreement_setup` (drafting, entering
suppliers and products, activation, termination, expiry), `agreement_orders` (direct selection and
the ceiling of a second-stage competition) and `agreement_queries` (lists, the deal summary and the
ceilings the supermarket may not exceed); the tables are in `catalog.models`. This module names the
whole area at once, for code that follows an agreement through its life (the demo data, the tests).
"""

from catalog.agreement_orders import (
    AgreementOrderIn,
    AgreementOrderRequest,
    place_order,
    second_stage_ceiling,
)
from catalog.agreement_queries import (
    Summary,
    SummaryRow,
    as_dict,
    ceiling_for,
    ceilings_in_force,
    check_ceiling,
    entered,
    get,
    listed,
    products_of,
    summary,
    visible,
    visible_to,
)
from catalog.agreement_setup import (
    AGREEMENT_KIND_LABELS,
    DEFAULT_DIRECT_LIMIT,
    MAX_TERM_YEARS,
    SUMMARY_WORKING_DAYS,
    AgreementDraft,
    ProductDraft,
    SupplierEntry,
    activate,
    add_product,
    add_supplier,
    add_years,
    check_call_off,
    check_term,
    create,
    discounted,
    expire_due,
    in_force,
    terminate,
)
from catalog.models import (
    AGREEMENT_STATUS_LABELS,
    Agreement,
    AgreementProduct,
    AgreementStatus,
    AgreementSupplier,
)

__all__ = [
    "AGREEMENT_KIND_LABELS",
    "AGREEMENT_STATUS_LABELS",
    "DEFAULT_DIRECT_LIMIT",
    "MAX_TERM_YEARS",
    "SUMMARY_WORKING_DAYS",
    "Agreement",
    "AgreementDraft",
    "AgreementOrderIn",
    "AgreementOrderRequest",
    "AgreementProduct",
    "AgreementStatus",
    "AgreementSupplier",
    "ProductDraft",
    "Summary",
    "SummaryRow",
    "SupplierEntry",
    "activate",
    "add_product",
    "add_supplier",
    "add_years",
    "as_dict",
    "ceiling_for",
    "ceilings_in_force",
    "check_call_off",
    "check_ceiling",
    "check_term",
    "create",
    "discounted",
    "entered",
    "expire_due",
    "get",
    "in_force",
    "listed",
    "place_order",
    "products_of",
    "second_stage_ceiling",
    "summary",
    "terminate",
    "visible",
    "visible_to",
]
