"""The HTTP API with DRF's APIClient: every endpoint, every refusal, ETags, throttles, and that
a change over HTTP reaches the vendor's sockets as the socket's own action would."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.urls import reverse
from rest_framework.test import APIClient

from django_vendor_notifications import delivery, services, views
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID
from tests.conftest import access_token_for, connect, make_user, refresh_token_for, vendor_settings
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db

ORDER = "Order Notifications"
GENERAL = "General Notifications"
DATE = r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}$"


#: Pushes go out once the change commits: these tests commit.
COMMITS = pytest.mark.django_db(transaction=True)


def url(name: str, pk: Any = None) -> str:
    args = [] if pk is None else [pk]
    return reverse(f"vendor_notifications:notification-{name}", args=args)


@pytest.fixture(autouse=True)
def fresh_throttles() -> Iterator[None]:
    """Throttle counters live in the cache, keyed by user id: ids come back between tests."""
    cache.clear()
    yield
    cache.clear()


def client_for(user: Any | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


@pytest.fixture
def api(owner: Any, vendor: Vendor) -> APIClient:
    return client_for(owner)


@pytest.fixture
def pushes(channel_layer: Any, vendor: Vendor) -> Callable[[], list[dict[str, Any]]]:
    """A member of the vendor's group; calling it returns the frames pushed to it so far."""
    channel = async_to_sync(channel_layer.new_channel)()
    async_to_sync(channel_layer.group_add)(delivery.vendor_group(vendor.pk), channel)

    def received() -> list[dict[str, Any]]:
        frames = []
        while channel_layer.channels.get(channel):
            event = async_to_sync(channel_layer.receive)(channel)
            assert event["type"] == delivery.PUSH_EVENT
            frames.append(json.loads(event["text"]))
        return frames

    return received


# --- reads -------------------------------------------------------------------------------------


def test_unread_is_the_sockets_first_frame(api: APIClient, vendor: Vendor, make_notification):
    first = make_notification(vendor, "Order #1", category=ORDER, context_data={"order": 1})
    make_notification(vendor, "read one", is_read=True)
    archived = make_notification(vendor, "archived")
    services.archive(vendor.pk, archived.pk)

    response = api.get(url("unread"))

    assert response.status_code == 200
    state = services.inbox_state(vendor.pk)
    assert response.json() == json.loads(
        json.dumps(
            services.payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)
        )
    )
    body = response.json()
    assert body["action"] == "unread_notifications"
    assert list(body["notifications"]) == [ORDER]
    item = body["notifications"][ORDER][0]
    assert item["id"] == first.pk
    assert item["vendor"] == vendor.pk
    assert item["context_data"] == '{"order": 1}'
    assert item["readed_at"] is None
    assert item["is_read"] is False
    assert body["unread_counts"] == {ORDER: 1}
    assert body["unread_total"] == 1
    assert re.match(DATE, item["created_at"])


@pytest.mark.django_db(transaction=True)
async def test_unread_body_equals_the_socket_first_frame(
    communicator: Any, vendor: Vendor, owner: Any
) -> None:
    await sync_to_async(Notification.objects.create)(vendor=vendor, message="one", category=ORDER)
    await communicator.disconnect()
    socket, first = await connect(await sync_to_async(access_token_for)(owner))
    response = await database_sync_to_async(client_for(owner).get)(url("unread"))
    await socket.disconnect()
    assert response.json() == first
    assert first["unread_total"] == 1


def test_history_pages_as_the_spec(api: APIClient, vendor: Vendor, make_notification, settings):
    made = [
        make_notification(vendor, f"n{i}", category=ORDER if i % 2 else GENERAL) for i in range(5)
    ]
    with vendor_settings(PAGE_SIZE=2):
        first = api.get(url("history"), {"page": 1}).json()
        last = api.get(url("history"), {"page": 3}).json()
        assert first == services.notifications_page(vendor.pk, 1)
    assert first["action"] == "load_more" and first["page"] == 1 and first["has_more"] is True
    ids = [item["id"] for items in first["notifications"].values() for item in items]
    assert sorted(ids) == sorted(n.pk for n in made[-2:])
    assert last["has_more"] is False
    assert [item["id"] for items in last["notifications"].values() for item in items] == [
        made[0].pk
    ]


