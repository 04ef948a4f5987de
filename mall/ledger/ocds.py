"""Ledger records as OCDS 1.1 releases (Open Contracting Data Standard).

One release per ledger record; every record of an order (or a failed procedure) shares one `ocid`
(prefix + number), so a correction or a cancellation is a later release of the same contracting
process, with the same award and contract ids. Amounts are exact: `Decimal` values encoded as JSON
numbers from their decimal text, never through a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mall.ledger.disclosure import MODE_LABELS

# The bid statistics live in the bids extension, not in the core schema; the package declares it.
BID_EXTENSION = "https://raw.githubusercontent.com/open-contracting/ocds_bid_extension/v1.1.3/extension.json"
# parties/details/scale: micro | sme | large, the supplier's size by its 中小企业声明函 (mall.sme)
SCALE_EXTENSION = "https://raw.githubusercontent.com/open-contracting-extensions/ocds_partyDetails_scale_extension/master/extension.json"
EXTENSIONS = [BID_EXTENSION, SCALE_EXTENSION]
CLASSIFICATION_SCHEME = "CN-GPC-2022"  # 《政府采购品目分类目录》(2022)
IDENTIFIER_SCHEME = "CN-USCC"  # 统一社会信用代码
CURRENCY = "CNY"

# Catalogue modes: the buyer picks one pre-qualified supplier's offer (limited). Inquiries and
# auctions: every supplier qualified in the 品目 (or invited) may compete (selective).
PROCUREMENT_METHOD = {
    "supermarket": "limited",
    "agreement": "limited",
    "designated": "limited",
    "inquiry": "selective",
    "auction": "selective",
}
COMPETITIVE = ("inquiry", "auction")
TAGS = {
    "deal": ["award", "contract"],
    "correction": ["awardUpdate", "contractUpdate"],
    "cancellation": ["awardCancellation", "contractTermination"],
    "failure": ["tender"],
}


SCALE_CODES = {"micro": "micro", "small": "sme", "medium": "sme", "sme": "sme", "large": "large"}


def ocid(prefix: str, number: str) -> str:
    return f"{prefix}{number}"


def _party_id(credit_code: str) -> str:
    return f"{IDENTIFIER_SCHEME}-{credit_code}"


def _value(amount: str | None) -> dict[str, Any] | None:
    if amount is None:
        return None
    return {"amount": Decimal(amount), "currency": CURRENCY}


def _main_category(lines: list[dict[str, Any]]) -> str | None:
    first = next((str(x.get("category_code") or "") for x in lines if x.get("category_code")), "")
    return {"A": "goods", "B": "works", "C": "services"}.get(first[:1])


def _items(lines: list[dict[str, Any]], names: dict[str, str] | None) -> list[dict[str, Any]]:
    items = []
    for n, line in enumerate(lines, start=1):
        code = str(line.get("category_code") or "")
        description = " ".join(
            str(x) for x in (line.get("item_name"), line.get("brand"), line.get("spec_model")) if x
        )
        item: dict[str, Any] = {
            "id": str(n),
            "description": description,
            "classification": {"scheme": CLASSIFICATION_SCHEME, "id": code},
            "quantity": Decimal(str(line.get("quantity") or "0")),
            "unit": {"name": line.get("unit") or ""},
        }
        if names and names.get(code):
            item["classification"]["description"] = names[code]
        price = _value(line.get("unit_price"))
        if price is not None:
            item["unit"]["value"] = price
        items.append(item)
    return items


def _bid_statistics(record: dict[str, Any]) -> list[dict[str, Any]]:
    quotes = record.get("quotes") or []
    rejected = record.get("rejected_quotes") or []
    stats: list[dict[str, Any]] = [
        {"measure": "bids", "value": len(quotes) + len(rejected)},
        {"measure": "validBids", "value": len(quotes)},
        {"measure": "disqualifiedBids", "value": len(rejected)},
    ]
    amounts = [Decimal(q["total_amount"]) for q in quotes if q.get("total_amount") is not None]
    if amounts:
        stats.append({"measure": "lowestValidBidValue", "value": min(amounts), "currency": CURRENCY})
        stats.append({"measure": "highestValidBidValue", "value": max(amounts), "currency": CURRENCY})
    for n, stat in enumerate(stats, start=1):
        stat["id"] = str(n)
    return stats


def release(
    record: dict[str, Any], prefix: str, names: dict[str, str] | None = None, scale: str = ""
) -> dict[str, Any]:
    """The OCDS release for one ledger record (the record as published: `body` parsed). `scale` is
    the size the supplier declared when the deal was made (the order's; the record itself, a fixed
    contract, does not carry it): micro, sme or large in `parties/details/scale`."""
    kind, mode = record["kind"], record["mode"]
    process = ocid(prefix, record["order_no"])
    lines = record.get("lines") or []
    buyer = record["buyer"]
    supplier = record.get("supplier")
    buyer_ref = {"id": _party_id(buyer["credit_code"]), "name": buyer["name"]}
    parties: list[dict[str, Any]] = [
        {
            **buyer_ref,
            "identifier": {
                "scheme": IDENTIFIER_SCHEME,
                "id": buyer["credit_code"],
                "legalName": buyer["name"],
            },
            "address": {"region": record.get("region_code") or "", "countryName": "中国"},
            # In the e-mall the budget unit buys for itself: it is also the procuring entity.
            "roles": ["buyer", "procuringEntity"],
        }
    ]
    tender: dict[str, Any] = {
        "id": record["order_no"],
        "procuringEntity": buyer_ref,
        "procurementMethod": PROCUREMENT_METHOD.get(mode, "limited"),
        "procurementMethodDetails": MODE_LABELS.get(mode, mode),
    }
    category = _main_category(lines)
    if category:
        tender["mainProcurementCategory"] = category
    out: dict[str, Any] = {
        "ocid": process,
        "id": record["id"],
        "date": record["published_at"],
        "tag": list(TAGS.get(kind, ["award", "contract"])),
        "initiationType": "tender",
        "language": "zh",
        "parties": parties,
        "buyer": buyer_ref,
        "tender": tender,
    }
    if mode in COMPETITIVE:
        quotes = record.get("quotes") or []
        rejected = record.get("rejected_quotes") or []
        tender["numberOfTenderers"] = len(
            {q.get("supplier_name") for q in [*quotes, *rejected] if q.get("supplier_name")}
        )
        out["bids"] = {"statistics": _bid_statistics(record)}
    if kind == "failure":
        tender["status"] = "unsuccessful"
        tender["items"] = _items(lines, names)
        if record.get("reason"):
            tender["statusDetails"] = record["reason"]
        return out
    tender["status"] = "complete"
    assert supplier is not None
    supplier_ref = {"id": _party_id(supplier["credit_code"]), "name": supplier["name"]}
    parties.append(
        {
            **supplier_ref,
            "identifier": {
                "scheme": IDENTIFIER_SCHEME,
                "id": supplier["credit_code"],
                "legalName": supplier["name"],
            },
            # A sole proprietor's record carries no address (a person's): none is made up here.
            "address": (
                {"streetAddress": supplier["address"], "countryName": "中国"}
                if supplier.get("address")
                else {"countryName": "中国"}
            ),
            "roles": ["supplier"],
            **({"details": {"scale": SCALE_CODES[scale]}} if scale in SCALE_CODES else {}),
        }
    )
    cancelled = kind == "cancellation"
    value = _value(record.get("total_amount"))
    items = _items(lines, names)
    award: dict[str, Any] = {
        "id": f"{record['order_no']}-award",
        "status": "cancelled" if cancelled else "active",
        "date": record["published_at"],
        "suppliers": [supplier_ref],
        "items": items,
    }
    contract: dict[str, Any] = {
        "id": f"{record['order_no']}-contract",
        "awardID": award["id"],
        "status": "cancelled" if cancelled else "active",
        "items": items,
    }
    if value is not None:
        award["value"] = value
        contract["value"] = value
    if record.get("deal_date") and not cancelled:
        # The deal date is a Chinese calendar date (the supplier's confirmation, Asia/Shanghai).
        contract["dateSigned"] = f"{record['deal_date']}T00:00:00+08:00"
    out["awards"] = [award]
    out["contracts"] = [contract]
    return out
