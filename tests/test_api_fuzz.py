"""No input may produce a 500: schemathesis generates requests from our own OpenAPI document and
sends them through the real WSGI application, as a director (who sees everything) and as a rep."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from salesloop.accounts.services import token_create
from salesloop.wsgi import application
from tests.factories import lead_make

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def wsgi_keeps_connection():
    """Like Django's test client: the request cycle must not close the test's database connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def director_token(org, wsgi_keeps_connection):
    for owner in (org.alice, org.bob, None):
        lead_make(owner=owner)
    return token_create(actor=None, user=org.director)[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_produces_a_server_error(case, director_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {director_token}"}, checks=[not_a_server_error])
