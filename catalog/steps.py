"""A listing's and a designation application's current step, who acts next and by when
(mall.core.steps)."""

from __future__ import annotations

from catalog.models import Designation, DesignationStatus, Listing, ListingStatus
from mall.core import clock
from mall.core.steps import NextStep, end_of_day
from mall.core.workdays import WorkCalendar

# The center reviews a submitted listing within this many working days, as it does a designation
# application (DOMAIN: review within 7 working days); the review queue flags the late ones.
LISTING_REVIEW_WORKING_DAYS = 7
# The center reviews an application to the open designated list within this many working days.
REVIEW_WORKING_DAYS = 7


def listing_step(listing: Listing, calendar: WorkCalendar) -> NextStep:
    st = listing.status
    if st == ListingStatus.DRAFT:
        return NextStep("草稿", "supplier", "补全商品信息与参考价格后提交审核")
    if st == ListingStatus.SUBMITTED:
        due = None
        if listing.submitted_at is not None:
            day = calendar.add_working_days(
                clock.local_date(listing.submitted_at), LISTING_REVIEW_WORKING_DAYS
            )
            due = end_of_day(day)
        return NextStep(
            "待审核",
            "center",
            "审核商品信息与价格，通过后上架或退回",
            due,
            f"提交后 {LISTING_REVIEW_WORKING_DAYS} 个工作日内审核",
        )
    if st == ListingStatus.REJECTED:
        return NextStep("已退回", "supplier", "按退回意见修改后重新提交审核")
    if st == ListingStatus.LIVE:
        return NextStep("在售", None, "采购人可搜索、加入购物车并下单")
    if st == ListingStatus.DELISTED:
        if listing.status_by == "supplier":
            return NextStep("已下架", "supplier", "需要时可恢复上架")
        return NextStep("已下架", listing.status_by or "center", "下架方核实后可恢复上架")
    # frozen: only the side that froze it (or a higher one) lifts it
    return NextStep("已冻结", listing.status_by or "center", "核查后解冻或下架")


def designation_step(d: Designation) -> NextStep:
    st = d.status
    if st == DesignationStatus.APPLIED:
        return NextStep(
            "待审核",
            "center",
            "审核定点申请与服务价格",
            d.review_due_at,
            f"申请后 {REVIEW_WORKING_DAYS} 个工作日内审核",
        )
    if st == DesignationStatus.APPROVED:
        return NextStep("定点中", None, "采购人可按定点价格直接下单")
    if st == DesignationStatus.REJECTED:
        return NextStep("未通过", "supplier", "可按审核意见调整后重新申请")
    return NextStep("已撤销", None, "定点资格已撤销")
