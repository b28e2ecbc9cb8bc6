"""Django's PostgreSQL backend, with two changes.

Aware datetimes are sent in UTC. PostgreSQL accepts UTC offsets only up to ±15:59, while Python
(and so an API client's ISO 8601 time) allows up to ±23:59: a well-formed `…+23:26` from a client
was a 500 (a DataError from the database) instead of being stored as the instant it names. Every
stored time is UTC anyway (DESIGN.md rule 6); this changes how it is sent, not what is stored.

Bulk inserts of rows with JSON columns use a plain multi-row VALUES list instead of Django 5.2's
UNNEST of one array per column.

For UNNEST every column is sent as an array, and psycopg writes a text array by escaping each
element's quotes in Python, one regular-expression call per quote. Our bulk inserts carry JSON
explanations of a few kilobytes (an assignment's trace quotes every candidate's name and reason),
so the escaping dominated them: 10,000 traces took 35 s to insert that way against about 2 s as
VALUES (measured while importing; the webhook bench showed the same as ~5 ms of CPU per delivery).
Rows without JSON keep Django's UNNEST, whose point — less planning for wide inserts — stands.

SQLite does not use this backend (see core/sqlite).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.backends.postgresql import base


class DatabaseOperations(base.DatabaseOperations):
    compiler_module = "salesloop.core.postgresql.compiler"

    def adapt_datetimefield_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return super().adapt_datetimefield_value(value)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
