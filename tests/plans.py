"""Query plans on either test database, for tests that an index serves a query.

PostgreSQL's ``EXPLAIN (FORMAT JSON)`` and SQLite's ``EXPLAIN QUERY PLAN`` both name the
indexes a plan reads, so a test asserts the index's name in ``query_plan()``'s text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, models


def analyze(model: type[models.Model]) -> None:
    """Fresh statistics for ``model``'s table, as a production database would have them."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")


def query_plan(query: models.QuerySet[Any]) -> str:
    """The database's plan for ``query``, as text."""
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            return json.dumps(cursor.fetchone()[0])
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        # (id, parent, notused, detail): e.g. "SEARCH t USING INDEX i (vendor_id=?)".
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


@contextmanager
def index_scans_preferred() -> Iterator[None]:
    """Whether an index *can* serve a query, not whether a small table makes it cheaper:
    PostgreSQL is told to avoid sequential scans; SQLite's planner needs no such hint."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            yield
        finally:
            cursor.execute("RESET enable_seqscan")