def test_history_cursor_with_filters(api: APIClient, vendor: Vendor, make_notification):
    old = make_notification(vendor, "old", category=ORDER)
    read = make_notification(vendor, "read", category=ORDER, is_read=True)
    general = make_notification(vendor, "general", category=GENERAL)
    archived = make_notification(vendor, "archived", category=ORDER)
    services.archive(vendor.pk, archived.pk)

    def ids(**params: Any) -> list[int]:
        response = api.get(url("history"), params)
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["notifications"]]

    assert ids() == [archived.pk, general.pk, read.pk, old.pk]
    assert ids(category=ORDER) == [archived.pk, read.pk, old.pk]
    assert ids(is_read="true") == [read.pk]
    assert ids(is_read="false", archived="false") == [general.pk, old.pk]
    assert ids(archived="true") == [archived.pk]
    assert ids(before_id=read.pk) == [old.pk]
    page = api.get(url("history"), {"limit": 2}).json()
    assert [item["id"] for item in page["notifications"]] == [archived.pk, general.pk]
    assert page["has_more"] is True and page["next_before_id"] == general.pk
    assert page["action"] == "load_more" and page["before_id"] is None


def test_limit_is_capped_at_max_page_size(api: APIClient, vendor: Vendor, make_notification):
    for i in range(4):
        make_notification(vendor, f"n{i}")
    with vendor_settings(MAX_PAGE_SIZE=3):
        body = api.get(url("history"), {"limit": 50}).json()
    assert len(body["notifications"]) == 3
    assert body["has_more"] is True


def test_counts(api: APIClient, vendor: Vendor, other_vendor: Vendor, make_notification):
    make_notification(vendor, "a", category=ORDER)
    make_notification(vendor, "b", category=ORDER)
    make_notification(vendor, "c", category=GENERAL)
    make_notification(vendor, "d", category=GENERAL, is_read=True)
    make_notification(other_vendor, "theirs", category=GENERAL)
    response = api.get(url("counts"))
    assert response.status_code == 200
    assert response.json() == {
        "action": "get_unread_counts",
        "status": "success",
        "unread_counts": {GENERAL: 1, ORDER: 2},
        "unread_total": 3,
    }


def test_sync(api: APIClient, vendor: Vendor, make_notification):
    first = make_notification(vendor, "first")
    second = make_notification(vendor, "second", is_read=True)
    body = api.get(url("sync"), {"since_id": first.pk}).json()
    assert body["action"] == "sync" and body["since_id"] == first.pk and body["has_more"] is False
    assert [item["id"] for item in body["notifications"]] == [second.pk]
    assert body["notifications"][0]["is_read"] is True
    everything = api.get(url("sync"), {"since_id": 0}).json()
    assert [item["id"] for item in everything["notifications"]] == [first.pk, second.pk]


# --- changes -----------------------------------------------------------------------------------


@COMMITS
def test_mark_read_tells_the_vendors_sockets(
    api: APIClient, vendor: Vendor, make_notification, pushes
):
    notification = make_notification(vendor, "hello")
    make_notification(vendor, "still unread")

    response = api.post(url("mark-read", notification.pk))

    assert response.status_code == 200
    assert response.json() == {
        "action": "mark_read",
        "notification_id": notification.pk,
        "status": "success",
    }
    notification.refresh_from_db()
    assert notification.is_read and notification.readed_at is not None
    assert pushes() == [
        {"action": "notification_read", "notification_id": notification.pk, "unread_total": 1}
    ]
    # Idempotent, and nothing changed the second time: no push.
    again = api.post(url("mark-read", notification.pk))
    assert again.status_code == 200 and again.json()["status"] == "success"
    assert pushes() == []


@COMMITS
@pytest.mark.parametrize(
    ("name", "prepare", "expected_counts"),
    [
        ("mark-unread", {"is_read": True}, {GENERAL: 2}),
        ("archive", {}, {}),
    ],
)
def test_changes_tell_the_vendors_sockets_the_counts(
    api: APIClient, vendor: Vendor, make_notification, pushes, name, prepare, expected_counts
):
    target = make_notification(vendor, "target", **prepare)
    if name == "mark-unread":
        make_notification(vendor, "other unread")
    response = api.post(url(name, target.pk))
    assert response.status_code == 200
    assert response.json() == {
        "action": name.replace("-", "_"),
        "notification_id": target.pk,
        "status": "success",
    }
    assert pushes() == [
        {
            "action": "unread_count_changed",
            "unread_counts": expected_counts,
            "unread_total": sum(expected_counts.values()),
        }
    ]


@COMMITS
def test_archive_then_unarchive(api: APIClient, vendor: Vendor, make_notification, pushes):
    target = make_notification(vendor, "target")
    assert api.post(url("archive", target.pk)).status_code == 200
    target.refresh_from_db()
    assert target.archived_at is not None
    assert api.post(url("unarchive", target.pk)).json()["status"] == "success"
    target.refresh_from_db()
    assert target.archived_at is None
    assert [frame["unread_total"] for frame in pushes()] == [0, 1]


