"""Shared personas (STYLE.md 8): two regions, their managers and reps, a director, a product
manager and an admin. `alice` is a rep in 华东; `bob` a second rep in 华东 who must not see her
leads; `carol` manages 华东; `dave` manages 华南 and must not see 华东's leads."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from salesloop.accounts.models import Region, User
from salesloop.core import clock
from tests import factories

# Playwright's sync API runs an event loop in the test thread; Django would refuse ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@dataclass
class Org:
    east: Region
    south: Region
    alice: User  # rep, 华东
    bob: User  # rep, 华东
    erin: User  # rep, 华南
    carol: User  # manager, 华东
    dave: User  # manager, 华南
    director: User
    pm: User
    admin: User


@pytest.fixture
def org(db) -> Org:
    east = factories.region_make("east", "华东", ["31", "32", "33"])
    south = factories.region_make("south", "华南", ["44", "45", "46"])
    return Org(
        east=east,
        south=south,
        alice=factories.user_make("rep", east, username="alice", display_name="Alice 王"),
        bob=factories.user_make("rep", east, username="bob"),
        erin=factories.user_make("rep", south, username="erin"),
        carol=factories.user_make("manager", east, username="carol"),
        dave=factories.user_make("manager", south, username="dave"),
        director=factories.user_make("director", username="director"),
        pm=factories.user_make("product_manager", username="pm"),
        admin=factories.user_make("admin", username="admin"),
    )


@pytest.fixture(autouse=True)
def _clock_reset():
    yield
    clock.set_now(None)


class ApiClient:
    """Django's test client speaking JSON with a bearer token, as an API client would."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body=None):
        import json

        return self.client.post(
            path, json.dumps(body or {}), content_type="application/json", headers=self.headers
        )

    def patch(self, path: str, body=None):
        import json

        return self.client.patch(
            path, json.dumps(body or {}), content_type="application/json", headers=self.headers
        )


@pytest.fixture
def api_as(client):
    """`api_as(user)` → an API client authenticated by a fresh token of that user."""
    from salesloop.accounts.services import token_create

    def make(user: User) -> ApiClient:
        _, token = token_create(actor=None, user=user)
        return ApiClient(client, token)

    return make


@pytest.fixture(scope="session")
def live_server(request, django_db_setup):
    """pytest-django's live server, started only after the test database exists. Started first (a
    browser test run alone), it would find SQLite's in-memory default and share the test's one
    connection across its request threads — which crashes once a page loads panels in parallel.
    After setup the database is the test file, and each request thread opens its own connection."""
    from pytest_django.live_server_helper import LiveServer

    address = request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
    server = LiveServer(address or "localhost")
    yield server
    server.stop()


@pytest.fixture
def browser():
    """A headless Chromium (Debian's). A missing Chromium fails the test on purpose: the suite skips
    nothing silently (the Makefile's `browser` target installs it)."""
    from playwright.sync_api import sync_playwright

    from tests.browsing import CHROMIUM, CHROMIUM_ARGS

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
