"""The HTTP API: the socket's reads and changes as Django REST framework views.

Thin on purpose. Each view validates its input (``serializers``), calls the plain function in
``services`` that the socket's action calls, and answers with the frame ``payloads`` builds, so a
notification looks the same over HTTP and over the socket. A change tells the vendor's open
sockets exactly what the socket's own action would (``actions``). Who may read which vendor is
the host's ``ACCESS_POLICY``, asked through :class:`VendorAccess`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.cache import patch_cache_control
from django.utils.http import parse_etags
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from . import actions, payloads, preferences, services
from .conf import app_settings
from .permissions import get_access_policy, get_vendor_model
from .protocol import MAX_ID
from .serializers import (
    HistoryQuery,
    MarkAllReadBody,
    MarkSeenBody,
    NotificationId,
    PreferencesBody,
    SnoozeBody,
    SyncQuery,
    VendorQuery,
)

logger = logging.getLogger(__name__)


# --- who may call ----------------------------------------------------------------------------


def authentication_classes() -> list[type]:
    """REST_AUTHENTICATION_CLASSES, imported when a request comes (so override_settings works)."""
    key = "REST_AUTHENTICATION_CLASSES"
    return [
        app_settings.import_path(key, path) for path in app_settings.REST_AUTHENTICATION_CLASSES
    ]


class VendorAccess(BasePermission):
    """The socket's rule over HTTP: the ``ACCESS_POLICY`` decides the vendor and the access.

    Without a ``vendor`` query parameter the request acts for the vendor the policy's
    ``get_vendor`` gives the user (403 when there is none, or it may not be read). With one, for
    that vendor if ``can_access`` allows it, and a 404 otherwise: whether another vendor exists
    is nobody else's business. The vendor's pk is left on the view as ``vendor_id``.
    """

    message = "You may not read any vendor's notifications."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        query = validated(VendorQuery, request.query_params)
        requested = query.get("vendor")
        vendor_id = (
            services.entitled_vendor_id(user)
            if requested is None
            else accessible_vendor_id(user, requested)
        )
        view.vendor_id = vendor_id
        return vendor_id is not None


def accessible_vendor_id(user: Any, requested: str) -> Any:
    """The pk of vendor ``requested`` when ``user`` may read it; else a 404."""
    vendor_model = get_vendor_model()
    pk_field = vendor_model._meta.pk
    assert pk_field is not None
    try:
        pk = pk_field.to_python(requested)
        pk_field.run_validators(pk)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({"vendor": exc.messages}) from None
    if isinstance(pk, int) and not -MAX_ID - 1 <= pk <= MAX_ID:
        # Django 4.2 checks no range on auto fields; no database has larger integer keys.
        raise exceptions.ValidationError({"vendor": ["Not a valid vendor id."]})
    vendor = vendor_model._default_manager.filter(pk=pk).first()
    if vendor is None or not get_access_policy().can_access(user, vendor):
        raise exceptions.NotFound("No such vendor.")
    return vendor.pk


class NotificationRateThrottle(SimpleRateThrottle):
    """DRF's rate throttle per user, with the rates of ``REST_THROTTLE_RATES``: the "read"
    rate for GET (and HEAD, OPTIONS), the "write" rate for changes."""

    cache_format = "vendor_notifications_throttle_%(scope)s_%(ident)s"

    def __init__(self) -> None:
        # The rate depends on the request's method: chosen in allow_request.
        self.scope = "read"

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = "read" if request.method in SAFE_METHODS else "write"
        self.rate = app_settings.REST_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return bool(super().allow_request(request, view))

    def get_cache_key(self, request: Request, view: Any) -> str:
        user = request.user
        ident = user.pk if user is not None and user.is_authenticated else self.get_ident(request)
        return str(self.cache_format % {"scope": self.scope, "ident": ident})


# --- answers -----------------------------------------------------------------------------------


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "unavailable"


class ServerError(exceptions.APIException):
    default_detail = "The server failed."
    default_code = "internal_error"


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """``data`` checked by ``serializer_class``: its values, or a 400 with field errors."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def require_setting(key: str, feature: str) -> None:
    """A 404, as for an endpoint this server does not have, while ``key`` is off."""
    if not app_settings.get(key):
        raise exceptions.NotFound(f"{feature} is not enabled on this server.")


