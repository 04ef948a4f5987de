"""The `mall` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mall.core import clock, encryption, logs
from mall.core.db import Database
from mall.core.errors import DomainError
from mall.core.settings import Settings, SettingsError, load_settings
from workers import queues

# Each command imports what it runs inside its function: `mall migrate` or `mall ledger verify` need
# not load the web app, the search engine or the demo data, and every `mall` process (the launcher's
# children included) starts in a fraction of the time the whole tree takes to import.


def _db(settings: Settings) -> Any:
    return Database(
        settings.resolved_database_url,
        pool_size=2,
        retries=settings.db_retries,
        data_keys=settings.resolved_data_keys(),
    )


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from mall.migrate import upgrade  # start-up: alembic and the migrations, for this command only

    upgrade(settings)
    print("数据库已迁移到最新版本")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from mall.devtools.seed import is_seeded, seed_demo  # start-up: every business area, for seeding only

    if args.products:
        return _seed_products(settings, args)

    async def go() -> int:
        db = _db(settings)
        try:
            if await is_seeded(db) and not args.force:
                print("数据库中已有数据，跳过演示数据（--force 可强制追加）")
                return 0
            made = await seed_demo(db, settings, seed=args.seed, history=args.history)
            print("演示数据已生成：" + json.dumps(made, ensure_ascii=False))
            return 0
        finally:
            await db.dispose()

    return asyncio.run(go())


def _seed_products(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from mall.devtools.bulk import seed_products  # start-up: the generator, for this command only

    def progress(n: int) -> None:
        if n % 50_000 == 0 or n == args.products:
            print(f"已写入 {n} 件商品…", file=sys.stderr)

    async def go() -> dict[str, int]:
        db = _db(settings)
        try:
            return await seed_products(
                db, args.products, seed=args.seed, suppliers=args.suppliers, progress=progress
            )
        finally:
            await db.dispose()

    started = time.perf_counter()
    made = asyncio.run(go())
    if not made["written"]:
        print(
            f"这些供应商已有以 --seed {args.seed} 生成的 {made['existing']} 件商品；换一个 --seed 可再生成一批"
        )
        return 0
    took = time.perf_counter() - started
    print(f"已生成 {made['written']} 件在售商品（{made['suppliers']} 家供应商），用时 {took:.1f} 秒")
    if args.no_index:
        print("未重建搜索索引（--no-index）；稍后运行 mall reindex")
        return 0
    return cmd_reindex(settings, args)


def cmd_reindex(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild the search index from the database into a fresh index and swap it in atomically."""
    import time

    # start-up: the search engine (tantivy, jieba), for `mall reindex` only
    from search_index import sync
    from search_index.embedded import IndexBusy
    from search_index.factory import backend_for

    queues.configure(settings)
    lock: Any = queues.reindex_lock(settings)
    try:
        if not lock.acquire(blocking=False):
            print("另一个索引重建正在进行，请等它结束后再试", file=sys.stderr)
            return 1
    except Exception as exc:  # Redis unreachable
        if settings.meili_url:
            print(f"无法连接 Redis（{type(exc).__name__}），不能加锁重建", file=sys.stderr)
            return 1
        lock = None  # the embedded index still allows one rebuild at a time (its own file lock)
        print("Redis 不可用：仅以索引目录的文件锁防止并发重建", file=sys.stderr)

    def sync_lock() -> Any:
        return queues.search_sync_lock(settings) if lock is not None else contextlib.nullcontext()

    def progress(n: int) -> None:
        print(f"已索引 {n} 条…", file=sys.stderr)

    async def go() -> int:
        db = _db(settings)
        started = time.perf_counter()
        try:
            backend = backend_for(settings, writer=True)
            counts = await sync.rebuild(db, backend, lock=lock, progress=progress, sync_lock=sync_lock)
        except IndexBusy:
            print("另一个索引重建正在进行，请等它结束后再试", file=sys.stderr)
            return 1
        finally:
            await db.dispose()
            if lock is not None:
                with contextlib.suppress(Exception):
                    lock.release()
        took = time.perf_counter() - started
        rate = counts["indexed"] / took if took else 0.0
        print(
            f"索引已重建并切换：{counts['indexed']} 条在售商品，补录 {counts['caught_up']} 条变更，"
            f"用时 {took:.1f} 秒（{rate:,.0f} 条/秒）"
        )
        return 0

    return asyncio.run(go())


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import os

    import uvicorn

    # The app is built by uvicorn's factory from the environment: it must serve at the address it
    # publishes (MALL_PUBLICATION_BASE_URL, when unset, follows these).
    if args.host:
        os.environ["MALL_HOST"] = args.host
    if args.port:
        os.environ["MALL_PORT"] = str(args.port)

    logging_options: dict[str, Any] = {}
    config = logs.uvicorn_log_config()
    if config is not None:  # JSON: uvicorn's lines go through the mall's handler
        logging_options["log_config"] = config
    uvicorn.run(
        "mall.site.app:app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.web_workers,
        log_level="info",
        **logging_options,
        access_log=False,
        proxy_headers=True,
    )
    return 0


