"""The risk rules (mall.supervision.rules), pure: for every rule a hit and a near miss."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mall.supervision import rules as R

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
B, S1, S2, S3, C = (uuid.uuid4() for _ in range(5))
P = R.Params(
    now=NOW,
    filing_cutoff=NOW - timedelta(days=9),
    acceptance_cutoff=NOW - timedelta(days=14),
)


def line(
    price: str, qty: int = 1, *, no: int = 1, brand: str = "b", model: str = "m", code: str = "A02010104"
) -> R.LineFact:
    return R.LineFact(no, "台式计算机", code, brand, model, Decimal(price), Decimal(price) * qty)


def order(
    *lines: R.LineFact, status: str = "confirmed", checkout: uuid.UUID | None = None, **kw: object
) -> R.OrderFact:
    total = sum((ln.amount for ln in lines), Decimal(0))
    base: dict[str, object] = {
        "order_id": uuid.uuid4(),
        "order_no": "SM1",
        "checkout_id": checkout or uuid.uuid4(),
        "buyer_org_id": B,
        "supplier_org_id": S1,
        "region_code": "410100",
        "status": status,
        "total": total,
        "lines": tuple(lines),
    }
    base.update(kw)
    return R.OrderFact(**base)  # type: ignore[arg-type]


def split(total: str) -> R.SplitGroup:
    return R.SplitGroup(B, "410100", uuid.uuid4(), "P-1", 2026, "A020101", 5, Decimal(total))


def test_split_purchase_above_the_open_tender_threshold() -> None:
    [hit] = R.split_purchase([split("2000000.01")], P)
    assert hit.rule == R.SPLIT_PURCHASE and hit.party_org_id == B and hit.evidence["orders"] == 5
    assert R.split_purchase([split("2000000.00")], P) == []  # at the threshold: not above it


def test_near_threshold_counts_one_item_across_a_checkouts_orders() -> None:
    ck = uuid.uuid4()
    a = order(line("480000.00"), checkout=ck)
    b = order(line("480000.00"), checkout=ck, supplier_org_id=S2)  # same item from another supplier
    [hit] = R.near_threshold([a, b], P)
    assert hit.rule == R.NEAR_THRESHOLD and hit.evidence["total"] == "960000.00"
    # 94.9 % of the limit: not "just below"
    assert R.near_threshold([order(line("949000.00"))], P) == []
    # different models do not add up
    c = order(line("480000.00", model="x"), checkout=ck)
    assert R.near_threshold([a, c], P) == []


def test_above_market_needs_enough_samples() -> None:
    o = order(line("1101.00"))
    market = {("b", "m"): R.MarketPrice(Decimal("1000.00"), 3)}
    [hit] = R.above_market([o], market, P)
    assert hit.party_org_id == S1 and hit.evidence["limit"] == "1100.00"
    assert R.above_market([order(line("1100.00"))], market, P) == []  # exactly at the margin
    assert R.above_market([o], {("b", "m"): R.MarketPrice(Decimal("1000.00"), 2)}, P) == []


def test_late_payment_only_to_small_suppliers_after_the_deadline() -> None:
    late = order(line("100"), status="accepted", accepted_at=NOW - timedelta(days=31))
    [hit] = R.late_payment([late], P)
    assert hit.party_org_id == B and hit.evidence["days"] == 31
    assert (
        R.late_payment([order(line("100"), status="accepted", accepted_at=NOW - timedelta(days=30))], P) == []
    )
    big = order(line("100"), status="accepted", accepted_at=NOW - timedelta(days=40), supplier_is_sme=False)
    assert R.late_payment([big], P) == []


def test_unfiled_contract_from_signing_or_confirmation() -> None:
    assert P.filing_cutoff is not None
    old = P.filing_cutoff - timedelta(seconds=1)
    assert len(R.unfiled_contract([order(line("1"), confirmed_at=old)], P)) == 1
    assert len(R.unfiled_contract([order(line("1"), status="signed", signed_at=old)], P)) == 1
    assert R.unfiled_contract([order(line("1"), confirmed_at=P.filing_cutoff)], P) == []
    assert R.unfiled_contract([order(line("1"), status="contracted", confirmed_at=old)], P) == []


def test_late_acceptance_after_everything_was_received() -> None:
    assert P.acceptance_cutoff is not None
    old = P.acceptance_cutoff - timedelta(minutes=1)
    assert len(R.late_acceptance([order(line("1"), status="received", received_at=old)], P)) == 1
    assert R.late_acceptance([order(line("1"), status="received", received_at=P.acceptance_cutoff)], P) == []
    assert R.late_acceptance([order(line("1"), status="accepted", received_at=old)], P) == []


def test_supplier_concentration_needs_more_than_half_and_a_minimum_spend() -> None:
    rows = [
        R.SpendRow(B, "410100", S1, 2026, Decimal("150000.01")),
        R.SpendRow(B, "410100", S2, 2026, Decimal("149999.99")),
    ]
    [hit] = R.supplier_concentration(rows, P)
    assert hit.supplier_org_id == S1 and hit.subject_key == f"{B}:2026:{S1}"
    half = [
        R.SpendRow(B, "410100", S1, 2026, Decimal("150000")),
        R.SpendRow(B, "410100", S2, 2026, Decimal("150000")),
    ]
    assert R.supplier_concentration(half, P) == []
    tiny = [R.SpendRow(B, "410100", S1, 2026, Decimal("199999.99"))]
    assert R.supplier_concentration(tiny, P) == []


def proc(
    *offers: tuple[uuid.UUID, str], awarded: uuid.UUID | None = None, passed: tuple[uuid.UUID, ...] = ()
) -> R.ProcedureFact:
    ranked = sorted(
        (R.Offer(s, Decimal(a), n) for n, (s, a) in enumerate(offers, start=1)),
        key=lambda o: (o.amount, o.seq),
    )
    return R.ProcedureFact(
        uuid.uuid4(),
        "XJ1",
        "inquiry",
        "confirmed",
        B,
        "410100",
        Decimal("10000"),
        NOW,
        tuple(ranked),
        awarded,
        passed,
    )


def test_few_participants_below_the_setting() -> None:
    [hit] = R.few_participants([proc((S1, "9000"), (S2, "9100"))], P)
    assert hit.evidence["participants"] == 2 and hit.party_org_id == B
    assert R.few_participants([proc((S1, "9000"), (S2, "9100"), (S3, "9200"))], P) == []


def test_identical_offers_the_later_supplier_explains() -> None:
    [hit] = R.identical_offers([proc((S1, "9000"), (S2, "9000"), (S3, "9500"))])
    assert hit.party_org_id == S2 and hit.evidence["amount"] == "9000.00"
    assert R.identical_offers([proc((S1, "9000"), (S2, "9000.01"), (S3, "9500"))]) == []


def test_winner_within_one_percent_of_the_runner_up() -> None:
    [hit] = R.close_to_runner_up([proc((S1, "9900"), (S2, "10000"), awarded=S1)], P)
    assert hit.party_org_id == S1
    assert R.close_to_runner_up([proc((S1, "9899.99"), (S2, "10000"), awarded=S1)], P) == []
    assert R.close_to_runner_up([proc((S1, "9900"), (S2, "10000"))], P) == []  # no winner


def test_abnormally_low_offers() -> None:
    hits = R.abnormally_low_offers([proc((S1, "4000"), (S2, "9000"), (S3, "9500"), awarded=S1)])
    assert [h.supplier_org_id for h in hits] == [S1] and hits[0].evidence["won"] is True
    assert R.abnormally_low_offers([proc((S1, "8000"), (S2, "9000"), (S3, "9500"))]) == []


def test_declined_awards_each_supplier_once() -> None:
    hits = R.declined_award([proc((S1, "9000"), (S2, "9100"), passed=(S1, S1))])
    assert [h.party_org_id for h in hits] == [S1]
    assert R.declined_award([proc((S1, "9000"), (S2, "9100"))]) == []


def wins(*winners: uuid.UUID, days: int = 10) -> list[R.WinFact]:
    return [
        R.WinFact(uuid.uuid4(), f"XJ{n}", B, "410100", w, NOW - timedelta(days=days * (n + 1)))
        for n, w in enumerate(winners)
    ]


def test_rotating_winners() -> None:
    [hit] = R.rotating_winners(wins(S1, S2, S1, S2), P)
    assert hit.party_org_id == B and len(hit.evidence["procedures"]) == 4
    assert R.rotating_winners(wins(S1, S2, S1), P) == []  # three procedures
    assert R.rotating_winners(wins(S1, S2, S3, S1), P) == []  # three winners
    assert R.rotating_winners(wins(S1, S2, S1, S2, days=100), P) == []  # older than twelve months


def test_unreviewed_designation_goes_to_the_reviewing_center() -> None:
    due = R.DesignationFact(uuid.uuid4(), S1, "410100", "C22010200", NOW - timedelta(seconds=1), C)
    [hit] = R.unreviewed_designation([due], P)
    assert hit.party_org_id == C
    not_yet = R.DesignationFact(uuid.uuid4(), S1, "410100", "C22010200", NOW, C)
    assert R.unreviewed_designation([not_yet], P) == []


def test_the_catalogue_names_every_rule_once() -> None:
    codes = [r.code for r in R.catalogue()]
    assert len(codes) == len(set(codes)) == 14


def test_the_order_statuses_the_rules_read_are_the_orders_own() -> None:
    from mall.orders.models import OrderStatus
    from mall.supervision import rules as r

    assert (r.CANCELLED, r.CONFIRMED, r.SIGNED, r.RECEIVED, r.ACCEPTED) == (
        OrderStatus.CANCELLED,
        OrderStatus.CONFIRMED,
        OrderStatus.SIGNED,
        OrderStatus.RECEIVED,
        OrderStatus.ACCEPTED,
    )