@COMMITS
def test_mark_all_read(api: APIClient, vendor: Vendor, make_notification, pushes):
    make_notification(vendor, "a", category=ORDER)
    make_notification(vendor, "b", category=GENERAL)
    make_notification(vendor, "c", category=GENERAL)

    only_orders = api.post(url("mark-all-read"), {"category": ORDER}, format="json")
    assert only_orders.status_code == 200
    assert only_orders.json() == {
        "action": "mark_all_read",
        "status": "success",
        "category": ORDER,
        "updated": 1,
        "unread_total": 2,
    }
    everything = api.post(url("mark-all-read"))
    assert everything.json() == {
        "action": "mark_all_read",
        "status": "success",
        "updated": 2,
        "unread_total": 0,
    }
    assert Notification.objects.filter(vendor=vendor, is_read=False).count() == 0
    assert [frame["unread_total"] for frame in pushes()] == [2, 0]
    nothing_left = api.post(url("mark-all-read"), {"category": None}, format="json")
    assert nothing_left.json()["updated"] == 0
    assert pushes() == []


@COMMITS
@pytest.mark.parametrize("name", ["mark-read", "mark-unread", "archive", "unarchive"])
def test_another_vendors_notification_is_a_404(
    api: APIClient, other_vendor: Vendor, make_notification, pushes, name
):
    theirs = make_notification(other_vendor, "theirs", is_read=name == "mark-unread")
    response = api.post(url(name, theirs.pk))
    missing = api.post(url(name, theirs.pk + 1000))
    assert response.status_code == missing.status_code == 404
    # The same answer as for an id that does not exist: nothing leaks.
    assert response.json() == missing.json() == {"detail": "No such notification."}
    assert Notification.objects.get(pk=theirs.pk).is_read is (name == "mark-unread")
    assert Notification.objects.get(pk=theirs.pk).archived_at is None
    assert pushes() == []


# --- who may call ------------------------------------------------------------------------------


ENDPOINTS = [
    ("get", "history", None),
    ("get", "unread", None),
    ("get", "counts", None),
    ("get", "sync", None),
    ("post", "mark-all-read", None),
    ("post", "mark-read", 1),
    ("post", "mark-unread", 1),
    ("post", "archive", 1),
    ("post", "unarchive", 1),
]


def call(client: APIClient, method: str, name: str, pk: Any, **params: Any) -> Any:
    query = {"since_id": 0} if name == "sync" else {}
    query.update(params)
    path = url(name, pk)
    if method == "post" and query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return client.post(path)
    return getattr(client, method)(path, query)


@pytest.mark.parametrize(("method", "name", "pk"), ENDPOINTS)
def test_no_token_is_a_401(vendor: Vendor, method: str, name: str, pk: Any) -> None:
    response = call(APIClient(), method, name, pk)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "name", "pk"), ENDPOINTS)
def test_a_refresh_token_is_a_401(owner: Any, vendor: Vendor, method: str, name: str, pk: Any):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh_token_for(owner)}")
    response = call(client, method, name, pk)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize(("method", "name", "pk"), ENDPOINTS)
def test_a_customer_without_a_vendor_is_a_403(customer: Any, method: str, name: str, pk: Any):
    response = call(client_for(customer), method, name, pk)
    assert response.status_code == 403
    assert response.json() == {"detail": "You may not read any vendor's notifications."}


@pytest.mark.parametrize(("method", "name", "pk"), ENDPOINTS)
def test_staff_without_the_role_permission_is_a_403(
    staff_without_permission: Any, vendor: Vendor, method: str, name: str, pk: Any
):
    response = call(client_for(staff_without_permission), method, name, pk)
    assert response.status_code == 403


def test_a_bad_or_garbled_token_is_a_401(vendor: Vendor) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert client.get(url("counts")).status_code == 401


def test_an_inactive_user_is_a_401(owner: Any, vendor: Vendor) -> None:
    client = client_for(owner)
    owner.is_active = False
    owner.save()
    assert client.get(url("counts")).status_code == 401


@COMMITS
def test_staff_with_the_role_reads_and_changes_the_vendors_notifications(
    staff: Any, vendor: Vendor, make_notification, pushes
):
    notification = make_notification(vendor, "for the team")
    client = client_for(staff)
    assert client.get(url("counts")).json()["unread_total"] == 1
    assert client.post(url("mark-read", notification.pk)).status_code == 200
    assert pushes()[0]["action"] == "notification_read"


