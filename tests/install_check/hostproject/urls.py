from django.urls import include, path

urlpatterns = [path("api/notifications/", include("django_vendor_notifications.urls"))]
