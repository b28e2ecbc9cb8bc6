"""The demo organisation: four regions, a team each, and 23 people with fixed logins."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from salesloop.accounts.geography import DEMO_REGIONS
from salesloop.accounts.models import Province, Region, Team, User
from salesloop.accounts.services import user_create
from salesloop.core.roles import Role

# One shared password for every demo login; printed by `salesloop demo`. Demo data only.
DEMO_PASSWORD = "salesloop-demo"  # noqa: S105 -- the published demo password, not a secret

REPS_PER_REGION = 4


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    region_code: str | None
    display_name: str


_MANAGER_NAMES = {"east": "王伟", "south": "李娜", "north": "张磊", "northeast": "刘洋"}
_REP_NAMES = {
    "east": ["陈静", "杨帆", "黄晓东", "周婷婷"],
    "south": ["吴俊杰", "徐丽", "孙浩然", "马欣怡"],
    "north": ["朱志强", "胡雪", "郭文博", "何佳怡"],
    "northeast": ["林海燕", "高鹏", "罗一鸣", "郑春燕"],
}

DEMO_USERS: list[DemoUser] = [
    DemoUser("director", Role.DIRECTOR, None, "赵建国"),
    DemoUser("pm", Role.PRODUCT_MANAGER, None, "梁思远"),
    DemoUser("admin", Role.ADMIN, None, "谢敏"),
    *(DemoUser(f"manager_{code}", Role.MANAGER, code, _MANAGER_NAMES[code]) for code, _, _ in DEMO_REGIONS),
    *(
        DemoUser(f"rep_{code}_{i}", Role.REP, code, _REP_NAMES[code][i - 1])
        for code, _, _ in DEMO_REGIONS
        for i in range(1, REPS_PER_REGION + 1)
    ),
]


def demo_logins() -> list[tuple[str, str, str | None]]:
    """[(username, role label, region name)] of the demo organisation, for `salesloop demo` to print."""
    region_names = {code: name for code, name, _ in DEMO_REGIONS}
    return [
        (
            user.username,
            str(Role(user.role).label),
            region_names[user.region_code] if user.region_code else None,
        )
        for user in DEMO_USERS
    ]


def team_name(region_name: str) -> str:
    return f"{region_name}销售团队"


@dataclass
class DemoOrg:
    regions: dict[str, Region]  # by code
    users: dict[str, User]  # by username
    users_created: int

    def reps(self, region_code: str) -> list[User]:
        """The region's demo reps that can own leads, in their fixed order. A user who already had
        a demo username but is no longer an active rep of the region gets no leads."""
        region_id = self.regions[region_code].pk
        return [
            user
            for demo in DEMO_USERS
            if demo.role == Role.REP
            and demo.region_code == region_code
            and (user := self.users.get(demo.username)) is not None
            and user.is_active
            and user.role == Role.REP
            and user.region_id == region_id
        ]

    def manager(self, region_code: str) -> User | None:
        return self.users.get(f"manager_{region_code}")


@transaction.atomic
def demo_org_ensure() -> DemoOrg:
    """Create what is missing of the demo organisation and return it; existing rows are kept as they
    are (a second run, or a region an admin already set up, must not be duplicated or overwritten)."""
    regions: dict[str, Region] = {}
    teams: dict[str, Team] = {}
    for code, name, province_codes in DEMO_REGIONS:
        # By code or by name: the name is unique too, and an admin may have created 华东 by hand.
        region = Region.objects.filter(Q(code=code) | Q(name=name)).order_by("id").first()
        if region is None:
            region = Region.objects.create(code=code, name=name)
        Province.objects.filter(code__in=province_codes, region__isnull=True).update(region=region)
        regions[code] = region
        teams[code] = Team.objects.get_or_create(name=team_name(region.name), defaults={"region": region})[0]

    existing = {
        user.username: user for user in User.objects.filter(username__in=[u.username for u in DEMO_USERS])
    }
    created = 0
    for demo in DEMO_USERS:
        if demo.username in existing:
            continue
        existing[demo.username] = user_create(
            actor=None,
            username=demo.username,
            password=DEMO_PASSWORD,
            role=demo.role,
            region=regions[demo.region_code] if demo.region_code else None,
            team=teams[demo.region_code] if demo.region_code else None,
            display_name=demo.display_name,
        )
        created += 1
    return DemoOrg(regions=regions, users=existing, users_created=created)