def etag(kind: str, vendor_id: Any, *parts: Any) -> str:
    """A strong ETag for a body made of ``parts``: the same parts, the same bytes.

    The settings that change how the same rows are written are part of it, so a deploy that
    changes them is never answered with a 304.
    """
    shape = [app_settings.DATETIME_FORMAT, app_settings.ISO_TIMESTAMPS, settings.TIME_ZONE]
    if app_settings.SEEN or app_settings.SNOOZE:
        # Only when on, so that turning them on changes every tag but off keeps them as were.
        shape += [app_settings.SEEN, app_settings.SNOOZE]
    text = json.dumps([kind, str(vendor_id), shape, *parts], default=str, sort_keys=True)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def unread_etag(vendor_id: Any, ids: Iterable[int], counts: Mapping[str, int]) -> str:
    # An unread item's fields never change while it stays unread, but for seen_at (SEEN),
    # which only changes with the unseen count: which ids are in the snapshot, with the
    # counts, decides its body.
    return etag("unread", vendor_id, sorted(ids), counts, *unseen_part(counts))


def unseen_part(counts: Mapping[str, int]) -> list[int]:
    """The unseen count for an ETag, when SEEN is on (off: nothing, so off tags stay)."""
    unseen = getattr(counts, "unseen", None)
    return [] if unseen is None else [unseen]


