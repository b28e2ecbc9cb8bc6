from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from salesloop.core import clock, explanations
from salesloop.core.audit import audit_record
from salesloop.core.models import AuditEntry
from salesloop.core.roles import mask_identifier, mask_phone


def test_clock_is_settable_and_refuses_naive_times():
    moment = dt.datetime(2026, 1, 1, 16, 30, tzinfo=dt.UTC)
    with clock.frozen(moment):
        assert clock.now() == moment
        assert clock.today_local() == dt.date(2026, 1, 2)  # days count in Asia/Shanghai
    assert clock.now() != moment
    with pytest.raises(ValueError):
        clock.set_now(dt.datetime(2026, 1, 1))


def test_clock_can_be_pinned_by_environment_for_server_processes():
    import os
    import subprocess
    import sys

    ask = "from salesloop.core import clock; print(clock.now().isoformat())"
    env = {**os.environ, "SALESLOOP_FAKE_NOW": "2026-05-01T08:00:00+08:00"}
    answer = subprocess.run([sys.executable, "-c", ask], env=env, capture_output=True, text=True, check=True)
    assert dt.datetime.fromisoformat(answer.stdout.strip()) == dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_audit_entry_keeps_who_what_before_after(org):
    from decimal import Decimal

    entry = audit_record(
        actor=org.admin,
        action="pipeline.update",
        target=org.east,
        before={"amount": Decimal("1.50")},
        after={"when": dt.date(2026, 1, 2)},
        reason="试点",
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.actor, stored.target_type, stored.target_id) == (
        org.admin,
        "accounts.region",
        str(org.east.pk),
    )
    assert (stored.before, stored.after, stored.reason) == (
        {"amount": "1.50"},
        {"when": "2026-01-02"},
        "试点",
    )


def test_explanation_is_validated_against_its_kind():
    built = explanations.build(
        "stage_move",
        from_stage=None,
        to_stage="screening",
        direction="enter",
        dwell_seconds=None,
        from_status="",
        to_status="open",
    )
    assert built["kind"] == "stage_move" and built["version"] == 1
    assert explanations.validate(built) == built
    with pytest.raises(explanations.ExplanationError):
        explanations.build(
            "stage_move",
            to_stage="x",
            direction="sideways",
            dwell_seconds=None,
            from_stage=None,
            from_status="",
            to_status="open",
        )
    with pytest.raises(explanations.ExplanationError):
        explanations.build("no_such_kind")


def test_docs_describe_every_explanation_kind():
    # docs/explanations.md is generated (`salesloop explanations_doc`); it must not fall behind the code
    doc = Path(__file__).resolve().parents[2] / "docs" / "explanations.md"
    assert doc.read_text(encoding="utf-8") == explanations.markdown_doc()


@pytest.mark.parametrize(
    ("raw", "masked"),
    [("+8613800138000", "138****8000"), ("+861062558888", "106****8888"), ("", "")],
)
def test_phone_masking(raw, masked):
    assert mask_phone(raw) == masked


def test_identifier_masking():
    assert mask_identifier("wmABCDEFG12345") == "wmA***345"
    assert mask_identifier("abc") == "a***"