def _processes(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 64):
        raise argparse.ArgumentTypeError("应为 1 至 64 的整数")
    return int(raw)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if args.burst:  # drain the queue once and exit: no scheduler, no periodic work
        from workers.worker import run_rq_worker  # start-up: every job's code, for this process only

        run_rq_worker(settings, burst=True)
    else:
        from workers.supervisor import run_supervisor  # start-up: the supervisor loads no job code

        run_supervisor(args.processes)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from mall.launcher import Launcher  # start-up: the launcher's seeding and indexing, for `mall run` only

    return Launcher(settings, seed=not args.no_seed).run()


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    # start-up: the ledger and its witness files, for this command only
    from mall.ledger.disclosure import verify_chain
    from mall.ops.ledger import verify_witness, witness_to_check

    witness_file = witness_to_check(settings, args.witness)

    async def go() -> int:
        db = _db(settings)
        try:
            result = await verify_chain(db)
            if result.ok:
                print(f"账本校验通过：共 {result.checked} 条记录，哈希链完整")
                return await verify_witness(db, witness_file)
        finally:
            await db.dispose()
        print(
            f"账本校验失败：第 {result.seq} 条记录 — {result.problem}（此前 {result.checked} 条正常）",
            file=sys.stderr,
        )
        return 1

    return asyncio.run(go())


