from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from salesloop.accounts.models import User
from salesloop.accounts.services import token_authenticate

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_user_create_prints_json_and_the_user_can_log_in(org):
    printed = json.loads(
        run(
            "user",
            "create",
            "--username",
            "mgr2",
            "--password",
            "pw-long-enough",
            "--role",
            "manager",
            "--region",
            "华南",
        )
    )
    assert (printed["role"], printed["region"]) == ("manager", "华南")
    assert authenticate(username="mgr2", password="pw-long-enough") == User.objects.get(username="mgr2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "manager"], "--region"),
        (["--role", "rep", "--region", "火星"], "--region"),
        (["--role", "rep", "--username", "alice"], "--username"),
    ],
)
def test_user_create_errors_name_the_option(org, args, message):
    base = {"--username": "newbie", "--password": "pw-long-enough"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    with pytest.raises(CommandError, match=message):
        run("user", "create", *[x for kv in base.items() for x in kv])


def test_token_create_prints_a_working_token(org):
    token = run("token", "create", "carol")
    assert token_authenticate(token) == org.carol
    assert token_authenticate(token + "x") is None
    with pytest.raises(CommandError):
        run("token", "create", "nobody")


def test_explanations_doc_writes_markdown(tmp_path):
    target = tmp_path / "explanations.md"
    run("explanations_doc", "--output", str(target))
    assert "## `stage_move`" in target.read_text(encoding="utf-8")
