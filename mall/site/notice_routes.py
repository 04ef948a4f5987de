"""The public notices (公告): 合同公告 and 履约验收公告 in one append-only list, as JSON and as pages,
and each contract notice's public text as PDF. Open to everyone: nothing in them names a person."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from mall import notices
from mall.contracts.service import MAX_PDF_BYTES
from mall.core import files
from mall.core.errors import InvalidInput, NotFound
from mall.core.guards import PUBLIC
from mall.notices.models import NOTICE_KIND_LABELS
from mall.structs import NoticeOut, NoticePage
from mall.web.deps import DB, Config
from mall.web.helpers import AnyRequest, render

TAGS = ["信息公开"]
PER_PAGE = 20
MAX_LIMIT = 100


def _kind(value: str | None) -> str:
    if value and value not in NOTICE_KIND_LABELS:
        raise InvalidInput("参数 kind 应为 contract 或 acceptance", code="invalid_parameter", field="kind")
    return value or ""


def _int(value: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if value in (None, ""):
        return default
    assert value is not None
    if not re.fullmatch(r"[0-9]{1,19}", value) or not low <= int(value) <= high:
        raise InvalidInput(f"参数 {name} 应为 {low}–{high} 的整数", code="invalid_parameter", field=name)
    return int(value)


# Notices never change, so the signed PDFs they publish are kept once read (the most recent few, in
# memory): a flood of requests does not read the file store again and again.
_PDFS: OrderedDict[int, bytes] = OrderedDict()
_PDFS_KEPT = 32


async def _signed_pdf(store: files.FileStore, seq: int, body: dict[str, Any]) -> bytes:
    if seq in _PDFS:
        _PDFS.move_to_end(seq)
        return _PDFS[seq]
    try:
        data = await store.read(str(body["signed_pdf_key"]), max_bytes=MAX_PDF_BYTES)
    except files.FileMissing:
        raise NotFound("合同文件不存在", code="notice_has_no_contract") from None
    if hashlib.sha256(data).hexdigest() != body.get("signed_pdf_sha256"):
        # Not the file the notice published: never served as if it were.
        raise NotFound("合同文件与公告记载的摘要不符", code="notice_file_mismatch")
    _PDFS[seq] = data
    while len(_PDFS) > _PDFS_KEPT:
        _PDFS.popitem(last=False)
    return data


class NoticeApi(Controller):
    path = "/api/notices"
    tags = TAGS

    @get(
        "/",
        opt=PUBLIC,
        summary="公告列表（合同公告、履约验收公告；编号递增、只增不改，新的在前）",
        description="按 before 向前翻页：传入上一页返回的 next_before。更正以新公告发布（corrects_seq 指向原公告）。",
    )
    async def list_notices(
        self,
        db: DB,
        kind: Annotated[str | None, QueryParameter(description="contract | acceptance")] = None,
        before: Annotated[str | None, QueryParameter(description="只列编号小于此值的公告")] = None,
        limit: Annotated[str | None, QueryParameter(description="每页条数，1–100，默认 20")] = None,
    ) -> NoticePage:
        k = _kind(kind)
        b = _int(before, "before", None, 1, 2**62)
        n = _int(limit, "limit", PER_PAGE, 1, MAX_LIMIT) or PER_PAGE
        async with db.read() as s:
            rows, total = await notices.page(s, kind=k, before=b, limit=n)
        return NoticePage(
            total,
            [NoticeOut.of(r) for r in rows],
            rows[-1].seq if len(rows) == n and rows[-1].seq > 1 else None,
        )

    @get("/{seq:int}", opt=PUBLIC, summary="一条公告")
    async def get_notice(self, db: DB, seq: FromPath[int]) -> NoticeOut:
        async with db.read() as s:
            return NoticeOut.of(await notices.get(s, seq))


class NoticePages(Controller):
    path = "/notices"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def notices_page(self, request: AnyRequest, db: DB) -> Template:
        params = request.query_params
        kind = params.get("kind", "")
        kind = kind if kind in NOTICE_KIND_LABELS else ""
        before_raw = params.get("before", "")
        before = (
            int(before_raw)
            if re.fullmatch(r"[0-9]{1,19}", before_raw) and 0 < int(before_raw) < 2**62
            else None
        )
        async with db.read() as s:
            rows, total = await notices.page(s, kind=kind, before=before, limit=PER_PAGE)
        next_before = rows[-1].seq if len(rows) == PER_PAGE and rows[-1].seq > 1 else None
        return render(
            request,
            "notices.html",
            rows=rows,
            total=total,
            kind=kind,
            kinds=NOTICE_KIND_LABELS,
            next_before=next_before,
            first_page=before is None,
        )

    @get("/{seq:int}", opt=PUBLIC)
    async def notice_page(self, request: AnyRequest, db: DB, seq: FromPath[int]) -> Template:
        async with db.read() as s:
            notice = await notices.get(s, seq)
            corrected_by = await notices.corrections_of(s, seq)
        return render(
            request,
            "notice.html",
            notice=notice,
            kinds=NOTICE_KIND_LABELS,
            body=notice.body,
            corrected_by=corrected_by,
        )

    @get("/{seq:int}/contract.pdf", opt=PUBLIC)
    async def notice_pdf(self, db: DB, settings: Config, seq: FromPath[int]) -> Response[bytes]:
        """The contract as both parties signed it (it holds no personal data): anyone may check its
        signatures and that its SHA-256 is the one the notice published."""
        async with db.read() as s:
            notice = await notices.get(s, seq)
        if notice.kind != "contract" or "signed_pdf_key" not in notice.body:
            raise NotFound("该公告没有合同文件", code="notice_has_no_contract")
        data = await _signed_pdf(files.store_for(settings, db), seq, notice.body)
        return Response(
            data,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="contract-notice-{seq}.pdf"',
                "Cache-Control": "public, max-age=86400",
            },
        )


ROUTES = [NoticeApi]
PAGES = [NoticePages]