def cmd_contract_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Check a contract PDF's signatures against the mall's trusted roots (or --root PEM files);
    exit 0 only when every signature is valid and the buyer and the supplier each signed."""
    # start-up: pyHanko and the certificate machinery, for this command only
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from mall.contracts import signing

    path = Path(args.file)
    if not path.is_file():
        print(f"文件不存在：{path}", file=sys.stderr)
        return 2

    data = path.read_bytes()
    given = [
        x509.load_pem_x509_certificate(Path(r).read_bytes()).public_bytes(serialization.Encoding.DER)
        for r in args.root or []
    ]

    async def go() -> int:
        if given:
            roots = given
        else:
            db = _db(settings)
            try:
                roots = await signing.signer_for(settings, db).trust_roots()
            finally:
                await db.dispose()
        result = await signing.verify(data, roots)
        print(f"合同编号：{result.contract_no or '（未注明）'}")
        print(f"甲方（采购人）统一社会信用代码：{result.buyer_code or '—'}")
        print(f"乙方（供应商）统一社会信用代码：{result.supplier_code or '—'}")
        for sig in result.signatures:
            state = (
                "有效"
                if sig.valid
                else (
                    "无效：文件签署后被改动"
                    if not (sig.intact and sig.unchanged_after)
                    else "无效：证书不受信任"
                )
            )
            print(
                f"  签名 {sig.field_name}：{sig.org_name}（{sig.credit_code}）{sig.signed_at or ''} — {state}"
            )
        print(result.summary())
        return 0 if result.signed_by_both else 1

    return asyncio.run(go())


def cmd_check_calendar(settings: Settings, args: argparse.Namespace) -> int:
    """Which years the working-day calendar covers (its files were checked when settings loaded);
    exit 1 when this year is not covered, so a scheduled check can warn before deadlines go wrong."""
    cal = settings.work_calendar
    print("工作日历（放假与调休上班日期来自国务院办公厅节假日安排通知）：")
    for year_file in cal.years.values():
        print(
            f"  {year_file.year}年：放假 {len(year_file.holidays)} 天，调休上班 {len(year_file.workdays)} 天"
            f"  {year_file.path}  {year_file.note}"
        )
    if cal.extra_holidays:
        extra = "、".join(d.isoformat() for d in sorted(cal.extra_holidays))
        print(f"  另加本地休息日（MALL_HOLIDAYS）：{extra}")
    this_year = clock.local_date(clock.now()).year
    missing = [y for y in (this_year, this_year + 1) if not cal.covers(y)]
    for year in missing:
        print(
            f"{year}年未覆盖：该年的工作日只扣除周末。通知公布后，将 {year}.csv 放入 MALL_CALENDAR_DIR 并重启",
            file=sys.stderr,
        )
    return 1 if this_year in missing else 0


def cmd_ledger_witness(settings: Settings, args: argparse.Namespace) -> int:
    from mall.ops.ledger import witness_command  # start-up: the ledger, for this command only

    return witness_command(settings, args.file)


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from mall.ops import backup  # start-up: backups, for this command only

    return backup.backup_command(settings, Path(args.dest))


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from mall.ops import restore  # start-up: restores (and the search engine), for this command only

    options = restore.RestoreOptions(
        force=args.force,
        witness_file=Path(args.witness) if args.witness else None,
        accept_ledger_loss=args.accept_ledger_loss,
        reindex=not args.no_reindex,
    )
    return restore.restore_command(settings, Path(args.src), options)


def cmd_archive(settings: Settings, args: argparse.Namespace) -> int:
    from mall.ops.archive import archive_command  # start-up: partitions, for this command only

    return archive_command(settings, args.tablespace, dry_run=args.dry_run)


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from mall.core.audit import verify_command  # start-up: the audit log, for this command only

    return verify_command(settings.resolved_database_url)


def cmd_grant_role(settings: Settings, args: argparse.Namespace) -> int:
    from mall.accounts import grant_role_command  # start-up: the accounts, for this command only

    return grant_role_command(
        settings.resolved_database_url, args.username, args.role, settings.resolved_data_keys()
    )


def cmd_rotate_data_key(settings: Settings, args: argparse.Namespace) -> int:
    """Every encrypted personal field encrypted again with the first data key; `--new-key` first puts a
    new key in the key file beside a SQLite database (MALL_DATA_KEY is changed by the operator)."""
    from mall.schema import metadata  # start-up: every table, for this command only

    if args.new_key:
        path = encryption.sqlite_key_path(settings.resolved_database_url)
        if settings.data_key or path is None:
            print(
                "已设置 MALL_DATA_KEY：请把新密钥写在最前面（逗号分隔，旧密钥留在后面）后再运行",
                file=sys.stderr,
            )
            return 2
        encryption.prepend_key(path)

    async def go() -> dict[str, encryption.Rotated]:
        db = _db(settings)
        try:
            return await encryption.rotate(db, metadata)
        finally:
            await db.dispose()

    for table, done in asyncio.run(go()).items():
        print(f"{table}：{done.values} 个加密值，{done.rewritten} 个已用第一个密钥重新加密")
    print("完成：所有进程都已使用新密钥重启后，即可删去旧密钥")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Stream the ledger in constant memory, with the feed's filters plus a 品目 prefix."""
    from mall.ledger import disclosure, exports  # start-up: the ledger and its formats, for exports only

    params = {
        "mode": args.mode,
        "kind": args.kind,
        "buyer_credit_code": args.buyer,
        "supplier_credit_code": args.supplier,
        "from": args.date_from,
        "to": args.date_to,
        "category": args.category,
        "after": args.after,
    }
    try:
        q = exports.parse_export_query({k: v for k, v in params.items() if v})
    except DomainError as exc:
        print(exc.detail, file=sys.stderr)
        return 2
    if args.format == "xlsx" and args.output == "-":
        print("Excel 文件不能写到标准输出，请用 --output 指定文件", file=sys.stderr)
        return 2

    # Closed in go()'s finally; stdout is left open. XLSX writes its own file (via a temporary one).
    out: Any = None
    if args.format != "xlsx":
        out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115

    async def go() -> int:
        db = _db(settings)
        tally = exports.Tally()
        try:
            if args.format == "xlsx":
                await exports.write_xlsx(db, q, Path(args.output), tally=tally)
            elif args.format == "jsonl":
                async for record in exports.iter_records(db, q, tally=tally):
                    out.write((disclosure.canonical(record) + "\n").encode("utf-8"))
            else:
                chunks = (
                    exports.csv_chunks(db, q, tally=tally)
                    if args.format == "csv"
                    else exports.ocds_chunks(db, settings, q, tally=tally)
                )
                async for chunk in chunks:
                    out.write(chunk)
        finally:
            await db.dispose()
            if out is not None and out is not sys.stdout.buffer:
                out.close()
        print(f"已导出 {tally.records} 条公开记录", file=sys.stderr)
        return 0

    return asyncio.run(go())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mall", description="阳光卖场 — 政府采购电子卖场")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="一键启动：内置 Redis、任务进程、Web 服务（首次启动生成演示数据）")
    run.add_argument("--no-seed", action="store_true", help="首次启动不生成演示数据")
    run.set_defaults(fn=cmd_run)
    serve = sub.add_parser("serve", help="只启动 Web 服务")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(fn=cmd_serve)
    worker = sub.add_parser("worker", help="启动任务进程（RQ worker + 调度 + 发件箱清扫）")
    worker.add_argument("--burst", action="store_true", help="处理完队列后退出")
    worker.add_argument(
        "--processes", type=_processes, default=1, help="RQ 任务进程数（每个进程占用一个 CPU 核），默认 1"
    )
    worker.set_defaults(fn=cmd_worker)
    sub.add_parser("migrate", help="执行数据库迁移并载入品目目录").set_defaults(fn=cmd_migrate)
    seed = sub.add_parser("seed", help="生成演示数据；--products N 批量生成商品")
    seed.add_argument("--seed", type=int, default=2026)
    seed.add_argument("--history", type=int, default=48, help="历史成交笔数")
    seed.add_argument("--force", action="store_true")
    seed.add_argument(
        "--products", type=int, default=0, help="批量生成 N 件在售商品（用于压测），随后重建索引"
    )
    seed.add_argument("--suppliers", type=int, default=20, help="批量商品分布的供应商数")
    seed.add_argument("--no-index", action="store_true", help="批量生成后不重建搜索索引")
    seed.set_defaults(fn=cmd_seed)
    sub.add_parser("reindex", help="从数据库重建商品搜索索引并原子切换").set_defaults(fn=cmd_reindex)
    ledger = sub.add_parser("ledger", help="公开账本")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = lsub.add_parser("verify", help="重新计算哈希链并校验；--witness 再与见证文件比对")
    verify.add_argument("--witness", help="见证文件（JSON lines，含 seq 与 hash）；默认 MALL_WITNESS_FILE")
    verify.set_defaults(fn=cmd_ledger_verify)
    witness = lsub.add_parser("witness", help="把账本头（序号与哈希）写入日志和见证文件")
    witness.add_argument("--file", help="见证文件；默认 MALL_WITNESS_FILE")
    witness.set_defaults(fn=cmd_ledger_witness)
    contract = sub.add_parser("contract", help="电子合同")
    csub = contract.add_subparsers(dest="contract_command", required=True)
    cverify = csub.add_parser(
        "verify", help="核验合同 PDF 的签名：每个签名的签署单位、文件是否被改动、是否甲乙双方分别签署"
    )
    cverify.add_argument("file", help="合同 PDF 文件")
    cverify.add_argument("--root", action="append", help="信任的根证书（PEM）；默认为本卖场的证书机构")
    cverify.set_defaults(fn=cmd_contract_verify)
    backup = sub.add_parser(
        "backup", help="备份到新目录：SQLite 快照、内置 Redis、密钥与清单；PostgreSQL 用 pg_dump"
    )
    backup.add_argument("dest", help="备份目录（不存在或为空）")
    backup.set_defaults(fn=cmd_backup)
    restore = sub.add_parser("restore", help="从备份目录恢复（先校验清单与校验和；卖场须已停止）")
    restore.add_argument("src", help="mall backup 写出的备份目录")
    restore.add_argument("--force", action="store_true", help="替换已停止的卖场的现有数据（原文件移到一旁）")
    restore.add_argument("--witness", help="见证文件；默认 MALL_WITNESS_FILE")
    restore.add_argument(
        "--accept-ledger-loss", action="store_true", help="备份缺少已见证的账本记录时仍然恢复"
    )
    restore.add_argument("--no-reindex", action="store_true", help="恢复后不重建搜索索引")
    restore.set_defaults(fn=cmd_restore)
    sub.add_parser(
        "check-calendar", help="校验工作日历文件并列出已覆盖的年份（今年未覆盖时返回 1）"
    ).set_defaults(fn=cmd_check_calendar)
    audit = sub.add_parser("audit", help="安全审计日志")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    asub.add_parser("verify", help="重新计算审计日志的哈希链；失败时指出第一条有问题的序号").set_defaults(
        fn=cmd_audit_verify
    )
    arch = sub.add_parser(
        "archive", help="把超过在线保存期的年度分区（账本、报价、审计日志）移入归档表空间（PostgreSQL）"
    )
    arch.add_argument("--tablespace", required=True, help="归档表空间名（由数据库管理员预先创建）")
    arch.add_argument("--dry-run", action="store_true", help="只列出将移动的分区")
    arch.set_defaults(fn=cmd_archive)
    grant = sub.add_parser("grant-role", help="为平台运营方用户授予管理角色（首个安全管理员由此产生）")
    grant.add_argument("username")
    grant.add_argument("role", choices=["sysadmin", "secadmin", "auditor", "none"])
    grant.set_defaults(fn=cmd_grant_role)
    rotate = sub.add_parser("rotate-data-key", help="用第一个数据密钥重新加密全部个人信息字段")
    rotate.add_argument("--new-key", action="store_true", help="先在 SQLite 数据库旁的密钥文件中生成新密钥")
    rotate.set_defaults(fn=cmd_rotate_data_key)
    export = sub.add_parser("export", help="导出公开记录")
    export.add_argument("--format", choices=["csv", "xlsx", "ocds", "jsonl"], default="csv")
    export.add_argument("--output", "--out", "-o", default="-", help="文件路径；- 为标准输出（xlsx 除外）")
    export.add_argument("--mode", help="采购方式：supermarket | agreement | designated | inquiry | auction")
    export.add_argument("--kind", help="记录类型：deal | correction | cancellation | failure")
    export.add_argument("--buyer", help="采购人统一社会信用代码")
    export.add_argument("--supplier", help="供应商统一社会信用代码")
    export.add_argument("--from", dest="date_from", help="成交日期起 YYYY-MM-DD")
    export.add_argument("--to", dest="date_to", help="成交日期止 YYYY-MM-DD")
    export.add_argument("--category", help="品目编码前缀，如 A0201")
    export.add_argument("--after", help="只导出公开序号大于此数的记录")
    export.set_defaults(fn=cmd_export)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    queues.register_topics()  # the commands' enqueues do nothing until a command configures the queues
    logs.configure()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"配置有误 (invalid settings): {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(args.fn(settings, args))


if __name__ == "__main__":
    main()
