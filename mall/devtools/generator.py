"""Realistic Chinese product listings for seeding and benchmarks, generated deterministically.

`generate(n, seed=..., suppliers=...)` lazily yields `(supplier_index, GeneratedListing)` pairs. The
output depends only on its arguments (one `random.Random(seed)` stream, consumed in order), so the
first k items of `generate(n)` are the items of `generate(k)`.

The sequence is a series of *products* (brand + model + configuration). About 30% of the products
are offered by 2–4 different suppliers (same brand and model, each supplier with its own discount,
stock and wording of the title), the rest by one. Every product's model ends with a five-character
code (`K7Q2X`) that is unique for the whole sequence, so (supplier, brand, model) stays unique even
after the listing table's normalization (spaces, `-`, `_`, `/` removed, upper-cased).

Every category code is a 2022 goods code from catalog/data/categories-2022.csv.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from math import prod


@dataclass(frozen=True)
class GeneratedListing:
    name: str  # Chinese product title
    brand: str
    spec_model: str
    category_code: str  # 2022 品目 code, type goods
    unit: str
    price: Decimal  # two decimal places, 0–8% below reference_price
    reference_price: Decimal  # two decimal places
    reference_source: str
    stock: int  # 0..500
    description: str  # one Chinese sentence of specs


# --- product tables -------------------------------------------------------------------------------

# An option of one spec axis: (text in the title, text in the description, price tier, model fragment).
# The title text may be empty (description only). The model fragment replaces `#` in a model template.
_Option = tuple[str, str, float, str]
# A product line: (series shown in the title, model template, price level 0..1).
_Series = tuple[str, str, float]


def _o(title: str, desc: str = "", tier: float = 0.0, frag: str = "") -> _Option:
    return (title, desc or title, tier, frag)


def _s(title: str, model: str = "", level: float = 0.5) -> _Series:
    return (title, model or title, level)


@dataclass(frozen=True)
class _Kind:
    code: str
    noun: str
    unit: str
    low: int  # reference price range in yuan
    high: int
    weight: float
    brands: tuple[tuple[str, tuple[_Series, ...]], ...]
    axes: tuple[tuple[_Option, ...], ...]
    tails: tuple[str, ...]  # closing clause of the description (service, accessories)
    sep: str = "/"  # between the spec texts of the title


_DESKTOP_TAILS = (
    "预装正版Windows 11专业版，三年上门保修",
    "预装统信UOS操作系统，三年原厂上门保修",
    "预装银河麒麟操作系统，五年上门保修",
    "含原装键盘鼠标，三年原厂保修",
)
_LAPTOP_TAILS = (
    "预装正版Windows 11家庭中文版，一年上门保修",
    "预装统信UOS操作系统，三年原厂保修",
    "含原装电源适配器及电脑包，两年原厂保修",
)
_PRINT_TAILS = (
    "随机附带原装硒鼓，一年上门保修",
    "支持统信UOS及银河麒麟驱动，三年原厂保修",
    "含USB数据线，全国联保",
)

_KINDS: tuple[_Kind, ...] = (
    _Kind(
        code="A02010105",
        noun="台式计算机",
        unit="台",
        low=3500,
        high=9000,
        weight=12,
        brands=(
            (
                "联想",
                (
                    _s("启天M437", level=0.3),
                    _s("启天M455", level=0.5),
                    _s("扬天M4000q", level=0.2),
                    _s("ThinkCentre M90t", level=0.9),
                ),
            ),
            (
                "惠普",
                (_s("ProDesk 400 G9", level=0.4), _s("EliteDesk 800 G9", level=0.9), _s("战99", level=0.6)),
            ),
            (
                "戴尔",
                (
                    _s("OptiPlex 3000MT", level=0.3),
                    _s("OptiPlex 7010MT", level=0.7),
                    _s("成就3710", level=0.2),
                ),
            ),
            ("华为", (_s("擎云B730E", level=0.6), _s("擎云B530", level=0.4))),
            ("清华同方", (_s("超翔Z8000", level=0.5), _s("超越E500", level=0.2))),
            ("长城", (_s("世恒TD120", level=0.4),)),
            ("浪潮", (_s("CE520A", level=0.4),)),
        ),
        axes=(
            (
                _o("i3-12100", "处理器英特尔酷睿i3-12100", 0.0),
                _o("i5-12500", "处理器英特尔酷睿i5-12500", 0.4),
                _o("i5-13500", "处理器英特尔酷睿i5-13500", 0.5),
                _o("i7-12700", "处理器英特尔酷睿i7-12700", 0.8),
                _o("i7-13700", "处理器英特尔酷睿i7-13700", 1.0),
            ),
            (
                _o("8G", "内存8GB DDR4", 0.0),
                _o("16G", "内存16GB DDR4", 0.4),
                _o("32G", "内存32GB DDR5", 1.0),
            ),
            (
                _o("256G SSD", "硬盘256GB固态", 0.0),
                _o("512G SSD", "硬盘512GB固态", 0.3),
                _o("1T SSD", "硬盘1TB固态", 0.6),
                _o("512G SSD+1T HDD", "硬盘512GB固态+1TB机械", 0.7),
            ),
            (
                _o("21.5英寸", "配21.5英寸显示器", 0.1),
                _o("23.8英寸", "配23.8英寸显示器", 0.3),
                _o("27英寸", "配27英寸显示器", 0.6),
                _o("单主机", "单主机不含显示器", 0.0),
            ),
        ),
        tails=_DESKTOP_TAILS,
    ),
    _Kind(
        code="A02010108",
        noun="便携式计算机",
        unit="台",
        low=4000,
        high=12000,
        weight=9,
        brands=(
            (
                "联想",
                (
                    _s("昭阳K4e", level=0.4),
                    _s("ThinkPad E14", level=0.5),
                    _s("ThinkPad X1 Carbon", level=1.0),
                    _s("扬天V14", level=0.1),
                ),
            ),
            (
                "惠普",
                (
                    _s("战66 六代", level=0.3),
                    _s("ProBook 440 G10", level=0.5),
                    _s("EliteBook 840 G10", level=0.9),
                ),
            ),
            (
                "戴尔",
                (_s("Latitude 5440", level=0.6), _s("成就3420", level=0.1), _s("Vostro 14 3430", level=0.2)),
            ),
            (
                "华为",
                (
                    _s("MateBook D14", level=0.3),
                    _s("MateBook 14", level=0.6),
                    _s("MateBook X Pro", level=1.0),
                ),
            ),
            ("华硕", (_s("ExpertBook B1", level=0.3), _s("灵耀14", level=0.6))),
            ("宏碁", (_s("TravelMate P2", level=0.3), _s("蜂鸟Fun", level=0.1))),
            ("小米", (_s("RedmiBook Pro 14", level=0.3), _s("Xiaomi Book Pro 14", level=0.7))),
        ),
        axes=(
            (
                _o("i5-1235U", "处理器英特尔酷睿i5-1235U", 0.2),
                _o("i5-1335U", "处理器英特尔酷睿i5-1335U", 0.4),
                _o("i7-1255U", "处理器英特尔酷睿i7-1255U", 0.6),
                _o("i7-1360P", "处理器英特尔酷睿i7-1360P", 1.0),
                _o("R5-7530U", "处理器AMD锐龙R5-7530U", 0.1),
                _o("R7-7730U", "处理器AMD锐龙R7-7730U", 0.5),
            ),
            (_o("8G", "内存8GB", 0.0), _o("16G", "内存16GB", 0.5), _o("32G", "内存32GB", 1.0)),
            (_o("512G SSD", "固态硬盘512GB", 0.0), _o("1T SSD", "固态硬盘1TB", 0.6)),
            (
                _o("14英寸", "14英寸1920×1200屏幕", 0.3),
                _o("15.6英寸", "15.6英寸1920×1080屏幕", 0.2),
                _o("13.3英寸", "13.3英寸2.5K屏幕", 0.5),
            ),
        ),
        tails=_LAPTOP_TAILS,
    ),
    _Kind(
        code="A02010104",
        noun="服务器",
        unit="台",
        low=15000,
        high=90000,
        weight=2,
        brands=(
            ("浪潮", (_s("NF5280M6", level=0.6), _s("NF5270M6", level=0.4), _s("NF5466M6", level=0.9))),
            ("新华三", (_s("UniServer R4900 G5", level=0.7), _s("UniServer R4700 G5", level=0.5))),
            ("中科曙光", (_s("I620-G40", level=0.5), _s("I840-G30", level=0.9))),
            ("联想", (_s("ThinkSystem SR650 V2", level=0.7), _s("ThinkSystem SR588", level=0.4))),
            ("戴尔", (_s("PowerEdge R750xs", level=0.7), _s("PowerEdge R550", level=0.4))),
            ("超聚变", (_s("FusionServer 2288H V6", level=0.7),)),
        ),
        axes=(
            (
                _o("2×银牌4310", "处理器2颗英特尔至强银牌4310", 0.0),
                _o("2×银牌4314", "处理器2颗英特尔至强银牌4314", 0.3),
                _o("2×金牌5318Y", "处理器2颗英特尔至强金牌5318Y", 0.7),
                _o("2×金牌6330", "处理器2颗英特尔至强金牌6330", 1.0),
            ),
            (
                _o("64G", "内存64GB DDR4 ECC", 0.0),
                _o("128G", "内存128GB DDR4 ECC", 0.4),
                _o("256G", "内存256GB DDR4 ECC", 0.7),
                _o("512G", "内存512GB DDR4 ECC", 1.0),
            ),
            (
                _o("3×1.2T SAS", "硬盘3块1.2TB SAS", 0.1),
                _o("4×2.4T SAS", "硬盘4块2.4TB SAS", 0.5),
                _o("2×480G SSD+4×4T SATA", "硬盘2块480GB SSD加4块4TB SATA", 0.6),
                _o("8×960G SSD", "硬盘8块960GB SSD", 1.0),
            ),
            (_o("双电源550W", "550W冗余双电源", 0.1), _o("双电源1300W", "1300W冗余双电源", 0.3)),
        ),
        tails=(
            "2U机架式，三年7×24小时原厂服务",
            "含RAID卡及导轨，五年原厂上门保修",
            "2U机架式，三年原厂保修",
        ),
    ),
    _Kind(
        code="A02010109",
        noun="平板电脑",
        unit="台",
        low=1500,
        high=7000,
        weight=2,
        brands=(
            ("华为", (_s("MatePad 11.5", level=0.3), _s("MatePad Pro 13.2", level=1.0))),
            ("联想", (_s("小新Pad Pro 12.7", level=0.4), _s("拯救者Y700", level=0.6))),
            ("小米", (_s("平板6", level=0.3), _s("平板6S Pro", level=0.8))),
            ("三星", (_s("Galaxy Tab S9", level=0.9),)),
            ("荣耀", (_s("平板9", level=0.2),)),
        ),
        axes=(
            (
                _o("8G+128G", "运行内存8GB，存储128GB", 0.0),
                _o("8G+256G", "运行内存8GB，存储256GB", 0.4),
                _o("12G+256G", "运行内存12GB，存储256GB", 0.7),
                _o("12G+512G", "运行内存12GB，存储512GB", 1.0),
            ),
            (_o("WiFi版", "WiFi版", 0.0), _o("5G全网通版", "支持5G全网通", 0.6)),
            (_o("深空灰", "深空灰配色", 0.0), _o("银色", "银色配色", 0.0), _o("曜石黑", "曜石黑配色", 0.0)),
        ),
        tails=("含原装手写笔，一年原厂保修", "含键盘保护套，一年原厂保修", "全国联保"),
    ),
    _Kind(
        code="A02021003",
        noun="A4黑白激光打印机",
        unit="台",
        low=900,
        high=4000,
        weight=5,
        brands=(
            ("惠普", (_s("LaserJet Pro 4004dn", level=0.7), _s("LaserJet M208dw", level=0.3))),
            ("佳能", (_s("LBP6230dn", level=0.3), _s("LBP325x", level=0.8))),
            ("兄弟", (_s("HL-2595DW", level=0.3), _s("HL-L5100DN", level=0.7))),
            ("奔图", (_s("P3305DN", level=0.4), _s("P3325DN", level=0.6))),
            ("联想", (_s("LJ2405D", level=0.2), _s("LJ3303DN", level=0.5))),
            ("得力", (_s("P2000DNW", level=0.3),)),
        ),
        axes=(
            (
                _o("28页/分钟", "打印速度28页/分钟", 0.0),
                _o("33页/分钟", "打印速度33页/分钟", 0.4),
                _o("40页/分钟", "打印速度40页/分钟", 1.0),
            ),
            (
                _o("自动双面", "支持自动双面打印", 0.2),
                _o("自动双面+有线网络", "支持自动双面打印和有线网络打印", 0.5),
                _o("自动双面+无线网络", "支持自动双面打印和无线网络打印", 0.8),
            ),
        ),
        tails=_PRINT_TAILS,
        sep=" ",
    ),
    _Kind(
        code="A02021004",
        noun="A4彩色打印机",
        unit="台",
        low=1500,
        high=8000,
        weight=2,
        brands=(
            (
                "惠普",
                (_s("Color LaserJet Pro 3204dw", level=0.6), _s("Color LaserJet Pro M255dw", level=0.5)),
            ),
            ("佳能", (_s("LBP664Cx", level=0.6), _s("LBP623Cdw", level=0.4))),
            ("兄弟", (_s("HL-L3288CDW", level=0.4),)),
            ("奔图", (_s("CP2506DN", level=0.5),)),
            ("爱普生", (_s("L8058", level=0.3), _s("WF-C5790a", level=0.8))),
        ),
        axes=(
            (
                _o("18页/分钟", "彩色打印速度18页/分钟", 0.0),
                _o("22页/分钟", "彩色打印速度22页/分钟", 0.4),
                _o("27页/分钟", "彩色打印速度27页/分钟", 1.0),
            ),
            (
                _o("自动双面", "支持自动双面打印", 0.2),
                _o("自动双面+无线网络", "支持自动双面打印和无线网络打印", 0.8),
            ),
        ),
        tails=_PRINT_TAILS,
        sep=" ",
    ),
    _Kind(
        code="A02021001",
        noun="A3黑白激光打印机",
        unit="台",
        low=3000,
        high=15000,
        weight=1,
        brands=(
            ("惠普", (_s("LaserJet M706n", level=0.5),)),
            ("京瓷", (_s("ECOSYS P4140dn", level=0.7),)),
            ("理光", (_s("SP 6430DN", level=0.6),)),
            ("奔图", (_s("BP5100DN", level=0.4),)),
        ),
        axes=(
            (_o("35页/分钟", "A4打印速度35页/分钟", 0.0), _o("40页/分钟", "A4打印速度40页/分钟", 0.6)),
            (_o("自动双面+有线网络", "支持自动双面打印和有线网络打印", 0.5), _o("单面", "手动双面打印", 0.0)),
        ),
        tails=_PRINT_TAILS,
        sep=" ",
    ),
    _Kind(
        code="A02021006",
        noun="针式票据打印机",
        unit="台",
        low=900,
        high=3500,
        weight=1.5,
        brands=(
            ("爱普生", (_s("LQ-630KII", level=0.4), _s("LQ-735KII", level=0.6))),
            ("得实", (_s("DS-1700II", level=0.3),)),
            ("映美", (_s("FP-630K+", level=0.3),)),
            ("联想", (_s("DP520", level=0.2),)),
        ),
        axes=(
            (_o("82列", "82列平推式", 0.0), _o("106列", "106列平推式", 0.8)),
            (_o("1+6联", "支持1+6联复写", 0.2), _o("1+3联", "支持1+3联复写", 0.0)),
        ),
        tails=("适用于增值税发票及各类票据打印，一年上门保修", "含原装色带，全国联保"),
        sep=" ",
    ),
    _Kind(
        code="A02020400",
        noun="多功能一体机",
        unit="台",
        low=1200,
        high=9000,
        weight=4,
        brands=(
            ("惠普", (_s("LaserJet Pro MFP 4104fdw", level=0.7), _s("LaserJet MFP M233sdw", level=0.3))),
            ("佳能", (_s("iC MF645Cx", level=0.7), _s("MF266dn", level=0.4))),
            ("兄弟", (_s("DCP-B7535DW", level=0.2), _s("MFC-L2770DW", level=0.4))),
            ("奔图", (_s("M7160DW", level=0.3), _s("M7300FDN", level=0.6))),
            ("联想", (_s("M7400 Pro", level=0.2),)),
            ("得力", (_s("M2000DW", level=0.2),)),
        ),
        axes=(
            (_o("黑白激光", "黑白激光", 0.0), _o("彩色激光", "彩色激光", 1.0)),
            (
                _o("打印/复印/扫描", "支持打印、复印、扫描", 0.0),
                _o("打印/复印/扫描/传真", "支持打印、复印、扫描、传真", 0.5),
            ),
            (_o("自动双面", "支持自动双面打印", 0.1), _o("双面+无线", "支持自动双面打印和无线连接", 0.4)),
        ),
        tails=_PRINT_TAILS,
        sep=" ",
    ),
    _Kind(
        code="A02020100",
        noun="复印机",
        unit="台",
        low=9000,
        high=60000,
        weight=1.5,
        brands=(
            ("理光", (_s("IM C2010", level=0.5), _s("IM 2702", level=0.3), _s("IM C3510", level=0.8))),
            ("柯尼卡美能达", (_s("bizhub C266i", level=0.5), _s("bizhub 367", level=0.4))),
            ("京瓷", (_s("TASKalfa 2554ci", level=0.6), _s("TASKalfa 3011i", level=0.5))),
            ("夏普", (_s("BP-M2522R", level=0.3), _s("BP-C3122", level=0.6))),
            ("佳能", (_s("imageRUNNER ADVANCE DX C3826", level=0.8), _s("iR 2425", level=0.2))),
        ),
        axes=(
            (_o("A3黑白", "A3黑白数码复合机", 0.0), _o("A3彩色", "A3彩色数码复合机", 1.0)),
            (
                _o("25页/分钟", "复印速度25页/分钟", 0.0),
                _o("30页/分钟", "复印速度30页/分钟", 0.4),
                _o("35页/分钟", "复印速度35页/分钟", 0.7),
                _o("45页/分钟", "复印速度45页/分钟", 1.0),
            ),
            (
                _o("单纸盒", "标配单纸盒", 0.0),
                _o("双面输稿器+双纸盒", "含双面自动输稿器和双纸盒", 0.5),
                _o("双面输稿器+四纸盒+工作台", "含双面自动输稿器、四纸盒及工作台", 1.0),
            ),
        ),
        tails=("含首年免费上门维护及耗材，三年原厂保修", "含安装调试及操作培训，一年原厂保修"),
        sep=" ",
    ),
    _Kind(
        code="A02020200",
        noun="投影仪",
        unit="台",
        low=2500,
        high=20000,
        weight=2.5,
        brands=(
            ("爱普生", (_s("CB-X50", level=0.3), _s("CB-FH52", level=0.5), _s("CB-L630U", level=1.0))),
            ("明基", (_s("MX560", level=0.1), _s("MH733", level=0.5), _s("LU935", level=0.9))),
            ("索尼", (_s("VPL-EX575", level=0.4), _s("VPL-CH375", level=0.7))),
            ("松下", (_s("PT-X3873C", level=0.4),)),
            ("宏碁", (_s("D616D", level=0.1),)),
        ),
        axes=(
            (
                _o("3600流明", "亮度3600流明", 0.0),
                _o("4000流明", "亮度4000流明", 0.3),
                _o("5000流明", "亮度5000流明", 0.7),
                _o("6000流明", "亮度6000流明", 1.0),
            ),
            (
                _o("1024×768", "XGA标准分辨率1024×768", 0.0),
                _o("1280×800", "WXGA宽屏分辨率1280×800", 0.4),
                _o("1920×1080", "全高清分辨率1920×1080", 0.8),
                _o("1920×1200", "WUXGA分辨率1920×1200", 1.0),
            ),
            (_o("", "标准镜头", 0.0), _o("含100英寸电动幕", "含100英寸电动幕布", 0.2)),
        ),
        tails=("含吊架及安装，整机三年保修", "灯泡保修一年，整机三年保修", "含HDMI线材，全国联保"),
        sep=" ",
    ),
    _Kind(
        code="A02021104",
        noun="液晶显示器",
        unit="台",
        low=600,
        high=4500,
        weight=4,
        brands=(
            ("戴尔", (_s("P2422H", level=0.4), _s("U2723QE", level=1.0), _s("SE2422H", level=0.1))),
            ("联想", (_s("ThinkVision T24i-30", level=0.4), _s("ThinkVision T27h-30", level=0.7))),
            ("飞利浦", (_s("242E1", level=0.1), _s("27E1N5500", level=0.4))),
            ("三星", (_s("S24C310EAC", level=0.1), _s("S27C900PAC", level=0.8))),
            ("明基", (_s("GW2480", level=0.1), _s("PD2705U", level=0.8))),
            ("惠普", (_s("P24h G5", level=0.4),)),
            ("AOC", (_s("24B2XH", level=0.0),)),
        ),
        axes=(
            (
                _o("21.5英寸", "21.5英寸", 0.0),
                _o("23.8英寸", "23.8英寸", 0.3),
                _o("27英寸", "27英寸", 0.7),
                _o("31.5英寸", "31.5英寸", 1.0),
            ),
            (
                _o("1920×1080", "全高清1920×1080分辨率", 0.0),
                _o("2560×1440", "2K 2560×1440分辨率", 0.5),
                _o("3840×2160", "4K 3840×2160分辨率", 1.0),
            ),
            (_o("IPS", "IPS面板", 0.2), _o("VA", "VA面板", 0.0)),
            (
                _o("HDMI+VGA", "接口HDMI+VGA", 0.0),
                _o("HDMI+DP", "接口HDMI+DP", 0.3),
                _o("Type-C 65W", "支持Type-C 65W反向充电", 0.8),
            ),
        ),
        tails=("三年原厂保修", "支持低蓝光护眼及升降旋转底座，三年保修", "含HDMI线，全国联保"),
        sep=" ",
    ),
    _Kind(
        code="A02021118",
        noun="扫描仪",
        unit="台",
        low=1500,
        high=15000,
        weight=1.5,
        brands=(
            ("富士通", (_s("fi-8170", level=0.7), _s("fi-7160", level=0.5))),
            ("佳能", (_s("DR-C240", level=0.3), _s("DR-M260", level=0.7))),
            ("爱普生", (_s("DS-530II", level=0.3), _s("DS-1630", level=0.4))),
            ("惠普", (_s("ScanJet Pro 3600 f1", level=0.4),)),
            ("紫光", (_s("Uniscan G300", level=0.2),)),
        ),
        axes=(
            (_o("A4", "最大幅面A4", 0.0), _o("A3", "最大幅面A3", 1.0)),
            (
                _o("馈纸式", "馈纸式高速扫描", 0.4),
                _o("平板式", "平板式扫描", 0.0),
                _o("平板+馈纸", "平板与馈纸双模式扫描", 0.6),
            ),
            (
                _o("30页/60面", "扫描速度30页/60面每分钟", 0.0),
                _o("40页/80面", "扫描速度40页/80面每分钟", 0.4),
                _o("60页/120面", "扫描速度60页/120面每分钟", 0.8),
                _o("80页/160面", "扫描速度80页/160面每分钟", 1.0),
            ),
        ),
        tails=("支持双面扫描及OCR文字识别，一年原厂保修", "支持国产操作系统，三年原厂保修"),
        sep=" ",
    ),
    _Kind(
        code="A02061804",
        noun="空调",
        unit="台",
        low=2500,
        high=8000,
        weight=4,
        brands=(
            ("格力", (_s("云佳", "KFR-#/NhGd1B", 0.3), _s("云锦II", "KFR-#/NhAe1BAj", 0.7))),
            ("美的", (_s("酷省电", "KFR-#/N8KS1-1", 0.3), _s("风尊", "KFR-#/N8MXC1", 0.7))),
            ("海尔", (_s("静悦", "KFR-#/03KBB81U1", 0.4),)),
            ("海信", (_s("速冷热", "KFR-#/E280-X1", 0.2),)),
            ("TCL", (_s("小蓝翼", "KFR-#/RV2Ea+B1", 0.3),)),
        ),
        axes=(
            (
                _o("1匹 壁挂式", "1匹壁挂式", 0.0, "26GW"),
                _o("1.5匹 壁挂式", "1.5匹壁挂式", 0.2, "35GW"),
                _o("2匹 立柜式", "2匹立柜式", 0.6, "51LW"),
                _o("3匹 立柜式", "3匹立柜式", 1.0, "72LW"),
            ),
            (_o("新一级能效", "新一级能效", 0.5), _o("新三级能效", "新三级能效", 0.0)),
            (_o("变频冷暖", "变频冷暖两用", 0.3), _o("定频冷暖", "定频冷暖两用", 0.0)),
        ),
        tails=("含标准安装及3米铜管，整机六年保修", "含安装及辅材，整机十年保修", "全国联保，含标准安装"),
        sep=" ",
    ),
    _Kind(
        code="A02091001",
        noun="液晶电视",
        unit="台",
        low=1800,
        high=15000,
        weight=2,
        brands=(
            ("海信", (_s("E3K", "#E3K", 0.2), _s("E7K", "#E7K", 0.6))),
            ("TCL", (_s("V8E", "#V8E", 0.2), _s("T7H", "#T7H", 0.5))),
            ("创维", (_s("A33", "#A33", 0.1), _s("A5D", "#A5D", 0.4))),
            ("小米", (_s("Redmi A", "L#M7-A", 0.0), _s("S Pro", "L#MA-SPL", 0.7))),
            ("索尼", (_s("X90L", "XR-#X90L", 1.0),)),
        ),
        axes=(
            (
                _o("43英寸", "43英寸", 0.0, "43"),
                _o("50英寸", "50英寸", 0.2, "50"),
                _o("55英寸", "55英寸", 0.35, "55"),
                _o("65英寸", "65英寸", 0.6, "65"),
                _o("75英寸", "75英寸", 0.85, "75"),
                _o("85英寸", "85英寸", 1.0, "85"),
            ),
            (_o("4K超高清", "4K超高清屏幕", 0.0),),
            (
                _o("2G+32G", "2GB+32GB存储", 0.0),
                _o("3G+64G", "3GB+64GB存储", 0.4),
                _o("4G+64G", "4GB+64GB存储", 0.7),
            ),
            (_o("60Hz", "60Hz刷新率", 0.0), _o("120Hz", "120Hz高刷", 0.6)),
        ),
        tails=("含挂架及上门安装，整机三年保修", "全国联保，整机一年保修", "支持投屏及远场语音"),
        sep=" ",
    ),
    _Kind(
        code="A05010201",
        noun="办公桌",
        unit="张",
        low=600,
        high=5000,
        weight=2.5,
        brands=(
            ("震旦", (_s("CF系列", "CF-#", 0.6),)),
            ("圣奥", (_s("简约系列", "SA-ZD#", 0.5),)),
            ("得力", (_s("经典系列", "DL-Z#", 0.1),)),
            ("永艺", (_s("优品系列", "YY-D#", 0.3),)),
        ),
        axes=(
            (
                _o("1200×600×750mm", "尺寸1200×600×750mm", 0.0, "1206"),
                _o("1400×700×750mm", "尺寸1400×700×750mm", 0.3, "1407"),
                _o("1600×800×760mm", "尺寸1600×800×760mm", 0.6, "1608"),
                _o("1800×900×760mm", "尺寸1800×900×760mm", 1.0, "1809"),
            ),
            (
                _o("E1级三聚氰胺板", "采用E1级环保三聚氰胺饰面板", 0.0),
                _o("实木贴皮", "采用胡桃木实木贴皮", 0.8),
                _o("钢木结构", "采用钢木结构", 0.3),
            ),
            (_o("含三抽活动柜", "含三抽活动柜", 0.3), _o("", "不含活动柜", 0.0)),
        ),
        tails=("含送货上门安装，质保五年", "甲醛释放量符合国家标准，质保三年"),
        sep=" ",
    ),
    _Kind(
        code="A05010301",
        noun="办公椅",
        unit="把",
        low=260,
        high=2500,
        weight=3,
        brands=(
            ("震旦", (_s("Smart网椅", "ES-1201", 0.6),)),
            ("圣奥", (_s("悦享", "SA-YX12", 0.5),)),
            ("永艺", (_s("沃克", "BC-1803", 0.5),)),
            ("西昊", (_s("M57", "M57", 0.4), _s("Doro C300", "C300", 0.8))),
            ("得力", (_s("经典款", "91027", 0.1),)),
        ),
        axes=(
            (
                _o("网布靠背", "透气网布靠背", 0.3),
                _o("PU皮", "PU皮面", 0.1),
                _o("头层牛皮", "头层牛皮面", 1.0),
            ),
            (_o("固定扶手", "固定扶手", 0.0), _o("3D升降扶手", "3D升降扶手", 0.6)),
            (_o("尼龙五星脚", "尼龙五星脚", 0.0), _o("铝合金五星脚", "铝合金五星脚", 0.7)),
        ),
        tails=("气杆通过SGS认证，质保三年", "可调节腰托及座高，质保五年", "含送货上门安装，质保三年"),
        sep=" ",
    ),
    _Kind(
        code="A05010502",
        noun="文件柜",
        unit="组",
        low=500,
        high=2500,
        weight=2.5,
        brands=(
            ("得力", (_s("钢制系列", "DL-G#", 0.2),)),
            ("齐心", (_s("办公系列", "QX-WJ#", 0.2),)),
            ("震旦", (_s("钢柜系列", "AS-#", 0.6),)),
            ("圣奥", (_s("简约钢柜", "SA-G#", 0.5),)),
        ),
        axes=(
            (
                _o("对开门", "对开门", 0.0, "DK"),
                _o("上玻下铁", "上玻下铁", 0.3, "SB"),
                _o("五节柜", "五节柜", 0.5, "WJ"),
            ),
            (
                _o("0.6mm冷轧钢板", "采用0.6mm冷轧钢板", 0.0),
                _o("0.8mm冷轧钢板", "采用0.8mm冷轧钢板", 0.5),
                _o("1.0mm冷轧钢板", "采用1.0mm冷轧钢板", 1.0),
            ),
            (
                _o("1850×900×400mm", "尺寸1850×900×400mm", 0.4),
                _o("1800×850×390mm", "尺寸1800×850×390mm", 0.3),
                _o("900×900×400mm", "尺寸900×900×400mm", 0.0),
            ),
        ),
        tails=("静电喷涂，内置可调层板，质保五年", "含送货上门安装，质保三年"),
        sep=" ",
    ),
    _Kind(
        code="A05040101",
        noun="复印纸",
        unit="包",
        low=20,
        high=40,
        weight=7,
        brands=(
            ("得力", (_s("佳宣", "7401", 0.3), _s("莱茵河", "ZF111", 0.5), _s("铭锐", "3558", 0.2))),
            ("齐心", (_s("益彩", "C3778", 0.3), _s("晶纯", "C5541", 0.5))),
            ("晨光", (_s("绿晨光", "APYVPB01", 0.2), _s("蓝晨光", "APYVYB01", 0.4))),
            ("亚太森博", (_s("百旺", "BW70", 0.4),)),
            ("天章", (_s("天章龙", "TZL", 0.3),)),
        ),
        axes=(
            (_o("A4", "A4幅面", 0.0), _o("A3", "A3幅面", 1.0)),
            (_o("70g", "70克", 0.0), _o("80g", "80克", 0.5)),
            (_o("500张/包", "每包500张", 0.0),),
        ),
        tails=("高白度双面打印不卡纸", "适用于激光及喷墨打印机和复印机", "纸面平滑少粉尘"),
        sep=" ",
    ),
    _Kind(
        code="A05040101",
        noun="复印纸",
        unit="箱",
        low=100,
        high=260,
        weight=4,
        brands=(
            ("得力", (_s("佳宣", "7402", 0.3), _s("莱茵河", "ZF118", 0.5))),
            ("齐心", (_s("益彩", "C3780", 0.3),)),
            ("晨光", (_s("绿晨光", "APYVPB08", 0.2),)),
            ("亚太森博", (_s("百旺", "BW80", 0.4),)),
            ("天章", (_s("天章龙", "TZL-X", 0.3),)),
        ),
        axes=(
            (_o("A4", "A4幅面", 0.0), _o("A3", "A3幅面", 1.0)),
            (_o("70g", "70克", 0.0), _o("80g", "80克", 0.5)),
            (_o("5包/箱", "每箱5包共2500张", 0.0), _o("8包/箱", "每箱8包共4000张", 0.8)),
        ),
        tails=("高白度双面打印不卡纸", "适用于激光及喷墨打印机和复印机", "整箱配送"),
        sep=" ",
    ),
    _Kind(
        code="A05040201",
        noun="硒鼓",
        unit="支",
        low=90,
        high=1200,
        weight=5,
        brands=(
            ("惠普", (_s("HP 58A", "CF258A", 0.7), _s("HP 87A", "CF287A", 1.0), _s("HP 26A", "CF226A", 0.6))),
            ("佳能", (_s("CRG-052", level=0.7), _s("CRG-337", level=0.5))),
            ("兄弟", (_s("TN-2425", level=0.4), _s("DR-2450", level=0.5))),
            ("奔图", (_s("PD-219", level=0.3), _s("TO-405", level=0.4))),
            ("联想", (_s("LD2441", level=0.3),)),
            ("天色", (_s("CF228A兼容", "TS-CF228A", 0.0), _s("CRG337兼容", "TS-CRG337", 0.0))),
            ("格之格", (_s("CF226A兼容", "NT-CH226", 0.0),)),
        ),
        axes=(
            (
                _o("标准容量", "标准容量约1500页", 0.0),
                _o("大容量", "大容量约3000页", 0.6),
                _o("超大容量", "超大容量约6000页", 1.0),
            ),
            (_o("黑色", "黑色", 0.0),),
            (_o("单支装", "单支装", 0.0), _o("双支装", "双支装", 0.8)),
        ),
        tails=("按5%覆盖率计算打印页数", "原装正品，可开具增值税专用发票", "适配主流激光打印机"),
        sep=" ",
    ),
    _Kind(
        code="A05040203",
        noun="墨盒",
        unit="个",
        low=60,
        high=600,
        weight=2.5,
        brands=(
            ("惠普", (_s("HP 803", "F6V21AA", 0.3), _s("HP 680", "F6V27AA", 0.1))),
            ("佳能", (_s("PG-845", level=0.3), _s("CL-846", level=0.4))),
            ("爱普生", (_s("T6721", level=0.1), _s("T09K1", level=0.5))),
            ("兄弟", (_s("LC-3919", level=0.4),)),
            ("天色", (_s("803XL兼容", "TS-803XL", 0.0),)),
        ),
        axes=(
            (_o("黑色", "黑色", 0.0), _o("彩色", "三色彩色", 0.5), _o("四色套装", "黑青品黄四色套装", 1.0)),
            (_o("标准容量", "标准容量", 0.0), _o("XL大容量", "XL大容量", 0.6)),
        ),
        tails=("原装正品，适用于喷墨打印机", "可开具增值税专用发票", "按ISO标准测试打印页数"),
        sep=" ",
    ),
    _Kind(
        code="A02010201",
        noun="企业级路由器",
        unit="台",
        low=150,
        high=8000,
        weight=2,
        brands=(
            ("普联", (_s("TP-LINK TL-R473G", "TL-R473G", 0.1), _s("TP-LINK TL-ER3220G", "TL-ER3220G", 0.3))),
            ("华为", (_s("AR6120", level=0.8), _s("AR1220C", level=0.5))),
            ("新华三", (_s("ER3200G3", level=0.3), _s("MSR2600-10-X1", level=0.9))),
            ("锐捷", (_s("RG-EG210G-E", level=0.3), _s("RG-RSR20-X-28", level=0.9))),
        ),
        axes=(
            (
                _o("5个千兆网口", "5个千兆网口", 0.0),
                _o("10个千兆网口", "10个千兆网口", 0.4),
                _o("8千兆口+2万兆光口", "8个千兆电口加2个万兆光口", 1.0),
            ),
            (
                _o("多WAN负载均衡", "支持多WAN口负载均衡", 0.2),
                _o("企业级VPN", "支持IPSec/L2TP VPN", 0.5),
                _o("AC控制器+上网行为管理", "内置AC控制器及上网行为管理", 0.7),
            ),
            (
                _o("带机量100台", "建议带机量100台", 0.0),
                _o("带机量300台", "建议带机量300台", 0.4),
                _o("带机量800台", "建议带机量800台", 1.0),
            ),
        ),
        tails=("支持云平台远程管理，三年原厂保修", "含上架套件，一年原厂保修"),
        sep=" ",
    ),
    _Kind(
        code="A02010202",
        noun="交换机",
        unit="台",
        low=300,
        high=30000,
        weight=3,
        brands=(
            ("华为", (_s("S5735S", "S5735S-L#", 0.6), _s("S1730S", "S1730S-L#", 0.2))),
            ("新华三", (_s("S5130S-EI", "S5130S-#-EI", 0.5), _s("S1850V2", "S1850V2-#", 0.2))),
            ("锐捷", (_s("RG-S2910", "RG-S2910-#", 0.3), _s("RG-S5750", "RG-S5750-#", 0.8))),
            ("普联", (_s("TP-LINK TL-SG", "TL-SG2#", 0.0),)),
        ),
        axes=(
            (
                _o("8口千兆电口", "8个千兆电口", 0.0, "8T"),
                _o("24口千兆+4万兆光口", "24个千兆电口加4个万兆光口", 0.5, "24T4X"),
                _o("48口千兆+4万兆光口", "48个千兆电口加4个万兆光口", 1.0, "48T4X"),
            ),
            (_o("二层网管", "二层网管", 0.0), _o("三层网管", "三层路由网管", 0.6)),
            (_o("", "非PoE", 0.0), _o("PoE供电", "支持PoE+供电", 0.4)),
        ),
        tails=("支持VLAN及链路聚合，三年原厂保修", "含上架套件，一年原厂保修", "支持云管理，全国联保"),
        sep=" ",
    ),
    _Kind(
        code="A02021301",
        noun="碎纸机",
        unit="台",
        low=300,
        high=3000,
        weight=1.5,
        brands=(
            ("科密", (_s("C-638", level=0.4), _s("3839", level=0.6))),
            ("得力", (_s("9905", level=0.3), _s("14401", level=0.6))),
            ("齐心", (_s("S2406", level=0.3),)),
            ("震旦", (_s("AS1220CD", level=0.7),)),
        ),
        axes=(
            (
                _o("3级保密", "3级保密4×30mm碎状", 0.0),
                _o("4级保密", "4级保密2×10mm颗粒", 0.3),
                _o("5级保密", "5级保密1×2mm颗粒", 0.8),
            ),
            (
                _o("单次8张", "单次碎纸8张", 0.0),
                _o("单次12张", "单次碎纸12张", 0.4),
                _o("单次20张", "单次碎纸20张", 1.0),
            ),
            (_o("18L", "纸箱容量18L", 0.0), _o("25L", "纸箱容量25L", 0.4), _o("35L", "纸箱容量35L", 0.8)),
        ),
        tails=("可碎光盘和信用卡，连续碎纸30分钟", "静音设计，一年保修", "可碎订书钉，整机两年保修"),
        sep=" ",
    ),
    _Kind(
        code="A02020501",
        noun="数码相机",
        unit="台",
        low=2500,
        high=25000,
        weight=1.5,
        brands=(
            ("佳能", (_s("EOS R50", level=0.2), _s("EOS R8", level=0.6), _s("EOS R6 Mark II", level=1.0))),
            ("尼康", (_s("Z30", level=0.2), _s("Z5", level=0.5), _s("Z6II", level=0.8))),
            ("索尼", (_s("ZV-E10", level=0.2), _s("Alpha 7 IV", "ILCE-7M4", 0.9))),
            ("富士", (_s("X-S20", level=0.5),)),
        ),
        axes=(
            (
                _o("单机身", "单机身", 0.0),
                _o("标准变焦镜头套机", "含标准变焦镜头", 0.5),
                _o("24-105mm镜头套机", "含24-105mm镜头", 1.0),
            ),
            (
                _o("含64G存储卡", "含64GB存储卡及相机包", 0.1),
                _o("含128G存储卡+备用电池", "含128GB存储卡及备用电池", 0.3),
            ),
        ),
        tails=("全国联保，一年原厂保修", "含UV镜及清洁套装，全国联保"),
        sep=" ",
    ),
    _Kind(
        code="A02061504",
        noun="UPS不间断电源",
        unit="台",
        low=800,
        high=20000,
        weight=1.5,
        brands=(
            ("山特", (_s("C系列", "C#KS", 0.5), _s("城堡系列", "3C#KS", 0.7))),
            ("华为", (_s("UPS2000-A", "UPS2000-A-#KTTS", 0.6),)),
            ("科华", (_s("YTR系列", "YTR11#K", 0.4),)),
            ("伊顿", (_s("9SX系列", "9SX#KI", 0.7),)),
        ),
        axes=(
            (
                _o("1kVA/900W", "额定容量1kVA/900W", 0.0, "1"),
                _o("2kVA/1800W", "额定容量2kVA/1800W", 0.2, "2"),
                _o("3kVA/2700W", "额定容量3kVA/2700W", 0.4, "3"),
                _o("6kVA/5400W", "额定容量6kVA/5400W", 0.7, "6"),
                _o("10kVA/9000W", "额定容量10kVA/9000W", 1.0, "10"),
            ),
            (
                _o("在线式 标准机", "在线式双变换，标准机内置电池", 0.0),
                _o("在线式 长效机", "在线式双变换，长效机外接电池组延时2小时", 0.6),
            ),
        ),
        tails=("含上门安装调试，三年原厂保修", "含监控软件及通信卡，两年原厂保修"),
        sep=" ",
    ),
)

_REFERENCE_SOURCES = (
    "京东自营 2026-11",
    "京东自营 2026-10",
    "天猫官方旗舰店 2026-11",
    "苏宁易购 2026-10",
    "厂商官网",
    "厂商官网 2026-11",
    "品牌授权店 2026-09",
)
# How a supplier dresses up its title; mostly plain.
_TITLE_EXTRAS = ("", "", "", "", "", " 含税含运费", " 原厂正品", " 全国联保", "（政府采购专供）")
_DRESSINGS = tuple((extra, source) for extra in _TITLE_EXTRAS for source in _REFERENCE_SOURCES)

_SHARED_SHARE = 0.30  # share of products offered by 2–4 suppliers
_ZERO_STOCK_SHARE = 0.05
_MAX_STOCK = 500
_MAX_DISCOUNT_PERCENT = 8
# A product's reference price: its kind's range, placed by series level and options, moved by one of
# these steps (in the same units as the tier: 0 = low end of the range, 1 = high end).
_PRICE_NOISE = (-0.06, -0.02, 0.02, 0.06)
_TAIL_STRIDE = 7919  # spreads a kind's closing clauses of the description over its product numbers

# The model code: one letter and four base-36 characters, a permutation of the product counter.
_CODE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CODE_PAIRS = tuple(a + b for a in "0123456789" + _CODE_LETTERS for b in "0123456789" + _CODE_LETTERS)
_CODE_SPACE = 26 * 36**4  # distinct codes
_CODE_MULTIPLIER = 27_644_437  # prime, coprime with _CODE_SPACE (= 2^9 · 3^8 · 13)

# A sequence has at most as many products as listings, and every product needs its own code.
MAX_ITEMS = _CODE_SPACE

# Cents 0..99 as Decimals; `fraction + yuan` keeps two decimal places.
_FRACTIONS = tuple(Decimal(c).scaleb(-2) for c in range(100))
_REFERENCE_DECIMALS: dict[int, Decimal] = {}  # reference prices in cents → Decimal (few distinct values)


def _round_reference(yuan: float, low: int, high: int) -> int:
    """A shop-like reference price in cents (4599.00, 389.00, 24.50), within [low, high] yuan."""
    if yuan >= 1000:
        whole = int(yuan) // 100 * 100 + 99
        if whole > high:
            whole -= 100
        return max(whole, low) * 100
    if yuan >= 100:
        whole = int(yuan) // 10 * 10 + 9
        if whole > high:
            whole -= 10
        return max(whole, low) * 100
    return min(max(int(yuan * 10) * 10, low * 100), high * 100)


def _reference(yuan: float, low: int, high: int) -> tuple[int, Decimal]:
    cents = _round_reference(yuan, low, high)
    found = _REFERENCE_DECIMALS.get(cents)
    if found is None:
        found = _REFERENCE_DECIMALS[cents] = _FRACTIONS[cents % 100] + cents // 100
    return cents, found


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


# A product of a kind: brand, title, model template with its fragments filled in, description, reference
# prices (one per _PRICE_NOISE) in cents and as Decimal, category code, unit.
_Product = tuple[str, str, str, str, tuple[tuple[int, Decimal], ...], str, str]


class _KindTable:
    """The products of one kind, numbered 0..size-1 (series × one option per axis), each built on first use.

    The table holds at most `size` products whatever the length of the sequence."""

    __slots__ = ("axes", "factors", "kind", "lines", "products", "size")

    def __init__(self, kind: _Kind) -> None:
        self.kind = kind
        # Per series: brand, start of the title, start of the description, model template, price level.
        self.lines = tuple(
            (
                brand,
                f"{brand} {series} {kind.noun} ",
                f"{brand}{series}{' ' if _latin(series[-1]) and _latin(kind.noun[0]) else ''}{kind.noun}，",
                template,
                level,
            )
            for brand, lines in kind.brands
            for series, template, level in lines
        )
        # Tiers scaled so that the best options of all axes sum to 1.
        total = sum(max(o[2] for o in axis) for axis in kind.axes) or 1.0
        self.axes = tuple(tuple((t, d, tier / total, f) for t, d, tier, f in axis) for axis in kind.axes)
        self.size = len(self.lines) * prod(len(axis) for axis in self.axes)
        # The price at tier t is low · (high / low) ** t; a noise step multiplies it by (high / low) ** noise.
        self.factors = tuple((kind.high / kind.low) ** noise for noise in _PRICE_NOISE)
        self.products: dict[int, _Product] = {}

    def build(self, number: int) -> _Product:
        kind = self.kind
        rest = number
        chosen: list[_Option] = []
        for axis in reversed(self.axes):
            rest, i = divmod(rest, len(axis))
            chosen.append(axis[i])
        chosen.reverse()
        brand, title, description, template, level = self.lines[rest]
        if "#" in template:
            template = template.replace("#", "".join([o[3] for o in chosen]))
        title += kind.sep.join([o[0] for o in chosen if o[0]])
        tail = kind.tails[number * _TAIL_STRIDE % len(kind.tails)]
        description += f"{'，'.join([o[1] for o in chosen])}，{tail}。"
        low, high = kind.low, kind.high
        base = low * (high / low) ** (0.35 * level + 0.65 * sum([o[2] for o in chosen]))
        references = tuple([_reference(min(max(base * f, low), high), low, high) for f in self.factors])
        product = (brand, title, template, description, references, kind.code, kind.unit)
        self.products[number] = product
        return product


_TABLES = tuple(_KindTable(k) for k in _KINDS)
_CUMULATIVE_WEIGHTS = tuple(accumulate(k.weight for k in _KINDS))


def category_codes() -> frozenset[str]:
    """Every category code the generator can produce."""
    return frozenset(k.code for k in _KINDS)


def generate(n: int, *, seed: int = 1, suppliers: int = 4) -> Iterator[tuple[int, GeneratedListing]]:
    """Yield n listings as (supplier_index in range(suppliers), listing). Deterministic for (n, seed, suppliers):
    the first k items of generate(n) equal generate(k) for k <= n. Lazy: constant memory whatever n (at most
    MAX_ITEMS), well over 100,000 items/s."""
    if n < 0:
        raise ValueError("n must not be negative")
    if n > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} listings per sequence")
    if suppliers < 1:
        raise ValueError("suppliers must be at least 1")
    return _generate(n, seed, suppliers)


def _generate(n: int, seed: int, suppliers: int) -> Iterator[tuple[int, GeneratedListing]]:
    # The hot loop. Everything about a product comes from its kind table's cache; one RNG stream, consumed
    # in order, so a shorter sequence is a prefix of a longer one.
    rng = random.Random(seed)
    rand = rng.random
    offset = rng.randrange(_CODE_SPACE)
    sizes = tuple(t.size for t in _TABLES)
    lookups = tuple(t.products.get for t in _TABLES)
    builders = tuple(t.build for t in _TABLES)
    weights = _CUMULATIVE_WEIGHTS
    weight_total = weights[-1]
    dressings = _DRESSINGS
    dressing_count = len(dressings)
    noise_count = len(_PRICE_NOISE)
    fractions = _FRACTIONS
    letters = _CODE_LETTERS
    pairs = _CODE_PAIRS
    space = _CODE_SPACE
    multiplier = _CODE_MULTIPLIER
    share = _SHARED_SHARE if suppliers > 1 else 0.0
    max_sharing = min(4, suppliers)
    zero_stock = _ZERO_STOCK_SHARE
    stock_scale = _MAX_STOCK / (1 - zero_stock) ** 2
    # The dataclass's generated __init__ (ten object.__setattr__ calls, as it is frozen) would be the
    # largest single cost per item; setting the instance dict in one step gives an equal object.
    new = object.__new__
    set_attribute = object.__setattr__
    cls = GeneratedListing

    produced = 0
    counter = 0
    while produced < n:
        k = bisect(weights, rand() * weight_total)
        number = int(rand() * sizes[k])
        product = lookups[k](number) or builders[k](number)
        brand, title, template, description, references, code, unit = product

        high, low = divmod((counter * multiplier + offset) % space, 1296)
        counter += 1
        letter, middle = divmod(high, 1296)
        spec_model = f"{template}-{letters[letter]}{pairs[middle]}{pairs[low]}"
        reference, reference_price = references[int(rand() * noise_count)]
        max_discount = reference * _MAX_DISCOUNT_PERCENT // 100
        whole_yuan = reference >= 10000

        # Who offers it: usually one supplier, sometimes the same model from several.
        if rand() < share:
            count = min(2 + int(rand() * 3), max_sharing)
            offering = [int(rand() * suppliers)]
            while len(offering) < count:
                other = int(rand() * suppliers)
                if other not in offering:
                    offering.append(other)
            if produced + count > n:
                del offering[n - produced :]
        else:
            offering = [int(rand() * suppliers)]

        for supplier in offering:
            price = reference - int(max_discount * rand())
            if whole_yuan and supplier % 3:
                # Two suppliers in three price in whole yuan when the discount allows it.
                rounded = price - price % 100
                if reference - rounded <= max_discount:
                    price = rounded
            r = rand() - zero_stock
            stock = 1 + int(r * r * stock_scale) if r >= 0 else 0  # skewed to small stocks, at most 500
            extra, source = dressings[int(rand() * dressing_count)]
            item = new(cls)
            set_attribute(
                item,
                "__dict__",
                {
                    "name": title + extra,
                    "brand": brand,
                    "spec_model": spec_model,
                    "category_code": code,
                    "unit": unit,
                    "price": fractions[price % 100] + price // 100,
                    "reference_price": reference_price,
                    "reference_source": source,
                    "stock": stock,
                    "description": description,
                },
            )
            yield supplier, item
        produced += len(offering)
