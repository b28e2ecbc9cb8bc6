"""What the routing pages share: who may do what, rendering, form errors, words for rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from salesloop.accounts.geography import PROVINCES
from salesloop.accounts.models import Region, User
from salesloop.core.roles import Role, is_admin
from salesloop.crm.models import Channel, Lead
from salesloop.routing import ruleset as ruleset_doc
from salesloop.routing import sandbox

PROVINCE_NAMES = dict(PROVINCES)


# --- who may do what ------------------------------------------------------------------------


def _is_rep(user: Any) -> bool:
    return user.role == Role.REP and not user.is_superuser


def may_review(user: Any) -> bool:
    """The policy: managers and above (mirrors the API's policy endpoint)."""
    return not _is_rep(user)


def may_read_reports(user: Any) -> bool:
    """Sandbox reports and A/B tests: the sandbox's own rule (managers, directors, admins)."""
    return sandbox.may_read_reports(user)


def may_write(user: Any) -> bool:
    """Mirrors services._require_router: directors and administrators change the rules."""
    return is_admin(user) or user.role == Role.DIRECTOR


def may_reassign(user: Any, lead: Lead) -> bool:
    """Mirrors services.lead_reassign, so nobody sees a form that would answer 403."""
    if _is_rep(user) or (user.role == Role.PRODUCT_MANAGER and not user.is_superuser):
        return False
    if user.role == Role.MANAGER and not user.is_superuser:
        owner_region = lead.owner.region_id if lead.owner else None
        return user.region_id is not None and user.region_id in (lead.region_id, owner_region)
    return True


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))  # the same URL answers with a fragment or a page
    return response


def _wants_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _error_pairs(exc: ValidationError) -> list[tuple[str, str]]:
    if hasattr(exc, "error_dict"):
        return [(key, str(message)) for key, items in exc.message_dict.items() for message in items]
    return [("", str(message)) for message in exc.messages]


def _focus_first_error(form: Any) -> None:
    """A re-rendered form opens at its first field in error, not at the top of a long page."""
    for name in form.fields:
        if name in form.errors:
            form.fields[name].widget.attrs["autofocus"] = True
            return


def _spread(form: Any, exc: ValidationError, aliases: dict[str, str] | None = None) -> list[str]:
    """A service's ValidationError onto the form: a field's message next to the field, the rest on
    top of the form."""
    general = []
    for key, message in _error_pairs(exc):
        name = (aliases or {}).get(key, key)
        if name in form.fields:
            form.add_error(name, message)
        else:
            general.append(message)
    return general


# --- words for rules ------------------------------------------------------------------------

STRATEGY_LABELS = {
    "round_robin": gettext_lazy("Round robin in the pool"),
    "nearest_region": gettext_lazy("Nearest region"),
    "specialty": gettext_lazy("Industry-to-specialty match"),
    "weighted": gettext_lazy("Weighted distribution"),
    "least_loaded": gettext_lazy("Least loaded"),
}
STRATEGY_HELP = {
    "round_robin": gettext_lazy("Reps of the pool take turns; the rotation is kept in the database."),
    "nearest_region": gettext_lazy("Reps of the region the lead's province belongs to, in turns."),
    "specialty": gettext_lazy("Reps whose specialty tags include the lead's industry, in turns."),
    "weighted": gettext_lazy("Leads are shared in proportion to each rep's weight."),
    "least_loaded": gettext_lazy("The rep with the fewest open leads."),
}
CONDITION_FIELDS = {
    "source": gettext_lazy("Source"),
    "province": gettext_lazy("Province"),
    "region": gettext_lazy("Region"),
    "industry": gettext_lazy("Industry"),
    "city": gettext_lazy("City"),
    "weekday": gettext_lazy("Weekday"),
    "time": gettext_lazy("Time of day"),
}
WEEKDAYS = {
    1: gettext_lazy("Mon"),
    2: gettext_lazy("Tue"),
    3: gettext_lazy("Wed"),
    4: gettext_lazy("Thu"),
    5: gettext_lazy("Fri"),
    6: gettext_lazy("Sat"),
    7: gettext_lazy("Sun"),
}
OUTCOMES = {
    "winner": gettext_lazy("decided"),
    "no_candidate": gettext_lazy("applied, nobody eligible"),
    "not_matched": gettext_lazy("did not apply"),
    "not_reached": gettext_lazy("not reached"),
}
METHODS = {
    "rule": gettext_lazy("By a rule"),
    "fallback": gettext_lazy("By the fallback rule"),
    "pool": gettext_lazy("Nobody eligible: left in the pool"),
    "manual": gettext_lazy("By hand"),
}
SEPARATOR = " / "


def _joined(values: Any) -> str:
    return SEPARATOR.join(str(v) for v in values)


def _channel(code: str) -> str:
    return str(Channel(code).label) if code in Channel.values else code


def _words(field_name: str, value: Any) -> str:
    """A condition's value as people say it: province names, weekday names, channel names."""
    if value is None or value == "":
        return "—"
    values = value if isinstance(value, list) else [value]
    if field_name == "province":
        values = [PROVINCE_NAMES.get(str(v), v) for v in values]
    elif field_name == "weekday":
        values = [WEEKDAYS.get(v, v) if isinstance(v, int) else v for v in values]
    elif field_name == "source":
        values = [_channel(str(v)) for v in values]
    return _joined(values)


