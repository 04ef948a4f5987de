"""Page forms decode into the API's Structs, so a form and the JSON API take one shape with one set
of bounds; `decode` says in Chinese which field is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from mall.core.errors import InvalidInput, chinese_validation_message

S = TypeVar("S", bound=msgspec.Struct)

NOT_FIELDS = frozenset({"_csrf_token"})
_AT = re.compile(r" - at `\$\.?([\w.\[\]]*)`$")


def decode(struct: type[S], form: Mapping[str, Any], *, code: str = "invalid_input") -> S:
    """A form's fields as `struct`: the CSRF token is not a field; an empty field takes the Struct's
    default (a required one stays missing); strings become numbers and booleans as msgspec's lax mode
    reads them ("1", "true"). A refusal is an InvalidInput naming the field."""
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    data: dict[str, Any] = {}
    for key, value in form.items():
        if key in NOT_FIELDS:
            continue
        f = fields.get(key)
        if isinstance(value, str) and value.strip() == "" and f is not None and not f.required:
            continue
        data[key] = value
    try:
        return msgspec.convert(data, struct, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        m = _AT.search(message)
        name = m.group(1).split(".")[0].split("[")[0] if m else ""
        text = chinese_validation_message(_AT.sub("", message))
        label = FIELD_LABELS.get(name, name)
        raise InvalidInput(f"{label}{text}" if label else text, code=code, field=name or None) from None


# Names of the fields the page forms share, for the refusal messages above.
FIELD_LABELS = {
    "title": "标题",
    "name": "名称",
    "brand": "品牌",
    "model": "规格型号",
    "spec": "技术规格",
    "unit": "计量单位",
    "quantity": "数量",
    "price": "价格",
    "unit_price": "单价",
    "ceiling": "最高限价",
    "amount": "金额",
    "decrement": "降价幅度",
    "category_code": "品目编码",
    "item_name": "采购内容",
    "budget_line_id": "预算指标",
    "agreement_id": "框架协议",
    "min_participants": "最少有效供应商数",
    "ends_at": "截止时间",
    "starts_at": "开始时间",
    "reason": "原因",
    "note": "备注",
    "answer": "说明",
    "explanation": "说明",
    "ecommerce_price": "电商价格",
    "ecommerce_url": "电商页面网址",
    "ecommerce_captured_on": "电商价采集日期",
    "url": "网址",
    "mode": "交易方式",
    "address": "地址",
    "phone": "电话",
    "contact": "联系人",
    "credit_code": "统一社会信用代码",
    "username": "用户名",
    "password": "密码",
    "description": "说明",
    "stock": "库存",
    "decision": "审核结论",
    "kind": "类型",
    "direct_limit": "直接选定限额",
    "spec_model": "规格型号",
    "list_price": "产品报价",
    "discount_rate": "折扣率",
    "supplier_org_id": "入围供应商",
    "product_id": "协议产品",
    "delivery_address": "收货地址",
    "service_address": "服务地点",
    "region_code": "服务区域",
    "prices": "服务价格清单",
    "items": "服务项目",
    "starts_on": "开始日期",
    "ends_on": "截止日期",
    "reference_price": "参考市场价",
    "reference_source": "参考价来源",
    "action": "操作",
    "status": "状态",
    "label_no": "供应商编号",
}
FIELD_LABELS.update(
    {
        "listing_id": "商品编号",
        "score": "评价分数",
        "comment": "评价说明",
        "payment_ref": "支付凭证号",
        "fiscal_year": "预算年度",
        "project_code": "项目编码",
        "project_name": "项目名称",
        "display_name": "姓名",
        "current_password": "当前密码",
        "new_password": "新密码",
        "new_password2": "确认新密码",
        "region_code": "行政区划代码",
        "contact_phone": "联系电话",
        "is_sole_proprietor": "个体工商户",
        "delivery_address": "收货地址",
        "checkout_key": "下单凭据",
        "kind": "类型",
        "inspectors": "验收人员",
        "inspected_on": "验收日期",
        "carrier": "物流公司",
        "tracking_no": "运单号",
        "invoice_no": "发票号码",
        "invoice_code": "发票代码",
        "issued_on": "开票日期",
        "voucher_no": "支付凭证号",
        "paid_on": "付款日期",
        "email": "电子邮箱",
    }
)
