"""Product photos, parameters, favourites and the 比价单: what a supplier adds to a listing, what a
buyer keeps and compares, and the comparison frozen for the purchase file."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from catalog import media
from catalog.models import Listing
from mall.core.errors import InvalidInput
from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login, post_form
from tests.security.login_helpers import assert_problem


def _photo(size: tuple[int, int] = (1200, 900), fmt: str = "JPEG", **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, fmt, **save)
    return buf.getvalue()


def test_parameters_are_name_value_lines() -> None:
    assert media.parse_params("处理器：i5-13500\n\n内存: 16GB\t\n硬盘\t512GB SSD") == [
        ["处理器", "i5-13500"],
        ["内存", "16GB"],
        ["硬盘", "512GB SSD"],
    ]
    assert media.params_text([["处理器", "i5"]]) == "处理器：i5"
    for bad in ("只有名称", "：没有名称", "名称：" + "长" * 201, "\n".join(f"p{i}：v" for i in range(41))):
        with pytest.raises(InvalidInput):
            media.parse_params(bad)


def test_a_photo_is_made_upright_stripped_and_sized() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to be upright
    exif[0x010F] = "PhoneMaker"
    p = media.process_image(_photo((1600, 1200), exif=exif.tobytes()))
    assert (p.width, p.height) == (1200, 1600)  # turned upright
    for name, edge in media.SIZES.items():
        with Image.open(io.BytesIO(p.sizes[name])) as im:
            assert im.format == "JPEG" and max(im.size) <= edge
            assert not im.getexif() and "exif" not in im.info
    # a transparent PNG is flattened on white
    buf = io.BytesIO()
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(buf, "PNG")
    with Image.open(io.BytesIO(media.process_image(buf.getvalue()).sizes["thumb"])) as im:
        assert im.getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.parametrize(
    "data, says",
    [
        (b"", "请选择图片文件"),
        (b"not an image at all", "无法识别"),
        (_photo(fmt="GIF"), "只支持"),
        (_photo()[:300], "损坏"),
        (b"\xff" * (media.IMAGE_BYTES_MAX + 1), "不能超过"),
    ],
)
def test_what_is_not_a_photo_is_refused(data: bytes, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        media.process_image(data)
    assert err.value.code == "image_invalid" and says in err.value.detail


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buf, "PNG")  # 48 million pixels in a few kilobytes
    with pytest.raises(InvalidInput) as err:
        media.process_image(buf.getvalue())
    assert "像素过多" in err.value.detail


async def test_a_supplier_adds_photos_everyone_sees_them_on_a_listing_on_sale(
    client: Any, world: World
) -> None:
    laptop = world.listings["laptop"]
    url = f"/api/listings/{laptop.id}/images"
    files = {"file": ("photo.jpg", _photo(), "image/jpeg")}
    r = await client.post(url, files=files, headers=world.h("supplier_x"))
    assert r.status_code == 201, r.text
    image = r.json()
    assert (image["width"], image["height"]) == (1200, 900)
    assert_problem(
        await client.post(url, files=files, headers=world.h("supplier_y")), 404, "listing_not_found"
    )
    assert_problem(
        await client.post(
            url, files={"file": ("x.gif", _photo(fmt="GIF"), "image/gif")}, headers=world.h("supplier_x")
        ),
        400,
        "image_invalid",
    )
    r = await client.get(image["thumb_url"])  # public: the listing is on sale
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "immutable" in r.headers["cache-control"]
    assert (await client.get(f"/images/{image['id']}/huge.jpg")).status_code == 404
    assert [i["id"] for i in (await client.get(url)).json()] == [image["id"]]
    page = assert_page(await client.get(f"/goods/{laptop.id}", headers=HTML))
    assert f"/images/{image['id']}/display.jpg" in page
    for _ in range(5):
        assert (await client.post(url, files=files, headers=world.h("supplier_x"))).status_code == 201
    assert_problem(await client.post(url, files=files, headers=world.h("supplier_x")), 409, "too_many_images")
    r = await client.delete(f"/api/listing-images/{image['id']}", headers=world.h("supplier_x"))
    assert r.status_code == 204
    assert (await client.get(image["thumb_url"])).status_code == 404


async def test_a_listing_not_on_sale_shows_its_photos_to_its_supplier_only(client: Any, world: World) -> None:
    draft = await world.listing("draft-cam", "supplier_y", "900.00", live=False)
    r = await client.post(
        f"/api/listings/{draft.id}/images",
        files={"file": ("p.png", _photo(fmt="PNG"), "image/png")},
        headers=world.h("supplier_y"),
    )
    assert r.status_code == 201, r.text
    thumb = r.json()["thumb_url"]
    assert (await client.get(thumb)).status_code == 404
    assert (await client.get(thumb, headers=world.h("supplier_x"))).status_code == 404
    await login(client, "supplier_y")
    r = await client.get(thumb)
    assert r.status_code == 200 and "public" not in r.headers["cache-control"]
    page = assert_page(await client.get(f"/supplier/listings/{draft.id}/edit", headers=HTML))
    assert thumb in page and 'enctype="multipart/form-data"' in page


async def test_parameters_are_entered_with_the_listing_and_shown(client: Any, world: World) -> None:
    body = {
        "name": "联想 启天 M450",
        "brand": "联想",
        "spec_model": "M450-P",
        "category_code": "A02010105",
        "unit": "台",
        "price": "4999.00",
        "reference_price": "5100.00",
        "stock": "10",
        "params": "处理器：i5-13500\n内存：16GB",
    }
    r = await client.post("/api/listings", json=body, headers=world.h("supplier_x"))
    assert r.status_code == 201, r.text
    assert r.json()["params"] == [["处理器", "i5-13500"], ["内存", "16GB"]]
    r = await client.post(
        "/api/listings",
        json={**body, "spec_model": "M450-Q", "params": "只有名称"},
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 400, "listing_invalid")


async def test_favourites_and_a_comparison_sheet_frozen_as_it_stood(client: Any, world: World) -> None:
    laptop, printer = world.listings["laptop"], world.listings["printer"]
    h = world.h("buyer_a")
    r = await client.put(f"/api/favourites/{laptop.id}", headers=h)
    assert r.json() == {"listing_id": str(laptop.id), "favourite": True}
    assert (
        await client.put(f"/api/favourites/{laptop.id}", headers=h)
    ).status_code == 200  # again: still one
    assert [x["id"] for x in (await client.get("/api/favourites", headers=h)).json()] == [str(laptop.id)]
    assert_problem(
        await client.put(f"/api/favourites/{laptop.id}", headers=world.h("supplier_x")), 403, "forbidden"
    )
    assert_problem(await client.put(f"/api/favourites/{uuid.uuid4()}", headers=h), 404, "listing_not_found")

    # the pages: favourite, compare two, make the sheet
    await login(client, "buyer_a")
    assert laptop.name in assert_page(await client.get("/favourites", headers=HTML))
    for x in (laptop, printer):
        assert (await post_form(client, "/compare/add", {"listing_id": str(x.id)})).status_code == 303
    page = assert_page(await client.get("/compare", headers=HTML))
    assert laptop.name in page and printer.name in page and "生成比价单" in page
    r = await post_form(client, "/compare/sheet", {})
    assert r.status_code == 303 and r.headers["location"].startswith("/compare/sheets/")
    sheet_url = r.headers["location"]
    sheet = assert_page(await client.get(sheet_url, headers=HTML))
    assert "比价单 BJ" in sheet and "¥1,200.00" in sheet and "最低价" in sheet
    pdf = await client.get(sheet_url + "/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 1000

    # a later price change does not touch the sheet
    async with world.db.write() as tx:
        row = await tx.session.get(Listing, printer.id)
        assert row is not None
        row.price = Decimal("999.00")
    sheet_id = sheet_url.rsplit("/", 1)[-1]
    body = (await client.get(f"/api/comparison-sheets/{sheet_id}", headers=h)).json()["body"]
    assert {i["name"]: i["price"] for i in body["items"]}[printer.name] == "1200.00"
    # other units do not see it; the center does
    assert_problem(
        await client.get(f"/api/comparison-sheets/{sheet_id}", headers=world.h("buyer_b")),
        404,
        "sheet_not_found",
    )
    assert (
        await client.get(f"/api/comparison-sheets/{sheet_id}", headers=world.h("center"))
    ).status_code == 200
    # one product is no comparison
    r = await client.post("/api/comparison-sheets", json={"listing_ids": [str(laptop.id)]}, headers=h)
    assert_problem(r, 400, "compare_too_few")
