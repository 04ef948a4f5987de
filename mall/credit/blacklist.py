"""The blacklist the system administrator keeps (失信名单): imported from CSV, one source at a time,
with the source's name and the date it published the list. The newest import of a source replaces
its entries (the older ones are kept, marked superseded). A registered supplier that an import names
gets a check of its own (purpose `import`): the evidence of when the mall learnt of it.

CSV columns (UTF-8, or GB18030 as Excel saves it): 统一社会信用代码, 名称, 列入原因, 列入日期
(YYYY-MM-DD), 移出日期 (YYYY-MM-DD or empty)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from datetime import date

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.credit_code import problem_with
from mall.core.db import Database
from mall.core.errors import Forbidden, InvalidInput
from mall.core.models import Organization, OrgKind
from mall.credit.checks import BlacklistChecker, check_row
from mall.credit.models import BlacklistEntry, BlacklistImport, CreditCheck

COLUMNS = ("统一社会信用代码", "名称", "列入原因", "列入日期", "移出日期")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20000
SOURCE_MAX = 100
SHOWN_ERRORS = 10


def _text(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("文件应为 UTF-8 或 GB18030 编码的 CSV", code="blacklist_encoding", field="file")


def _date(value: str, label: str, n: int, errors: list[str]) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"第 {n} 行：{label}应为 YYYY-MM-DD")
        return None


def parse(raw: bytes) -> list[tuple[str, str, str, date, date | None]]:
    """The rows, or 400 `blacklist_invalid` naming the first bad rows; nothing is half-read."""
    if len(raw) > MAX_BYTES:
        raise InvalidInput("文件不能超过 5 MB", code="file_too_large", field="file")
    reader = csv.reader(io.StringIO(_text(raw)))
    header = [h.strip() for h in next(reader, [])]
    if tuple(header[: len(COLUMNS)]) != COLUMNS:
        raise InvalidInput("表头应为：" + "、".join(COLUMNS), code="blacklist_header", field="file")
    out: list[tuple[str, str, str, date, date | None]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(out) >= MAX_ROWS:
            raise InvalidInput(f"一次最多导入 {MAX_ROWS} 行", code="too_many_rows", field="file")
        cells = [c.strip() for c in row] + [""] * (len(COLUMNS) - len(row))
        code, name, reason, listed, until = cells[:5]
        code = code.upper()
        before = len(errors)
        if (why := problem_with(code)) is not None:
            errors.append(f"第 {n} 行：{why}")
        elif code in seen:
            errors.append(f"第 {n} 行：统一社会信用代码 {code} 重复")
        for value, label, limit in ((name, "名称", fields.NAME_MAX), (reason, "列入原因", fields.REASON_MAX)):
            try:
                fields.text(value, label, limit, field="file")
            except InvalidInput as exc:
                errors.append(f"第 {n} 行：{exc.detail}")
            if not value:
                errors.append(f"第 {n} 行：{label}不能为空")
        listed_on = _date(listed, "列入日期", n, errors)
        ends = _date(until, "移出日期", n, errors) if until else None
        if listed_on and ends and ends < listed_on:
            errors.append(f"第 {n} 行：移出日期早于列入日期")
        if len(errors) == before and listed_on is not None:
            seen.add(code)
            out.append((code, name, reason, listed_on, ends))
    if errors:
        more = f"（另有 {len(errors) - SHOWN_ERRORS} 处）" if len(errors) > SHOWN_ERRORS else ""
        raise InvalidInput("；".join(errors[:SHOWN_ERRORS]) + more, code="blacklist_invalid", field="file")
    if not out:
        raise InvalidInput("文件中没有名单记录", code="blacklist_empty", field="file")
    return out


async def import_list(
    db: Database, who: Principal, source: str, data_date: str, file_name: str, raw: bytes
) -> BlacklistImport:
    """Replace `source`'s entries with the file's (system administrator)."""
    if who.role != "sysadmin":
        raise Forbidden("只有系统管理员可以导入失信名单", code="forbidden")
    source = fields.text(source, "名单来源", SOURCE_MAX, field="source")
    if len(source) < 2:
        raise InvalidInput(
            "请填写名单来源（如：信用中国·重大税收违法失信主体）", code="source_required", field="source"
        )
    try:
        published = date.fromisoformat((data_date or "").strip())
    except ValueError:
        raise InvalidInput("名单日期应为 YYYY-MM-DD", code="invalid_date", field="data_date") from None
    today = clock.local_date(clock.now())
    if published > today:
        raise InvalidInput("名单日期不能晚于今天", code="invalid_date", field="data_date")
    name = fields.text(file_name or "名单.csv", "文件名", fields.NAME_MAX, field="file")
    rows = parse(raw)
    now = clock.now()
    async with db.write() as tx:
        s = tx.session
        batch = BlacklistImport(
            id=uuid.uuid4(),
            source=source,
            data_date=published,
            file_name=name,
            sha256=hashlib.sha256(raw).hexdigest(),
            rows=len(rows),
            imported_at=now,
            imported_by=who.user_id,
        )
        s.add(batch)
        await s.flush()
        replaced = (
            await s.execute(
                update(BlacklistEntry)
                .where(BlacklistEntry.source == source, BlacklistEntry.superseded_at.is_(None))
                .values(superseded_at=now)
            )
        ).rowcount  # type: ignore[attr-defined]
        for code, org_name, reason, listed_on, until in rows:
            s.add(
                BlacklistEntry(
                    id=uuid.uuid4(),
                    import_id=batch.id,
                    source=source,
                    credit_code=code,
                    name=org_name,
                    reason=reason,
                    listed_on=listed_on,
                    until=until,
                )
            )
        await s.flush()
        named = await _checks_of_registered(s, [r[0] for r in rows], source, who, today)
        audit.record(
            tx,
            who,
            "credit_blacklist_imported",
            target_kind="system",
            target=source,
            detail=f"{name}：{len(rows)} 条，替换 {replaced} 条，涉及已登记供应商 {named} 家",
            after={
                "source": source,
                "data_date": published.isoformat(),
                "rows": len(rows),
                "sha256": batch.sha256,
            },
        )
    return batch


async def _checks_of_registered(
    s: AsyncSession, codes: list[str], source: str, who: Principal, today: date
) -> int:
    """A registered supplier the import names, and in force today, gets a check: the evidence."""
    named = 0
    checker = BlacklistChecker()
    for i in range(0, len(codes), 500):
        orgs = (
            await s.execute(
                select(Organization).where(
                    Organization.credit_code.in_(codes[i : i + 500]), Organization.kind == OrgKind.SUPPLIER
                )
            )
        ).scalars()
        for org in orgs:
            outcome = await checker.check(s, org.credit_code, today)
            if outcome.listed:
                s.add(
                    check_row(
                        org.id, org.credit_code, org.name, "import", outcome, ref=source, who=who.user_id
                    )
                )
                named += 1
    return named


async def imports(s: AsyncSession, page: int = 1, per_page: int = 20) -> tuple[int, list[BlacklistImport]]:
    total = await s.scalar(select(func.count()).select_from(BlacklistImport)) or 0
    rows = (
        await s.execute(
            select(BlacklistImport)
            .order_by(BlacklistImport.imported_at.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).scalars()
    return int(total), list(rows)


async def entries(
    s: AsyncSession, *, code: str = "", page: int = 1, per_page: int = 20
) -> tuple[int, list[BlacklistEntry]]:
    """The entries in force (not superseded), optionally of one credit code."""
    where: list[ColumnElement[bool]] = [BlacklistEntry.superseded_at.is_(None)]
    if code:
        where.append(BlacklistEntry.credit_code == code.strip().upper()[:18])
    total = await s.scalar(select(func.count()).select_from(BlacklistEntry).where(*where)) or 0
    rows = (
        await s.execute(
            select(BlacklistEntry)
            .where(*where)
            .order_by(BlacklistEntry.listed_on.desc(), BlacklistEntry.credit_code)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).scalars()
    return int(total), list(rows)


async def checks(
    s: AsyncSession, *, org_id: uuid.UUID | None = None, result: str = "", page: int = 1, per_page: int = 20
) -> tuple[int, list[CreditCheck]]:
    """The checks kept, the newest first."""
    where: list[ColumnElement[bool]] = []
    if org_id is not None:
        where.append(CreditCheck.org_id == org_id)
    if result:
        if result not in ("clear", "listed"):
            raise InvalidInput("核查结果应为 clear 或 listed", code="invalid_result", field="result")
        where.append(CreditCheck.result == result)
    total = await s.scalar(select(func.count()).select_from(CreditCheck).where(*where)) or 0
    rows = (
        await s.execute(
            select(CreditCheck)
            .where(*where)
            .order_by(CreditCheck.checked_at.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).scalars()
    return int(total), list(rows)
