"""Pure rules of what a supplier adds to a listing besides its price: the 规格参数 typed one per line,
and product photos, checked and re-encoded (no metadata kept: a phone's photo carries GPS) into the
sizes the pages show."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from mall.core.errors import InvalidInput
from mall.core.fields import PARAMS_MAX as PARAMS_TEXT_MAX
from mall.core.fields import text

PARAM_LINES_MAX = 40
PARAM_NAME_MAX = 30
PARAM_VALUE_MAX = 200

IMAGE_BYTES_MAX = 5 * 1024 * 1024
IMAGE_PIXELS_MAX = 40_000_000  # a decompression bomb is refused before it is decoded
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
# The sizes kept: the longer side at most this many pixels (never enlarged).
SIZES = {"original": 2000, "display": 800, "thumb": 240}

_SPLIT = re.compile(r"\s*[:：\t]\s*")


def parse_params(raw: str) -> list[list[str]]:
    """ "名称：值" per line (a full-width or ASCII colon, or a tab) into [name, value] pairs; blank
    lines are skipped. A line without a value, a name or value past its limit, or more lines than
    PARAM_LINES_MAX, is refused naming the line."""
    body = text(raw, "规格参数", PARAMS_TEXT_MAX, multiline=True, field="params")
    out: list[list[str]] = []
    for n, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = _parts(line)
        if not sep or not name or not value:
            raise InvalidInput(
                f"规格参数第 {n} 行应为“参数名：参数值”", code="listing_invalid", field="params"
            )
        if len(name) > PARAM_NAME_MAX or len(value) > PARAM_VALUE_MAX:
            raise InvalidInput(
                f"规格参数第 {n} 行过长：参数名至多 {PARAM_NAME_MAX} 字，参数值至多 {PARAM_VALUE_MAX} 字",
                code="listing_invalid",
                field="params",
            )
        out.append([name, value])
    if len(out) > PARAM_LINES_MAX:
        raise InvalidInput(f"规格参数至多 {PARAM_LINES_MAX} 项", code="listing_invalid", field="params")
    return out


def _parts(line: str) -> tuple[str, str, str]:
    pieces = _SPLIT.split(line.strip(), maxsplit=1)
    if len(pieces) < 2:
        return pieces[0], "", ""
    return pieces[0].strip(), ":", pieces[1].strip()


def params_text(params: list[list[str]] | None) -> str:
    """The pairs as the form shows them again."""
    return "\n".join(f"{k}：{v}" for k, v in params or [])


@dataclass(frozen=True)
class Processed:
    sizes: dict[str, bytes]  # SIZES' names → JPEG bytes
    width: int
    height: int


def refuse(detail: str) -> InvalidInput:
    return InvalidInput(detail, code="image_invalid", field="file")


def process_image(data: bytes) -> Processed:
    """Check an uploaded photo and make its sizes: JPEG, PNG or WebP, at most IMAGE_BYTES_MAX and
    IMAGE_PIXELS_MAX; turned upright by its EXIF orientation, flattened on white, re-encoded as JPEG
    with no metadata at all."""
    if not data:
        raise refuse("请选择图片文件")
    if len(data) > IMAGE_BYTES_MAX:
        raise refuse(f"图片不能超过 {IMAGE_BYTES_MAX // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in IMAGE_FORMATS:
                    raise refuse("只支持 JPEG、PNG 或 WebP 图片")
                if probe.width * probe.height > IMAGE_PIXELS_MAX:
                    raise refuse("图片像素过多（至多 4000 万像素）")
                probe.verify()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                upright = ImageOps.exif_transpose(im)
    except InvalidInput:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refuse("无法识别的图片，或图片像素过多") from None
    except (OSError, ValueError, SyntaxError):
        raise refuse("图片文件已损坏") from None
    rgb = _flat(upright)
    out: dict[str, bytes] = {}
    for name, edge in SIZES.items():
        copy = rgb.copy()
        copy.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=85, optimize=True, progressive=True)
        out[name] = buf.getvalue()
    return Processed(out, rgb.width, rgb.height)


def _flat(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return im.convert("RGB")
