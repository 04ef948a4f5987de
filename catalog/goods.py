"""What makes two offers the same goods: the folded brand and model.

One key serves the duplicate-listing rule, 比价 (same model from every supplier), agreement
products and the decentralized limit of a checkout. A supplier who wants a listing to look like
another item (to list it twice, or to split one purchase below the limit) has only the spelling to
play with, so the key ignores what spelling can vary without changing the goods: width (NFKC),
case, spaces and punctuation, letters of other scripts that look Latin, and a brand's name given
in brackets beside its other name ("华为（HUAWEI）", "HUAWEI 华为").
"""

from __future__ import annotations

import re
import unicodedata

# Cyrillic and Greek letters drawn like Latin ones: a model "ТР-1000" typed with Cyrillic Т and Р is
# the Latin "TP-1000". Capitals are mapped before case folding (Greek Ν is N, its small ν is v).
_LOOK_ALIKE_CAPITALS = str.maketrans(
    dict(zip("АВЕЗІЈКМНОРСТУХЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABE3IJKMHOPCTYXSABEZHIKMNOPTYX", strict=True))
)
_LOOK_ALIKE_SMALL = str.maketrans(
    dict(zip("авеёіїјкмнорстухѕԁԛԝαβεικμνορτυχζ", "abeeiijkmhopctyxsdqwabeikmvoptuxz", strict=True))
)

_BRACKETED = re.compile(r"[(\[{（【〔［｛《〈「『][^)\]}）】〕］｝》〉」』]*[)\]}）】〕］｝》〉」』]")

# Brands sold in China under a Chinese and a Latin name: both spellings are one brand.
BRAND_ALIASES: dict[str, str] = {
    "huawei": "华为",
    "lenovo": "联想",
    "dell": "戴尔",
    "hp": "惠普",
    "hewlettpackard": "惠普",
    "canon": "佳能",
    "epson": "爱普生",
    "brother": "兄弟",
    "haier": "海尔",
    "gree": "格力",
    "midea": "美的",
    "deli": "得力",
    "mg": "晨光",
    "inspur": "浪潮",
    "sugon": "曙光",
    "h3c": "新华三",
    "xiaomi": "小米",
    "apple": "苹果",
    "samsung": "三星",
    "philips": "飞利浦",
    "panasonic": "松下",
    "sony": "索尼",
    "kyocera": "京瓷",
    "ricoh": "理光",
    "fujixerox": "富士施乐",
    "fujifilm": "富士胶片",
    "pantum": "奔图",
    "hisense": "海信",
    "skyworth": "创维",
    "asus": "华硕",
    "acer": "宏碁",
    "tsinghuatongfang": "清华同方",
    "tongfang": "同方",
    "founder": "方正",
    "greatwall": "长城",
    "hikvision": "海康威视",
    "dahua": "大华",
    "ruijie": "锐捷",
    "zte": "中兴",
}


def _fold(text: str) -> str:
    """Width, case and look-alike letters folded; only letters and digits kept."""
    wide = unicodedata.normalize("NFKC", text).translate(_LOOK_ALIKE_CAPITALS)
    folded = wide.casefold().translate(_LOOK_ALIKE_SMALL)
    return "".join(ch for ch in folded if ch.isalnum())


def model_key(spec_model: str) -> str:
    """The model as the duplicate and split rules compare it: "ThinkCentre M-750t" = "thinkcentrem750t"."""
    return _fold(spec_model)[:200]


def brand_key(brand: str) -> str:
    """The brand as the rules compare it. A name in brackets is the same brand's other name, so it
    is dropped when something stands outside the brackets; a Latin name of a brand listed in
    BRAND_ALIASES counts as its Chinese name; "HUAWEI 华为" is 华为 like "华为（HUAWEI）"."""
    text = unicodedata.normalize("NFKC", brand)
    outside = _BRACKETED.sub(" ", text)
    if _fold(outside):
        text = outside
    words: list[str] = []
    for word in re.split(r"[\s/|·,、]+", text):
        key = BRAND_ALIASES.get(_fold(word), _fold(word))
        if key and key not in words:
            words.append(key)
    # A brand given under two names ("INSPUR 浪潮", "Lenovo/联想") keys as its Chinese name.
    chinese = [w for w in words if not w.isascii()]
    if len(chinese) == 1:
        words = chinese
    key = "".join(words)
    return BRAND_ALIASES.get(key, key)[:100]
