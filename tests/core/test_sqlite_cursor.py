"""core.sqlite converts a statement's "%s" placeholders to SQLite's "?" with `str.replace` where
it can: the statement must be the one Django's own conversion gives, whatever the text."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from hypothesis import given
from hypothesis import strategies as st

from salesloop.core.sqlite.base import CursorWrapper

_memory = sqlite3.connect(":memory:", check_same_thread=False)
OURS, DJANGOS = _memory.cursor(factory=CursorWrapper), _memory.cursor(factory=SQLiteCursorWrapper)
FRAGMENTS = st.sampled_from(["%s", "%%", "%%s", "%", "s", "'", "a", " ", "?", "%s%s", "LIKE '%%x%%'"])


@given(st.lists(FRAGMENTS, max_size=30).map("".join))
def test_placeholders_convert_as_djangos_own_conversion(query):
    assert OURS.convert_query(query) == DJANGOS.convert_query(query)


def test_named_parameters_keep_djangos_conversion():
    query = "SELECT %(a)s, %(b)s"
    assert OURS.convert_query(query, param_names=["a", "b"]) == "SELECT :a, :b"


@pytest.mark.django_db
def test_the_sqlite_connection_uses_it():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's cursor")
    with connection.cursor() as cursor:
        assert isinstance(cursor.cursor, CursorWrapper)
        cursor.execute("SELECT %s || '%%s'", ["x"])
        assert cursor.fetchone() == ("x%s",)
