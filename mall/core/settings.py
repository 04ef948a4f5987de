"""Settings: read from the environment (and an optional TOML file) inside the app factory, never at import."""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from mall.core import encryption, totp, workdays
from mall.core.encryption import DataKeyError, DataKeys
from mall.core.netaddr import networks
from mall.core.workdays import WorkCalendar

# Environment variable -> settings field. The short names (DATABASE_URL, REDIS_URL) are the
# conventional ones; everything else is prefixed with MALL_.
_ENV_NAMES = {
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "MEILI_URL": "meili_url",
    "MEILI_KEY": "meili_key",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file in data_dir
    redis_url: str = ""  # empty: the embedded redis-server's unix socket in data_dir
    meili_url: str = ""
    meili_key: str = ""
    meili_index: str = "products"
    # The embedded search index directory; empty: data_dir/search. Several processes, each with its
    # own data directory (as on several hosts), share one index when they name the same directory.
    search_dir: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    region_code: str = "410000"
    region_name: str = "河南省"
    decentralized_threshold: Decimal = Decimal("1000000")
    open_tender_threshold: Decimal = Decimal("2000000")
    auto_cancel_days: int = 15
    payment_due_days: int = 30
    payment_warn_days: int = 25
    # An after-sales claim (退货、换货、维修) is answered by the supplier within this many working days.
    claim_answer_working_days: int = 3
    # Price monitoring (mall.pricewatch): a listing above the median of the mall's deals for its brand
    # and model by more than this share is flagged (given at least the minimum number of deals), one
    # below `pricewatch_low_share` of the median too; a declared e-commerce price goes stale after so
    # many days; a supplier asked about a price answers within so many working days.
    pricewatch_above_market_share: Decimal = Decimal("0.10")
    pricewatch_min_samples: int = 3
    pricewatch_low_share: Decimal = Decimal("0.5")
    pricewatch_stale_days: int = 90
    price_alert_answer_working_days: int = 5
    # Oversight cases (mall.supervision): the party explains within so many working days; acceptance
    # is late so many working days after a delivery was received (docs/risk-indicators.md).
    case_explain_working_days: int = 5
    acceptance_working_days: int = 10
    # Sanctions (mall.sanctions): the supplier appeals within so many working days of the decision.
    sanction_appeal_working_days: int = 15
    # A buyer's violation report is decided by the center within so many working days.
    report_decision_working_days: int = 10
    # Credit checks of suppliers at registration and at each order (mall.credit.checks): "blacklist"
    # reads the blacklist the administrator imports; "http" asks a national credit service as well
    # (GET <url>?credit_code=…, bearer token, answering {"listed": bool, "records": [...]}) at
    # registration; orders read its latest answer.
    # The 小微企业 price deduction a buyer may enable in an inquiry or auction (财库〔2022〕19号: 10% to
    # 20% for goods and services; docs/decisions.md).
    sme_price_deduction: Decimal = Decimal("0.10")
    credit_checker: str = "blacklist"
    credit_check_url: str = ""
    credit_check_token: str = ""
    credit_check_timeout_seconds: float = 5.0
    # The e-contract: who signs it ("local": the mall's own CA, tamper evidence; or "module:factory"
    # for a licensed signing service, mall.contracts.signing), the CJK TrueType font its PDF embeds
    # (empty: Debian's fonts-wqy-microhei where installed), the working days within which the
    # 合同公告 is published after both parties signed, and the days to deliver after filing.
    contract_signer: str = "local"
    contract_font: str = ""
    contract_notice_working_days: int = 2
    contract_delivery_days: int = 15
    price_margin: Decimal = Decimal("0.05")
    # The mall's public address, in published links (Atom, OCDS), the WebSocket origin check and
    # secure cookies (https); empty: http:// with MALL_HOST and MALL_PORT (see `public_base_url`).
    publication_base_url: str = ""
    secret_key: str = ""  # empty: generated once and kept in data_dir/secret_key
    # The keys personal data is encrypted with at rest (mall.core.encryption): base64 of 32 bytes,
    # several separated by commas, newest first (it encrypts; all decrypt). Required with a server
    # database; empty with SQLite: generated once and kept beside the database file (data_key).
    data_key: str = ""
    queue_name: str = "mall"
    outbox_grace_seconds: int = 10
    sweep_interval_seconds: float = 2.0
    stale_job_seconds: int = 60  # a job started longer ago than this may have died with its worker
    cancel_interval_seconds: float = 60.0
    web_workers: int = 1
    # Working days (工作日) follow the State Council's notices (mall/data/workdays/, mall.core.workdays).
    # Extra local rest days (YYYY-MM-DD, comma-separated), on top of the notices.
    holidays: str = ""
    # A folder of more year files (YYYY.csv, the format of mall/data/workdays/): next year's notice
    # before a release ships it; a year there replaces the shipped one. Empty: the shipped years only.
    calendar_dir: str = ""
    # Push subscriptions: a failing receiver is retried after base * 2^(n-1) seconds (jittered),
    # at most max; one job run delivers at most `push_batch` records, then enqueues the next run.
    push_backoff_base_seconds: float = 5.0
    push_backoff_max_seconds: float = 600.0
    push_timeout_seconds: float = 10.0
    push_batch: int = 500
    # OCDS: every ocid is this prefix + the order (or procedure) number. Register a prefix with the
    # Open Contracting Partnership before publishing OCDS data outside the platform.
    ocds_prefix: str = "ocds-mall01-"
    # An XLSX export of more records than this runs as a job (progress page, download link).
    export_xlsx_direct_max: int = 5000
    # Export files are deleted this many days after they were made (the job record stays).
    export_keep_days: int = 7
    # Push delivery log rows older than this are deleted (the ledger itself is never pruned).
    push_log_keep_days: int = 90
    # Inquiries and auctions need at least this many participants (valid quotes or bidders); a
    # buyer can never lower it, and an invitation names at least this many active suppliers.
    min_participants: int = 3
    # Push receivers on private, loopback, link-local, CGNAT or metadata addresses are refused
    # unless their host is listed here (comma-separated host names, IP addresses or CIDR networks:
    # government intranets).
    push_allowed_hosts: str = ""
    # Proxies (comma-separated IP addresses or CIDR networks) whose X-Forwarded-For is believed;
    # from anyone else the client address is the peer's.
    trusted_proxies: str = ""
    # /metrics answers loopback callers that no proxy forwarded, and anyone presenting this token
    # (Authorization: Bearer …); empty: loopback only.
    metrics_token: str = ""
    # Client networks (comma-separated CIDR) exempt from login throttling and request rate limits:
    # the benchmarks and the soak set it for loopback; empty in production.
    rate_limit_exempt: str = ""
    # API tokens live this many days; a user keeps at most `max_live_tokens` live ones.
    token_ttl_days: int = 7
    max_live_tokens: int = 20
    # The security audit log stays online (in the database, verifiable) at least this many days;
    # at least 180 (six months). Nothing in the mall deletes audit entries; on PostgreSQL `mall
    # archive` moves the yearly partitions past this age to archive storage, still attached.
    audit_online_days: int = 180
    # Who must use a second factor (TOTP) at login: "true" for every role that can have one (the
    # three administrators, procurement centers, regulators), or some of them comma-separated
    # ("sysadmin,secadmin,auditor"); empty or "false": optional. A user of such a role who has not
    # enrolled is sent to enrol before anything else, and gets no API token until then.
    require_totp: str = ""
    # Refused bids a user may make per minute in one auction room before getting 429.
    bid_refusals_per_minute: int = 20
    # WebSocket connections one user may hold to one room.
    room_connections_per_user: int = 5
    # Where files live (uploads, exports, attachments): "database" (the default: a table every
    # process reaches) or "s3" (an S3-compatible store: the four settings below).
    file_store: str = "database"
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    # How many times a unit of work (an order, a transition of one) is run again after a deadlock,
    # a serialization failure, a busy database or a lost connection. 0 only to show, under load,
    # what the retries prevent.
    db_retries: int = 4
    # The ledger's external witness: a JSON-lines file that the worker's daily job and
    # `mall ledger witness` append the ledger head to (empty: the head goes to the log only). Keep it
    # where a restore of the mall's own data cannot reach it (mall.ledger.witness).
    witness_file: str = ""
    # Notifications (mall.notify): e-mail through this SMTP server; empty host: no e-mail. STARTTLS
    # upgrades the connection before the login (USER and PASSWORD, when both are set).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""  # the sender, as "阳光卖场 <noreply@example.gov.cn>"; required with a host
    smtp_starttls: str = ""  # "true" to use STARTTLS
    smtp_timeout_seconds: float = 10.0
    # Users who chose the daily digest get it once a day from this hour on (China time, 0-23).
    notify_digest_hour: int = 8
    # Notifications older than this are deleted (they copy what the records keep; docs/decisions.md).
    notification_keep_days: int = 180
    # SMS: "package.module:factory", a callable taking the settings and returning an
    # mall.notify.sms.SmsSender; empty: no SMS. No provider is built in (README, Notifications).
    sms_adapter: str = ""
    # Fault injection for the test suite only: the publisher sleeps this long inside its
    # transaction, after writing the record and before committing it.
    publish_pause_seconds: float = 0.0
    # Likewise for closing an inquiry or auction: the close stalls inside its transaction.
    close_pause_seconds: float = 0.0

    @property
    def holiday_dates(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(d.strip()) for d in self.holidays.split(",") if d.strip())

    @property
    def work_calendar(self) -> WorkCalendar:
        """The working-day calendar, read from its files once per process."""
        return workdays.calendar_for(self.calendar_dir, self.holiday_dates)

    @property
    def smtp_uses_starttls(self) -> bool:
        return self.smtp_starttls.strip().lower() in ("true", "1", "yes", "on")

    @property
    def totp_required_roles(self) -> frozenset[str]:
        raw = self.require_totp.strip().lower()
        if raw in ("", "false", "0", "no", "off"):
            return frozenset()
        if raw in ("true", "1", "yes", "on", "all"):
            return frozenset(totp.ROLES)
        return frozenset(r.strip() for r in raw.split(",") if r.strip())

    @property
    def public_base_url(self) -> str:
        """MALL_PUBLICATION_BASE_URL without a trailing slash; unset, the address this mall serves at
        (a wildcard host read as the loopback address)."""
        if self.publication_base_url:
            return self.publication_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    @property
    def sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'mall.db').resolve()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url[len("postgresql://") :]
        if url.startswith("sqlite:///"):
            url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def resolved_search_dir(self) -> Path:
        return Path(self.search_dir) if self.search_dir else self.data_dir / "search"

    @property
    def embedded_redis_socket(self) -> Path:
        return (self.data_dir / "redis.sock").resolve()

    @property
    def resolved_redis_url(self) -> str:
        return self.redis_url or f"unix://{self.embedded_redis_socket}"

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url

    def resolved_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def resolved_data_keys(self) -> DataKeys:
        """The data keys: MALL_DATA_KEY, or for SQLite the key file beside the database (made on
        first use). A server database without MALL_DATA_KEY is refused by `settings_problems`."""
        if self.data_key:
            return DataKeys.parse(self.data_key)
        if not self.sqlite:
            raise DataKeyError("MALL_DATA_KEY is required with a server database")
        return encryption.keys_beside(self.resolved_database_url)


