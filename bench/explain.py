"""The SQL behind a lead-list case and the database's plan for it.

Run inside the benchmark's environment (SALESLOOP_DATABASE_URL …):
    python -m bench.explain USERNAME 'stage=solution_demo&limit=50'
It calls `salesloop.crm.selectors.lead_list` as the API does, captures the queries it runs and
prints each with `EXPLAIN ANALYZE` (PostgreSQL) or `EXPLAIN QUERY PLAN` (SQLite).
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import parse_qs


def explain(username: str, query_string: str) -> str:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from salesloop.accounts.models import User
    from salesloop.crm.selectors import LeadFilters, lead_list

    params = {key: values[-1] for key, values in parse_qs(query_string).items()}
    user = User.objects.select_related("region").get(username=username)
    filters = LeadFilters(
        stage=params.get("stage"),
        owner=int(params["owner"]) if "owner" in params else None,
        region=int(params["region"]) if "region" in params else None,
        source=params.get("source"),
        status=params.get("status"),
        q=params.get("q"),
    )
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        lead_list(user=user, filters=filters, cursor=params.get("cursor"), limit=int(params.get("limit", 50)))
        seconds = time.perf_counter() - started
    lines = [f"-- {username}: {query_string}  ({len(captured)} queries, {seconds * 1000:.1f} ms in-process)"]
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            lines += ["", sql, f"-- {query['time']} s"]
            cursor.execute(prefix + sql)
            for row in cursor.fetchall():
                lines.append("   " + " | ".join(str(column) for column in row))
    return "\n".join(lines)


if __name__ == "__main__":
    print(explain(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "limit=50"))
