"""Search documents built from catalogue rows (only live listings are ever indexed)."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import inspect as sa_inspect

from catalog import policy
from catalog.models import Listing
from mall.core import clock
from mall.core.money import to_cents
from search_index.backend import ProductDocument


def document_of(listing: Listing, supplier_name: str, category_name: str) -> ProductDocument:
    created = listing.created_at
    if created.tzinfo is None:  # stored as UTC
        created = created.replace(tzinfo=UTC)
    # the supplier's region, when the relationship is loaded (it is joined by default); never lazy-load
    supplier = None if "supplier" in sa_inspect(listing).unloaded else listing.supplier
    return ProductDocument(
        id=str(listing.id),
        title=listing.name,
        brand=listing.brand,
        spec_model=listing.spec_model,
        category_code=listing.category_code,
        category_name=category_name,
        supplier_id=str(listing.supplier_org_id),
        supplier_name=supplier_name,
        region_code=(supplier.region_code or "") if supplier is not None else "",
        price_cents=to_cents(listing.price),
        stock=int(listing.stock),
        sales=int(listing.sales_count or 0),
        created_ts=int(created.timestamp()),
        description=listing.description or "",
        green=policy.green_of(
            listing.energy_cert_no,
            listing.energy_cert_until,
            listing.eco_cert_no,
            listing.eco_cert_until,
            clock.local_date(clock.now()),
        ),
        origin=listing.origin or "domestic",
    )
