"""The HTTP API's URLs, for the host to include:

path("api/notifications/", include("django_vendor_notifications.urls"))
"""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .views import NotificationViewSet

app_name = "vendor_notifications"

router = SimpleRouter()
router.register("", NotificationViewSet, basename="notification")

urlpatterns = router.urls
