from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from salesloop import settings as s


def test_env_helpers_fail_loudly_on_bad_values(monkeypatch):
    monkeypatch.setenv("SALESLOOP_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SALESLOOP_X"):
        s.env_bool("SALESLOOP_X")
    monkeypatch.setenv("SALESLOOP_X", "12a")
    with pytest.raises(ImproperlyConfigured, match="SALESLOOP_X"):
        s.env_int("SALESLOOP_X", 1)
    monkeypatch.setenv("SALESLOOP_X", "a, b ,")
    assert s.env_list("SALESLOOP_X", []) == ["a", "b"]
    monkeypatch.setenv("SALESLOOP_X", "off")
    assert s.env_bool("SALESLOOP_X", True) is False


def test_debug_is_off_unless_asked_for():
    assert s.DEBUG is False
