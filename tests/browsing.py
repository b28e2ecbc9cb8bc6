"""What every browser test shares: Debian's Chromium (never a downloaded one), a phone-sized
viewport, logging in as a persona, and watching for broken assets. The `browser` fixture itself is
in tests/conftest.py."""

from __future__ import annotations

from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}


def watch_for_broken_assets(page) -> list[str]:
    """Every stylesheet, script or page answered with an error, collected as the page runs."""
    broken: list[str] = []
    page.on("response", lambda r: broken.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return broken


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")
    assert "/login/" in page.url  # anonymous visitors are sent to the login page
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base_url}/")
