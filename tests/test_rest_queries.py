"""Each HTTP request costs the same number of queries however long the vendor's history is:
the token's user, the vendor (with the staff role check in the same query), then the
endpoint's own, as docs/rest.md lists. Run on PostgreSQL too (DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for
from tests.test_rest import fresh_throttles, url  # noqa: F401 (an autouse fixture)
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db

SHALLOW, DEEP = 3, 600

#: Queries of a request by the owner, beyond the token's user and the vendor (2).
REQUESTS: list[tuple[str, str, Callable[[list[int]], dict[str, Any]], int]] = [
    ("get", "unread", lambda ids: {}, 1),
    ("get", "counts", lambda ids: {}, 1),
    ("get", "history", lambda ids: {"page": 2}, 1),
    (
        "get",
        "history",
        lambda ids: {"before_id": ids[1 + len(ids) // 50], "category": "Deep", "is_read": "false"},
        1,
    ),
    ("get", "sync", lambda ids: {"since_id": ids[-2]}, 1),
    ("post", "mark-all-read", lambda ids: {}, 2),
]
#: POSTs on one notification: (name, queries beyond the 2).
CHANGES = [("mark-read", 2), ("mark-unread", 2), ("archive", 3), ("unarchive", 3)]


def history(vendor: Vendor, depth: int) -> list[int]:
    """``depth`` unread notifications, oldest first: their ids."""
    Notification.objects.bulk_create(
        Notification(vendor=vendor, message=f"n{i}", category="Deep") for i in range(depth)
    )
    return list(
        Notification.objects.filter(vendor=vendor).order_by("id").values_list("id", flat=True)
    )


def queries_of(client: APIClient, method: str, path: str, **params: Any) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.post(path) if method == "post" else client.get(path, params)
    assert response.status_code == 200, response.content
    return len(context.captured_queries)


@pytest.mark.parametrize("depth", [SHALLOW, DEEP])
@pytest.mark.parametrize(("method", "name", "params", "own"), REQUESTS, ids=lambda v: str(v)[:20])
def test_reads_cost_constant_queries(
    owner: Any, vendor: Vendor, depth: int, method: str, name: str, params: Any, own: int
) -> None:
    ids = history(vendor, depth)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(owner)}")
    assert queries_of(client, method, url(name), **params(ids)) == 2 + own


@pytest.mark.parametrize("depth", [SHALLOW, DEEP])
@pytest.mark.parametrize(("name", "own"), CHANGES)
def test_changes_cost_constant_queries(
    owner: Any, vendor: Vendor, depth: int, name: str, own: int
) -> None:
    ids = history(vendor, depth)
    target = Notification.objects.get(pk=ids[0])
    if name == "mark-unread":
        target.is_read = True
        target.save()
    if name == "unarchive":
        Notification.objects.filter(pk=target.pk).update(archived_at=target.created_at)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(owner)}")
    assert queries_of(client, "post", url(name, target.pk)) == 2 + own


@pytest.mark.parametrize("depth", [SHALLOW, DEEP])
@pytest.mark.parametrize("name", ["unread", "counts"])
def test_a_poll_answered_304_costs_one_query_past_auth(
    owner: Any, staff: Any, vendor: Vendor, depth: int, name: str
) -> None:
    history(vendor, depth)
    for user in (owner, staff):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
        tag = client.get(url(name))["ETag"]
        with CaptureQueriesContext(connection) as context:
            response = client.get(url(name), HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304
        assert len(context.captured_queries) == 3, [q["sql"] for q in context.captured_queries]
