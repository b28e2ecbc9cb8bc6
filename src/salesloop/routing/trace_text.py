"""An assignment trace in plain sentences (C8.2 "为什么分给我"), in the reader's language."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

REASON_TEXT = {
    "eligible": gettext_noop("eligible"),
    "inactive": gettext_noop("account inactive"),
    "on_leave": gettext_noop("on leave"),
    "off_hours": gettext_noop("outside working hours"),
    "open_cap": gettext_noop("at the open-lead cap"),
    "daily_cap": gettext_noop("at today's cap of new leads"),
    "other_region": gettext_noop("in another region"),
    "no_specialty": gettext_noop("no specialty tag for the industry"),
    "no_weight": gettext_noop("no weight in the rule"),
}


# Reasons the system writes itself (stored in English, shown in the reader's language); a person's
# reason is shown as they wrote it.
SYSTEM_REASONS = {
    "recorded by its owner": gettext_noop("recorded by its owner"),
    "changed in the administration": gettext_noop("changed in the administration"),
}


def assignment_reason(reason: str) -> str:
    return _(reason) if reason in SYSTEM_REASONS else reason


def _listed(value: Any) -> str:
    """A condition's value as a reader writes it: 广东、浙江 — not Python's ['44', '33']."""
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value) or "—"
    return "—" if value in (None, "") else str(value)


def reason_label(code: str) -> str:
    return _(REASON_TEXT.get(code, code))


def trace_sentences(explanation: dict[str, Any], names: dict[int, str]) -> list[str]:
    lines: list[str] = []
    winner = explanation.get("winner")
    method = explanation.get("method")
    if method == "manual":
        actor = (explanation.get("actor") or {}).get("name") or _("someone")
        if winner:
            lines.append(
                _("%(actor)s assigned it by hand to %(name)s: %(reason)s")
                % {
                    "actor": actor,
                    "name": winner["name"],
                    "reason": assignment_reason(explanation.get("reason", "")),
                }
            )
        else:
            lines.append(
                _("%(actor)s returned it to the pool: %(reason)s")
                % {"actor": actor, "reason": assignment_reason(explanation.get("reason", ""))}
            )
        return lines
    ruleset = explanation.get("ruleset") or {}
    arm = ruleset.get("arm")
    lines.append(
        _("Rule set v%(version)s “%(name)s” decided%(arm)s.")
        % {
            "version": ruleset.get("version"),
            "name": ruleset.get("name", ""),
            "arm": _(" (A/B test: candidate rules)") if arm == "candidate" else "",
        }
    )
    for rule in explanation.get("rules", []):
        failed = [c for c in rule.get("conditions", []) if not c["ok"]]
        if rule["outcome"] == "not_matched":
            check = failed[0] if failed else {"field": "?", "expected": "?", "actual": "?"}
            lines.append(
                _("“%(rule)s” did not apply: %(field)s is %(actual)s, the rule wants %(expected)s.")
                % {
                    "rule": rule["name"],
                    "field": check["field"],
                    "actual": _listed(check["actual"]),
                    "expected": _listed(check["expected"]),
                }
            )
        elif rule["outcome"] == "no_candidate":
            lines.append(
                _("“%(rule)s” applied, but nobody in its pool was eligible.") % {"rule": rule["name"]}
            )
        elif rule["outcome"] == "winner":
            dropped = [c for c in rule.get("candidates", []) if not c["kept"]]
            kept = [c for c in rule.get("candidates", []) if c["kept"]]
            lines.append(
                _("“%(rule)s” applied: %(kept)s of %(total)s reps were eligible.")
                % {"rule": rule["name"], "kept": len(kept), "total": len(kept) + len(dropped)}
            )
            for candidate in dropped[:8]:
                lines.append(
                    _("%(name)s was skipped: %(reason)s %(detail)s")
                    % {
                        "name": names.get(candidate["user_id"], f"#{candidate['user_id']}"),
                        "reason": reason_label(candidate["reason"]),
                        "detail": candidate.get("detail", ""),
                    }
                )
    if winner is None:
        lines.append(_("Nobody was eligible: the lead waits in its region's pool for a manager."))
        return lines
    why = winner.get("why") or {}
    code = why.get("code")
    if code == "turn":
        previous = why.get("previous_name")
        lines.append(
            (
                _("%(name)s had waited longest for this rule's next lead; the last went to %(previous)s.")
                if previous
                else _("%(name)s was first in turn for this rule.")
            )
            % {"name": winner["name"], "previous": previous}
        )
    elif code == "weighted":
        lines.append(
            _("%(name)s has weight %(weight)s of %(total)s and had received %(given)s before.")
            % {
                "name": winner["name"],
                "weight": why.get("weight"),
                "total": why.get("total_weight"),
                "given": why.get("given_before"),
            }
        )
    elif code == "least_loaded":
        lines.append(
            _("%(name)s had the fewest open leads (%(open)s).")
            % {"name": winner["name"], "open": why.get("open_leads")}
        )
    return lines