@dataclass(frozen=True)
class RuleCard:
    id: str
    name: str
    priority: int | None
    conditions: list[str]
    pool: list[str]
    strategy: str
    strategy_help: str
    caps: list[str]
    weights: list[str]


@dataclass(frozen=True)
class ReadableRules:
    rules: list[RuleCard]
    fallback: RuleCard | None
    defaults: list[str]
    description: str
    problem: str = ""  # a stored document that no longer parses: shown, never a 500


def _condition_words(when: ruleset_doc.Conditions, regions: dict[str, str]) -> list[str]:
    words = []
    if when.sources:
        words.append(_("Source is %(values)s") % {"values": _words("source", when.sources)})
    if when.provinces:
        words.append(_("Province is %(values)s") % {"values": _words("province", when.provinces)})
    if when.regions:
        words.append(_("Region is %(values)s") % {"values": _joined(regions.get(r, r) for r in when.regions)})
    if when.industries:
        words.append(_("Industry is %(values)s") % {"values": _joined(when.industries)})
    if when.cities:
        words.append(_("City starts with %(values)s") % {"values": _joined(when.cities)})
    for name, values in when.fields.items():
        words.append(_("Custom field %(name)s is %(values)s") % {"name": name, "values": _joined(values)})
    if when.weekdays:
        words.append(_("On %(days)s") % {"days": _words("weekday", when.weekdays)})
    if when.hours is not None:
        words.append(
            _("Between %(start)s and %(end)s")
            % {"start": f"{when.hours.start:%H:%M}", "end": f"{when.hours.end:%H:%M}"}
        )
    return words or [_("Every lead")]


def _rule_card(
    rule: Any, *, priority: int | None, when: Any, regions: dict[str, str], people: dict[str, str]
) -> RuleCard:
    pool = []
    if rule.pool.lead_region:
        pool.append(_("Reps of the lead's own region"))
    if rule.pool.regions:
        pool.append(
            _("Reps of %(regions)s") % {"regions": _joined(regions.get(r, r) for r in rule.pool.regions)}
        )
    if rule.pool.teams:
        pool.append(_("Reps of team %(teams)s") % {"teams": _joined(rule.pool.teams)})
    if rule.pool.users:
        pool.append(_("By name: %(people)s") % {"people": _joined(people.get(u, u) for u in rule.pool.users)})
    caps = []
    if rule.caps.max_open_leads:
        caps.append(_("At most %(count)s open leads per rep") % {"count": rule.caps.max_open_leads})
    if rule.caps.max_new_per_day:
        caps.append(_("At most %(count)s new leads per rep a day") % {"count": rule.caps.max_new_per_day})
    strategy = rule.strategy.value
    return RuleCard(
        id=getattr(rule, "id", "fallback"),
        name=rule.name,
        priority=priority,
        conditions=_condition_words(when, regions) if when is not None else [_("Any lead no rule took")],
        pool=pool,
        strategy=str(STRATEGY_LABELS.get(strategy, strategy)),
        strategy_help=str(STRATEGY_HELP.get(strategy, "")),
        caps=caps,
        # Heaviest first: JSON objects keep no order in PostgreSQL's jsonb.
        weights=[
            f"{people.get(name, name)} × {weight}"
            for name, weight in sorted(rule.weights.items(), key=lambda item: (-item[1], item[0]))
        ],
    )


def readable_rules(document: Any) -> ReadableRules:
    """The rule-set document in words, in priority order (two queries: region and people names)."""
    try:
        parsed = ruleset_doc.parse(document)
    except ruleset_doc.RuleSetInvalid as exc:
        return ReadableRules(rules=[], fallback=None, defaults=[], description="", problem=str(exc))
    every = [*parsed.rules, parsed.fallback]
    usernames = {name for rule in every for name in [*rule.pool.users, *rule.weights]}
    people = {u.username: str(u) for u in User.objects.filter(username__in=usernames)} if usernames else {}
    regions = dict(Region.objects.values_list("code", "name"))
    rules = [
        _rule_card(rule, priority=rule.priority, when=rule.when, regions=regions, people=people)
        for rule in parsed.ordered_rules()
    ]
    defaults = []
    if parsed.defaults.max_open_leads:
        defaults.append(_("At most %(count)s open leads per rep") % {"count": parsed.defaults.max_open_leads})
    if parsed.defaults.max_new_per_day:
        defaults.append(
            _("At most %(count)s new leads per rep a day") % {"count": parsed.defaults.max_new_per_day}
        )
    defaults.append(
        _("Working hours are respected; leave always is.")
        if parsed.defaults.respect_working_hours
        else _("Working hours are ignored; leave is still respected.")
    )
    defaults.append(_("Inactive accounts never receive leads."))
    return ReadableRules(
        rules=rules,
        fallback=_rule_card(parsed.fallback, priority=None, when=None, regions=regions, people=people),
        defaults=defaults,
        description=parsed.description,
    )
