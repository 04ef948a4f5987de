"""Product photos, favourites, the comparison and its 比价单: the API, the pages and the image files."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, JSONBody, MultipartBody
from litestar.response import Redirect, Stream, Template

from catalog import media, shopping
from catalog.models import ComparisonSheet, ListingImage
from catalog.structs import ListingOut
from mall.core import files
from mall.core.errors import InvalidInput, NotFound
from mall.core.guards import PUBLIC, allow
from mall.credit.record import scores_for as credit_scores
from mall.pricewatch import stats as pricewatch_stats
from mall.web.deps import DB, Config, UserCall, Viewer
from mall.web.helpers import AnyRequest, Form, flash

TAGS = ["商品图片、收藏与比价"]
BUYERS = allow("buyer")
# the session's comparison basket
BASKET = "compare"


class ImageOut(msgspec.Struct):
    id: uuid.UUID
    position: int
    width: int
    height: int
    thumb_url: str  # 240 px
    display_url: str  # 800 px
    original_url: str  # at most 2000 px

    @classmethod
    def of(cls, i: ListingImage) -> ImageOut:
        base = f"/images/{i.id}"
        return cls(
            i.id,
            i.position,
            i.width,
            i.height,
            f"{base}/thumb.jpg",
            f"{base}/display.jpg",
            f"{base}/original.jpg",
        )


class FavouriteOut(msgspec.Struct):
    listing_id: uuid.UUID
    favourite: bool


class SheetIn(msgspec.Struct, forbid_unknown_fields=True):
    listing_ids: list[uuid.UUID]


class SheetOut(msgspec.Struct):
    id: uuid.UUID
    number: str
    created_at: str
    pdf_url: str
    body: dict[str, Any]  # the comparison as it stood: made_at, buyer, items (prices, sources, params)

    @classmethod
    def of(cls, s: ComparisonSheet) -> SheetOut:
        return cls(s.id, s.number, s.body["made_at"], f"/api/comparison-sheets/{s.id}/pdf", s.body)


def _file(data: Any) -> UploadFile:
    file = data.get("file") if isinstance(data, dict) else None
    if not isinstance(file, UploadFile) or not file.filename:
        raise InvalidInput("请选择图片文件（JPEG、PNG 或 WebP）", code="image_invalid", field="file")
    return file


async def _upload(call: Any, listing_id: uuid.UUID, data: Any) -> ListingImage:
    content = await _file(data).read(media.IMAGE_BYTES_MAX + 1)
    return await shopping.add_image(
        call.db, files.store_for(call.settings, call.db), call.me, listing_id, content
    )


def _pdf(sheet: ComparisonSheet) -> Response[bytes]:
    return Response(
        shopping.sheet_pdf(sheet),
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="{sheet.number}.pdf"'},
    )


class ShoppingApi(Controller):
    path = "/api"
    tags = TAGS

    @get("/listings/{listing_id:uuid}/images", opt=PUBLIC, summary="商品图片（在售商品公开）")
    async def list_images(self, viewer: Viewer, db: DB, listing_id: FromPath[uuid.UUID]) -> list[ImageOut]:
        async with db.read() as s:
            found = (await shopping.images_of(s, [listing_id]))[listing_id]
            if found:
                await shopping.image_for(s, viewer, found[0].id, "thumb")  # 404 unless the viewer may see it
        return [ImageOut.of(i) for i in found]

    @post(
        "/listings/{listing_id:uuid}/images",
        opt=allow("supplier"),
        status_code=201,
        summary="上传商品图片（multipart 字段 file；JPEG/PNG/WebP，至多 5 MB，每件商品至多 6 张）",
        description="图片按 EXIF 方向扶正、去除全部元数据（含拍摄位置）后重新编码为 JPEG，生成 2000/800/240 像素三种尺寸。",
    )
    async def upload_image(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: MultipartBody[dict[str, Any]]
    ) -> ImageOut:
        return ImageOut.of(await _upload(call, listing_id, data))

    @delete("/listing-images/{image_id:uuid}", opt=allow("supplier"), status_code=204, summary="删除商品图片")
    async def delete_image(self, call: UserCall, image_id: FromPath[uuid.UUID]) -> None:
        await shopping.remove_image(call.db, files.store_for(call.settings, call.db), call.me, image_id)

    @get("/favourites", opt=BUYERS, summary="本人收藏的商品（常购清单，最近收藏的在前）")
    async def list_favourites(self, call: UserCall) -> list[ListingOut]:
        async with call.db.read() as s:
            return [ListingOut.of(x) for x in await shopping.favourites_of(s, call.me)]

    @put("/favourites/{listing_id:uuid}", opt=BUYERS, summary="收藏商品", status_code=200)
    async def add_favourite(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> FavouriteOut:
        return FavouriteOut(listing_id, await shopping.set_favourite(call.db, call.me, listing_id, True))

    @delete("/favourites/{listing_id:uuid}", opt=BUYERS, summary="取消收藏", status_code=204)
    async def remove_favourite(self, call: UserCall, listing_id: FromPath[uuid.UUID]) -> None:
        await shopping.set_favourite(call.db, call.me, listing_id, False)

    @get("/comparison-sheets", opt=BUYERS, summary="本单位的比价单（最近的在前）")
    async def list_sheets(self, call: UserCall) -> list[SheetOut]:
        async with call.db.read() as s:
            return [SheetOut.of(x) for x in await shopping.sheets_of(s, call.me)]

    @post(
        "/comparison-sheets",
        opt=BUYERS,
        status_code=201,
        summary="生成比价单：2至4件在售商品此刻的价格、参考价与来源，冻结保存",
    )
    async def create_sheet(self, call: UserCall, data: JSONBody[SheetIn]) -> SheetOut:
        if len(data.listing_ids) > shopping.COMPARE_MAX:
            raise InvalidInput(f"一次至多比较 {shopping.COMPARE_MAX} 件商品", code="compare_too_many")
        return SheetOut.of(
            await shopping.make_sheet(call.db, call.me, shopping.basket([str(i) for i in data.listing_ids]))
        )

    @get(
        "/comparison-sheets/{sheet_id:uuid}", opt=allow("buyer", "center", "regulator"), summary="一份比价单"
    )
    async def get_sheet(self, call: UserCall, sheet_id: FromPath[uuid.UUID]) -> SheetOut:
        async with call.db.read() as s:
            return SheetOut.of(await shopping.get_sheet(s, call.me, sheet_id))

    @get(
        "/comparison-sheets/{sheet_id:uuid}/pdf",
        opt=allow("buyer", "center", "regulator"),
        summary="比价单 PDF（按生成时的快照排版）",
    )
    async def sheet_pdf(self, call: UserCall, sheet_id: FromPath[uuid.UUID]) -> Response[bytes]:
        async with call.db.read() as s:
            sheet = await shopping.get_sheet(s, call.me, sheet_id)
        return _pdf(sheet)


class ImageFiles(Controller):
    """The photos' files: a new id for every upload, so each may be cached for a year."""

    path = "/images"
    include_in_schema = False

    @get("/{image_id:uuid}/{size:str}", opt=PUBLIC)
    async def image(
        self, viewer: Viewer, db: DB, settings: Config, image_id: FromPath[uuid.UUID], size: FromPath[str]
    ) -> Stream:
        name = size.removesuffix(".jpg")
        async with db.read() as s:
            key, public = await shopping.image_for(s, viewer, image_id, name)
        store = files.store_for(settings, db)
        info = await store.stat(key)
        if info is None:
            raise NotFound("图片不存在", code="image_not_found")
        return Stream(
            store.chunks(key),
            media_type="image/jpeg",
            headers={
                # a listing not on sale shows its photos to its supplier and the reviewers only
                "cache-control": "public, max-age=31536000, immutable" if public else "private, no-store",
                "content-length": str(info.size),
            },
        )


