"""Reading the organisation for routing: the roster of reps, lead facts, and the database state
(loads and rotations) a live decision works against."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from salesloop.accounts.models import Region, Team, User
from salesloop.core import clock
from salesloop.core.roles import Role
from salesloop.core.rows import Question, SqlQuestion, model_rows_together, sql_rows
from salesloop.crm.models import Lead, LeadStatus
from salesloop.routing.engine import LeadFacts, Rep, Roster, Rotation
from salesloop.routing.loads import quarter_of
from salesloop.routing.models import AssignedInQuarter, Leave, OpenLeads, RoundRobinState
from salesloop.routing.ruleset import RuleSetDefinition, RuleSetInvalid

ROUTABLE_ROLES = (Role.REP, Role.MANAGER)


def roster_load(*, leaves_from: dt.datetime, leaves_to: dt.datetime) -> Roster:
    """Every rep and manager (inactive ones too, so a trace can say why they were skipped), with
    their routing profile, and the leaves overlapping [leaves_from, leaves_to]. Two queries, read
    as plain rows (routing a lead must not build a model instance per colleague), asked together
    (`core.rows.model_rows_together`: one round trip on PostgreSQL)."""
    questions = roster_questions(leaves_from=leaves_from, leaves_to=leaves_to)
    return roster_answered(model_rows_together(questions))


def roster_questions(*, leaves_from: dt.datetime, leaves_to: dt.datetime) -> list[Question | SqlQuestion]:
    """`roster_load`'s two questions, for a caller that asks them with its own (`roster_answered`
    reads their answers)."""
    from salesloop.routing.models import RepProfile

    profile = {f.name: f for f in RepProfile._meta.concrete_fields}
    # Every routed batch reads the roster: written out (core.rows), as building the join with the
    # ORM took several times as long as running it.
    users = SqlQuestion(
        _roster_sql(),
        [str(role) for role in ROUTABLE_ROLES],
        (
            *[None] * 7,
            User._meta.get_field("is_active"),
            None,
            *[profile[name] for name in ROSTER_PROFILE_FIELDS],
        ),
    )
    leaves = Question(
        Leave,
        "ends_at > %s AND starts_at <= %s",
        [
            connection.ops.adapt_datetimefield_value(leaves_from),
            connection.ops.adapt_datetimefield_value(leaves_to),
        ],
    )
    return [users, leaves]


def roster_answered(answers: Sequence[list[Any]]) -> Roster:
    """The roster from the answers to `roster_questions`, in their order."""
    rows, found_leaves = answers
    reps: dict[int, Rep] = {}
    for (
        user_id,
        username,
        display_name,
        first_name,
        last_name,
        region,
        team,
        active,
        role,
        specialties,
        max_open,
        max_new,
        work_days,
        work_start,
        work_end,
    ) in rows:
        # The name as User.__str__ gives it.
        name = display_name or f"{first_name} {last_name}".strip() or username
        reps[user_id] = Rep(
            id=user_id,
            username=username,
            name=name,
            region=region,
            team=team,
            active=active,
            is_rep=role == Role.REP,
            specialties=frozenset(specialties or ()),
            max_open_leads=max_open,
            max_new_per_day=max_new,
            work_days=frozenset(work_days or ()),
            work_start=work_start,
            work_end=work_end,
        )
    leaves: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for leave in found_leaves:
        leaves.setdefault(leave.user_id, []).append((leave.starts_at, leave.ends_at))
    return Roster(reps=reps, leaves=leaves)


ROSTER_PROFILE_FIELDS = (
    "specialties",
    "max_open_leads",
    "max_new_per_day",
    "work_days",
    "work_start",
    "work_end",
)


def _roster_sql() -> str:
    """Users of the routable roles with their region's code, their team's name and their routing
    profile (the columns `roster_load` unpacks, in its order)."""
    from salesloop.routing.models import RepProfile

    q = connection.ops.quote_name
    user, region, team = User._meta.db_table, Region._meta.db_table, Team._meta.db_table
    profile = RepProfile._meta.db_table
    profile_columns = ", ".join(f"p.{q(name)}" for name in ROSTER_PROFILE_FIELDS)
    return (
        "SELECT u.id, u.username, u.display_name, u.first_name, u.last_name, r.code, t.name,"  # noqa: S608 -- our tables
        f" u.is_active, u.role, {profile_columns}"
        f" FROM {q(user)} u LEFT JOIN {q(region)} r ON r.id = u.region_id"
        f" LEFT JOIN {q(team)} t ON t.id = u.team_id LEFT JOIN {q(profile)} p ON p.user_id = u.id"
        f" WHERE u.role IN (%s, %s) ORDER BY u.id"
    )


def lead_facts(lead: Lead, *, at: dt.datetime) -> LeadFacts:
    """What routing reads of a lead (select_related customer__province__region and region)."""
    customer = lead.customer
    province = customer.province
    region = lead.region or (province.region if province else None)
    return LeadFacts(
        lead_id=lead.pk,
        source=lead.source,
        province=province.code if province else None,
        region=region.code if region else None,
        industry=customer.industry,
        city=customer.city,
        fields={str(k): str(v) for k, v in (lead.custom_fields or {}).items()},
        at=at,
    )


def lead_facts_unrouted(lead_ids: Iterable[int], *, at: dt.datetime) -> list[tuple[int, str, LeadFacts]]:
    """(lead id, title, facts) of the leads among `lead_ids` that wait for routing (open, unowned,
    not merged), by id: what `lead_facts` reads, as plain rows in one query — a batch of tens of
    thousands must not build four model instances per lead (a lead, its customer, province and
    region)."""
    rows = (
        Lead.objects.filter(
            pk__in=list(lead_ids), owner__isnull=True, status=LeadStatus.OPEN, merged_into__isnull=True
        )
        .order_by("id")
        .values_list(
            "id",
            "title",
            "source",
            "custom_fields",
            "customer__industry",
            "customer__city",
            "customer__province__code",
            "region_id",
            "region__code",
            "customer__province__region__code",
        )
    )
    return [
        (
            lead_id,
            title,
            LeadFacts(
                lead_id=lead_id,
                source=source,
                province=province,
                region=region if region_id is not None else province_region,
                industry=industry,
                city=city,
                fields={str(k): str(v) for k, v in (custom_fields or {}).items()},
                at=at,
            ),
        )
        for (
            lead_id,
            title,
            source,
            custom_fields,
            industry,
            city,
            province,
            region_id,
            region,
            province_region,
        ) in rows
    ]


def day_start(at: dt.datetime) -> dt.datetime:
    """Midnight of `at`'s day in the organisation's time zone (caps count per local day)."""
    local = at.astimezone(clock.org_tz())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class DatabaseState:
    """Loads read from the database; rotations locked row by row (SELECT … FOR UPDATE on
    PostgreSQL; SQLite's writer lock serialises the whole decision), so that simultaneous arrivals
    take turns exactly as consecutive ones would."""

    def __init__(self) -> None:
        self._rows: dict[str, RoundRobinState] = {}

    def rotation(self, key: str) -> Rotation:
        row = RoundRobinState.objects.select_for_update().filter(key=key).first()
        if row is None:
            RoundRobinState.objects.bulk_create([RoundRobinState(key=key)], ignore_conflicts=True)
            row = RoundRobinState.objects.select_for_update().get(key=key)
        self._rows[key] = row
        return Rotation.from_json(
            last_user_id=row.last_user_id, counts=row.counts, turns=row.turns, served=row.served
        )

    def loads(self, user_ids: list[int], at: dt.datetime) -> tuple[dict[int, int], dict[int, int]]:
        return loads_count(user_ids, at)

    def record(self, key: str, rotation: Rotation, user_id: int, at: dt.datetime) -> None:
        rotation.advance(user_id)
        counts, served = rotation.as_json()
        RoundRobinState.objects.filter(key=key).update(
            last_user_id=user_id, counts=counts, served=served, turns=rotation.turns, updated_at=clock.now()
        )


def loads_count(user_ids: Iterable[int], at: dt.datetime) -> tuple[dict[int, int], dict[int, int]]:
    """Each user's open leads, and the leads assigned to them since the start of `at`'s day, in one
    statement (`loads_sql`): every routed batch asks, and on PostgreSQL each statement is a round
    trip waited for while a webhook batch holds the intake's turn (a batch asks it with its
    rotations, `loads_question`)."""
    question = loads_question(user_ids, at)
    return loads_counted(sql_rows(question.sql, question.params, []) if question is not None else [])


def loads_question(user_ids: Iterable[int], at: dt.datetime) -> SqlQuestion | None:
    """`loads_count`'s statement, to be asked with others (`core.rows.model_rows_together`); None
    without users. Its rows are read by `loads_counted`."""
    ids = [int(user_id) for user_id in user_ids]
    if not ids:
        return None
    return SqlQuestion(loads_sql(len(ids)), [*ids, *ids, quarter_of(day_start(at))])


def loads_counted(rows: Iterable[Sequence[Any]]) -> tuple[dict[int, int], dict[int, int]]:
    counts: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for part, user_id, n in rows:
        counts[part][user_id] = int(n)
    return counts


def loads_sql(users: int) -> str:
    """(0, user id, open leads), then (1, user id, leads assigned since a moment), for `users`
    users: parameters the user ids, the user ids again, the moment's quarter hour. Read from the
    rows the database keeps (routing/loads.py: `OpenLeads`, `AssignedInQuarter`), one per user and
    at most 96 per user and day, instead of counted from every open lead and every assignment of the
    day (10 ms a batch at 7,000 leads on PostgreSQL, growing with the book)."""
    marks = ", ".join(["%s"] * users)
    return (
        f"SELECT 0, user_id, open_leads FROM {OpenLeads._meta.db_table} WHERE user_id IN ({marks})"  # noqa: S608 -- our tables, values bound
        f" UNION ALL SELECT 1, user_id, SUM(assigned) FROM {AssignedInQuarter._meta.db_table}"
        f" WHERE user_id IN ({marks}) AND quarter >= %s GROUP BY user_id"
    )


def references_check(definition: RuleSetDefinition) -> None:
    """Every user, team and region a rule set names must exist; errors carry their path."""
    usernames = {name for rule in [*definition.rules, definition.fallback] for name in rule.pool.users}
    usernames |= {name for rule in [*definition.rules, definition.fallback] for name in rule.weights}
    known_users = dict(User.objects.filter(username__in=usernames).values_list("username", "role"))
    known_teams = set(Team.objects.values_list("name", flat=True))
    known_regions = set(Region.objects.values_list("code", flat=True))
    errors: list[tuple[str, str]] = []
    parts: list[tuple[str, Any]] = [(f"rules[{i}]", rule) for i, rule in enumerate(definition.rules)]
    parts.append(("fallback", definition.fallback))
    for prefix, rule in parts:
        for i, name in enumerate(rule.pool.users):
            if name not in known_users:
                errors.append((f"{prefix}.pool.users[{i}]", f"no user {name!r}"))
            elif known_users[name] not in ROUTABLE_ROLES:
                errors.append((f"{prefix}.pool.users[{i}]", f"{name!r} is not a rep or manager"))
        for i, team in enumerate(rule.pool.teams):
            if team not in known_teams:
                errors.append((f"{prefix}.pool.teams[{i}]", f"no team {team!r}"))
        for i, region in enumerate(rule.pool.regions):
            if region not in known_regions:
                errors.append(
                    (
                        f"{prefix}.pool.regions[{i}]",
                        f"no region {region!r} (one of {', '.join(sorted(known_regions))})",
                    )
                )
        for name in rule.weights:
            if name not in known_users:
                errors.append((f"{prefix}.weights.{name}", f"no user {name!r}"))
        when = getattr(rule, "when", None)
        if when is not None:
            for i, region in enumerate(when.regions):
                if region not in known_regions:
                    errors.append((f"{prefix}.when.regions[{i}]", f"no region {region!r}"))
    if errors:
        raise RuleSetInvalid(errors)
