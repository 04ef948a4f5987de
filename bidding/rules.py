"""The pure rules of online inquiries (在线询价) and reverse auctions (反向竞价).

No I/O, no clock, no randomness: times come in as timezone-aware datetimes, amounts as Decimal
yuan with at most two decimals. Every rule DOMAIN.md marks as a *default* is a field of the
procedure's rules, with that default.

Precise definitions used throughout:
- An amount is valid when it is a finite Decimal, greater than zero, with no fraction of a fen
  (``Decimal("100")`` and ``Decimal("100.00")`` are the same amount; ``Decimal("1.005")`` is refused).
- A procedure is open from ``starts_at`` inclusive to ``ends_at`` / ``deadline`` exclusive.
- ``seq`` is the server's acceptance order, unique within a procedure; it alone breaks ties.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Generic, Literal, TypeVar

from mall.core.clock import local_display
from mall.core.errors import RuleViolation
from mall.core.money import CENT, MAX_AMOUNT, money_str, yuan_display

# 财库〔2026〕2号 triggers for an abnormally low price, as exact fractions (percent).
ABNORMAL_OF_AVERAGE = Decimal(50)
ABNORMAL_OF_SECOND_LOWEST = Decimal(55)
ABNORMAL_OF_CEILING = Decimal(45)
_PERCENT_PLACES = Decimal("0.0001")

RefusalCode = Literal[
    "bad_amount", "above_ceiling", "not_below_own", "not_below_lowest", "not_open", "closed", "stale"
]


class BidRefused(RuleViolation):
    """A bid or a quote the rules refuse. `code` is stable; `detail` is Chinese, for the supplier."""

    def __init__(self, code: RefusalCode, detail: str, **extra: str) -> None:
        super().__init__(detail, code=code, **extra)


def _valid_amount(amount: object) -> bool:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return False
    if amount <= 0 or amount >= MAX_AMOUNT:
        return False
    return amount == amount.quantize(CENT)


def _check_amount(amount: Decimal, ceiling: Decimal) -> None:
    """What any offer must be: money (more than 0, at most two places), at most the ceiling."""
    if not _valid_amount(amount):
        raise BidRefused("bad_amount", "报价须为大于0且最多两位小数的金额")
    if amount > ceiling:
        raise BidRefused(
            "above_ceiling",
            f"报价{yuan_display(amount)}高于最高限价{yuan_display(ceiling)}",
            max_allowed=money_str(ceiling),
        )


def _require_aware(**times: datetime) -> None:
    for name, at in times.items():
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class AuctionRules:
    """The settings of one reverse auction.

    ``decrement`` is yuan when ``decrement_is_percent`` is False, otherwise a percentage of the
    ceiling with at most four decimals (``Decimal("0.5")`` means 0.5 %, not 50 %).
    Anti-sniping: a bid accepted within ``snipe_window`` before the current end moves the end to
    ``extension`` after that bid, at most ``max_extensions`` times (default 12: an auction runs at
    most one hour past its scheduled end). A zero ``snipe_window`` or ``max_extensions`` turns
    anti-sniping off.
    """

    ceiling: Decimal
    decrement: Decimal
    decrement_is_percent: bool = False
    beat_lowest: bool = False
    snipe_window: timedelta = timedelta(minutes=5)
    extension: timedelta = timedelta(minutes=5)
    max_extensions: int = 12
    min_participants: int = 3
    confirm_window: timedelta = timedelta(hours=72)

    def __post_init__(self) -> None:
        if not _valid_amount(self.ceiling):
            raise RuleViolation("最高限价须为大于0且最多两位小数的金额", code="invalid_auction_rules")
        if self.decrement_is_percent:
            if not (isinstance(self.decrement, Decimal) and self.decrement.is_finite()):
                raise RuleViolation("最小降价幅度须为百分比数值", code="invalid_auction_rules")
            if not Decimal(0) < self.decrement < Decimal(100) or self.decrement != self.decrement.quantize(
                _PERCENT_PLACES
            ):
                raise RuleViolation(
                    "最小降价百分比须大于0、小于100且最多四位小数", code="invalid_auction_rules"
                )
        elif not _valid_amount(self.decrement) or self.decrement >= self.ceiling:
            raise RuleViolation(
                "最小降价金额须为大于0、最多两位小数且低于最高限价的金额", code="invalid_auction_rules"
            )
        if self.snipe_window < timedelta(0) or self.extension <= timedelta(0) or self.max_extensions < 0:
            raise RuleViolation("延时竞价设置不合法", code="invalid_auction_rules")
        if self.min_participants < 1:
            raise RuleViolation("最少有效报价供应商数须至少为1", code="invalid_auction_rules")
        if self.confirm_window <= timedelta(0):
            raise RuleViolation("成交确认期限须大于0", code="invalid_auction_rules")

    def min_step(self) -> Decimal:
        """The minimum decrement in yuan; a percentage of the ceiling is rounded up to the fen."""
        if not self.decrement_is_percent:
            return self.decrement.quantize(CENT)
        # Exact: at most 15 + 6 significant digits, well inside Decimal's default 28, so rounding
        # up can never land below the true percentage; a positive amount rounds up to one fen at least.
        exact = self.ceiling * self.decrement / 100
        return exact.quantize(CENT, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class InquiryRules:
    """The settings of one online inquiry (sealed quotes)."""

    ceiling: Decimal
    min_valid: int = 3
    confirm_window: timedelta = timedelta(hours=72)

    def __post_init__(self) -> None:
        if not _valid_amount(self.ceiling):
            raise RuleViolation("最高限价须为大于0且最多两位小数的金额", code="invalid_inquiry_rules")
        if self.min_valid < 1:
            raise RuleViolation("最少有效报价数须至少为1", code="invalid_inquiry_rules")
        if self.confirm_window <= timedelta(0):
            raise RuleViolation("成交确认期限须大于0", code="invalid_inquiry_rules")


@dataclass(frozen=True)
class Bid:
    """An accepted auction bid. Refused attempts belong in the audit log, never here."""

    supplier: str
    amount: Decimal
    at: datetime
    seq: int


@dataclass(frozen=True)
class Quote:
    """A sealed inquiry quote. A revision is a new quote with a higher seq."""

    supplier: str
    amount: Decimal
    at: datetime
    seq: int
    withdrawn: bool = False
    rejected_reason: str = ""  # the buyer's written reason when the quote is non-compliant

    @property
    def rejected(self) -> bool:
        return bool(self.rejected_reason.strip())


OfferT = TypeVar("OfferT", Bid, Quote)


@dataclass(frozen=True)
class Outcome(Generic[OfferT]):
    """The result of a procedure: the valid offers in rank order, and a Chinese reason if it failed.

    A failed procedure still lists its valid offers: the failure notice publishes them.
    """

    ranked: tuple[OfferT, ...]
    failed_reason: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.failed_reason)

    @property
    def winner(self) -> OfferT | None:
        return None if self.failed or not self.ranked else self.ranked[0]


def _rank_key(offer: Bid | Quote) -> tuple[Decimal, int, datetime, str]:
    # Amount, then acceptance order. The last two only make the order total on malformed input
    # (a repeated seq), so that ranking never depends on the order rows came in.
    return (offer.amount, offer.seq, offer.at, offer.supplier)


def evaluated(offer: Bid | Quote, deductions: Mapping[str, Decimal] | None) -> Decimal:
    """The price an offer is ranked at: less the supplier's price deduction (小微企业价格扣除,
    财库〔2020〕46号 第九条), to the cent; its own price without one. The deal is at its own price."""
    rate = (deductions or {}).get(offer.supplier)
    if not rate:
        return offer.amount
    return (offer.amount * (1 - rate)).quantize(CENT, rounding=ROUND_HALF_UP)


def _evaluated_key(
    deductions: Mapping[str, Decimal] | None,
) -> Callable[[Bid | Quote], tuple[Decimal, int, datetime, str]]:
    def key(offer: Bid | Quote) -> tuple[Decimal, int, datetime, str]:
        return (evaluated(offer, deductions), offer.seq, offer.at, offer.supplier)

    return key


# ---------------------------------------------------------------- reverse auction


def max_allowed_bid(
    rules: AuctionRules, *, own_previous: Decimal | None, current_lowest: Decimal | None
) -> Decimal:
    """The highest amount the next bid may have; zero or less means no further bid is possible."""
    limit = rules.ceiling
    step = rules.min_step()
    if own_previous is not None:
        limit = min(limit, own_previous - step)
    if rules.beat_lowest and current_lowest is not None:
        limit = min(limit, current_lowest - step)
    return limit


def check_bid(
    rules: AuctionRules,
    amount: Decimal,
    *,
    own_previous: Decimal | None,
    current_lowest: Decimal | None,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
) -> None:
    """Refuse a bid that breaks a rule (raises BidRefused); return quietly when it may be accepted.

    ``ends_at`` is the current end, anti-sniping extensions included. Checked in this order:
    time, amount format, ceiling, then the decrement rule. The decrement rule: the bid must be at
    least ``min_step()`` below the supplier's own previous bid; with ``beat_lowest``, at least
    ``min_step()`` below the current lowest bid of anyone (the supplier's own included). A
    supplier's first bid (or, with ``beat_lowest``, the auction's first bid) only has to be at
    most the ceiling.
    """
    _require_aware(now=now, starts_at=starts_at, ends_at=ends_at)
    if now < starts_at:
        raise BidRefused("not_open", f"竞价尚未开始，开始时间为{local_display(starts_at)}")
    if now >= ends_at:
        raise BidRefused("closed", "竞价已结束，不再接受报价")
    _check_amount(amount, rules.ceiling)
    step = rules.min_step()
    if rules.beat_lowest and current_lowest is not None:
        _check_undercuts(amount, current_lowest, step, "not_below_lowest", "当前最低报价")
    if own_previous is not None:
        _check_undercuts(amount, own_previous, step, "not_below_own", "本方上一次报价")


def _check_undercuts(amount: Decimal, than: Decimal, step: Decimal, code: RefusalCode, what: str) -> None:
    """A bid must be at least `step` below `than` (the lowest bid, or the bidder's own last one)."""
    limit = than - step
    if amount > limit:
        raise BidRefused(
            code,
            f"报价须比{what}{yuan_display(than)}至少低{yuan_display(step)}" + _limit_text(limit),
            max_allowed=money_str(limit),
        )


def _limit_text(limit: Decimal) -> str:
    return f"，即不高于{yuan_display(limit)}" if limit > 0 else "，已无法继续降价"


def extended_end(
    rules: AuctionRules, *, bid_at: datetime, ends_at: datetime, extensions_so_far: int
) -> tuple[datetime, int]:
    """The end after an accepted bid at ``bid_at``, and the number of extensions so far.

    The end moves to ``bid_at + extension`` when ``ends_at - snipe_window <= bid_at < ends_at``,
    that is later than ``ends_at``, and fewer than ``max_extensions`` extensions were made;
    otherwise nothing changes. Each extension therefore adds less than ``extension``: the end
    never moves earlier and never passes ``scheduled end + max_extensions * extension``.
    """
    _require_aware(bid_at=bid_at, ends_at=ends_at)
    unchanged = (ends_at, extensions_so_far)
    if extensions_so_far >= rules.max_extensions:
        return unchanged
    if not ends_at - rules.snipe_window <= bid_at < ends_at:
        return unchanged
    new_end = bid_at + rules.extension
    if new_end <= ends_at:
        return unchanged
    return new_end, extensions_so_far + 1


def ranking(
    bids: Iterable[Bid],
    *,
    disqualified: Collection[str] = (),
    deductions: Mapping[str, Decimal] | None = None,
) -> list[Bid]:
    """Each supplier's best bid (lowest; for equal amounts the earliest accepted), in rank order.

    Rank order: lower amount first (after a small or micro supplier's price deduction, `deductions`
    by supplier), equal amounts by earlier acceptance (seq). Suppliers in ``disqualified`` (e.g.
    after an abnormally-low-price review) are left out.
    """
    best: dict[str, Bid] = {}
    for bid in bids:
        if bid.supplier in disqualified:
            continue
        held = best.get(bid.supplier)
        if held is None or _rank_key(bid) < _rank_key(held):
            best[bid.supplier] = bid
    return sorted(best.values(), key=_evaluated_key(deductions))


def outcome(
    rules: AuctionRules,
    bids: Iterable[Bid],
    *,
    disqualified: Collection[str] = (),
    deductions: Mapping[str, Decimal] | None = None,
) -> Outcome[Bid]:
    """At the end: fewer than ``min_participants`` suppliers with a valid bid → failed (废标)."""
    ranked = tuple(ranking(bids, disqualified=disqualified, deductions=deductions))
    if len(ranked) < rules.min_participants:
        return Outcome(
            ranked, f"有效报价供应商不足{rules.min_participants}家（实际{len(ranked)}家），竞价失败（废标）"
        )
    return Outcome(ranked)


# ---------------------------------------------------------------- both procedures


def abnormally_low(amount: Decimal, final_amounts: Sequence[Decimal], ceiling: Decimal) -> list[str]:
    """Chinese reasons why ``amount`` is abnormally low (财库〔2026〕2号); empty when it is not.

    ``final_amounts`` holds every supplier's final valid price, one per supplier, ``amount``
    included (the amounts of a ranking). The triggers, compared exactly (no rounding):
    - below 50 % of the average, the arithmetic mean of all of ``final_amounts``;
    - below 55 % of the second-lowest, the second smallest of ``final_amounts`` (counting equal
      prices separately); only the lowest price can trip it, and only with two or more prices;
    - below 45 % of the ceiling.
    """
    if amount not in final_amounts:
        raise ValueError("final_amounts must include the amount under review")
    reasons: list[str] = []
    n = len(final_amounts)
    total = sum(final_amounts, Decimal(0))
    # amount < total / n * 50 / 100, multiplied out so that nothing is rounded.
    if amount * n * 100 < total * ABNORMAL_OF_AVERAGE:
        average = (total / n).quantize(CENT)
        reasons.append(f"报价低于全部有效报价平均值{yuan_display(average)}的50%")
    if n >= 2:
        second_lowest = sorted(final_amounts)[1]
        if amount * 100 < second_lowest * ABNORMAL_OF_SECOND_LOWEST:
            reasons.append(f"报价低于次低报价{yuan_display(second_lowest)}的55%")
    if amount * 100 < ceiling * ABNORMAL_OF_CEILING:
        reasons.append(f"报价低于最高限价{yuan_display(ceiling)}的45%")
    return reasons


def abnormally_low_offers(ranked: Sequence[OfferT], ceiling: Decimal) -> dict[str, list[str]]:
    """The suppliers of a ranking whose price is abnormally low, with the reasons, for review."""
    amounts = [offer.amount for offer in ranked]
    flagged: dict[str, list[str]] = {}
    for offer in ranked:
        reasons = abnormally_low(offer.amount, amounts, ceiling)
        if reasons:
            flagged[offer.supplier] = reasons
    return flagged


def pass_on(ranked: Sequence[OfferT], declined: Collection[str]) -> OfferT | None:
    """Who holds the award: the first in rank whose supplier has not declined it or let it lapse."""
    for offer in ranked:
        if offer.supplier not in declined:
            return offer
    return None


def confirm_deadline(rules: AuctionRules | InquiryRules, awarded_at: datetime) -> datetime:
    """The moment the award lapses if the supplier has not confirmed it."""
    _require_aware(awarded_at=awarded_at)
    return awarded_at + rules.confirm_window


def award_lapsed(rules: AuctionRules | InquiryRules, *, awarded_at: datetime, now: datetime) -> bool:
    _require_aware(now=now)
    return now >= confirm_deadline(rules, awarded_at)


# ---------------------------------------------------------------- online inquiry


def check_quote(rules: InquiryRules, amount: Decimal, *, now: datetime, deadline: datetime) -> None:
    """Refuse a quote (or a revision) that breaks a rule: at most the ceiling, before the deadline."""
    _require_aware(now=now, deadline=deadline)
    if now >= deadline:
        raise BidRefused("closed", "询价已截止，不再接受报价")
    _check_amount(amount, rules.ceiling)


def current_quotes(quotes: Iterable[Quote]) -> list[Quote]:
    """The quotes that count: each supplier's latest (highest seq), unless withdrawn or rejected.

    A revision supersedes the earlier quote for good: withdrawing or having the revision rejected
    leaves the supplier without a quote, it never revives the earlier one.
    """
    latest: dict[str, Quote] = {}
    for quote in quotes:
        held = latest.get(quote.supplier)
        if held is None or quote.seq > held.seq:
            latest[quote.supplier] = quote
    return [q for q in latest.values() if not q.withdrawn and not q.rejected]


def inquiry_outcome(
    rules: InquiryRules, quotes: Iterable[Quote], deductions: Mapping[str, Decimal] | None = None
) -> Outcome[Quote]:
    """At the deadline: fewer than ``min_valid`` valid quotes → failed (流标); else the lowest wins
    (after a small or micro supplier's price deduction, `deductions`), equal amounts going to the
    earlier quote (seq)."""
    ranked = tuple(sorted(current_quotes(quotes), key=_evaluated_key(deductions)))
    if len(ranked) < rules.min_valid:
        return Outcome(ranked, f"有效报价不足{rules.min_valid}家（实际{len(ranked)}家），询价失败（流标）")
    return Outcome(ranked)