class ShoppingPages(Controller):
    path = "/"
    include_in_schema = False

    @post("/supplier/listings/{listing_id:uuid}/images", opt=allow("supplier"))
    async def page_upload(
        self, call: UserCall, listing_id: FromPath[uuid.UUID], data: MultipartBody[dict[str, Any]]
    ) -> Redirect:
        back = f"/supplier/listings/{listing_id}/edit#images"
        return await call.act(lambda: _upload(call, listing_id, data), "图片已上传", back)

    @post("/supplier/listing-images/{image_id:uuid}/delete", opt=allow("supplier"))
    async def page_delete_image(self, call: UserCall, image_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        back = (
            f"/supplier/listings/{data.get('listing_id', '')}/edit#images"
            if data.get("listing_id")
            else "/supplier/listings"
        )
        return await call.act(
            lambda: shopping.remove_image(
                call.db, files.store_for(call.settings, call.db), call.me, image_id
            ),
            "图片已删除",
            back,
        )

    @post("/favourites/{listing_id:uuid}", opt=BUYERS)
    async def page_favourite(self, call: UserCall, listing_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        on = data.get("on", "1") == "1"
        return await call.act(
            lambda: shopping.set_favourite(call.db, call.me, listing_id, on),
            "已加入收藏" if on else "已取消收藏",
            f"/goods/{listing_id}",
        )

    @get("/favourites", opt=BUYERS)
    async def favourites_page(self, call: UserCall) -> Template:
        async with call.db.read() as s:
            rows = await shopping.favourites_of(s, call.me)
            images = await shopping.images_of(s, [x.id for x in rows])
        return call.render("favourites.html", rows=rows, images=images)

    @post("/compare/add", opt=BUYERS)
    async def compare_add(self, request: AnyRequest, data: Form) -> Redirect:
        ids = shopping.basket(request.session.get(BASKET) if request.session else [])
        try:
            listing_id = uuid.UUID(data.get("listing_id", ""))
        except ValueError:
            raise InvalidInput("商品无效", code="invalid_parameter") from None
        if listing_id not in ids:
            if len(ids) >= shopping.COMPARE_MAX:
                flash(request, f"对比栏至多 {shopping.COMPARE_MAX} 件商品，请先移除一件", "error")
                return Redirect(f"/goods/{listing_id}", status_code=303)
            ids.append(listing_id)
        request.set_session({**(request.session or {}), BASKET: [str(i) for i in ids]})
        flash(request, f"已加入对比（{len(ids)}/{shopping.COMPARE_MAX}）")
        return Redirect(f"/goods/{listing_id}", status_code=303)

    @post("/compare/remove", opt=BUYERS)
    async def compare_remove(self, request: AnyRequest, data: Form) -> Redirect:
        ids = [
            i
            for i in shopping.basket(request.session.get(BASKET) if request.session else [])
            if str(i) != data.get("listing_id")
        ]
        request.set_session({**(request.session or {}), BASKET: [str(i) for i in ids]})
        return Redirect("/compare", status_code=303)

    @get("/compare", opt=BUYERS)
    async def compare_page(self, call: UserCall) -> Template:
        ids = shopping.basket(call.request.session.get(BASKET) if call.request.session else [])
        async with call.db.read() as s:
            rows = await shopping.compared(s, ids)
            images = await shopping.images_of(s, [x.id for x in rows])
            sheets = await shopping.sheets_of(s, call.me, limit=10)
            markets = await pricewatch_stats.markets_for(s, [(x.brand_key, x.model_key) for x in rows])
            credits = await credit_scores(s, (x.supplier_org_id for x in rows))
        lowest = min((x.price for x in rows), default=None)
        return call.render(
            "compare.html",
            rows=rows,
            images=images,
            sheets=sheets,
            lowest=lowest,
            limit=shopping.COMPARE_MAX,
            markets=markets,
            credits=credits,
        )

    @post("/compare/sheet", opt=BUYERS)
    async def compare_sheet(self, call: UserCall) -> Redirect:
        ids = shopping.basket(call.request.session.get(BASKET) if call.request.session else [])
        return await call.act(
            lambda: shopping.make_sheet(call.db, call.me, ids),
            lambda sheet: f"比价单 {sheet.number} 已生成",
            "/compare",
            to=lambda sheet: f"/compare/sheets/{sheet.id}",
        )

    @get("/compare/sheets/{sheet_id:uuid}", opt=allow("buyer", "center", "regulator"))
    async def sheet_page(self, call: UserCall, sheet_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            sheet = await shopping.get_sheet(s, call.me, sheet_id)
        return call.render("comparison_sheet.html", sheet=sheet, body=sheet.body)

    @get("/compare/sheets/{sheet_id:uuid}/pdf", opt=allow("buyer", "center", "regulator"))
    async def sheet_pdf_page(self, call: UserCall, sheet_id: FromPath[uuid.UUID]) -> Response[bytes]:
        async with call.db.read() as s:
            sheet = await shopping.get_sheet(s, call.me, sheet_id)
        return _pdf(sheet)


ROUTES = [ShoppingApi]
PAGES = [ImageFiles, ShoppingPages]