def test_the_vendor_parameter(
    api: APIClient, staff: Any, vendor: Vendor, other_vendor: Vendor, make_notification
):
    make_notification(vendor, "mine")
    make_notification(other_vendor, "theirs")
    assert api.get(url("counts"), {"vendor": vendor.pk}).json()["unread_total"] == 1
    # Another vendor's id: a 404, exactly as for one that does not exist.
    theirs = api.get(url("counts"), {"vendor": other_vendor.pk})
    missing = api.get(url("counts"), {"vendor": other_vendor.pk + 1000})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert api.post(f"{url('mark-all-read')}?vendor={other_vendor.pk}").status_code == 404
    assert Notification.objects.get(vendor=other_vendor).is_read is False
    assert client_for(staff).get(url("counts"), {"vendor": vendor.pk}).status_code == 200
    for bad in ("abc", "1.5", str(MAX_ID + 1), "1\x00"):
        response = api.get(url("counts"), {"vendor": bad})
        assert response.status_code == 400, bad
        assert list(response.json()) == ["vendor"]


def test_a_staff_member_of_two_vendors_picks_one(
    staff: Any, vendor: Vendor, other_vendor: Vendor, make_notification
) -> None:
    from tests.testapp.models import Role, Staff

    Staff.objects.create(
        vendor=other_vendor,
        user=staff,
        role=Role.objects.create(name="x", can_view_notifications=True),
    )
    make_notification(other_vendor, "theirs")
    client = client_for(staff)
    assert client.get(url("counts")).json()["unread_total"] == 0
    assert client.get(url("counts"), {"vendor": other_vendor.pk}).json()["unread_total"] == 1


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"page": 0}, ["page"]),
        ({"page": "x"}, ["page"]),
        ({"before_id": -1}, ["before_id"]),
        ({"before_id": MAX_ID + 1}, ["before_id"]),
        ({"limit": 0}, ["limit"]),
        ({"is_read": "maybe"}, ["is_read"]),
        ({"archived": "2"}, ["archived"]),
        ({"category": "a\x00b"}, ["category"]),
        ({"category": "x" * 101}, ["category"]),
        ({"page": 1, "before_id": 5}, ["before_id"]),
        ({"page": 1, "category": ORDER, "limit": 3}, ["category", "limit"]),
    ],
)
def test_bad_history_parameters_are_400s_with_field_errors(
    api: APIClient, params: dict[str, Any], fields: list[str]
) -> None:
    response = api.get(url("history"), params)
    assert response.status_code == 400
    assert sorted(response.json()) == fields
    assert all(isinstance(messages, list) for messages in response.json().values())


@pytest.mark.parametrize("since_id", [None, -1, "x", MAX_ID + 1])
def test_bad_since_id(api: APIClient, since_id: Any) -> None:
    response = api.get(url("sync"), {} if since_id is None else {"since_id": since_id})
    assert response.status_code == 400
    assert list(response.json()) == ["since_id"]


