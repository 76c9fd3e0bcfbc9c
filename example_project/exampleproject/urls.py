from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from marketplace import views
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

urlpatterns = [
    path("", views.demo_page, name="demo"),
    path("demo/notify/", views.DemoNotifyView.as_view(), name="demo-notify"),
    path("api/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    # The notifications' HTTP API (docs/rest.md) and its OpenAPI 3 document.
    path("api/notifications/", include("django_vendor_notifications.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("admin/", admin.site.urls),
]
