"""The e-contract as a PDF: a plain document (`ContractDoc`, made from the order once) and its
rendering with ReportLab, one set of clauses per procurement mode.

The Chinese is set in the mall's CJK font (mall.core.pdf_fonts: Debian's `fonts-wqy-microhei`,
embedded as a subset).

The document names the parties as organizations only (no contact phone, no sole proprietor's
address, the delivery place by reference to the order): it holds no personal data, so the signed
file itself is what the 合同公告 publishes.

The document's keywords name the contract number and both parties' 统一社会信用代码: the verifier
reads them from the first revision, the one both signatures cover.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from mall.core.pdf_fonts import build, font_name

KEYWORD_PREFIX = "sunshine-mall-contract"


@dataclass
class Party:
    name: str
    credit_code: str
    address: str = ""
    phone: str = ""


@dataclass
class Line:
    no: int
    category_code: str
    item_name: str
    brand: str
    spec_model: str
    quantity: str
    unit: str
    unit_price: str
    amount: str


@dataclass
class ContractDoc:
    """What the contract says, made once from the order (mall.contracts.service.document_of)."""

    contract_no: str
    order_no: str
    mode: str
    mode_label: str
    site_name: str
    region_name: str
    buyer: Party
    supplier: Party
    supplier_is_sme: bool
    lines: list[Line]
    total: str
    total_upper: str
    delivery_place: str
    delivery_term: str
    acceptance_plan: str
    payment_terms: str
    planned_payment: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContractDoc:
        d = dict(data)
        d["buyer"] = Party(**d["buyer"])
        d["supplier"] = Party(**d["supplier"])
        d["lines"] = [Line(**x) for x in d["lines"]]
        return cls(**d)


# One set of clauses per mode: what the contract is based on.
MODE_BASIS = {
    "supermarket": "甲方通过电子卖场网上超市直接选购乙方在架商品，以乙方确认的订单价格成交。",
    "agreement": "甲方依据集中采购机构与乙方订立的框架协议下单，成交价格不高于协议价格。",
    "designated": "甲方依据乙方的定点服务资格向乙方采购服务，按定点服务约定的标准和价格履行。",
    "inquiry": "甲方通过电子卖场在线询价，按最低评审价法确定乙方为成交供应商。",
    "auction": "甲方通过电子卖场反向竞价，乙方以最低有效报价成交。",
}

DISPUTES = (
    "因本合同引起的或与本合同有关的争议，双方应协商解决；协商不成的，任何一方可依法向甲方所在地人民法院提起诉讼。"
    "争议期间，合同中不涉及争议的部分继续履行。"
)


def keywords(doc: ContractDoc) -> str:
    return f"{KEYWORD_PREFIX};no={doc.contract_no};buyer={doc.buyer.credit_code};supplier={doc.supplier.credit_code}"


def parse_keywords(value: str) -> dict[str, str]:
    parts = value.split(";")
    if not parts or parts[0] != KEYWORD_PREFIX:
        return {}
    return dict(p.split("=", 1) for p in parts[1:] if "=" in p)


def render(doc: ContractDoc, *, font_path: str = "") -> bytes:
    """The contract as an A4 PDF. Deterministic: the same document gives the same bytes."""
    font = font_name(font_path)
    base = ParagraphStyle("base", fontName=font, fontSize=10, leading=15, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=11)
    title = ParagraphStyle("title", parent=base, fontSize=17, leading=24, alignment=1)
    heading = ParagraphStyle("heading", parent=base, fontSize=11.5, leading=18, spaceBefore=6)

    def p(text: object, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)

    buf = io.BytesIO()
    pdf = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"政府采购合同 {doc.contract_no}",
        author=doc.site_name,
        subject=f"订单 {doc.order_no}",
        keywords=keywords(doc),
        creator=doc.site_name,
        invariant=1,
    )
    story: list[Any] = [
        p("政府采购合同（电子卖场）", title),
        Spacer(1, 2 * mm),
        p(f"合同编号：{doc.contract_no}    订单号：{doc.order_no}    采购方式：{doc.mode_label}", small),
    ]
    story.append(Spacer(1, 3 * mm))

    def party_rows(label: str, party: Party) -> list[list[Any]]:
        rows = [[p(label), p(party.name)], [p("统一社会信用代码"), p(party.credit_code)]]
        if party.address:
            rows.append([p("地址"), p(party.address)])
        if party.phone:
            rows.append([p("联系电话"), p(party.phone)])
        return rows

    parties = Table(
        party_rows("甲方（采购人）", doc.buyer) + party_rows("乙方（供应商）", doc.supplier),
        colWidths=[38 * mm, 136 * mm],
    )
    parties.setStyle(
        TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    )
    story.append(parties)
    basis = MODE_BASIS.get(doc.mode, "")
    story += [
        Spacer(1, 3 * mm),
        p(
            "甲乙双方依据《中华人民共和国政府采购法》《中华人民共和国民法典》及"
            f"{doc.region_name}政府采购电子卖场交易规则订立本合同。{basis}"
        ),
        p("一、合同标的", heading),
    ]
    rows: list[list[Any]] = [
        [
            p(h, small)
            for h in ("序号", "品目", "名称", "品牌", "规格型号", "数量", "单位", "单价（元）", "金额（元）")
        ]
    ]
    for line in doc.lines:
        rows.append(
            [
                p(line.no, small),
                p(line.category_code, small),
                p(line.item_name, small),
                p(line.brand, small),
                p(line.spec_model, small),
                p(line.quantity, small),
                p(line.unit, small),
                p(line.unit_price, small),
                p(line.amount, small),
            ]
        )
    rows.append([p("合同总价", small), "", "", "", "", "", "", "", p(doc.total, small)])
    items = Table(
        rows,
        repeatRows=1,
        colWidths=[10 * mm, 18 * mm, 30 * mm, 18 * mm, 36 * mm, 14 * mm, 12 * mm, 18 * mm, 18 * mm],
    )
    items.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                ("SPAN", (0, -1), (-2, -1)),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [
        items,
        p("二、合同价款", heading),
        p(
            f"合同总价为人民币{doc.total_upper}（大写），¥{doc.total}元（小写），已包含货物或服务、包装、运输、"
            "保险、安装调试、培训及税费等全部费用，合同履行期间不作调整。"
        ),
        p("三、交付地点与期限", heading),
        p(f"交付地点：{doc.delivery_place}"),
        p(f"交付期限：{doc.delivery_term}"),
        p("四、验收方案", heading),
        p(doc.acceptance_plan),
        p("五、付款", heading),
        p(doc.payment_terms),
        p(f"计划付款时间：{doc.planned_payment}"),
        p("六、争议解决", heading),
        p(DISPUTES),
        p("七、其他", heading),
        p(
            "本合同的成交信息由电子卖场自动公开；合同签订后二个工作日内发布合同公告。合同经双方签署、甲方备案后生效；"
            "备案后不得擅自变更或解除，确需作废的由财政监管部门依法处理。"
        ),
        Spacer(1, 6 * mm),
        p(
            "甲方（签署）：" + doc.buyer.name + "\n乙方（签署）：" + doc.supplier.name + "\n"
            "双方以各自的防篡改签名证书签署本文件，签名信息见文件签名面板，可在电子卖场或以 mall contract verify 核验。",
            small,
        ),
    ]
    build(pdf, story)
    return buf.getvalue()
