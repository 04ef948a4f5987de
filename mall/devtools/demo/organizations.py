"""The demo's organizations, their users and budget lines: registered through the real account code."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from decimal import Decimal

from mall import accounts
from mall.budgets.models import BudgetLine
from mall.core import auth, clock, passwords
from mall.core.auth import ROLE_LABELS, ROLE_OF_KIND, Principal
from mall.core.credit_code import make as make_credit_code
from mall.core.db import Database
from mall.core.models import AdminRole, Organization, OrgKind, User

# Published in the README and, on a database the demo was seeded into, on the login page.
DEMO_PASSWORD = "Sunshine-demo-2026"  # noqa: S105
DEMO_MARKER = "demo_seeded"  # the audit action the seed writes: this database holds the demo data


@dataclass(frozen=True)
class DemoOrg:
    kind: OrgKind
    name: str
    region: str
    address: str
    users: tuple[tuple[str, str], ...]  # (username, display name)
    sole_proprietor: bool = False  # 个体工商户: its registered name is its operator's


ORGS = [
    DemoOrg(
        OrgKind.BUDGET_UNIT,
        "郑州市第一中学",
        "410102",
        "河南省郑州市中原区建设西路 ",
        (("buyer1", "王老师"),),
    ),
    DemoOrg(
        OrgKind.BUDGET_UNIT,
        "河南省农业科学院",
        "410105",
        "河南省郑州市金水区花园路116号",
        (("buyer2", "李工"),),
    ),
    DemoOrg(
        OrgKind.BUDGET_UNIT,
        "开封市中心医院",
        "410205",
        "河南省开封市禹王台区河道街85号",
        (("buyer3", "赵主任"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "河南华信办公设备有限公司",
        "410105",
        "郑州市金水区经三路北段68号",
        (("supplier1", "刘经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "郑州联创科技有限公司",
        "410173",
        "郑州市高新区科学大道100号",
        (("supplier2", "陈经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "洛阳天成家具制造有限公司",
        "410311",
        "洛阳市洛龙区开元大道218号",
        (("supplier3", "孙经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "河南中原数码商贸有限公司",
        "410103",
        "郑州市二七区大学路40号",
        (("supplier4", "周经理"),),
    ),
    # The province's center and regulator oversee the whole province: their region is the province's
    # (what they oversee, mall.core.regions), not the district of their offices.
    DemoOrg(
        OrgKind.CENTER,
        "河南省政府采购中心",
        "410000",
        "郑州市金水区纬二路12号",
        (("center1", "采购中心审核员"),),
    ),
    DemoOrg(
        OrgKind.REGULATOR,
        "河南省财政厅政府采购监督管理处",
        "410000",
        "郑州市金水区纬二路8号",
        (("regulator1", "监管员"),),
    ),
    # A city's regulator sees its city only (郑州市: 4101xx).
    DemoOrg(
        OrgKind.REGULATOR,
        "郑州市财政局政府采购监督管理科",
        "410100",
        "郑州市郑东新区商务外环路21号",
        (("regulator2", "市级监管员"),),
    ),
    DemoOrg(
        OrgKind.PLATFORM,
        "阳光卖场运营中心",
        "410105",
        "郑州市郑东新区",
        (("sysadmin", "系统管理员"), ("secadmin", "安全管理员"), ("auditor", "审计管理员")),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "河南裕华汽车销售服务有限公司",
        "410122",
        "郑州市管城回族区紫荆山南路199号",
        (("supplier5", "吴经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "郑州金水印务有限公司",
        "410105",
        "郑州市金水区丰产路21号",
        (("supplier6", "郑经理"),),
    ),
    DemoOrg(
        OrgKind.SUPPLIER,
        "郑州中州国际饭店有限公司",
        "410105",
        "郑州市金水区花园路115号",
        (("supplier7", "冯经理"),),
    ),
    # A sole proprietor (个体工商户) registered without a trade name: the name is the operator's own,
    # the address is a home. Its deals publish the name and credit code only (docs/privacy.md).
    DemoOrg(
        OrgKind.SUPPLIER,
        "张建国",
        "410103",
        "郑州市二七区长江路街道幸福里小区3号楼1单元201室",
        (("supplier8", "张建国"),),
        sole_proprietor=True,
    ),
]

# Each unit's budget lines: project code, name, amount, and the 品目 each may buy (mall.budgets.scope).
INFORMATION, OFFICE, ELECTRICAL = "A02010000", "A02020000", "A02060000"
FURNITURE, SUPPLIES, VEHICLES = "A05010000", "A05040000", "A02030000"
MEETINGS, REPAIRS, PRINTING = "C22010000", "C23120000", "C23090000"
BUDGETS = {
    "郑州市第一中学": [
        ("JY-2026-001", "教学信息化设备购置", "800000", f"{INFORMATION} {OFFICE}"),
        ("JY-2026-002", "办公家具更新", "150000", FURNITURE),
        ("JY-2026-003", "日常办公用品", "40000", f"{SUPPLIES} {OFFICE}"),
    ],
    "河南省农业科学院": [
        ("NK-2026-011", "科研办公设备购置", "800000", f"{INFORMATION} {OFFICE} {ELECTRICAL}"),
        ("NK-2026-012", "实验室家具", "300000", FURNITURE),
    ],
    "开封市中心医院": [
        ("YY-2026-021", "信息系统终端设备", "900000", f"{INFORMATION} {OFFICE}"),
        ("YY-2026-022", "行政办公用品", "80000", f"{SUPPLIES} {OFFICE} {FURNITURE}"),
        ("YY-2026-023", "公务用车更新", "400000", VEHICLES),
        ("YY-2026-024", "会议培训与车辆维修", "120000", f"{MEETINGS} {REPAIRS} {PRINTING}"),
        ("YY-2026-025", "全院办公终端集中更新", "3000000", INFORMATION),
    ],
}


def _credit_code(rng: random.Random, kind: OrgKind, region: str, *, sole_proprietor: bool = False) -> str:
    registrar, org_type = (
        ("9", "2")
        if sole_proprietor
        else {
            "supplier": ("9", "1"),
            "budget_unit": ("1", "2"),
            "center": ("1", "1"),
            "regulator": ("1", "1"),
            "platform": ("9", "1"),
        }[kind.value]
    )
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "".join(rng.choice(alphabet[:10] if i else "0123456789M") for i in range(8))
    return make_credit_code(registrar, org_type, region, body)


# The platform operator's demo users and their administrator's role (三员分立: one each).
ADMIN_ROLES = {"sysadmin": AdminRole.SYSADMIN, "secadmin": AdminRole.SECADMIN, "auditor": AdminRole.AUDITOR}


def _role_of(kind: OrgKind, username: str) -> str:
    return ADMIN_ROLES[username].value if kind == OrgKind.PLATFORM else ROLE_OF_KIND[kind]


def demo_accounts() -> list[tuple[str, str, str]]:
    """(username, organization, role) of every demo account, for the login page."""
    return [
        (username, spec.name, ROLE_LABELS[_role_of(spec.kind, username)])
        for spec in ORGS
        for username, _ in spec.users
    ]


async def make_organizations(db: Database, rng: random.Random) -> dict[str, Principal]:
    """Registered the way the platform admin registers them (credit codes checked, passwords hashed)."""
    out: dict[str, Principal] = {}
    for spec in ORGS:
        if spec.kind == OrgKind.PLATFORM:
            # The operator itself is not a registrable party: it is set up directly, once.
            async with db.write() as tx:
                org = Organization(
                    id=uuid.uuid4(),
                    kind=spec.kind.value,
                    name=spec.name,
                    credit_code=_credit_code(rng, spec.kind, spec.region),
                    address=spec.address,
                    region_code=spec.region,
                    created_at=clock.now(),
                )
                tx.session.add(org)
                for username, display in spec.users:
                    passwords.require_sound_password(DEMO_PASSWORD, username, published_ok=True)
                    user = User(
                        id=uuid.uuid4(),
                        org_id=org.id,
                        username=username,
                        display_name=display,
                        password_hash=passwords.hash_password(DEMO_PASSWORD),
                        admin_role=ADMIN_ROLES[username].value,
                        created_at=clock.now(),
                    )
                    user.org = org
                    tx.session.add(user)
                    out[username] = auth.principal_of(user)
            continue
        # The sole proprietor came later: its own random numbers leave everyone else's as they were.
        own = random.Random(spec.name) if spec.sole_proprietor else rng
        draft = accounts.OrgDraft(
            kind=spec.kind.value,
            name=spec.name,
            credit_code=_credit_code(own, spec.kind, spec.region, sole_proprietor=spec.sole_proprietor),
            region_code=spec.region,
            address=spec.address.strip(),
            contact_phone=f"139{own.randint(10000000, 99999999)}"
            if spec.sole_proprietor
            else f"0371-{own.randint(60000000, 69999999)}",
            is_sole_proprietor=spec.sole_proprietor,
        )
        org = await accounts.register_org(db, None, draft)
        for username, display in spec.users:
            user = await accounts.create_user(db, None, org.id, username, display, DEMO_PASSWORD)
            out[username] = auth.principal_of(user)
    return out


async def make_budget_lines(db: Database, principals: dict[str, Principal]) -> None:
    year = clock.local_date(clock.now()).year
    async with db.write() as tx:
        for p in principals.values():
            for code, name, amount, scope in BUDGETS.get(p.org_name, []):
                assert p.org_id
                tx.session.add(
                    BudgetLine(
                        org_id=p.org_id,
                        fiscal_year=year,
                        project_code=code,
                        project_name=name,
                        amount=Decimal(amount),
                        scope=scope,
                        reserved=Decimal(0),
                        consumed=Decimal(0),
                        created_at=clock.now(),
                    )
                )
