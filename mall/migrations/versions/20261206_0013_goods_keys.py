"""goods keys fold look-alike spellings

The brand and model keys (duplicate listings, 比价, agreement products, the decentralized limit of a
checkout) now ignore punctuation, letters of other scripts drawn like Latin ones, and a brand's
other name in brackets (catalog/goods.py). Existing rows get their keys computed again.

Two listings of one supplier whose new keys coincide were one item listed twice under two
spellings; the upgrade stops and names them, since only the supplier or the center can say which
one stays (withdraw one, then upgrade again).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 14:00:00.000000
"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The key functions of this release. A later change of the keys comes with a migration of its own
# that computes them again with the functions of its release.
from catalog.goods import brand_key, model_key

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rekey(table: str, *, unique_per_supplier: bool) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, supplier_org_id, brand, spec_model FROM {table}")).all()
    seen: dict[tuple[object, str, str], object] = {}
    clashes: list[str] = []
    changes: list[dict[str, object]] = []
    for row_id, supplier, brand, spec_model in rows:
        bkey, mkey = brand_key(brand), model_key(spec_model)
        if unique_per_supplier:
            other = seen.setdefault((supplier, bkey, mkey), row_id)
            if other != row_id:
                clashes.append(f"{other} / {row_id}（{brand} {spec_model}）")
        changes.append({"id": row_id, "b": bkey, "m": mkey})
    if clashes:
        raise RuntimeError(
            "同一供应商有品牌型号实为相同的商品，请先下架或删除其中一个再升级: " + "; ".join(clashes[:20])
        )
    if unique_per_supplier and changes:
        # Move every key out of the way first, so that swapping keys between rows never meets the
        # unique constraint half-way.
        conn.execute(sa.text(f"UPDATE {table} SET model_key = '~' || CAST(id AS VARCHAR(40))"))
    for change in changes:
        conn.execute(sa.text(f"UPDATE {table} SET brand_key = :b, model_key = :m WHERE id = :id"), change)


def upgrade() -> None:
    _rekey("listings", unique_per_supplier=True)
    _rekey("agreement_products", unique_per_supplier=False)


def downgrade() -> None:
    # The keys of 0012 and before: width folded, upper case, spaces - _ / dropped.
    conn = op.get_bind()
    for table in ("listings", "agreement_products"):
        rows = conn.execute(sa.text(f"SELECT id, brand, spec_model FROM {table}")).all()
        if table == "listings":
            conn.execute(sa.text(f"UPDATE {table} SET model_key = '~' || CAST(id AS VARCHAR(40))"))
        for row_id, brand, spec_model in rows:
            conn.execute(
                sa.text(f"UPDATE {table} SET brand_key = :b, model_key = :m WHERE id = :id"),
                {"id": row_id, "b": _old_key(brand)[:100], "m": _old_key(spec_model)[:200]},
            )


def _old_key(text: str) -> str:
    return re.sub(r"[\s\-_/]+", "", unicodedata.normalize("NFKC", text)).upper()
