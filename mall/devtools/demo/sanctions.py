"""Demo sanctions: a buyer's report upheld with a three-month suspension (the supplier is on the
public list, and every path refuses it), a warning in force, and a report waiting for the center."""

from __future__ import annotations

import uuid

from mall.core import files
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.settings import Settings
from mall.sanctions import reports, service

# A one-page PDF: the buyer's written reminder, as evidence.
EVIDENCE = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def make_sanctions(
    db: Database, settings: Settings, principals: dict[str, Principal]
) -> dict[str, int]:
    store = files.store_for(settings, db)
    center = principals["center1"]

    def org(name: str) -> uuid.UUID:
        org_id = principals[name].org_id
        assert org_id is not None
        return org_id

    upheld = await reports.file_report(
        db,
        settings,
        store,
        principals["buyer2"],
        org("supplier6"),
        "withdrew",
        "询价成交后以原材料涨价为由拒绝签订合同，经两次书面催告仍未签约，导致会议材料印刷延误。",
        [("催告函.pdf", EVIDENCE)],
    )
    terms = service.checked(
        center, "suspension", 3, "成交后无正当理由拒绝签订合同", "《政府采购法》第七十七条第一款"
    )
    await reports.decide(
        db, settings, center, upheld.id, "upheld", "经核实，供应商在成交后拒绝签约属实，且无正当理由。", terms
    )
    await service.impose(
        db,
        settings,
        center,
        org("supplier3"),
        "warning",
        6,
        "多次未在约定期限内交货（逾期 5 至 12 天），经提醒后仍未改正",
        "《政府采购电子卖场管理办法》供应商管理条款",
    )
    await reports.file_report(
        db,
        settings,
        store,
        principals["buyer1"],
        org("supplier2"),
        "quality",
        "验收时发现所供打印机型号与合同约定不符（约定 LaserJet M208dw，实供 M207），已拒收。",
        [("验收照片说明.pdf", EVIDENCE)],
    )
    return {"reports": 2, "sanctions": 2}
