"""The ledger as an Atom 1.0 feed (RFC 4287): the newest records, for feed readers and journalists."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from mall.core import clock
from mall.core.db import Database
from mall.core.money import yuan_display
from mall.ledger.disclosure import MODE_LABELS, FeedQuery, records_matching
from mall.ledger.models import DisclosureRecord

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
TITLE_PREFIX = {
    "deal": "成交公告",
    "correction": "更正公告",
    "cancellation": "取消公告",
    "failure": "失败公告",
}


def _what(record: dict[str, Any]) -> str:
    lines = record.get("lines") or []
    if not lines:
        return str(MODE_LABELS.get(record["mode"], record["mode"]))
    first = str(lines[0].get("item_name") or "")
    return first + (f"等{len(lines)}项" if len(lines) > 1 else "")


def entry_title(record: dict[str, Any]) -> str:
    prefix = TITLE_PREFIX.get(record["kind"], "公告")
    buyer = record["buyer"]["name"]
    if record["kind"] == "failure":
        return f"{prefix}：{buyer} 的{MODE_LABELS.get(record['mode'], '')} {record['order_no']} 未成交"
    supplier = (record.get("supplier") or {}).get("name") or ""
    return f"{prefix}：{buyer} 向 {supplier} 采购 {_what(record)}"


def entry_summary(record: dict[str, Any]) -> str:
    parts = [
        f"采购方式：{MODE_LABELS.get(record['mode'], record['mode'])}",
        f"编号：{record['order_no']}",
        f"成交日期：{record['deal_date']}",
    ]
    if record.get("total_amount") is not None:
        parts.append(f"金额：{yuan_display(record['total_amount'])} 元")
    if record.get("reason"):
        parts.append(f"原因：{record['reason']}")
    if record.get("amends"):
        parts.append(f"更正/取消的记录：{record['amends']}")
    parts.append(f"公开序号：{record['seq']}")
    return "；".join(parts)


async def newest(db: Database, q: FeedQuery, limit: int) -> list[dict[str, Any]]:
    stmt = (
        records_matching(q)
        .with_only_columns(DisclosureRecord.body)
        .where(DisclosureRecord.seq > q.after)
        .order_by(DisclosureRecord.seq.desc())
        .limit(limit)
    )
    async with db.read() as s:
        return [json.loads(body) for body in (await s.execute(stmt)).scalars()]


def feed_xml(records: list[dict[str, Any]], *, base_url: str, self_url: str, site: str) -> bytes:
    base = base_url.rstrip("/")
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"})
    sub(feed, "id", f"{base}/disclosures/feed.atom")
    sub(feed, "title", f"{site} · 成交公告")
    sub(feed, "subtitle", "政府采购电子卖场成交记录自动公开（只增不改，取消与更正以新记录公告）")
    updated = records[0]["published_at"] if records else clock.rfc3339(clock.now())
    sub(feed, "updated", updated)
    author = sub(feed, "author")
    sub(author, "name", site)
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/disclosures")
    for record in records:
        entry = sub(feed, "entry")
        sub(entry, "id", f"urn:uuid:{record['id']}")
        sub(entry, "title", entry_title(record))
        sub(entry, "link", rel="alternate", type="text/html", href=f"{base}/disclosures/{record['seq']}")
        sub(entry, "published", record["published_at"])
        sub(entry, "updated", record["published_at"])
        sub(entry, "category", term=record["mode"], label=MODE_LABELS.get(record["mode"], record["mode"]))
        sub(entry, "summary", entry_summary(record), type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
