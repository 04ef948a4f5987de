"""The pure rules of inquiries and reverse auctions: examples for every rule, properties for ordering and money."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidding.rules import (
    AuctionRules,
    Bid,
    BidRefused,
    InquiryRules,
    Outcome,
    Quote,
    abnormally_low,
    abnormally_low_offers,
    award_lapsed,
    check_bid,
    check_quote,
    confirm_deadline,
    current_quotes,
    extended_end,
    inquiry_outcome,
    max_allowed_bid,
    outcome,
    pass_on,
    ranking,
)
from mall.core.errors import RuleViolation
from mall.core.money import CENT, from_cents

D = Decimal
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
MIN = timedelta(minutes=1)
CJK = re.compile(r"[\u4e00-\u9fff]")
SUPPLIERS = ["甲公司", "乙公司", "丙公司", "丁公司", "戊公司"]
# Shared machines: slow generation is not a failure, and no example may fail on time.
PROPS = settings(
    max_examples=2 * settings().max_examples,  # 200, or 40 under `./dev quick`
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def rules(ceiling: str = "1000.00", decrement: str = "10.00", **kw: object) -> AuctionRules:
    return AuctionRules(D(ceiling), D(decrement), **kw)  # type: ignore[arg-type]


def bid(supplier: str, amount: str, seq: int) -> Bid:
    return Bid(supplier, D(amount), START + seq * MIN, seq)


def quote(supplier: str, amount: str, seq: int, **kw: object) -> Quote:
    return Quote(supplier, D(amount), START + seq * MIN, seq, **kw)  # type: ignore[arg-type]


def accepts(r: AuctionRules, amount: Decimal, **kw: object) -> None:
    """check_bid passes: a first bid a minute into the auction, unless `kw` says otherwise."""
    args: dict[str, object] = {
        "own_previous": None,
        "current_lowest": None,
        "now": START + MIN,
        "starts_at": START,
        "ends_at": END,
        **kw,
    }
    check_bid(r, amount, **args)  # type: ignore[arg-type]


def refusal(r: AuctionRules, amount: Decimal, **kw: object) -> BidRefused:
    """check_bid refuses the bid `accepts` would make, with a Chinese message."""
    with pytest.raises(BidRefused) as caught:
        accepts(r, amount, **kw)
    assert CJK.search(caught.value.detail), caught.value.detail
    return caught.value


# ---------------------------------------------------------------- settings and their defaults


def test_auction_defaults_follow_the_domain() -> None:
    r = rules()
    assert r.decrement_is_percent is False
    assert r.beat_lowest is False
    assert r.snipe_window == timedelta(minutes=5)
    assert r.extension == timedelta(minutes=5)
    assert r.max_extensions == 12
    assert r.min_participants == 3
    assert r.confirm_window == timedelta(hours=72)


def test_inquiry_defaults_follow_the_domain() -> None:
    r = InquiryRules(D("5000.00"))
    assert r.min_valid == 3
    assert r.confirm_window == timedelta(hours=72)


@pytest.mark.parametrize(
    ("ceiling", "decrement", "percent", "step"),
    [
        ("1000.00", "10.00", False, "10.00"),
        ("1000.00", "0.5", False, "0.50"),
        ("1000.00", "1", True, "10.00"),
        ("1234.56", "0.5", True, "6.18"),  # 6.1728 rounds up
        ("1.00", "0.1", True, "0.01"),  # 0.001 rounds up to one fen, never to zero
        ("99999.99", "0.0001", True, "0.10"),  # 0.0999999...
        ("200.00", "2.5", True, "5.00"),  # exact, no rounding
    ],
)
def test_min_step(ceiling: str, decrement: str, percent: bool, step: str) -> None:
    got = rules(ceiling, decrement, decrement_is_percent=percent).min_step()
    assert got == D(step)
    assert got.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "kw",
    [
        {"ceiling": "0"},
        {"ceiling": "-1.00"},
        {"ceiling": "100.001"},
        {"ceiling": "NaN"},
        {"decrement": "0"},
        {"decrement": "0.001"},
        {"decrement": "1000.00"},  # an absolute step as large as the ceiling
        {"decrement": "100", "decrement_is_percent": True},
        {"decrement": "0", "decrement_is_percent": True},
        {"decrement": "0.00001", "decrement_is_percent": True},
        {"decrement": "Infinity", "decrement_is_percent": True},
        {"extension": timedelta(0)},
        {"snipe_window": timedelta(minutes=-1)},
        {"max_extensions": -1},
        {"min_participants": 0},
        {"confirm_window": timedelta(0)},
    ],
)
def test_invalid_auction_rules_are_refused_in_chinese(kw: dict[str, object]) -> None:
    ceiling = str(kw.pop("ceiling", "1000.00"))
    decrement = str(kw.pop("decrement", "10.00"))
    with pytest.raises(RuleViolation) as caught:
        rules(ceiling, decrement, **kw)
    assert caught.value.code == "invalid_auction_rules"
    assert CJK.search(caught.value.detail)


@pytest.mark.parametrize("kw", [{"ceiling": D("0")}, {"ceiling": D("1.234")}, {"min_valid": 0}])
def test_invalid_inquiry_rules_are_refused(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"ceiling": D("100.00")}
    args.update(kw)
    with pytest.raises(RuleViolation) as caught:
        InquiryRules(**args)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_inquiry_rules"


# ---------------------------------------------------------------- check_bid


def test_a_refusal_is_a_rule_violation_with_a_stable_code() -> None:
    exc = refusal(rules(), D("1000.01"))
    assert isinstance(exc, RuleViolation)
    assert exc.status == 422
    assert exc.code == "above_ceiling"
    assert "最高限价" in exc.detail
    assert exc.extra == {"max_allowed": "1000.00"}


def test_bidding_is_open_from_the_start_inclusive_to_the_end_exclusive() -> None:
    r = rules()
    exc = refusal(r, D("900.00"), now=START - timedelta(seconds=1))
    assert exc.code == "not_open"
    assert "尚未开始" in exc.detail
    assert "2026-03-02 09:00" in exc.detail  # shown in Beijing time
    accepts(r, D("900.00"), now=START)
    accepts(r, D("900.00"), now=END - timedelta(microseconds=1))
    exc = refusal(r, D("900.00"), now=END)
    assert exc.code == "closed"
    assert "已结束" in exc.detail


def test_time_is_checked_before_the_amount() -> None:
    assert refusal(rules(), D("5000.00"), now=END).code == "closed"


@pytest.mark.parametrize("amount", ["0", "0.00", "-1.00", "1.005", "0.001", "NaN", "Infinity", "-Infinity"])
def test_bad_amounts_are_refused(amount: str) -> None:
    exc = refusal(rules(), D(amount))
    assert exc.code == "bad_amount"
    assert "两位小数" in exc.detail


def test_a_float_is_a_bad_amount() -> None:
    assert refusal(rules(), 900.0).code == "bad_amount"  # type: ignore[arg-type]


def test_the_ceiling_itself_is_allowed_and_whole_yuan_are_fen_amounts() -> None:
    accepts(rules(), D("1000.00"))
    accepts(rules(), D("999"))
    assert refusal(rules(), D("1000.01")).code == "above_ceiling"


def test_default_rule_beats_own_previous_bid_by_the_decrement() -> None:
    r = rules()
    exc = refusal(r, D("890.01"), own_previous=D("900.00"))
    assert exc.code == "not_below_own"
    assert "上一次报价" in exc.detail and "¥10.00" in exc.detail and "¥890.00" in exc.detail
    assert exc.extra == {"max_allowed": "890.00"}
    assert refusal(r, D("900.00"), own_previous=D("900.00")).code == "not_below_own"
    accepts(r, D("890.00"), own_previous=D("900.00"))


def test_default_rule_does_not_require_beating_the_lowest() -> None:
    # The supplier may tie or stay above the current lowest; ties go to the earlier bid at the end.
    accepts(rules(), D("800.00"), own_previous=D("900.00"), current_lowest=D("700.00"))
    accepts(rules(), D("700.00"), own_previous=D("900.00"), current_lowest=D("700.00"))


def test_beat_lowest_option_requires_the_decrement_below_the_lowest() -> None:
    r = rules(beat_lowest=True)
    exc = refusal(r, D("690.01"), own_previous=D("900.00"), current_lowest=D("700.00"))
    assert exc.code == "not_below_lowest"
    assert "当前最低报价" in exc.detail and "¥690.00" in exc.detail
    assert exc.extra == {"max_allowed": "690.00"}
    accepts(r, D("690.00"), own_previous=D("900.00"), current_lowest=D("700.00"))
    # The first bid of the auction only has to respect the ceiling.
    accepts(r, D("1000.00"))


def test_percent_decrement_is_applied_in_whole_fen() -> None:
    r = rules("1234.56", "0.5", decrement_is_percent=True)  # step 6.18
    assert refusal(r, D("993.83"), own_previous=D("1000.00")).code == "not_below_own"
    accepts(r, D("993.82"), own_previous=D("1000.00"))


def test_no_room_left_to_decrease() -> None:
    exc = refusal(rules(), D("0.01"), own_previous=D("5.00"))
    assert exc.code == "not_below_own"
    assert "已无法继续降价" in exc.detail
    assert max_allowed_bid(rules(), own_previous=D("5.00"), current_lowest=None) == D("-5.00")


def test_max_allowed_bid() -> None:
    assert max_allowed_bid(rules(), own_previous=None, current_lowest=D("500.00")) == D("1000.00")
    assert max_allowed_bid(rules(), own_previous=D("900.00"), current_lowest=D("500.00")) == D("890.00")
    strict = rules(beat_lowest=True)
    assert max_allowed_bid(strict, own_previous=D("900.00"), current_lowest=D("500.00")) == D("490.00")


def test_naive_datetimes_are_a_programming_error() -> None:
    naive = datetime(2026, 3, 2, 9, 30)  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        check_bid(
            rules(),
            D("1.00"),
            own_previous=None,
            current_lowest=None,
            now=naive,
            starts_at=START,
            ends_at=END,
        )


# ---------------------------------------------------------------- anti-sniping


def test_a_bid_before_the_window_does_not_extend() -> None:
    assert extended_end(rules(), bid_at=END - 6 * MIN, ends_at=END, extensions_so_far=0) == (END, 0)


def test_a_bid_in_the_last_minutes_extends_to_five_minutes_after_it() -> None:
    at = END - timedelta(seconds=30)
    assert extended_end(rules(), bid_at=at, ends_at=END, extensions_so_far=0) == (at + 5 * MIN, 1)
    assert extended_end(rules(), bid_at=at, ends_at=END, extensions_so_far=4) == (at + 5 * MIN, 5)


def test_a_bid_exactly_five_minutes_before_the_end_changes_nothing() -> None:
    # It is in the window, but "five minutes after it" is the current end: no extension is counted.
    assert extended_end(rules(), bid_at=END - 5 * MIN, ends_at=END, extensions_so_far=0) == (END, 0)


def test_a_longer_extension_than_window_extends_from_the_window_start() -> None:
    r = rules(extension=10 * MIN)
    assert extended_end(r, bid_at=END - 5 * MIN, ends_at=END, extensions_so_far=0) == (END + 5 * MIN, 1)


def test_extensions_stop_at_the_cap() -> None:
    at = END - MIN
    assert extended_end(rules(), bid_at=at, ends_at=END, extensions_so_far=12) == (END, 12)
    assert extended_end(rules(max_extensions=2), bid_at=at, ends_at=END, extensions_so_far=2) == (END, 2)


def test_anti_sniping_can_be_turned_off() -> None:
    at = END - MIN
    assert extended_end(rules(max_extensions=0), bid_at=at, ends_at=END, extensions_so_far=0) == (END, 0)
    assert extended_end(rules(snipe_window=timedelta(0)), bid_at=at, ends_at=END, extensions_so_far=0) == (
        END,
        0,
    )


def test_a_bid_at_or_after_the_end_extends_nothing() -> None:
    assert extended_end(rules(), bid_at=END, ends_at=END, extensions_so_far=0) == (END, 0)
    assert extended_end(rules(), bid_at=END + MIN, ends_at=END, extensions_so_far=0) == (END, 0)


# ---------------------------------------------------------------- ranking, outcome, award


def test_ranking_keeps_each_suppliers_best_bid_and_breaks_ties_by_acceptance() -> None:
    bids = [
        bid("甲", "900.00", 1),
        bid("乙", "880.00", 2),
        bid("甲", "850.00", 3),
        bid("丙", "850.00", 4),
        bid("乙", "870.00", 5),
    ]
    assert ranking(bids) == [bids[2], bids[3], bids[4]]
    assert ranking(bids, disqualified={"甲"}) == [bids[3], bids[4]]


def test_ranking_prefers_a_suppliers_earlier_bid_of_equal_amount() -> None:
    early, late = bid("甲", "850.00", 3), bid("甲", "850.00", 7)
    assert ranking([late, early]) == [early]


def test_too_few_suppliers_fail_the_auction() -> None:
    bids = [bid("甲", "900.00", 1), bid("乙", "880.00", 2), bid("甲", "870.00", 3)]
    result = outcome(rules(), bids)
    assert result.failed
    assert result.winner is None
    assert result.failed_reason == "有效报价供应商不足3家（实际2家），竞价失败（废标）"
    assert [b.supplier for b in result.ranked] == ["甲", "乙"]  # still published with the failure notice


def test_three_suppliers_make_a_winner() -> None:
    bids = [bid("甲", "900.00", 1), bid("乙", "880.00", 2), bid("丙", "880.00", 3)]
    result = outcome(rules(), bids)
    assert not result.failed
    assert result.failed_reason == ""
    assert result.winner == bids[1]
    assert outcome(rules(), bids, disqualified={"乙"}).failed
    assert outcome(rules(min_participants=2), bids, disqualified={"乙"}).winner == bids[2]


def test_no_bids_at_all() -> None:
    result = outcome(rules(min_participants=1), [])
    assert result.failed and result.winner is None
    assert "实际0家" in result.failed_reason
    assert Outcome[Bid](()).winner is None


def test_the_award_passes_down_the_ranking() -> None:
    ranked = [bid("甲", "800.00", 3), bid("乙", "850.00", 2), bid("丙", "900.00", 1)]
    assert pass_on(ranked, set()) == ranked[0]
    assert pass_on(ranked, {"甲"}) == ranked[1]
    assert pass_on(ranked, {"甲", "乙"}) == ranked[2]
    assert pass_on(ranked, {"乙"}) == ranked[0]
    assert pass_on(ranked, {"甲", "乙", "丙"}) is None


def test_confirmation_deadline_is_72_hours_after_the_award() -> None:
    assert confirm_deadline(rules(), END) == END + timedelta(hours=72)
    assert confirm_deadline(
        InquiryRules(D("10.00"), confirm_window=timedelta(hours=24)), END
    ) == END + timedelta(hours=24)
    assert not award_lapsed(
        rules(), awarded_at=END, now=END + timedelta(hours=72) - timedelta(microseconds=1)
    )
    assert award_lapsed(rules(), awarded_at=END, now=END + timedelta(hours=72))


# ---------------------------------------------------------------- abnormally low prices


def test_all_three_triggers() -> None:
    # average 300 → 150; second-lowest 300 → 165; ceiling 1000 → 450
    reasons = abnormally_low(D("100.00"), [D("100.00"), D("300.00"), D("500.00")], D("1000.00"))
    assert len(reasons) == 3
    assert "平均值" in reasons[0] and "50%" in reasons[0] and "¥300.00" in reasons[0]
    assert "次低报价" in reasons[1] and "55%" in reasons[1] and "¥300.00" in reasons[1]
    assert "最高限价" in reasons[2] and "45%" in reasons[2] and "¥1,000.00" in reasons[2]


def test_each_trigger_alone_and_its_boundary() -> None:
    ceiling = D("1000.00")
    # below 45 % of the ceiling only
    assert abnormally_low(D("449.99"), [D("449.99"), D("450.00"), D("460.00")], ceiling) == [
        "报价低于最高限价¥1,000.00的45%"
    ]
    assert abnormally_low(D("450.00"), [D("450.00"), D("460.00"), D("470.00")], ceiling) == []
    # below 55 % of the second-lowest only: 549.99 < 0.55 × 1000.00; average 849.997 → 425.00 is not reached
    second = abnormally_low(D("549.99"), [D("549.99"), D("1000.00"), D("1000.00")], ceiling)
    assert second == ["报价低于次低报价¥1,000.00的55%"]
    assert abnormally_low(D("550.00"), [D("550.00"), D("1000.00"), D("1000.00")], ceiling) == []
    # below 50 % of the average only (many high prices, a close second-lowest)
    amounts = [D("500.00"), D("600.00")] + [D("1000.00")] * 20 + [D("100000.00")] * 2
    flagged = abnormally_low(D("500.00"), amounts, D("100000.00"))
    assert len(flagged) == 2 and "平均值" in flagged[0] and "最高限价" in flagged[1]


def test_average_boundary_is_exact() -> None:
    # average of [100, 300] is 200: 100 is exactly 50 %, not below it
    assert not any(
        "平均值" in r for r in abnormally_low(D("100.00"), [D("100.00"), D("300.00")], D("200.00"))
    )
    assert any("平均值" in r for r in abnormally_low(D("99.99"), [D("99.99"), D("300.00")], D("200.00")))


def test_second_lowest_rule_only_concerns_the_lowest_price() -> None:
    # 300 is far below 55 % of 1000, but it is not the lowest: the rule compares with the second-lowest (300)
    assert abnormally_low(D("300.00"), [D("280.00"), D("300.00"), D("1000.00")], D("600.00")) == []
    # two equal lowest prices: the second-lowest equals them, nothing is tripped
    assert abnormally_low(D("100.00"), [D("100.00"), D("100.00")], D("200.00")) == []


def test_the_amount_must_be_among_the_final_amounts() -> None:
    with pytest.raises(ValueError, match="include"):
        abnormally_low(D("1.00"), [D("2.00")], D("10.00"))


def test_abnormally_low_offers_names_the_suppliers() -> None:
    ranked = ranking([bid("甲", "100.00", 1), bid("乙", "900.00", 2), bid("丙", "950.00", 3)])
    flagged = abnormally_low_offers(ranked, D("1000.00"))
    assert list(flagged) == ["甲"]
    assert len(flagged["甲"]) == 3


# ---------------------------------------------------------------- online inquiry


def test_check_quote() -> None:
    r = InquiryRules(D("500.00"))
    check_quote(r, D("500.00"), now=START, deadline=END)
    for amount, kw, code, words in [
        (D("500.01"), {"now": START}, "above_ceiling", "最高限价"),
        (D("0.00"), {"now": START}, "bad_amount", "两位小数"),
        (D("9.999"), {"now": START}, "bad_amount", "两位小数"),
        (D("100.00"), {"now": END}, "closed", "已截止"),
    ]:
        with pytest.raises(BidRefused) as caught:
            check_quote(r, amount, deadline=END, **kw)
        assert caught.value.code == code
        assert words in caught.value.detail


def test_a_revision_replaces_the_earlier_quote() -> None:
    quotes = [
        quote("甲", "300.00", 1),
        quote("甲", "320.00", 5),
        quote("乙", "310.00", 2),
        quote("丙", "330.00", 3),
    ]
    result = inquiry_outcome(InquiryRules(D("500.00")), quotes)
    assert [q.seq for q in result.ranked] == [2, 5, 3]  # 甲's lower first quote no longer counts
    assert result.winner == quotes[2]


def test_withdrawing_a_revision_does_not_revive_the_earlier_quote() -> None:
    quotes = [quote("甲", "300.00", 1), quote("甲", "290.00", 4, withdrawn=True)]
    assert current_quotes(quotes) == []


def test_rejected_and_withdrawn_quotes_do_not_count_and_too_few_fail() -> None:
    quotes = [
        quote("甲", "300.00", 1, rejected_reason="技术参数不满足采购需求"),
        quote("乙", "310.00", 2),
        quote("丙", "320.00", 3, withdrawn=True),
        quote("丁", "330.00", 4),
    ]
    result = inquiry_outcome(InquiryRules(D("500.00")), quotes)
    assert result.failed and result.winner is None
    assert result.failed_reason == "有效报价不足3家（实际2家），询价失败（流标）"
    assert [q.supplier for q in result.ranked] == ["乙", "丁"]
    assert inquiry_outcome(InquiryRules(D("500.00"), min_valid=2), quotes).winner == quotes[1]


def test_a_blank_rejection_reason_is_no_rejection() -> None:
    assert not quote("甲", "1.00", 1, rejected_reason="  ").rejected
    assert quote("甲", "1.00", 1, rejected_reason="资质不符").rejected


def test_equal_quotes_go_to_the_earlier() -> None:
    quotes = [quote("甲", "300.00", 9), quote("乙", "300.00", 4), quote("丙", "300.00", 6)]
    assert inquiry_outcome(InquiryRules(D("500.00")), quotes).winner == quotes[1]


# ---------------------------------------------------------------- properties: money


cents = st.integers(min_value=1, max_value=10**12)


@PROPS
@given(ceiling=cents, percent_units=st.integers(min_value=1, max_value=999_999))
def test_percent_step_is_whole_fen_and_never_below_the_percentage(ceiling: int, percent_units: int) -> None:
    percent = D(percent_units) / 10_000  # 0.0001 % .. 99.9999 %
    r = AuctionRules(from_cents(ceiling), percent, decrement_is_percent=True)
    step = r.min_step()
    exact = Fraction(ceiling, 100) * Fraction(percent_units, 10_000) / 100
    assert step == step.quantize(CENT)
    assert step >= CENT
    assert Fraction(step) >= exact
    assert Fraction(step) - exact < Fraction(1, 100)  # rounded up by less than one fen


@st.composite
def auction_rules(draw: st.DrawFn) -> AuctionRules:
    ceiling = draw(st.integers(min_value=2, max_value=10_000_000))
    beat = draw(st.booleans())
    if draw(st.booleans()):
        return AuctionRules(
            from_cents(ceiling),
            D(draw(st.integers(1, 100_000))) / 10_000,
            decrement_is_percent=True,
            beat_lowest=beat,
        )
    step = draw(st.integers(min_value=1, max_value=min(ceiling - 1, ceiling // 20 + 1)))
    return AuctionRules(from_cents(ceiling), from_cents(step), beat_lowest=beat)


MALFORMED = [D("0"), D("-1.00"), D("0.001"), D("12.345"), D("NaN"), D("Infinity")]


@PROPS
@given(r=auction_rules(), data=st.data())
def test_replayed_bids_respect_the_ceiling_and_the_decrement(r: AuctionRules, data: st.DataObject) -> None:
    step = r.min_step()
    own: dict[str, Decimal] = {}
    accepted: list[tuple[str, Decimal]] = []
    lowest: Decimal | None = None
    for i in range(data.draw(st.integers(min_value=1, max_value=40))):
        supplier = data.draw(st.sampled_from(SUPPLIERS[:4]))
        limit = max_allowed_bid(r, own_previous=own.get(supplier), current_lowest=lowest)
        kind = data.draw(st.sampled_from(["boundary", "steps", "ceiling", "any", "malformed"]))
        if kind == "boundary":
            amount = limit + data.draw(st.integers(-3, 3)) * CENT
        elif kind == "steps":
            amount = limit - data.draw(st.integers(0, 3)) * step
        elif kind == "ceiling":
            amount = r.ceiling + data.draw(st.integers(-2, 2)) * CENT
        elif kind == "any":
            amount = from_cents(data.draw(st.integers(1, int(r.ceiling * 120))))
        else:
            amount = data.draw(st.sampled_from(MALFORMED))
        try:
            check_bid(
                r,
                amount,
                own_previous=own.get(supplier),
                current_lowest=lowest,
                now=START + i * timedelta(seconds=1),
                starts_at=START,
                ends_at=END,
            )
        except BidRefused as exc:
            well_formed = amount.is_finite() and amount > 0 and amount == amount.quantize(CENT)
            assert (exc.code == "bad_amount") == (not well_formed)
            assert exc.code != "above_ceiling" or amount > r.ceiling
            assert exc.code != "not_below_own" or amount > own[supplier] - step
            assert exc.code != "not_below_lowest" or (
                r.beat_lowest and lowest is not None and amount > lowest - step
            )
            assert exc.code in {"bad_amount", "above_ceiling", "not_below_own", "not_below_lowest"}
            # A refused well-formed amount is exactly one above what the rules allow.
            assert not well_formed or amount > limit
            continue
        # Accepted: a fen amount, within the ceiling and every decrement rule in force.
        assert amount == amount.quantize(CENT) and amount > 0
        assert amount <= r.ceiling
        assert amount <= limit
        if supplier in own:
            assert own[supplier] - amount >= step
        if r.beat_lowest and lowest is not None:
            assert lowest - amount >= step
        own[supplier] = amount
        lowest = amount if lowest is None else min(lowest, amount)
        accepted.append((supplier, amount))

    for supplier in own:
        mine = [a for s, a in accepted if s == supplier]
        assert all(earlier - later >= step for earlier, later in itertools.pairwise(mine))
    if r.beat_lowest:
        # Every accepted bid is a new lowest, by at least the step.
        amounts = [a for _, a in accepted]
        assert all(earlier - later >= step for earlier, later in itertools.pairwise(amounts))


@PROPS
@given(
    r=auction_rules(),
    offset=st.one_of(st.integers(-(10**6), -1), st.integers(0, 10**6)),
    amount=st.integers(1, 10**9).map(from_cents),
)
def test_no_bid_outside_the_open_period(r: AuctionRules, offset: int, amount: Decimal) -> None:
    # offset < 0: before the start; offset >= 0: at or after the end.
    now = START + timedelta(seconds=offset) if offset < 0 else END + timedelta(seconds=offset)
    with pytest.raises(BidRefused) as caught:
        check_bid(r, amount, own_previous=None, current_lowest=None, now=now, starts_at=START, ends_at=END)
    assert caught.value.code == ("not_open" if offset < 0 else "closed")


# ---------------------------------------------------------------- properties: ordering


@st.composite
def bid_lists(draw: st.DrawFn) -> list[Bid]:
    rows = draw(
        st.lists(st.tuples(st.sampled_from(SUPPLIERS), st.integers(1, 50)), min_size=0, max_size=30)
    )  # few distinct amounts, so that ties are common
    seqs = draw(st.permutations(list(range(1, len(rows) + 1))))
    return [
        Bid(s, from_cents(c * 100), START + seq * MIN, seq) for (s, c), seq in zip(rows, seqs, strict=True)
    ]


@PROPS
@given(bids=bid_lists(), data=st.data())
def test_ranking_is_a_total_order_independent_of_input_order(bids: list[Bid], data: st.DataObject) -> None:
    ranked = ranking(bids)
    shuffled = data.draw(st.permutations(bids))
    assert ranking(shuffled) == ranked
    # one entry per supplier that bid, each its best (lowest amount, then earliest)
    assert sorted(b.supplier for b in ranked) == sorted({b.supplier for b in bids})
    for entry in ranked:
        mine = [b for b in bids if b.supplier == entry.supplier]
        assert entry == min(mine, key=lambda b: (b.amount, b.seq))
    # strictly ordered by (amount, seq)
    assert all((a.amount, a.seq) < (b.amount, b.seq) for a, b in itertools.pairwise(ranked))
    if bids:
        lowest = min(b.amount for b in bids)
        assert ranked[0].amount == lowest
        assert ranked[0].seq == min(b.seq for b in bids if b.amount == lowest)


@PROPS
@given(bids=bid_lists(), min_participants=st.integers(1, 5), declined=st.sets(st.sampled_from(SUPPLIERS)))
def test_outcome_and_pass_on(bids: list[Bid], min_participants: int, declined: set[str]) -> None:
    r = rules(min_participants=min_participants)
    result = outcome(r, bids)
    distinct = len({b.supplier for b in bids})
    assert result.failed == (distinct < min_participants)
    assert (result.winner is None) == result.failed
    if result.failed:
        assert (
            f"不足{min_participants}家" in result.failed_reason
            and f"实际{distinct}家" in result.failed_reason
        )
    else:
        assert result.winner == result.ranked[0]
    holder = pass_on(result.ranked, declined)
    remaining = [b for b in result.ranked if b.supplier not in declined]
    assert holder == (remaining[0] if remaining else None)


@PROPS
@given(
    window_s=st.integers(0, 600),
    extension_s=st.integers(1, 600),
    cap=st.integers(0, 6),
    offsets=st.lists(st.integers(0, 5400), min_size=0, max_size=40),
)
def test_extended_end_properties(window_s: int, extension_s: int, cap: int, offsets: list[int]) -> None:
    r = rules(
        snipe_window=timedelta(seconds=window_s), extension=timedelta(seconds=extension_s), max_extensions=cap
    )
    scheduled = END
    end, count = scheduled, 0
    for at in sorted(START + timedelta(seconds=o) for o in offsets):
        if at >= end:
            break  # refused by check_bid: the auction has closed
        new_end, new_count = extended_end(r, bid_at=at, ends_at=end, extensions_so_far=count)
        should = count < cap and end - r.snipe_window <= at and at + r.extension > end
        assert (new_end, new_count) == ((at + r.extension, count + 1) if should else (end, count))
        assert new_end >= end  # never earlier
        assert new_count <= cap
        assert new_end - scheduled <= new_count * r.extension
        if new_count:
            assert new_end - scheduled < new_count * r.extension  # each extension adds less than one
        end, count = new_end, new_count
    assert end <= scheduled + cap * r.extension


@PROPS
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(SUPPLIERS), st.integers(1, 20), st.booleans(), st.booleans()), max_size=25
    ),
    min_valid=st.integers(1, 5),
    data=st.data(),
)
def test_inquiry_outcome_counts_only_current_valid_quotes(
    rows: list[tuple[str, int, bool, bool]], min_valid: int, data: st.DataObject
) -> None:
    seqs = data.draw(st.permutations(list(range(1, len(rows) + 1))))
    quotes = [
        Quote(
            s,
            from_cents(c * 100),
            START + seq * MIN,
            seq,
            withdrawn=w,
            rejected_reason="不符合要求" if rej else "",
        )
        for (s, c, w, rej), seq in zip(rows, seqs, strict=True)
    ]
    latest: dict[str, Quote] = {}
    for q in sorted(quotes, key=lambda q: q.seq):
        latest[q.supplier] = q
    expected = sorted(
        (q for q in latest.values() if not q.withdrawn and not q.rejected_reason),
        key=lambda q: (q.amount, q.seq),
    )
    result = inquiry_outcome(
        InquiryRules(D("5000.00"), min_valid=min_valid), data.draw(st.permutations(quotes))
    )
    assert list(result.ranked) == expected
    assert result.failed == (len(expected) < min_valid)
    if result.failed:
        assert f"实际{len(expected)}家" in result.failed_reason
        assert result.winner is None
    else:
        assert result.winner == expected[0]
        assert result.winner is not None and not result.winner.withdrawn and not result.winner.rejected


@PROPS
@given(
    amounts=st.lists(st.integers(1, 10**7), min_size=1, max_size=8),
    ceiling_extra=st.integers(0, 10**7),
)
def test_abnormally_low_matches_exact_fractions(amounts: list[int], ceiling_extra: int) -> None:
    finals = [from_cents(a) for a in amounts]
    ceiling = from_cents(max(amounts) + ceiling_extra)
    average = Fraction(sum(amounts), 100 * len(amounts))
    second = Fraction(sorted(amounts)[1], 100) if len(amounts) >= 2 else None
    for a in finals:
        x = Fraction(a)
        reasons = abnormally_low(a, finals, ceiling)
        assert any("平均值" in t for t in reasons) == (x < average * Fraction(1, 2))
        assert any("次低" in t for t in reasons) == (second is not None and x < second * Fraction(55, 100))
        assert any("最高限价" in t for t in reasons) == (x < Fraction(ceiling) * Fraction(45, 100))
        assert all(CJK.search(t) for t in reasons)
