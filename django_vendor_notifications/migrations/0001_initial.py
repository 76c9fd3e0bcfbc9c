# Written by hand: the vendor model is the host's, named by a setting, so this migration must
# not freeze one app's model into the foreign key (the same trick as AUTH_USER_MODEL).
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import django_vendor_notifications.models
from django_vendor_notifications.conf import app_settings


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(app_settings.VENDOR_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "category",
                    models.CharField(
                        default=django_vendor_notifications.models.default_category,
                        max_length=100,
                    ),
                ),
                ("message", models.TextField()),
                ("context_data", models.JSONField(blank=True, default=dict)),
                ("is_read", models.BooleanField(default=False)),
                ("is_recent_notification", models.BooleanField(default=True)),
                ("readed_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "vendor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="vendor_notifications",
                        to=app_settings.VENDOR_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["vendor", "-created_at", "-id"],
                        condition=models.Q(("is_read", False)),
                        name="vn_vendor_unread_idx",
                    ),
                    models.Index(
                        fields=["vendor", "-created_at", "-id"],
                        name="vn_vendor_history_idx",
                    ),
                ],
            },
        ),
    ]
