"""The login page and logout."""

from __future__ import annotations

from html import unescape

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_shows_the_product_and_works_on_a_phone(client):
    response = client.get("/login/")
    assert response.status_code == 200
    body = unescape(response.content.decode())
    assert "销售闭环" in body
    assert "salesloop" in body
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    assert 'name="username"' in body
    assert 'name="password"' in body
    assert "登录" in body


def test_it_logs_in_and_goes_where_the_user_was_going(client, org):
    response = client.post(
        "/login/?next=/leads/", {"username": "alice", "password": PASSWORD, "next": "/leads/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/leads/"
    assert client.get("/leads/").status_code == 200


def test_it_lands_on_home_without_a_next(client, org):
    response = client.post("/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_it_refuses_a_wrong_password_with_a_message(client, org):
    response = client.post("/login/", {"username": "alice", "password": "not-it"})
    assert response.status_code == 200
    assert 'class="notice notice--error"' in response.content.decode()
    assert client.get("/").status_code == 302  # still anonymous


def test_it_does_not_follow_a_next_to_another_site(client, org):
    response = client.post(
        "/login/", {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_logged_in_user_skips_the_login_page(client, org):
    client.force_login(org.alice)
    response = client.get("/login/")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_logout_takes_a_post_only(client, org):
    client.force_login(org.alice)
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200

    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_login_page_switches_to_english(client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    body = client.get("/login/").content.decode()
    assert "Log in" in body
    assert "登录" not in body
