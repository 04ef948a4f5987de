"""One error path: services raise DomainError; one handler turns it into application/problem+json."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from mall.core.transient import retry_reason

log = logging.getLogger("mall.errors")

PROBLEM = "application/problem+json"


class DomainError(Exception):
    """A refusal the user can act on. `code` is stable; `detail` is Chinese, for people. A kind of
    refusal names its HTTP status and default code in its class line."""

    status = 400
    code = "bad_request"

    def __init_subclass__(cls, status: int | None = None, code: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra


class InvalidInput(DomainError, status=400, code="invalid_input"):
    pass


class NotFound(DomainError, status=404, code="not_found"):
    pass


class Unauthenticated(DomainError, status=401, code="unauthenticated"):
    pass


class Forbidden(DomainError, status=403, code="forbidden"):
    pass


class Conflict(DomainError, status=409, code="conflict"):
    """The request is well-formed but the current state does not allow it."""


class TooManyAttempts(DomainError, status=429, code="too_many_attempts"):
    pass


class Unavailable(DomainError, status=503, code="unavailable"):
    """A service the request needs (the search engine) does not answer; nothing was changed."""


class RuleViolation(DomainError, status=422, code="rule_violation"):
    """A procurement rule refuses the request (threshold, budget, price)."""


def problem_body(
    status: int, code: str, detail: str, instance: str = "", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem document: a stable `code` for programs, a Chinese `detail` for people."""
    titles = {
        413: "请求体过大",
        415: "不支持的媒体类型",
        400: "请求有误",
        401: "需要登录",
        403: "无权访问",
        404: "未找到",
        405: "方法不允许",
        409: "状态冲突",
        422: "不符合规则",
        429: "请求过于频繁",
        500: "服务器内部错误",
        503: "服务暂不可用",
    }
    body = {
        "type": "about:blank",
        "title": titles.get(status, "错误"),
        "status": status,
        "code": code,
        "detail": detail,
        "instance": instance,
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str = "",
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    return Response(
        content=problem_body(status, code, detail, instance, extra),
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "")


ErrorPage = Callable[[Request[Any, Any, Any], int, str, str, dict[str, str] | None], Response[Any]]
_error_page: ErrorPage | None = None


def use_error_page(page: ErrorPage) -> None:
    """The web shell names the page a browser is shown for a refusal; the kernel knows no pages."""
    global _error_page
    _error_page = page


def _refusal(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """The web shell's error page for a browser; a problem document for everyone else."""
    if _error_page is not None and _wants_html(request):
        return _error_page(request, status, code, detail, headers)
    return problem(status, code, detail, request.url.path, extra, headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = getattr(exc, "headers", None)  # e.g. Retry-After of a login throttle
    return _refusal(request, exc.status, exc.code, exc.detail, exc.extra, headers)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        code, detail = "invalid_input", "请求参数不合法"
        extra = exc.extra if isinstance(exc.extra, (dict, list)) else None
        errors = _validation_errors(extra)
        if not errors and "Missing required" in str(exc.detail):
            errors = [chinese_validation_message(str(exc.detail))]  # e.g. a missing header: name it
        if errors:
            detail = "请求参数不合法：" + "；".join(errors)
    elif isinstance(exc, NotAuthorizedException):
        code, detail = "unauthenticated", "请先登录"
    elif status == 403 and "CSRF" in str(exc.detail):
        code, detail = "csrf_failed", "表单已过期或来源无效，请刷新页面后重试"
    elif isinstance(exc, PermissionDeniedException):
        code, detail = "forbidden", "您没有权限执行此操作"
    elif isinstance(exc, NotFoundException):
        code, detail = "not_found", "请求的资源不存在"
    elif status == 405:
        code, detail = "method_not_allowed", "不支持该请求方法"
    elif status == 429:
        code, detail = "rate_limited", "请求过于频繁，请稍后再试"
    else:
        code, detail = f"http_{status}", "请求无法处理"
    headers = exc.headers if status == 429 else None  # the rate limit's Retry-After
    return _refusal(request, status, code, detail, headers=headers)


_MESSAGES = [
    (re.compile(r"Expected `(\w+)`, got `(\w+)`"), "类型应为{0}，实际为{1}"),
    (re.compile(r"Object missing required field `(\w+)`"), "缺少必填字段 {0}"),
    (re.compile(r"Object contains unknown field `(\w+)`"), "含有未知字段 {0}"),
    (re.compile(r"Invalid UUID"), "不是有效的编号（UUID）"),
    (re.compile(r"Expected `int` >= (\d+)"), "应为不小于 {0} 的整数"),
    (re.compile(r"Expected `int` <= (\d+)"), "应为不大于 {0} 的整数"),
    (re.compile(r"Expected `str` of length <= (\d+)"), "长度不能超过 {0} 个字符"),
    (re.compile(r"Expected `str` of length >= 1\b"), "不能为空"),
    (re.compile(r"Expected `str` of length >= (\d+)"), "长度至少 {0} 个字符"),
    (re.compile(r"Expected `array` of length <= (\d+)"), "至多 {0} 项"),
    (re.compile(r"Missing required header parameter '([\w-]+)'"), "缺少请求头 {0}"),
    (re.compile(r"Missing required"), "缺少必填参数"),
]


# msgspec's names of JSON types, as a person reads them
_TYPE_NAMES = {
    "int": "整数",
    "float": "数字",
    "number": "数字",
    "str": "文本",
    "bool": "是/否（true/false）",
    "array": "列表",
    "object": "对象",
    "null": "空值（null）",
}


def chinese_validation_message(message: str) -> str:
    """A msgspec or Litestar validation message in Chinese."""
    if "matching regex" in message:
        from mall.core.fields import PATTERN_MESSAGES  # cycle: mall.core.fields raises these errors

        for regex, text in PATTERN_MESSAGES.items():
            if repr(regex) in message:
                return text
    for pattern, text in _MESSAGES:
        m = pattern.search(message)
        if m:
            return text.format(*(_TYPE_NAMES.get(g, g) for g in m.groups()))
    return "格式不正确"


def _validation_errors(extra: Any) -> list[str]:
    out: list[str] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = str(item.get("key") or "")
                where = str(item.get("source") or "")
                key = "" if key == "data" and where == "body" else key
                msg = chinese_validation_message(str(item.get("message") or ""))
                out.append(f"{key} {msg}".strip())
    return out[:5]


def database_error_handler(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    """Database refusals that input or a race can cause. The transaction was rolled back: nothing
    was written. Anything else is a real fault and goes to the internal handler."""
    cause = getattr(exc.orig, "__cause__", None)
    text = f"{type(exc.orig).__name__} {type(cause).__name__} {exc.orig}".lower()
    if isinstance(exc, IntegrityError):
        status, code, detail = 409, "conflict", "数据已存在或刚被他人修改，请刷新后重试"
    elif isinstance(exc, DataError) or any(
        word in text for word in ("character", "byte sequence", "out of range", "too long", "dataerror")
    ):
        status, code, detail = 400, "invalid_input", "输入含有不允许的字符或超出长度、范围，请检查后重试"
    elif (reason := retry_reason(exc)) is not None:
        # A deadlock, a busy database or a lost connection: what reaches here was retried already
        # where the work is safe to run again (Database.retrying), or must not be run again unseen.
        # The mark lets a read be run again whole (mall.web.rerun), which strips it.
        log.warning("database busy on %s %s: %s", request.method, request.url.path, text[:300], exc_info=exc)
        headers = {"Retry-After": "1", "x-mall-transient": reason}
        return _refusal(request, 503, "busy_retry", "系统繁忙，请稍后重试", headers=headers)
    else:
        return internal_error_handler(request, exc)
    log.warning("database refused %s %s: %s", request.method, request.url.path, text[:300])
    return _refusal(request, status, code, detail)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _refusal(request, 500, "internal_error", "服务器出现内部错误，请稍后重试")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    DBAPIError: database_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}

__all__ = ["MediaType"]