@pytest.mark.parametrize("pk", ["0", str(MAX_ID + 1), "abc", "-1", "1.5", "null,null"])
def test_bad_notification_ids_are_400s(api: APIClient, pk: str) -> None:
    response = api.post(url("mark-read", 1).replace("/1/", f"/{pk}/"))
    assert response.status_code == 400
    assert list(response.json()) == ["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": 3}, "category"),
        ({"category": "a\x00"}, "category"),
        ('{"category": "\\ud800"}', "category"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_bad_mark_all_read_bodies(api: APIClient, vendor: Vendor, body: Any, field: str) -> None:
    if isinstance(body, str):
        response = api.post(url("mark-all-read"), body, content_type="application/json")
    else:
        response = api.post(url("mark-all-read"), body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_malformed_json_is_a_400(api: APIClient) -> None:
    response = api.post(url("mark-all-read"), "{", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (RuntimeError("secret internals"), 500, "The server failed."),
        (
            OperationalError("secret refusal"),
            503,
            "The database is unavailable; try again shortly.",
        ),
    ],
)
def test_failures_never_show_a_traceback(
    api: APIClient, monkeypatch, error: Exception, status: int, detail: str
) -> None:
    def broken(vendor_id: Any) -> None:
        raise error

    monkeypatch.setattr(services, "unread_counts", broken)
    response = api.get(url("counts"))
    assert response.status_code == status
    assert response.json() == {"detail": detail}
    assert "secret" not in response.content.decode()


# --- ETags -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["counts", "unread"])
def test_etags_answer_304_until_something_changes(
    api: APIClient, vendor: Vendor, other_vendor: Vendor, make_notification, name: str
) -> None:
    a = make_notification(vendor, "a", category=ORDER)
    b = make_notification(vendor, "b", is_read=True)
    c = make_notification(vendor, "c", category=ORDER)

    def poll(tag: str) -> Any:
        return api.get(url(name), HTTP_IF_NONE_MATCH=tag)

    first = api.get(url(name))
    tag = first["ETag"]
    assert first.status_code == 200 and tag.startswith('"')
    assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
    not_modified = poll(tag)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified["ETag"] == tag
    assert poll(f"W/{tag}").status_code == 304
    assert poll(f'"other", {tag}').status_code == 304
    assert poll("*").status_code == 304
    assert poll('"other"').status_code == 200

    # Another vendor's change is not ours.
    make_notification(other_vendor, "theirs")
    assert poll(tag).status_code == 304

    seen = {tag}

    def changed() -> str:
        response = poll(next(iter(seen)))
        assert response.status_code == 200
        assert response["ETag"] not in seen
        assert response["ETag"] == api.get(url(name))["ETag"]
        seen.add(response["ETag"])
        return str(response["ETag"])

    # Every step leaves counts never seen before, so each must be a new ETag.
    api.post(url("mark-read", a.pk))
    changed()
    make_notification(vendor, "new", category=ORDER)
    make_notification(vendor, "new", category=GENERAL)
    changed()
    api.post(url("archive", c.pk))
    changed()
    api.post(url("mark-unread", b.pk))
    tag = changed()
    assert poll(tag).status_code == 304


def test_the_unread_etag_sees_a_swap_that_keeps_the_counts(
    api: APIClient, vendor: Vendor, make_notification
) -> None:
    a = make_notification(vendor, "a")
    b = make_notification(vendor, "b", is_read=True)
    tag = api.get(url("unread"))["ETag"]
    api.post(url("mark-read", a.pk))
    api.post(url("mark-unread", b.pk))
    assert api.get(url("counts")).json()["unread_total"] == 1
    response = api.get(url("unread"), HTTP_IF_NONE_MATCH=tag)
    assert response.status_code == 200
    assert [i["id"] for i in response.json()["notifications"][GENERAL]] == [b.pk]


def test_etags_change_with_the_wire_format(api: APIClient, vendor: Vendor, make_notification):
    make_notification(vendor, "a")
    tag = api.get(url("unread"))["ETag"]
    with vendor_settings(ISO_TIMESTAMPS=True):
        assert api.get(url("unread"), HTTP_IF_NONE_MATCH=tag).status_code == 200


# --- settings ----------------------------------------------------------------------------------


def test_throttles_per_user_and_scope(api: APIClient, vendor: Vendor, make_notification) -> None:
    notification = make_notification(vendor, "a")
    with vendor_settings(REST_THROTTLE_RATES={"read": "2/min", "write": "1/min"}):
        assert [api.get(url("counts")).status_code for _ in range(3)] == [200, 200, 429]
        throttled = api.get(url("unread"))
        assert throttled.status_code == 429 and "Retry-After" in throttled
        assert api.post(url("mark-read", notification.pk)).status_code == 200
        assert api.post(url("mark-read", notification.pk)).status_code == 429
        # Another user has rates of their own.
        other = make_user()
        Vendor.objects.create(user=other, name="Other")
        assert client_for(other).get(url("counts")).status_code == 200


def test_throttling_can_be_turned_off(api: APIClient, vendor: Vendor) -> None:
    with vendor_settings(REST_THROTTLE_RATES={"read": None, "write": "1/min"}):
        assert {api.get(url("counts")).status_code for _ in range(5)} == {200}
    with vendor_settings(REST_THROTTLE_RATES=None):
        assert views.NotificationViewSet().get_throttles() == []


def test_authentication_classes_are_a_setting(owner: Any, vendor: Vendor) -> None:
    session = ["rest_framework.authentication.SessionAuthentication"]
    with vendor_settings(REST_AUTHENTICATION_CLASSES=session):
        # A bearer token means nothing now; a logged-in session does.
        assert client_for(owner).get(url("counts")).status_code == 403
        client = APIClient()
        client.force_login(owner)
        assert client.get(url("counts")).status_code == 200


def test_an_unimportable_authentication_class_names_the_setting() -> None:
    with (
        vendor_settings(REST_AUTHENTICATION_CLASSES=["nowhere.Auth"]),
        pytest.raises(
            ImproperlyConfigured, match=r'VENDOR_NOTIFICATIONS\["REST_AUTHENTICATION_CLASSES"\]'
        ),
    ):
        views.authentication_classes()