def client_has(request: Request, tag: str) -> bool:
    """Whether If-None-Match names ``tag`` (weak comparison, as RFC 9110 asks for GET)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = [candidate.removeprefix("W/") for candidate in parse_etags(header)]
    return "*" in tags or tag in tags


def conditional(response: Response, tag: str) -> Response:
    response["ETag"] = tag
    # Per user, and to be checked every time: a cache may keep it, but must ask first.
    patch_cache_control(response, private=True, no_cache=True)
    return response


def not_modified(tag: str) -> Response:
    return conditional(Response(status=status.HTTP_304_NOT_MODIFIED), tag)


# --- the views ---------------------------------------------------------------------------------


class NotificationViewSet(viewsets.ViewSet):
    """A vendor's notifications over HTTP. See docs/rest.md for every endpoint."""

    permission_classes = [VendorAccess]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    # Any path segment: a bad id is a 400 with a field error, not an HTML 404 from Django.
    lookup_value_regex = "[^/]+"
    #: Set by VendorAccess before any handler runs.
    vendor_id: Any = None

    def get_authenticators(self) -> list[Any]:
        return [authentication_class() for authentication_class in authentication_classes()]

    def get_throttles(self) -> list[Any]:
        return [NotificationRateThrottle()] if app_settings.REST_THROTTLE_RATES else []

    def handle_exception(self, exc: Exception) -> Response:
        """Never a traceback to the client: the server log keeps it."""
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.warning("Database unavailable for a notifications request: %r", exc)
            exc = Unavailable()
        elif not isinstance(exc, (exceptions.APIException, Http404, PermissionDenied)):
            logger.exception("Unexpected error while handling a notifications request.")
            exc = ServerError()
        return super().handle_exception(exc)

    # --- reads -----------------------------------------------------------------------------

    @action(detail=False, methods=["get"])
    def history(self, request: Request) -> Response:
        """The history: the spec's ``page``, or the ``before_id`` cursor with filters."""
        query = validated(HistoryQuery, request.query_params)
        if query.get("page") is not None:
            return Response(services.notifications_page(self.vendor_id, query["page"]))
        cursor = {name: query.get(name) for name in ("before_id", *HistoryQuery.CURSOR_ONLY)}
        return Response(services.cursor_page(self.vendor_id, **cursor))

    @action(detail=False, methods=["get"])
    def unread(self, request: Request) -> Response:
        """The unread snapshot, as the socket's first frame; 304 when the ETag still holds."""
        if request.headers.get("If-None-Match"):
            ids, counts = services.unread_version(self.vendor_id)
            tag = unread_etag(self.vendor_id, ids, counts)
            if client_has(request, tag):
                return not_modified(tag)
        state = services.inbox_state(self.vendor_id)
        frame = payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)
        tag = unread_etag(
            self.vendor_id, (row["id"] for row in state.unread_rows), state.unread_counts
        )
        return conditional(Response(frame), tag)

    @action(detail=False, methods=["get"])
    def counts(self, request: Request) -> Response:
        """Unread counts per category; 304 when the ETag still holds."""
        counts = services.unread_counts(self.vendor_id)
        tag = etag("counts", self.vendor_id, counts, *unseen_part(counts))
        if client_has(request, tag):
            return not_modified(tag)
        return conditional(Response(payloads.unread_counts_frame(counts)), tag)

    @action(detail=False, methods=["get"])
    def sync(self, request: Request) -> Response:
        """Everything after ``since_id``, oldest first, as the socket's sync reply."""
        query = validated(SyncQuery, request.query_params)
        return Response(services.sync(self.vendor_id, query["since_id"]))

    # --- changes ---------------------------------------------------------------------------

    @action(detail=True, methods=["post"], url_path="mark-read")
    def mark_read(self, request: Request, pk: str) -> Response:
        notification_id = self.notification_id(pk)
        result = services.mark_read(self.vendor_id, notification_id)
        return self.answer(actions.marked_read(notification_id, result))

    @action(detail=True, methods=["post"], url_path="mark-unread")
    def mark_unread(self, request: Request, pk: str) -> Response:
        return self.change("mark_unread", services.mark_unread, pk)

    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str) -> Response:
        return self.change("archive", services.archive, pk)

    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, pk: str) -> Response:
        return self.change("unarchive", services.unarchive, pk)

    @action(detail=False, methods=["post"], url_path="mark-all-read")
    def mark_all_read(self, request: Request) -> Response:
        category = validated(MarkAllReadBody, request.data)["category"]
        result = services.mark_all_read(self.vendor_id, category)
        return self.answer(actions.marked_all_read(category, result))

    @action(detail=False, methods=["get", "patch"], url_path="preferences")
    def preferences(self, request: Request) -> Response:
        """The user's preferences (GET) or a change to them (PATCH), as on the socket."""
        if not app_settings.PREFERENCES:
            raise exceptions.NotFound("Preferences are not enabled on this server.")
        user_id = request.user.pk
        if request.method == "GET":
            return Response(
                actions.preferences_reply("get_preferences", preferences.stored(user_id))
            )
        changes = validated(PreferencesBody, request.data)["preferences"]
        choices = preferences.change(user_id, changes)
        actions.tell_user_sockets(user_id, choices)
        return Response(actions.preferences_reply("set_preferences", choices))

    @action(detail=False, methods=["post"], url_path="mark-seen")
    def mark_seen(self, request: Request) -> Response:
        """Mark the unread notifications up to ``up_to_id`` seen (SEEN), as on the socket."""
        require_setting("SEEN", "Seen")
        up_to_id = validated(MarkSeenBody, request.data)["up_to_id"]
        result = services.mark_seen_counted(self.vendor_id, up_to_id)
        return self.answer(actions.marked_seen(up_to_id, result))

    @action(detail=True, methods=["post"])
    def snooze(self, request: Request, pk: str) -> Response:
        """Snooze one notification until ``until`` (SNOOZE), as on the socket."""
        require_setting("SNOOZE", "Snoozing")
        notification_id = self.notification_id(pk)
        until = validated(SnoozeBody, request.data)["until"]
        result = services.snooze(self.vendor_id, notification_id, until)
        return self.answer(actions.snoozed(notification_id, result))

    @action(detail=True, methods=["post"])
    def unsnooze(self, request: Request, pk: str) -> Response:
        """Wake a snoozed notification now (SNOOZE); every socket of the vendor gets it."""
        require_setting("SNOOZE", "Snoozing")
        notification_id = self.notification_id(pk)
        found, woken = services.unsnooze(self.vendor_id, notification_id)
        return self.answer(actions.unsnoozed(notification_id, found, woken))

    def change(self, name: str, change: Any, pk: str) -> Response:
        notification_id = self.notification_id(pk)
        result = change(self.vendor_id, notification_id)
        return self.answer(actions.changed(name, notification_id, result))

    def notification_id(self, pk: str) -> int:
        return int(validated(NotificationId, {"id": pk})["id"])

    def answer(self, outcome: actions.Outcome) -> Response:
        """The socket's reply as the body, and the vendor's sockets told what changed."""
        if outcome.reply.get("status") == "error":
            # Not the vendor's, or no such notification: the two are not told apart.
            raise exceptions.NotFound("No such notification.")
        actions.tell_outcome(self.vendor_id, outcome)
        return Response(outcome.reply)
