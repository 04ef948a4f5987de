"""The acceptance report (验收单) as an A4 PDF, made with ReportLab from the report and its order.

The Chinese is set in the mall's CJK font (mall.core.pdf_fonts), as the e-contract is.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from mall.core import clock
from mall.core.money import quantity_str
from mall.core.pdf_fonts import build, font_name
from mall.orders.models import AcceptanceReport, AcceptanceResult, Order


def report_pdf(order: Order, report: AcceptanceReport, font_path: str = "") -> bytes:
    font = font_name(font_path)
    base = ParagraphStyle("base", fontName=font, fontSize=10, leading=14)
    title = ParagraphStyle("title", parent=base, fontSize=16, leading=22, alignment=1)

    def p(value: object) -> Paragraph:
        return Paragraph(escape(str(value)).replace("\n", "<br/>"), base)

    by_id = {x.id: x for x in order.lines}
    result = AcceptanceResult(report.result).label
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"验收单 {order.order_no}-{report.seq}",
    )
    rows: list[list[Any]] = [[p(h) for h in ("序号", "商品", "品目", "验收数量", "结果", "验收意见")]]
    for x in report.lines:
        line = by_id[x.order_line_id]
        outcome = "合格" if x.passed else f"不合格（退回 {quantity_str(x.refused_quantity)}{line.unit}）"
        rows.append(
            [
                p(x.line_no),
                p(f"{line.item_name}\n{line.brand} {line.spec_model}".strip()),
                p(line.category_code),
                p(f"{quantity_str(x.quantity)} {line.unit}"),
                p(outcome),
                p(x.note or "—"),
            ]
        )
    table = Table(rows, repeatRows=1, colWidths=[12 * mm, 58 * mm, 24 * mm, 22 * mm, 30 * mm, 34 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    score = f"{report.score} 分" if report.score is not None else "—"
    story: list[Any] = [
        Paragraph("政府采购履约验收单", title),
        Spacer(1, 4 * mm),
        p(f"验收单编号：{order.order_no}-{report.seq}    合同编号：{order.contract_no or '—'}"),
        p(f"采购人：{order.buyer.name}（{order.buyer.credit_code}）"),
        p(f"供应商：{order.supplier.name}（{order.supplier.credit_code}）"),
        p(f"合同金额：{order.total_amount:,.2f} 元    验收日期：{report.inspected_on.isoformat()}"),
        p(f"验收人员：{'、'.join(report.inspectors.splitlines())}"),
        Spacer(1, 3 * mm),
        table,
        Spacer(1, 4 * mm),
        p(f"验收结论：{result}"),
        p(f"履约评价：{score}" + (f"    {report.comment}" if report.comment else "")),
        Spacer(1, 8 * mm),
        p("验收人员签字：______________________    采购人（盖章）：______________________"),
        Spacer(1, 3 * mm),
        p(f"本验收单由政府采购电子卖场于 {clock.local_display(report.made_at)} 生成。"),
    ]
    build(doc, story)
    return buf.getvalue()
