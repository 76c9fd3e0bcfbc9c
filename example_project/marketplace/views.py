"""The demo page, and an endpoint that creates a notification for the caller's vendor.

The endpoint lets the page show a notification arriving live even on the in-memory channel
layer, which only reaches sockets of the same server process.
"""

from __future__ import annotations

import random
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from django_vendor_notifications.conf import app_settings
from django_vendor_notifications.permissions import get_access_policy
from django_vendor_notifications.services import notify

DEMO_MESSAGES = {
    "Order Notifications": "Order #{number} has been placed.",
    "Payment Notifications": "Payment received for order #{number}.",
    "General Notifications": "Your shop page was viewed {number} times today.",
}
#: Demo notifications of these categories are collapsed: a vendor's unread new orders show as
#: one item, "12 new orders" on the page (docs/collapsed-notifications.md).
DEMO_COLLAPSE_KEYS = {"Order Notifications": "new-order"}
MAX_MESSAGE_LENGTH = 500


def demo_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "marketplace/demo.html",
        {
            "demo_config": {
                "websocketPath": "/" + app_settings.WEBSOCKET_PATH,
                "tokenParameter": app_settings.TOKEN_QUERY_PARAMETER,
                "categories": list(app_settings.CATEGORIES or DEMO_MESSAGES),
                "countsUrl": reverse("vendor_notifications:notification-counts"),
            }
        },
    )


class DemoNotifyView(APIView):
    """``POST {"category": ..., "message": ...}`` with ``Authorization: Bearer <access>``."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        data: Any = request.data
        if not isinstance(data, dict):
            return bad_request("The body must be a JSON object.")
        category = data.get("category") or app_settings.DEFAULT_CATEGORY
        if not isinstance(category, str):
            return bad_request("'category' must be a string.")
        number = random.randint(1000, 9999)
        message = data.get("message")
        if message is None:
            template = DEMO_MESSAGES.get(category, "Demo notification #{number}.")
            message = template.format(number=number)
        if not isinstance(message, str) or not 0 < len(message) <= MAX_MESSAGE_LENGTH:
            return bad_request(f"'message' must be 1 to {MAX_MESSAGE_LENGTH} characters.")

        # The same policy the socket uses, so the page can only notify its own vendor.
        policy = get_access_policy()
        vendor = policy.get_vendor(request.user)
        if vendor is None or not policy.can_access(request.user, vendor):
            return Response(
                {"detail": "You may not read any vendor's notifications."},
                status=status.HTTP_403_FORBIDDEN,
            )
        try:
            with transaction.atomic():
                notification = notify(
                    vendor,
                    message,
                    category=category,
                    context={"demo": True, "number": number},
                    collapse_key=DEMO_COLLAPSE_KEYS.get(category),
                )
        except ValueError as exc:  # a category outside VENDOR_NOTIFICATIONS["CATEGORIES"]
            return bad_request(str(exc))
        return Response(
            {
                "id": notification.pk,
                "vendor": vendor.pk,
                "category": notification.category,
                "message": notification.message,
            },
            status=status.HTTP_201_CREATED,
        )


def bad_request(detail: str) -> Response:
    return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