def _coerce(kind: Any, raw: Any) -> Any:
    if kind in (Path, "Path"):
        return Path(raw)
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if kind in (Decimal, "Decimal"):
        return Decimal(str(raw))
    return str(raw) if not isinstance(raw, dict) else raw


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults < settings file (MALL_SETTINGS_FILE) < environment < overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(Settings)}
    settings_file = env.get("MALL_SETTINGS_FILE")
    if settings_file:
        with open(settings_file, "rb") as fh:
            for key, raw in tomllib.load(fh).items():
                if key in known:
                    values[key] = _coerce(known[key], raw)
    for name, kind in known.items():
        env_name = next((k for k, v in _ENV_NAMES.items() if v == name), f"MALL_{name.upper()}")
        if env.get(env_name):
            values[name] = _coerce(kind, env[env_name])
    for key, raw in overrides.items():
        values[key] = _coerce(known[key], raw) if key in known else raw
    settings = replace(Settings(), **values)
    problems = settings_problems(settings)
    if problems:
        raise SettingsError("; ".join(problems))
    return settings


class SettingsError(ValueError):
    """Settings that cannot work: refused when a process starts, not at the first request."""


def settings_problems(s: Settings) -> list[str]:
    """What is wrong with a combination of settings (English, for operators' logs)."""
    out = []
    if not 0 <= s.db_retries <= 20:
        out.append(f"MALL_DB_RETRIES must be 0 to 20, not {s.db_retries}")
    if s.file_store not in ("database", "s3"):
        out.append(f"MALL_FILE_STORE must be database or s3, not {s.file_store!r}")
    if s.file_store == "s3" and not s.s3_bucket:
        out.append("MALL_FILE_STORE=s3 needs MALL_S3_BUCKET (and MALL_S3_ENDPOINT_URL for a non-AWS store)")
    if s.min_participants < 1:
        out.append("MALL_MIN_PARTICIPANTS must be at least 1")
    if not Decimal("0") < s.pricewatch_above_market_share < Decimal("10"):
        out.append("MALL_PRICEWATCH_ABOVE_MARKET_SHARE must be above 0 and below 10 (0.10 is 10%)")
    if not Decimal("0") < s.pricewatch_low_share < Decimal("1"):
        out.append("MALL_PRICEWATCH_LOW_SHARE must be above 0 and below 1 (0.5 is half the median)")
    if s.pricewatch_min_samples < 1 or s.pricewatch_stale_days < 1:
        out.append("MALL_PRICEWATCH_MIN_SAMPLES and MALL_PRICEWATCH_STALE_DAYS must be at least 1")
    for name in (
        "price_alert_answer_working_days",
        "case_explain_working_days",
        "acceptance_working_days",
        "sanction_appeal_working_days",
        "report_decision_working_days",
    ):
        if not 1 <= getattr(s, name) <= 60:
            out.append(f"MALL_{name.upper()} must be 1 to 60, not {getattr(s, name)}")
    if not Decimal("0.10") <= s.sme_price_deduction <= Decimal("0.20"):
        out.append("MALL_SME_PRICE_DEDUCTION must be 0.10 to 0.20 (财库〔2022〕19号: 10% to 20%)")
    if s.credit_checker not in ("blacklist", "http"):
        out.append(f"MALL_CREDIT_CHECKER must be blacklist or http, not {s.credit_checker!r}")
    if s.credit_checker == "http" and not s.credit_check_url.startswith(("https://", "http://")):
        out.append("MALL_CREDIT_CHECKER=http needs MALL_CREDIT_CHECK_URL (https://…)")
    if not 0 < s.credit_check_timeout_seconds <= 60:
        out.append("MALL_CREDIT_CHECK_TIMEOUT_SECONDS must be above 0 and at most 60")
    if not 1 <= s.claim_answer_working_days <= 30:
        out.append(f"MALL_CLAIM_ANSWER_WORKING_DAYS must be 1 to 30, not {s.claim_answer_working_days}")
    if s.contract_signer not in ("", "local") and ":" not in s.contract_signer:
        out.append("MALL_CONTRACT_SIGNER must be local or module:factory")
    if not 1 <= s.contract_notice_working_days <= 10:
        out.append(f"MALL_CONTRACT_NOTICE_WORKING_DAYS must be 1 to 10, not {s.contract_notice_working_days}")
    if not 1 <= s.contract_delivery_days <= 365:
        out.append(f"MALL_CONTRACT_DELIVERY_DAYS must be 1 to 365, not {s.contract_delivery_days}")
    if s.token_ttl_days < 1 or s.max_live_tokens < 1:
        out.append("MALL_TOKEN_TTL_DAYS and MALL_MAX_LIVE_TOKENS must be at least 1")
    try:
        holidays = s.holiday_dates
    except ValueError as exc:
        out.append(f"MALL_HOLIDAYS must be dates YYYY-MM-DD separated by commas: {exc}")
    else:
        try:  # read (and cached) here, so a bad calendar file stops the process at start-up
            workdays.calendar_for(s.calendar_dir, holidays)
        except workdays.CalendarError as exc:
            out.append(f"working-day calendar (MALL_CALENDAR_DIR): {exc}")
    if s.audit_online_days < 180:
        out.append(f"MALL_AUDIT_ONLINE_DAYS must be at least 180 (six months), not {s.audit_online_days}")
    unknown = sorted(s.totp_required_roles - set(totp.ROLES))
    if unknown:
        out.append(
            f"MALL_REQUIRE_TOTP: no second factor for {', '.join(unknown)} (one of {', '.join(totp.ROLES)})"
        )
    if s.data_key:
        try:
            DataKeys.parse(s.data_key)
        except DataKeyError as exc:
            out.append(f"MALL_DATA_KEY must be keys of 32 bytes in base64, separated by commas: {exc}")
    elif not s.sqlite:
        out.append(
            "MALL_DATA_KEY is required with a server database (PostgreSQL): personal data is encrypted"
            " with it, and every process on every host must have the same key"
            " (make one with: python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
        )
    if s.smtp_host and "@" not in s.smtp_from:
        out.append(
            "MALL_SMTP_FROM (an address such as noreply@example.gov.cn) is required with MALL_SMTP_HOST"
        )
    if not 0 <= s.notify_digest_hour <= 23:
        out.append(f"MALL_NOTIFY_DIGEST_HOUR must be 0 to 23, not {s.notify_digest_hour}")
    if s.notification_keep_days < 1:
        out.append(f"MALL_NOTIFICATION_KEEP_DAYS must be at least 1, not {s.notification_keep_days}")
    if s.sms_adapter and ":" not in s.sms_adapter:
        out.append(f"MALL_SMS_ADAPTER must be module:factory, not {s.sms_adapter!r}")
    for name in ("trusted_proxies", "rate_limit_exempt"):
        try:
            networks(getattr(s, name))
        except ValueError as exc:
            out.append(f"MALL_{name.upper()}: {exc}")
    return out
