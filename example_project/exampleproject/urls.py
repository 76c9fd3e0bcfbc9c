from __future__ import annotations

from django.contrib import admin
from django.urls import path
from marketplace import views
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

urlpatterns = [
    path("", views.demo_page, name="demo"),
    path("demo/notify/", views.DemoNotifyView.as_view(), name="demo-notify"),
    path("api/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("admin/", admin.site.urls),
]
